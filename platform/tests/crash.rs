//! Failures that must be loud: a tripped stack canary halts the program naming the coroutine,
//! and a panic message names the coroutine it happened in. Each case runs this test binary
//! again as a child process and inspects how it ended.

#![cfg(feature = "std")]

use std::process::{Command, Output};

use lunbox_platform::coroutine::{self, Builder};

const CHILD: &str = "LUNBOX_CRASH_CHILD";

/// Run one test of this binary in a child process. `LUNBOX_TEST_RUNNER` (for example
/// `qemu-aarch64-static -L /usr/aarch64-linux-gnu` when cross-testing) prefixes the command.
fn run_child(test: &str) -> Output {
    let exe = std::env::current_exe().unwrap();
    let runner = std::env::var("LUNBOX_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap()
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

#[test]
fn tripped_canary_halts_and_names_the_coroutine() {
    if is_child() {
        let h = Builder::new("overflower").stack_size(16 * 1024).spawn(|| {
            // Simulate an overflow deterministically: overwrite the topmost canary word, as a
            // too-deep call would. The canary lies just below the usable stack, which ends a
            // little below `marker - stack_remaining()` (that call's own frame is deeper).
            let marker = 0u8;
            let mut p =
                (std::ptr::addr_of!(marker) as usize - coroutine::stack_remaining().unwrap()) & !3;
            // SAFETY: `p` walks down this coroutine's own stack, from inside its unused part to
            // the topmost canary word (the canary word reads "!lun" in memory); a few
            // hundred bytes at most, all inside the allocation.
            loop {
                // SAFETY: see above.
                let word = unsafe { (p as *const u32).read_volatile() };
                if word == 0x6E75_6C21 {
                    break;
                }
                p -= 4;
            }
            // SAFETY: `p` is the topmost canary word of this coroutine's stack.
            unsafe { (p as *mut u32).write_volatile(0) };
            coroutine::yield_now();
            println!("survived the yield");
        });
        let _ = h.join();
        println!("survived the join");
        return;
    }
    let out = run_child("tripped_canary_halts_and_names_the_coroutine");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the child must not exit normally: {stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "halted by abort: {stderr}"
        );
    }
    assert!(
        stderr.contains("stack overflow in coroutine 'overflower'"),
        "stderr names the coroutine: {stderr}"
    );
    assert!(
        !stdout.contains("survived"),
        "nothing ran on after the trip: {stdout}"
    );
}

#[test]
fn panic_message_names_the_coroutine() {
    if is_child() {
        let h = coroutine::spawn("doomed-child", || panic!("on purpose"));
        let err = h.join().unwrap_err();
        println!("join said: {err}");
        return;
    }
    let out = run_child("panic_message_names_the_coroutine");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a coroutine panic is caught: {stderr}"
    );
    assert!(
        stderr.contains("lunbox: panic in coroutine 'doomed-child'"),
        "{stderr}"
    );
    assert!(stderr.contains("on purpose"), "{stderr}");
    assert!(
        stdout.contains("join said: coroutine 'doomed-child' panicked: on purpose"),
        "{stdout}"
    );
}

#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 256]);
    if depth == u64::MAX {
        return 0;
    }
    recurse_forever(depth + 1) + frame[7] as u64
}

#[cfg(unix)]
#[test]
fn real_overflow_past_the_canary_faults_on_the_guard_page() {
    if is_child() {
        let h = Builder::new("bottomless")
            .stack_size(16 * 1024)
            .spawn(|| recurse_forever(0));
        let _ = h.join();
        println!("survived the overflow");
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let out = run_child("real_overflow_past_the_canary_faults_on_the_guard_page");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "killed by the guard page: {out:?}"
    );
    assert!(!stdout.contains("survived"), "{stdout}");
    assert!(
        stderr.contains(
            "stack overflow in coroutine 'bottomless' (it ran into its stack's guard page at 0x"
        ),
        "the fault names the coroutine: {stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_thread_stack_overflow_still_gets_std_report() {
    if is_child() {
        // A coroutine installs the guard-page reporter; a fault elsewhere must reach std's
        // own handler, which names the thread.
        let h = Builder::new("bystander").stack_size(16 * 1024).spawn(|| {});
        let _ = h.join();
        let t = std::thread::Builder::new()
            .name("deep".into())
            .stack_size(256 * 1024)
            .spawn(|| recurse_forever(0))
            .unwrap();
        let _ = t.join();
        println!("survived the overflow");
        return;
    }
    let out = run_child("a_thread_stack_overflow_still_gets_std_report");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(!stdout.contains("survived"), "{stdout}");
    assert!(
        stderr.contains("thread 'deep'") && stderr.contains("has overflowed its stack"),
        "std's report: {stderr}"
    );
    assert!(!stderr.contains("stack overflow in coroutine"), "{stderr}");
}
