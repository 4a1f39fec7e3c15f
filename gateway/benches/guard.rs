//! Guardrail engine throughput on a ~1 MB mixed corpus (the fixed-seed generator in
//! `tests/guard/corpus.rs`: prose, PII of every type, benign look-alikes), single thread, one
//! `apply` per line (prompt-sized units), median of several rounds:
//!
//! - the default guardrail (`GuardrailPolicy::default_policy`);
//! - all 31 PII types + 10,000 custom words + 30 custom regexes (the configuration the issue
//!   names, nothing else);
//! - the same + PROFANITY + the default topics + every content filter (everything at once).
//!
//! With `--presidio PYTHON` (a Python with `presidio-analyzer` installed) it also runs
//! Microsoft Presidio (regex-only, `no_op` NLP engine) on the same lines in the same run and
//! reports the ratio.
//!
//! `cargo bench -p gateway --bench guard -- [--rounds 5] [--mb 1] [--breakdown] [--presidio PYTHON]`
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark harness"
)]

#[path = "../../tests/guard/corpus.rs"]
mod corpus;

use std::time::Instant;

use gateway::guard::Source;
use gateway::guard::engine::CompiledGuardrail;
use gateway::guard::pii::PiiEntity;
use gateway::guard::policy::{
    ContentFilterConfig, ContentFilterType, ContentPolicy, GuardrailPolicy, ManagedWordListConfig,
    PiiAction, PiiEntityConfig, RegexConfig, SensitiveInformationPolicy, Strength, WordConfig,
    WordPolicy,
};

/// What the issue names: all 31 PII types + 10,000 custom words + 30 custom regexes, and no
/// other policy (no topics, content filters or managed list).
fn named_policy() -> GuardrailPolicy {
    let full = full_policy();
    GuardrailPolicy {
        topic_policy_config: None,
        content_policy_config: None,
        word_policy_config: full.word_policy_config.map(|w| WordPolicy {
            managed_word_lists_config: vec![],
            ..w
        }),
        ..full
    }
}

