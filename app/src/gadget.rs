//! The gadget as the console sees it: which functions run (mass storage with its LUNs, the
//! serial console), started, stopped and rebuilt while lunbox runs. Rebuilding makes the host
//! see the device go away and come back.

use std::cell::RefCell;
use std::rc::Rc;
use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use lunbox_config::{FIRMWARE, Flag};
use lunbox_gadget::DeviceQualifier;
use lunbox_gadget::acm::{AcmClass, AcmPort};
use lunbox_gadget::dfu::{BlockTarget, DfuClass, DfuTarget, SinkTarget, TargetFlags};
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig, UmsControl};
use lunbox_platform::coroutine::{self, JoinHandle};
use lunbox_platform::sandbox::Source;
use lunbox_platform::sandbox::usbip::proto::{DeviceInfo, SPEED_HIGH};
use lunbox_platform::sandbox::usbip::{BUS_ID, UsbipServer};
use lunbox_storage::Registry;
use usb_device::bus::UsbBusAllocator;
use usb_device::class::UsbClass;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbRev, UsbVidPid};

use crate::sandbox::log;

/// What the gadget is made of: the `ums`, `acm`, `vid`/`pid` and string settings of a
/// [`lunbox_config::Config`] (its `dfu` list once DFU is composed in).
pub(crate) type Spec = lunbox_config::Config;

/// A running gadget.
struct Running {
    spec: Spec,
    usb: JoinHandle<()>,
    ums: Option<JoinHandle<()>>,
    control: Option<UmsControl>,
    acm: Option<AcmPort>,
}

/// Starts and stops the gadget on the USB/IP server.
pub(crate) struct Gadgets {
    server: Rc<RefCell<UsbipServer>>,
    registry: Rc<RefCell<Registry>>,
    usb_source: Rc<Source>,
    console_source: Rc<Source>,
    running: RefCell<Option<Running>>,
    /// The console asked for the host to be detached.
    detach: Rc<std::cell::Cell<bool>>,
    /// The state directory (the `firmware` DFU target writes there).
    state_dir: std::path::PathBuf,
    /// The USB serial number when the configuration sets none: one per installation.
    default_serial: String,
}

impl Gadgets {
    /// A manager for `server`, looking devices up in `registry`. The USB controller poller
    /// sleeps on `usb_source`; the console's serial input completes `console_source`.
    pub(crate) fn new(
        server: UsbipServer,
        registry: Rc<RefCell<Registry>>,
        usb_source: Rc<Source>,
        console_source: Rc<Source>,
        state_dir: std::path::PathBuf,
    ) -> Self {
        Gadgets {
            server: Rc::new(RefCell::new(server)),
            registry,
            usb_source,
            console_source,
            running: RefCell::new(None),
            detach: Rc::new(std::cell::Cell::new(false)),
            default_serial: installation_serial(&state_dir),
            state_dir,
        }
    }

    /// The mass-storage LUNs of the running gadget.
    pub(crate) fn control(&self) -> Option<UmsControl> {
        self.running
            .borrow()
            .as_ref()
            .and_then(|r| r.control.clone())
    }

    /// The serial console port of the running gadget.
    pub(crate) fn acm(&self) -> Option<AcmPort> {
        self.running.borrow().as_ref().and_then(|r| r.acm.clone())
    }

    /// What runs now.
    pub(crate) fn spec(&self) -> Option<Spec> {
        self.running.borrow().as_ref().map(|r| r.spec.clone())
    }

    /// Disconnect the host (it can attach again).
    pub(crate) fn detach(&self) {
        self.detach.set(true);
        self.usb_source.ready.complete();
    }

    /// Stop the gadget: the host sees the device go away.
    pub(crate) fn stop(&self) {
        let running = self.running.borrow_mut().take();
        if let Some(r) = running {
            let _ = r.usb.stop();
            if let Some(ums) = r.ums {
                let _ = ums.stop();
            }
        }
        self.server.borrow_mut().disconnect();
    }

