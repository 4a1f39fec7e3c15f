//! Normalisation before matching, with a map from every normalized byte back to the original
//! text, so a match found on normalized text replaces the original (obfuscated) span.
//!
//! Steps: NFKC per combining sequence (fullwidth digits and letters, ligatures, mathematical
//! alphanumerics, NBSP and ideographic space fold to ASCII); default-ignorable characters
//! dropped (zero-width spaces and joiners, bidi controls, soft hyphen, variation selectors, tag
//! characters); every remaining non-ASCII character that UTS #39 says is confusable with one
//! ASCII character replaced by it (Cyrillic `а`, Greek `ο`, `ı`, `’`, ... — see
//! [`fold_char`]), decimal digits of other scripts (Arabic-Indic, Devanagari, Thai, ...) and
//! Unicode dashes folded to ASCII; and bracketed spellings `[at]` `(at)` `{at}` `[dot]` `(dot)`
//! (any case, with the spaces around them) folded to `@` and `.`. The word spellings ` at ` /
//! ` dot ` are left to the EMAIL detector, which accepts them only in an address shape.
//! Separators inside numbers are left in place: each numeric detector accepts the separators
//! people write (spaces, dashes, dots), so the original grouping still validates.
//!
//! Accented letters are kept (`é` is not confusable with one ASCII character), so names and
//! prose in other languages are not mangled; only look-alikes collapse.
//!
//! ASCII text without brackets is the common case and costs one scan: the normalized text is
//! the original, borrowed, with the identity map.

use std::borrow::Cow;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;

/// Compiled once per engine.
#[derive(Debug, Clone)]
pub(crate) struct Normalizer {
    spelled: Regex,
}

/// Normalized text and its map back to the original.
#[derive(Debug)]
pub(crate) struct Normalized<'a> {
    text: Cow<'a, str>,
    /// Per normalized byte: the original span of the segment that produced it. Empty when the
    /// map is the identity.
    starts: Vec<usize>,
    ends: Vec<usize>,
    mapped: bool,
    original_len: usize,
}

/// Unicode default-ignorable code points (and the invisible fillers) that an attacker can put
/// inside a value without changing how it reads.
pub(crate) fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Zero of each script's decimal digits (Unicode `Nd` runs of ten) that NFKC leaves alone.
const DIGIT_ZEROS: [u32; 22] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0,
];

/// One character after NFKC: non-ASCII digits, dashes and single-character confusables
/// folded to ASCII; anything else unchanged.
pub(crate) fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let cp = c as u32;
    for zero in DIGIT_ZEROS {
        if (zero..zero + 10).contains(&cp) {
            return char::from_digit(cp - zero, 10).unwrap_or(c);
        }
    }
    if matches!(
        c,
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}'
    ) {
        return '-';
    }
    let mut buf = [0u8; 4];
    let mut skeleton = unicode_security::skeleton(c.encode_utf8(&mut buf));
    match (skeleton.next(), skeleton.next()) {
        (Some(a), None) if a.is_ascii_graphic() => a,
        _ => c,
    }
}