/// Everything at once: [`named_policy`] + PROFANITY + the default topics + every content
/// filter at HIGH.
fn full_policy() -> GuardrailPolicy {
    let mut p = GuardrailPolicy::default_policy();
    let mut rng = corpus::Rng::new(7);
    let words: Vec<WordConfig> = (0..10_000)
        .map(|i| {
            let len = 5 + rng.below(6);
            let w: String = (0..len)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            WordConfig {
                text: if i % 10 == 0 {
                    format!("{w} {}", rng.upper(3).to_lowercase())
                } else {
                    w
                },
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            }
        })
        .collect();
    let regexes: Vec<RegexConfig> = (0..30)
        .map(|i| RegexConfig {
            name: format!("internal-id-{i}"),
            description: None,
            pattern: format!(
                r"\b{}{i:02}-[0-9]{{4,8}}\b",
                ["EMP", "PRJ", "TCK", "ACC", "SKU"][i % 5]
            ),
            action: PiiAction::Anonymize,
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        })
        .collect();
    p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
        pii_entities_config: PiiEntity::all()
            .map(|e| PiiEntityConfig {
                entity_type: e.name().to_string(),
                action: PiiAction::Anonymize,
                input_action: None,
                output_action: None,
                input_enabled: None,
                output_enabled: None,
            })
            .collect(),
        regexes_config: regexes,
    });
    p.word_policy_config = Some(WordPolicy {
        words_config: words,
        managed_word_lists_config: vec![ManagedWordListConfig {
            list_type: "PROFANITY".into(),
            input_action: None,
            output_action: None,
            input_enabled: None,
            output_enabled: None,
        }],
    });
    p.content_policy_config = Some(ContentPolicy {
        filters_config: ContentFilterType::ALL
            .iter()
            .map(|t| ContentFilterConfig {
                filter_type: *t,
                input_strength: Strength::High,
                output_strength: if *t == ContentFilterType::PromptAttack {
                    Strength::None
                } else {
                    Strength::High
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

/// This thread's CPU time in seconds (`/proc/thread-self/schedstat`), so other work on a
/// shared machine doesn't count; wall-clock when unavailable.
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn run(name: &str, g: &CompiledGuardrail, lines: &[&str], bytes: usize, rounds: usize) -> f64 {
    let mut secs = Vec::new();
    let mut intervened = 0;
    for _ in 0..rounds {
        intervened = 0;
        // Repeat the pass for at least 0.5 s: the kernel's CPU accounting is tick-grained.
        let t = Instant::now();
        let c = cpu_secs();
        let mut passes = 0u32;
        while passes == 0 || t.elapsed().as_secs_f64() < 0.5 {
            intervened = 0;
            for l in lines {
                let o = g.apply(Source::Input, l);
                if o.action != gateway::guard::TextAction::None {
                    intervened += 1;
                }
                std::hint::black_box(o);
            }
            passes += 1;
        }
        let wall = t.elapsed().as_secs_f64();
        let spent = match (c, cpu_secs()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall,
        };
        secs.push(spent / f64::from(passes));
    }
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let mbps = bytes as f64 / median / 1e6;
    println!(
        "{name:<48} {mbps:>8.1} MB/s  (median of {rounds}: {:.1} ms thread CPU for {bytes} bytes, {} lines, {intervened} intervened)",
        median * 1e3,
        lines.len()
    );
    mbps
}

fn main() {
    let mut rounds = 5usize;
    let mut mb = 1usize;
    let mut presidio: Option<String> = None;
    let mut breakdown = false;
    let mut per_type = false;
    let mut default_only = false;
    let mut part: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().unwrap().parse().unwrap(),
            "--mb" => mb = it.next().unwrap().parse().unwrap(),
            "--presidio" => presidio = it.next(),
            "--breakdown" => breakdown = true,
            "--per-type" => per_type = true,
            "--default-only" => default_only = true,
            "--part" => {
                part = it.next();
                breakdown = true;
            }
            _ => {}
        }
    }
    let text = corpus::mixed(0x5EED_2026, mb << 20);
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    println!(
        "corpus: {bytes} bytes in {} lines (seed 0x5eed2026)",
        lines.len()
    );

    let t = Instant::now();
    let default =
        CompiledGuardrail::from_policy("default", &GuardrailPolicy::default_policy()).unwrap();
    println!("compile default: {:?}", t.elapsed());
    let t = Instant::now();
    let named = CompiledGuardrail::from_policy("named", &named_policy()).unwrap();
    println!(
        "compile 31 types + 10,000 words + 30 regexes: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let full = CompiledGuardrail::from_policy("full", &full_policy()).unwrap();
    println!(
        "compile 31 types + 10,000 words + 30 regexes + filters: {:?}",
        t.elapsed()
    );

    // With `--part NAME`, only the parts whose label contains NAME run (a profile then shows
    // them alone): e.g. `--part default`, `--part 31 types` (the full configuration), `--part PII`.
    let wanted = |name: &str| part.as_deref().is_none_or(|want| name.contains(want));
    let d = if wanted("default guardrail") {
        run("default guardrail", &default, &lines, bytes, rounds)
    } else {
        1.0
    };
    if default_only {
        return;
    }
    let n = if wanted("31 types + 10k words + 30 regexes (as named)") {
        run(
            "31 types + 10k words + 30 regexes (as named)",
            &named,
            &lines,
            bytes,
            rounds,
        )
    } else {
        1.0
    };
    let f = if wanted("31 types + 10k words + 30 regexes + filters") {
        run(
            "31 types + 10k words + 30 regexes + filters",
            &full,
            &lines,
            bytes,
            rounds,
        )
    } else {
        1.0
    };
    if breakdown {
        let all = full_policy();
        let base = GuardrailPolicy {
            sensitive_information_policy_config: None,
            word_policy_config: None,
            topic_policy_config: None,
            content_policy_config: None,
            ..all.clone()
        };
        let mut pii = base.clone();
        pii.sensitive_information_policy_config = all.sensitive_information_policy_config.clone();
        if let Some(s) = pii.sensitive_information_policy_config.as_mut() {
            s.regexes_config.clear();
        }
        let mut regexes = base.clone();
        regexes.sensitive_information_policy_config =
            all.sensitive_information_policy_config.clone();
        if let Some(s) = regexes.sensitive_information_policy_config.as_mut() {
            s.pii_entities_config.clear();
        }
        let mut words = base.clone();
        words.word_policy_config = all.word_policy_config.clone();
        let mut content = base.clone();
        content.content_policy_config = all.content_policy_config.clone();
        let mut topics = base.clone();
        topics.topic_policy_config = all.topic_policy_config.clone();
        for (name, p) in [
            ("  no policies (normalise + apply overhead)", base.clone()),
            ("  only 31 PII types", pii),
            ("  only 30 regexes", regexes),
            ("  only 10k words + PROFANITY", words),
            ("  only content filters", content),
            ("  only denied topics", topics),
        ] {
            if !wanted(name) {
                continue;
            }
            let g = CompiledGuardrail::from_policy("part", &p).unwrap();
            run(name, &g, &lines, bytes, rounds);
        }
    }

    if per_type {
        for e in PiiEntity::all() {
            if part.as_deref().is_some_and(|want| !e.name().contains(want)) {
                continue;
            }
            let mut p = GuardrailPolicy::default_policy();
            p.topic_policy_config = None;
            p.sensitive_information_policy_config = Some(SensitiveInformationPolicy {
                pii_entities_config: vec![PiiEntityConfig {
                    entity_type: e.name().to_string(),
                    action: PiiAction::Anonymize,
                    input_action: None,
                    output_action: None,
                    input_enabled: None,
                    output_enabled: None,
                }],
                regexes_config: vec![],
            });
            let g = CompiledGuardrail::from_policy("one", &p).unwrap();
            run(&format!("  only {}", e.name()), &g, &lines, bytes, 1);
        }
    }

    if let Some(python) = presidio {
        let path =
            std::env::temp_dir().join(format!("guard-bench-corpus-{}.txt", std::process::id()));
        std::fs::write(&path, lines.join("\n")).unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/guard/presidio_bench.py"
        );
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(&path)
            .arg("1")
            .output()
            .expect("run presidio");
        let _ = std::fs::remove_file(&path);
        if !out.status.success() {
            panic!("presidio failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let p = v["mb_per_s"].as_f64().unwrap();
        println!(
            "presidio-analyzer (no_op NLP, regex recognizers)  {p:>8.3} MB/s  ({:.1} s, {} findings)",
            v["seconds"].as_f64().unwrap(),
            v["findings"]
        );
        println!(
            "ratio: default {:.0}x presidio, as named {:.0}x presidio, everything {:.0}x presidio",
            d / p,
            n / p,
            f / p
        );
    }
}
