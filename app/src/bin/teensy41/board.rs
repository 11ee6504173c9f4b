//! The Teensy 4.1 as the shared app's [`Board`]: the USB controller (one gadget per boot:
//! imxrt-usbd takes its endpoint memory once), the configuration store in flash, firmware
//! updates (the A/B build), and the UART as the console's terminal.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::{Cell, RefCell};
use core::time::Duration;

use lunbox::board::{Board, Closed, DeviceSummary, StackSizes, Terminal};
use lunbox_gadget::dfu::ImageSink;
use lunbox_platform::coroutine::{self, Completion};
use lunbox_platform::imxrt::usb::{Bus, Configured};
use lunbox_platform::imxrt::{Uart, heap};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::UsbDevice;

use crate::log;

/// The firmware version: `LUNBOX_FW_VERSION` at build time, else the package version.
pub(crate) const VERSION: &str = match option_env!("LUNBOX_FW_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Stacks: the mass-storage function runs SCSI and the storage drivers (embedded-sdmmc on
/// SPI) on its own; the poller runs usb-device's control handling (its 4 KiB control buffer
/// lives there) and DFU's block writes, and in the A/B build the firmware signature check
/// (~8.5 KiB more).
const STACKS: StackSizes = StackSizes {
    usb: if cfg!(feature = "teensy41-ab") {
        24 * 1024
    } else {
        16 * 1024
    },
    ums: 16 * 1024,
    console: 16 * 1024,
};

/// Longest sleep of the USB poller: its interrupt reaches it through the idle hook, which
/// runs only when every coroutine sleeps.
const USB_WAIT: Duration = Duration::from_millis(100);

/// What the plain build says about firmware updates.
#[cfg(not(feature = "teensy41-ab"))]
const NO_FIRMWARE_SLOTS: &str = "firmware updates need the A/B build (feature teensy41-ab, \
                                 docs/teensy41.md); flash with teensy_loader_cli";

/// The Teensy 4.1 under the shared app.
pub(crate) struct Teensy41 {
    uart: Rc<Uart>,
    /// The bus, until the gadget takes it.
    usb: Cell<Option<&'static UsbBusAllocator<Bus>>>,
    usb_ready: Rc<Completion>,
    configured: RefCell<Configured>,
    serial: String,
    #[cfg(feature = "teensy41-ab")]
    firmware: Option<crate::firmware::Firmware>,
}

impl Teensy41 {
    /// The board with its USB bus, logging to `uart`; the poller sleeps on `usb_ready` (the
    /// USB interrupt's completion). The USB serial number is made from the chip's unique id.
    /// In the A/B build `firmware` updates the firmware (`None`: no program flash).
    pub(crate) fn new(
        usb: &'static UsbBusAllocator<Bus>,
        uart: Rc<Uart>,
        usb_ready: Rc<Completion>,
        #[cfg(feature = "teensy41-ab")] firmware: Option<crate::firmware::Firmware>,
    ) -> Self {
        Teensy41 {
            uart,
            usb: Cell::new(Some(usb)),
            usb_ready,
            configured: RefCell::new(Configured::default()),
            serial: format!("LB{:016X}", lunbox_platform::imxrt::unique_id()),
            #[cfg(feature = "teensy41-ab")]
            firmware,
        }
    }

    /// Whether the `firmware` DFU target can be offered.
    pub(crate) fn has_firmware_target(&self) -> bool {
        #[cfg(feature = "teensy41-ab")]
        return self.firmware.is_some();
        #[cfg(not(feature = "teensy41-ab"))]
        return false;
    }
}

impl Board for Teensy41 {
    type Bus = Bus;
    /// Two sectors of the program flash (docs/teensy41.md, "Flash layout").
    type Store = crate::flash::ConfigStore;

    fn name(&self) -> &str {
        "teensy41"
    }

    fn version(&self) -> &str {
        VERSION
    }

    fn version_line(&self) -> String {
        format!("lunbox {VERSION} (teensy41: Teensy 4.1, i.MX RT1062)")
    }

    fn log(&self, line: &str) {
        log(&self.uart, line);
    }

    fn new_bus(&self, _summary: &DeviceSummary) -> Result<&'static UsbBusAllocator<Bus>, String> {
        self.usb.take().ok_or_else(|| {
            String::from("the USB controller carries one gadget per boot: change it, then reset")
        })
    }

    fn can_rebuild(&self) -> bool {
        false
    }

    fn disconnect(&self) {}

    fn detach(&self) -> Result<(), String> {
        Err(String::from(
            "detach: not on this board (unplug the cable, or reset)",
        ))
    }

    fn service(&self) -> bool {
        false
    }

    fn on_polled(&self, device: &UsbDevice<'_, Bus>) {
        self.configured.borrow_mut().update(device);
    }

    fn after_poll(&self) -> bool {
        false
    }

    fn wait_usb(&self, timeout: Duration) {
        self.usb_ready.wait_timeout(timeout.min(USB_WAIT));
    }

    fn firmware_sink(&self) -> Result<Box<dyn ImageSink>, String> {
        #[cfg(feature = "teensy41-ab")]
        return match &self.firmware {
            Some(f) => Ok(f.sink()),
            None => Err(String::from("firmware: the program flash is not available")),
        };
        #[cfg(not(feature = "teensy41-ab"))]
        return Err(String::from(NO_FIRMWARE_SLOTS));
    }

    fn fw(&self, args: &[&str]) -> Result<String, String> {
        #[cfg(feature = "teensy41-ab")]
        return match &self.firmware {
            Some(f) => f.command(args),
            None => Err(String::from("fw: the program flash is not available")),
        };
        #[cfg(not(feature = "teensy41-ab"))]
        {
            let _ = args;
            Err(String::from(NO_FIRMWARE_SLOTS))
        }
    }

    fn fw_usage(&self) -> &'static str {
        #[cfg(feature = "teensy41-ab")]
        return crate::firmware::USAGE;
        #[cfg(not(feature = "teensy41-ab"))]
        return NO_FIRMWARE_SLOTS;
    }

    fn default_serial(&self) -> String {
        self.serial.clone()
    }

    fn stack_sizes(&self) -> StackSizes {
        STACKS
    }

    fn can_exit(&self) -> bool {
        false
    }

    fn heap_usage(&self) -> Option<(usize, usize)> {
        Some(heap::usage())
    }
}

/// LPUART6 as the console's terminal.
pub(crate) struct UartTerminal(pub(crate) Rc<Uart>);

impl Terminal for UartTerminal {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Closed> {
        Ok(self.0.read(buf))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn interactive(&self) -> bool {
        true
    }

    fn flush(&mut self) {
        while self.0.is_sending() {
            coroutine::sleep(Duration::from_millis(1));
        }
    }
}
