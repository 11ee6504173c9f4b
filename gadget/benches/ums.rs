//! placeholder
fn main() { println!("hi"); }
