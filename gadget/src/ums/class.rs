//! The USB side of mass storage: the MSC interface (class 08h, SCSI transparent 06h,
//! Bulk-Only 50h), its two bulk endpoints, GET MAX LUN and the Bulk-Only Mass Storage Reset.
//! Moves packets between the endpoints and the buffers the UMS coroutine posts in the
//! [`Pipe`].

use alloc::rc::Rc;

use usb_device::class_prelude::*;
use usb_device::control::{Recipient, Request, RequestType};

use super::pipe::Pipe;

/// Interface class: mass storage.
const CLASS_MSC: u8 = 0x08;
/// Interface subclass: SCSI transparent command set.
const SUBCLASS_SCSI: u8 = 0x06;
/// Interface protocol: Bulk-Only Transport.
const PROTOCOL_BOT: u8 = 0x50;
/// Class request: Bulk-Only Mass Storage Reset.
const REQ_RESET: u8 = 0xFF;
/// Class request: Get Max LUN.
const REQ_GET_MAX_LUN: u8 = 0xFE;

/// The mass-storage interface as a `usb-device` class.
///
/// Besides [`UsbDevice::poll`](usb_device::device::UsbDevice::poll), the USB controller poller
/// must call [`UmsClass::pump`] on every pass: usb-device only calls classes when the bus
/// reports an event, and a buffer the function posts is not one.
pub struct UmsClass<'a, B: UsbBus> {
    interface: InterfaceNumber,
    ep_in: EndpointIn<'a, B>,
    ep_out: EndpointOut<'a, B>,
    max_lun: u8,
    pipe: Rc<Pipe>,
    /// A packet written to Bulk-In that the host has not taken yet.
    in_busy: bool,
    /// Our view of the endpoint halts (usb-device does not report the host clearing them).
    in_halted: bool,
    out_halted: bool,
    /// An endpoint event since the last pump: there may be packets to move.
    dirty: bool,
    /// The bus moves runs of packets in one call (see `UmsConfig::packet_runs`).
    packet_runs: bool,
}

impl<'a, B: UsbBus> UmsClass<'a, B> {
    pub(crate) fn new(
        alloc: &'a UsbBusAllocator<B>,
        max_packet: u16,
        max_lun: u8,
        pipe: Rc<Pipe>,
        packet_runs: bool,
    ) -> Self {
        UmsClass {
            interface: alloc.interface(),
            ep_in: alloc.bulk(max_packet),
            ep_out: alloc.bulk(max_packet),
            max_lun,
            pipe,
            in_busy: false,
            in_halted: false,
            out_halted: false,
            dirty: true,
            packet_runs,
        }
    }

    /// The bulk endpoints' max packet size.
    pub fn max_packet_size(&self) -> u16 {
        self.ep_in.max_packet_size()
    }

    /// The interface number.
    pub fn interface(&self) -> InterfaceNumber {
        self.interface
    }

    /// Completed whenever the function posts work for the bus (a buffer to send or fill, a
    /// stall): a USB controller poller that sleeps between bus events waits on this too.
    pub fn activity(&self) -> &Rc<lunbox_platform::coroutine::Completion> {
        &self.pipe.poke
    }

