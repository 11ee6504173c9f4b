//! USB: the i.MX RT1062's USB1 (OTG1) controller as a usb-device bus at high speed, through
//! imxrt-usbd.
//!
//! The endpoint memory and the endpoint state live in statics that are handed to the driver
//! once: there is one bus for the firmware's life, and the gadget built on it stays (to change
//! the functions, the board resets). imxrt-usbd's extra rule: [`BusAdapter::configure`] must
//! be called each time the host configures the device; [`Configured`] does that from the
//! poller.

use alloc::boxed::Box;

use imxrt_usbd::{BusAdapter, EndpointMemory, EndpointState, Speed};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{UsbDevice, UsbDeviceState};

use super::logic::ConfigureOnEntry;
use super::machine::{self, Event};

/// The bus type the USB functions are built on.
pub type Bus = BusAdapter;

/// Endpoint buffers: control 2×64, mass storage 2×512, CDC-ACM 2×512 + 16, and room for a
/// DFU or another bulk pair.
static EP_MEMORY: EndpointMemory<4096> = EndpointMemory::new();
/// Queue heads and transfer descriptors for every endpoint.
static EP_STATE: EndpointState = EndpointState::max_endpoints();

/// USB_OTG1: the controller has an event for the poller. The interrupt stays asserted until
/// the poller handled it, so the line is masked here and unmasked by the idle hook.
// SAFETY: the vector table names this handler by its symbol; no other item in the image
// exports `USB_OTG1`.
#[unsafe(no_mangle)]
extern "C" fn USB_OTG1() {
    machine::signal_from_interrupt(Event::Usb);
}

/// Make the high-speed bus on USB1 and its allocator (which lives as long as the firmware).
/// Its interrupt wakes [`Event::Usb`]'s watcher.
pub(crate) fn bus(instances: imxrt_usbd::Instances<1>) -> &'static UsbBusAllocator<Bus> {
    let bus = BusAdapter::with_speed(instances, &EP_MEMORY, &EP_STATE, Speed::High);
    bus.set_interrupts(true);
    machine::enable_event(Event::Usb);
    Box::leak(Box::new(UsbBusAllocator::new(bus)))
}

/// Calls [`BusAdapter::configure`] when the host (re)configures the device, as imxrt-usbd
/// requires before class traffic. Call [`Configured::update`] after every poll.
#[derive(Debug, Default)]
pub struct Configured {
    state: ConfigureOnEntry,
}

impl Configured {
    /// Track `device`'s state; configure the bus on each entry to Configured.
    pub fn update(&mut self, device: &UsbDevice<'_, Bus>) {
        if self
            .state
            .update(device.state() == UsbDeviceState::Configured)
        {
            device.bus().configure();
        }
    }

    /// Whether the host has configured the device.
    pub fn is_configured(&self) -> bool {
        self.state.is_configured()
    }
}
