//! URBs from a USB/IP client turned into the packet-level contract of a `usb-device` bus, and
//! packets back into URB completions.
//!
//! Per endpoint a FIFO of URBs is served head first; endpoint 0 runs one control transfer at a
//! time. A URB completes (a RET_SUBMIT is queued) only when its transfer is done: an OUT URB
//! when the class has read its last packet, an IN URB on a short packet, a zero-length packet
//! or when full. A halt fails the head URB with -EPIPE; CLEAR_FEATURE(ENDPOINT_HALT) (handled by
//! usb-device, which calls `set_stalled(ep, false)`) resumes the queue. See
//! `shared/notes`-derived rules in the module docs of `super`.

use std::collections::VecDeque;
use std::vec::Vec;

use usb_device::bus::PollResult;
use usb_device::endpoint::EndpointAddress;
use usb_device::{UsbDirection, UsbError};

use super::outbox::Outbox;
use super::pool::BufferPool;
use super::proto::{self, CmdSubmit, Direction};

/// Most bytes one write to a non-control IN endpoint may carry (a mass-storage buffer is at
/// most 1 MiB: `UmsConfig` checks it).
const MAX_RUN: usize = 1 << 20;

/// One URB in flight.
#[derive(Debug)]
struct Urb {
    seqnum: u32,
    /// Transfer length the host asked for (IN) or sends (OUT).
    len: usize,
    /// OUT: the payload; IN: the bytes collected so far.
    data: Vec<u8>,
    /// OUT: bytes handed to the device so far.
    pos: usize,
    /// OUT: a zero-length packet still to hand over (URB_ZERO_PACKET, or an empty transfer).
    zlp: bool,
    /// The URB's pipe is IN (its reply carries data).
    dir_in: bool,
    /// Control only: the setup packet.
    setup: Option<[u8; 8]>,
}

impl Urb {
    /// A control request whose data stage goes to the host.
    fn setup_in(&self) -> bool {
        self.setup.is_some_and(|s| s[0] & 0x80 != 0)
    }
}

/// One endpoint direction.
#[derive(Default)]
struct Ep {
    allocated: bool,
    max_packet: usize,
    halted: bool,
    /// A halt not yet reported to any URB: the next one to arrive fails with -EPIPE.
    halt_unreported: bool,
    urbs: VecDeque<Urb>,
    /// IN: the rest of the device's last write, with no URB to take it yet (empty: a
    /// zero-length packet).
    held: Option<Vec<u8>>,
    /// IN: a write was taken in full since the last poll.
    in_complete: bool,
}

/// State of the active control transfer on endpoint 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    /// No control transfer.
    Idle,
    /// The URB at the head of the control queue is being served.
    Active,
    /// The IN data stage was answered; a zero-length status packet waits to be read.
    Status,
}

/// Everything the bus and the server share.
pub(crate) struct Bridge {
    out: [Ep; 16],
    inp: [Ep; 16],
    control_queue: VecDeque<Urb>,
    control: Control,
    /// The EP0 OUT slot holds the setup packet of the active transfer.
    setup_waiting: bool,
    reset: bool,
    /// Encoded RET_SUBMIT/RET_UNLINK messages to send.
    replies: Outbox,
    /// Packets moved since the counter was last read (for the poller's idle decision).
    progress: u64,
    /// Payload buffers for reuse: OUT payloads the device has read, IN replies sent.
    pub(crate) pool: BufferPool,
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge {
            out: Default::default(),
            inp: Default::default(),
            control_queue: VecDeque::new(),
            control: Control::Idle,
            setup_waiting: false,
            reset: false,
            replies: Outbox::default(),
            progress: 0,
            pool: BufferPool::default(),
        }
    }
}

impl Bridge {
    // ---- the server's side ----

