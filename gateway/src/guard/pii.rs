//! PII entity types (Bedrock's 31 names) and their detectors: regexes over normalized text,
//! each with a validator that confirms (and may narrow) a candidate. Every type has at least
//! one detector ([`PiiEntity::detectors`]).
//!
//! Three kinds of detector:
//! - **Structured, validated:** CREDIT_DEBIT_CARD_NUMBER (issuer prefix + length + Luhn),
//!   INTERNATIONAL_BANK_ACCOUNT_NUMBER (country length + mod-97), US_BANK_ROUTING_NUMBER (ABA
//!   3-7-1 checksum + Federal Reserve prefix), UK_NATIONAL_HEALTH_SERVICE_NUMBER (mod-11),
//!   CA_SOCIAL_INSURANCE_NUMBER (Luhn, first digit not 0/8), VEHICLE_IDENTIFICATION_NUMBER
//!   (check digit, or a `VIN` cue for non-North-American VINs), US_SOCIAL_SECURITY_NUMBER and
//!   US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER (area/group/serial ranges),
//!   UK_NATIONAL_INSURANCE_NUMBER (prefix rules), UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER (HMRC
//!   check digit), SWIFT_CODE (ISO country + cue or digit), IP_ADDRESS, MAC_ADDRESS, EMAIL,
//!   PHONE, URL, AWS_ACCESS_KEY.
//! - **Cue + shape:** a value is only PII next to words that say what it is: CVV, EXPIRY, PIN,
//!   PASSWORD, USERNAME, DRIVER_ID, US_PASSPORT_NUMBER, US_BANK_ACCOUNT_NUMBER,
//!   CA_HEALTH_NUMBER, AWS_SECRET_KEY, AGE, LICENSE_PLATE (plus the UK plate format), and the
//!   bare 9/10-digit forms of SSN, ITIN, SIN, NHS and routing numbers. Only the value is
//!   replaced, never the cue.
//! - **Gazetteer:** NAME (first names and surnames shipped in [`gazetteer`](super::gazetteer),
//!   plus titles and introductions such as `Mr.`/`Dr.`/`my name is`) and ADDRESS (house
//!   number + street words + a street-type suffix, optional unit, city, state and ZIP or UK
//!   postcode; `P.O. Box`).
//!
//! Patterns use ASCII classes and `(?-u:\b)`. Each detector also says where its matches can
//! start ([`Start`]: after a cue literal, at a digit or capitalised word start passing a cheap
//! shape check, before an `@` or a `:`, ...); the engine collects those candidates for all
//! detectors in one pass and runs each regex anchored at its own, which finds exactly the
//! matches a full scan would (a unit test in the engine holds this on the evaluation corpus and
//! random text). Separators inside numbers (spaces, dashes, dots, underscores) are accepted
//! where people write them; obfuscations the normaliser folds (fullwidth digits, zero-width
//! characters, confusables, `[at]`) never reach these patterns.

use std::net::Ipv6Addr;
use std::str::FromStr;

use super::gazetteer;

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
/// entity (0 = the whole match; a cue word may sit outside it), an optional validator, and
/// where a match can start ([`Start`]), so the engine runs the regex only there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detector {
    pub(crate) pattern: &'static str,
    pub(crate) group: usize,
    pub(crate) validate: Option<Validator>,
    /// Literals (ASCII, any case). With [`Start::Cue`], every match of the pattern begins with
    /// one of them; with [`Start::Scan`], at least one occurs in every text the pattern can
    /// match (the detector is skipped when none does). Empty: always run.
    pub(crate) anchors: &'static [&'static str],
    pub(crate) start: Start,
    /// After the validator rejects a match, the search resumes at its end rather than one
    /// character after its start: set where every match starting inside a rejected one is
    /// rejected too (so resuming inside would only re-read the same text).
    pub(crate) resume_at_end: bool,
}

/// A cheap necessary condition at a candidate start of the normalized bytes: which `check_*`
/// function a detector's candidates must pass. An enum rather than a function pointer, so that
/// [`Check::keep`] filters a whole candidate list with the check inlined into the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Ssn,
    Itin,
    Sin,
    Card,
    Ipv4,
    Address,
    AgeAfter,
    Swift,
    Nino,
    Vin,
    PlateUk,
    NameBare,
    Iban,
    Mac,
    Phone,
}

/// A word-start candidate's shape, computed once for every check that looks at it: how many
/// digits (for a digit start, at most 12) or upper-case letters (for an upper-case start, at
/// most 7) begin the word, times 16, plus the [class](next_class) of the byte after them.
/// (`Start::Alnum` candidates are keyed by their word's length instead, at most 31: the engine
/// computes that from the run.)
pub(crate) fn shape_key(b: &[u8], i: usize, digits: bool) -> u8 {
    let (limit, same): (usize, fn(&u8) -> bool) = if digits {
        (12, u8::is_ascii_digit)
    } else {
        (7, u8::is_ascii_uppercase)
    };
    let n = b
        .get(i..)
        .unwrap_or(&[])
        .iter()
        .take(limit)
        .take_while(|c| same(c))
        .count();
    (n as u8) << 4 | next_class(at(b, i + n))
}

/// The byte after a word's leading digits or capitals, in the classes the checks tell apart.
fn next_class(c: u8) -> u8 {
    match c {
        b' ' => 0,
        b'.' => 1,
        b'-' => 2,
        b'y' | b'Y' => 3,
        b'a'..=b'z' => 4,
        b'A'..=b'Z' => 5,
        b'0'..=b'9' => 6,
        b'_' => 7,
        _ => 15,
    }
}

impl Check {
    /// Whether a candidate with [`shape_key`] `key` may pass: a necessary condition of the
    /// check, decided without reading the text again (the engine tabulates it per key).
    pub(crate) fn admits(self, key: u8) -> bool {
        let (n, next) = (key >> 4, key & 15);
        let separator = matches!(next, 0..=2);
        match self {
            // `ddd[ .-]`.
            Check::Ssn | Check::Itin | Check::Sin => n == 3 && separator,
            // `d{1,3}\.`.
            Check::Ipv4 => (1..=3).contains(&n) && next == 1,
            // Twelve digits, or a separator (` .-_`) after the first group.
            Check::Card => n == 12 || separator || next == 7,
            // `d{1,6}[A-Za-z]?[ ]`.
            Check::Address => n <= 6 && matches!(next, 0 | 3 | 4 | 5),
            // `d{1,3}[ -]?y`.
            Check::AgeAfter => n <= 3 && matches!(next, 0 | 2 | 3),
            // Six capitals.
            Check::Swift => n >= 6,
            // Two capitals, then a digit (or a space for NINO).
            Check::Nino => n == 2 && matches!(next, 0 | 6),
            Check::PlateUk => n == 2 && next == 6,
            // One capital, then a small letter.
            Check::NameBare => n == 1 && matches!(next, 3 | 4),
            // A 17-byte word (its key is the length).
            Check::Vin => key == 17,
            Check::Iban | Check::Mac | Check::Phone => true,
        }
    }

