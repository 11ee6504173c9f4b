//! `lunbox`: until the sandbox board lands, runs the coroutine runtime's self-test and exits.

use lunbox_platform::coroutine;

fn main() {
    println!(
        "lunbox {} — USB mass-storage gadget appliance",
        env!("CARGO_PKG_VERSION")
    );
    println!("runtime self-test (the sandbox USB gadget is not there yet):");
    match coroutine::self_test(1_000_000) {
        Ok(report) => println!("  {report}"),
        Err(e) => {
            eprintln!("  self-test FAILED: {e}");
            std::process::exit(1);
        }
    }
}