    /// A new session (after OP_REP_IMPORT) or the end of one: forget every URB, tell the
    /// device it was reset.
    pub(crate) fn session_reset(&mut self) {
        for ep in self.out.iter_mut().chain(self.inp.iter_mut()) {
            ep.urbs.clear();
            ep.halted = false;
            ep.halt_unreported = false;
            ep.held = None;
            ep.in_complete = false;
        }
        self.control_queue.clear();
        self.control = Control::Idle;
        self.setup_waiting = false;
        self.replies.clear();
        self.reset = true;
    }

    /// Forget every endpoint allocation (a new gadget is about to be built on this bus).
    pub(crate) fn clear_allocations(&mut self) {
        self.out = Default::default();
        self.inp = Default::default();
        self.session_reset();
    }

    /// Move the encoded replies behind what `out` holds; returns whether there were any.
    pub(crate) fn take_replies(&mut self, out: &mut Outbox) -> bool {
        let any = !self.replies.is_empty();
        out.append(&mut self.replies);
        any
    }

    /// Packets moved since the last call.
    pub(crate) fn take_progress(&mut self) -> u64 {
        std::mem::take(&mut self.progress)
    }

    /// Queue a RET_SUBMIT without IN data.
    fn reply(&mut self, seqnum: u32, status: i32, actual: usize) {
        self.replies
            .encode(|b| proto::encode_ret_submit(seqnum, status, actual as u32, None, b));
    }

    /// Queue the RET_SUBMIT of an IN URB with its data: the buffer itself, not a copy.
    fn reply_in(&mut self, seqnum: u32, status: i32, data: Vec<u8>) {
        self.replies
            .encode(|b| proto::encode_ret_submit(seqnum, status, data.len() as u32, None, b));
        self.replies.push(data);
    }

    /// A CMD_SUBMIT from the client.
    pub(crate) fn submit(&mut self, cmd: CmdSubmit) {
        let ep = usize::from(cmd.ep & 0x0F);
        let dir_in = cmd.direction == Direction::In;
        let len = cmd.transfer_buffer_length as usize;
        if ep == 0 {
            let urb = Urb {
                seqnum: cmd.seqnum,
                len,
                data: if dir_in { Vec::new() } else { cmd.data },
                pos: 0,
                zlp: false,
                dir_in,
                setup: Some(cmd.setup),
            };
            self.control_queue.push_back(urb);
            self.start_control();
            return;
        }
        let e = if dir_in {
            &mut self.inp[ep]
        } else {
            &mut self.out[ep]
        };
        if !e.allocated {
            self.reply(cmd.seqnum, proto::EPROTO, 0);
            return;
        }
        let zlp = !dir_in
            && (len == 0
                || cmd.transfer_flags & proto::URB_ZERO_PACKET != 0
                    && len.is_multiple_of(e.max_packet));
        let urb = Urb {
            seqnum: cmd.seqnum,
            len,
            data: if dir_in {
                self.pool.take(len.min(1 << 20))
            } else {
                cmd.data
            },
            pos: 0,
            zlp,
            dir_in,
            setup: None,
        };
        if e.halt_unreported {
            e.halt_unreported = false;
            self.reply(urb.seqnum, proto::EPIPE, 0);
            return;
        }
        e.urbs.push_back(urb);
        if dir_in {
            self.feed_held(ep);
        }
    }

    /// A CMD_UNLINK from the client: answered at once.
    pub(crate) fn unlink(&mut self, seqnum: u32, victim: u32) {
        let mut found = false;
        if let Some(i) = self.control_queue.iter().position(|u| u.seqnum == victim) {
            self.control_queue.remove(i);
            if i == 0 && self.control != Control::Idle {
                self.control = Control::Idle;
                self.setup_waiting = false;
                self.out[0].held = None;
                self.inp[0].held = None;
            }
            found = true;
            self.start_control();
        }
        for ep in self.out.iter_mut().chain(self.inp.iter_mut()) {
            if let Some(i) = ep.urbs.iter().position(|u| u.seqnum == victim) {
                ep.urbs.remove(i);
                found = true;
            }
        }
        let status = if found { proto::ECONNRESET } else { 0 };
        self.replies
            .encode(|b| proto::encode_ret_unlink(seqnum, status, b));
    }

