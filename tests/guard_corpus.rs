//! Evidence for the embedded guardrail engine on the fixed-seed corpus (`tests/guard/corpus.rs`):
//! recall per PII type, recall under each obfuscation, and the false-positive rate on benign
//! look-alike text, with every one of the 31 types enabled. Prints a report
//! (`cargo test -p e2e --test e2e guard_corpus -- --nocapture`) and holds the aims: recall ≥ 0.99
//! on structured types, ≥ 0.95 under obfuscation, benign false positives ≤ 1%.
use crate::corpus;

use std::collections::BTreeMap;

use gateway::guard::Source;
use gateway::guard::engine::CompiledGuardrail;
use gateway::guard::pii::PiiEntity;
use gateway::guard::policy::{
    GuardrailPolicy, PiiAction, PiiEntityConfig, SensitiveInformationPolicy,
};

const SEED: u64 = 0x5EED_2026;
const PER_TYPE: usize = 200;

pub fn all_types_policy() -> GuardrailPolicy {
    let mut p = GuardrailPolicy::default_policy();
    p.topic_policy_config = None;
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
        regexes_config: vec![],
    });
    p
}

fn detected(g: &CompiledGuardrail, entity: &str, text: &str, value: &str) -> bool {
    let o = g.apply(Source::Input, text);
    o.policies.iter().any(|p| p == &format!("pii:{entity}")) && !o.text.contains(value)
}

#[test]
fn recall_obfuscation_and_false_positives() {
    let g = CompiledGuardrail::from_policy("all", &all_types_policy()).unwrap();
    let samples = corpus::samples(SEED, PER_TYPE);

    // Recall per type.
    let mut per_type: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in &samples {
        let e = per_type.entry(s.entity).or_default();
        e.1 += 1;
        if detected(&g, s.entity, &s.text, &s.value) {
            e.0 += 1;
        } else {
            misses.entry(s.entity).or_default().push(s.text.clone());
        }
    }
    println!("\nrecall per type ({PER_TYPE} samples each, seed {SEED:#x}):");
    let mut structured = (0, 0);
    let mut contextual = (0, 0);
    for (t, (hit, n)) in &per_type {
        let kind = PiiEntity::from_name(t).unwrap().is_structured();
        let acc = if kind {
            &mut structured
        } else {
            &mut contextual
        };
        acc.0 += hit;
        acc.1 += n;
        println!(
            "  {t:<40} {:>6.3}  {}",
            *hit as f64 / *n as f64,
            if kind { "structured" } else { "contextual" }
        );
    }
    let s_recall = structured.0 as f64 / structured.1 as f64;
    let c_recall = contextual.0 as f64 / contextual.1 as f64;
    println!("  structured overall {s_recall:.4}, contextual overall {c_recall:.4}");
    for (t, m) in &misses {
        println!("  misses {t}: {:?}", m.iter().take(3).collect::<Vec<_>>());
    }

    // Recall under obfuscation: every sample whose value the obfuscation applies to; the aim
    // is held on structured types, contextual ones are reported.
    println!("recall under obfuscation (structured | contextual):");
    let mut worst = 1.0f64;
    for kind in corpus::OBFUSCATIONS {
        let mut rng = corpus::Rng::new(SEED ^ 0x0BF5);
        let mut counts = [(0usize, 0usize); 2];
        let mut missed = Vec::new();
        for s in &samples {
            let Some(obf) = corpus::obfuscate(kind, s.entity, &s.value, &mut rng) else {
                continue;
            };
            let structured = PiiEntity::from_name(s.entity).unwrap().is_structured();
            let c = &mut counts[usize::from(!structured)];
            let text = s.text.replacen(&s.value, &obf, 1);
            c.1 += 1;
            if detected(&g, s.entity, &text, &obf) {
                c.0 += 1;
            } else if structured && missed.len() < 3 {
                missed.push(text);
            }
        }
        let r = counts[0].0 as f64 / counts[0].1.max(1) as f64;
        let rc = counts[1].0 as f64 / counts[1].1.max(1) as f64;
        worst = worst.min(r);
        println!(
            "  {kind:<20} {r:>6.3} ({}/{}) | {rc:>6.3} ({}/{})  {missed:?}",
            counts[0].0, counts[0].1, counts[1].0, counts[1].1
        );
    }

    // False positives on benign look-alikes.
    let benign = corpus::benign(SEED ^ 0xBE9, 5000);
    let mut fp = 0usize;
    let mut examples = Vec::new();
    for t in &benign {
        let o = g.apply(Source::Input, t);
        if !o.policies.is_empty() {
            fp += 1;
            if examples.len() < 8 {
                examples.push(format!("{t} -> {:?}", o.policies));
            }
        }
    }
    let fp_rate = fp as f64 / benign.len() as f64;
    println!(
        "benign false-positive rate: {fp_rate:.4} ({fp}/{})",
        benign.len()
    );
    for e in &examples {
        println!("  FP: {e}");
    }

    assert!(s_recall >= 0.99, "structured recall {s_recall}");
    assert!(worst >= 0.95, "worst obfuscation recall {worst}");
    assert!(fp_rate <= 0.01, "benign false-positive rate {fp_rate}");
}
