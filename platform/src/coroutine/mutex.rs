//! A blocking mutex for coroutines (what replaces barebox's slices).

use core::cell::UnsafeCell;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::time::Duration;

use super::global;
use super::wait::RawLock;

/// Mutual exclusion between coroutines: `lock` blocks the caller (other coroutines run) until
/// the mutex is free. Waiters are served in arrival order.
///
/// Locking it twice from one coroutine is a deadlock and panics with that message.
pub struct Mutex<T: ?Sized> {
    lock: RawLock,
    data: UnsafeCell<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            lock: RawLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// The protected value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Wait until the mutex is ours.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock.acquire(None);
        MutexGuard { mutex: self }
    }

    /// Wait at most `timeout` for the mutex.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        let deadline = global::with(|s| s.now()) + timeout;
        self.lock
            .acquire(Some(deadline))
            .then(|| MutexGuard { mutex: self })
    }

    /// Take the mutex only if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock.try_acquire().then(|| MutexGuard { mutex: self })
    }

    /// Whether some live coroutine holds it.
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// The value, through exclusive access to the mutex itself.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

/// Access to a locked [`Mutex`]'s value; unlocks when dropped.
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its coroutine owns the lock, and `Mutex` is not
        // `Sync`, so no other guard or thread can reach the value meanwhile.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.lock.release();
    }
}
