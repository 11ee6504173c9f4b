//! The USB/IP server: accepts clients on a TCP port, answers DEVLIST and IMPORT, and carries
//! the URBs of the attached client to the [`Bridge`]. Non-blocking sockets, serviced by the
//! USB controller poller coroutine: no threads, no async runtime.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::string::String;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::bridge::Bridge;
use super::bus::{UsbipBus, lock};
use super::outbox::Outbox;
use super::pool::BufferPool;
use super::proto::{self, Command, DeviceInfo, OpRequest, URB_HEADER_LEN};
use crate::sandbox::os;

/// The bus id lunbox exports.
pub const BUS_ID: &str = "1-1";

/// Most bytes buffered from one client before it is dropped (a URB is at most 16 MiB).
const MAX_RX: usize = 32 << 20;

/// Bytes asked of the socket at a time for the message stream.
const RX_CHUNK: usize = 16 * 1024;

/// A message with more bytes than this after its header has them read into a buffer of
/// their own, which becomes the URB's payload: not read into the stream buffer and copied
/// out of it (for a 120 KiB write, two copies of every byte).
const OWN_BODY_FROM: usize = 2 * 1024;

/// While clients are connected, how often the listener is asked for another one. An accept
/// costs a socket allocation in the kernel even when nobody is waiting (Linux makes the new
/// socket before it looks at the queue): asked at every service of a busy bus, the failed
/// accepts took a third of lunbox's CPU time. Without clients it is asked every time.
const ACCEPT_INTERVAL: Duration = Duration::from_millis(20);

/// After an accept failed for want of resources (file descriptors, buffers, memory), when
/// the listener is asked again: asked sooner it would fail again at once.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// OP_REQ_* messages.
    Op,
    /// Attached: URB traffic.
    Urb,
    /// Reply sent; close once written.
    Closing,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Received bytes not yet parsed; with `body`, the header of that message.
    rx: Vec<u8>,
    /// The bytes after the header in `rx`, read into their own buffer, and how many there are
    /// to be.
    body: Option<(Vec<u8>, usize)>,
    tx: Outbox,
    phase: Phase,
    dead: bool,
}

impl Conn {
    /// The next complete URB-phase command. A message with a large payload still arriving
    /// moves what `rx` holds of it to a buffer of its own, which [`UsbipServer::receive`]
    /// fills and which becomes the command's payload.
    fn next_command(
        &mut self,
        pool: &mut BufferPool,
    ) -> Result<Option<Command>, proto::ProtoError> {
        if let Some((body, len)) = &self.body {
            if body.len() < *len {
                return Ok(None);
            }
            let header = self.rx[..URB_HEADER_LEN]
                .try_into()
                .expect("a message with a body has its header in rx");
            let (body, _) = self.body.take().expect("checked above");
            let cmd = proto::parse_command_split(header, body);
            self.rx.drain(..URB_HEADER_LEN);
            return cmd;
        }
        let Some(total) = proto::command_len(&self.rx)? else {
            return Ok(None);
        };
        if total > self.rx.len() && total - URB_HEADER_LEN > OWN_BODY_FROM {
            // Only this message is in rx: those before it were handled.
            let len = total - URB_HEADER_LEN;
            let mut body = pool.take(len);
            body.extend_from_slice(&self.rx[URB_HEADER_LEN..]);
            self.rx.truncate(URB_HEADER_LEN);
            self.body = Some((body, len));
            return Ok(None);
        }
        Ok(proto::parse_command(&self.rx)?.map(|(cmd, used)| {
            self.rx.drain(..used);
            cmd
        }))
    }
}

/// The USB/IP server side of the sandbox's USB controller.
pub struct UsbipServer {
    listener: TcpListener,
    conns: Vec<Conn>,
    bridge: Arc<Mutex<Bridge>>,
    info: DeviceInfo,
    /// Whether a gadget is exported (DEVLIST lists it, IMPORT attaches it).
    exported: bool,
    log: fn(&str),
    /// When the listener is asked next while clients are connected.
    next_accept: Instant,
}

