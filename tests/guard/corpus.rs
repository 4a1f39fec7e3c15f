//! A fixed-seed evaluation corpus for the guardrail engine: every Bedrock PII type in varied
//! templates (values generated valid: Luhn, mod-97, ABA, mod-11, VIN check digit, ...), the
//! same samples under each obfuscation the engine claims to see through, and benign text full
//! of look-alikes (order ids, versions, dates, invalid Luhn numbers, hashes, prices, capitalised
//! non-names). Shared by `tests/guard_corpus.rs` (recall / false positives) and
//! `gateway/benches/guard.rs` (throughput), included by path.

#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    reason = "generated values are valid by construction; a test helper fails loudly"
)]

/// splitmix64: small, fast, fixed-seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    pub fn upper(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'A' + self.below(26) as u8))
            .collect()
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One labelled sample: `text` contains `value`, which is PII of `entity`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub entity: &'static str,
    pub text: String,
    pub value: String,
}

fn luhn_check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let y = d * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn digits_of(s: &str) -> Vec<u8> {
    s.bytes().map(|b| b - b'0').collect()
}

fn to_string(d: &[u8]) -> String {
    d.iter().map(|x| char::from(b'0' + x)).collect()
}

fn with_luhn(prefix: &str, len: usize, rng: &mut Rng) -> String {
    let mut body = digits_of(prefix);
    while body.len() < len - 1 {
        body.push(rng.below(10) as u8);
    }
    let c = luhn_check_digit(&body);
    body.push(c);
    to_string(&body)
}

fn group(s: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    for &n in sizes {
        if i >= s.len() {
            break;
        }
        let e = (i + n).min(s.len());
        out.push(&s[i..e]);
        i = e;
    }
    if i < s.len() {
        out.push(&s[i..]);
    }
    out.join(sep)
}

pub fn card(rng: &mut Rng) -> String {
    let (prefix, len, groups): (&str, usize, &[usize]) = match rng.below(4) {
        0 => ("4", 16, &[4, 4, 4, 4]),
        1 => (
            *rng.pick(&["51", "52", "53", "54", "55"]),
            16,
            &[4, 4, 4, 4],
        ),
        2 => (*rng.pick(&["34", "37"]), 15, &[4, 6, 5]),
        _ => ("6011", 16, &[4, 4, 4, 4]),
    };
    let n = with_luhn(prefix, len, rng);
    match rng.below(3) {
        0 => n,
        1 => group(&n, groups, " "),
        _ => group(&n, groups, "-"),
    }
}

fn iban(rng: &mut Rng) -> String {
    let (cc, bban) = match rng.below(3) {
        0 => ("GB", format!("{}{}", rng.upper(4), rng.digits(14))),
        1 => ("DE", rng.digits(18)),
        _ => (
            "FR",
            format!("{}{}{:02}", rng.digits(10), rng.digits(11), rng.below(97)),
        ),
    };
    // Check digits: 98 - (bban + cc + "00") mod 97.
    let rearranged = format!("{bban}{cc}00");
    let mut rem: u64 = 0;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap() as u64;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    let check = 98 - rem;
    let compact = format!("{cc}{check:02}{bban}");
    if rng.chance(60) {
        group(&compact, &[4; 9], " ")
    } else {
        compact
    }
}

fn aba(rng: &mut Rng) -> String {
    let prefix = *rng.pick(&[
        "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "21", "22", "26",
        "31", "32",
    ]);
    let mut d = digits_of(&format!("{prefix}{}", rng.digits(6)));
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7];
    let s: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    d.push(((10 - s % 10) % 10) as u8);
    to_string(&d)
}

fn nhs(rng: &mut Rng) -> String {
    loop {
        let mut d = digits_of(&rng.digits(9));
        let s: u32 = d
            .iter()
            .enumerate()
            .map(|(i, &x)| (10 - i as u32) * u32::from(x))
            .sum();
        let c = 11 - s % 11;
        if c == 10 {
            continue;
        }
        d.push(if c == 11 { 0 } else { c as u8 });
        let n = to_string(&d);
        return if rng.chance(70) {
            group(&n, &[3, 3, 4], " ")
        } else {
            n
        };
    }
}

