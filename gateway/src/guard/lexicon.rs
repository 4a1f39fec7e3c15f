//! Whole-word phrase lookup without an automaton: a set of ASCII patterns matched
//! case-insensitively at word boundaries, leftmost-longest and without overlaps — exactly what
//! [`engine::scan`](super::engine::scan) finds with a leftmost-longest Aho-Corasick automaton
//! over the same patterns, at a fraction of the cost for large sets.
//!
//! A match of a pattern that begins with a letter or digit must begin at a word start, and
//! there the text's run of ASCII letters and digits equals the pattern's leading run (the
//! pattern's *head*). So the text is walked word by word: each word's run is hashed once and
//! looked up in a table of heads, and only the few patterns sharing that head are compared
//! byte for byte. Patterns that begin with another byte (`.net`, `-rf`) may begin anywhere and
//! are looked up by that byte. A space in a pattern matches any run of ASCII whitespace (the
//! automaton is given the text with such runs folded to one space). A 10,000-word automaton's states don't fit in cache; this
//! table does, and it is probed once per word instead of stepped once per byte.

/// The class of a text byte for the walk.
const SKIP: u8 = 0;
const ALNUM: u8 = 1;
/// A byte some pattern begins with that is not a letter or digit.
const LEAD: u8 = 2;

/// One head in the open-addressed table: its hash, and its patterns (a range of `order`).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: u64,
    start: u32,
    len: u32,
}

/// Patterns compiled for [`scan`](Lexicon::scan) and [`whole`](Lexicon::whole).
#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    /// Every pattern, lower-cased, concatenated; `spans[i]` is pattern `i`'s range.
    bytes: Vec<u8>,
    spans: Vec<(u32, u32)>,
    /// Pattern indices grouped by head (each group longest first), then by leading byte.
    order: Vec<u32>,
    slots: Vec<Slot>,
    /// One bit per hash bucket that has a head: most words are turned away here, in a bit set
    /// that stays in the L1 cache, without touching the table.
    filter: Vec<u64>,
    filter_shift: u32,
    /// Per byte: its patterns in `order` when it is a [`LEAD`] byte.
    leads: Vec<(u32, u32)>,
    /// Whether any byte is a lead byte (asked once per text, so kept rather than counted).
    any_lead: bool,
    class: [u8; 256],
    /// The longest head: longer runs are not looked up.
    max_head: usize,
    /// Bit `n` set when some head is `n` bytes long (bit 63: 63 or more): a run of another
    /// length is turned away before it is hashed.
    head_lengths: u64,
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// The hash of a run of ASCII letters and digits, case-folded (`| 0x20` lower-cases letters
/// and keeps digits).
fn run_hash(run: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (run.len() as u64).wrapping_mul(K);
    for chunk in run.chunks(8) {
        let mut w = [0u8; 8];
        for (slot, &c) in w.iter_mut().zip(chunk) {
            *slot = c | 0x20;
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h
}

/// [`run_hash`] of `b[s..s + n]`, loading short runs with one read.
fn run_hash_at(b: &[u8], s: usize, n: usize) -> u64 {
    if (1..=8).contains(&n)
        && let Some(word) = b.get(s..s + 8).and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mask = if n == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        };
        let w = (u64::from_le_bytes(word) | 0x2020_2020_2020_2020) & mask;
        return ((n as u64).wrapping_mul(K).rotate_left(5) ^ w).wrapping_mul(K);
    }
    run_hash(b.get(s..s + n).unwrap_or(&[]))
}

/// Bit `k` set when `chunk[k]` (up to 64 bytes) is an ASCII letter or digit: a flag byte per
/// input byte (a loop the compiler vectorises), then eight flags at a time gathered into one
/// byte of the mask with a multiply.
fn alnum_mask(chunk: &[u8]) -> u64 {
    let mut flags = [0u8; 64];
    for (flag, &c) in flags.iter_mut().zip(chunk) {
        *flag = u8::from(((c | 0x20).wrapping_sub(b'a') < 26) | (c.wrapping_sub(b'0') < 10));
    }
    let mut mask = 0u64;
    for (i, eight) in flags.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(eight).unwrap_or_default());
        // Byte k's flag (0 or 1) lands in bit 56 + k.
        mask |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i);
    }
    mask
}