    /// Move data between the endpoints and the posted buffers. Cheap when there is nothing
    /// to do; call it on every pass of the USB controller poller.
    pub fn pump(&mut self) {
        if !self.pipe.configured.get() {
            return;
        }
        // Nothing new on either side since the last pass: nothing to do.
        if !self.dirty && !self.pipe.posted.replace(false) {
            return;
        }
        self.dirty = false;
        let mut woke = false;
        let pipe = self.pipe.clone();
        {
            let mut st = pipe.st.borrow_mut();
            let st = &mut *st;
            if st.wedged {
                self.halt_in();
                self.halt_out();
            }
            if st.stall_out {
                st.stall_out = false;
                self.halt_out();
            }
            // Bulk-Out: fill the oldest posted buffer, packet by packet (or run by run, up to
            // the packet that reaches `want`), straight from the endpoint. Nothing posted: the
            // packet stays in the endpoint (the host is NAKed).
            while let Some(x) = st.out_queue.front_mut().filter(|_| !self.out_halted) {
                let mps = self.ep_out.max_packet_size() as usize;
                let one = x.filled + mps;
                let end = if self.packet_runs {
                    one.max(x.want.div_ceil(mps) * mps)
                } else {
                    one
                }
                .min(x.buf.len());
                match self.ep_out.read(&mut x.buf[x.filled..end]) {
                    Ok(n) => {
                        x.filled += n;
                        // A short packet (or a run ending in one) ends the transfer early.
                        if n == 0 || !n.is_multiple_of(mps) || x.filled >= x.want {
                            let x = st.out_queue.pop_front().expect("front exists");
                            st.out_done.push_back((x.buf, x.filled));
                            woke = true;
                        }
                    }
                    Err(UsbError::WouldBlock) => break,
                    // A packet larger than the room left (the buffer is sized to whole packets,
                    // so only a misbehaving bus gets here): take it as the end of the transfer.
                    Err(_) => {
                        let x = st.out_queue.pop_front().expect("front exists");
                        st.out_done.push_back((x.buf, x.filled));
                        woke = true;
                        break;
                    }
                }
            }
            // Bulk-In: one write at a time (a packet, or the rest of the buffer on a bus that
            // takes runs); the next goes when the host took the previous, so a stall never
            // overtakes data.
            let mps = self.ep_in.max_packet_size() as usize;
            while !self.in_busy && !self.in_halted {
                let Some(x) = st.in_queue.front_mut() else {
                    break;
                };
                if x.stall {
                    st.in_queue.pop_front();
                    self.halt_in();
                    woke = true;
                    break;
                }
                let terminator = x.pos == x.len;
                if terminator && !(x.zlp && x.len % mps == 0) {
                    let x = st.in_queue.pop_front().expect("front exists");
                    st.in_done.push(x.buf);
                    woke = true;
                    continue;
                }
                // The next packet (or run of packets); empty for the zero-length packet that
                // ends a whole number of packets.
                let n = if self.packet_runs {
                    x.len - x.pos
                } else {
                    (x.len - x.pos).min(mps)
                };
                match self.ep_in.write(&x.buf[x.pos..x.pos + n]) {
                    Ok(n) => {
                        self.in_busy = true;
                        x.pos += n;
                        if terminator {
                            x.zlp = false;
                        }
                        let more_data = x.pos < x.len;
                        let zlp_next = x.zlp && x.len % mps == 0;
                        if !more_data && !zlp_next {
                            let x = st.in_queue.pop_front().expect("front exists");
                            st.in_done.push(x.buf);
                            woke = true;
                        }
                    }
                    Err(_) => break, // WouldBlock: the bus is still busy; try on the next pass
                }
            }
        }
        if woke {
            pipe.wake.complete();
        }
    }

    fn halt_in(&mut self) {
        if !self.in_halted {
            self.in_halted = true;
            self.ep_in.stall();
        }
    }

    fn halt_out(&mut self) {
        if !self.out_halted {
            self.out_halted = true;
            self.ep_out.stall();
        }
    }

    /// Forget endpoint state after a bus reset or a (re)configuration.
    fn reset_endpoints(&mut self) {
        self.dirty = true;
        self.in_busy = false;
        self.in_halted = false;
        self.out_halted = false;
    }

    fn is_ours(&self, req: &Request) -> bool {
        req.request_type == RequestType::Class
            && req.recipient == Recipient::Interface
            && req.index == u16::from(u8::from(self.interface))
    }
}

