//! The scalar functions of the language (numeric, string, datetime, general, IP) and time
//! periods (`5m`, `1h`, `1mo`) with the `bin`/`datefloor`/`dateceil` arithmetic of A8.

use std::net::IpAddr;

use super::value::{Num, Value, civil_from_days, days_from_civil, parse_numeric_str};

/// A period: a fixed number of milliseconds, or calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Millis(i64),
    Months(i64),
}

impl Period {
    /// `amount` of `unit` (any spelling the language accepts); `capped` applies `bin`'s caps
    /// (ms ≤ 1000, s ≤ 60, m ≤ 60, h ≤ 24).
    pub fn new(amount: u64, unit: &str, capped: bool) -> Result<Period, String> {
        if amount == 0 {
            return Err("a period must be at least 1".into());
        }
        let unit = unit.to_ascii_lowercase();
        let amount = i64::try_from(amount).map_err(|_| "period too large".to_string())?;
        let (ms, cap) = match unit.as_str() {
            "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => (1, Some(1000)),
            "s" | "sec" | "secs" | "second" | "seconds" => (1000, Some(60)),
            "m" | "min" | "mins" | "minute" | "minutes" => (60_000, Some(60)),
            "h" | "hr" | "hrs" | "hour" | "hours" => (3_600_000, Some(24)),
            "d" | "day" | "days" => (86_400_000, None),
            "w" | "week" | "weeks" => (604_800_000, None),
            "mo" | "mon" | "mons" | "month" | "months" => {
                return Ok(Period::Months(amount));
            }
            "q" | "qtr" | "qtrs" | "quarter" | "quarters" => {
                return Ok(Period::Months(amount.saturating_mul(3)));
            }
            "y" | "yr" | "yrs" | "year" | "years" => {
                return Ok(Period::Months(amount.saturating_mul(12)));
            }
            other => return Err(format!("unknown time unit {other:?}")),
        };
        let amount = match cap {
            Some(cap) if capped => amount.min(cap),
            _ => amount,
        };
        amount
            .checked_mul(ms)
            .map(Period::Millis)
            .ok_or_else(|| "period too large".to_string())
    }

    /// The start of the period containing `ts` (A8: multiples since the epoch, UTC).
    pub fn floor(self, ts: i64) -> i64 {
        match self {
            Period::Millis(p) => ts.div_euclid(p).saturating_mul(p),
            Period::Months(k) => {
                let (y, m, _) = civil_from_days(ts.div_euclid(86_400_000));
                let index = (y - 1970) * 12 + i64::from(m) - 1;
                month_start(index.div_euclid(k) * k)
            }
        }
    }

    /// `ts` if it is a boundary, else the next boundary.
    pub fn ceil(self, ts: i64) -> i64 {
        let f = self.floor(ts);
        if f == ts {
            return ts;
        }
        match self {
            Period::Millis(p) => f.saturating_add(p),
            Period::Months(k) => {
                let (y, m, _) = civil_from_days(f.div_euclid(86_400_000));
                month_start((y - 1970) * 12 + i64::from(m) - 1 + k)
            }
        }
    }
}

fn month_start(index: i64) -> i64 {
    let y = 1970 + index.div_euclid(12);
    let m = u32::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
    days_from_civil(y, m, 1).saturating_mul(86_400_000)
}

/// Every scalar function, resolved at plan time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    Ceil,
    Floor,
    Greatest,
    Least,
    Log,
    Sqrt,
    IsEmpty,
    IsBlank,
    Concat,
    Ltrim,
    Rtrim,
    Trim,
    Strlen,
    ToUpper,
    ToLower,
    Substr,
    Replace,
    StrContains,
    DateFloor,
    DateCeil,
    FromMillis,
    ToMillis,
    Now,
    IsPresent,
    Coalesce,
    IsValidIp,
    IsValidIpV4,
    IsValidIpV6,
    IsIpInSubnet,
    IsIpv4InSubnet,
    IsIpv6InSubnet,
}

