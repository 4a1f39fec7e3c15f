//! PII entity types (Bedrock's 31 names) and their detectors: one regex per detected type over
//! normalized text, plus an optional validator that confirms (and may narrow) each candidate.
//!
//! Detected in this cut: EMAIL, PHONE, US_SOCIAL_SECURITY_NUMBER, CREDIT_DEBIT_CARD_NUMBER,
//! IP_ADDRESS, AWS_ACCESS_KEY, AWS_SECRET_KEY. Every other Bedrock type is accepted in a policy
//! (so Bedrock-shaped policies load) and reported by [`PiiEntity::is_detected`] as not yet
//! detected. Adding a type is adding a [`Detector`] arm in [`PiiEntity::detector`].
//!
//! Patterns use ASCII classes and `(?-u:\b)` so the lazy DFA runs them in one pass over any
//! haystack. Decisions on look-alikes:
//! - PHONE: `+` international numbers with 8–15 digits, and North-American numbers written with
//!   separators or parentheses (area code 2–9). A bare run of digits (`5551234567`), dates and
//!   dotted versions are not phones.
//! - US_SOCIAL_SECURITY_NUMBER: `AAA-GG-SSSS` or `AAA GG SSSS`; area 000/666/9xx, group 00,
//!   serial 0000 and the two famous advertising numbers are rejected. A bare 9-digit run is not
//!   an SSN.
//! - CREDIT_DEBIT_CARD_NUMBER: 13–19 digits, single spaces or dashes between digits, a known
//!   issuer prefix with a length that issuer uses, and a valid Luhn check digit.
//! - IP_ADDRESS: dotted quads with octets 0–255 (so `1.2.3.4` *is* an address: it is
//!   indistinguishable from one; `v1.2.3.4`, `1.2.3.4.5` and `1.2.3` are not) and IPv6 as
//!   `std` parses it, with at least two groups and one decimal digit (so `dead::beef` and `::1`
//!   are not reported).
//! - AWS_SECRET_KEY: a 40-character base64-alphabet token with upper, lower and a digit (or
//!   `/`/`+`) within a short distance after a cue word (`secret`, `secret key`,
//!   `aws_secret_access_key`, ...). Only the token is redacted, never the cue.

use std::net::Ipv6Addr;
use std::str::FromStr;

/// Bedrock's PII entity types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PiiEntity {
    Address,
    Age,
    AwsAccessKey,
    AwsSecretKey,
    CaHealthNumber,
    CaSocialInsuranceNumber,
    CreditDebitCardCvv,
    CreditDebitCardExpiry,
    CreditDebitCardNumber,
    DriverId,
    Email,
    InternationalBankAccountNumber,
    IpAddress,
    LicensePlate,
    MacAddress,
    Name,
    Password,
    Phone,
    Pin,
    SwiftCode,
    UkNationalHealthServiceNumber,
    UkNationalInsuranceNumber,
    UkUniqueTaxpayerReferenceNumber,
    Url,
    Username,
    UsBankAccountNumber,
    UsBankRoutingNumber,
    UsIndividualTaxIdentificationNumber,
    UsPassportNumber,
    UsSocialSecurityNumber,
    VehicleIdentificationNumber,
}

