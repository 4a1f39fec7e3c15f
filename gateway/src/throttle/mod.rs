//! throttles
