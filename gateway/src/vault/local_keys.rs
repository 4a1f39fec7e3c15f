//! The local key hierarchy: a master key file wraps per-record data keys.
