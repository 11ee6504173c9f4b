//! The USB/IP server: accepts clients on a TCP port, answers DEVLIST and IMPORT, and carries
//! the URBs of the attached client to the [`Bridge`]. Non-blocking sockets, serviced by the
//! USB controller poller coroutine: no threads, no async runtime.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::string::String;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::bridge::Bridge;
use super::bus::{UsbipBus, lock};
use super::proto::{self, Command, DeviceInfo, OpRequest};
use crate::sandbox::os;

/// The bus id lunbox exports.
pub const BUS_ID: &str = "1-1";

/// Most bytes buffered from one client before it is dropped (a URB is at most 16 MiB).
const MAX_RX: usize = 32 << 20;

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
    rx: Vec<u8>,
    tx: Vec<u8>,
    phase: Phase,
    dead: bool,
}

/// The USB/IP server side of the sandbox's USB controller.
pub struct UsbipServer {
    listener: TcpListener,
    conns: Vec<Conn>,
    bridge: Arc<Mutex<Bridge>>,
    info: DeviceInfo,
    log: fn(&str),
    scratch: Vec<u8>,
    /// When the listener is asked next while clients are connected.
    next_accept: Instant,
}

impl UsbipServer {
    /// Listen on `addr` and export a device described by `info` (its busid is set to
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
            log,
            scratch: vec![0; 64 * 1024],
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
                        tx: Vec::new(),
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

    /// Read what the client sent.
    fn receive(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        let mut got = false;
        // On the heap: coroutine stacks are small.
        let chunk = &mut self.scratch;
        loop {
            match c.stream.read(chunk) {
                Ok(0) => {
                    if c.phase == Phase::Urb {
                        (self.log)(&format!("usbip: {} detached (connection closed)", c.peer));
                    }
                    c.dead = true;
                    return true;
                }
                Ok(n) => {
                    got = true;
                    c.rx.extend_from_slice(&chunk[..n]);
                    if c.rx.len() > MAX_RX {
                        (self.log)(&format!("usbip: {} sent too much at once; dropped", c.peer));
                        c.dead = true;
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    (self.log)(&format!("usbip: {}: {e}; dropped", c.peer));
                    c.dead = true;
                    return true;
                }
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
                Phase::Urb => match proto::parse_command(&c.rx) {
                    Ok(None) => return,
                    Ok(Some((cmd, used))) => {
                        c.rx.drain(..used);
                        let mut bridge = lock(&self.bridge);
                        match cmd {
                            Command::Submit(s) => bridge.submit(s),
                            Command::Unlink(u) => bridge.unlink(u.seqnum, u.unlink_seqnum),
                        }
                    }
                    Err(e) => {
                        (self.log)(&format!("usbip: {}: {e}; detached", c.peer));
                        c.dead = true;
                        return;
                    }
                },
            }
        }
    }

    fn op(&mut self, i: usize, req: OpRequest) {
        let busy = self.attached();
        let c = &mut self.conns[i];
        match req {
            OpRequest::DevList => {
                proto::encode_devlist_reply(core::slice::from_ref(&self.info), &mut c.tx);
                c.phase = Phase::Closing;
            }
            OpRequest::Import { busid } => {
                if busid != BUS_ID {
                    (self.log)(&format!(
                        "usbip: {} asked for bus id '{busid}'; lunbox exports {BUS_ID}",
                        c.peer
                    ));
                    proto::encode_import_reply(proto::ST_NODEV, None, &mut c.tx);
                    c.phase = Phase::Closing;
                } else if busy {
                    (self.log)(&format!(
                        "usbip: {} wants {BUS_ID}, which is already attached",
                        c.peer
                    ));
                    proto::encode_import_reply(proto::ST_DEV_BUSY, None, &mut c.tx);
                    c.phase = Phase::Closing;
                } else {
                    proto::encode_import_reply(proto::ST_OK, Some(&self.info), &mut c.tx);
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
                let before = c.tx.len();
                bridge.take_replies(&mut c.tx);
                progress |= c.tx.len() != before;
            }
        }
        for c in self
            .conns
            .iter_mut()
            .filter(|c| !c.dead && !c.tx.is_empty())
        {
            loop {
                match c.stream.write(&c.tx) {
                    Ok(0) => {
                        c.dead = true;
                        break;
                    }
                    Ok(n) => {
                        c.tx.drain(..n);
                        progress = true;
                        if c.tx.is_empty() {
                            break;
                        }
                    }
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
}