const NAMES: [(PiiEntity, &str); 31] = [
    (PiiEntity::Address, "ADDRESS"),
    (PiiEntity::Age, "AGE"),
    (PiiEntity::AwsAccessKey, "AWS_ACCESS_KEY"),
    (PiiEntity::AwsSecretKey, "AWS_SECRET_KEY"),
    (PiiEntity::CaHealthNumber, "CA_HEALTH_NUMBER"),
    (
        PiiEntity::CaSocialInsuranceNumber,
        "CA_SOCIAL_INSURANCE_NUMBER",
    ),
    (PiiEntity::CreditDebitCardCvv, "CREDIT_DEBIT_CARD_CVV"),
    (PiiEntity::CreditDebitCardExpiry, "CREDIT_DEBIT_CARD_EXPIRY"),
    (PiiEntity::CreditDebitCardNumber, "CREDIT_DEBIT_CARD_NUMBER"),
    (PiiEntity::DriverId, "DRIVER_ID"),
    (PiiEntity::Email, "EMAIL"),
    (
        PiiEntity::InternationalBankAccountNumber,
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    ),
    (PiiEntity::IpAddress, "IP_ADDRESS"),
    (PiiEntity::LicensePlate, "LICENSE_PLATE"),
    (PiiEntity::MacAddress, "MAC_ADDRESS"),
    (PiiEntity::Name, "NAME"),
    (PiiEntity::Password, "PASSWORD"),
    (PiiEntity::Phone, "PHONE"),
    (PiiEntity::Pin, "PIN"),
    (PiiEntity::SwiftCode, "SWIFT_CODE"),
    (
        PiiEntity::UkNationalHealthServiceNumber,
        "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    ),
    (
        PiiEntity::UkNationalInsuranceNumber,
        "UK_NATIONAL_INSURANCE_NUMBER",
    ),
    (
        PiiEntity::UkUniqueTaxpayerReferenceNumber,
        "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    ),
    (PiiEntity::Url, "URL"),
    (PiiEntity::Username, "USERNAME"),
    (PiiEntity::UsBankAccountNumber, "US_BANK_ACCOUNT_NUMBER"),
    (PiiEntity::UsBankRoutingNumber, "US_BANK_ROUTING_NUMBER"),
    (
        PiiEntity::UsIndividualTaxIdentificationNumber,
        "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    ),
    (PiiEntity::UsPassportNumber, "US_PASSPORT_NUMBER"),
    (
        PiiEntity::UsSocialSecurityNumber,
        "US_SOCIAL_SECURITY_NUMBER",
    ),
    (
        PiiEntity::VehicleIdentificationNumber,
        "VEHICLE_IDENTIFICATION_NUMBER",
    ),
];

/// Confirms a candidate span `[start, end)` of the normalized haystack; returns the span to
/// report (possibly narrowed), or `None` to reject it.
pub(crate) type Validator = fn(hay: &str, start: usize, end: usize) -> Option<(usize, usize)>;

/// How one entity type is found: a regex over normalized text, the capture group that is the
/// entity (0 = the whole match; a cue word may sit outside it), and an optional validator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detector {
    pub(crate) pattern: &'static str,
    pub(crate) group: usize,
    pub(crate) validate: Option<Validator>,
}

impl PiiEntity {
    /// Every Bedrock entity type.
    pub fn all() -> impl Iterator<Item = PiiEntity> {
        NAMES.iter().map(|(e, _)| *e)
    }

    /// Bedrock's name for the type, e.g. `EMAIL`.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(e, _)| *e == self)
            .map(|(_, n)| *n)
            .unwrap_or("UNKNOWN")
    }

    /// The type for a Bedrock name (exact, upper case), if it is one of the 31.
    pub fn from_name(name: &str) -> Option<PiiEntity> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(e, _)| *e)
    }

    /// Whether the embedded engine detects this type yet (others are accepted, never matched).
    pub fn is_detected(self) -> bool {
        self.detector().is_some()
    }

    pub(crate) fn detector(self) -> Option<Detector> {
        use PiiEntity::*;
        let d = |pattern, group, validate| {
            Some(Detector {
                pattern,
                group,
                validate,
            })
        };
        match self {
            Email => d(EMAIL, 0, Some(validate_email as Validator)),
            Phone => d(PHONE, 0, Some(validate_phone as Validator)),
            UsSocialSecurityNumber => d(SSN, 0, Some(validate_ssn as Validator)),
            CreditDebitCardNumber => d(CARD, 0, Some(validate_card as Validator)),
            IpAddress => d(IP, 0, Some(validate_ip as Validator)),
            AwsAccessKey => d(AWS_ACCESS_KEY, 0, None),
            AwsSecretKey => d(AWS_SECRET_KEY, 1, Some(validate_secret as Validator)),
            Address
            | Age
            | CaHealthNumber
            | CaSocialInsuranceNumber
            | CreditDebitCardCvv
            | CreditDebitCardExpiry
            | DriverId
            | InternationalBankAccountNumber
            | LicensePlate
            | MacAddress
            | Name
            | Password
            | Pin
            | SwiftCode
            | UkNationalHealthServiceNumber
            | UkNationalInsuranceNumber
            | UkUniqueTaxpayerReferenceNumber
            | Url
            | Username
            | UsBankAccountNumber
            | UsBankRoutingNumber
            | UsIndividualTaxIdentificationNumber
            | UsPassportNumber
            | VehicleIdentificationNumber => None,
        }
    }
}

/// `local@domain.tld` (after normalisation folded `[at]`/`(dot)` spellings), or the fully
/// spelled `local [dot local] at domain dot tld` (word `at` only with at least one word `dot`
/// after it, so "look at example.com" is not an address; see [`validate_email`]).
const EMAIL: &str = concat!(
    r"(?-u:\b)[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9][A-Za-z0-9\-]*",
    r"(?:\.[A-Za-z0-9][A-Za-z0-9\-]*)*\.[A-Za-z]{2,24}(?-u:\b)",
    r"|(?-u:\b)[A-Za-z0-9][A-Za-z0-9._%+\-]*",
    r"(?:[ \t]{1,3}(?i:dot)[ \t]{1,3}[A-Za-z0-9][A-Za-z0-9._%+\-]*)*",
    r"[ \t]{1,3}(?i:at)[ \t]{1,3}[A-Za-z0-9][A-Za-z0-9\-]*",
    r"(?:[ \t]{1,3}(?i:dot)[ \t]{1,3}[A-Za-z0-9][A-Za-z0-9\-]*)+(?-u:\b)",
);

