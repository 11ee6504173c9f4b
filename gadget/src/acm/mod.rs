//! CDC-ACM: a serial port over USB, for lunbox's console on the host (`/dev/ttyACM0`).
//!
//! Written here rather than taken from usbd-serial 0.2, whose notification endpoint has
//! bInterval 255 — out of range at high speed (1–16), where Linux rewrites it with a warning.
//! The interrupt endpoint here gets bInterval 8 at high speed (2^(8-1) × 125 µs = 16 ms) and 16
//! (ms) at full speed.
//!
//! [`AcmClass`] is driven by the USB controller poller; [`AcmPort`] is the byte-stream handle
//! the console coroutine reads and writes. They share buffers; the class moves packets.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use lunbox_platform::coroutine::Completion;
use usb_device::class_prelude::*;
use usb_device::control::{Recipient, RequestType};

/// Interface class: CDC communications.
const CLASS_CDC: u8 = 0x02;
/// Subclass: abstract control model.
const SUBCLASS_ACM: u8 = 0x02;
/// Interface class: CDC data.
const CLASS_CDC_DATA: u8 = 0x0A;
/// Class-specific interface descriptor type.
const CS_INTERFACE: u8 = 0x24;
const SET_LINE_CODING: u8 = 0x20;
const GET_LINE_CODING: u8 = 0x21;
const SET_CONTROL_LINE_STATE: u8 = 0x22;
const SEND_BREAK: u8 = 0x23;
/// Bytes buffered each way.
const FIFO: usize = 4096;

/// The buffers and line state shared by the class and the port.
struct Shared {
    rx: RefCell<VecDeque<u8>>,
    tx: RefCell<VecDeque<u8>>,
    /// DTR from SET_CONTROL_LINE_STATE: a program has the port open.
    dtr: Cell<bool>,
    line_coding: Cell<[u8; 7]>,
    /// Completed when bytes arrive (or the line state changes).
    rx_ready: Rc<Completion>,
    /// Completed when the port has bytes to send.
    tx_ready: Rc<Completion>,
}

/// The console's end of the serial port.
#[derive(Clone)]
pub struct AcmPort {
    shared: Rc<Shared>,
}

impl AcmPort {
    /// Take up to `buf.len()` received bytes; 0 when none are waiting.
    pub fn read(&self, buf: &mut [u8]) -> usize {
        let mut rx = self.shared.rx.borrow_mut();
        let n = buf.len().min(rx.len());
        // pop_front rather than drain: far less code in the firmware.
        for (b, v) in buf[..n]
            .iter_mut()
            .zip(core::iter::from_fn(|| rx.pop_front()))
        {
            *b = v;
        }
        n
    }

    /// Queue bytes to send; returns how many fitted. While no program has the port open (no
    /// DTR) output is dropped, as a serial line with nobody listening would.
    pub fn write(&self, data: &[u8]) -> usize {
        if !self.shared.dtr.get() {
            return data.len();
        }
        let mut tx = self.shared.tx.borrow_mut();
        let n = data.len().min(FIFO - tx.len());
        tx.extend(&data[..n]);
        if n > 0 && !self.shared.tx_ready.is_done() {
            self.shared.tx_ready.complete();
        }
        n
    }

    /// Whether a program on the host has the port open (DTR set).
    pub fn connected(&self) -> bool {
        self.shared.dtr.get()
    }

    /// Completed when bytes arrive: the console waits on it (shared with other inputs).
    pub fn rx_ready(&self) -> &Rc<Completion> {
        &self.shared.rx_ready
    }

    /// The line coding the host set (baud rate, stop bits, parity, data bits): 7 bytes as on
    /// the wire.
    pub fn line_coding(&self) -> [u8; 7] {
        self.shared.line_coding.get()
    }
}