struct Folded {
    text: String,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl Folded {
    fn with_capacity(n: usize) -> Folded {
        Folded {
            text: String::with_capacity(n),
            starts: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, c: char, start: usize, end: usize) {
        let before = self.text.len();
        self.text.push(c);
        for _ in before..self.text.len() {
            self.starts.push(start);
            self.ends.push(end);
        }
    }
}

/// NFKC per combining sequence and ignorable characters dropped; `None` when the text is
/// unchanged (all ASCII).
fn fold(text: &str) -> Option<Folded> {
    if text.is_ascii() {
        return None;
    }
    let mut out = Folded::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((a, c)) = chars.next() {
        let mut b = a + c.len_utf8();
        while let Some(&(i, d)) = chars.peek() {
            if canonical_combining_class(d) == 0 {
                break;
            }
            b = i + d.len_utf8();
            chars.next();
        }
        let single = b == a + c.len_utf8();
        if single && c.is_ascii() {
            out.push(c, a, b);
            continue;
        }
        if single && is_ignorable(c) {
            continue;
        }
        for n in text.get(a..b).unwrap_or("").nfkc() {
            if !is_ignorable(n) {
                out.push(fold_char(n), a, b);
            }
        }
    }
    Some(out)
}

/// Whether `s` contains a bracketed spelling (`self.spelled`'s `is_match`, without running
/// the regex: most texts have brackets, few have spellings). `(?i:at|dot)` has no non-ASCII
/// case variants, so the ASCII comparison is exact.
fn has_spelled(s: &str) -> bool {
    let b = s.as_bytes();
    let blank = |i: &mut usize| {
        while matches!(b.get(*i), Some(b' ' | b'\t')) {
            *i += 1;
        }
    };
    for open in memchr::memchr3_iter(b'[', b'(', b'{', b) {
        let mut i = open + 1;
        blank(&mut i);
        let word = |w: &[u8]| {
            b.get(i..i + w.len())
                .is_some_and(|x| x.eq_ignore_ascii_case(w))
        };
        if word(b"at") {
            i += 2;
        } else if word(b"dot") {
            i += 3;
        } else {
            continue;
        }
        blank(&mut i);
        if matches!(b.get(i), Some(b']' | b')' | b'}')) {
            return true;
        }
    }
    false
}

impl Normalizer {
    pub(crate) fn new() -> Result<Normalizer, String> {
        let spelled = Regex::new(r"[\[({][ \t]*(?i:at|dot)[ \t]*[\])}]")
            .map_err(|e| format!("built-in normalisation pattern: {e}"))?;
        Ok(Normalizer { spelled })
    }

    pub(crate) fn normalize<'a>(&self, text: &'a str) -> Normalized<'a> {
        let folded = fold(text);
        let s1: &str = folded.as_ref().map_or(text, |f| f.text.as_str());
        if has_spelled(s1) {
            let map1 = folded
                .as_ref()
                .map(|f| (f.starts.as_slice(), f.ends.as_slice()));
            let orig = |i: usize, end: bool| -> usize {
                match map1 {
                    Some((s, e)) => {
                        let v = if end { e.get(i) } else { s.get(i) };
                        v.copied().unwrap_or(text.len())
                    }
                    None => {
                        if end {
                            i + 1
                        } else {
                            i
                        }
                    }
                }
            };
            let mut out = Folded::with_capacity(s1.len());
            let copy = |out: &mut Folded, from: usize, to: usize| {
                if let Some(part) = s1.get(from..to) {
                    out.text.push_str(part);
                    for i in from..to {
                        out.starts.push(orig(i, false));
                        out.ends.push(orig(i, true));
                    }
                }
            };
            let mut last = 0;
            let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
            for m in self.spelled.find_iter(s1) {
                // The spaces around a spelled separator belong to it (`john [at] example`).
                let mut start = m.start();
                while start > last && blank(s1.as_bytes().get(start - 1)) {
                    start -= 1;
                }
                let mut end = m.end();
                while blank(s1.as_bytes().get(end)) {
                    end += 1;
                }
                copy(&mut out, last, start);
                let c = if m.as_str().bytes().any(|b| b == b'd' || b == b'D') {
                    '.'
                } else {
                    '@'
                };
                out.push(c, orig(start, false), orig(end - 1, true));
                last = end;
            }
            copy(&mut out, last, s1.len());
            return Normalized {
                text: Cow::Owned(out.text),
                starts: out.starts,
                ends: out.ends,
                mapped: true,
                original_len: text.len(),
            };
        }
        match folded {
            Some(f) => Normalized {
                text: Cow::Owned(f.text),
                starts: f.starts,
                ends: f.ends,
                mapped: true,
                original_len: text.len(),
            },
            None => Normalized {
                text: Cow::Borrowed(text),
                starts: Vec::new(),
                ends: Vec::new(),
                mapped: false,
                original_len: text.len(),
            },
        }
    }
}

