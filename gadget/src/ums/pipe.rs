//! The hand-over point between the USB class (run by the USB controller poller) and the UMS
//! coroutine: buffers posted for the bulk endpoints, buffers given back, stall requests, and
//! the events that abort a command (class reset, bus reset, configuration change).
//!
//! Buffers change hands whole (`Vec<u8>` moves), so no data is copied here: the class reads
//! OUT packets straight into a posted buffer and writes IN packets straight from one.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use lunbox_platform::coroutine::Completion;

/// A buffer to send on Bulk-In.
pub(crate) struct InXfer {
    pub(crate) buf: Vec<u8>,
    /// Bytes of `buf` to send.
    pub(crate) len: usize,
    /// Bytes already written to the endpoint.
    pub(crate) pos: usize,
    /// End with a zero-length packet if `len` is a whole number of packets.
    pub(crate) zlp: bool,
    /// A marker instead of data: stall Bulk-In once everything before it has gone out.
    pub(crate) stall: bool,
}

/// A buffer to fill from Bulk-Out.
pub(crate) struct OutXfer {
    pub(crate) buf: Vec<u8>,
    /// Bytes wanted; a short packet ends the transfer early.
    pub(crate) want: usize,
    /// Bytes received so far.
    pub(crate) filled: usize,
}

/// Everything the two sides share.
#[derive(Default)]
pub(crate) struct PipeState {
    pub(crate) in_queue: VecDeque<InXfer>,
    /// Sent buffers, back to the function for reuse.
    pub(crate) in_done: Vec<Vec<u8>>,
    pub(crate) out_queue: VecDeque<OutXfer>,
    /// Filled buffers: (buffer, bytes received).
    pub(crate) out_done: VecDeque<(Vec<u8>, usize)>,
    /// The function asks for Bulk-Out to be stalled now.
    pub(crate) stall_out: bool,
    /// Invalid CBW: both endpoints stay stalled until a Bulk-Only Mass Storage Reset.
    pub(crate) wedged: bool,
}

/// The shared pipe: state, an event counter for aborts, and the function's wake-up.
pub(crate) struct Pipe {
    pub(crate) st: RefCell<PipeState>,
    /// Incremented by every event that aborts the command in progress.
    pub(crate) epoch: Cell<u32>,
    /// Whether the host has configured the device (the function waits for it).
    pub(crate) configured: Cell<bool>,
    /// Whether the last abort was a bus reset or configuration change (LUNs get a
    /// power-on/reset unit attention) rather than a class reset.
    pub(crate) bus_reset: Cell<bool>,
    /// Completed whenever something the function may wait for happened.
    pub(crate) wake: Completion,
    /// Completed whenever the function posted something: the USB controller poller may wait
    /// on it (see [`super::UmsClass::activity`]).
    pub(crate) poke: Rc<Completion>,
    /// The function posted something since the class last pumped.
    pub(crate) posted: Cell<bool>,
}

impl Pipe {
    /// A pipe whose poller is woken through `poke`.
    pub(crate) fn new(poke: Rc<Completion>) -> Self {
        Pipe {
            st: RefCell::default(),
            epoch: Cell::new(0),
            configured: Cell::new(false),
            bus_reset: Cell::new(false),
            wake: Completion::new(),
            poke,
            posted: Cell::new(true),
        }
    }

    /// Tell the poller there is work for the class.
    pub(crate) fn wake_bus(&self) {
        self.posted.set(true);
        if !self.poke.is_done() {
            self.poke.complete();
        }
    }

    /// Abort whatever is in flight: posted buffers go back, stall requests are dropped.
    pub(crate) fn abort(&self, bus_reset: bool) {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        // pop loops, not drain: far less code in the firmware.
        while let Some(x) = st.in_queue.pop_front() {
            if !x.stall {
                st.in_done.push(x.buf);
            }
        }
        while let Some(x) = st.out_queue.pop_front() {
            st.out_done.push_back((x.buf, 0));
        }
        st.stall_out = false;
        self.epoch.set(self.epoch.get().wrapping_add(1));
        if bus_reset {
            self.bus_reset.set(true);
        }
        self.wake.complete();
    }
}