    /// Appends to `out`, in order, the candidates of `list` that pass in `b`.
    pub(crate) fn keep(self, b: &[u8], list: &[usize], out: &mut Vec<usize>) {
        macro_rules! keep {
            ($check:ident) => {
                out.extend(list.iter().copied().filter(|&i| $check(b, i)))
            };
        }
        match self {
            Check::Ssn => keep!(check_ssn),
            Check::Itin => keep!(check_itin),
            Check::Sin => keep!(check_sin),
            Check::Card => keep!(check_card),
            Check::Ipv4 => keep!(check_ipv4),
            Check::Address => keep!(check_address),
            Check::AgeAfter => keep!(check_age_after),
            Check::Swift => keep!(check_swift),
            Check::Nino => keep!(check_nino),
            Check::Vin => keep!(check_vin),
            Check::PlateUk => keep!(check_plate_uk),
            Check::NameBare => keep!(check_name_bare),
            Check::Iban => keep!(check_iban),
            Check::Mac => keep!(check_mac),
            Check::Phone => keep!(check_phone),
        }
    }
}

/// Where a detector's matches can start. The engine's one pass over the normalized text
/// collects these positions once for all detectors, and each detector's regex runs anchored at
/// its candidates only (in order, so the leftmost match is the one found, as in a full scan).
/// Every kind must include every position a match of the pattern can start at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// Anywhere: one full scan of the regex (gated by `anchors` when non-empty).
    Scan,
    /// Exactly where one of `anchors` occurs (looked up at word starts only when the pattern
    /// begins with `\b`, see [`cues`](super::cues)).
    Cue,
    /// An ASCII word start (no ASCII word byte before) that is a digit, passing the check
    /// (its [`shape_key`] admitted first, once per word for every such detector).
    Digit(Check),
    /// An ASCII word start that is an upper-case ASCII letter, passing the check.
    Upper(Check),
    /// An ASCII word start that is a digit or an upper-case letter, passing the check.
    Alnum(Check),
    /// Two letters at a word start followed by two digits (IBAN).
    Iban,
    /// Two hex digits at a word start before a `:` or `-`, or four before a `.` (MAC).
    Mac,
    /// `+`, `(`, or a digit word start, passing [`check_phone`]. (A `1`
    /// inside a word may begin a match of the pattern, but the validator rejects a number that
    /// follows a letter, digit or `_`.)
    Phone,
    /// The first alphanumeric word start in the run of address characters before an `@`:
    /// the pattern's local part takes any run of those characters that starts with a letter or
    /// digit, so a later start in the same run matches exactly when the first one does, and
    /// ends where it ends (one attempt per `@`, however long the run).
    Email,
    /// At most 4 bytes before a `:`.
    Colon,
}

const fn det(pattern: &'static str, group: usize, validate: Validator, start: Start) -> Detector {
    Detector {
        pattern,
        group,
        validate: Some(validate),
        anchors: &[],
        start,
        resume_at_end: false,
    }
}

/// A detector whose every match begins with one of `anchors`.
const fn cue(
    pattern: &'static str,
    group: usize,
    validate: Validator,
    anchors: &'static [&'static str],
) -> Detector {
    Detector {
        pattern,
        group,
        validate: Some(validate),
        anchors,
        start: Start::Cue,
        resume_at_end: false,
    }
}

/// A detector scanned in full, only when one of `anchors` occurs somewhere as the start of a
/// word: every match must contain one of them there (after a byte that is not a letter or
/// digit).
const fn gated(
    pattern: &'static str,
    group: usize,
    validate: Validator,
    anchors: &'static [&'static str],
) -> Detector {
    Detector {
        pattern,
        group,
        validate: Some(validate),
        anchors,
        start: Start::Scan,
        resume_at_end: false,
    }
}

/// The byte at `b[i]`, or 0 past the end (a non-word byte).
pub(crate) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// An ASCII word byte, as `(?-u:\b)` counts them: a letter, digit or `_`.
pub(crate) fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether `b[i..]` begins with `shape` and then no ASCII word byte (a closing `\b`). In
/// `shape`, `d` is a digit, `s` one of ` .-`, `h` a hex digit, `:` one of `:-`; any other byte
/// stands for itself.
fn shaped(b: &[u8], i: usize, shape: &[u8]) -> bool {
    shape.iter().enumerate().all(|(k, &want)| {
        let c = at(b, i + k);
        match want {
            b'd' => c.is_ascii_digit(),
            b's' => matches!(c, b' ' | b'.' | b'-'),
            b'h' => c.is_ascii_hexdigit(),
            b':' => matches!(c, b':' | b'-'),
            _ => c == want,
        }
    }) && !is_word_byte(at(b, i + shape.len()))
}

/// `SSN`'s whole shape.
fn check_ssn(b: &[u8], i: usize) -> bool {
    shaped(b, i, b"dddsddsdddd")
}

/// `ITIN`'s whole shape.
fn check_itin(b: &[u8], i: usize) -> bool {
    at(b, i) == b'9' && check_ssn(b, i)
}

/// `SIN`'s whole shape.
fn check_sin(b: &[u8], i: usize) -> bool {
    shaped(b, i, b"dddsdddsddd")
}

/// At least `n` digits from `b[i]` on, with at most `max_gap` `gap` bytes before each (and
/// none of any other byte): the chain of digits a separated number begins with. Stops at the
/// first byte that breaks the chain.
fn digit_chain(b: &[u8], i: usize, n: usize, max_gap: usize, gap: impl Fn(u8) -> bool) -> bool {
    let mut digits = 0;
    let mut gaps = 0;
    for &c in b.get(i..).unwrap_or(&[]) {
        if c.is_ascii_digit() {
            digits += 1;
            if digits == n {
                return true;
            }
            gaps = 0;
        } else if gaps < max_gap && gap(c) {
            gaps += 1;
        } else {
            return false;
        }
    }
    false
}

/// 12 digits, each after at most three separators (`CARD` allows one of ` -._`, or ` - `).
fn check_card(b: &[u8], i: usize) -> bool {
    digit_chain(b, i, 12, 3, |c| matches!(c, b' ' | b'-' | b'.' | b'_'))
}