fn utr(rng: &mut Rng) -> String {
    let rest = digits_of(&rng.digits(9));
    let w = [6u32, 7, 8, 9, 10, 5, 4, 3, 2];
    let s: u32 = rest.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    let check = b"21987654321"[(s % 11) as usize] - b'0';
    format!("{check}{}", to_string(&rest))
}

fn sin(rng: &mut Rng) -> String {
    let first = *rng.pick(&["1", "2", "3", "4", "5", "6", "7", "9"]);
    let n = with_luhn(first, 9, rng);
    group(&n, &[3, 3, 3], rng.pick::<&str>(&[" ", "-"]))
}

fn vin(rng: &mut Rng) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    loop {
        let mut v: Vec<u8> = (0..17).map(|_| *rng.pick(ALPHA)).collect();
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
                _ => 9,
            }
        };
        let w = [8u32, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
        let s: u32 = v.iter().zip(w).map(|(&c, w)| value(c) * w).sum();
        v[8] = match s % 11 {
            10 => b'X',
            r => b'0' + r as u8,
        };
        if v.iter().filter(|c| c.is_ascii_digit()).count() >= 3 {
            return String::from_utf8(v).unwrap();
        }
    }
}

fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = 1 + rng.below(899);
        if a != 666 {
            break a;
        }
    };
    let g = 1 + rng.below(99);
    let s = 1 + rng.below(9999);
    let sep = *rng.pick(&["-", " "]);
    format!("{area:03}{sep}{g:02}{sep}{s:04}")
}

fn itin(rng: &mut Rng) -> String {
    let group = *rng.pick(&[70, 75, 78, 80, 85, 88, 90, 92, 94, 99, 50, 65]);
    format!("9{}-{group:02}-{}", rng.digits(2), rng.digits(4))
}

fn phone(rng: &mut Rng) -> String {
    let area = format!("{}{}", 2 + rng.below(8), rng.digits(2));
    let ex = format!("{}{}", 2 + rng.below(8), rng.digits(2));
    let line = rng.digits(4);
    match rng.below(5) {
        0 => format!("({area}) {ex}-{line}"),
        1 => format!("{area}-{ex}-{line}"),
        2 => format!("+1 {area} {ex} {line}"),
        3 => format!("+44 20 {} {}", rng.digits(4), rng.digits(4)),
        _ => format!("{area}.{ex}.{line}"),
    }
}

fn swift(rng: &mut Rng) -> String {
    let cc = *rng.pick(&["US", "GB", "DE", "FR", "CH", "JP", "CA"]);
    let loc = format!("{}{}", rng.upper(1), rng.digits(1));
    let branch = if rng.chance(50) {
        rng.upper(3)
    } else {
        String::new()
    };
    format!("{}{cc}{loc}{branch}", rng.upper(4))
}

fn nino(rng: &mut Rng) -> String {
    let first = *rng.pick(&[
        "A", "B", "C", "E", "H", "J", "K", "L", "M", "P", "R", "S", "T", "W", "Y",
    ]);
    let second = *rng.pick(&[
        "A", "B", "C", "E", "H", "J", "K", "L", "M", "P", "R", "S", "W", "X", "Y",
    ]);
    let suffix = *rng.pick(&["A", "B", "C", "D"]);
    let d = rng.digits(6);
    if rng.chance(50) {
        format!(
            "{first}{second} {} {} {} {suffix}",
            &d[0..2],
            &d[2..4],
            &d[4..6]
        )
    } else {
        format!("{first}{second}{d}{suffix}")
    }
}