    fn start_control(&mut self) {
        if self.control != Control::Active && !self.control_queue.is_empty() {
            // A new SETUP ends whatever EP0 was doing: drop stale data, clear halts.
            self.control = Control::Active;
            self.setup_waiting = true;
            self.inp[0].held = None;
            self.inp[0].halted = false;
            self.out[0].halted = false;
        }
    }

    /// Finish the active control URB with `status`; IN data goes with it.
    fn finish_control(&mut self, status: i32) {
        let Some(urb) = self.control_queue.pop_front() else {
            return;
        };
        let actual = if urb.dir_in {
            urb.data.len()
        } else if status == 0 {
            urb.len
        } else {
            urb.pos
        };
        let setup_in = urb.setup_in();
        let has_data_stage = urb.len > 0;
        if urb.dir_in {
            self.reply_in(urb.seqnum, status, urb.data);
        } else {
            self.reply(urb.seqnum, status, actual);
        }
        self.setup_waiting = false;
        // After an IN data stage the device expects the host's zero-length status packet.
        self.control = if status == 0 && setup_in && has_data_stage {
            Control::Status
        } else {
            Control::Idle
        };
        if self.control == Control::Idle {
            self.start_control();
        }
    }

    /// Give the held rest of a write to the queued URBs; the write is complete once all of it
    /// is taken.
    fn feed_held(&mut self, ep: usize) {
        let Some(mut data) = self.inp[ep].held.take() else {
            return;
        };
        match self.feed(ep, &data) {
            None => self.inp[ep].in_complete = true,
            Some(at) => {
                data.drain(..at);
                self.inp[ep].held = Some(data);
            }
        }
    }

    /// Packets of `data` into the queued URBs of IN endpoint `ep` while there are any (an
    /// empty `data` is one zero-length packet). `None` once all of it is taken, else how many
    /// bytes were.
    fn feed(&mut self, ep: usize, data: &[u8]) -> Option<usize> {
        let mps = self.inp[ep].max_packet;
        let mut at = 0;
        while !self.inp[ep].halted && !self.inp[ep].urbs.is_empty() {
            let end = (at + mps).min(data.len());
            self.accept_in(ep, &data[at..end]);
            at = end;
            if at == data.len() {
                return None;
            }
        }
        Some(at)
    }

    /// Put IN packet `p` into the head URB of `ep` (there is one).
    fn accept_in(&mut self, ep: usize, p: &[u8]) {
        let e = &mut self.inp[ep];
        self.progress += 1;
        let mps = e.max_packet;
        let Some(urb) = e.urbs.front_mut() else {
            return;
        };
        if urb.data.len() + p.len() > urb.len {
            // Babble: the device sent more than the URB holds.
            let room = urb.len - urb.data.len();
            urb.data.extend_from_slice(&p[..room]);
            let urb = e.urbs.pop_front().expect("head exists");
            self.reply_in(urb.seqnum, proto::EOVERFLOW, urb.data);
            return;
        }
        urb.data.extend_from_slice(p);
        if p.len() < mps || urb.data.len() == urb.len {
            let urb = e.urbs.pop_front().expect("head exists");
            self.reply_in(urb.seqnum, 0, urb.data);
        }
    }

    // ---- the device's side (through `UsbBus`) ----

    pub(crate) fn alloc_ep(
        &mut self,
        dir: UsbDirection,
        addr: Option<EndpointAddress>,
        max_packet: u16,
    ) -> Result<EndpointAddress, UsbError> {
        let eps = match dir {
            UsbDirection::Out => &mut self.out,
            UsbDirection::In => &mut self.inp,
        };
        let index = match addr {
            Some(a) if eps[a.index()].allocated => return Err(UsbError::InvalidEndpoint),
            Some(a) => a.index(),
            None => (1..16)
                .find(|&i| !eps[i].allocated)
                .ok_or(UsbError::EndpointOverflow)?,
        };
        eps[index].allocated = true;
        eps[index].max_packet = usize::from(max_packet.max(1));
        Ok(EndpointAddress::from_parts(index, dir))
    }