/// `PHONE`'s first alternative (`+` then 7 to 21 digits, with `[ .-]?` and bracketed groups:
/// at most three of `( ) . -` and space between digits) when `b[i]` is `+`; else its second (a
/// `1`, `(NNN)` or `NNN`, `NNN`, `NNNN`: 10 or 11 digits, at most two of those bytes between
/// digits).
fn check_phone(b: &[u8], i: usize) -> bool {
    let gap = |c: u8| matches!(c, b' ' | b'-' | b'.' | b'(' | b')');
    if at(b, i) == b'+' {
        digit_chain(b, i + 1, 7, 3, gap)
    } else {
        digit_chain(b, i, 10, 2, gap)
    }
}

/// `IPV4`'s whole shape: four groups of one to three digits joined by `.`.
fn check_ipv4(b: &[u8], i: usize) -> bool {
    let mut k = i;
    for group in 0..4 {
        let start = k;
        while at(b, k).is_ascii_digit() {
            k += 1;
        }
        if !(1..=3).contains(&(k - start)) {
            return false;
        }
        if group < 3 {
            if at(b, k) != b'.' {
                return false;
            }
            k += 1;
        }
    }
    !is_word_byte(at(b, k))
}

/// The street types `ADDRESS` ends with (its regex spells the same list).
const STREET_TYPES: &[&str] = &[
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Boulevard",
    "Blvd",
    "Lane",
    "Ln",
    "Drive",
    "Dr",
    "Court",
    "Ct",
    "Way",
    "Place",
    "Pl",
    "Terrace",
    "Ter",
    "Circle",
    "Cir",
    "Highway",
    "Hwy",
    "Parkway",
    "Pkwy",
    "Square",
    "Sq",
    "Trail",
    "Trl",
    "Close",
    "Crescent",
    "Row",
    "Grove",
    "Gardens",
    "Hill",
    "Walk",
    "Mews",
];

/// `[0-9]{1,6}[A-Za-z]?`, then one to four words (capitalised, with an optional `.`, or an
/// ordinal) each after one space, then a space and a street type: `ADDRESS`'s required part.
fn check_address(b: &[u8], i: usize) -> bool {
    let mut k = i;
    while at(b, k).is_ascii_digit() {
        k += 1;
    }
    if k - i > 6 {
        return false;
    }
    if at(b, k).is_ascii_alphabetic() {
        k += 1;
    }
    for word in 0..5 {
        if at(b, k) != b' ' {
            return false;
        }
        k += 1;
        let start = k;
        let first = at(b, k);
        if !(first.is_ascii_uppercase() || first.is_ascii_digit()) {
            return false;
        }
        while at(b, k).is_ascii_alphanumeric() {
            k += 1;
        }
        let run = b.get(start..k).unwrap_or(&[]);
        if word > 0 && STREET_TYPES.iter().any(|t| t.as_bytes() == run) {
            return true;
        }
        if at(b, k) == b'.' {
            k += 1;
        }
    }
    false
}

/// One to three digits, an optional space or dash, then `y`.
fn check_age_after(b: &[u8], i: usize) -> bool {
    let mut k = i;
    while at(b, k).is_ascii_digit() && k - i < 3 {
        k += 1;
    }
    if matches!(at(b, k), b' ' | b'-') {
        k += 1;
    }
    at(b, k).eq_ignore_ascii_case(&b'y')
}

fn check_mac(b: &[u8], i: usize) -> bool {
    shaped(b, i, b"hh:hh:hh:hh:hh:hh") || shaped(b, i, b"hhhh.hhhh.hhhh")
}

fn check_iban(b: &[u8], i: usize) -> bool {
    at(b, i).is_ascii_alphabetic()
        && at(b, i + 1).is_ascii_alphabetic()
        && at(b, i + 2).is_ascii_digit()
        && at(b, i + 3).is_ascii_digit()
}

fn check_swift(b: &[u8], i: usize) -> bool {
    (0..6).all(|k| at(b, i + k).is_ascii_uppercase())
}

fn check_nino(b: &[u8], i: usize) -> bool {
    at(b, i + 1).is_ascii_uppercase()
        && (at(b, i + 2).is_ascii_digit()
            || (at(b, i + 2) == b' ' && at(b, i + 3).is_ascii_digit()))
}

/// `VIN`'s whole shape: 17 of its characters, then no word byte (checked first: most
/// candidates are shorter words).
fn check_vin(b: &[u8], i: usize) -> bool {
    !is_word_byte(at(b, i + 17))
        && (0..17).all(|k| {
            let c = at(b, i + k);
            c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'O' | b'Q'))
        })
}

fn check_plate_uk(b: &[u8], i: usize) -> bool {
    at(b, i + 1).is_ascii_uppercase()
        && at(b, i + 2).is_ascii_digit()
        && at(b, i + 3).is_ascii_digit()
}