const FIRST: &[&str] = &[
    "Maria", "James", "Priya", "Wei", "Fatima", "Oliver", "Sofia", "Hiroshi", "Amir", "Elena",
    "Daniel", "Grace", "Carlos", "Aisha", "Thomas", "Ana", "David", "Chloe", "Ivan", "Laura",
];
const LAST: &[&str] = &[
    "Gonzalez", "Smith", "Patel", "Chen", "Khan", "Brown", "Garcia", "Tanaka", "Ali", "Rossi",
    "Nguyen", "Kowalski", "Okafor", "Johnson", "Schmidt", "Silva", "Murphy", "Ivanov", "Dubois",
    "Lee",
];
/// Surnames outside the shipped gazetteer (found by cue only).
const RARE_LAST: &[&str] = &[
    "Adebayo",
    "Zhukova",
    "Thorsdottir",
    "Mbeki",
    "Castellanos",
    "Vukovic",
    "Haraldsen",
];
const STREETS: &[&str] = &[
    "Main",
    "Oak",
    "Maple",
    "Elm",
    "Cedar Hill",
    "Sunset",
    "Park",
    "Lake View",
    "High",
    "Church",
    "Mill",
    "Washington",
];
const SUFFIXES: &[&str] = &[
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Boulevard",
    "Lane",
    "Drive",
    "Court",
    "Way",
    "Place",
];
const CITIES: &[(&str, &str)] = &[
    ("Springfield", "IL"),
    ("Austin", "TX"),
    ("Portland", "OR"),
    ("Boston", "MA"),
    ("Denver", "CO"),
    ("Seattle", "WA"),
];

fn address(rng: &mut Rng) -> String {
    let n = 1 + rng.below(9899);
    let street = rng.pick(STREETS);
    let suffix = rng.pick(SUFFIXES);
    let (city, st) = rng.pick(CITIES);
    match rng.below(3) {
        0 => format!("{n} {street} {suffix}"),
        1 => format!("{n} {street} {suffix}, {city}, {st} {}", rng.digits(5)),
        _ => format!("{n} {street} {suffix}, Apt {}, {city}", 1 + rng.below(40)),
    }
}

fn password(rng: &mut Rng) -> String {
    let words = ["Tiger", "blue", "Moon", "river", "Falcon", "green"];
    format!(
        "{}{}{}{}",
        rng.pick(&words),
        rng.digits(2),
        rng.pick(&["!", "#", "$", "&", "_"]),
        rng.pick(&words).to_lowercase()
    )
}

fn username(rng: &mut Rng) -> String {
    let a = rng.pick(FIRST).to_lowercase();
    match rng.below(3) {
        0 => format!("{a}{}", rng.digits(3)),
        1 => format!("{a}_{}", rng.pick(LAST).to_lowercase()),
        _ => format!("{a}.{}", rng.digits(2)),
    }
}

fn secret_key(rng: &mut Rng) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";
    loop {
        let s: String = (0..40).map(|_| char::from(*rng.pick(A))).collect();
        if s.bytes().any(|b| b.is_ascii_uppercase())
            && s.bytes().any(|b| b.is_ascii_lowercase())
            && s.bytes().any(|b| b.is_ascii_digit())
        {
            return s;
        }
    }
}

