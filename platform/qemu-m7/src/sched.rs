//! The runtime on the MCU: scheduling order, the SysTick clock under `sleep`, completions,
//! joins, many coroutines, cancellation without unwinding, and the built-in self-test.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::time::Duration;

use lunbox_platform::coroutine::{self, Builder, Completion, JoinError, Mutex};

use crate::{HEAP, clock};

/// Stack of the coroutines of these tests.
const STACK: usize = 4 * 1024;

fn spawn<T: 'static>(name: &str, f: impl FnOnce() -> T + 'static) -> coroutine::JoinHandle<T> {
    Builder::new(name).stack_size(STACK).spawn(f)
}

fn joined<T>(handle: coroutine::JoinHandle<T>) -> Result<T, String> {
    handle.join().map_err(|e| e.to_string())
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Three coroutines that yield take turns in spawn order.
pub(crate) fn round_robin() -> Result<String, String> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let log = log.clone();
            spawn(name, move || {
                for round in 0..3 {
                    log.borrow_mut().push(format!("{name}{round}"));
                    coroutine::yield_now();
                }
            })
        })
        .collect();
    for handle in handles {
        joined(handle)?;
    }
    let order = log.borrow().join(" ");
    check(order == "a0 b0 c0 a1 b1 c1 a2 b2 c2", || {
        format!("order {order}")
    })?;
    Ok(order)
}

/// The SysTick clock is monotonic across its wraps and runs at the rate assumed: checked
/// against the host's monotonic clock (semihosting `SYS_ELAPSED`; `SYS_CLOCK` would be QEMU's
/// processor time, which lags on a busy host).
pub(crate) fn clock_monotonic() -> Result<String, String> {
    let host_start = host_elapsed()?;
    let wraps_start = clock::wraps();
    let start = coroutine::now();
    let mut last = start;
    let mut reads = 0u32;
    // Two wraps of the 24-bit counter at 25 MHz take 1.34 s.
    while clock::wraps().wrapping_sub(wraps_start) < 2 {
        let now = coroutine::now();
        check(now >= last, || {
            format!("clock went back from {last:?} to {now:?}")
        })?;
        last = now;
        reads += 1;
    }
    let elapsed = coroutine::now() - start;
    let host = host_elapsed()? - host_start;
    // SysTick and SYS_ELAPSED both follow the host's clock; allow for the semihosting calls.
    let (low, high) = (
        host.mul_f32(0.9),
        host.mul_f32(1.1) + Duration::from_millis(20),
    );
    check(elapsed >= low && elapsed <= high, || {
        format!(
            "SysTick measured {elapsed:?} while the host measured {host:?}: is it {} Hz?",
            clock::CLOCK_HZ
        )
    })?;
    Ok(format!(
        "{reads} reads over 2 wraps, {} us (host: {} us)",
        elapsed.as_micros(),
        host.as_micros()
    ))
}

