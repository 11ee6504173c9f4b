//! What the shared app needs from a board: the USB bus the gadget is built on, how the USB
//! controller poller drives and waits for it, where the configuration is saved, the firmware
//! update target, and the console's terminals. The sandbox (`src/sandbox.rs`) and the Teensy
//! 4.1 (`src/bin/teensy41/`) implement it; everything else in this crate is the same on both.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use lunbox_gadget::dfu::ImageSink;
use usb_device::bus::{UsbBus, UsbBusAllocator};
use usb_device::device::UsbDevice;

/// The interfaces of a gadget as (class, subclass, protocol) triples, for boards that announce
/// them before enumeration (USB/IP's device list).
pub type InterfaceList = Vec<(u8, u8, u8)>;

/// What the USB device looks like before the host reads its descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    /// Vendor id.
    pub vid: u16,
    /// Product id.
    pub pid: u16,
    /// bcdDevice.
    pub release: u16,
    /// The functions' interfaces in order.
    pub interfaces: InterfaceList,
}

/// A board: the machine under the shared app.
pub trait Board {
    /// The USB bus type the gadget's functions run on.
    type Bus: UsbBus + 'static;
    /// Where `config save` keeps the configuration.
    type Store: lunbox_config::Store;

    /// The board's name in the version line (`sandbox-x86_64`, `teensy41`).
    fn name(&self) -> &str;

    /// The running firmware's version (`X.Y.Z`).
    fn version(&self) -> &str;

    /// The console's `version` line.
    fn version_line(&self) -> String;

    /// Log a line where the board's boot messages go (stderr, the UART).
    fn log(&self, line: &str);

    /// A bus for a new gadget described by `summary`. A board whose controller can carry only
    /// one gadget per boot returns an error for every call after the first.
    fn new_bus(
        &self,
        summary: &DeviceSummary,
    ) -> Result<&'static UsbBusAllocator<Self::Bus>, String>;

    /// Whether a stopped gadget can be started again without a reset.
    fn can_rebuild(&self) -> bool;

    /// The host must see the device go away (the gadget was stopped).
    fn disconnect(&self);

    /// The console's `detach`: drop the host's connection; it may attach again.
    fn detach(&self) -> Result<(), String>;

    /// Drive the bus outside the device's poll (sockets, pending detach). Returns whether
    /// anything moved.
    fn service(&self) -> bool;

    /// After the device's polls: send what the functions answered, without looking for new
    /// requests (the next [`Board::service`] does). Returns whether anything moved. Default:
    /// [`Board::service`].
    fn flush(&self) -> bool {
        self.service()
    }

    /// Right after each `UsbDevice::poll`, before the functions move data: what the
    /// controller needs on a state change (imxrt-usbd: enable the endpoints once the host
    /// configured the device).
    fn on_polled(&self, _device: &UsbDevice<'_, Self::Bus>) {}

    /// After the functions moved data: whether the bus moved data the poll did not report
    /// (the poller then polls again).
    fn after_poll(&self) -> bool;

    /// Sleep until the bus or a function has work, at most `timeout`.
    fn wait_usb(&self, timeout: Duration);

    /// The sink behind the `firmware` DFU target (the inactive firmware slot).
    fn firmware_sink(&self) -> Result<Box<dyn ImageSink>, String>;

    /// The console's `fw ARGS`.
    fn fw(&self, args: &[&str]) -> Result<String, String>;

    /// Help text of `fw`.
    fn fw_usage(&self) -> &'static str;

    /// The serial number used when the configuration sets none.
    fn default_serial(&self) -> String;

    /// Stack size of the `usb` and `ums` coroutines.
    fn stack_sizes(&self) -> StackSizes;

    /// Whether the bus moves runs of bulk packets in one write or read (a write reported
    /// complete once the host took every packet; mass storage then moves a buffer at a time:
    /// see `UmsConfig::packet_runs`). Default: one packet per call, as `usb-device` defines it.
    fn bus_moves_runs(&self) -> bool {
        false
    }

    /// Whether lunbox can end (`exit`, ^D on the board's terminal): a program can, firmware
    /// cannot.
    fn can_exit(&self) -> bool {
        true
    }

    /// Heap bytes in use and free, if the board keeps count (the console's `mem`).
    fn heap_usage(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Coroutine stack sizes a board chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSizes {
    /// The USB controller poller (usb-device's control handling, DFU block writes).
    pub usb: usize,
    /// The mass-storage function (SCSI, the storage drivers).
    pub ums: usize,
    /// The console (the shell's commands run on it).
    pub console: usize,
}

/// A terminal the console serves beside the USB serial port: stdin/stdout in the sandbox,
/// the UART on the board.
pub trait Terminal {
    /// Bytes typed since the last call (0: none now), or [`Closed`] when input has ended.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Closed>;

    /// Send `bytes` (may block briefly; drops nothing).
    fn write(&mut self, bytes: &[u8]);

    /// An interactive terminal: the console echoes what is typed and ends lines with CR LF.
    fn interactive(&self) -> bool;

    /// Wait until output has left (before a reset).
    fn flush(&mut self) {}
}

/// A terminal's input has ended (end of file on stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;
