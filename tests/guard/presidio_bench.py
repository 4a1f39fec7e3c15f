"""Microsoft Presidio on the guardrail benchmark corpus (driven by gateway/benches/guard.rs).

Regex-only: AnalyzerEngine with the `no_op` NLP engine (no spaCy model), every predefined
recognizer that works without NLP artifacts. Usage: presidio_bench.py CORPUS.txt [ROUNDS]
Timing is this thread's CPU time (a shared machine's other load does not count).
Prints one JSON line: {"bytes", "lines", "seconds", "mb_per_s", "findings"}.
"""

import json
import sys
import time

import tldextract
import tldextract.tldextract

# Offline: the bundled public-suffix snapshot, never a download.
tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())

from presidio_analyzer import AnalyzerEngine  # noqa: E402
from presidio_analyzer.nlp_engine import NoOpNlpEngine  # noqa: E402


def main() -> None:
    path = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    lines = [l for l in open(path, encoding="utf-8").read().split("\n") if l]
    size = sum(len(l.encode("utf-8")) for l in lines)
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    engine = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine.analyze(text="warm up 4111 1111 1111 1111 a@b.com", language="en")
    best = None
    findings = 0
    for _ in range(rounds):
        start = time.thread_time()
        findings = 0
        for line in lines:
            findings += len(engine.analyze(text=line, language="en"))
        elapsed = time.thread_time() - start
        best = elapsed if best is None else min(best, elapsed)
    print(json.dumps({
        "bytes": size, "lines": len(lines), "seconds": best,
        "mb_per_s": size / best / 1e6, "findings": findings,
    }))


if __name__ == "__main__":
    main()