    /// (Re)build the gadget from `spec` and start it.
    pub(crate) fn start(&self, spec: Spec) -> Result<(), String> {
        if spec.ums.is_empty() && spec.dfu.is_empty() && !spec.acm {
            return Err(
                "a gadget needs at least one function (mass storage or the serial console)".into(),
            );
        }
        let registry = self.registry.clone();
        lunbox_config::validate(&spec, |n| registry.borrow().get(n).is_some()).map_err(
            |errors| {
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        )?;
        let mut luns = Vec::new();
        for e in &spec.ums {
            let device = self
                .registry
                .borrow()
                .device(&e.device)
                .map_err(|e| e.to_string())?;
            let mut lun = LunConfig::new(Some(device), &e.device);
            lun.read_only = e.flags.contains(Flag::ReadOnly);
            lun.removable = !e.flags.contains(Flag::Fixed);
            luns.push(lun);
        }
        let mut targets: Vec<Box<dyn DfuTarget>> = Vec::new();
        for e in &spec.dfu {
            let flags = TargetFlags {
                read: e.flags.contains(Flag::Readback),
                safe: e.flags.contains(Flag::Safe),
            };
            let name = e.name_or_device().to_string();
            if e.device == FIRMWARE {
                let sink = crate::update::sink::SlotSink::new(&self.state_dir);
                targets.push(Box::new(SinkTarget::new(name, Box::new(sink))));
            } else {
                let device = self
                    .registry
                    .borrow()
                    .device(&e.device)
                    .map_err(|e| e.to_string())?;
                targets.push(Box::new(BlockTarget::new(name, device, flags)));
            }
        }
        self.stop();
        let bus = self.server.borrow_mut().new_bus();
        // Leaked per start: an allocator must outlive its device; restarts are rare.
        let alloc: &'static UsbBusAllocator<_> = Box::leak(Box::new(UsbBusAllocator::new(bus)));
        let mut interfaces = Vec::new();
        let (mut ums_class, ums_fn, control) = if luns.is_empty() {
            (None, None, None)
        } else {
            let mut config = UmsConfig::new(luns);
            config.activity = self.usb_source.ready.clone();
            let Ums {
                class,
                function,
                control,
            } = Ums::new(alloc, config).map_err(|e| e.to_string())?;
            interfaces.push((0x08, 0x06, 0x50));
            (Some(class), Some(function), Some(control))
        };
        let (mut acm, port) = if spec.acm {
            let (class, port) = AcmClass::new(
                alloc,
                true,
                self.console_source.ready.clone(),
                self.usb_source.ready.clone(),
            );
            interfaces.push((0x02, 0x02, 0x00));
            interfaces.push((0x0A, 0x00, 0x00));
            (Some(class), Some(port))
        } else {
            (None, None)
        };
        let mut dfu = if targets.is_empty() {
            None
        } else {
            interfaces.push((0xFE, 0x01, 0x02));
            Some(DfuClass::new(alloc, targets).map_err(|e| e.to_string())?)
        };
        let mut qualifier = DeviceQualifier::new((0xEF, 0x02, 0x01), 64);
        // usb-device keeps the strings by reference: they live as long as the device.
        let strings: &'static (String, String, String) = Box::leak(Box::new((
            spec.manufacturer.clone(),
            spec.product.clone(),
            spec.serial
                .clone()
                .unwrap_or_else(|| self.default_serial.clone()),
        )));
        let mut device = UsbDeviceBuilder::new(alloc, UsbVidPid(spec.vid, spec.pid))
            .usb_rev(UsbRev::Usb200)
            .composite_with_iads()
            .strings(&[StringDescriptors::default()
                .manufacturer(&strings.0)
                .product(&strings.1)
                .serial_number(&strings.2)])
            .map_err(|e| format!("USB strings: {e:?}"))?
            .max_packet_size_0(64)
            .map_err(|e| format!("USB ep0 size: {e:?}"))?
            .device_release(0x0010)
            .build();
        self.server.borrow_mut().set_device_info(DeviceInfo {
            path: String::from("/sys/devices/platform/lunbox/usb1/1-1"),
            busid: String::from(BUS_ID),
            busnum: 1,
            devnum: 1,
            speed: SPEED_HIGH,
            id_vendor: spec.vid,
            id_product: spec.pid,
            bcd_device: 0x0010,
            device_class: 0xEF,
            device_subclass: 0x02,
            device_protocol: 0x01,
            configuration_value: 1,
            num_configurations: 1,
            interfaces,
        });
        let ums = ums_fn.map(|f| {
            coroutine::Builder::new("ums")
                .stack_size(64 * 1024)
                .spawn(move || f.run())
        });
        let server = self.server.clone();
        let source = self.usb_source.clone();
        let detach = self.detach.clone();
        let usb = coroutine::Builder::new("usb")
            .stack_size(64 * 1024)
            .spawn(move || {
                while !coroutine::should_stop() {
                    if detach.take() {
                        server.borrow_mut().disconnect();
                        log("usbip: host detached from the console");
                    }
                    let mut server = server.borrow_mut();
                    let mut progress = server.service();
                    for _ in 0..64 {
                        let mut classes: Vec<&mut dyn UsbClass<_>> = vec![&mut qualifier];
                        if let Some(c) = ums_class.as_mut() {
                            classes.push(c);
                        }
                        if let Some(c) = acm.as_mut() {
                            classes.push(c);
                        }
                        if let Some(c) = dfu.as_mut() {
                            classes.push(c);
                        }
                        let events = device.poll(&mut classes);
                        if let Some(c) = ums_class.as_mut() {
                            c.pump();
                        }
                        if let Some(c) = acm.as_mut() {
                            c.pump();
                        }
                        // DFU work (block writes, manifestation) runs here, between requests.
                        let dfu_busy = dfu.as_mut().is_some_and(|c| {
                            c.pump();
                            c.is_busy()
                        });
                        progress |= dfu_busy;
                        let moved = server.take_progress() > 0;
                        progress |= moved;
                        if !events && !moved {
                            break;
                        }
                    }
                    progress |= server.service();
                    *source.fds.borrow_mut() = server.fds();
                    drop(server);
                    if progress {
                        coroutine::yield_now();
                    } else {
                        // Until a socket is readable or a function posts work (both complete
                        // `source.ready`); the timeout is only a safety net.
                        source.ready.wait_timeout(Duration::from_millis(200));
                    }
                }
            });
        *self.running.borrow_mut() = Some(Running {
            spec,
            usb,
            ums,
            control,
            acm: port,
        });
        Ok(())
    }
}

/// A serial number for this installation: the same for a state directory across runs,
/// different between installations (FNV-1a of the directory's absolute path).
fn installation_serial(state_dir: &std::path::Path) -> String {
    let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let hash = path
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("LB{:012X}", hash & 0xFFFF_FFFF_FFFF)
}
