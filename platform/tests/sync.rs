//! Host tests of the coroutine synchronisation primitives: Completion, Mutex, command context.

#![cfg(feature = "std")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use lunbox_platform::coroutine::{self, Completion, Instant, Machine, Mutex};

#[derive(Clone, Default)]
struct FakeClock(Rc<Cell<u64>>);

impl Machine for FakeClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.get())
    }
    fn idle(&self, deadline: Option<Instant>) {
        let deadline = deadline.expect("idle without a deadline: deadlock in the test");
        self.0.set(self.0.get().max(deadline.as_nanos()));
    }
}

fn fake_clock() -> FakeClock {
    let clock = FakeClock::default();
    coroutine::init(clock.clone());
    clock
}

#[test]
fn completion_wakes_its_waiter() {
    let c = Rc::new(Completion::new());
    let got = Rc::new(Cell::new(false));
    let (c2, g2) = (c.clone(), got.clone());
    let h = coroutine::spawn("waiter", move || {
        c2.wait();
        g2.set(true);
    });
    coroutine::yield_now();
    coroutine::yield_now();
    assert!(!got.get(), "waits until completed");
    assert!(c.has_waiters());
    c.complete();
    h.join().unwrap();
    assert!(got.get());
    assert!(!c.is_done(), "the wait consumed the completion");
}

#[test]
fn complete_counts_and_wakes_one_waiter_each() {
    let c = Rc::new(Completion::new());
    let woken = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let (c, w) = (c.clone(), woken.clone());
            coroutine::spawn(format!("w{i}"), move || {
                c.wait();
                w.borrow_mut().push(i);
            })
        })
        .collect();
    coroutine::yield_now();
    c.complete();
    c.complete();
    coroutine::yield_now();
    coroutine::yield_now();
    assert_eq!(
        *woken.borrow(),
        [0, 1],
        "two completes, the two longest waiters"
    );
    c.complete();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*woken.borrow(), [0, 1, 2]);
}

#[test]
fn complete_before_wait_is_not_lost() {
    let c = Completion::new();
    c.complete();
    c.complete();
    assert!(c.is_done());
    c.wait();
    assert!(c.try_wait());
    assert!(!c.try_wait());
}

#[test]
fn complete_all_releases_everyone_until_reinit() {
    let c = Rc::new(Completion::new());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            coroutine::spawn(format!("w{i}"), move || c.wait())
        })
        .collect();
    coroutine::yield_now();
    c.complete_all();
    for h in handles {
        h.join().unwrap();
    }
    c.wait(); // still done
    assert!(c.is_done());
    c.reinit();
    assert!(!c.is_done());
    assert!(!c.try_wait());
}

#[test]
fn wait_timeout_times_out_and_then_succeeds() {
    let clock = fake_clock();
    let c = Rc::new(Completion::new());
    assert!(!c.wait_timeout(Duration::from_millis(7)));
    assert_eq!(clock.0.get(), 7_000_000);
    assert!(!c.has_waiters(), "a timed-out waiter leaves the queue");
    let c2 = c.clone();
    let h = coroutine::spawn("completer", move || {
        coroutine::sleep(Duration::from_millis(3));
        c2.complete();
    });
    assert!(c.wait_timeout(Duration::from_millis(100)));
    assert_eq!(
        clock.0.get(),
        10_000_000,
        "woken by complete at 3 ms, not by the timeout"
    );
    h.join().unwrap();
}

