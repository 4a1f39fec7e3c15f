//! Console server binary.
fn main() {}