/// A capitalised word, a space, then an upper-case letter.
fn check_name_bare(b: &[u8], i: usize) -> bool {
    let mut k = i + 1;
    if !at(b, k).is_ascii_lowercase() {
        return false;
    }
    while at(b, k).is_ascii_lowercase() {
        k += 1;
    }
    at(b, k) == b' ' && at(b, k + 1).is_ascii_uppercase()
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

    /// Whether the embedded engine detects this type (all 31 do).
    pub fn is_detected(self) -> bool {
        !self.detectors().is_empty()
    }

    /// Whether the type is structured (a checksum or a strict format validates it), as opposed
    /// to contextual (found by cues and gazetteers).
    pub fn is_structured(self) -> bool {
        use PiiEntity::*;
        matches!(
            self,
            AwsAccessKey
                | CaSocialInsuranceNumber
                | CreditDebitCardNumber
                | Email
                | InternationalBankAccountNumber
                | IpAddress
                | MacAddress
                | Phone
                | SwiftCode
                | UkNationalInsuranceNumber
                | Url
                | UsSocialSecurityNumber
                | UsIndividualTaxIdentificationNumber
                | VehicleIdentificationNumber
        )
    }

    /// Whether the type's detector is generic enough that a more specific type found on the
    /// same span wins (a 3-3-4 NHS number also reads as a phone number).
    pub(crate) fn is_generic(self) -> bool {
        use PiiEntity::*;
        matches!(
            self,
            Phone | Pin | Age | UsBankAccountNumber | Username | DriverId | LicensePlate | Name
        )
    }

    pub(crate) fn detectors(self) -> &'static [Detector] {
        use PiiEntity::*;
        match self {
            Email => {
                const D: &[Detector] = &[
                    det(EMAIL, 0, validate_email, Start::Email),
                    gated(EMAIL_SPELLED, 0, validate_email, &["dot"]),
                ];
                D
            }
            Phone => {
                const D: &[Detector] = &[det(PHONE, 0, validate_phone, Start::Phone)];
                D
            }
            UsSocialSecurityNumber => {
                const D: &[Detector] = &[
                    det(SSN, 0, validate_ssn, Start::Digit(Check::Ssn)),
                    cue(SSN_CUE, 1, validate_ssn, &["ssn", "social security"]),
                ];
                D
            }
            UsIndividualTaxIdentificationNumber => {
                const D: &[Detector] = &[
                    det(ITIN, 0, validate_itin, Start::Digit(Check::Itin)),
                    cue(
                        ITIN_CUE,
                        1,
                        validate_itin,
                        &["itin", "individual taxpayer", "taxpayer", "tax payer"],
                    ),
                ];
                D
            }
            CreditDebitCardNumber => {
                const D: &[Detector] = &[det(CARD, 0, validate_card, Start::Digit(Check::Card))];
                D
            }
            CreditDebitCardCvv => {
                const D: &[Detector] = &[cue(
                    CVV,
                    1,
                    validate_digits_3_4,
                    &[
                        "cvv",
                        "cvc",
                        "cvn",
                        "cid",
                        "csc",
                        "card verification",
                        "security code",
                    ],
                )];
                D
            }
            CreditDebitCardExpiry => {
                const D: &[Detector] = &[cue(
                    EXPIRY,
                    1,
                    validate_expiry,
                    &["exp", "valid", "good thru"],
                )];
                D
            }
            IpAddress => {
                const D: &[Detector] = &[
                    det(IPV4, 0, validate_ip, Start::Digit(Check::Ipv4)),
                    det(IPV6, 0, validate_ip, Start::Colon),
                ];
                D
            }
            MacAddress => {
                const D: &[Detector] = &[det(MAC, 0, validate_mac, Start::Mac)];
                D
            }
            AwsAccessKey => {
                const D: &[Detector] = &[cue(AWS_ACCESS_KEY, 0, validate_any, &["akia", "asia"])];
                D
            }
            AwsSecretKey => {
                // "secret" may end a longer word (`client_secret`, `mysecret`): a full scan
                // (the regex's own literal prefilter), not a word-start cue.
                const D: &[Detector] = &[det(AWS_SECRET_KEY, 1, validate_secret, Start::Scan)];
                D
            }
            InternationalBankAccountNumber => {
                const D: &[Detector] = &[det(IBAN, 0, validate_iban, Start::Iban)];
                D
            }
            SwiftCode => {
                const D: &[Detector] = &[det(SWIFT, 0, validate_swift, Start::Upper(Check::Swift))];
                D
            }
            UsBankRoutingNumber => {
                const D: &[Detector] = &[cue(
                    ROUTING_CUE,
                    1,
                    validate_routing,
                    &["routing", "aba", "rtn", "transit number"],
                )];
                D
            }
            UsBankAccountNumber => {
                const D: &[Detector] = &[cue(
                    ACCOUNT_CUE,
                    1,
                    validate_account,
                    &[
                        "bank account",
                        "checking account",
                        "savings account",
                        "chequing account",
                        "deposit account",
                        "account",
                        "acct",
                        "a/c",
                    ],
                )];
                D
            }
            UkNationalHealthServiceNumber => {
                const D: &[Detector] = &[cue(
                    NHS_CUE,
                    1,
                    validate_nhs,
                    &["nhs", "national health service"],
                )];
                D
            }
            UkNationalInsuranceNumber => {
                const D: &[Detector] = &[det(NINO, 0, validate_nino, Start::Upper(Check::Nino))];
                D
            }
            UkUniqueTaxpayerReferenceNumber => {
                const D: &[Detector] = &[cue(
                    UTR_CUE,
                    1,
                    validate_utr,
                    &["utr", "unique tax", "tax reference"],
                )];
                D
            }
            CaSocialInsuranceNumber => {
                const D: &[Detector] = &[
                    det(SIN, 0, validate_sin, Start::Digit(Check::Sin)),
                    cue(
                        SIN_CUE,
                        1,
                        validate_sin,
                        &["sin", "social insurance", "nas"],
                    ),
                ];
                D
            }
            CaHealthNumber => {
                const D: &[Detector] = &[cue(
                    CA_HEALTH_CUE,
                    1,
                    validate_ca_health,
                    &[
                        "health",
                        "ohip",
                        "phn",
                        "personal health",
                        "carte soleil",
                        "ramq",
                        "msp",
                    ],
                )];
                D
            }
            VehicleIdentificationNumber => {
                const D: &[Detector] = &[det(VIN, 0, validate_vin, Start::Alnum(Check::Vin))];
                D
            }
            UsPassportNumber => {
                const D: &[Detector] = &[cue(PASSPORT_CUE, 1, validate_passport, &["passport"])];
                D
            }
            DriverId => {
                const D: &[Detector] = &[cue(
                    DRIVER_CUE,
                    1,
                    validate_has_digit,
                    &["driver", "driving", "dl"],
                )];
                D
            }
            LicensePlate => {
                const D: &[Detector] = &[
                    cue(
                        PLATE_CUE,
                        1,
                        validate_plate,
                        &[
                            "license plate",
                            "licence plate",
                            "number plate",
                            "plate",
                            "registration",
                            "reg",
                            "tag number",
                        ],
                    ),
                    det(PLATE_UK, 0, validate_any, Start::Upper(Check::PlateUk)),
                ];
                D
            }
            Url => {
                // A rejected URL (no dot, or too short, once trailing punctuation is cut) holds
                // no accepted one: a URL starting inside it ends at the same place (the same
                // run of URL characters), and is shorter, with no more dots.
                const D: &[Detector] = &[Detector {
                    resume_at_end: true,
                    ..cue(URL, 0, validate_url, &["http", "ftp", "www."])
                }];
                D
            }
            Username => {
                const D: &[Detector] = &[cue(
                    USERNAME_CUE,
                    1,
                    validate_username,
                    &[
                        "user",
                        "login",
                        "handle",
                        "screen",
                        "account name",
                        "sign in",
                        "log in",
                    ],
                )];
                D
            }
            Password => {
                const D: &[Detector] = &[cue(
                    PASSWORD_CUE,
                    1,
                    validate_password,
                    &["pass", "pwd", "pw"],
                )];
                D
            }
            Pin => {
                const D: &[Detector] = &[cue(PIN_CUE, 1, validate_pin, &["pin"])];
                D
            }
            Age => {
                const D: &[Detector] = &[
                    cue(AGE_BEFORE, 1, validate_age, &["age"]),
                    det(AGE_AFTER, 1, validate_age, Start::Digit(Check::AgeAfter)),
                ];
                D
            }
            Name => {
                const D: &[Detector] = &[
                    cue(
                        NAME_CUE,
                        1,
                        validate_name_cue,
                        &[
                            "my name",
                            "name:",
                            "named",
                            "called",
                            "i am",
                            "i'm",
                            "dear",
                            "mr",
                            "ms",
                            "miss",
                            "dr",
                            "prof",
                            "sincerely",
                            "regards",
                            "signed",
                            "thanks,",
                            "patient",
                            "customer",
                            "employee",
                            "contact",
                            "attn",
                            "from:",
                            "to:",
                        ],
                    ),
                    det(
                        NAME_BARE,
                        0,
                        validate_name_bare,
                        Start::Upper(Check::NameBare),
                    ),
                ];
                D
            }
            Address => {
                const D: &[Detector] = &[
                    det(ADDRESS, 0, validate_address, Start::Digit(Check::Address)),
                    gated(PO_BOX, 0, validate_any, &["box"]),
                ];
                D
            }
        }
    }
}

