//! Test support: start binaries on port 0 with temp data dirs.
