//! Files in the data dir as the embedded object store.