/// The host's monotonic time since QEMU started (semihosting `SYS_ELAPSED`, `SYS_TICKFREQ`).
fn host_elapsed() -> Result<Duration, String> {
    use cortex_m_semihosting::{nr, syscall1};
    let mut ticks = [0u32; 2];
    // SAFETY: SYS_ELAPSED writes a 64-bit tick count (low word first) to the two words its
    // argument points to, and nothing else.
    let status = unsafe { syscall1(nr::ELAPSED, ticks.as_mut_ptr() as usize) };
    // SAFETY: SYS_TICKFREQ takes no argument and only returns a value.
    let per_second = unsafe { syscall1(nr::TICKFREQ, 0) };
    if status != 0 || per_second == 0 || per_second == usize::MAX {
        return Err(String::from("semihosting SYS_ELAPSED/SYS_TICKFREQ failed"));
    }
    let ticks = u128::from(ticks[0]) | u128::from(ticks[1]) << 32;
    let nanos = ticks * 1_000_000_000 / per_second as u128;
    Ok(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// Sleepers wake in deadline order, not spawn order, and never early.
pub(crate) fn sleep_order() -> Result<String, String> {
    let woke = Rc::new(RefCell::new(Vec::new()));
    let start = coroutine::now();
    let handles: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| {
            let woke = woke.clone();
            spawn("sleeper", move || {
                let asked = Duration::from_millis(ms);
                let begin = coroutine::now();
                coroutine::sleep(asked);
                let slept = coroutine::now() - begin;
                woke.borrow_mut().push(ms);
                check(slept >= asked, || {
                    format!("asked {asked:?}, woke after {slept:?}")
                })
            })
        })
        .collect();
    for handle in handles {
        joined(handle)??;
    }
    let total = coroutine::now() - start;
    let order = woke.borrow().clone();
    check(order == [10, 20, 30], || format!("wake order {order:?}"))?;
    check(total >= Duration::from_millis(30), || {
        format!("all woke after {total:?}")
    })?;
    Ok(format!(
        "woke 10, 20, 30 ms; all done after {} us",
        total.as_micros()
    ))
}

/// A value handed over with a `Completion`; counting; a timed-out wait.
pub(crate) fn completion() -> Result<String, String> {
    let done = Rc::new(Completion::new());
    let value = Rc::new(Cell::new(0u32));
    let consumer = {
        let (done, value) = (done.clone(), value.clone());
        spawn("consumer", move || {
            done.wait();
            value.get()
        })
    };
    let producer = {
        let (done, value) = (done.clone(), value.clone());
        spawn("producer", move || {
            // Let the consumer block first.
            coroutine::yield_now();
            let waiting = done.has_waiters();
            value.set(42);
            done.complete();
            waiting
        })
    };
    let consumer_waited = joined(producer)?;
    let got = joined(consumer)?;
    check(consumer_waited, || {
        String::from("the consumer did not wait")
    })?;
    check(got == 42, || format!("consumer got {got}"))?;

    let counted = Completion::new();
    counted.complete();
    counted.complete();
    let passes = (0..3).filter(|_| counted.try_wait()).count();
    check(passes == 2, || {
        format!("two completes let {passes} waits through")
    })?;

    let never = Completion::new();
    let begin = coroutine::now();
    let completed = never.wait_timeout(Duration::from_millis(5));
    let waited = coroutine::now() - begin;
    check(!completed && waited >= Duration::from_millis(5), || {
        format!("wait_timeout returned {completed} after {waited:?}")
    })?;
    Ok(String::from("handoff 42, counted 2, timeout after 5 ms"))
}

/// `join` returns the coroutine's value, also once it has already finished.
pub(crate) fn join_value() -> Result<String, String> {
    let running = spawn("answer", || {
        coroutine::yield_now();
        String::from("forty-two")
    });
    let finished = spawn("finished", || 7u64 * 6);
    while !finished.is_finished() {
        coroutine::yield_now();
    }
    let text = joined(running)?;
    let number = joined(finished)?;
    check(text == "forty-two" && number == 42, || {
        format!("joined {text:?} and {number}")
    })?;
    Ok(format!("{text:?}, {number}"))
}

/// 100 coroutines at once, all joined, twice: the second round must not need more heap.
pub(crate) fn hundred() -> Result<String, String> {
    let mut heap_after = [0usize; 2];
    for used in &mut heap_after {
        let handles: Vec<_> = (0..100u32)
            .map(|i| {
                spawn("many", move || {
                    coroutine::yield_now();
                    i * i
                })
            })
            .collect();
        let peak = HEAP.used();
        let mut sum = 0;
        for handle in handles {
            sum += joined(handle)?;
        }
        check(sum == 328_350, || format!("sum of squares {sum}"))?;
        let left = coroutine::coroutines().len();
        check(left == 1, || {
            format!("{left} coroutine records left after joining (only main expected)")
        })?;
        *used = HEAP.used();
        check(peak > *used + 100 * STACK, || {
            format!("heap peak {peak}, after {used}: were the stacks allocated at all?")
        })?;
    }
    check(heap_after[1] <= heap_after[0], || {
        format!(
            "heap used grew from {} to {} bytes between two rounds",
            heap_after[0], heap_after[1]
        )
    })?;
    Ok(format!(
        "2 x 100 spawned and joined, heap used after: {} bytes",
        heap_after[1]
    ))
}

/// Cancellation on a target that cannot unwind: the frames are abandoned, a lock the coroutine
/// held goes to the next locker, and a cooperative stop returns the value.
pub(crate) fn cancel_and_stop() -> Result<String, String> {
    let lock = Rc::new(Mutex::new(0u32));
    let holder = {
        let lock = lock.clone();
        spawn("holder", move || {
            let mut guard = lock.lock();
            *guard += 1;
            coroutine::sleep(Duration::from_secs(3600));
            *guard += 1;
        })
    };
    coroutine::yield_now();
    check(lock.is_locked(), || {
        String::from("the holder did not take the lock")
    })?;
    holder.cancel();
    let outcome = holder.join();
    check(matches!(outcome, Err(JoinError::Cancelled { .. })), || {
        format!("cancelled coroutine joined as {outcome:?}")
    })?;
    let value = *lock.lock();
    check(value == 1, || format!("lock value {value} after cancel"))?;

    let worker = spawn("worker", || {
        let mut rounds = 0u32;
        while !coroutine::should_stop() {
            rounds += 1;
            coroutine::sleep(Duration::from_millis(1));
        }
        rounds
    });
    coroutine::sleep(Duration::from_millis(5));
    let rounds = worker.stop().map_err(|e| e.to_string())?;
    check(rounds >= 1, || format!("stopped after {rounds} rounds"))?;
    Ok(format!(
        "cancelled holder released the lock; worker stopped after {rounds} rounds"
    ))
}

/// The runtime's own self-test (the console's `coroutine -t`).
pub(crate) fn self_test() -> Result<String, String> {
    coroutine::self_test(10_000)
        .map(|report| report.to_string())
        .map_err(String::from)
}
