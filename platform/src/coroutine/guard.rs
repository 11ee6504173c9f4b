//! Naming the coroutine whose stack ran into its guard page (std unix hosts).
//!
//! An overflow that jumps past the canary faults on the `PROT_NONE` page below the stack. By
//! itself that is a bare `SIGSEGV`. Here every guard page is registered with its coroutine's
//! name, and a `SIGSEGV`/`SIGBUS` handler, on an alternate signal stack (the faulting stack
//! is exhausted), looks the fault address up and writes
//! `lunbox coroutines: stack overflow in coroutine 'NAME' (...)` to stderr. It then restores
//! the default action and returns: the faulting instruction runs again and the process dies by
//! the same signal as before (exit status and core dumps unchanged). A fault anywhere else only
//! restores the default action the same way.
//!
//! The handler uses only async-signal-safe calls (`write`, `sigaction`) and atomics: the table
//! is a fixed array, claimed and released with compare-and-swap, no allocation, no locks.

use alloc::boxed::Box;
use alloc::vec;
use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// Guard pages tracked at once; stacks beyond that still fault, unnamed.
const SLOTS: usize = 256;
/// Bytes of a coroutine name kept (longer names are cut).
const NAME_BYTES: usize = 32;
/// Size of each thread's alternate signal stack.
const ALT_STACK_BYTES: usize = 64 * 1024;
/// A slot being filled in (not yet visible to the handler).
const CLAIMED: usize = usize::MAX;

struct Slot {
    /// First byte of the guard page (0: free, [`CLAIMED`]: being written).
    start: AtomicUsize,
    len: AtomicUsize,
    name_len: AtomicUsize,
    name: [AtomicU8; NAME_BYTES],
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            name_len: AtomicUsize::new(0),
            name: [const { AtomicU8::new(0) }; NAME_BYTES],
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The actions installed before ours (std's stack-overflow handler, a sanitizer's), for
/// SIGSEGV and SIGBUS: a fault that is not in a guard page goes on to them.
struct Previous(core::cell::UnsafeCell<[Option<libc::sigaction>; 2]>);

// SAFETY: written once in `install` (guarded by INSTALLED, before the handler can run),
// read only by the handler afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(core::cell::UnsafeCell::new([None, None]));
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// This thread's alternate signal stack, while the thread lives.
struct AltStack {
    _memory: Box<[u8]>,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // The thread is ending: stop using the memory before it is freed.
        let off = libc::stack_t {
            ss_sp: core::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling the alternate stack only changes this thread's signal settings.
        unsafe { libc::sigaltstack(&off, core::ptr::null_mut()) };
    }
}

std::thread_local! {
    /// Kept here (not leaked) so that the memory is freed when the thread ends and stays
    /// reachable meanwhile (leak checkers look for it).
    static ALT_STACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
}

/// A registered guard page; unregisters on drop.
#[derive(Debug)]
pub(crate) struct Registration(Option<usize>);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            TABLE[i].start.store(0, Ordering::Release);
        }
    }
}

/// Register the guard page `[start, start + len)` of coroutine `name`'s stack. Installs the
/// handler (once per process) and this thread's alternate signal stack (once per thread).
pub(crate) fn register(start: usize, len: usize, name: &str) -> Registration {
    install();
    for (i, slot) in TABLE.iter().enumerate() {
        if slot
            .start
            .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let name = name.as_bytes();
            let n = name.len().min(NAME_BYTES);
            for (dst, &b) in slot.name.iter().zip(&name[..n]) {
                dst.store(b, Ordering::Relaxed);
            }
            slot.name_len.store(n, Ordering::Relaxed);
            slot.len.store(len, Ordering::Relaxed);
            slot.start.store(start, Ordering::Release);
            return Registration(Some(i));
        }
    }
    Registration(None)
}

