//! Streaming output guard: holds back the tail of the text that a pending match could still
//! extend, releases the rest guarded.
