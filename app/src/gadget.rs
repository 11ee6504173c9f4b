//! The gadget as the console sees it: which functions run (mass storage with its LUNs, DFU,
//! the serial console), started, stopped and rebuilt while lunbox runs, and the USB
//! controller poller coroutine that drives them. Rebuilding makes the host see the device go
//! away and come back (on boards whose controller allows it, see [`Board::can_rebuild`]).

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::time::Duration;

use lunbox_config::{FIRMWARE, Flag};
use lunbox_gadget::DeviceQualifier;
use lunbox_gadget::acm::{AcmClass, AcmPort};
use lunbox_gadget::dfu::{BlockTarget, DfuClass, DfuTarget, SinkTarget, TargetFlags};
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig, UmsControl};
use lunbox_platform::coroutine::{self, Completion, JoinHandle};
use lunbox_storage::Registry;
use usb_device::bus::UsbBus;
use usb_device::class::UsbClass;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbRev, UsbVidPid};

use crate::board::{Board, DeviceSummary};

/// What the gadget is made of: the `ums`, `dfu`, `acm`, `vid`/`pid` and string settings of a
/// [`lunbox_config::Config`].
pub type Spec = lunbox_config::Config;

/// bcdDevice of the gadget.
pub const DEVICE_RELEASE: u16 = 0x0010;

/// A running gadget.
struct Running {
    spec: Spec,
    usb: JoinHandle<()>,
    ums: Option<JoinHandle<()>>,
    control: Option<UmsControl>,
    acm: Option<AcmPort>,
}

/// Starts and stops the gadget on the board's USB controller.
pub struct Gadgets<B: Board> {
    board: Rc<B>,
    registry: Rc<RefCell<Registry>>,
    usb_ready: Rc<Completion>,
    console_ready: Rc<Completion>,
    running: RefCell<Option<Running>>,
}

