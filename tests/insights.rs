//! The Logs Insights engine from outside: conformance against expected results computed by an
//! independent Python reference over a seeded corpus (`insights/reference.py`), property tests
//! of the parser, and the `gateway insights` / `gateway logs import` commands.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fail loudly"
)]

mod cli;
mod conformance;
mod properties;
