//! What the runtime needs from the machine: a monotonic clock and a way to idle.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the machine's monotonic clock, in nanoseconds since an arbitrary start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// An instant `nanos` nanoseconds after the clock's origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` past the end of the clock's range.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let nanos = u64::try_from(d.as_nanos()).ok()?;
        self.0.checked_add(nanos).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the end of the clock's range (about 584 years), which reads as "never".
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant(u64::MAX))
    }
}

impl Sub for Instant {
    type Output = Duration;

    /// Saturates at zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// The machine under the runtime: the monotonic clock and the idle hook.
///
/// A board implements this once; the sandbox blocks in `poll(2)` in [`Machine::idle`], the MCU
/// executes `WFI` until its timer or an interrupt fires.
pub trait Machine {
    /// The current time on a monotonic clock.
    fn now(&self) -> Instant;

    /// Called when no coroutine can run. Return by `deadline` (the next timer), or earlier when
    /// something outside the runtime happened that a poller should look at. `None` means no
    /// timer is pending: only an outside event can make progress.
    fn idle(&self, deadline: Option<Instant>);
}

/// The clock of a std host: `std::time::Instant` since the machine was made; idles by sleeping.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct HostMachine {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl HostMachine {
    /// A host clock starting now.
    pub fn new() -> Self {
        HostMachine {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for HostMachine {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Machine for HostMachine {
    fn now(&self) -> Instant {
        let nanos = self.origin.elapsed().as_nanos();
        Instant(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn idle(&self, deadline: Option<Instant>) {
        match deadline {
            Some(deadline) => std::thread::sleep(deadline - self.now()),
            // Nothing outside the runtime can wake a coroutine on this machine: every coroutine
            // waits for another one. Say so instead of hanging.
            None => panic!(
                "lunbox coroutines: deadlock: every coroutine is waiting, no timer is pending \
                 and this machine has no outside event source"
            ),
        }
    }
}
