//! Tests: the guard engine's work is linear in the text's length, for crafted inputs of every
//! shape a detector looks at (each class: time at 4× the size under 6× the time, the minimum of
//! a few runs), for random adversarial texts from a seeded generator (the property target),
//! and for streamed answers; and guard work leaves the async runtime responsive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::tests::{custom_regex, engine_with, full_policy, gref, pii};
use super::engine::{CompiledGuardrail, EmbeddedGuardrails};
use super::pii::PiiEntity;
use super::policy::{
    ContentFilterConfig, ContentFilterType, ContentPolicy, GuardrailPolicy, PiiAction, Strength,
};
use super::{Guardrail, Source, StreamStep};

/// Every PII type anonymized, gated and ungated custom regexes with unbounded repetition,
/// words, profanity, topics and every content filter: every detector the engine has.
fn hostile_policy() -> GuardrailPolicy {
    let mut p = full_policy();
    let sip = p
        .sensitive_information_policy_config
        .get_or_insert_with(Default::default);
    sip.pii_entities_config = PiiEntity::all()
        .map(|e| pii(e.name(), PiiAction::Anonymize))
        .collect();
    sip.regexes_config.push(custom_regex(
        "ticket",
        r"TKT-[A-Z\-]*[0-9]{3}",
        PiiAction::Anonymize,
    ));
    sip.regexes_config.push(custom_regex(
        "order",
        r"(?i)order[ #:]*[A-Z0-9\-]+!",
        PiiAction::Anonymize,
    ));
    sip.regexes_config.push(custom_regex(
        "loose",
        r"[a-z]+-[a-z]+=[0-9]+;",
        PiiAction::Anonymize,
    ));
    p.content_policy_config = Some(ContentPolicy {
        filters_config: ContentFilterType::ALL
            .iter()
            .map(|&filter_type| ContentFilterConfig {
                filter_type,
                input_strength: Strength::Low,
                // Bedrock has no output strength for PROMPT_ATTACK.
                output_strength: if filter_type == ContentFilterType::PromptAttack {
                    Strength::None
                } else {
                    Strength::Low
                },
                input_modalities: None,
                output_modalities: None,
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            })
            .collect(),
        tier_config: None,
    });
    p
}

fn hostile() -> (EmbeddedGuardrails, Arc<CompiledGuardrail>) {
    let e = engine_with(hostile_policy());
    let g = Arc::clone(e.get(&gref()).unwrap());
    (e, g)
}

/// `unit` repeated to `len` bytes, then `tail`.
fn fill(unit: &str, len: usize, tail: &str) -> String {
    let mut t = String::with_capacity(len + tail.len() + unit.len());
    while t.len() < len {
        t.push_str(unit);
    }
    t.push_str(tail);
    t
}