/// `local@domain.tld` (after normalisation folded `[at]`/`(dot)` spellings), or the fully
/// spelled `local [dot local] at domain dot tld` (word `at` only with at least one word `dot`
/// after it, so "look at example.com" is not an address; see [`validate_email`]).
const EMAIL: &str = concat!(
    r"(?-u:\b)[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9][A-Za-z0-9\-]*",
    r"(?:\.[A-Za-z0-9][A-Za-z0-9\-]*)*\.[A-Za-z]{2,24}(?-u:\b)",
);
/// The `dot` chains are bounded (no real address has more than a few), so one match spans
/// at most 17 words and every search over a chain of crafted `x dot x dot ...` stays linear.
const EMAIL_SPELLED: &str = concat!(
    r"(?-u:\b)[A-Za-z0-9][A-Za-z0-9._%+\-]*",
    r"(?:[ \t]{1,3}(?i:dot)[ \t]{1,3}[A-Za-z0-9][A-Za-z0-9._%+\-]*){0,7}",
    r"[ \t]{1,3}(?i:at)[ \t]{1,3}[A-Za-z0-9][A-Za-z0-9\-]*",
    r"(?:[ \t]{1,3}(?i:dot)[ \t]{1,3}[A-Za-z0-9][A-Za-z0-9\-]*){1,7}(?-u:\b)",
);

/// International (`+` then digits with single separators and parenthesised groups) or
/// North-American with separators.
const PHONE: &str = concat!(
    r"\+[0-9](?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9])){6,20}",
    r"|(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|(?-u:\b)[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}(?-u:\b)",
);

const SSN: &str = r"(?-u:\b)[0-9]{3}[ .\-][0-9]{2}[ .\-][0-9]{4}(?-u:\b)";

const CARD: &str = r"(?-u:\b)[0-9](?:(?:[ \-._]|[ ][ \-][ ])?[0-9]){11,18}(?-u:\b)";

const IPV4: &str = r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)";
const IPV6: &str = r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?";

const AWS_ACCESS_KEY: &str = r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)";

const AWS_SECRET_KEY: &str = concat!(
    r"(?i:secret)[^\n]{0,32}?[^A-Za-z0-9/+=\n]",
    r"([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)",
);

/// `9xx-7x-xxxx` (ranges checked by the validator).
const ITIN: &str = r"(?-u:\b)9[0-9]{2}[ .\-][0-9]{2}[ .\-][0-9]{4}(?-u:\b)";
const ITIN_CUE: &str = r"(?i-u:\bitin\b|\bindividual taxpayer identification(?: number)?|\btax ?payer id(?:entification)?(?: number)?)[^0-9\n]{0,16}?(9[0-9]{8})(?-u:\b)";
const SSN_CUE: &str =
    r"(?i-u:\bssn\b|\bsocial security(?: number| no\.?| #)?)[^0-9\n]{0,16}?([0-9]{9})(?-u:\b)";

const CVV: &str = r"(?i-u:\b(?:cvv2?|cvc2?|cvn|cid|csc)\b|\bcard verification (?:value|code)|\bsecurity code)[^0-9\n]{0,12}?([0-9]{3,4})(?-u:\b)";
const EXPIRY: &str = r"(?i-u:\bexp(?:iry|iration|ires|\.)?(?: date)?\b|\bvalid (?:thru|through|until)|\bgood thru)[^0-9\n]{0,12}?((?:0?[1-9]|1[0-2])[ ]?[/\-][ ]?(?:20)?[0-9]{2})(?-u:\b)";

const MAC: &str = r"(?-u:\b)[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}(?-u:\b)|(?-u:\b)[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?-u:\b)";

const IBAN: &str = r"(?-u:\b)[A-Za-z]{2}[0-9]{2}(?:[ \-]?[A-Za-z0-9]){11,30}(?-u:\b)";
const SWIFT: &str = r"(?-u:\b)[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?-u:\b)";

const ROUTING_CUE: &str = r"(?i-u:\brouting(?: and transit)?(?: number| no\.?| #|#)?|\baba(?: routing)?(?: number| no\.?| #|#)?|\brtn\b|\btransit number)[^0-9\n]{0,16}?([0-9]{9})(?-u:\b)";
const ACCOUNT_CUE: &str = r"(?i-u:\b(?:bank |checking |savings |chequing |deposit )?account(?: number| no\.?| #|#)|\bacct\.?(?: number| no\.?| #|#)?|\ba/c(?: no\.?)?)[^0-9\n]{0,16}?([0-9](?:[ \-]?[0-9]){5,16})(?-u:\b)";

const NHS_CUE: &str = r"(?i-u:\bnhs(?: number| no\.?| #|#)?|\bnational health service(?: number| no\.?)?)[^0-9\n]{0,16}?([0-9]{3}[ .\-]?[0-9]{3}[ .\-]?[0-9]{4})(?-u:\b)";
const NINO: &str = r"(?-u:\b)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-D](?-u:\b)";
const UTR_CUE: &str = r"(?i-u:\butr\b|\bunique tax ?payer reference(?: number)?|\btax reference(?: number)?)[^0-9\n]{0,16}?([0-9]{5}[ ]?[0-9]{5}K?)(?-u:\b)";