/// (entity, templates with `{}` for the value), and the value generator.
fn templates(entity: &str) -> &'static [&'static str] {
    match entity {
        "ADDRESS" => &[
            "Please ship the order to {} by Friday.",
            "Our new office is at {}.",
            "Send the invoice to {} and copy finance.",
            "She moved to {} last year.",
        ],
        "AGE" => &[
            "The patient is {} years old and stable.",
            "I am {} years old.",
            "Applicant aged {} applied yesterday.",
            "Age: {}",
            "My son just turned {} years old.",
        ],
        "AWS_ACCESS_KEY" => &[
            "Use access key {} for the job.",
            "AWS_ACCESS_KEY_ID={}",
            "the key {} leaked in the logs",
        ],
        "AWS_SECRET_KEY" => &[
            "aws_secret_access_key = {}",
            "My secret key is {} please rotate it.",
            "secret: {}",
        ],
        "CA_HEALTH_NUMBER" => &[
            "My OHIP number is {}.",
            "Health card number: {} on file.",
            "health number {} for the clinic",
        ],
        "CA_SOCIAL_INSURANCE_NUMBER" => &[
            "SIN {} was verified.",
            "My social insurance number is {}.",
            "Employee SIN: {}",
            "Please update record {} in payroll.",
        ],
        "CREDIT_DEBIT_CARD_CVV" => &[
            "The CVV is {}.",
            "security code: {} on the back",
            "CVC {} expires soon",
        ],
        "CREDIT_DEBIT_CARD_EXPIRY" => &[
            "The card expires {}.",
            "exp date {} on the front",
            "valid thru {}",
        ],
        "CREDIT_DEBIT_CARD_NUMBER" => &[
            "Charge {} for the renewal.",
            "My card is {}.",
            "Use {} and bill the company.",
            "card number: {}",
        ],
        "DRIVER_ID" => &[
            "My driver's license number is {}.",
            "DL# {} issued in 2019",
            "driver license {} was scanned",
        ],
        "EMAIL" => &[
            "Email me at {} tomorrow.",
            "Contact: {}",
            "Forward it to {} please.",
            "reply to {}, thanks",
        ],
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER" => &[
            "Wire it to IBAN {} today.",
            "My account is {}.",
            "Beneficiary: {} (ACME Ltd)",
        ],
        "IP_ADDRESS" => &[
            "The server at {} is down.",
            "Block traffic from {} now.",
            "ssh into {} and restart it",
        ],
        "LICENSE_PLATE" => &[
            "The license plate was {}.",
            "plate number {} parked outside",
            "registration number {} renewed",
        ],
        "MAC_ADDRESS" => &[
            "Device MAC {} joined the network.",
            "whitelist {} on the router",
            "NIC {} is flapping",
        ],
        "NAME" => &[
            "Please call {} tomorrow.",
            "My name is {}.",
            "Dear {}, thanks for writing.",
            "Meeting notes taken by {} and shared.",
            "Dr. {} will review it.",
        ],
        "PASSWORD" => &[
            "My password is {} for the portal.",
            "password: {}",
            "the wifi passphrase is {}",
        ],
        "PHONE" => &[
            "Call me at {} after 5.",
            "My number is {}.",
            "Phone: {}",
            "reach the desk on {} anytime",
        ],
        "PIN" => &[
            "My PIN is {}.",
            "pin code: {} for the door",
            "Enter PIN {} at the ATM",
        ],
        "SWIFT_CODE" => &[
            "SWIFT code {} for the transfer.",
            "BIC: {}",
            "Use bank code {} please",
        ],
        "UK_NATIONAL_HEALTH_SERVICE_NUMBER" => &[
            "NHS number {} registered with the GP.",
            "My NHS no. is {}.",
            "nhs {} on the referral",
        ],
        "UK_NATIONAL_INSURANCE_NUMBER" => &[
            "My NI number is {}.",
            "National Insurance: {}",
            "Payroll has {} on file.",
        ],
        "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER" => &[
            "My UTR is {}.",
            "Unique Taxpayer Reference {} for the return",
            "UTR: {}",
        ],
        "URL" => &[
            "See {} for details.",
            "Docs are at {}",
            "open {} in a browser",
        ],
        "USERNAME" => &["My username is {}.", "login: {}", "Sign in as {} to test."],
        "US_BANK_ACCOUNT_NUMBER" => &[
            "Checking account number {} at Chase.",
            "account no. {} for deposits",
            "Acct # {}",
        ],
        "US_BANK_ROUTING_NUMBER" => &[
            "Routing number {} for direct deposit.",
            "ABA {}",
            "the routing no. is {}",
        ],
        "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER" => &[
            "ITIN {} was issued.",
            "My ITIN is {}.",
            "taxpayer {} filed late",
        ],
        "US_PASSPORT_NUMBER" => &[
            "Passport number {} expires in 2030.",
            "passport no. {}",
            "My passport is {}.",
        ],
        "US_SOCIAL_SECURITY_NUMBER" => &[
            "SSN {} on file.",
            "My social security number is {}.",
            "Employee {} needs a W-2.",
        ],
        "VEHICLE_IDENTIFICATION_NUMBER" => &[
            "VIN {} was recalled.",
            "The car's VIN is {}.",
            "chassis {} registered",
        ],
        _ => &["{}"],
    }
}