/// Every maximal run of ASCII letters and digits in `b`, as `[start, end)`, in order, into
/// `out` (cleared first). 64 bytes at a time: a bit mask of the block's letters and digits,
/// whose rising and falling edges are the runs' starts and ends. The one walk over a text's
/// bytes that the word-level policies share.
pub(crate) fn ascii_runs(b: &[u8], out: &mut Vec<(usize, usize)>) {
    out.clear();
    // The start of the run still open at the end of the last block.
    let mut open: Option<usize> = None;
    for (block, chunk) in b.chunks(64).enumerate() {
        let mask = alnum_mask(chunk);
        let shifted = (mask << 1) | u64::from(open.is_some());
        let mut starts = mask & !shifted;
        // In a short last block, a run that reaches the end ends at bit `chunk.len()`.
        let mut ends = !mask & shifted;
        let base = block * 64;
        // Starts and ends alternate: each end closes the open run or the block's next start.
        if ends != 0
            && let Some(s) = open.take()
        {
            out.push((s, base + ends.trailing_zeros() as usize));
            ends &= ends - 1;
        }
        while ends != 0 {
            let s = base + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            out.push((s, base + ends.trailing_zeros() as usize));
            ends &= ends - 1;
        }
        if starts != 0 {
            open = Some(base + starts.trailing_zeros() as usize);
        }
    }
    if let Some(s) = open {
        out.push((s, b.len()));
    }
}

/// Whether the character ending at `text[..i]` is a letter or digit.
fn alnum_before(text: &str, i: usize) -> bool {
    text.get(..i)
        .and_then(|t| t.chars().next_back())
        .is_some_and(char::is_alphanumeric)
}

/// Whether `text[s..e]` sits at word boundaries: no letter or digit on either side of an
/// edge that is one.
pub(crate) fn bounded(text: &str, s: usize, e: usize) -> bool {
    let Some(word) = text.get(s..e) else {
        return false;
    };
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let first = word.chars().next();
    let last = word.chars().next_back();
    let after = text.get(e..).and_then(|t| t.chars().next());
    !((alnum(first) && alnum_before(text, s)) || (alnum(last) && alnum(after)))
}

/// Where pattern `p` ends when it occurs at `b[s..]`: bytes equal ignoring ASCII case, a
/// space matching one or more ASCII whitespace bytes.
fn match_at(b: &[u8], s: usize, p: &[u8]) -> Option<usize> {
    let mut i = s;
    for &c in p {
        let &t = b.get(i)?;
        if c == b' ' {
            if !t.is_ascii_whitespace() {
                return None;
            }
            while b.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
        } else if t.eq_ignore_ascii_case(&c) {
            i += 1;
        } else {
            return None;
        }
    }
    Some(i)
}