    pub(crate) fn bus_reset(&mut self) {
        for ep in self.out.iter_mut().chain(self.inp.iter_mut()) {
            ep.halted = false;
            ep.held = None;
            ep.in_complete = false;
        }
    }

    pub(crate) fn write(&mut self, addr: EndpointAddress, buf: &[u8]) -> Result<usize, UsbError> {
        let ep = addr.index();
        let e = &mut self.inp[ep];
        if !e.allocated || addr.is_out() {
            return Err(UsbError::InvalidEndpoint);
        }
        if ep == 0 {
            if buf.len() > e.max_packet {
                return Err(UsbError::BufferOverflow);
            }
            return Ok(self.write_ep0(buf));
        }
        // A bulk or interrupt write may carry a run of packets (see `UsbipBus`): only the
        // last may be short.
        if buf.len() > MAX_RUN {
            return Err(UsbError::BufferOverflow);
        }
        if e.held.is_some() {
            return Err(UsbError::WouldBlock);
        }
        // Into the queued URBs; what they cannot take yet is held for the next ones.
        match self.feed(ep, buf) {
            None => self.inp[ep].in_complete = true,
            Some(at) => self.inp[ep].held = Some(buf[at..].to_vec()),
        }
        Ok(buf.len())
    }

    /// A packet on EP0 IN: data of an IN control transfer, or the status stage of an OUT one.
    fn write_ep0(&mut self, buf: &[u8]) -> usize {
        self.inp[0].in_complete = true;
        self.progress += 1;
        if self.control != Control::Active {
            return buf.len(); // stale (usb-device's extra ZLP): dropped, as on a SETUP flush
        }
        let mps = self.inp[0].max_packet;
        let Some(urb) = self.control_queue.front_mut() else {
            return buf.len();
        };
        if urb.setup_in() && urb.len > 0 {
            let room = urb.len - urb.data.len();
            let take = buf.len().min(room);
            urb.data.extend_from_slice(&buf[..take]);
            if buf.len() > room {
                let urb = self.control_queue.pop_front().expect("head exists");
                self.reply_in(urb.seqnum, proto::EOVERFLOW, urb.data);
                self.control = Control::Idle;
                self.start_control();
            } else if buf.len() < mps || urb.data.len() == urb.len {
                self.finish_control(0);
            }
        } else {
            // The zero-length status packet of an OUT (or no-data) request.
            self.finish_control(0);
        }
        buf.len()
    }

    pub(crate) fn read(
        &mut self,
        addr: EndpointAddress,
        buf: &mut [u8],
    ) -> Result<usize, UsbError> {
        let ep = addr.index();
        if !self.out[ep].allocated || addr.is_in() {
            return Err(UsbError::InvalidEndpoint);
        }
        if ep == 0 {
            return self.read_ep0(buf);
        }
        let e = &mut self.out[ep];
        if e.halted {
            return Err(UsbError::WouldBlock);
        }
        let mps = e.max_packet;
        let Some(urb) = e.urbs.front_mut() else {
            return Err(UsbError::WouldBlock);
        };
        // One packet; or, into a buffer with room for more, a run of whole packets (see
        // `UsbipBus`): the URB's last may be short.
        let left = urb.data.len() - urb.pos;
        let n = if buf.len() >= 2 * mps {
            left.min(buf.len() - buf.len() % mps)
        } else {
            left.min(mps)
        };
        let is_zlp = n == 0;
        if is_zlp && !urb.zlp {
            return Err(UsbError::WouldBlock);
        }
        // A packet longer than the class's buffer is consumed and dropped.
        let result = if n > buf.len() {
            Err(UsbError::BufferOverflow)
        } else {
            buf[..n].copy_from_slice(&urb.data[urb.pos..urb.pos + n]);
            Ok(n)
        };
        urb.pos += n;
        if is_zlp {
            urb.zlp = false;
        }
        self.progress += 1;
        if urb.pos == urb.data.len() && !urb.zlp {
            let urb = e.urbs.pop_front().expect("head exists");
            self.reply(urb.seqnum, 0, urb.len);
            self.pool.give(urb.data);
        }
        result
    }

