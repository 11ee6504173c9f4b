//! Host tests of the coroutine scheduler: ordering, sleeping on a fake clock, handles,
//! deep stacks, many coroutines, inspection.

#![cfg(feature = "std")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use lunbox_platform::coroutine::{
    self, Builder, Completion, CoroutineId, Instant, JoinError, Machine, State,
};

/// A clock that only moves when the scheduler idles: it jumps to the next deadline.
#[derive(Clone, Default)]
struct FakeClock {
    now: Rc<Cell<u64>>,
    idles: Rc<RefCell<Vec<Option<Instant>>>>,
}

impl Machine for FakeClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.now.get())
    }
    fn idle(&self, deadline: Option<Instant>) {
        self.idles.borrow_mut().push(deadline);
        let deadline = deadline.expect("idle without a deadline: deadlock in the test");
        self.now.set(self.now.get().max(deadline.as_nanos()));
    }
}

fn fake_clock() -> FakeClock {
    let clock = FakeClock::default();
    coroutine::init(clock.clone());
    clock
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn yields_run_round_robin_in_spawn_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let log = log.clone();
            coroutine::spawn(format!("c{i}"), move || {
                for round in 0..3 {
                    log.borrow_mut().push((round, i));
                    coroutine::yield_now();
                }
            })
        })
        .collect();
    // Nothing runs before the main context gives up the processor.
    assert!(log.borrow().is_empty());
    for h in handles {
        h.join().unwrap();
    }
    let expected: Vec<_> = (0..3).flat_map(|r| (0..3).map(move |i| (r, i))).collect();
    assert_eq!(*log.borrow(), expected);
}

#[test]
fn main_context_yield_runs_each_ready_coroutine_once() {
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let h = coroutine::spawn("counter", move || {
        while !coroutine::should_stop() {
            c.set(c.get() + 1);
            coroutine::yield_now();
        }
    });
    for expected in 1..=5 {
        coroutine::yield_now();
        assert_eq!(count.get(), expected);
    }
    h.stop().unwrap();
}

#[test]
fn sleeps_wake_in_deadline_order_on_a_fake_clock() {
    let clock = fake_clock();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut handles = Vec::new();
    for (name, delay) in [("slow", 30), ("fast", 10), ("mid", 20)] {
        let log = log.clone();
        handles.push(coroutine::spawn(name, move || {
            let start = coroutine::now();
            coroutine::sleep(ms(delay));
            let slept = coroutine::now() - start;
            log.borrow_mut().push((name, slept));
        }));
    }
    coroutine::run();
    let log = log.borrow();
    let names: Vec<_> = log.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["fast", "mid", "slow"]);
    for (name, slept) in log.iter() {
        let want = match *name {
            "fast" => ms(10),
            "mid" => ms(20),
            _ => ms(30),
        };
        assert_eq!(
            *slept, want,
            "{name} slept exactly its time on the fake clock"
        );
    }
    // The scheduler idled to each deadline instead of spinning.
    let idles = clock.idles.borrow();
    assert_eq!(idles.len(), 3, "one idle per distinct deadline: {idles:?}");
    assert_eq!(clock.now.get(), 30_000_000);
}

#[test]
fn sleep_of_zero_and_in_the_past_returns_at_once() {
    let clock = fake_clock();
    coroutine::sleep(Duration::ZERO);
    coroutine::sleep_until(Instant::ZERO);
    assert!(clock.idles.borrow().is_empty());
}

#[test]
fn main_context_can_sleep_while_others_run() {
    let clock = fake_clock();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = coroutine::spawn("ticker", move || {
        while !coroutine::should_stop() {
            t.set(t.get() + 1);
            coroutine::sleep(ms(1));
        }
    });
    coroutine::sleep(ms(10));
    assert_eq!(clock.now.get(), 10_000_000);
    // Ticks at 0,1,...,9 ms and possibly 10 ms depending on timer order.
    assert!((10..=11).contains(&ticks.get()), "ticks: {}", ticks.get());
    ticker.stop().unwrap();
}

#[test]
fn stop_wakes_a_sleeper_and_join_returns_its_value() {
    let clock = fake_clock();
    let h = coroutine::spawn("kthread", || {
        let mut loops = 0u32;
        while !coroutine::should_stop() {
            loops += 1;
            coroutine::sleep(Duration::from_secs(3600));
        }
        loops
    });
    coroutine::yield_now(); // let it start and go to sleep
    assert_eq!(h.stop(), Ok(1));
    assert_eq!(
        clock.now.get(),
        0,
        "stop ended the sleep without waiting for the timer"
    );
}