const SIN: &str = r"(?-u:\b)[0-9]{3}[ .\-][0-9]{3}[ .\-][0-9]{3}(?-u:\b)";
const SIN_CUE: &str = r"(?i-u:\bsin\b|\bsocial insurance(?: number| no\.?)?|\bnas\b)[^0-9\n]{0,16}?([0-9]{9})(?-u:\b)";
const CA_HEALTH_CUE: &str = r"(?i-u:\bhealth (?:card|insurance|care)(?: number| no\.?| #|#)?|\bohip(?: number| no\.?| #|#)?|\bphn\b|\bpersonal health number|\bhealth number|\bcarte soleil|\bramq\b|\bmsp(?: number)?)[^A-Za-z0-9\n]{0,16}?(?:(?i-u:is|was|reads|shows|=)[ ]+)?([0-9]{4}[ \-]?[0-9]{3}[ \-]?[0-9]{3}(?:[ \-]?[A-Z]{2})?|[A-Z]{4}[ ]?[0-9]{4}[ ]?[0-9]{4})(?-u:\b)";

const VIN: &str = r"(?-u:\b)[A-HJ-NPR-Z0-9]{17}(?-u:\b)";
const PASSPORT_CUE: &str = r"(?i-u:\bpassport(?: number| no\.?| #|#| id)?)[^A-Za-z0-9\n]{0,16}?(?:(?i-u:is|was|reads|shows|=)[ ]+)?([A-Z]?[0-9]{8,9})(?-u:\b)";
const DRIVER_CUE: &str = r"(?i-u:\bdriver'?s?'? ?licen[cs]e(?: number| no\.?| #|#| id)?|\bdriving licen[cs]e(?: number| no\.?)?|\bdl ?(?:#|no\.?|number)|\bdriver id)[^A-Za-z0-9\n]{0,16}?(?:(?i-u:is|was|reads|shows|=)[ ]+)?([A-Za-z0-9][A-Za-z0-9\-]{4,19})(?-u:\b)";
const PLATE_CUE: &str = r"(?i-u:\blicen[cs]e plate(?: number| no\.?)?|\bnumber plate|\bplate(?: number| no\.?| #)|\bregistration(?: number| plate| no\.?)|\breg\.? ?(?:no\.?|number)|\btag number)[^A-Za-z0-9\n]{0,16}?(?:(?i-u:is|was|reads|shows|=)[ ]+)?([A-Z0-9]{1,4}[ \-]?[A-Z0-9]{1,5})(?-u:\b)";
const PLATE_UK: &str = r"(?-u:\b)[A-Z]{2}[0-9]{2}[ ]?[A-Z]{3}(?-u:\b)";

const URL: &str = r"(?i-u:\b(?:https?|ftp)://)[^\s<>\x22'`]+|(?i-u:\bwww\.)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?:[/?#][^\s<>\x22'`]*)?";
const USERNAME_CUE: &str = r"(?i-u:\buser ?name|\buser ?id|\blogin(?: name| id)?|\bhandle|\bscreen ?name|\baccount name|\bsign in as|\blog in as)[ \t]*(?:(?i-u:is)[ \t]+|[:=\-][ \t]*|[ \t])['\x22]?(@?[A-Za-z0-9][A-Za-z0-9._\-]{2,31})(?-u:\b)";
const PASSWORD_CUE: &str = r"(?i-u:\bpass(?:word|wd|code|phrase| phrase)|\bpwd\b|\bpw\b)[ \t]*(?:(?i-u:is)[ \t]+|[:=][ \t]*|[ \t]+)['\x22]?([^\s'\x22]{4,64})";
const PIN_CUE: &str = r"(?i-u:\bpin(?: code| number|#)?)[ \t]*(?:(?i-u:is)[ \t]+|[:=#][ \t]*|[ \t]+)([0-9]{4,8})(?-u:\b)";

const AGE_BEFORE: &str = r"(?i-u:\baged?\b|\bage:|\bage is|\bage of)[ \t]*([0-9]{1,3})(?-u:\b)";
const AGE_AFTER: &str = r"(?-u:\b)([0-9]{1,3})(?i-u:[ \-]?(?:years?|yrs?)[ \-]old\b|[ \-]year[ \-]old|[ ]?y/o\b|[ ]?yo\b)";

/// A title or an introduction, then one to three capitalised words.
const NAME_CUE: &str = r"(?i-u:\bmy name is|\bmy name's|\bname:|\bnamed|\bcalled|\bi am|\bi'm|\bdear|\bmr\.?|\bmrs\.?|\bms\.?|\bmiss|\bdr\.?|\bprof\.?|\bsincerely,?|\bregards,?|\bsigned,?|\bthanks,|\bpatient|\bcustomer|\bemployee|\bcontact|\battn:?|\bfrom:|\bto:)[ \t]+([A-Z][a-z]+(?:[ \t][A-Z][a-z]+(?:-[A-Z][a-z]+)?){0,2})(?-u:\b)";
/// Two or three capitalised words: a name when the first is a known first name (see
/// [`validate_name_bare`]).
const NAME_BARE: &str = r"(?-u:\b)[A-Z][a-z]+(?:[ ](?:[A-Z]\.|[A-Z][a-z]+(?:-[A-Z][a-z]+)?|(?:Mc|Mac|O')[A-Z][a-z]+)){1,2}(?-u:\b)";