pub const ENTITIES: [&str; 31] = [
    "ADDRESS",
    "AGE",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "CA_HEALTH_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "CREDIT_DEBIT_CARD_NUMBER",
    "DRIVER_ID",
    "EMAIL",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IP_ADDRESS",
    "LICENSE_PLATE",
    "MAC_ADDRESS",
    "NAME",
    "PASSWORD",
    "PHONE",
    "PIN",
    "SWIFT_CODE",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    "URL",
    "USERNAME",
    "US_BANK_ACCOUNT_NUMBER",
    "US_BANK_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "US_PASSPORT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER",
    "VEHICLE_IDENTIFICATION_NUMBER",
];

pub fn value(entity: &str, rng: &mut Rng) -> String {
    match entity {
        "ADDRESS" => address(rng),
        "AGE" => (1 + rng.below(99)).to_string(),
        "AWS_ACCESS_KEY" => format!(
            "AKIA{}",
            (0..16)
                .map(|_| char::from(*rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")))
                .collect::<String>()
        ),
        "AWS_SECRET_KEY" => secret_key(rng),
        "CA_HEALTH_NUMBER" => {
            let n = format!("{}-{}-{}", rng.digits(4), rng.digits(3), rng.digits(3));
            if rng.chance(50) {
                format!("{n} {}", rng.upper(2))
            } else {
                n
            }
        }
        "CA_SOCIAL_INSURANCE_NUMBER" => sin(rng),
        "CREDIT_DEBIT_CARD_CVV" => {
            let n = 3 + rng.below(2);
            rng.digits(n)
        }
        "CREDIT_DEBIT_CARD_EXPIRY" => format!("{:02}/{}", 1 + rng.below(12), 25 + rng.below(8)),
        "CREDIT_DEBIT_CARD_NUMBER" => card(rng),
        "DRIVER_ID" => format!("{}{}", rng.upper(1), rng.digits(7)),
        "EMAIL" => format!(
            "{}.{}{}@{}",
            rng.pick(FIRST).to_lowercase(),
            rng.pick(LAST).to_lowercase(),
            rng.digits(2),
            rng.pick(&["example.com", "mail.example.org", "corp.example.co.uk"])
        ),
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER" => iban(rng),
        "IP_ADDRESS" => {
            if rng.chance(80) {
                format!(
                    "{}.{}.{}.{}",
                    1 + rng.below(223),
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                )
            } else {
                format!(
                    "2001:db8:{:x}:{:x}::{:x}",
                    rng.below(65535),
                    rng.below(65535),
                    1 + rng.below(65534)
                )
            }
        }
        "LICENSE_PLATE" => match rng.below(3) {
            0 => format!("{}{}{}", rng.digits(1), rng.upper(3), rng.digits(3)),
            1 => format!("{}-{}", rng.upper(3), rng.digits(4)),
            _ => format!("{}{} {}", rng.upper(2), rng.digits(2), rng.upper(3)),
        },
        "MAC_ADDRESS" => {
            let sep = *rng.pick(&[":", "-"]);
            (0..6)
                .map(|_| format!("{:02x}", rng.below(256)))
                .collect::<Vec<_>>()
                .join(sep)
        }
        "NAME" => {
            if rng.chance(80) {
                format!("{} {}", rng.pick(FIRST), rng.pick(LAST))
            } else {
                format!("{} {}", rng.pick(FIRST), rng.pick(RARE_LAST))
            }
        }
        "PASSWORD" => password(rng),
        "PHONE" => phone(rng),
        "PIN" => {
            let n = 4 + rng.below(3);
            rng.digits(n)
        }
        "SWIFT_CODE" => swift(rng),
        "UK_NATIONAL_HEALTH_SERVICE_NUMBER" => nhs(rng),
        "UK_NATIONAL_INSURANCE_NUMBER" => nino(rng),
        "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER" => utr(rng),
        "URL" => format!(
            "https://{}.example.com/{}/{}?id={}",
            rng.pick(&["docs", "intranet", "portal"]),
            rng.pick(&["users", "reports", "tickets"]),
            rng.digits(4),
            rng.digits(3)
        ),
        "USERNAME" => username(rng),
        "US_BANK_ACCOUNT_NUMBER" => {
            let n = 8 + rng.below(5);
            rng.digits(n)
        }
        "US_BANK_ROUTING_NUMBER" => aba(rng),
        "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER" => itin(rng),
        "US_PASSPORT_NUMBER" => {
            if rng.chance(50) {
                format!("{}{}", 1 + rng.below(9), rng.digits(8))
            } else {
                format!("{}{}", rng.upper(1), rng.digits(8))
            }
        }
        "US_SOCIAL_SECURITY_NUMBER" => ssn(rng),
        "VEHICLE_IDENTIFICATION_NUMBER" => vin(rng),
        _ => String::new(),
    }
}

/// `per_type` samples of every entity type.
pub fn samples(seed: u64, per_type: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for entity in ENTITIES {
        for _ in 0..per_type {
            let v = value(entity, &mut rng);
            let t = *rng.pick(templates(entity));
            out.push(Sample {
                entity,
                text: t.replacen("{}", &v, 1),
                value: v,
            });
        }
    }
    out
}

/// The obfuscations, by name, applied to a value; `None` when one doesn't apply to it.
pub const OBFUSCATIONS: [&str; 8] = [
    "zero_width",
    "fullwidth",
    "confusable_letters",
    "script_digits",
    "digit_separators",
    "spelled_at_dot",
    "nbsp_spaces",
    "bidi_soft_hyphen",
];

pub fn obfuscate(kind: &str, entity: &str, value: &str, rng: &mut Rng) -> Option<String> {
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    match kind {
        "zero_width" => Some(
            value
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let zw =
                        if i > 0 && i % 3 == 0 {
                            Some(*rng.pick(&[
                                '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}',
                            ]))
                        } else {
                            None
                        };
                    zw.into_iter().chain(std::iter::once(c))
                })
                .collect(),
        ),
        "fullwidth" => Some(
            value
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() {
                        char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
                    } else {
                        c
                    }
                })
                .collect(),
        ),
        "confusable_letters" => {
            let map = |c: char| match c {
                'a' => 'а',
                'e' => 'е',
                'o' => 'о',
                'p' => 'р',
                'c' => 'с',
                'x' => 'х',
                'y' => 'у',
                'A' => 'А',
                'B' => 'В',
                'E' => 'Е',
                'K' => 'К',
                'M' => 'М',
                'H' => 'Н',
                'O' => 'О',
                'P' => 'Р',
                'C' => 'С',
                'T' => 'Т',
                'X' => 'Х',
                _ => c,
            };
            let out: String = value.chars().map(map).collect();
            (out != value).then_some(out)
        }
        "script_digits" => {
            if !has_digit {
                return None;
            }
            let zero = *rng.pick(&[0x0660u32, 0x0966, 0x09E6, 0x0E50]);
            Some(
                value
                    .chars()
                    .map(|c| {
                        c.to_digit(10)
                            .map_or(c, |d| char::from_u32(zero + d).unwrap())
                    })
                    .collect(),
            )
        }
        "digit_separators" => {
            let applies = matches!(
                entity,
                "CREDIT_DEBIT_CARD_NUMBER"
                    | "US_SOCIAL_SECURITY_NUMBER"
                    | "PHONE"
                    | "CA_SOCIAL_INSURANCE_NUMBER"
                    | "UK_NATIONAL_HEALTH_SERVICE_NUMBER"
                    | "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER"
            );
            if !applies {
                return None;
            }
            let current = value.chars().find(|c| matches!(c, ' ' | '-' | '.'));
            let choices: Vec<&str> = [".", " ", "-", "\u{2009}", "\u{2013}"]
                .into_iter()
                .filter(|s| current.is_none_or(|c| !s.starts_with(c)))
                .collect();
            let sep = *rng.pick(&choices);
            match current {
                Some(_) => Some(
                    value
                        .chars()
                        .map(|c| {
                            if matches!(c, ' ' | '-' | '.') {
                                sep.to_string()
                            } else {
                                c.to_string()
                            }
                        })
                        .collect(),
                ),
                None if entity == "CREDIT_DEBIT_CARD_NUMBER" => {
                    // An unseparated card: group it.
                    Some(group(value, &[4, 4, 4, 4], sep))
                }
                None => None,
            }
        }
        "spelled_at_dot" => {
            if entity != "EMAIL" {
                return None;
            }
            let at = *rng.pick(&[" [at] ", "(at)", " (AT) ", "{at}"]);
            let dot = *rng.pick(&[" [dot] ", "(dot)", " (DOT) "]);
            let (local, domain) = value.split_once('@')?;
            Some(format!("{local}{at}{}", domain.replace('.', dot)))
        }
        "nbsp_spaces" => value
            .contains(' ')
            .then(|| value.replace(' ', rng.pick::<&str>(&["\u{00A0}", "\u{202F}", "\u{3000}"]))),
        "bidi_soft_hyphen" => Some(
            value
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let x = if i > 0 && i % 4 == 0 {
                        Some(*rng.pick(&['\u{00AD}', '\u{200E}', '\u{200F}', '\u{2066}']))
                    } else {
                        None
                    };
                    x.into_iter().chain(std::iter::once(c))
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Benign text full of look-alikes: none of it is PII.
pub fn benign(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let invalid_card = {
            let c = card(&mut rng).replace([' ', '-'], "");
            let last = (c.as_bytes()[c.len() - 1] - b'0' + 1) % 10;
            format!("{}{}", &c[..c.len() - 1], last)
        };
        let t = match rng.below(24) {
            0 => format!(
                "Order {} shipped on 2024-{:02}-{:02} at {:02}:{:02}.",
                rng.digits(10),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60)
            ),
            1 => format!(
                "Version {}.{}.{} fixes issue #{} in the parser.",
                rng.below(10),
                rng.below(30),
                rng.below(100),
                rng.digits(5)
            ),
            2 => {
                format!("The reference {invalid_card} did not validate, please re-check the batch.")
            }
            3 => format!(
                "Invoice INV-{}-{} totals ${}.{:02} due in 30 days.",
                2020 + rng.below(6),
                rng.digits(6),
                rng.below(9000),
                rng.below(100)
            ),
            4 => format!(
                "Commit {} touched {} files and {} tests.",
                (0..40)
                    .map(|_| char::from(*rng.pick(b"0123456789abcdef")))
                    .collect::<String>(),
                rng.below(50),
                rng.below(300)
            ),
            5 => format!(
                "Room {} on floor {} seats {} people.",
                100 + rng.below(900),
                1 + rng.below(30),
                2 + rng.below(40)
            ),
            6 => format!(
                "The meeting moved to {}:{:02} on the {}th; bring the Q{} report.",
                1 + rng.below(12),
                rng.below(60),
                1 + rng.below(28),
                1 + rng.below(4)
            ),
            7 => format!(
                "We measured {}.{} ms p50 and {} ms p99 over {} requests.",
                rng.below(100),
                rng.below(10),
                rng.below(1000),
                rng.digits(6)
            ),
            8 => format!(
                "Tracking number 1Z{}{} arrives {}.",
                rng.upper(6),
                rng.digits(10),
                rng.pick(&["Monday", "Friday", "next week"])
            ),
            9 => format!(
                "Use build {} of the installer, ISBN 978-{}-{}-{}-{} is the manual.",
                rng.digits(8),
                rng.digits(1),
                rng.digits(3),
                rng.digits(5),
                rng.digits(1)
            ),
            10 => format!(
                "Part number {}-{}-{} is out of stock until {}.",
                rng.upper(3),
                rng.digits(4),
                rng.digits(3),
                rng.pick(&["March", "June", "October"])
            ),
            11 => format!(
                "The {} Report from the {} Team covers {} regions.",
                rng.pick(&["Annual", "Quarterly", "Security"]),
                rng.pick(&["Platform", "Finance", "Support"]),
                rng.below(20)
            ),
            12 => format!(
                "Set timeout to {} seconds and retries to {} in config.toml.",
                rng.below(120),
                rng.below(10)
            ),
            13 => format!(
                "The sum of {} and {} is {}.",
                rng.digits(5),
                rng.digits(5),
                rng.digits(6)
            ),
            14 => format!(
                "Case {}-{}-{} was closed by the support team on Tuesday.",
                rng.digits(3),
                rng.digits(3),
                rng.digits(3)
            ),
            15 => format!(
                "Temperature readings: {}.{}, {}.{}, {}.{} degrees.",
                rng.below(40),
                rng.below(10),
                rng.below(40),
                rng.below(10),
                rng.below(40),
                rng.below(10)
            ),
            16 => format!(
                "UUID {:08x}-{:04x}-{:04x}-{:04x}-{:012x} identifies the job.",
                rng.next() as u32,
                rng.below(65536),
                rng.below(65536),
                rng.below(65536),
                rng.next() & 0xFFFF_FFFF_FFFF
            ),
            17 => format!(
                "Chapter {} of the Spring Handbook explains the Main Street program.",
                rng.below(30)
            ),
            18 => format!(
                "Our team won {} of {} games; the score was {}-{}.",
                rng.below(20),
                20 + rng.below(10),
                rng.below(10),
                rng.below(10)
            ),
            19 => format!(
                "Please review pull request {} before the {} release.",
                rng.digits(4),
                rng.pick(&["Monday", "Spring", "May"])
            ),
            20 => format!(
                "Population grew to {},{:03},{:03} in {}.",
                rng.below(300),
                rng.below(1000),
                rng.below(1000),
                1990 + rng.below(35)
            ),
            21 if rng.chance(50) => format!(
                "Revenue reached EUR {}.{}.{} last year.",
                100 + rng.below(900),
                rng.digits(3),
                rng.digits(3)
            ),
            21 => format!(
                "The password reset link expires in {} minutes; the account settings page has details.",
                5 + rng.below(55)
            ),
            22 => format!(
                "Coordinates {}.{}, -{}.{} mark the trailhead.",
                rng.below(90),
                rng.digits(4),
                rng.below(180),
                rng.digits(4)
            ),
            _ => format!(
                "Step {}: run the migration, then restart {} workers.",
                rng.below(10),
                rng.below(64)
            ),
        };
        out.push(t);
    }
    out
}

/// Filler prose for the throughput corpus.
pub const PROSE: &[&str] = &[
    "The quarterly review covered onboarding, the new billing flow, and the support backlog. ",
    "Customers asked for clearer invoices and faster refunds, and the team agreed to prioritise both. ",
    "Latency improved after the cache change, although the long tail still needs work. ",
    "Please summarise the discussion in three bullet points for the leadership update. ",
    "The migration finished overnight without errors; the old cluster will be retired next month. ",
];

/// A ~`bytes` mixed corpus: prose with PII samples and benign look-alikes interleaved.
pub fn mixed(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let pii = samples(seed ^ 0xA5A5, 40);
    let benign = benign(seed ^ 0x5A5A, 400);
    let mut out = String::with_capacity(bytes + 256);
    while out.len() < bytes {
        out.push_str(rng.pick::<&str>(PROSE));
        match rng.below(4) {
            0 => out.push_str(&rng.pick(&pii).text),
            1 => out.push_str(rng.pick(&benign).as_str()),
            _ => out.push_str(rng.pick::<&str>(PROSE)),
        }
        out.push(if rng.chance(20) { '\n' } else { ' ' });
    }
    out
}