/// International (`+` then digits with single separators and parenthesised groups) or
/// North-American with separators.
const PHONE: &str = concat!(
    r"\+[0-9](?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9])){6,20}",
    r"|(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|(?-u:\b)[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}(?-u:\b)",
);

const SSN: &str = r"(?-u:\b)[0-9]{3}(?:-[0-9]{2}-|[ ][0-9]{2}[ ])[0-9]{4}(?-u:\b)";

const CARD: &str = r"(?-u:\b)[0-9](?:[ \-]?[0-9]){11,18}(?-u:\b)";

const IP: &str = concat!(
    r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)",
    r"|(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?",
);

const AWS_ACCESS_KEY: &str = r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)";

const AWS_SECRET_KEY: &str = concat!(
    r"(?i:secret)[^\n]{0,32}?[^A-Za-z0-9/+=\n]",
    r"([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)",
);

fn char_before(hay: &str, i: usize) -> Option<char> {
    hay.get(..i).and_then(|s| s.chars().next_back())
}

fn char_at(hay: &str, i: usize) -> Option<char> {
    hay.get(i..).and_then(|s| s.chars().next())
}

/// The char after `i` and the one after that.
fn two_after(hay: &str, i: usize) -> (Option<char>, Option<char>) {
    let mut it = hay.get(i..).map(|s| s.chars()).into_iter().flatten();
    (it.next(), it.next())
}

/// A number continues past `i` (a digit/letter, or a separator and then a digit).
fn continues(hay: &str, i: usize) -> bool {
    match two_after(hay, i) {
        (Some(c), _) if c.is_alphanumeric() => true,
        (Some('-' | '.' | '/'), Some(d)) => d.is_ascii_digit(),
        _ => false,
    }
}

/// Candidate ends for a separated number: `end`, then every group boundary before it
/// (a digit or `)` followed by a separator), longest first.
fn group_ends(hay: &str, start: usize, end: usize) -> impl Iterator<Item = usize> + '_ {
    let bytes = hay.as_bytes();
    let inner = (start + 1..end).rev().filter(move |&i| {
        let prev = bytes.get(i - 1).copied().unwrap_or(b' ');
        let here = bytes.get(i).copied().unwrap_or(b' ');
        (prev.is_ascii_digit() || prev == b')') && matches!(here, b' ' | b'-' | b'.')
    });
    std::iter::once(end).chain(inner)
}

fn digits_of(s: &str, out: &mut [u8; 24]) -> usize {
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        if let Some(slot) = out.get_mut(n) {
            *slot = b - b'0';
        }
        n += 1;
    }
    n
}

fn prefix_value(d: &[u8], k: usize) -> u32 {
    d.iter()
        .take(k)
        .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
}

pub(crate) fn luhn_valid(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A known issuer prefix (IIN) with a length that issuer uses.
pub(crate) fn known_issuer(d: &[u8]) -> bool {
    let n = d.len();
    let p2 = prefix_value(d, 2);
    let p3 = prefix_value(d, 3);
    let p4 = prefix_value(d, 4);
    let p6 = prefix_value(d, 6);
    match d.first() {
        // Visa
        Some(4) => matches!(n, 13 | 16 | 19),
        // Mastercard 51–55, Maestro 50/56–59
        Some(5) => ((51..=55).contains(&p2) && n == 16) || (p2 == 50 || p2 >= 56) && n >= 12,
        // Mastercard 2-series
        Some(2) => (2221..=2720).contains(&p4) && n == 16,
        // Amex, Diners, JCB
        Some(3) => {
            ((p2 == 34 || p2 == 37) && n == 15)
                || (((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39)
                    && (14..=19).contains(&n))
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&n))
        }
        // Discover, UnionPay, Maestro
        Some(6) => {
            ((p4 == 6011
                || p2 == 65
                || (644..=649).contains(&p3)
                || (622126..=622925).contains(&p6))
                && (16..=19).contains(&n))
                || (p2 == 62 && (16..=19).contains(&n))
                || ((p2 == 60 || p2 == 63 || p2 == 67) && (12..=19).contains(&n))
        }
        _ => false,
    }
}