#[test]
fn cancel_ends_a_blocked_coroutine_and_runs_its_destructors() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let never = Rc::new(Completion::new());
    let (d, n) = (dropped.clone(), never.clone());
    let h = coroutine::spawn("victim", move || {
        let _flag = Flag(d);
        n.wait(); // never completed
        unreachable!("a cancelled coroutine went on");
    });
    coroutine::yield_now();
    assert_eq!(coroutine::coroutines()[1].state, State::Blocked);
    h.cancel();
    assert_eq!(
        h.join(),
        Err(JoinError::Cancelled {
            name: "victim".into()
        })
    );
    assert!(dropped.get(), "the cancelled coroutine's stack was unwound");
    assert!(
        !never.has_waiters(),
        "the cancelled coroutine left the completion's queue"
    );
}

#[test]
fn cancel_before_start_never_runs_the_body() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = coroutine::spawn("unborn", move || r.set(true));
    h.cancel();
    assert!(matches!(h.join(), Err(JoinError::Cancelled { .. })));
    assert!(!ran.get());
}

#[test]
fn cancel_of_a_yielding_loop_takes_effect_at_its_next_yield() {
    let passes = Rc::new(Cell::new(0));
    let p = passes.clone();
    let h = coroutine::spawn("spinner", move || {
        loop {
            p.set(p.get() + 1);
            coroutine::yield_now();
        }
    });
    coroutine::yield_now();
    coroutine::yield_now();
    h.cancel();
    let seen = passes.get();
    assert!(matches!(h.join(), Err(JoinError::Cancelled { .. })));
    assert_eq!(
        passes.get(),
        seen,
        "it did not start another pass after the cancel"
    );
}

#[test]
fn panic_in_a_coroutine_is_reported_with_its_name() {
    let h = Builder::new("doomed").spawn(|| -> u32 { panic!("bad thing {}", 42) });
    let other = coroutine::spawn("bystander", || 7);
    assert_eq!(
        h.join(),
        Err(JoinError::Panicked {
            name: "doomed".into(),
            message: "bad thing 42".into()
        })
    );
    assert_eq!(other.join(), Ok(7), "the others run on");
    let err = JoinError::Panicked {
        name: "doomed".into(),
        message: "x".into(),
    };
    assert_eq!(err.to_string(), "coroutine 'doomed' panicked: x");
}

#[test]
fn unpark_wakes_a_parked_coroutine() {
    let state = Rc::new(Cell::new(0));
    let s = state.clone();
    let h = coroutine::spawn("parker", move || {
        while s.get() == 0 {
            coroutine::park();
        }
        s.set(2);
    });
    coroutine::yield_now();
    coroutine::yield_now();
    assert_eq!(state.get(), 0);
    assert_eq!(coroutine::coroutines()[1].state, State::Blocked);
    state.set(1);
    assert!(coroutine::unpark(h.id()));
    h.join().unwrap();
    assert_eq!(state.get(), 2);
}

#[test]
fn park_timeout_times_out_on_the_fake_clock() {
    let clock = fake_clock();
    assert!(!coroutine::park_timeout(ms(5)));
    assert_eq!(clock.now.get(), 5_000_000);
}

fn recurse_and_yield(depth: u32, log: &RefCell<Vec<u32>>) -> u64 {
    let pad = std::hint::black_box([depth as u8; 64]);
    if depth == 0 {
        coroutine::yield_now();
        log.borrow_mut().push(0);
        return pad[0] as u64;
    }
    if depth.is_multiple_of(50) {
        coroutine::yield_now();
    }
    let below = recurse_and_yield(depth - 1, log);
    log.borrow_mut().push(depth);
    below + pad[1] as u64 + 1
}

#[test]
fn yields_from_deep_recursion_keep_every_frame() {
    let handles: Vec<_> = (0..2)
        .map(|i| {
            Builder::new(format!("deep{i}"))
                .stack_size(1 << 20)
                .spawn(move || {
                    let log = RefCell::new(Vec::new());
                    let sum = recurse_and_yield(1000, &log);
                    (sum, log.into_inner())
                })
        })
        .collect();
    for h in handles {
        let (sum, log) = h.join().unwrap();
        // Each level added its depth byte... of the level above's pad plus one.
        assert_eq!(sum, (1..=1000u64).map(|d| (d % 256) + 1).sum::<u64>());
        assert_eq!(log, (0..=1000).collect::<Vec<_>>());
    }
}

#[test]
fn a_thousand_coroutines_interleave() {
    const N: usize = 1500;
    let total = Rc::new(Cell::new(0usize));
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let total = total.clone();
            Builder::new(format!("c{i}"))
                .stack_size(8 * 1024)
                .spawn(move || {
                    for _ in 0..3 {
                        total.set(total.get() + 1);
                        coroutine::yield_now();
                    }
                    i
                })
        })
        .collect();
    assert_eq!(coroutine::coroutines().len(), N + 1);
    coroutine::yield_now();
    assert_eq!(
        total.get(),
        N,
        "one yield of main let each run exactly once"
    );
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join(), Ok(i));
    }
    assert_eq!(total.get(), 3 * N);
    assert_eq!(coroutine::coroutines().len(), 1, "joined records are gone");
}