/// The CDC-ACM function: a communications interface with a notification endpoint and a data
/// interface with two bulk endpoints, grouped by an interface association descriptor.
pub struct AcmClass<'a, B: UsbBus> {
    comm_if: InterfaceNumber,
    data_if: InterfaceNumber,
    comm_ep: EndpointIn<'a, B>,
    read_ep: EndpointOut<'a, B>,
    write_ep: EndpointIn<'a, B>,
    name: StringIndex,
    shared: Rc<Shared>,
    in_busy: bool,
    /// The last IN packet was full: a zero-length packet ends the burst.
    need_zlp: bool,
    /// Bytes arrived for the port since [`AcmClass::take_input`] last looked.
    input: bool,
}

impl<'a, B: UsbBus> AcmClass<'a, B> {
    /// Allocate the interfaces and endpoints. `high_speed` picks packet sizes (512 vs 64) and
    /// the notification interval; `rx_ready`/`tx_ready` are completed when bytes arrive for
    /// the console / are queued for the host (share them with the console's and the poller's
    /// other wake-ups).
    pub fn new(
        alloc: &'a UsbBusAllocator<B>,
        high_speed: bool,
        rx_ready: Rc<Completion>,
        tx_ready: Rc<Completion>,
    ) -> (Self, AcmPort) {
        let bulk = if high_speed { 512 } else { 64 };
        let interval = if high_speed { 8 } else { 16 };
        let shared = Rc::new(Shared {
            rx: RefCell::new(VecDeque::with_capacity(FIFO)),
            tx: RefCell::new(VecDeque::with_capacity(FIFO)),
            dtr: Cell::new(false),
            // 115200 8N1 until the host says otherwise.
            line_coding: Cell::new([0x00, 0xC2, 0x01, 0x00, 0, 0, 8]),
            rx_ready,
            tx_ready,
        });
        let class = AcmClass {
            comm_if: alloc.interface(),
            data_if: alloc.interface(),
            comm_ep: alloc.interrupt(16, interval),
            read_ep: alloc.bulk(bulk),
            write_ep: alloc.bulk(bulk),
            name: alloc.string(),
            shared: shared.clone(),
            in_busy: false,
            need_zlp: false,
            input: false,
        };
        (class, AcmPort { shared })
    }

    /// The communications interface number (the first of the two).
    pub fn interface(&self) -> InterfaceNumber {
        self.comm_if
    }

    /// Move received packets into the port's buffer and queued bytes into packets. Call on
    /// every pass of the USB controller poller.
    pub fn pump(&mut self) {
        // OUT: only while there is room for a whole packet (else the host is NAKed).
        let mps = usize::from(self.read_ep.max_packet_size());
        let mut got = false;
        loop {
            if self.shared.rx.borrow().len() + mps > FIFO {
                break;
            }
            let mut packet = [0u8; 512];
            match self.read_ep.read(&mut packet[..mps]) {
                Ok(n) => {
                    self.shared.rx.borrow_mut().extend(&packet[..n]);
                    got |= n > 0;
                }
                Err(_) => break,
            }
        }
        if got {
            self.input = true;
            self.shared.rx_ready.complete();
        }
        // IN: one packet in flight at a time.
        if !self.in_busy {
            self.send();
        }
    }

    /// Whether bytes arrived for the port (and woke its reader) since the last call.
    pub fn take_input(&mut self) -> bool {
        core::mem::take(&mut self.input)
    }

    /// Put queued bytes (or the zero-length packet a full one needs) into the IN endpoint.
    fn send(&mut self) {
        let mps = usize::from(self.write_ep.max_packet_size());
        let mut tx = self.shared.tx.borrow_mut();
        if tx.is_empty() {
            if self.need_zlp && self.write_ep.write(&[]).is_ok() {
                self.need_zlp = false;
                self.in_busy = true;
            }
            return;
        }
        let n = tx.len().min(mps);
        let mut packet = [0u8; 512];
        for (p, b) in packet.iter_mut().zip(tx.iter()) {
            *p = *b;
        }
        if self.write_ep.write(&packet[..n]).is_ok() {
            for _ in 0..n {
                tx.pop_front();
            }
            self.in_busy = true;
            self.need_zlp = n == mps;
        }
    }