const ADDRESS: &str = concat!(
    r"(?-u:\b)[0-9]{1,6}[A-Za-z]?(?:[ ](?:[A-Z][A-Za-z]*\.?|[0-9]{1,3}(?:st|nd|rd|th))){1,4}[ ]",
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl|Close|Crescent|Row|Grove|Gardens|Hill|Walk|Mews)\.?(?-u:\b)",
    r"(?:,?[ ](?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?[ ]?#?[0-9A-Za-z\-]{1,6})?",
    r"(?:,[ ][A-Z][A-Za-z]+(?:[ ][A-Z][A-Za-z]+){0,2}",
    r"(?:,?[ ](?:[A-Z]{2}[ ][0-9]{5}(?:-[0-9]{4})?|[A-Z]{1,2}[0-9][0-9A-Z]?[ ][0-9][A-Z]{2}|[A-Z]{2}(?-u:\b)))?)?"
);
const PO_BOX: &str = r"(?i-u:\bp\.? ?o\.? box|\bpost office box)[ ]?[0-9]{1,6}(?-u:\b)";
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
    // Every known issuer's numbers begin with 2 to 6 (see `known_issuer`).
    if !matches!(hay.as_bytes().get(start), Some(b'2'..=b'6')) {
        return None;
    }
    if matches!(char_before(hay, start), Some(c) if c.is_alphanumeric() || matches!(c, '-' | '.' | '+' | '/'))
    {
        return None;
    }
    // The match's digits, read once; each group end then takes a prefix of them.
    let mut d = [0u8; 24];
    let total = digits_of(hay.get(start..end)?, &mut d);
    let mut n = total;
    let mut cursor = end;
    for e in group_ends(hay, start, end) {
        // Ends descend: drop the digits between this end and the last one.
        n = n.saturating_sub(
            hay.as_bytes()
                .get(e..cursor)
                .map_or(0, |r| r.iter().filter(|b| b.is_ascii_digit()).count()),
        );
        cursor = e;
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

fn validate_any(_hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    Some((start, end))
}

/// The up-to-`window` bytes before `at`, lower-cased (a cue search window).
fn before_lower(hay: &str, at: usize, window: usize) -> String {
    let mut from = at.saturating_sub(window);
    while from > 0 && !hay.is_char_boundary(from) {
        from -= 1;
    }
    hay.get(from..at).unwrap_or("").to_ascii_lowercase()
}

fn has_cue(hay: &str, at: usize, window: usize, cues: &[&str]) -> bool {
    let b = before_lower(hay, at, window);
    cues.iter().any(|c| b.contains(c))
}

fn digit_vec(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The value is a whole token: no letter, digit or joining punctuation right before or after.
fn isolated(hay: &str, start: usize, end: usize) -> bool {
    !matches!(char_before(hay, start), Some(c) if c.is_alphanumeric() || matches!(c, '-' | '.' | '/' | '+' | '_'))
        && !continues(hay, end)
}

fn validate_digits_3_4(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let n = hay.get(start..end)?.len();
    ((3..=4).contains(&n) && !continues(hay, end)).then_some((start, end))
}

fn validate_expiry(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let month: u32 = s.split(['/', '-']).next()?.trim().parse().ok()?;
    ((1..=12).contains(&month) && !continues(hay, end)).then_some((start, end))
}

fn validate_itin(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if !isolated(hay, start, end) {
        return None;
    }
    let d = digit_vec(hay.get(start..end)?);
    if d.len() != 9 || d.first() != Some(&9) {
        return None;
    }
    let group = prefix_value(d.get(3..)?, 2);
    let ok = (50..=65).contains(&group)
        || (70..=88).contains(&group)
        || (90..=92).contains(&group)
        || (94..=99).contains(&group);
    ok.then_some((start, end))
}

fn validate_mac(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    if matches!(char_before(hay, start), Some(c) if c.is_alphanumeric() || c == ':' || c == '-' || c == '.')
        || matches!(char_at(hay, end), Some(c) if c.is_alphanumeric() || c == ':' || c == '-')
    {
        return None;
    }
    // One separator kind throughout; not all zeros or all F (placeholders).
    let seps: Vec<char> = s.chars().filter(|c| !c.is_ascii_hexdigit()).collect();
    if seps.windows(2).any(|w| w.first() != w.last()) {
        return None;
    }
    let hex: String = s.chars().filter(char::is_ascii_hexdigit).collect();
    if hex.bytes().all(|b| b == b'0') || hex.bytes().all(|b| b == b'f' || b == b'F') {
        return None;
    }
    Some((start, end))
}

/// IBAN lengths by country (ISO 13616 registry, as python-stdnum ships it).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

pub(crate) fn iban_valid(compact: &str) -> bool {
    let upper = compact.to_ascii_uppercase();
    let Some(cc) = upper.get(..2) else {
        return false;
    };
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc) else {
        return false;
    };
    if upper.len() != len || !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, tail) = upper.split_at(4);
    let mut rem: u32 = 0;
    for b in tail.bytes().chain(head.bytes()) {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn validate_iban(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if matches!(char_before(hay, start), Some(c) if c.is_alphanumeric()) {
        return None;
    }
    // Longest first: the pattern may run into a following word ("... 32 IS mine").
    let bytes = hay.as_bytes();
    let mut e = end;
    loop {
        let s = hay.get(start..e)?;
        let compact: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if compact.len() < 15 {
            return None;
        }
        if iban_valid(&compact) && !matches!(char_at(hay, e), Some(c) if c.is_alphanumeric()) {
            return Some((start, e));
        }
        // Back off to the previous separator.
        let mut k = e - 1;
        while k > start && !matches!(bytes.get(k), Some(b' ' | b'-')) {
            k -= 1;
        }
        if k <= start {
            return None;
        }
        e = k;
    }
}

/// ISO 3166 alpha-2 codes (SWIFT/BIC country part).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

fn validate_swift(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let cc = s.get(4..6)?;
    if !COUNTRIES.split(' ').any(|c| c == cc) {
        return None;
    }
    let digit = s.get(6..)?.bytes().any(|b| b.is_ascii_digit());
    let cue = has_cue(
        hay,
        start,
        48,
        &["swift", "bic", "bank identifier", "bank code"],
    );
    (cue || (digit && s.len() >= 8)).then_some((start, end))
}

pub(crate) fn aba_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    let prefix = prefix_value(d, 2);
    let prefix_ok =
        prefix <= 12 || (21..=32).contains(&prefix) || (61..=72).contains(&prefix) || prefix == 80;
    sum.is_multiple_of(10) && prefix_ok
}

fn validate_routing(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let d = digit_vec(hay.get(start..end)?);
    (aba_valid(&d) && !continues(hay, end)).then_some((start, end))
}

fn validate_account(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let n = digit_vec(hay.get(start..end)?).len();
    ((6..=17).contains(&n) && !continues(hay, end)).then_some((start, end))
}

pub(crate) fn nhs_valid(d: &[u8]) -> bool {
    d.len() == 10
        && d.iter()
            .rev()
            .enumerate()
            .map(|(i, &x)| (i as u32 + 1) * u32::from(x))
            .sum::<u32>()
            .is_multiple_of(11)
}

fn validate_nhs(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let d = digit_vec(hay.get(start..end)?);
    (nhs_valid(&d) && !continues(hay, end)).then_some((start, end))
}

fn validate_nino(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let prefix = s.get(..2)?;
    if matches!(prefix, "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ") {
        return None;
    }
    Some((start, end))
}

pub(crate) fn utr_valid(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let w = [6u32, 7, 8, 9, 10, 5, 4, 3, 2];
    let sum: u32 = d
        .iter()
        .skip(1)
        .zip(w)
        .map(|(&x, w)| u32::from(x) * w)
        .sum();
    let check = b"21987654321".get((sum % 11) as usize).map(|c| c - b'0');
    check == d.first().copied()
}

fn validate_utr(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let d = digit_vec(hay.get(start..end)?);
    (utr_valid(&d) && !continues(hay, end)).then_some((start, end))
}

pub(crate) fn sin_valid(d: &[u8]) -> bool {
    d.len() == 9 && !matches!(d.first(), Some(0 | 8)) && luhn_valid(d)
}

fn validate_sin(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if !isolated(hay, start, end) {
        return None;
    }
    let s = hay.get(start..end)?;
    // Dotted 3-3-3 is also how much of Europe writes 179.446.935: only with a cue.
    if s.contains('.') && !has_cue(hay, start, 48, &["sin", "social insurance", "nas"]) {
        return None;
    }
    let d = digit_vec(s);
    sin_valid(&d).then_some((start, end))
}

fn validate_ca_health(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let n = digit_vec(s).len();
    ((n == 10 || n == 8) && !continues(hay, end)).then_some((start, end))
}

pub(crate) fn vin_check_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 17 {
        return false;
    }
    let value = |c: u8| -> u32 {
        match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A' | b'J' => 1,
            b'B' | b'K' | b'S' => 2,
            b'C' | b'L' | b'T' => 3,
            b'D' | b'M' | b'U' => 4,
            b'E' | b'N' | b'V' => 5,
            b'F' | b'W' => 6,
            b'G' | b'P' | b'X' => 7,
            b'H' | b'Y' => 8,
            b'R' | b'Z' => 9,
            _ => 0,
        }
    };
    let w = [8u32, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let sum: u32 = b.iter().zip(w).map(|(&c, w)| value(c) * w).sum();
    let check = match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    };
    b.get(8) == Some(&check)
}