impl Func {
    /// The function called `name` (case-insensitive), with its argument count range.
    pub fn lookup(name: &str) -> Option<(Func, usize, usize)> {
        let many = usize::MAX;
        Some(match name.to_ascii_lowercase().as_str() {
            "abs" => (Func::Abs, 1, 1),
            "ceil" => (Func::Ceil, 1, 1),
            "floor" => (Func::Floor, 1, 1),
            "greatest" => (Func::Greatest, 1, many),
            "least" => (Func::Least, 1, many),
            "log" => (Func::Log, 1, 1),
            "sqrt" => (Func::Sqrt, 1, 1),
            "isempty" => (Func::IsEmpty, 1, 1),
            "isblank" => (Func::IsBlank, 1, 1),
            "concat" => (Func::Concat, 1, many),
            "ltrim" => (Func::Ltrim, 1, 2),
            "rtrim" => (Func::Rtrim, 1, 2),
            "trim" => (Func::Trim, 1, 2),
            "strlen" => (Func::Strlen, 1, 1),
            "toupper" => (Func::ToUpper, 1, 1),
            "tolower" => (Func::ToLower, 1, 1),
            "substr" => (Func::Substr, 2, 3),
            "replace" => (Func::Replace, 3, 3),
            "strcontains" => (Func::StrContains, 2, 2),
            "datefloor" => (Func::DateFloor, 2, 2),
            "dateceil" => (Func::DateCeil, 2, 2),
            "frommillis" => (Func::FromMillis, 1, 1),
            "tomillis" => (Func::ToMillis, 1, 1),
            "now" => (Func::Now, 0, 0),
            "ispresent" => (Func::IsPresent, 1, 1),
            "coalesce" => (Func::Coalesce, 1, many),
            "isvalidip" => (Func::IsValidIp, 1, 1),
            "isvalidipv4" => (Func::IsValidIpV4, 1, 1),
            "isvalidipv6" => (Func::IsValidIpV6, 1, 1),
            "isipinsubnet" => (Func::IsIpInSubnet, 2, 2),
            "isipv4insubnet" => (Func::IsIpv4InSubnet, 2, 2),
            "isipv6insubnet" => (Func::IsIpv6InSubnet, 2, 2),
            _ => return None,
        })
    }