#[test]
fn a_wake_meant_for_a_timed_out_waiter_goes_to_the_next() {
    let clock = fake_clock();
    let c = Rc::new(Completion::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let (c1, l1) = (c.clone(), log.clone());
    let impatient = coroutine::spawn("impatient", move || {
        l1.borrow_mut()
            .push(("impatient", c1.wait_timeout(Duration::from_millis(1))));
    });
    let (c2, l2) = (c.clone(), log.clone());
    let patient = coroutine::spawn("patient", move || {
        c2.wait();
        l2.borrow_mut().push(("patient", true));
    });
    coroutine::yield_now(); // both wait now
    coroutine::sleep(Duration::from_millis(2)); // the impatient one times out
    c.complete();
    impatient.join().unwrap();
    patient.join().unwrap();
    assert_eq!(*log.borrow(), [("impatient", false), ("patient", true)]);
    assert_eq!(clock.0.get(), 2_000_000);
}

#[test]
fn mutex_serialises_critical_sections_across_yields() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let m = m.clone();
            coroutine::spawn(format!("m{i}"), move || {
                for round in 0..2 {
                    let mut g = m.lock();
                    g.push((i, round, "enter"));
                    coroutine::yield_now(); // others run but cannot enter
                    g.push((i, round, "leave"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let log = Rc::try_unwrap(m).ok().unwrap().into_inner();
    assert_eq!(log.len(), 12);
    for pair in log.chunks(2) {
        assert_eq!(
            pair[0].0, pair[1].0,
            "no interleaving inside the lock: {log:?}"
        );
        assert_eq!((pair[0].2, pair[1].2), ("enter", "leave"));
    }
}

#[test]
fn mutex_try_lock_and_lock_timeout() {
    let clock = fake_clock();
    let m = Rc::new(Mutex::new(5));
    let m2 = m.clone();
    let holder = coroutine::spawn("holder", move || {
        let g = m2.lock();
        coroutine::sleep(Duration::from_millis(10));
        *g + 1
    });
    coroutine::yield_now();
    assert!(m.is_locked());
    assert!(m.try_lock().is_none());
    assert!(m.lock_timeout(Duration::from_millis(4)).is_none());
    assert_eq!(clock.0.get(), 4_000_000);
    let g = m
        .lock_timeout(Duration::from_millis(100))
        .expect("released at 10 ms");
    assert_eq!(*g, 5);
    assert_eq!(clock.0.get(), 10_000_000);
    drop(g);
    assert_eq!(holder.join(), Ok(6));
}

#[test]
fn mutex_held_by_a_cancelled_coroutine_is_released_by_unwinding() {
    let m = Rc::new(Mutex::new(0));
    let never = Rc::new(Completion::new());
    let (m2, n2) = (m.clone(), never.clone());
    let h = coroutine::spawn("holder", move || {
        let _g = m2.lock();
        n2.wait();
    });
    coroutine::yield_now();
    assert!(m.is_locked());
    h.cancel();
    assert!(h.join().is_err());
    assert!(!m.is_locked());
    *m.lock() += 1;
}

#[test]
#[should_panic(expected = "lock taken twice by the same coroutine")]
fn relocking_from_the_same_coroutine_is_reported() {
    let m = Mutex::new(());
    let _a = m.lock();
    let _b = m.lock();
}

#[test]
fn work_waits_until_the_shell_command_is_done() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let shell = coroutine::spawn("shell", move || {
        let _cmd = coroutine::command_context();
        l.borrow_mut().push("command starts");
        for _ in 0..3 {
            coroutine::yield_now();
        }
        l.borrow_mut().push("command ends");
    });
    let l = log.clone();
    let work = coroutine::spawn("config-writer", move || {
        coroutine::yield_now(); // the shell is inside its command now
        assert!(coroutine::in_command_context());
        assert!(coroutine::try_command_context().is_none());
        let _g = coroutine::command_context();
        l.borrow_mut().push("work runs");
    });
    shell.join().unwrap();
    work.join().unwrap();
    assert_eq!(
        *log.borrow(),
        ["command starts", "command ends", "work runs"]
    );
    assert!(!coroutine::in_command_context());
}

#[test]
fn wait_stoppable_returns_on_a_stop_request() {
    let c = Rc::new(Completion::new());
    let c2 = c.clone();
    let h = coroutine::spawn("stoppable", move || c2.wait_stoppable());
    coroutine::yield_now();
    assert!(c.has_waiters());
    assert_eq!(h.stop(), Ok(false), "woken by the stop, nothing consumed");
    c.complete();
    let c3 = c.clone();
    assert_eq!(
        coroutine::spawn("completed", move || c3.wait_stoppable()).join(),
        Ok(true)
    );
}
