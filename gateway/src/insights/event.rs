//! Fields of one event: the system fields (`@timestamp`, `@message`, `@logStream`, `@log`,
//! `@ingestionTime`, `@ptr`) and fields discovered in a JSON message (A23: nested objects with
//! dots, array elements by index, numbers numeric, objects and arrays not leaves; a top-level
//! key starting with `@` is named `@@key`).

use serde_json::Value as Json;

use super::value::Value;

/// `@log` of the gateway's own audit events.
pub const AUDIT_LOG_GROUP: &str = "golden-path-audit";
/// `@logStream` of the gateway's own audit events.
pub const AUDIT_LOG_STREAM: &str = "gateway";

/// The system fields every event has.
pub const SYSTEM_FIELDS: &[&str] = &[
    "@timestamp",
    "@message",
    "@logStream",
    "@log",
    "@ingestionTime",
    "@ptr",
];

/// The value of the discovered field `name` in a parsed JSON message, or null.
pub fn json_field(json: &Json, name: &str) -> Value {
    let path = match name.strip_prefix('@') {
        // `@@key` is the JSON key `@key`; other `@` names are system fields, never JSON.
        Some(rest) if rest.starts_with('@') => rest,
        Some(_) => return Value::Null,
        None => name,
    };
    walk(json, path).map_or(Value::Null, leaf)
}

fn walk<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    match v {
        Json::Object(map) => {
            if let Some(exact) = map.get(path) {
                return Some(exact);
            }
            // A key may itself contain dots: try every key that is a prefix segment.
            for (k, child) in map {
                if let Some(rest) = path
                    .strip_prefix(k.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    && let Some(found) = walk(child, rest)
                {
                    return Some(found);
                }
            }
            None
        }
        Json::Array(items) => {
            let (index, rest) = match path.split_once('.') {
                Some((i, r)) => (i, Some(r)),
                None => (path, None),
            };
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let item = items.get(index.parse::<usize>().ok()?)?;
            match rest {
                None => Some(item),
                Some(r) => walk(item, r),
            }
        }
        _ => None,
    }
}

fn leaf(v: &Json) -> Value {
    match v {
        Json::Null | Json::Object(_) | Json::Array(_) => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => n.as_f64().map_or(Value::Null, Value::Float),
        },
        Json::String(s) => Value::Str(s.clone()),
    }
}

/// A top-level string field of a JSON object message (for the indexed columns).
pub fn top_level_str(json: &Json, key: &str) -> Option<String> {
    json.get(key).and_then(Json::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery() {
        let j: Json = serde_json::from_str(
            r#"{"a":{"b":1,"c":[{"d":"x"},2.5]},"e.f":true,"@g":"h","n":null,"o":{}}"#,
        )
        .unwrap();
        assert_eq!(json_field(&j, "a.b"), Value::Int(1));
        assert_eq!(json_field(&j, "a.c.0.d"), Value::Str("x".into()));
        assert_eq!(json_field(&j, "a.c.1"), Value::Float(2.5));
        assert_eq!(json_field(&j, "a.c"), Value::Null);
        assert_eq!(json_field(&j, "e.f"), Value::Bool(true));
        assert_eq!(json_field(&j, "@@g"), Value::Str("h".into()));
        assert_eq!(json_field(&j, "@g"), Value::Null);
        assert_eq!(json_field(&j, "n"), Value::Null);
        assert_eq!(json_field(&j, "o"), Value::Null);
        assert_eq!(json_field(&j, "a.c.9"), Value::Null);
    }
}