    /// Apply to evaluated arguments. `period` is the compiled period argument of
    /// `datefloor`/`dateceil`; `now_secs` the query start.
    pub fn apply(self, args: &[Value], period: Option<Period>, now_secs: i64) -> Value {
        let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
        let text = |i: usize| arg(i).as_text();
        match self {
            Func::Abs => num1(arg(0), |n| match n {
                Num::Int(i) => i
                    .checked_abs()
                    .map_or(Value::Float((i as f64).abs()), Value::Int),
                Num::Float(f) => Value::Float(f.abs()),
            }),
            Func::Ceil => num1(arg(0), |n| match n {
                Num::Int(i) => Value::Int(i),
                Num::Float(f) => float_to_int(f.ceil()),
            }),
            Func::Floor => num1(arg(0), |n| match n {
                Num::Int(i) => Value::Int(i),
                Num::Float(f) => float_to_int(f.floor()),
            }),
            Func::Greatest | Func::Least => {
                let mut best: Option<Num> = None;
                for v in args {
                    let Some(n) = v.as_num() else { continue };
                    let replace = match best {
                        None => true,
                        Some(b) => {
                            let o = n.compare(b);
                            if self == Func::Greatest {
                                o == Some(std::cmp::Ordering::Greater)
                            } else {
                                o == Some(std::cmp::Ordering::Less)
                            }
                        }
                    };
                    if replace {
                        best = Some(n);
                    }
                }
                best.map_or(Value::Null, Num::into_value)
            }
            Func::Log => num1(arg(0), |n| {
                let f = n.as_f64();
                if f > 0.0 {
                    Value::Float(f.ln())
                } else {
                    Value::Null
                }
            }),
            Func::Sqrt => num1(arg(0), |n| {
                let f = n.as_f64();
                if f >= 0.0 {
                    Value::Float(f.sqrt())
                } else {
                    Value::Null
                }
            }),
            Func::IsEmpty => Value::Int(i64::from(match arg(0) {
                Value::Null => true,
                Value::Str(s) => s.is_empty(),
                _ => false,
            })),
            Func::IsBlank => Value::Int(i64::from(match arg(0) {
                Value::Null => true,
                Value::Str(s) => s.trim().is_empty(),
                _ => false,
            })),
            Func::Concat => {
                let mut out = String::new();
                for v in args {
                    match v.as_text() {
                        Some(t) => out.push_str(&t),
                        None => return Value::Null,
                    }
                }
                Value::Str(out)
            }
            Func::Ltrim | Func::Rtrim | Func::Trim => {
                let Some(s) = text(0) else { return Value::Null };
                let set: Option<Vec<char>> = match args.get(1) {
                    None => None,
                    Some(v) => match v.as_text() {
                        Some(t) => Some(t.chars().collect()),
                        None => return Value::Null,
                    },
                };
                let is_trim = |c: char| match &set {
                    Some(set) => set.contains(&c),
                    None => c.is_whitespace(),
                };
                let out = match self {
                    Func::Ltrim => s.trim_start_matches(is_trim),
                    Func::Rtrim => s.trim_end_matches(is_trim),
                    _ => s.trim_matches(is_trim),
                };
                Value::Str(out.to_string())
            }
            Func::Strlen => text(0).map_or(Value::Null, |s| {
                Value::Int(i64::try_from(s.chars().count()).unwrap_or(i64::MAX))
            }),
            Func::ToUpper => text(0).map_or(Value::Null, |s| Value::Str(s.to_uppercase())),
            Func::ToLower => text(0).map_or(Value::Null, |s| Value::Str(s.to_lowercase())),
            Func::Substr => {
                let Some(s) = text(0) else { return Value::Null };
                let Some(start) = arg(1).as_num() else {
                    return Value::Null;
                };
                let start = usize::try_from(num_to_i64(start).max(0)).unwrap_or(usize::MAX);
                let chars = s.chars().skip(start);
                match args.get(2) {
                    None => Value::Str(chars.collect()),
                    Some(len) => match len.as_num() {
                        Some(len) => {
                            let len = usize::try_from(num_to_i64(len).max(0)).unwrap_or(usize::MAX);
                            Value::Str(chars.take(len).collect())
                        }
                        None => Value::Null,
                    },
                }
            }
            Func::Replace => match (text(0), text(1), text(2)) {
                (Some(s), Some(search), Some(repl)) => {
                    if search.is_empty() {
                        Value::Str(s.into_owned())
                    } else {
                        Value::Str(s.replace(search.as_ref(), &repl))
                    }
                }
                _ => Value::Null,
            },
            Func::StrContains => match (text(0), text(1)) {
                (Some(s), Some(search)) => Value::Int(i64::from(s.contains(search.as_ref()))),
                _ => Value::Null,
            },
            Func::DateFloor | Func::DateCeil => {
                let (Some(ts), Some(period)) = (time_of(arg(0)), period) else {
                    return Value::Null;
                };
                Value::Time(if self == Func::DateFloor {
                    period.floor(ts)
                } else {
                    period.ceil(ts)
                })
            }
            Func::FromMillis => match arg(0).as_num() {
                Some(n) => Value::Time(num_to_i64(n)),
                None => Value::Null,
            },
            Func::ToMillis => time_of(arg(0)).map_or(Value::Null, Value::Int),
            Func::Now => Value::Int(now_secs),
            Func::IsPresent => Value::Bool(!arg(0).is_null()),
            Func::Coalesce => args
                .iter()
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null),
            Func::IsValidIp | Func::IsValidIpV4 | Func::IsValidIpV6 => {
                let Some(s) = text(0) else { return Value::Null };
                let ip = s.parse::<IpAddr>().ok();
                Value::Bool(matches!(
                    (self, ip),
                    (Func::IsValidIp, Some(_))
                        | (Func::IsValidIpV4, Some(IpAddr::V4(_)))
                        | (Func::IsValidIpV6, Some(IpAddr::V6(_)))
                ))
            }
            Func::IsIpInSubnet | Func::IsIpv4InSubnet | Func::IsIpv6InSubnet => {
                let (Some(ip), Some(cidr)) = (text(0), text(1)) else {
                    return Value::Null;
                };
                let Ok(ip) = ip.parse::<IpAddr>() else {
                    return Value::Bool(false);
                };
                let family_ok = !matches!(
                    (self, ip),
                    (Func::IsIpv4InSubnet, IpAddr::V6(_)) | (Func::IsIpv6InSubnet, IpAddr::V4(_))
                );
                Value::Bool(family_ok && in_subnet(ip, &cidr).unwrap_or(false))
            }
        }
    }
}

fn num1(v: &Value, f: impl FnOnce(Num) -> Value) -> Value {
    v.as_num().map_or(Value::Null, f)
}

