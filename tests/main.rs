//! The black-box suite as one test binary: each module below was its own test target, and
//! one link instead of five keeps a cold CI build small on disk and quick to link.
//! Run one part with a filter, e.g. `cargo test -p e2e --test e2e guard_corpus -- --nocapture`.

mod aws;
mod aws_console;
mod aws_faults;
mod aws_insights;
mod aws_kms_state;
mod bedrock;
#[path = "guard/corpus.rs"]
mod corpus;
mod edge;
mod gateway;
mod guard_api;
mod guard_corpus;
mod guard_topics;
mod insights;
mod lambda;
