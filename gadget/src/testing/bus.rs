//! The virtual bus: a `UsbBus` and the host's port onto the same endpoint buffers.

use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use usb_device::bus::PollResult;
use usb_device::endpoint::{EndpointAddress, EndpointType};
use usb_device::{UsbDirection, UsbError};

/// One endpoint's buffer and flags.
#[derive(Default, Clone)]
struct Ep {
    allocated: bool,
    max_packet: u16,
    stalled: bool,
    /// OUT: a packet from the host not read yet. IN: a packet from the device not taken yet.
    packet: Option<Vec<u8>>,
    /// IN: the host took a packet since the last poll.
    in_complete: bool,
}

/// Counters for benchmarks and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BusStats {
    /// `UsbBus::poll` calls.
    pub polls: u64,
    /// Packets the host sent.
    pub packets_out: u64,
    /// Packets the host received.
    pub packets_in: u64,
}

#[derive(Default)]
struct State {
    /// `[OUT, IN]` endpoints by number.
    eps: [[Ep; 16]; 2],
    setup: Option<[u8; 8]>,
    reset: bool,
    address: u8,
    enabled: bool,
    stats: BusStats,
}

fn dir(d: UsbDirection) -> usize {
    match d {
        UsbDirection::Out => 0,
        UsbDirection::In => 1,
    }
}

/// The device side: give it to `UsbBusAllocator::new`.
pub struct VirtualBus {
    state: Arc<Mutex<State>>,
}

/// The host side of a [`VirtualBus`].
#[derive(Clone)]
pub struct HostPort {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock leaves consistent data behind.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl VirtualBus {
    /// A bus and its host port. The bus starts with a reset pending, as after attach.
    pub fn new() -> (VirtualBus, HostPort) {
        let state = Arc::new(Mutex::new(State {
            reset: true,
            ..State::default()
        }));
        (
            VirtualBus {
                state: state.clone(),
            },
            HostPort { state },
        )
    }
}

impl usb_device::bus::UsbBus for VirtualBus {
    fn alloc_ep(
        &mut self,
        ep_dir: UsbDirection,
        ep_addr: Option<EndpointAddress>,
        _ep_type: EndpointType,
        max_packet_size: u16,
        _interval: u8,
    ) -> usb_device::Result<EndpointAddress> {
        let mut s = lock(&self.state);
        let d = dir(ep_dir);
        let index = match ep_addr {
            Some(a) => {
                if s.eps[d][a.index()].allocated {
                    return Err(UsbError::InvalidEndpoint);
                }
                a.index()
            }
            None => (1..16)
                .find(|&i| !s.eps[d][i].allocated)
                .ok_or(UsbError::EndpointOverflow)?,
        };
        let ep = &mut s.eps[d][index];
        ep.allocated = true;
        ep.max_packet = max_packet_size;
        Ok(EndpointAddress::from_parts(index, ep_dir))
    }

    fn enable(&mut self) {
        lock(&self.state).enabled = true;
    }

    fn reset(&self) {
        let mut s = lock(&self.state);
        for d in 0..2 {
            for ep in s.eps[d].iter_mut() {
                ep.stalled = false;
                ep.packet = None;
                ep.in_complete = false;
            }
        }
        s.setup = None;
        s.address = 0;
    }

    fn set_device_address(&self, addr: u8) {
        lock(&self.state).address = addr;
    }

    fn write(&self, ep_addr: EndpointAddress, buf: &[u8]) -> usb_device::Result<usize> {
        let mut s = lock(&self.state);
        let ep = &mut s.eps[1][ep_addr.index()];
        if !ep.allocated || ep_addr.is_out() {
            return Err(UsbError::InvalidEndpoint);
        }
        if buf.len() > usize::from(ep.max_packet) {
            return Err(UsbError::BufferOverflow);
        }
        if ep.packet.is_some() {
            return Err(UsbError::WouldBlock);
        }
        ep.packet = Some(buf.to_vec());
        Ok(buf.len())
    }

