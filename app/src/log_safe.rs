//! [`LogSafe`]: how a value a client chose (a sign-in name, an address from a header, …) is
//! written to the log. Control and invisible formatting characters and backslashes are escaped,
//! so a value cannot forge or hide log lines, and it is cut to [`LOG_SAFE_MAX`] characters
//! followed by `…` and its full length, so one request cannot write megabytes into a log.

use std::fmt::{self, Write as _};

/// Characters of a value written before it is cut.
pub const LOG_SAFE_MAX: usize = 64;

/// A client-chosen value, formatted for the log: `tracing::warn!(user = %LogSafe(&name), …)`.
#[derive(Clone, Copy)]
pub struct LogSafe<'a>(pub &'a str);

/// Characters that end a line or steer how text is shown without being visible: control
/// characters (C0, DEL, C1), line and paragraph separators, bidirectional controls, zero-width
/// characters and the byte order mark.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}')
}

impl LogSafe<'_> {
    /// Write the value escaped and cut; `quoted` also escapes `"` (for the `Debug` form).
    fn write(&self, f: &mut fmt::Formatter<'_>, quoted: bool) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(LOG_SAFE_MAX) {
            if needs_escape(c) || (quoted && c == '"') {
                // `\n`, `\t`, `\\`, `\"`, or `\u{…}` for the rest.
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        if chars.next().is_some() {
            write!(f, "…({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// Quoted, with `"` escaped too: the shape of `str`'s `Debug`, cut like `Display`.
impl fmt::Debug for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        self.write(f, true)?;
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_are_escaped() {
        let forged = "bob\n2026-01-01T00:00:00Z  INFO console sign-in user=admin\r\x1b[2K";
        let out = LogSafe(forged).to_string();
        assert!(!out.contains(['\n', '\r', '\x1b']), "{out}");
        assert!(out.starts_with(r"bob\n2026-01-01T00:00:00Z"), "{out}");
        assert_eq!(LogSafe("a\\nb").to_string(), r"a\\nb");
        assert_eq!(
            LogSafe("x\u{2028}y\u{202E}z\u{200B}").to_string(),
            r"x\u{2028}y\u{202e}z\u{200b}"
        );
        assert_eq!(
            LogSafe("ana.lee@example.com").to_string(),
            "ana.lee@example.com"
        );
        assert_eq!(LogSafe("Zoë").to_string(), "Zoë");
        assert_eq!(format!("{:?}", LogSafe("a\n\"b")), r#""a\n\"b""#);
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let huge = "A".repeat(1_900_000);
        let out = LogSafe(&huge).to_string();
        assert_eq!(out, format!("{}…(1900000 bytes)", "A".repeat(LOG_SAFE_MAX)));
        let exact = "é".repeat(LOG_SAFE_MAX);
        assert_eq!(LogSafe(&exact).to_string(), exact);
        // Escapes do not count against the cut: 64 newlines are 128 characters written.
        let lines = "\n".repeat(LOG_SAFE_MAX + 1);
        let out = LogSafe(&lines).to_string();
        assert_eq!(out, format!("{}…(65 bytes)", r"\n".repeat(LOG_SAFE_MAX)));
    }
}