fn float_to_int(f: f64) -> Value {
    if f.is_finite() && f.abs() < 9.0e15 {
        Value::Int(f as i64)
    } else {
        Value::Float(f)
    }
}

fn num_to_i64(n: Num) -> i64 {
    match n {
        Num::Int(i) => i,
        Num::Float(f) if f.is_finite() => f.trunc() as i64,
        Num::Float(_) => 0,
    }
}

/// A timestamp in ms: a timestamp value, a number of ms, or a numeric string.
pub fn time_of(v: &Value) -> Option<i64> {
    match v {
        Value::Time(t) => Some(*t),
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        Value::Str(s) => parse_numeric_str(s).map(num_to_i64),
        _ => None,
    }
}

/// Whether `ip` is inside `cidr` (`10.0.0.0/8`, `2001:db8::/32`; a bare address is /32 or
/// /128). `None` when the subnet does not parse.
pub fn in_subnet(ip: IpAddr, cidr: &str) -> Option<bool> {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n.parse::<IpAddr>().ok()?, Some(b.parse::<u32>().ok()?)),
        None => (cidr.parse::<IpAddr>().ok()?, None),
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(u32::from(a) & mask == u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Some(u128::from(a) & mask == u128::from(n) & mask)
        }
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn documented_examples() {
        let f = |func: Func, args: &[Value]| func.apply(args, None, 0);
        assert_eq!(
            f(
                Func::Substr,
                &[s("xyZfooxyZ"), Value::Int(3), Value::Int(3)]
            ),
            s("foo")
        );
        assert_eq!(f(Func::Replace, &[s("a-b-c"), s("-"), s("+")]), s("a+b+c"));
        assert_eq!(f(Func::StrContains, &[s("abc"), s("b")]), Value::Int(1));
        assert_eq!(f(Func::IsEmpty, &[Value::Null]), Value::Int(1));
        assert_eq!(f(Func::IsBlank, &[s("  ")]), Value::Int(1));
        assert_eq!(f(Func::Strlen, &[s("héllo")]), Value::Int(5));
        assert_eq!(f(Func::Trim, &[s("xxaxx"), s("x")]), s("a"));
        assert_eq!(
            f(
                Func::Greatest,
                &[Value::Int(1), Value::Float(2.5), Value::Null]
            ),
            Value::Float(2.5)
        );
        assert_eq!(f(Func::Concat, &[s("a"), Value::Int(1)]), s("a1"));
        assert_eq!(f(Func::Concat, &[s("a"), Value::Null]), Value::Null);
        assert_eq!(f(Func::Ceil, &[Value::Float(1.2)]), Value::Int(2));
        assert_eq!(
            f(Func::IsIpInSubnet, &[s("10.1.2.3"), s("10.0.0.0/8")]),
            Value::Bool(true)
        );
        assert_eq!(
            f(
                Func::IsIpv4InSubnet,
                &[s("2001:db8::1"), s("2001:db8::/32")]
            ),
            Value::Bool(false)
        );
        assert_eq!(
            f(
                Func::IsIpv6InSubnet,
                &[s("2001:db8::1"), s("2001:db8::/32")]
            ),
            Value::Bool(true)
        );
        assert_eq!(f(Func::IsValidIpV4, &[s("300.1.1.1")]), Value::Bool(false));
    }

    #[test]
    fn periods() {
        let p = Period::new(5, "m", true).unwrap();
        assert_eq!(p.floor(1_700_000_123_456), 1_700_000_100_000);
        assert_eq!(p.ceil(1_700_000_100_000), 1_700_000_100_000);
        assert_eq!(p.ceil(1_700_000_100_001), 1_700_000_400_000);
        assert_eq!(Period::new(300, "s", true).unwrap(), Period::Millis(60_000));
        assert_eq!(
            Period::new(300, "s", false).unwrap(),
            Period::Millis(300_000)
        );
        let month = Period::new(1, "mo", true).unwrap();
        // 2023-11-14 → 2023-11-01, ceil → 2023-12-01
        assert_eq!(month.floor(1_700_000_000_000), 1_698_796_800_000);
        assert_eq!(month.ceil(1_700_000_000_000), 1_701_388_800_000);
        let q = Period::new(1, "q", true).unwrap();
        assert_eq!(q.floor(1_700_000_000_000), 1_696_118_400_000); // 2023-10-01
        assert!(Period::new(0, "h", true).is_err());
    }
}
