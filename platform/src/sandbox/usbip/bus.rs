//! The `usb-device` bus of the sandbox: packets go to and from USB/IP URBs.

use std::sync::{Arc, Mutex, MutexGuard};

use usb_device::UsbDirection;
use usb_device::bus::PollResult;
use usb_device::endpoint::{EndpointAddress, EndpointType};

use super::bridge::Bridge;

/// A `usb_device::bus::UsbBus` whose host is a USB/IP client (see [`super::UsbipServer`]).
///
/// One extension of the `usb-device` contract, for classes that ask for it: runs of packets.
/// - A write to a bulk or interrupt IN endpoint may carry a run of packets (up to 1 MiB; only
///   the last may be short). The bus splits it into packets and reports the endpoint's IN
///   completion once the host has taken every one of them, so a class that waits for that
///   completion before its next write (or a stall) keeps the order a one-packet controller
///   gives it.
/// - A read into a buffer with room for two packets or more takes as many whole packets of the
///   head URB as fit (a short one, the URB's last, ends the run); a smaller buffer gets one
///   packet, as always.
///
/// Mass storage uses both (`UmsConfig::packet_runs`): a 120 KiB transfer is then a few calls
/// instead of 240 packets, each a pass of the poller on the way in.
pub struct UsbipBus {
    pub(crate) bridge: Arc<Mutex<Bridge>>,
}

pub(crate) fn lock(bridge: &Mutex<Bridge>) -> MutexGuard<'_, Bridge> {
    // The sandbox runs every coroutine on one thread: the lock is never contended, and a
    // poisoned one (a panic elsewhere) still holds consistent state.
    bridge.lock().unwrap_or_else(|e| e.into_inner())
}

impl usb_device::bus::UsbBus for UsbipBus {
    fn alloc_ep(
        &mut self,
        ep_dir: UsbDirection,
        ep_addr: Option<EndpointAddress>,
        _ep_type: EndpointType,
        max_packet_size: u16,
        _interval: u8,
    ) -> usb_device::Result<EndpointAddress> {
        lock(&self.bridge).alloc_ep(ep_dir, ep_addr, max_packet_size)
    }

    fn enable(&mut self) {}

    fn reset(&self) {
        lock(&self.bridge).bus_reset();
    }

    fn set_device_address(&self, _addr: u8) {
        // The address was set at import (vhci handles SET_ADDRESS itself).
    }

    fn write(&self, ep_addr: EndpointAddress, buf: &[u8]) -> usb_device::Result<usize> {
        lock(&self.bridge).write(ep_addr, buf)
    }

    fn read(&self, ep_addr: EndpointAddress, buf: &mut [u8]) -> usb_device::Result<usize> {
        lock(&self.bridge).read(ep_addr, buf)
    }

    fn set_stalled(&self, ep_addr: EndpointAddress, stalled: bool) {
        lock(&self.bridge).set_stalled(ep_addr, stalled);
    }

    fn is_stalled(&self, ep_addr: EndpointAddress) -> bool {
        lock(&self.bridge).is_stalled(ep_addr)
    }

    fn suspend(&self) {}

    fn resume(&self) {}

    fn poll(&self) -> PollResult {
        lock(&self.bridge).poll()
    }
}