impl UsbipServer {
    /// Listen on `addr`, to export a device described by `info` once
    /// [`Self::set_device_info`] says it is there (its busid is set to
    /// [`BUS_ID`]). Returns the server and the bus to build the `UsbDevice` on.
    pub fn bind(
        addr: SocketAddr,
        mut info: DeviceInfo,
        log: fn(&str),
    ) -> io::Result<(UsbipServer, UsbipBus)> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        info.busid = String::from(BUS_ID);
        let bridge = Arc::new(Mutex::new(Bridge::default()));
        let server = UsbipServer {
            listener,
            conns: Vec::new(),
            bridge: bridge.clone(),
            info,
            exported: false,
            log,
            next_accept: Instant::now(),
        };
        Ok((server, UsbipBus { bridge }))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A fresh bus for a new gadget: the attached host is disconnected (it sees the device
    /// go away and may attach again) and every endpoint of the previous gadget is forgotten.
    /// The previous bus must not be used any more.
    pub fn new_bus(&mut self) -> UsbipBus {
        self.disconnect();
        lock(&self.bridge).clear_allocations();
        UsbipBus {
            bridge: self.bridge.clone(),
        }
    }

    /// Update what DEVLIST/IMPORT report (after the descriptors are known).
    pub fn set_device_info(&mut self, mut info: DeviceInfo) {
        info.busid = String::from(BUS_ID);
        self.info = info;
        self.exported = true;
    }

    /// The gadget is gone: the attached host is disconnected, DEVLIST lists no device and
    /// IMPORT is refused until [`Self::set_device_info`] exports one again.
    pub fn withdraw(&mut self) {
        self.disconnect();
        self.exported = false;
    }

    /// Whether a device is exported.
    pub fn exported(&self) -> bool {
        self.exported
    }

    /// What to wait on: the file descriptors to watch for readability (every client, and the
    /// listener when it is to be asked at the next service), and when the listener is left
    /// out, how long until it is due (wait at most that long). A waiting client on a listener
    /// that is not asked yet would otherwise wake every wait at once. Both come from one
    /// reading of the clock, so the listener is either watched or its time is given.
    pub fn wait_set(&self) -> (Vec<RawFd>, Option<Duration>) {
        let mut fds = Vec::with_capacity(self.conns.len() + 1);
        let due = self.next_accept.saturating_duration_since(Instant::now());
        let due = if due.is_zero() {
            fds.push(self.listener.as_raw_fd());
            None
        } else {
            Some(due)
        };
        fds.extend(self.conns.iter().map(|c| c.stream.as_raw_fd()));
        (fds, due)
    }

    /// Whether a client is attached.
    pub fn attached(&self) -> bool {
        self.conns.iter().any(|c| c.phase == Phase::Urb && !c.dead)
    }

    /// Whether URBs wait for the device.
    pub fn busy(&self) -> bool {
        lock(&self.bridge).busy()
    }

    /// Packets moved through the bus since the last call.
    pub fn take_progress(&self) -> u64 {
        lock(&self.bridge).take_progress()
    }

    /// Detach the client (the host sees a disconnect and may attach again).
    pub fn disconnect(&mut self) {
        for c in self.conns.iter_mut().filter(|c| c.phase == Phase::Urb) {
            c.dead = true;
        }
        self.reap();
    }

    /// Accept, read, parse and dispatch; then send what the bridge answered. Returns whether
    /// anything happened.
    pub fn service(&mut self) -> bool {
        let now = Instant::now();
        let mut progress = false;
        if now >= self.next_accept {
            let failed;
            (progress, failed) = self.accept_new();
            self.next_accept = if failed {
                now + ACCEPT_RETRY
            } else if self.conns.is_empty() {
                now
            } else {
                now + ACCEPT_INTERVAL
            };
        }
        for i in 0..self.conns.len() {
            progress |= self.receive(i);
            self.dispatch(i);
        }
        progress |= self.flush();
        self.reap();
        progress
    }

    /// Send what the bridge answered, without reading: after the device's polls, when only
    /// replies can be new (a read there mostly finds nothing: a failed `recvfrom` each time).
    /// Returns whether anything was sent.
    pub fn send(&mut self) -> bool {
        let progress = self.flush();
        self.reap();
        progress
    }

    /// Take the clients waiting on the listener. Returns whether there were any, and whether
    /// accepting failed.
    fn accept_new(&mut self) -> (bool, bool) {
        let mut progress = false;
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    progress = true;
                    if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                        (self.log)("usbip: cannot configure a client socket; dropped");
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        peer,
                        rx: Vec::new(),
                        body: None,
                        tx: Outbox::default(),
                        phase: Phase::Op,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (progress, false),
                // One client gave up while queued, or a signal: the next may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    (self.log)(&format!("usbip: accept failed: {e}"));
                    return (progress, os::out_of_resources(&e));
                }
            }
        }
    }

    /// Read what the client sent, handling each message once it is complete.
    fn receive(&mut self, i: usize) -> bool {
        let mut got = false;
        loop {
            let c = &mut self.conns[i];
            if c.dead {
                return true;
            }
            // A large message's payload goes to its own buffer, the rest to `rx`.
            let (buf, want) = match &mut c.body {
                Some((body, len)) if body.len() < *len => {
                    let want = *len - body.len();
                    (body, want)
                }
                Some(_) => return got,
                None => (&mut c.rx, RX_CHUNK),
            };
            let result = os::recv_into(c.stream.as_raw_fd(), buf, want);
            let drained = match result {
                Ok(0) => {
                    if c.phase == Phase::Urb {
                        (self.log)(&format!("usbip: {} detached (connection closed)", c.peer));
                    }
                    c.dead = true;
                    return true;
                }
                Ok(n) => {
                    got = true;
                    n < want
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.dispatch(i);
                    return got;
                }
                Err(e) => {
                    (self.log)(&format!("usbip: {}: {e}; dropped", c.peer));
                    c.dead = true;
                    return true;
                }
            };
            if c.rx.len() > MAX_RX {
                (self.log)(&format!("usbip: {} sent too much at once; dropped", c.peer));
                c.dead = true;
                return true;
            }
            // Handle what is complete; a large message begun gets its own buffer.
            self.dispatch(i);
            if drained {
                // A short read took all there was: asking again would only fail (poll says
                // when more arrives).
                return got;
            }
        }
    }

    /// Handle every complete message of connection `i`.
    fn dispatch(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            if c.dead || c.rx.is_empty() {
                return;
            }
            match c.phase {
                Phase::Closing => {
                    c.rx.clear();
                    return;
                }
                Phase::Op => match proto::parse_op_request(&c.rx) {
                    Ok(None) => return,
                    Ok(Some((req, used))) => {
                        c.rx.drain(..used);
                        self.op(i, req);
                    }
                    Err(e) => {
                        (self.log)(&format!("usbip: {}: {e}; connection closed", c.peer));
                        c.dead = true;
                        return;
                    }
                },
                Phase::Urb => {
                    let mut bridge = lock(&self.bridge);
                    match c.next_command(&mut bridge.pool) {
                        Ok(None) => return,
                        Ok(Some(Command::Submit(s))) => bridge.submit(s),
                        Ok(Some(Command::Unlink(u))) => bridge.unlink(u.seqnum, u.unlink_seqnum),
                        Err(e) => {
                            drop(bridge);
                            (self.log)(&format!("usbip: {}: {e}; detached", c.peer));
                            c.dead = true;
                            return;
                        }
                    }
                }
            }
        }
    }

    fn op(&mut self, i: usize, req: OpRequest) {
        let busy = self.attached();
        let c = &mut self.conns[i];
        match req {
            OpRequest::DevList => {
                let info = if self.exported {
                    core::slice::from_ref(&self.info)
                } else {
                    &[]
                };
                c.tx.encode(|b| proto::encode_devlist_reply(info, b));
                c.phase = Phase::Closing;
            }
            OpRequest::Import { busid } => {
                if !self.exported {
                    (self.log)(&format!(
                        "usbip: {} asked for bus id '{busid}'; no gadget is running \
                         (usbgadget starts one)",
                        c.peer
                    ));
                    c.tx.encode(|b| proto::encode_import_reply(proto::ST_NODEV, None, b));
                    c.phase = Phase::Closing;
                } else if busid != BUS_ID {
                    (self.log)(&format!(
                        "usbip: {} asked for bus id '{busid}'; lunbox exports {BUS_ID}",
                        c.peer
                    ));
                    c.tx.encode(|b| proto::encode_import_reply(proto::ST_NODEV, None, b));
                    c.phase = Phase::Closing;
                } else if busy {
                    (self.log)(&format!(
                        "usbip: {} wants {BUS_ID}, which is already attached",
                        c.peer
                    ));
                    c.tx.encode(|b| proto::encode_import_reply(proto::ST_DEV_BUSY, None, b));
                    c.phase = Phase::Closing;
                } else {
                    let info = &self.info;
                    c.tx.encode(|b| proto::encode_import_reply(proto::ST_OK, Some(info), b));
                    c.phase = Phase::Urb;
                    (self.log)(&format!("usbip: {} attached {BUS_ID}", c.peer));
                    lock(&self.bridge).session_reset();
                }
            }
        }
    }

    /// Send queued bytes; the attached client gets the bridge's replies.
    fn flush(&mut self) -> bool {
        let mut progress = false;
        {
            let mut bridge = lock(&self.bridge);
            if let Some(c) = self
                .conns
                .iter_mut()
                .find(|c| c.phase == Phase::Urb && !c.dead)
            {
                progress |= bridge.take_replies(&mut c.tx);
            }
        }
        for c in self
            .conns
            .iter_mut()
            .filter(|c| !c.dead && !c.tx.is_empty())
        {
            while !c.tx.is_empty() {
                match c.tx.write_to(&mut c.stream) {
                    Ok(0) => {
                        c.dead = true;
                        break;
                    }
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        c.dead = true;
                        break;
                    }
                }
            }
            if c.phase == Phase::Closing && c.tx.is_empty() {
                c.dead = true;
            }
            let mut spent = c.tx.drain_spent().peekable();
            if spent.peek().is_some() {
                let mut bridge = lock(&self.bridge);
                for buf in spent {
                    bridge.pool.give(buf);
                }
            }
        }
        progress
    }

    /// Drop dead connections; a lost session resets the device.
    fn reap(&mut self) {
        let session_lost = self.conns.iter().any(|c| c.dead && c.phase == Phase::Urb);
        self.conns.retain(|c| !c.dead);
        if session_lost {
            lock(&self.bridge).session_reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn quiet(_: &str) {}

    #[test]
    fn the_listener_is_watched_or_its_time_is_given() {
        let (mut server, _bus) =
            UsbipServer::bind("127.0.0.1:0".parse().unwrap(), DeviceInfo::default(), quiet)
                .unwrap();
        let listener = server.listener.as_raw_fd();
        // No clients: the listener is asked at every service, so it is watched.
        let (fds, due) = server.wait_set();
        assert_eq!((fds, due), (vec![listener], None));

        let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        // The kernel queues the connection at once on loopback; accept it.
        let mut accepted = false;
        for _ in 0..100 {
            server.service();
            if !server.conns.is_empty() {
                accepted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(accepted, "the client was accepted");
        // A client is connected: the listener waits its turn, and the wait is told how long.
        let (fds, due) = server.wait_set();
        assert!(!fds.contains(&listener), "{fds:?}");
        assert_eq!(fds.len(), 1, "the client is watched");
        let due = due.expect("the listener's turn is given");
        assert!(due <= ACCEPT_INTERVAL && !due.is_zero(), "{due:?}");
    }

    /// The reply stream of `client` until `n` replies (RET_SUBMIT of OUT URBs, RET_UNLINK)
    /// have come, servicing `server` meanwhile.
    fn replies(server: &mut UsbipServer, client: &mut TcpStream, n: usize) -> Vec<proto::Ret> {
        client.set_nonblocking(true).unwrap();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for _ in 0..2000 {
            server.service();
            let mut chunk = [0u8; 4096];
            match client.read(&mut chunk) {
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
            while let Some((ret, used)) =
                proto::parse_ret(&buf, |_| Some(proto::Direction::Out)).unwrap()
            {
                buf.drain(..used);
                got.push(ret);
            }
            if got.len() >= n {
                break;
            }
        }
        got
    }

    fn submit_out(seqnum: u32, len: usize) -> Vec<u8> {
        let cmd = proto::CmdSubmit {
            seqnum,
            devid: 0x10002,
            direction: proto::Direction::Out,
            ep: 3,
            transfer_flags: 0,
            transfer_buffer_length: len as u32,
            start_frame: 0,
            number_of_packets: 0,
            interval: 0,
            setup: [0; 8],
            data: (0..len).map(|i| i as u8).collect(),
        };
        let mut out = Vec::new();
        proto::encode_cmd_submit(&cmd, &mut out);
        out
    }

    /// Large messages are read into buffers of their own: however the client's bytes are cut
    /// up, every message is framed right and answered in order.
    #[test]
    fn messages_are_framed_right_however_the_bytes_arrive() {
        let (mut server, _bus) =
            UsbipServer::bind("127.0.0.1:0".parse().unwrap(), DeviceInfo::default(), quiet)
                .unwrap();
        server.set_device_info(DeviceInfo::default());
        let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        client.set_nodelay(true).unwrap();
        let mut import = Vec::new();
        proto::encode_op_request_import(BUS_ID, &mut import);
        client.write_all(&import).unwrap();
        let mut reply = Vec::new();
        while reply.len() < 8 + 312 {
            server.service();
            let mut chunk = [0u8; 512];
            client.set_nonblocking(true).unwrap();
            match client.read(&mut chunk) {
                Ok(k) => reply.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(&reply[4..8], &[0, 0, 0, 0], "imported");
        client.set_nonblocking(false).unwrap();

        // A large submit (its own buffer), an unlink, a small submit, a large one again: to an
        // endpoint the (absent) device never allocated, so each is answered at once.
        let mut stream = submit_out(1, 70_000);
        let mut unlink = Vec::new();
        proto::encode_cmd_unlink(
            &proto::CmdUnlink {
                seqnum: 2,
                devid: 0x10002,
                direction: proto::Direction::Out,
                ep: 0,
                unlink_seqnum: 1,
            },
            &mut unlink,
        );
        stream.extend_from_slice(&unlink);
        stream.extend_from_slice(&submit_out(3, 31));
        stream.extend_from_slice(&submit_out(4, 5000));
        for cut in [1, 47, 49, 3000, 65_536, stream.len()] {
            for piece in stream.chunks(cut) {
                client.write_all(piece).unwrap();
                server.service();
            }
            let got = replies(&mut server, &mut client, 4);
            let seqs: Vec<(u32, i32)> = got
                .iter()
                .map(|r| match r {
                    proto::Ret::Submit(s) => (s.seqnum, s.status),
                    proto::Ret::Unlink(u) => (u.seqnum, u.status),
                })
                .collect();
            assert_eq!(
                seqs,
                vec![
                    (1, proto::EPROTO),
                    (2, 0),
                    (3, proto::EPROTO),
                    (4, proto::EPROTO)
                ],
                "pieces of {cut} bytes"
            );
            client.set_nonblocking(false).unwrap();
        }
        assert!(server.attached(), "still attached: no framing error");
    }
}