/// Held by every timing test, so they do not disturb one another.
static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn timing() -> std::sync::MutexGuard<'static, ()> {
    TIMING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fastest of `runs` runs of `f` (wall time: the minimum is the run least disturbed by
/// other work on the machine).
fn fastest(runs: usize, f: &dyn Fn()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Asserts that `f` on `large` (4× `small`) takes under `limit`× its time on `small` (or is
/// too fast to tell: under 80 ms), and returns the two times. On a busy machine one comparison
/// can be disturbed, so it is made up to three times; a quadratic `f` (16×) fails every one.
fn assert_linear_within(
    limit: u32,
    name: &str,
    small: &str,
    large: &str,
    f: &dyn Fn(&str),
) -> (Duration, Duration) {
    let mut last = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        let a = fastest(3, &|| f(small));
        let b = fastest(3, &|| f(large));
        if b < a * limit || b < Duration::from_millis(80) {
            return (a, b);
        }
        last = (a, b);
    }
    panic!(
        "{name}: {} bytes took {:?}, {} bytes {:?}",
        small.len(),
        last.0,
        large.len(),
        last.1
    );
}

/// [`assert_linear_within`] 6×: the issue's bound, for its inputs at 16 KB and 64 KB.
fn assert_linear(name: &str, small: &str, large: &str, f: &dyn Fn(&str)) -> (Duration, Duration) {
    assert_linear_within(6, name, small, large, f)
}

/// The sweeps' bound, at 8 KB and 32 KB: small texts in a debug build carry fixed costs and
/// cache effects that put some linear classes near 6×; a quadratic one is at 16×.
const SWEEP_LIMIT: u32 = 9;

fn apply_both(g: &CompiledGuardrail, text: &str) {
    std::hint::black_box(g.apply(Source::Input, text));
}

const KB: usize = 1024;

/// The review's four inputs, 16 KB against 64 KB.
#[test]
fn the_reviewed_inputs_are_linear() {
    let _serial = timing();
    let (_e, g) = hostile();
    let apply = |t: &str| apply_both(&g, t);
    for (name, unit, tail) in [
        // Every word start before an `@` was an EMAIL candidate scanning to the `@`.
        ("email run before @", "a.", "a@!"),
        // A validator-rejected spelled address resumed one character after its start.
        ("spelled chain", "x dot ", "x at y dot z at "),
        ("spelled rejections", "x at y dot z ", ""),
        // A prefix-gated custom regex anchored at every occurrence of its literal.
        ("gated literal run", "TKT-", "!"),
    ] {
        let (a, b) = assert_linear(
            name,
            &fill(unit, 16 * KB, tail),
            &fill(unit, 64 * KB, tail),
            &apply,
        );
        eprintln!("{name}: 16 KB {a:?}, 64 KB {b:?}");
    }
}

/// Streaming `1 1 1 ...` word by word re-derived the hold-back (and re-guarded the context)
/// on every push.
#[test]
fn streaming_word_by_word_is_linear() {
    let _serial = timing();
    let (e, _g) = hostile();
    let mut no_topics = hostile_policy();
    no_topics.topic_policy_config = None;
    no_topics.content_policy_config = None;
    let e2 = engine_with(no_topics);
    for (label, engine) in [("topics", &e), ("no topics", &e2)] {
        for unit in ["1 ", "Aa ", "x dot ", "a."] {
            let stream = |t: &str| {
                let mut s = engine.stream_sync(&gref()).unwrap();
                let mut out = 0usize;
                for w in t.split_inclusive(' ') {
                    match s.push_sync(w) {
                        StreamStep::Release(r) => out += r.len(),
                        StreamStep::Blocked(_) => return,
                    }
                }
                if let StreamStep::Release(r) = s.finish_sync() {
                    out += r.len();
                }
                std::hint::black_box(out);
            };
            let (a, b) = assert_linear(
                &format!("stream {label} {unit:?}"),
                &fill(unit, 16 * KB, ""),
                &fill(unit, 64 * KB, ""),
                &stream,
            );
            eprintln!("stream {label} {unit:?}: 16 KB {a:?}, 64 KB {b:?}");
        }
    }
}

/// Runs of each byte class and cue a detector starts at, or reads through.
const ADVERSARIAL_UNITS: &[&str] = &[
    "1 ",
    "1",
    "1-",
    "1.",
    "12 ",
    "123-",
    "1234 ",
    "4111 ",
    "9",
    "A ",
    "AB",
    "Aa ",
    "ABCDEF ",
    "GB82 ",
    "Mr Aa ",
    "1 Aa ",
    "Aa-",
    ".",
    "-",
    "@",
    "a@",
    "a@a.",
    "@a",
    ":",
    "a:",
    "1:",
    "ab:",
    "::1",
    "+1 ",
    "(1",
    "(555) ",
    "a",
    "a ",
    "_a",
    "x dot ",
    " at ",
    "at ",
    "x at y dot ",
    "[at] ",
    "(dot) ",
    "a [dot] ",
    "http://",
    "http://a",
    "https://a.b)",
    ")",
    "www.",
    "www.a-",
    "secret ",
    "secret=",
    "secret-",
    "password ",
    "password is ",
    "pass: ",
    "my name is ",
    "Dear ",
    "called Aa ",
    "routing number ",
    "account ",
    "ssn ",
    "cvv ",
    "exp ",
    "pin ",
    "age ",
    "passport ",
    "driver license ",
    "plate ",
    "user name ",
    "health card ",
    "nhs ",
    "utr ",
    "vin ",
    "p.o. box ",
    "AKIA",
    "TKT-",
    "TKT-A",
    "order ",
    "order #",
    "a-a",
    "a-b=1",
    "sh1t ",
    "b@n",
    "$",
    "!",
    "5h!",
    "Project ",
    "Project Falcon ",
    "ignore ",
    "ignore all ",
    "you are ",
    "<|im_start|>",
    "[inst]",
    "###",
    "decode ",
    "QUJD",
    "QUJDREVG",
    "aWdub3Jl",
    "stocks ",
    "invest ",
    "\n",
    ". ",
    "\u{200B}",
    "\u{FF11}",
    "\u{0661}",
    "\u{0430}",
    "\u{E0041}",
    "\u{202E}",
    "\u{00A0}",
    "\u{2013}",
    "\u{FF20}",
];

/// The property target: random adversarial texts (each a random mix of a few units, repeated
/// with random noise), from a fixed seed; the engine's time on each at 4× the length stays
/// under 9× its time at 1× (quadratic: 16×).
#[test]
fn random_adversarial_texts_take_linear_time() {
    let _serial = timing();
    let (_e, g) = hostile();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n.max(1)
    };
    let started = Instant::now();
    let mut worst = (0.0f64, String::new());
    for round in 0..48 {
        // A recipe: 1 to 4 units, some noise, repeated.
        let parts: Vec<&str> = (0..1 + next(4))
            .map(|_| ADVERSARIAL_UNITS[next(ADVERSARIAL_UNITS.len())])
            .collect();
        let noise = next(3) == 0;
        let seed = next(1 << 30) as u64;
        let make = |len: usize| {
            let mut s = seed;
            let mut t = String::new();
            while t.len() < len {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let k = (s >> 33) as usize;
                t.push_str(parts[k % parts.len()]);
                if noise && k.is_multiple_of(7) {
                    t.push(' ');
                }
            }
            t
        };
        let (small, large) = (make(8 * KB), make(32 * KB));
        let name = format!("round {round}: {parts:?}");
        let (a, b) =
            assert_linear_within(SWEEP_LIMIT, &name, &small, &large, &|t| apply_both(&g, t));
        let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        if ratio > worst.0 {
            worst = (ratio, name);
        }
    }
    eprintln!(
        "48 random adversarial recipes in {:?}; worst 4x ratio {:.2} ({})",
        started.elapsed(),
        worst.0,
        worst.1
    );
}

/// Every adversarial unit on its own, repeated: 8 KB against 32 KB.
#[test]
fn every_adversarial_class_is_linear() {
    let _serial = timing();
    let (_e, g) = hostile();
    for unit in ADVERSARIAL_UNITS {
        assert_linear_within(
            SWEEP_LIMIT,
            &format!("{unit:?}"),
            &fill(unit, 8 * KB, ""),
            &fill(unit, 32 * KB, ""),
            &|t| apply_both(&g, t),
        );
    }
}

/// Big guard work on a one-thread runtime leaves it free: a cheap task completes promptly
/// while two crafted texts are being guarded (inline, they would hold the only thread).
#[test]
fn guard_work_leaves_the_runtime_responsive() {
    let _serial = timing();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let e = Arc::new(engine_with(hostile_policy()));
        let text = Arc::new(fill("1 Aa x dot a.", 256 * KB, "a@!"));
        let started = Instant::now();
        let work: Vec<_> = (0..2)
            .map(|_| {
                let (e, text) = (Arc::clone(&e), Arc::clone(&text));
                tokio::spawn(async move {
                    let r = e.apply(&gref(), Source::Input, &text).await;
                    (r.is_ok(), started.elapsed())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t = Instant::now();
        tokio::spawn(async { tokio::task::yield_now().await })
            .await
            .unwrap();
        let cheap = t.elapsed();
        let mut slowest = Duration::ZERO;
        for w in work {
            let (ok, took) = w.await.unwrap();
            assert!(ok);
            slowest = slowest.max(took);
        }
        eprintln!("cheap task {cheap:?} while guard work took {slowest:?}");
        assert!(
            cheap < Duration::from_millis(50),
            "cheap task took {cheap:?}"
        );
        assert!(
            slowest > cheap * 4,
            "guard work too small to tell: {slowest:?}"
        );
    });
}

/// The async stream guard works off the runtime too, and gives the same text as the sync one.
#[test]
fn async_stream_guard_equals_sync() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let e = engine_with(hostile_policy());
        let text = "Mail jane.roe@example.org or call +1 (415) 555-0199; 1 1 1 1. Done.\n";
        let text = text.repeat(40);
        let mut sync = e.stream_sync(&gref()).unwrap();
        let mut want = String::new();
        for w in text.split_inclusive(' ') {
            if let StreamStep::Release(r) = sync.push_sync(w) {
                want.push_str(&r);
            }
        }
        if let StreamStep::Release(r) = sync.finish_sync() {
            want.push_str(&r);
        }
        let mut s = e.stream(&gref()).await.unwrap();
        let mut got = String::new();
        for w in text.split_inclusive(' ') {
            if let Ok(StreamStep::Release(r)) = s.push(w).await {
                got.push_str(&r);
            }
        }
        if let Ok(StreamStep::Release(r)) = s.finish().await {
            got.push_str(&r);
        }
        assert_eq!(got, want);
        assert!(!got.contains("jane.roe"));
    });
}
