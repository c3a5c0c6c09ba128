pub mod metrics;
fn main() {}