#[test]
fn ids_are_not_reused_and_finished_records_stay_until_joined() {
    let a = coroutine::spawn("a", || 1);
    let a_id = a.id();
    assert_eq!(a.join(), Ok(1));
    let b = coroutine::spawn("b", || 2);
    assert_ne!(b.id(), a_id);
    assert!(!coroutine::unpark(a_id), "a finished id is dead");
    coroutine::yield_now();
    let infos = coroutine::coroutines();
    let info = infos.iter().find(|i| i.id == b.id()).unwrap();
    assert_eq!(info.state, State::Finished);
    assert_eq!(info.name, "b");
    assert_eq!(b.join(), Ok(2));
}

#[test]
fn stack_high_water_reflects_use() {
    fn use_stack(bytes: usize) {
        let mut buf = vec![0u8; 0];
        let _ = &mut buf;
        let mut frame = [0u8; 16 * 1024];
        std::hint::black_box(&mut frame[..bytes]).fill(1);
        coroutine::yield_now();
    }
    let light = Builder::new("light")
        .stack_size(64 * 1024)
        .spawn(coroutine::yield_now);
    let heavy = Builder::new("heavy")
        .stack_size(64 * 1024)
        .spawn(|| use_stack(16 * 1024));
    coroutine::yield_now();
    coroutine::yield_now();
    let infos = coroutine::coroutines();
    let get = |name: &str| infos.iter().find(|i| i.name == name).unwrap().clone();
    let (l, h) = (get("light"), get("heavy"));
    assert_eq!(l.stack_size, 64 * 1024);
    assert!(
        l.stack_high_water > 0 && l.stack_high_water < 8 * 1024,
        "{l:?}"
    );
    assert!(
        h.stack_high_water >= 16 * 1024 && h.stack_high_water < 40 * 1024,
        "{h:?}"
    );
    assert!(h.switches >= 2, "{h:?}");
    light.join().unwrap();
    heavy.join().unwrap();
}

#[test]
fn stack_remaining_shrinks_with_depth() {
    #[inline(never)]
    fn below_a_big_frame() -> usize {
        let buf = std::hint::black_box([0u8; 4096]);
        let remaining = coroutine::stack_remaining().unwrap();
        std::hint::black_box(&buf);
        remaining
    }
    let h = Builder::new("measure").stack_size(32 * 1024).spawn(|| {
        let top = coroutine::stack_remaining().unwrap();
        (top, below_a_big_frame())
    });
    let (top, inner) = h.join().unwrap();
    assert!(top < 32 * 1024 && top > 16 * 1024, "{top}");
    assert!(inner + 4096 <= top, "{inner} {top}");
    assert_eq!(
        coroutine::stack_remaining(),
        None,
        "main has no coroutine stack"
    );
}

#[test]
fn main_context_and_names_are_listed() {
    assert_eq!(coroutine::current(), CoroutineId::MAIN);
    assert!(!coroutine::in_coroutine());
    let h = coroutine::spawn("namer", || {
        (coroutine::current_name(), coroutine::in_coroutine())
    });
    let id = h.id();
    let infos = coroutine::coroutines();
    assert_eq!(infos[0].name, "main");
    assert_eq!(infos[0].state, State::Running);
    assert!(infos.iter().any(|i| i.id == id && i.state == State::Ready));
    assert_eq!(h.join(), Ok((Some("namer".to_string()), true)));
}

#[test]
fn run_waits_for_every_coroutine_including_detached_ones() {
    let clock = fake_clock();
    let done = Rc::new(Cell::new(0));
    for i in 0..5u64 {
        let done = done.clone();
        // Detached: the handle is dropped at once.
        drop(coroutine::spawn(format!("d{i}"), move || {
            coroutine::sleep(ms(i));
            done.set(done.get() + 1);
        }));
    }
    coroutine::run();
    assert_eq!(done.get(), 5);
    assert_eq!(clock.now.get(), 4_000_000);
    assert_eq!(
        coroutine::coroutines().len(),
        1,
        "detached records are reaped"
    );
}

#[test]
fn self_test_alternates_and_counts() {
    let report = coroutine::self_test(1000).unwrap();
    assert_eq!(report.switches, 2000);
    assert_eq!(report.yields, 1000);
    assert!(report.to_string().contains("switches/s"));
}

#[test]
fn raw_switch_measurement_runs_and_keeps_the_scheduler_intact() {
    let clock = fake_clock();
    clock.now.set(5);
    // The fake clock does not move while nothing idles: the bare switches take "no time".
    assert_eq!(coroutine::raw_switch_time(10_000), Duration::ZERO);
    // The scheduler did not notice the bare switches.
    let h = coroutine::spawn("after", || 3);
    assert_eq!(h.join(), Ok(3));
    assert_eq!(coroutine::current(), CoroutineId::MAIN);
}