fn validate_vin(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if digits < 3 || digits == 17 {
        return None;
    }
    (vin_check_ok(s)
        || has_cue(
            hay,
            start,
            32,
            &["vin", "vehicle identification", "chassis"],
        ))
    .then_some((start, end))
}

fn validate_passport(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let n = digit_vec(s).len();
    let letter = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    let ok = (letter && n == 8) || (!letter && n == 9);
    (ok && !continues(hay, end)).then_some((start, end))
}

fn validate_has_digit(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    s.bytes()
        .any(|b| b.is_ascii_digit())
        .then_some((start, end))
}

fn validate_plate(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let alnum = s.bytes().filter(u8::is_ascii_alphanumeric).count();
    ((2..=8).contains(&alnum) && s.bytes().any(|b| b.is_ascii_digit())).then_some((start, end))
}

fn validate_url(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    // Looked up once: the trimmed tail never holds a `(`, so it is the same for every cut.
    let opened = s.contains('(');
    let mut e = end;
    for c in s.chars().rev() {
        if matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}') {
            // A closing bracket stays when the URL opened one.
            if c == ')' && opened {
                break;
            }
            e -= c.len_utf8();
        } else {
            break;
        }
    }
    let host = hay.get(start..e)?;
    (host.len() > 8 && host.contains('.')).then_some((start, e))
}

fn validate_username(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "and" | "the" | "for" | "with" | "was" | "are" | "has" | "not" | "field" | "and password"
    ) {
        return None;
    }
    Some((start, end))
}

fn validate_password(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    // Trailing sentence punctuation is not part of it.
    let trimmed = s.trim_end_matches(['.', ',', ';', '!', '?', ')']);
    let e = start + trimmed.len();
    if trimmed.chars().count() < 4 {
        return None;
    }
    let quoted = matches!(char_before(hay, start), Some('\'' | '"'));
    let letters = trimmed.bytes().any(|b| b.is_ascii_alphabetic());
    let digit = trimmed.bytes().any(|b| b.is_ascii_digit());
    let symbol = trimmed.bytes().any(|b| b.is_ascii_punctuation());
    let upper_inside = trimmed.bytes().skip(1).any(|b| b.is_ascii_uppercase());
    let lower = trimmed.bytes().any(|b| b.is_ascii_lowercase());
    let strong = (letters && (digit || symbol)) || (upper_inside && lower);
    (quoted || strong).then_some((start, e))
}

fn validate_pin(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    (!continues(hay, end)).then_some((start, end))
}

fn validate_age(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let v: u32 = hay.get(start..end)?.parse().ok()?;
    ((1..=130).contains(&v)
        && !matches!(char_before(hay, start), Some(c) if c.is_ascii_digit() || c == '.'))
    .then_some((start, end))
}

/// Words of a capitalised run, e.g. `["John", "Smith"]`.
fn name_words(s: &str) -> Vec<&str> {
    s.split([' ', '\t']).filter(|w| !w.is_empty()).collect()
}

fn validate_name_cue(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let words = name_words(s);
    let first = *words.first()?;
    if gazetteer::is_common_capitalised(first) {
        return None;
    }
    // Strong cues accept any capitalised name; weak ones ("I am", "contact") need a known
    // first name or surname.
    let b = before_lower(hay, start, 24);
    let b = b.trim_end();
    let weak = [
        "i am", "i'm", "contact", "customer", "employee", "patient", "to:", "from:", "called",
        "named", "thanks,",
    ]
    .iter()
    .any(|c| b.ends_with(c));
    let known = gazetteer::is_first_name(first) || words.iter().any(|w| gazetteer::is_surname(w));
    if weak && !known {
        return None;
    }
    // Keep only the leading run of name-like words.
    let mut e = start + first.len();
    let mut offset = first.len();
    for w in words.iter().skip(1) {
        let at = s.get(offset..)?.find(w)? + offset;
        if gazetteer::is_common_capitalised(w) {
            break;
        }
        offset = at + w.len();
        e = start + offset;
    }
    Some((start, e))
}

fn validate_name_bare(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = hay.get(start..end)?;
    let words = name_words(s);
    let first = *words.first()?;
    let second = *words.get(1)?;
    if !gazetteer::is_first_name(first) || gazetteer::is_common_capitalised(second) {
        return None;
    }
    if gazetteer::is_ambiguous_first_name(first) && !gazetteer::is_surname(second) {
        return None;
    }
    let mut e = start + s.find(second)? + second.len();
    if let Some(third) = words.get(2)
        && !gazetteer::is_common_capitalised(third)
        && (second.ends_with('.') || gazetteer::is_surname(third))
    {
        e = start + s.rfind(third)? + third.len();
    }
    Some((start, e))
}

fn validate_address(hay: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    if matches!(char_before(hay, start), Some(c) if c.is_alphanumeric() || c == '.' || c == '-' || c == '$')
    {
        return None;
    }
    Some((start, end))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn street_types_are_the_address_patterns_list() {
        let alternation = format!("[ ](?:{})\\.?", STREET_TYPES.join("|"));
        assert!(ADDRESS.contains(&alternation), "{alternation}");
    }

    #[test]
    fn names_round_trip_and_are_31() {
        assert_eq!(PiiEntity::all().count(), 31);
        for e in PiiEntity::all() {
            assert_eq!(PiiEntity::from_name(e.name()), Some(e));
        }
        assert_eq!(PiiEntity::from_name("email"), None);
        assert!(PiiEntity::Email.is_detected());
        assert!(PiiEntity::all().all(PiiEntity::is_detected));
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
