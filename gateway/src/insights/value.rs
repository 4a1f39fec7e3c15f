//! Values flowing through a query, and the project's decisions on them: rendering as
//! GetQueryResults strings (A1, A2, A17), comparisons with SQL-style nulls (A5), numeric
//! coercion, and the documented natural sort collation (A12).

use std::cmp::Ordering;

/// One field's value in a row. A missing field is [`Value::Null`].
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Milliseconds since the epoch; renders as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
    Time(i64),
}

/// A number, exact when it can be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
        }
    }
}

/// A string made only of a number (`-12`, `3.5`): what the sort page calls a number value.
pub fn parse_numeric_str(s: &str) -> Option<Num> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if frac.is_none()
        && let Ok(i) = s.parse::<i64>()
    {
        return Some(Num::Int(i));
    }
    s.parse::<f64>().ok().map(Num::Float)
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The number this value stands for: typed numbers, booleans (1/0), timestamps (ms) and
    /// strings made only of a number.
    pub fn as_num(&self) -> Option<Num> {
        match self {
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Float(f) => Some(Num::Float(*f)),
            Value::Bool(b) => Some(Num::Int(i64::from(*b))),
            Value::Time(t) => Some(Num::Int(*t)),
            Value::Str(s) => parse_numeric_str(s),
            Value::Null => None,
        }
    }

    fn is_typed_number(&self) -> bool {
        matches!(
            self,
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Time(_)
        )
    }

    /// The GetQueryResults string; `None` for null (the cell is omitted, A3).
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => render_float(*f),
            Value::Str(s) => Some(s.clone()),
            Value::Time(t) => Some(format_time(*t)),
        }
    }

    /// The value as text for string functions (`None` for null).
    pub fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Value::Str(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            other => other.render().map(std::borrow::Cow::Owned),
        }
    }

    /// Truth in `filter`: booleans, non-zero numbers, non-empty strings. Null is unknown.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            Value::Float(f) => Some(*f != 0.0 && !f.is_nan()),
            Value::Str(s) => Some(!s.is_empty()),
            Value::Time(_) => Some(true),
        }
    }
}

/// A1: shortest round-trip decimal, never an exponent, integral values without a point.
pub fn render_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let f = if f == 0.0 { 0.0 } else { f };
    Some(format!("{f}"))
}

/// Comparison for `=`, `!=`, `<`, …: `None` when either side is null (A5).
/// Numbers compare numerically (a numeric string against a number too); otherwise text.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if (a.is_typed_number() || b.is_typed_number())
        && let (Some(x), Some(y)) = (a.as_num(), b.as_num())
    {
        return x.compare(y);
    }
    // Otherwise text (a timestamp against a string compares its rendered form).
    let (x, y) = (a.as_text()?, b.as_text()?);
    Some(x.as_ref().cmp(y.as_ref()))
}

/// Equality of two non-null values under [`compare`].
pub fn equals(a: &Value, b: &Value) -> Option<bool> {
    compare(a, b).map(|o| o == Ordering::Equal)
}

/// A12, the documented natural sort, ascending: non-number values before number values;
/// non-numbers in chunks of digits (by length, then value) and non-digits (by code point).
/// Nulls are not ordered here (the caller puts them last).
pub fn collate(a: &Value, b: &Value) -> Ordering {
    match (sort_number(a), sort_number(b)) {
        (Some(x), Some(y)) => match (x, y) {
            (Num::Int(p), Num::Int(q)) => p.cmp(&q),
            (p, q) => p.as_f64().total_cmp(&q.as_f64()),
        },
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => {
            let x = a.as_text().unwrap_or_default();
            let y = b.as_text().unwrap_or_default();
            natural(&x, &y)
        }
    }
}

/// Collation with nulls last in both directions.
pub fn collate_nulls_last(a: &Value, b: &Value, descending: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let o = collate(a, b);
            if descending { o.reverse() } else { o }
        }
    }
}

fn sort_number(v: &Value) -> Option<Num> {
    match v {
        Value::Null => None,
        other => other.as_num(),
    }
}

/// Natural comparison of two strings by digit / non-digit chunks.
pub fn natural(a: &str, b: &str) -> Ordering {
    let mut x = Chunks(a);
    let mut y = Chunks(b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let p_digits = p.as_bytes()[0].is_ascii_digit();
                let q_digits = q.as_bytes()[0].is_ascii_digit();
                let o = if p_digits && q_digits {
                    p.len().cmp(&q.len()).then_with(|| p.cmp(q))
                } else {
                    p.cmp(q)
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

struct Chunks<'a>(&'a str);

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.0;
        let first = *s.as_bytes().first()?;
        let digits = first.is_ascii_digit();
        let end = s
            .bytes()
            .position(|b| b.is_ascii_digit() != digits)
            .unwrap_or(s.len());
        // Digits are ASCII, so `end` is always a char boundary.
        let (chunk, rest) = s.split_at(end);
        self.0 = rest;
        Some(chunk)
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month 1-12, day 1-31) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A2: `YYYY-MM-DD HH:MM:SS.mmm` in UTC.
pub fn format_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let h = in_day / 3_600_000;
    let mi = in_day / 60_000 % 60;
    let s = in_day / 1000 % 60;
    let milli = in_day % 1000;
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_numbers_like_a1() {
        assert_eq!(Value::Float(5.0).render().unwrap(), "5");
        assert_eq!(
            Value::Float(0.1 + 0.2).render().unwrap(),
            "0.30000000000000004"
        );
        assert_eq!(
            Value::Float(1e20).render().unwrap(),
            "100000000000000000000"
        );
        assert_eq!(Value::Float(1e-7).render().unwrap(), "0.0000001");
        assert_eq!(Value::Float(-0.0).render().unwrap(), "0");
        assert_eq!(Value::Float(f64::NAN).render(), None);
        assert_eq!(Value::Bool(true).render().unwrap(), "1");
    }

    #[test]
    fn formats_time_like_a2() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59.999");
        for days in [-1000, 0, 59, 11_016, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn natural_sort_matches_the_documented_example() {
        let sorted = [
            "!:",
            "#",
            "*%04",
            "0#",
            "5A",
            "111A",
            "2345_",
            "@",
            "@_",
            "A",
            "A9876fghj",
            "a12345hfh",
            "0",
            "1",
            "2",
            "3",
        ];
        let mut shuffled: Vec<Value> = sorted
            .iter()
            .rev()
            .map(|s| Value::Str((*s).into()))
            .collect();
        shuffled.sort_by(collate);
        let got: Vec<String> = shuffled.iter().map(|v| v.render().unwrap()).collect();
        assert_eq!(got, sorted);
    }

    #[test]
    fn comparisons_with_null_are_unknown() {
        assert_eq!(compare(&Value::Null, &Value::Int(1)), None);
        assert_eq!(
            equals(&Value::Str("200".into()), &Value::Int(200)),
            Some(true)
        );
        assert_eq!(
            equals(&Value::Str("abc".into()), &Value::Int(200)),
            Some(false)
        );
        assert_eq!(
            compare(&Value::Time(5), &Value::Int(4)),
            Some(Ordering::Greater)
        );
    }
}