    fn ours(&self, index: u16) -> bool {
        index == u16::from(u8::from(self.comm_if))
    }
}

impl<B: UsbBus> UsbClass<B> for AcmClass<'_, B> {
    fn get_configuration_descriptors(
        &self,
        w: &mut DescriptorWriter<'_>,
    ) -> usb_device::Result<()> {
        w.iad(self.comm_if, 2, CLASS_CDC, SUBCLASS_ACM, 0x00, None)?;
        w.interface_alt(
            self.comm_if,
            0,
            CLASS_CDC,
            SUBCLASS_ACM,
            0x00,
            Some(self.name),
        )?;
        // Header (CDC 1.10); call management (the device does none); ACM capabilities (line
        // coding and line state, break); union (communications → data interface).
        w.write(CS_INTERFACE, &[0x00, 0x10, 0x01])?;
        w.write(CS_INTERFACE, &[0x01, 0x00, u8::from(self.data_if)])?;
        w.write(CS_INTERFACE, &[0x02, 0x06])?;
        w.write(
            CS_INTERFACE,
            &[0x06, u8::from(self.comm_if), u8::from(self.data_if)],
        )?;
        w.endpoint(&self.comm_ep)?;
        w.interface(self.data_if, CLASS_CDC_DATA, 0x00, 0x00)?;
        w.endpoint(&self.write_ep)?;
        w.endpoint(&self.read_ep)?;
        Ok(())
    }

    fn get_string(&self, index: StringIndex, _lang: LangID) -> Option<&str> {
        (index == self.name).then_some("lunbox console")
    }

    fn reset(&mut self) {
        self.in_busy = false;
        self.need_zlp = false;
        self.shared.dtr.set(false);
        // Output for the session the reset ended goes nowhere: it would otherwise be sent
        // before the host configures the device (on a controller that must enable its
        // endpoints first, a transfer primed too early never completes).
        self.shared.tx.borrow_mut().clear();
    }

    fn control_in(&mut self, xfer: ControlIn<'_, '_, '_, B>) {
        let req = *xfer.request();
        if req.request_type != RequestType::Class
            || req.recipient != Recipient::Interface
            || !self.ours(req.index)
        {
            return;
        }
        match req.request {
            GET_LINE_CODING if req.length >= 7 => {
                let _ = xfer.accept_with(&self.shared.line_coding.get());
            }
            _ => {
                let _ = xfer.reject();
            }
        }
    }

    fn control_out(&mut self, xfer: ControlOut<'_, '_, '_, B>) {
        let req = *xfer.request();
        if req.request_type != RequestType::Class
            || req.recipient != Recipient::Interface
            || !self.ours(req.index)
        {
            return;
        }
        match req.request {
            SET_LINE_CODING if xfer.data().len() == 7 => {
                let mut lc = [0u8; 7];
                lc.copy_from_slice(xfer.data());
                self.shared.line_coding.set(lc);
                let _ = xfer.accept();
            }
            SET_CONTROL_LINE_STATE => {
                let dtr = req.value & 1 != 0;
                if !dtr {
                    // Nobody listens any more: drop what was queued for them.
                    self.shared.tx.borrow_mut().clear();
                }
                self.shared.dtr.set(dtr);
                self.shared.rx_ready.complete();
                let _ = xfer.accept();
            }
            SEND_BREAK => {
                let _ = xfer.accept();
            }
            _ => {
                let _ = xfer.reject();
            }
        }
    }

    fn endpoint_out(&mut self, addr: EndpointAddress) {
        if addr == self.read_ep.address() {
            self.pump();
        }
    }

    fn endpoint_in_complete(&mut self, addr: EndpointAddress) {
        if addr == self.write_ep.address() {
            self.in_busy = false;
            self.pump();
        }
    }
}