    fn read_ep0(&mut self, buf: &mut [u8]) -> Result<usize, UsbError> {
        match self.control {
            Control::Status => {
                // The status ZLP after an IN data stage.
                self.control = Control::Idle;
                self.start_control();
                Ok(0)
            }
            Control::Idle => Err(UsbError::WouldBlock),
            Control::Active => {
                let Some(urb) = self.control_queue.front_mut() else {
                    return Err(UsbError::WouldBlock);
                };
                if self.setup_waiting {
                    let setup = urb.setup.unwrap_or_default();
                    if buf.len() < 8 {
                        return Err(UsbError::BufferOverflow);
                    }
                    buf[..8].copy_from_slice(&setup);
                    self.setup_waiting = false;
                    self.progress += 1;
                    return Ok(8);
                }
                if urb.setup_in() || urb.pos >= urb.data.len() {
                    return Err(UsbError::WouldBlock);
                }
                // The rest of the data stage at once, not packet by packet: usb-device's control
                // pipe takes any count up to its buffer, and a 4 KiB DFU block then costs one
                // poll instead of 64.
                // Never more than the SETUP's wLength: a URB carrying more is an error (EPIPE),
                // not data for usb-device to take.
                let setup = urb.setup.unwrap_or_default();
                let w_length = usize::from(u16::from_le_bytes([setup[6], setup[7]]));
                if urb.data.len() > w_length {
                    urb.pos = urb.data.len();
                    self.finish_control(proto::EPIPE);
                    return Err(UsbError::BufferOverflow);
                }
                let n = urb.data.len() - urb.pos;
                if n > buf.len() {
                    // usb-device cannot take this data stage (larger than its control buffer):
                    // fail the request instead of leaving it hanging.
                    urb.pos = urb.data.len();
                    self.finish_control(proto::EPIPE);
                    return Err(UsbError::BufferOverflow);
                }
                buf[..n].copy_from_slice(&urb.data[urb.pos..urb.pos + n]);
                urb.pos += n;
                self.progress += 1;
                Ok(n)
            }
        }
    }

    pub(crate) fn set_stalled(&mut self, addr: EndpointAddress, stalled: bool) {
        let ep = addr.index();
        if ep == 0 {
            if stalled && self.control == Control::Active && !self.setup_waiting {
                self.finish_control(proto::EPIPE);
            }
            return;
        }
        let dir_in = addr.is_in();
        let e = if dir_in {
            &mut self.inp[ep]
        } else {
            &mut self.out[ep]
        };
        if stalled && !e.halted {
            e.halted = true;
            // What the device wrote and the host has not taken goes with the halt, as a
            // controller flushes its endpoint buffer (Bulk-Only Reset Recovery relies on it).
            e.held = None;
            match e.urbs.pop_front() {
                Some(urb) if dir_in => self.reply_in(urb.seqnum, proto::EPIPE, urb.data),
                Some(urb) => self.reply(urb.seqnum, proto::EPIPE, urb.pos),
                None => e.halt_unreported = true,
            }
        } else if !stalled {
            e.halted = false;
            e.halt_unreported = false;
            if dir_in {
                self.feed_held(ep);
            }
        }
    }

    pub(crate) fn is_stalled(&self, addr: EndpointAddress) -> bool {
        let ep = addr.index();
        if addr.is_in() {
            self.inp[ep].halted
        } else {
            self.out[ep].halted
        }
    }

