//! The sandbox as a [`Board`]: the USB/IP server is the USB controller, the state directory
//! holds the configuration and the firmware slots.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use lunbox::board::{Board, DeviceSummary, StackSizes};
use lunbox_config::FileStore;
use lunbox_gadget::dfu::ImageSink;
use lunbox_platform::sandbox::Source;
use lunbox_platform::sandbox::usbip::proto::{DeviceInfo, SPEED_HIGH};
use lunbox_platform::sandbox::usbip::{BUS_ID, UsbipBus, UsbipServer};
use usb_device::bus::UsbBusAllocator;

use super::log;
use crate::update;

/// Stack of the `usb` and `ums` coroutines: generous, host memory is cheap.
const STACK: usize = 64 * 1024;

/// The sandbox machine under the shared app.
pub(crate) struct SandboxBoard {
    server: RefCell<UsbipServer>,
    /// The USB poller's wake-up: readable sockets, work posted by the functions.
    usb_source: Rc<Source>,
    /// The wake-up of [`SandboxBoard::serve_while_stopped`]: the server's sockets while no
    /// gadget runs; completed when the gadget stops.
    idle_source: Rc<Source>,
    /// The console asked for the host to be detached.
    detach: Cell<bool>,
    state_dir: PathBuf,
    /// The USB serial number when the configuration sets none: one per installation.
    serial: String,
    name: String,
}

impl SandboxBoard {
    /// The board serving `server`, its poller sleeping on `usb_source` (and, while no gadget
    /// runs, [`Self::serve_while_stopped`] on `idle_source`), keeping state in `state_dir`.
    pub(crate) fn new(
        server: UsbipServer,
        usb_source: Rc<Source>,
        idle_source: Rc<Source>,
        state_dir: &Path,
    ) -> Self {
        SandboxBoard {
            server: RefCell::new(server),
            usb_source,
            idle_source,
            detach: Cell::new(false),
            state_dir: state_dir.to_path_buf(),
            serial: installation_serial(state_dir),
            name: update::BOARD.to_string(),
        }
    }

    /// Answer USB/IP clients while no gadget runs, so that `usbip list` says at once that
    /// nothing is exported and `usbip attach` is refused rather than left waiting; the USB
    /// poller serves them while a gadget runs. Runs in its own coroutine, never returns.
    pub(crate) fn serve_while_stopped(&self) -> ! {
        loop {
            if self.server.borrow().exported() {
                self.idle_source.fds.borrow_mut().clear();
                // Until the gadget stops (`disconnect`).
                self.idle_source.ready.wait();
                continue;
            }
            let (fds, accept_due) = {
                let mut server = self.server.borrow_mut();
                server.service();
                server.wait_set()
            };
            *self.idle_source.fds.borrow_mut() = fds;
            let timeout = accept_due.map_or(IDLE_WAIT, |due| due.min(IDLE_WAIT));
            self.idle_source.ready.wait_timeout(timeout);
        }
    }
}

/// The longest [`SandboxBoard::serve_while_stopped`] sleeps between looks at the server.
const IDLE_WAIT: Duration = Duration::from_millis(500);

impl Board for SandboxBoard {
    type Bus = UsbipBus;
    type Store = FileStore;

    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> &str {
        update::VERSION_STR
    }

    fn version_line(&self) -> String {
        update::version_line()
    }

    fn log(&self, line: &str) {
        log(line);
    }

    fn new_bus(
        &self,
        summary: &DeviceSummary,
    ) -> Result<&'static UsbBusAllocator<UsbipBus>, String> {
        let mut server = self.server.borrow_mut();
        let bus = server.new_bus();
        server.set_device_info(DeviceInfo {
            path: String::from("/sys/devices/platform/lunbox/usb1/1-1"),
            busid: String::from(BUS_ID),
            busnum: 1,
            devnum: 1,
            speed: SPEED_HIGH,
            id_vendor: summary.vid,
            id_product: summary.pid,
            bcd_device: summary.release,
            device_class: 0xEF,
            device_subclass: 0x02,
            device_protocol: 0x01,
            configuration_value: 1,
            num_configurations: 1,
            interfaces: summary.interfaces.clone(),
        });
        // Leaked per start: an allocator must outlive its device; restarts are rare.
        Ok(Box::leak(Box::new(UsbBusAllocator::new(bus))))
    }

    fn can_rebuild(&self) -> bool {
        true
    }

    fn bus_moves_runs(&self) -> bool {
        true
    }

    fn disconnect(&self) {
        self.server.borrow_mut().withdraw();
        // No poller waits on the server until the next gadget (a client knocking on the
        // listener must not wake it): the stopped gadget's server takes the clients.
        self.usb_source.fds.borrow_mut().clear();
        self.idle_source.ready.complete();
    }

    fn detach(&self) -> Result<(), String> {
        self.detach.set(true);
        Ok(())
    }

    fn service(&self) -> bool {
        let mut server = self.server.borrow_mut();
        if self.detach.take() {
            server.disconnect();
            log("usbip: host detached from the console");
        }
        server.service()
    }

    fn flush(&self) -> bool {
        self.server.borrow_mut().send()
    }

    fn after_poll(&self) -> bool {
        self.server.borrow().take_progress() > 0
    }

    fn wait_usb(&self, timeout: Duration) {
        let (fds, accept_due) = self.server.borrow().wait_set();
        *self.usb_source.fds.borrow_mut() = fds;
        // The listener is left out while it is not to be asked: wake up when it is.
        let timeout = accept_due.map_or(timeout, |due| timeout.min(due));
        // Until a socket is readable or a function posts work (both complete `ready`).
        self.usb_source.ready.wait_timeout(timeout);
    }

    fn firmware_sink(&self) -> Result<Box<dyn ImageSink>, String> {
        Ok(Box::new(update::sink::SlotSink::new(&self.state_dir)))
    }

    fn fw(&self, args: &[&str]) -> Result<String, String> {
        update::console::fw(args)
    }

    fn fw_usage(&self) -> &'static str {
        update::console::USAGE
    }

    fn default_serial(&self) -> String {
        self.serial.clone()
    }

    fn stack_sizes(&self) -> StackSizes {
        StackSizes {
            usb: STACK,
            ums: STACK,
            // The shell's FAT commands hold embedded-sdmmc's volume manager and its blocks.
            console: 4 * STACK,
        }
    }
}

/// A serial number for this installation: the same for a state directory across runs,
/// different between installations (FNV-1a of the directory's absolute path).
fn installation_serial(state_dir: &Path) -> String {
    let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let hash = path
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("LB{:012X}", hash & 0xFFFF_FFFF_FFFF)
}