/// A spelled address followed by another word `at` was a false start ("me at john dot doe
/// at gmail dot com"): reject it, so the search resumes and finds the real one.
fn validate_email(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if hay.get(start..end)?.contains('@') {
        return Some((start, end));
    }
    let rest = hay.get(end..)?;
    let after = rest.trim_start_matches([' ', '\t']);
    let spaced = after.len() < rest.len();
    let at = after.get(..2).is_some_and(|w| w.eq_ignore_ascii_case("at"));
    let then = after.as_bytes().get(2);
    if spaced && at && matches!(then, Some(b' ' | b'\t')) {
        return None;
    }
    Some((start, end))
}

fn validate_card(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if matches!(char_before(hay, start), Some(c) if c.is_alphanumeric() || matches!(c, '-' | '.' | '+' | '/'))
    {
        return None;
    }
    for e in group_ends(hay, start, end) {
        let mut d = [0u8; 24];
        let n = digits_of(hay.get(start..e)?, &mut d);
        if !(13..=19).contains(&n) {
            continue;
        }
        let digits = d.get(..n)?;
        if luhn_valid(digits) && known_issuer(digits) {
            return Some((start, e));
        }
    }
    None
}

fn validate_ssn(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if matches!(char_before(hay, start), Some('-' | '.' | '/' | '+')) || continues(hay, end) {
        return None;
    }
    let mut d = [0u8; 24];
    let n = digits_of(hay.get(start..end)?, &mut d);
    if n != 9 {
        return None;
    }
    let area = prefix_value(&d, 3);
    let group = prefix_value(d.get(3..)?, 2);
    let serial = prefix_value(d.get(5..)?, 4);
    let famous = (area, group, serial) == (78, 5, 1120) || (area, group, serial) == (219, 9, 9999);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 || famous {
        return None;
    }
    Some((start, end))
}

fn validate_phone(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if matches!(char_before(hay, start), Some(c) if c.is_alphanumeric() || matches!(c, '+' | '-' | '.' | '/' | '_'))
    {
        return None;
    }
    let international = hay.get(start..).is_some_and(|s| s.starts_with('+'));
    for e in group_ends(hay, start, end) {
        if continues(hay, e) {
            continue;
        }
        let s = hay.get(start..e)?;
        if s.matches('(').count() != s.matches(')').count() {
            continue;
        }
        let n = s.bytes().filter(u8::is_ascii_digit).count();
        let ok = if international {
            (8..=15).contains(&n)
        } else {
            n == 10 || n == 11
        };
        if ok {
            return Some((start, e));
        }
    }
    None
}

fn validate_ip(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let before = char_before(hay, start);
    if s.contains(':') {
        // IPv6: whole token only.
        if matches!(before, Some(c) if c.is_alphanumeric() || c == ':' || c == '.')
            || matches!(char_at(hay, end), Some(c) if c.is_alphanumeric() || c == ':')
        {
            return None;
        }
        let addr = Ipv6Addr::from_str(s).ok()?;
        let groups = s.split(':').filter(|g| !g.is_empty()).count();
        if addr.is_unspecified() || groups < 2 || !s.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some((start, end));
    }
    if before == Some('.') || continues(hay, end) {
        return None;
    }
    s.split('.')
        .all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255))
        .then_some((start, end))
}

fn validate_secret(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let upper = s.bytes().any(|b| b.is_ascii_uppercase());
    let lower = s.bytes().any(|b| b.is_ascii_lowercase());
    let other = s
        .bytes()
        .any(|b| b.is_ascii_digit() || b == b'/' || b == b'+');
    (upper && lower && other).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_31() {
        assert_eq!(PiiEntity::all().count(), 31);
        for e in PiiEntity::all() {
            assert_eq!(PiiEntity::from_name(e.name()), Some(e));
        }
        assert_eq!(PiiEntity::from_name("email"), None);
        assert!(PiiEntity::Email.is_detected());
        assert!(!PiiEntity::Name.is_detected());
    }

    #[test]
    fn luhn_and_issuers() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn_valid(&d("4111111111111111")));
        assert!(!luhn_valid(&d("4111111111111112")));
        for ok in [
            "4111111111111111",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "30569309025904",
            "3530111333300000",
            "6200000000000005",
        ] {
            assert!(known_issuer(&d(ok)) && luhn_valid(&d(ok)), "{ok}");
        }
        // Luhn-valid but no issuer uses prefix 9 / length 16 for Amex.
        assert!(!known_issuer(&d("9111111111111111")));
        assert!(!known_issuer(&d("3782822463100051")));
    }
}