    fn read(&self, ep_addr: EndpointAddress, buf: &mut [u8]) -> usb_device::Result<usize> {
        let mut s = lock(&self.state);
        if ep_addr.index() == 0
            && let Some(setup) = s.setup
        {
            if buf.len() < 8 {
                return Err(UsbError::BufferOverflow);
            }
            buf[..8].copy_from_slice(&setup);
            s.setup = None;
            return Ok(8);
        }
        let ep = &mut s.eps[0][ep_addr.index()];
        if !ep.allocated || ep_addr.is_in() {
            return Err(UsbError::InvalidEndpoint);
        }
        match &ep.packet {
            None => Err(UsbError::WouldBlock),
            Some(p) if p.len() > buf.len() => Err(UsbError::BufferOverflow),
            Some(p) => {
                let n = p.len();
                buf[..n].copy_from_slice(p);
                ep.packet = None;
                Ok(n)
            }
        }
    }

    fn set_stalled(&self, ep_addr: EndpointAddress, stalled: bool) {
        let mut s = lock(&self.state);
        let ep = &mut s.eps[dir(ep_addr.direction())][ep_addr.index()];
        ep.stalled = stalled;
        if stalled && ep_addr.index() != 0 {
            // A halted endpoint holds no data: what was waiting is dropped.
            ep.packet = None;
        }
    }

    fn is_stalled(&self, ep_addr: EndpointAddress) -> bool {
        lock(&self.state).eps[dir(ep_addr.direction())][ep_addr.index()].stalled
    }

    fn suspend(&self) {}

    fn resume(&self) {}

    fn poll(&self) -> PollResult {
        let mut s = lock(&self.state);
        s.stats.polls += 1;
        if std::mem::take(&mut s.reset) {
            return PollResult::Reset;
        }
        let mut ep_setup = 0u16;
        let mut ep_out = 0u16;
        let mut ep_in_complete = 0u16;
        if s.setup.is_some() {
            ep_setup |= 1;
        }
        for i in 0..16 {
            if s.eps[0][i].packet.is_some() && !(i == 0 && ep_setup != 0) {
                ep_out |= 1 << i;
            }
            if std::mem::take(&mut s.eps[1][i].in_complete) {
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
}

/// Why the host could not move a packet now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortError {
    /// The device has not taken (OUT) or produced (IN) the packet yet: poll and retry.
    NotYet,
    /// The endpoint is halted.
    Stalled,
}

impl HostPort {
    /// Send a SETUP packet on endpoint 0. Like a host controller, this ends whatever control
    /// transfer was in progress: stale EP0 data is dropped and EP0 halts are cleared.
    pub fn setup(&self, setup: [u8; 8]) {
        let mut s = lock(&self.state);
        s.eps[1][0].packet = None;
        s.eps[0][0].packet = None;
        s.eps[0][0].stalled = false;
        s.eps[1][0].stalled = false;
        s.setup = Some(setup);
    }

    /// Offer one OUT packet on endpoint `ep` (a number).
    pub fn send(&self, ep: usize, data: &[u8]) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        let e = &mut s.eps[0][ep];
        if e.stalled {
            return Err(PortError::Stalled);
        }
        if e.packet.is_some() || (ep == 0 && s.setup.is_some()) {
            return Err(PortError::NotYet);
        }
        let e = &mut s.eps[0][ep];
        e.packet = Some(data.to_vec());
        s.stats.packets_out += 1;
        Ok(())
    }

    /// Take one IN packet from endpoint `ep` (a number).
    pub fn receive(&self, ep: usize) -> Result<Vec<u8>, PortError> {
        let mut s = lock(&self.state);
        let e = &mut s.eps[1][ep];
        if e.stalled {
            return Err(PortError::Stalled);
        }
        match e.packet.take() {
            Some(p) => {
                e.in_complete = true;
                s.stats.packets_in += 1;
                Ok(p)
            }
            None => Err(PortError::NotYet),
        }
    }

    /// Whether the OUT packet last sent on `ep` was taken by the device.
    pub fn out_taken(&self, ep: usize) -> bool {
        lock(&self.state).eps[0][ep].packet.is_none()
    }

    /// Whether endpoint `addr` (with the 0x80 bit for IN) is halted.
    pub fn halted(&self, addr: u8) -> bool {
        let s = lock(&self.state);
        s.eps[usize::from(addr >> 7)][usize::from(addr & 0x0F)].stalled
    }

    /// Signal a bus reset (the device sees `PollResult::Reset`).
    pub fn bus_reset(&self) {
        lock(&self.state).reset = true;
    }

    /// The address the device has taken.
    pub fn address(&self) -> u8 {
        lock(&self.state).address
    }

    /// Counters so far.
    pub fn stats(&self) -> BusStats {
        lock(&self.state).stats
    }
}