impl<B: UsbBus> UsbClass<B> for UmsClass<'_, B> {
    fn get_configuration_descriptors(
        &self,
        writer: &mut DescriptorWriter<'_>,
    ) -> usb_device::Result<()> {
        writer.interface(self.interface, CLASS_MSC, SUBCLASS_SCSI, PROTOCOL_BOT)?;
        writer.endpoint(&self.ep_in)?;
        writer.endpoint(&self.ep_out)?;
        Ok(())
    }

    fn reset(&mut self) {
        // A bus reset: the device is unconfigured and every command is aborted.
        self.reset_endpoints();
        self.pipe.configured.set(false);
        self.pipe.st.borrow_mut().wedged = false;
        self.pipe.abort(true);
    }

    fn control_in(&mut self, xfer: ControlIn<'_, '_, '_, B>) {
        let req = *xfer.request();
        if !self.is_ours(&req) || req.request != REQ_GET_MAX_LUN {
            return;
        }
        if req.value != 0 || req.length != 1 {
            let _ = xfer.reject();
            return;
        }
        let _ = xfer.accept_with(&[self.max_lun]);
    }

    fn control_out(&mut self, xfer: ControlOut<'_, '_, '_, B>) {
        let req = *xfer.request();
        // Halts may change below: look at the endpoints again on the next pump.
        self.dirty = true;
        // SET_CONFIGURATION: (re)configured; endpoint halts and data toggles start afresh.
        if req.request_type == RequestType::Standard
            && req.recipient == Recipient::Device
            && req.request == Request::SET_CONFIGURATION
        {
            self.reset_endpoints();
            self.pipe.st.borrow_mut().wedged = false;
            self.pipe.configured.set(req.value != 0);
            self.pipe.abort(true);
            return; // usb-device does the rest
        }
        // CLEAR_FEATURE(ENDPOINT_HALT) on our endpoints: refused silently while wedged (the
        // halt stays, as the spec wants until Reset Recovery); otherwise noted, and usb-device
        // clears the halt.
        if req.request_type == RequestType::Standard
            && req.recipient == Recipient::Endpoint
            && (req.request == Request::CLEAR_FEATURE || req.request == Request::SET_FEATURE)
            && req.value == Request::FEATURE_ENDPOINT_HALT
        {
            let ep = EndpointAddress::from(req.index as u8);
            let ours_in = ep == self.ep_in.address();
            let ours_out = ep == self.ep_out.address();
            if !(ours_in || ours_out) {
                return;
            }
            let halt = req.request == Request::SET_FEATURE;
            if !halt && self.pipe.st.borrow().wedged {
                let _ = xfer.accept();
                return;
            }
            if ours_in {
                self.in_halted = halt;
                if !halt {
                    // The packet that was waiting is gone with the halt.
                    self.in_busy = false;
                }
            } else {
                self.out_halted = halt;
            }
            self.pipe.wake.complete();
            return;
        }
        if !self.is_ours(&req) || req.request != REQ_RESET {
            return;
        }
        if req.value != 0 || req.length != 0 {
            let _ = xfer.reject();
            return;
        }
        // Bulk-Only Mass Storage Reset: abort the command and lift the wedge. Halting both
        // endpoints drops a packet still waiting in Bulk-In (it belongs to the aborted
        // command); the host clears both halts next, as Reset Recovery requires.
        self.pipe.st.borrow_mut().wedged = false;
        self.pipe.abort(false);
        self.in_halted = false;
        self.out_halted = false;
        self.in_busy = false;
        self.halt_in();
        self.halt_out();
        let _ = xfer.accept();
    }

    fn poll(&mut self) {
        self.pump();
    }

    fn endpoint_out(&mut self, addr: EndpointAddress) {
        if addr == self.ep_out.address() {
            self.dirty = true;
        }
    }

    fn endpoint_in_complete(&mut self, addr: EndpointAddress) {
        if addr == self.ep_in.address() {
            self.in_busy = false;
            self.dirty = true;
        }
    }
}