impl Normalized<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The original span for the normalized span `[start, end)`.
    pub(crate) fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        if !self.mapped {
            return (start, end);
        }
        let s = self.starts.get(start).copied().unwrap_or(self.original_len);
        if end <= start {
            return (s, s);
        }
        let e = self.ends.get(end - 1).copied().unwrap_or(self.original_len);
        (s, e.max(s))
    }

    /// The first normalized offset whose source starts at or after original offset `orig`.
    pub(crate) fn normalized_offset(&self, orig: usize) -> usize {
        if !self.mapped {
            return orig.min(self.text.len());
        }
        self.starts.partition_point(|&s| s < orig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm() -> Normalizer {
        match Normalizer::new() {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn ascii_is_borrowed_identity() {
        let n = norm();
        let t = "plain ascii (with parens) text";
        let out = n.normalize(t);
        assert!(matches!(out.text, Cow::Borrowed(_)));
        assert_eq!(out.to_original(6, 11), (6, 11));
    }

    #[test]
    fn fullwidth_zero_width_and_spellings_map_back() {
        let n = norm();
        let t = "id ４１\u{200B}１１ and jo\u{200D}hn [AT] example (dot) com!";
        let out = n.normalize(t);
        assert_eq!(out.as_str(), "id 4111 and john@example.com!");
        let s = out.as_str().find("4111").unwrap_or(0);
        let (os, oe) = out.to_original(s, s + 4);
        assert_eq!(&t[os..oe], "４１\u{200B}１１");
        let s = out.as_str().find("john").unwrap_or(0);
        let e = out.as_str().find('!').unwrap_or(0);
        let (os, oe) = out.to_original(s, e);
        assert_eq!(&t[os..oe], "jo\u{200D}hn [AT] example (dot) com");
        assert_eq!(out.normalized_offset(os), s);
    }

    #[test]
    fn confusables_digits_and_dashes_fold() {
        let n = norm();
        // Cyrillic а/о/е, Greek ο, Arabic-Indic and Devanagari digits, an en dash.
        let t = "p\u{0430}ssw\u{043E}rd j\u{03BF}hn \u{0664}\u{0661}\u{0967}\u{0967} 12\u{2013}34";
        let out = n.normalize(t);
        assert_eq!(out.as_str(), "password john 4111 12-34");
        // Accents stay.
        assert_eq!(n.normalize("José Zoë").as_str(), "José Zoë");
        // Tag characters vanish.
        assert_eq!(n.normalize("a\u{E0041}\u{E0042}b").as_str(), "ab");
    }

    /// `has_spelled` answers as the spelled-separator regex does, on random text dense in
    /// brackets, blanks and the letters of `at` / `dot` (checked to fail when broken).
    #[test]
    fn has_spelled_equals_regex() {
        let n = norm();
        let parts = [
            "[", "(", "{", "]", ")", "}", " ", "\t", "a", "A", "t", "T", "d", "D", "o", "O", "at",
            "dot", "DoT", "x", "é", "\n",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut positives = 0;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 12) as usize + 1;
            let mut t = String::new();
            let mut r = state;
            for _ in 0..len {
                r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                t.push_str(parts[(r >> 33) as usize % parts.len()]);
            }
            let want = n.spelled.is_match(&t);
            positives += usize::from(want);
            assert_eq!(has_spelled(&t), want, "{t:?}");
        }
        assert!(positives > 100, "{positives}");
    }

    #[test]
    fn combining_sequences_compose() {
        let n = norm();
        let t = "cafe\u{301} ﬁne";
        let out = n.normalize(t);
        assert_eq!(out.as_str(), "café fine");
        let (os, oe) = out.to_original(3, 5);
        assert_eq!(&t[os..oe], "e\u{301}");
    }
}
