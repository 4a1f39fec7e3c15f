//! The one way a `<textarea>` gets its initial value. Leptos 0.8 renders a textarea's children
//! unescaped on the server (tachys marks `textarea` as raw text, `ESCAPE_CHILDREN = false`, like
//! `script` and `style`), so a value holding `</textarea>` would end the element there and the
//! rest would be parsed as markup: a guardrail message or a shared `/insights?query=` link could
//! put a `<meta http-equiv=refresh>` into an admin's page. Every textarea's children go through
//! [`value`]; `server/tests/console.rs` and `tests/browser/escape.test.mjs` check each one.

/// `text` as a `<textarea>`'s child, so that the browser's value is exactly `text`.
///
/// On the server: `&`, `<` and `>` as character references (a textarea's content is RCDATA:
/// the parser decodes them and no tag can start), and a leading line break doubled (the parser
/// drops one line feed right after the start tag). In the browser the child becomes a text
/// node through the DOM, which needs neither, so `text` is returned as it is (the hydrate build
/// does not read textarea children at all).
pub fn value(text: &str) -> String {
    #[cfg(feature = "ssr")]
    {
        let mut out = String::with_capacity(text.len() + 8);
        if text.starts_with(['\n', '\r']) {
            out.push('\n');
        }
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        out
    }
    #[cfg(not(feature = "ssr"))]
    {
        text.to_string()
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::value;

    #[test]
    fn markup_and_references_are_escaped() {
        assert_eq!(
            value("</textarea><meta http-equiv=refresh content=0>"),
            "&lt;/textarea&gt;&lt;meta http-equiv=refresh content=0&gt;"
        );
        // A literal reference stays literal.
        assert_eq!(value("&lt;b&gt; & co"), "&amp;lt;b&amp;gt; &amp; co");
        assert_eq!(value("plain text\nline 2"), "plain text\nline 2");
        assert_eq!(value(""), "");
    }

    #[test]
    fn a_leading_line_break_survives_the_parser() {
        assert_eq!(value("\nfirst"), "\n\nfirst");
        assert_eq!(value("\r\nfirst"), "\n\r\nfirst");
    }

    /// What Leptos itself emits: a textarea's child is written raw, which is why [`value`]
    /// exists (if a Leptos upgrade starts escaping, this fails and `value` must stop too, or the
    /// text would be escaped twice).
    #[test]
    fn leptos_writes_textarea_children_raw_and_value_makes_them_safe() {
        use leptos::prelude::*;
        let hostile = "</textarea><b id=x>";
        let raw = view! { <textarea>{hostile.to_string()}</textarea> }.to_html();
        assert!(raw.contains("</textarea><b id=x>"), "{raw}");
        let safe = view! { <textarea>{value(hostile)}</textarea> }.to_html();
        assert!(
            safe.contains("<textarea>&lt;/textarea&gt;&lt;b id=x&gt;</textarea>"),
            "{safe}"
        );
    }
}