fn install() {
    let _ = ALT_STACK.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_some() {
            return;
        }
        let mut memory = vec![0u8; ALT_STACK_BYTES].into_boxed_slice();
        let ss = libc::stack_t {
            ss_sp: memory.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_BYTES,
        };
        // SAFETY: `ss` describes memory that `AltStack` keeps alive until it disables the
        // alternate stack again (when this thread ends).
        if unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) } == 0 {
            *slot = Some(AltStack { _memory: memory });
        }
    });
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    for (i, signal) in SIGNALS.into_iter().enumerate() {
        let old = set_action(signal, on_fault as *const () as libc::sighandler_t);
        // SAFETY: the only write to PREVIOUS, once (INSTALLED), before a fault can read it:
        // the handler for `signal` was installed just now, and a fault before this store
        // finds `None` and falls back to the default action.
        unsafe { (*PREVIOUS.0.get())[i] = old };
    }
}

/// Set `signal`'s handler (with `SA_SIGINFO | SA_ONSTACK`) or `SIG_DFL`; the action it
/// replaced.
fn set_action(signal: libc::c_int, handler: libc::sighandler_t) -> Option<libc::sigaction> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value to fill in.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = if handler == libc::SIG_DFL {
        0
    } else {
        libc::SA_SIGINFO | libc::SA_ONSTACK
    };
    // SAFETY: sigemptyset only writes the mask it is given.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: a zeroed sigaction is a valid value for the kernel to fill in.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: `action` is initialised, `old` is writable; sigaction is async-signal-safe and
    // replaces the process-wide action.
    let rc = unsafe { libc::sigaction(signal, &action, &mut old) };
    (rc == 0).then_some(old)
}

/// Put back the action that was there before ours (the default if none was).
fn restore_previous(signal: libc::c_int) {
    let i = SIGNALS.iter().position(|&s| s == signal).unwrap_or(0);
    // SAFETY: PREVIOUS is written once before the handler is reachable (see `install`).
    match unsafe { (*PREVIOUS.0.get())[i] } {
        // SAFETY: `old` is the action the kernel gave back for this signal.
        Some(old) => unsafe {
            libc::sigaction(signal, &old, core::ptr::null_mut());
        },
        None => {
            set_action(signal, libc::SIG_DFL);
        }
    }
}

extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler of SIGSEGV/SIGBUS.
    let info = unsafe { &*info };
    // SAFETY: for SIGSEGV and SIGBUS the kernel fills in the fault address field.
    let addr = unsafe { info.si_addr() } as usize;
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || start == CLAIMED {
            continue;
        }
        let len = slot.len.load(Ordering::Relaxed);
        if addr >= start && addr - start < len {
            let mut msg = Message::default();
            msg.push(b"lunbox coroutines: stack overflow in coroutine '");
            let n = slot.name_len.load(Ordering::Relaxed);
            for b in &slot.name[..n] {
                msg.push(&[b.load(Ordering::Relaxed)]);
            }
            msg.push(b"' (it ran into its stack's guard page at 0x");
            msg.hex(addr);
            msg.push(b"; give it a larger stack)\n");
            // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
            unsafe { libc::write(2, msg.buf.as_ptr().cast(), msg.len) };
            // Back to the default action: returning re-runs the faulting access, which now
            // ends the process by this signal, as it would have without the handler.
            set_action(signal, libc::SIG_DFL);
            return;
        }
    }
    // Not a coroutine's guard page: whoever handled it before (std reports a thread's own
    // stack overflow) gets the re-run fault.
    restore_previous(signal);
}

/// A message built without allocating.
struct Message {
    buf: [u8; 192],
    len: usize,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            buf: [0; 192],
            len: 0,
        }
    }
}

impl Message {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn hex(&mut self, value: usize) {
        let digits = b"0123456789abcdef";
        let mut started = false;
        for shift in (0..usize::BITS).step_by(4).rev() {
            let d = (value >> shift) & 0xF;
            if d != 0 || started || shift == 0 {
                started = true;
                self.push(&[digits[d]]);
            }
        }
    }
}