    pub(crate) fn poll(&mut self) -> PollResult {
        if std::mem::take(&mut self.reset) {
            return PollResult::Reset;
        }
        let mut ep_setup = 0u16;
        let mut ep_out = 0u16;
        let mut ep_in_complete = 0u16;
        match self.control {
            Control::Active if self.setup_waiting => ep_setup |= 1,
            Control::Active => {
                if let Some(urb) = self.control_queue.front()
                    && !urb.setup_in()
                    && urb.pos < urb.data.len()
                {
                    ep_out |= 1;
                }
            }
            Control::Status => ep_out |= 1,
            Control::Idle => {}
        }
        for i in 0..16 {
            if i > 0
                && !self.out[i].halted
                && self.out[i]
                    .urbs
                    .front()
                    .is_some_and(|u| u.pos < u.data.len() || u.zlp)
            {
                ep_out |= 1 << i;
            }
            if std::mem::take(&mut self.inp[i].in_complete) {
                ep_in_complete |= 1 << i;
            }
        }
        if ep_setup | ep_out | ep_in_complete == 0 {
            PollResult::None
        } else {
            PollResult::Data {
                ep_out,
                ep_in_complete,
                ep_setup,
            }
        }
    }

    /// Whether any URB waits for the device (the poller keeps polling while true).
    pub(crate) fn busy(&self) -> bool {
        self.control != Control::Idle
            || self.out.iter().any(|e| !e.urbs.is_empty() && !e.halted)
            || self.inp.iter().any(|e| !e.urbs.is_empty() && !e.halted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_urb(seqnum: u32, len: u32) -> CmdSubmit {
        CmdSubmit {
            seqnum,
            devid: 0x10002,
            direction: Direction::In,
            ep: 1,
            transfer_flags: 0,
            transfer_buffer_length: len,
            start_frame: 0,
            number_of_packets: 0,
            interval: 0,
            setup: [0; 8],
            data: Vec::new(),
        }
    }

    /// The RET_SUBMITs of IN URBs queued so far: (seqnum, status, data).
    fn replies(bridge: &mut Bridge) -> Vec<(u32, i32, Vec<u8>)> {
        replies_of(bridge, Direction::In)
    }

    /// The RET_SUBMITs queued so far for URBs of direction `dir`.
    fn replies_of(bridge: &mut Bridge, dir: Direction) -> Vec<(u32, i32, Vec<u8>)> {
        let mut out = Outbox::default();
        bridge.take_replies(&mut out);
        let mut bytes = Vec::new();
        while !out.is_empty() {
            out.write_to(&mut bytes).unwrap();
        }
        let mut got = Vec::new();
        while let Some((ret, used)) = proto::parse_ret(&bytes, |_| Some(dir)).unwrap() {
            bytes.drain(..used);
            match ret {
                proto::Ret::Submit(s) => got.push((s.seqnum, s.status, s.data)),
                proto::Ret::Unlink(u) => panic!("unexpected unlink {}", u.seqnum),
            }
        }
        got
    }

    fn in_completed(bridge: &mut Bridge) -> bool {
        matches!(bridge.poll(), PollResult::Data { ep_in_complete, .. } if ep_in_complete & 2 != 0)
    }

    #[test]
    fn a_run_of_packets_fills_urbs_in_order_and_completes_once_all_are_taken() {
        let mut bridge = Bridge::default();
        let ep = bridge
            .alloc_ep(UsbDirection::In, None, 512)
            .expect("endpoint");
        assert_eq!(ep.index(), 1);
        let run: Vec<u8> = (0..1536).map(|i| (i % 251) as u8).collect();

        // A URB for two packets: the run's third packet waits for the next URB, so the write
        // is not complete yet and the next one must wait.
        bridge.submit(in_urb(1, 1024));
        assert_eq!(bridge.write(ep, &run), Ok(1536));
        assert_eq!(replies(&mut bridge), vec![(1, 0, run[..1024].to_vec())]);
        assert!(
            !in_completed(&mut bridge),
            "a packet of the run is still held"
        );
        assert_eq!(bridge.write(ep, &[1; 10]), Err(UsbError::WouldBlock));

        // The next URB takes the held packet: now the write is complete.
        bridge.submit(in_urb(2, 4096));
        assert!(in_completed(&mut bridge));
        assert!(
            replies(&mut bridge).is_empty(),
            "a full packet does not end the URB"
        );
        // A short run ends it.
        assert_eq!(bridge.write(ep, &[9; 100]), Ok(100));
        assert!(in_completed(&mut bridge));
        let mut want = run[1024..].to_vec();
        want.extend_from_slice(&[9; 100]);
        assert_eq!(replies(&mut bridge), vec![(2, 0, want)]);

        // With no URB at all the whole run is held, then delivered across two URBs.
        assert_eq!(bridge.write(ep, &run[..1024]), Ok(1024));
        assert!(!in_completed(&mut bridge));
        bridge.submit(in_urb(3, 512));
        assert!(!in_completed(&mut bridge), "one packet still held");
        bridge.submit(in_urb(4, 512));
        assert!(in_completed(&mut bridge));
        assert_eq!(
            replies(&mut bridge),
            vec![(3, 0, run[..512].to_vec()), (4, 0, run[512..1024].to_vec())]
        );
        // Runs are bounded.
        assert_eq!(
            bridge.write(ep, &vec![0; MAX_RUN + 1]),
            Err(UsbError::BufferOverflow)
        );

        // A halt drops what is held: after it is cleared the next URB gets only new data.
        assert_eq!(bridge.write(ep, &run[..1024]), Ok(1024));
        bridge.set_stalled(ep, true);
        bridge.set_stalled(ep, false);
        bridge.submit(in_urb(5, 4096));
        assert!(!in_completed(&mut bridge));
        assert_eq!(bridge.write(ep, &[5; 13]), Ok(13), "nothing held any more");
        assert_eq!(replies(&mut bridge), vec![(5, 0, vec![5; 13])]);
    }

    fn out_urb(seqnum: u32, data: Vec<u8>) -> CmdSubmit {
        CmdSubmit {
            direction: Direction::Out,
            transfer_buffer_length: data.len() as u32,
            data,
            ..in_urb(seqnum, 0)
        }
    }

    #[test]
    fn a_large_read_takes_whole_packets_of_one_urb() {
        let mut bridge = Bridge::default();
        let ep = bridge
            .alloc_ep(UsbDirection::Out, None, 512)
            .expect("endpoint");
        let data: Vec<u8> = (0..2048 + 1300).map(|i| (i % 253) as u8).collect();
        bridge.submit(out_urb(1, data[..2048].to_vec()));
        bridge.submit(out_urb(2, data[2048..].to_vec()));
        let mut buf = [0u8; 4096];
        // Room for three packets of four: three, then the fourth; the run stops at the URB.
        assert_eq!(bridge.read(ep, &mut buf[..1536]), Ok(1536));
        assert_eq!(bridge.read(ep, &mut buf[1536..1536 + 1000]), Ok(512));
        assert_eq!(&buf[..2048], &data[..2048]);
        // Room for less than two packets: one packet, as on any bus.
        assert_eq!(bridge.read(ep, &mut buf[..600]), Ok(512));
        assert_eq!(&buf[..512], &data[2048..2560]);
        // The rest of the URB, short packet included, in one run.
        assert_eq!(bridge.read(ep, &mut buf), Ok(788));
        assert_eq!(&buf[..788], &data[2560..]);
        assert_eq!(bridge.read(ep, &mut buf), Err(UsbError::WouldBlock));
        let done: Vec<u32> = replies_of(&mut bridge, Direction::Out)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(done, vec![1, 2], "both URBs answered");
    }
}