impl<B: Board + 'static> Gadgets<B> {
    /// A manager for `board`'s USB controller, looking devices up in `registry`. The USB
    /// controller poller sleeps in [`Board::wait_usb`], which `usb_ready` must wake (the
    /// functions complete it when they post work); the serial console's input completes
    /// `console_ready`.
    pub fn new(
        board: Rc<B>,
        registry: Rc<RefCell<Registry>>,
        usb_ready: Rc<Completion>,
        console_ready: Rc<Completion>,
    ) -> Self {
        Gadgets {
            board,
            registry,
            usb_ready,
            console_ready,
            running: RefCell::new(None),
        }
    }

    /// The board.
    pub fn board(&self) -> &Rc<B> {
        &self.board
    }

    /// The devices the gadget's functions can use.
    pub fn registry(&self) -> &Rc<RefCell<Registry>> {
        &self.registry
    }

    /// The mass-storage LUNs of the running gadget.
    pub fn control(&self) -> Option<UmsControl> {
        self.running
            .borrow()
            .as_ref()
            .and_then(|r| r.control.clone())
    }

    /// The serial console port of the running gadget.
    pub fn acm(&self) -> Option<AcmPort> {
        self.running.borrow().as_ref().and_then(|r| r.acm.clone())
    }

    /// What runs now.
    pub fn spec(&self) -> Option<Spec> {
        self.running.borrow().as_ref().map(|r| r.spec.clone())
    }

    /// Disconnect the host (it can attach again).
    pub fn detach(&self) -> Result<(), String> {
        self.board.detach()?;
        self.usb_ready.complete();
        Ok(())
    }

    /// Why the running gadget cannot be replaced, if it cannot.
    fn refuse_rebuild(&self) -> Result<(), String> {
        if self.running.borrow().is_some() && !self.board.can_rebuild() {
            return Err(format!(
                "the {} builds its USB gadget once per boot: change the configuration \
                 (config set), config save, then reset",
                self.board.name()
            ));
        }
        Ok(())
    }

    /// Stop the gadget: the host sees the device go away.
    pub fn stop(&self) -> Result<(), String> {
        self.refuse_rebuild()?;
        let running = self.running.borrow_mut().take();
        if let Some(r) = running {
            let _ = r.usb.stop();
            if let Some(ums) = r.ums {
                let _ = ums.stop();
            }
        }
        self.board.disconnect();
        Ok(())
    }

    /// (Re)build the gadget from `spec` and start it.
    pub fn start(&self, spec: Spec) -> Result<(), String> {
        if spec.ums.is_empty() && spec.dfu.is_empty() && !spec.acm {
            return Err(
                "a gadget needs at least one function (mass storage or the serial console)".into(),
            );
        }
        // Specs typed on the console (`usbgadget`, `config`: the `full-shell` feature) are
        // checked against the configuration's rules. Without that feature the only spec is
        // the board's own, made from its disks, and the functions' constructors still refuse
        // what they cannot do (too many LUNs or targets, a missing device).
        #[cfg(feature = "config")]
        let registry = self.registry.clone();
        #[cfg(feature = "config")]
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
                let sink = self.board.firmware_sink()?;
                targets.push(Box::new(SinkTarget::new(name, sink)));
            } else {
                let device = self
                    .registry
                    .borrow()
                    .device(&e.device)
                    .map_err(|e| e.to_string())?;
                targets.push(Box::new(BlockTarget::new(name, device, flags)));
            }
        }
        // Everything that can refuse the spec, before the controller is taken: a board that
        // carries one gadget per boot has no second try once `new_bus` has been called.
        if luns.len() > lunbox_gadget::ums::MAX_LUNS {
            return Err(format!(
                "{} LUNs: at most {}",
                luns.len(),
                lunbox_gadget::ums::MAX_LUNS
            ));
        }
        if targets.len() > lunbox_gadget::dfu::MAX_TARGETS {
            return Err(format!(
                "{} DFU targets: at most {}",
                targets.len(),
                lunbox_gadget::dfu::MAX_TARGETS
            ));
        }
        let interfaces = interfaces(&spec);
        self.stop()?;
        let summary = DeviceSummary {
            vid: spec.vid,
            pid: spec.pid,
            release: DEVICE_RELEASE,
            interfaces,
        };
        let alloc = self.board.new_bus(&summary)?;
        let (mut ums_class, ums_fn, control) = if luns.is_empty() {
            (None, None, None)
        } else {
            let mut config = UmsConfig::new(luns);
            config.activity = self.usb_ready.clone();
            config.packet_runs = self.board.bus_moves_runs();
            let Ums {
                class,
                function,
                control,
            } = Ums::new(alloc, config).map_err(|e| e.to_string())?;
            (Some(class), Some(function), Some(control))
        };
        let (mut acm, port) = if spec.acm {
            let (class, port) = AcmClass::new(
                alloc,
                true,
                self.console_ready.clone(),
                self.usb_ready.clone(),
            );
            (Some(class), Some(port))
        } else {
            (None, None)
        };
        let mut dfu = if targets.is_empty() {
            None
        } else {
            Some(DfuClass::new(alloc, targets).map_err(|e| e.to_string())?)
        };
        let mut qualifier = DeviceQualifier::new((0xEF, 0x02, 0x01), 64);
        // usb-device keeps the strings by reference: they live as long as the device.
        let strings: &'static (String, String, String) = Box::leak(Box::new((
            spec.manufacturer.clone(),
            spec.product.clone(),
            spec.serial
                .clone()
                .unwrap_or_else(|| self.board.default_serial()),
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
            .device_release(DEVICE_RELEASE)
            .build();
        let ums = ums_fn.map(|f| {
            coroutine::Builder::new("ums")
                .stack_size(self.board.stack_sizes().ums)
                .spawn(move || f.run())
        });
        let stacks = self.board.stack_sizes();
        let board = self.board.clone();
        let usb = coroutine::Builder::new("usb")
            .stack_size(stacks.usb)
            .spawn(move || {
                while !coroutine::should_stop() {
                    let mut progress = board.service();
                    for _ in 0..64 {
                        // On the stack, no allocation per poll: an absent function's slot holds
                        // a class that does nothing.
                        let (mut no_ums, mut no_acm, mut no_dfu) = (Absent, Absent, Absent);
                        let mut classes: [&mut dyn UsbClass<_>; 4] = [
                            &mut qualifier,
                            match ums_class.as_mut() {
                                Some(c) => c,
                                None => &mut no_ums,
                            },
                            match acm.as_mut() {
                                Some(c) => c,
                                None => &mut no_acm,
                            },
                            match dfu.as_mut() {
                                Some(c) => c,
                                None => &mut no_dfu,
                            },
                        ];
                        let events = device.poll(&mut classes);
                        board.on_polled(&device);
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
                        let moved = board.after_poll();
                        progress |= dfu_busy | moved | events;
                        if !events && !moved {
                            break;
                        }
                    }
                    if acm.as_mut().is_some_and(|c| c.take_input()) {
                        // Bytes for the console came: let it answer (a key's echo) before the
                        // replies go out, so that the host gets the OUT transfer's completion
                        // and the answer together (on USB/IP one send, and one wake-up of the
                        // host's receiver, instead of two).
                        coroutine::yield_now();
                        if let Some(c) = acm.as_mut() {
                            c.pump();
                        }
                        progress |= board.after_poll();
                    }
                    progress |= board.flush();
                    if progress {
                        coroutine::yield_now();
                    } else {
                        // Until the controller has work or a function posts some; the
                        // timeout is only a safety net.
                        board.wait_usb(Duration::from_millis(200));
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

/// The interfaces `spec`'s functions add, in the order the gadget builds them.
fn interfaces(spec: &Spec) -> Vec<(u8, u8, u8)> {
    let mut out = Vec::new();
    if !spec.ums.is_empty() {
        out.push((0x08, 0x06, 0x50));
    }
    if spec.acm {
        out.push((0x02, 0x02, 0x00));
        out.push((0x0A, 0x00, 0x00));
    }
    if !spec.dfu.is_empty() {
        out.push((0xFE, 0x01, 0x02));
    }
    out
}

/// Stands in for a function the gadget does not have in the poller's class list: every
/// `UsbClass` method's default does nothing.
struct Absent;

impl<B: UsbBus> UsbClass<B> for Absent {}