impl Lexicon {
    /// Compile `patterns` (ASCII; empty ones never match). Match ids are pattern indices.
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Lexicon {
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        for p in patterns {
            let start = bytes.len() as u32;
            bytes.extend(p.bytes().map(|c| c.to_ascii_lowercase()));
            spans.push((start, p.len() as u32));
        }
        let pattern = |i: usize| {
            spans
                .get(i)
                .and_then(|&(s, l)| bytes.get(s as usize..(s + l) as usize))
                .unwrap_or(&[])
        };
        let head_len = |p: &[u8]| p.iter().take_while(|c| is_alnum(**c)).count();
        // Group by head hash (or leading byte), each group longest first.
        let mut headed: Vec<(u64, usize, usize)> = Vec::new();
        let mut led: Vec<(u8, usize, usize)> = Vec::new();
        let mut max_head = 0;
        let mut head_lengths = 0u64;
        for i in 0..spans.len() {
            let p = pattern(i);
            let Some(&first) = p.first() else { continue };
            let n = head_len(p);
            if n > 0 {
                max_head = max_head.max(n);
                head_lengths |= 1 << n.min(63);
                headed.push((run_hash(p.get(..n).unwrap_or(&[])), usize::MAX - p.len(), i));
            } else {
                led.push((first, usize::MAX - p.len(), i));
            }
        }
        headed.sort_unstable();
        led.sort_unstable();
        let mut order: Vec<u32> = Vec::new();
        let mut groups: Vec<(u64, u32, u32)> = Vec::new();
        for &(h, _, i) in &headed {
            match groups.last_mut() {
                Some(g) if g.0 == h => g.2 += 1,
                _ => groups.push((h, order.len() as u32, 1)),
            }
            order.push(i as u32);
        }
        let size = (groups.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![Slot::default(); size];
        for &(hash, start, len) in &groups {
            let mut k = (hash as usize) & (size - 1);
            while slots.get(k).is_some_and(|s| s.len != 0) {
                k = (k + 1) & (size - 1);
            }
            if let Some(s) = slots.get_mut(k) {
                *s = Slot { hash, start, len };
            }
        }
        let filter_bits = (groups.len() * 8)
            .next_power_of_two()
            .clamp(1 << 10, 1 << 20);
        let filter_shift = 64 - filter_bits.trailing_zeros();
        let mut filter = vec![0u64; filter_bits / 64];
        for &(hash, _, _) in &groups {
            let bit = (hash >> filter_shift) as usize;
            if let Some(w) = filter.get_mut(bit / 64) {
                *w |= 1 << (bit % 64);
            }
        }
        let mut class = [SKIP; 256];
        for c in 0..=255u8 {
            if is_alnum(c) {
                class[usize::from(c)] = ALNUM;
            }
        }
        let mut leads = vec![(0u32, 0u32); 256];
        for &(c, _, i) in &led {
            class[usize::from(c)] = LEAD;
            if let Some(l) = leads.get_mut(usize::from(c)) {
                if l.1 == 0 {
                    l.0 = order.len() as u32;
                }
                l.1 += 1;
            }
            order.push(i as u32);
        }
        Lexicon {
            bytes,
            spans,
            order,
            slots,
            filter,
            filter_shift,
            any_lead: !led.is_empty(),
            leads,
            class,
            max_head,
            head_lengths,
        }
    }

    fn pattern(&self, i: u32) -> &[u8] {
        self.spans
            .get(i as usize)
            .and_then(|&(s, l)| self.bytes.get(s as usize..(s + l) as usize))
            .unwrap_or(&[])
    }

    /// The patterns whose head is `b[s..s + n]` (or a hash-equal run).
    #[inline]
    fn headed(&self, b: &[u8], s: usize, n: usize) -> &[u32] {
        if self.head_lengths & (1 << n.min(63)) == 0 {
            return &[];
        }
        let hash = run_hash_at(b, s, n);
        let bit = (hash >> self.filter_shift) as usize;
        if self
            .filter
            .get(bit / 64)
            .is_none_or(|w| w & (1 << (bit % 64)) == 0)
        {
            return &[];
        }
        let mask = self.slots.len() - 1;
        let mut k = (hash as usize) & mask;
        while let Some(s) = self.slots.get(k) {
            if s.len == 0 {
                return &[];
            }
            if s.hash == hash {
                return self
                    .order
                    .get(s.start as usize..(s.start + s.len) as usize)
                    .unwrap_or(&[]);
            }
            k = (k + 1) & mask;
        }
        &[]
    }

    /// The longest of `candidates` that occurs at `text[s..]` at word boundaries: (end, id).
    fn longest(&self, candidates: &[u32], text: &str, s: usize) -> Option<(usize, usize)> {
        let b = text.as_bytes();
        candidates.iter().find_map(|&i| {
            let e = match_at(b, s, self.pattern(i))?;
            bounded(text, s, e).then_some((e, i as usize))
        })
    }

    /// The longest match beginning the letter/digit run `text[s..e]`, if that run starts a
    /// word: (end, pattern).
    fn at_run(&self, text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
        let b = text.as_bytes();
        if e - s > self.max_head
            || self.head_lengths & (1 << (e - s).min(63)) == 0
            || (s > 0 && b.get(s - 1).is_some_and(|&p| p >= 0x80) && alnum_before(text, s))
        {
            return None;
        }
        let cands = self.headed(b, s, e - s);
        if cands.is_empty() {
            return None;
        }
        self.longest(cands, text, s)
    }

    /// Every match in `text`, in order: `push(start, end, pattern)`.
    pub(crate) fn scan(&self, text: &str, push: &mut impl FnMut(usize, usize, usize)) {
        let b = text.as_bytes();
        let mut i = 0;
        // Matches don't overlap: the next may begin at `next`.
        let mut next = 0;
        while let Some(&c) = b.get(i) {
            match self.class[usize::from(c)] {
                SKIP => i += 1,
                LEAD => {
                    if i >= next {
                        let (start, len) =
                            self.leads.get(usize::from(c)).copied().unwrap_or((0, 0));
                        let cands = self
                            .order
                            .get(start as usize..(start + len) as usize)
                            .unwrap_or(&[]);
                        if let Some((e, id)) = self.longest(cands, text, i) {
                            push(i, e, id);
                            next = e;
                        }
                    }
                    i += 1;
                }
                _ => {
                    let s = i;
                    while b.get(i).copied().is_some_and(is_alnum) {
                        i += 1;
                    }
                    if s >= next
                        && let Some((e, id)) = self.at_run(text, s, i)
                    {
                        push(s, e, id);
                        next = e;
                    }
                }
            }
        }
    }

    /// Whether some pattern begins with a byte other than a letter or digit ([`scan_runs`]
    /// can't find those).
    ///
    /// [`scan_runs`]: Self::scan_runs
    pub(crate) fn has_leads(&self) -> bool {
        self.any_lead
    }

    /// [`scan`](Self::scan) for a lexicon without [lead bytes](Self::has_leads), given
    /// `text`'s [`ascii_runs`]: only the runs are looked at.
    pub(crate) fn scan_runs(
        &self,
        text: &str,
        runs: &[(usize, usize)],
        push: &mut impl FnMut(usize, usize, usize),
    ) {
        if self.has_leads() {
            self.scan(text, push);
            return;
        }
        let mut next = 0;
        for &(s, e) in runs {
            if s >= next
                && let Some((end, id)) = self.at_run(text, s, e)
            {
                push(s, end, id);
                next = end;
            }
        }
    }

    /// The pattern equal to `run` (ASCII letters and digits), ignoring case.
    pub(crate) fn whole(&self, run: &[u8]) -> Option<usize> {
        if run.len() > self.max_head {
            return None;
        }
        self.headed(run, 0, run.len())
            .iter()
            .find(|&&i| self.pattern(i).eq_ignore_ascii_case(run))
            .map(|&i| i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasickBuilder, MatchKind};

    fn automaton_scan(patterns: &[&str], text: &str) -> Vec<(usize, usize, usize)> {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(aho_corasick::StartKind::Both)
            .build(patterns)
            .unwrap();
        let collapsed = super::super::engine::collapse_ws(text);
        let (folded, jumps) = match &collapsed {
            Some((t, j)) => (t.as_str(), j.as_slice()),
            None => (text, &[][..]),
        };
        let mut out = Vec::new();
        super::super::engine::scan(&ac, folded, &mut |s, e, p| {
            let (s, e) = super::super::engine::uncollapse(jumps, s, e);
            out.push((s, e, p));
        });
        out
    }

    fn lexicon_scan(patterns: &[&str], text: &str) -> Vec<(usize, usize, usize)> {
        let lexicon = Lexicon::new(patterns.iter().copied());
        let mut out = Vec::new();
        lexicon.scan(text, &mut |s, e, p| out.push((s, e, p)));
        if !lexicon.has_leads() {
            let mut runs = Vec::new();
            ascii_runs(text.as_bytes(), &mut runs);
            let mut by_runs = Vec::new();
            lexicon.scan_runs(text, &runs, &mut |s, e, p| by_runs.push((s, e, p)));
            assert_eq!(by_runs, out, "runs of {text:?}");
        }
        out
    }

    #[test]
    fn finds_whole_words_longest_first() {
        let p = ["secret", "secret project", "c++", ".net", "-rf", "a.b", "x"];
        let text = "Secret projector; the SECRET PROJECT in c++ and .NET: rm -rf x a.b xa.b é-x";
        assert_eq!(lexicon_scan(&p, text), automaton_scan(&p, text));
        assert_eq!(
            lexicon_scan(&p, text)
                .iter()
                .map(|&(s, e, _)| &text[s..e])
                .collect::<Vec<_>>(),
            [
                "Secret",
                "SECRET PROJECT",
                "c++",
                ".NET",
                "-rf",
                "x",
                "a.b",
                "x"
            ]
        );
        assert_eq!(lexicon_scan(&p, "éx xé concat"), vec![]);
    }

    #[test]
    fn one_read_hash_equals_the_chunked_hash() {
        let text = b"aBc9 hello WORLD12 abcdefghij x";
        for s in 0..text.len() {
            for n in 1..=text.len() - s {
                assert_eq!(
                    run_hash_at(text, s, n),
                    run_hash(&text[s..s + n]),
                    "{s} {n}"
                );
            }
        }
    }

    #[test]
    fn alnum_mask_classifies_every_byte() {
        for c in 0..=255u8 {
            for at in [0, 5, 8, 13, 63] {
                let mut chunk = [b' '; 64];
                chunk[at] = c;
                let expected = u64::from(c.is_ascii_alphanumeric()) << at;
                assert_eq!(alnum_mask(&chunk), expected, "{c} at {at}");
                assert_eq!(alnum_mask(&chunk[..at + 1]), expected, "{c} at {at}, short");
            }
        }
    }

    #[test]
    fn ascii_runs_are_the_maximal_runs() {
        let mut seed = 0x2545_f491_u64;
        let mut runs = Vec::new();
        for len in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let text: Vec<u8> = (0..len)
                .map(|k| match (seed.rotate_left(k as u32 % 64) >> 3) % 5 {
                    0 => b' ',
                    1 => 0xC3,
                    2 => b'7',
                    _ => b'a' + (k % 26) as u8,
                })
                .collect();
            let mut expected = Vec::new();
            let mut i = 0;
            while i < text.len() {
                if text[i].is_ascii_alphanumeric() {
                    let s = i;
                    while i < text.len() && text[i].is_ascii_alphanumeric() {
                        i += 1;
                    }
                    expected.push((s, i));
                } else {
                    i += 1;
                }
            }
            ascii_runs(&text, &mut runs);
            assert_eq!(runs, expected, "{len}");
        }
    }

    #[test]
    fn whole_looks_up_exact_runs() {
        let l = Lexicon::new(["shit", "bananas", "a.b"]);
        assert_eq!(l.whole(b"SHIT"), Some(0));
        assert_eq!(l.whole(b"shits"), None);
        assert_eq!(l.whole(b"a"), None);
        assert_eq!(l.whole(b"bananas"), Some(1));
    }

    /// Random texts over an alphabet of pattern fragments, separators and non-ASCII letters:
    /// the walk finds exactly what the automaton finds.
    #[test]
    fn equals_the_automaton_scan() {
        let patterns_without_leads = [
            "ab", "abc", "abc def", "a", "7", "7a", "x y z", "def", "y z",
        ];
        let patterns = [
            "ab", "abc", "abc def", "a", "b-c", "-x", ".n", "q!", "7", "7a", "x y z", "xy", "ab'c",
            "def", "y z",
        ];
        let alphabet = [
            "ab", "abc", " ", "  ", "def", "-", ".", "n", "x", "y", "z", "q", "!", "7", "a", "é",
            "ß", "\u{301}", "'", "c", "b", "\t", "AB", "X",
        ];
        let mut seed = 0x1234_5678_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut matched = 0;
        for _ in 0..20_000 {
            let len = 1 + next(20);
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            let expected = automaton_scan(&patterns, &text);
            assert_eq!(
                lexicon_scan(&patterns_without_leads, &text),
                automaton_scan(&patterns_without_leads, &text),
                "{text:?}"
            );
            matched += usize::from(!expected.is_empty());
            assert_eq!(lexicon_scan(&patterns, &text), expected, "{text:?}");
        }
        assert!(matched > 5_000, "{matched}");
    }
}
