//! The command context: console commands and work that must not overlap with them.
//!
//! barebox runs filesystem access and configuration changes only in "command context", never
//! from a poller in the middle of a command. Here the shell holds a [`CommandGuard`] while a
//! command runs, and background work that changes configuration or touches filesystems takes
//! one too, so it waits until the shell is idle (and the shell waits for it).

use alloc::rc::Rc;

use super::global;
use super::wait::RawLock;

/// Proof that the holder runs in command context; released on drop.
pub struct CommandGuard {
    lock: Rc<RawLock>,
}

/// Wait until no command (and no other command-context work) runs, then enter command context.
pub fn command_context() -> CommandGuard {
    let lock = global::with(|s| s.command.clone());
    lock.acquire(None);
    CommandGuard { lock }
}

/// Enter command context only if it is free now.
pub fn try_command_context() -> Option<CommandGuard> {
    let lock = global::with(|s| s.command.clone());
    lock.try_acquire().then(|| CommandGuard { lock })
}

/// Whether a command (or command-context work) runs now.
pub fn in_command_context() -> bool {
    global::with(|s| s.command.clone()).is_locked()
}

impl Drop for CommandGuard {
    fn drop(&mut self) {
        self.lock.release();
    }
}

impl core::fmt::Debug for CommandGuard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CommandGuard")
    }
}
