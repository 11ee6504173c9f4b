//! The sandbox composition: state directory, LUN backends, the USB device over USB/IP, and
//! the coroutines (USB controller poller, mass storage, console).

use std::io;
use std::rc::Rc;
use std::time::Duration;

use lunbox_gadget::DeviceQualifier;
use lunbox_gadget::acm::AcmClass;
use lunbox_gadget::ums::{LunConfig, Ums, UmsConfig};
use lunbox_platform::coroutine;
use lunbox_platform::sandbox::usbip::proto::DeviceInfo;
use lunbox_platform::sandbox::usbip::{BUS_ID, UsbipServer};
use lunbox_platform::sandbox::{SandboxMachine, Source};
use lunbox_storage::{FileDisk, RamDisk, Registry, share};
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{StringDescriptors, UsbDeviceBuilder, UsbRev, UsbVidPid};

use crate::Options;
use crate::console::{Console, Outcome};
use crate::shell::Context;
use crate::state;

/// USB vendor and product id (pid.codes open-source test VID/PID pair).
pub(crate) const VID_PID: (u16, u16) = (0x1209, 0x0001);

/// Log a line to stderr.
pub(crate) fn log(line: &str) {
    eprintln!("lunbox: {line}");
}

/// Run lunbox until the console's `exit` (or end of input).
pub(crate) fn run(options: Options) -> io::Result<()> {
    if !options.listen.ip().is_loopback() {
        if !options.allow_remote {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to serve USB/IP on {} (not loopback): anyone who reaches it gets \
                     your disks; add --allow-remote if you mean it",
                    options.listen
                ),
            ));
        }
        log(&format!(
            "WARNING: serving USB/IP on {} (not loopback)",
            options.listen
        ));
    }
    let machine = Rc::new(SandboxMachine::new());
    coroutine::init(machine.clone());

    // Disks: the default image, a RAM disk, and any extra images.
    let (image, created) = state::ensure_default(&options.state_dir)?;
    if created {
        log(&format!(
            "created {} (64 MiB, MBR + FAT32 with README.TXT)",
            image.display()
        ));
    }
    let mut registry = Registry::new();
    let mut luns = Vec::new();
    let disk = FileDisk::open(&image, false).map_err(|e| io::Error::other(e.to_string()))?;
    registry
        .add_disk("img0", share(disk), &format!("file {}", image.display()))
        .map_err(io::Error::other)?;
    let _ = registry.scan("img0");
    luns.push(LunConfig::new(
        Some(registry.device("img0").map_err(io::Error::other)?),
        "img0",
    ));
    if options.ram_mib > 0 {
        let ram = RamDisk::new(options.ram_mib * 2048)
            .ok_or_else(|| io::Error::other("the RAM disk does not fit in memory"))?;
        registry
            .add_disk("ram0", share(ram), "ram")
            .map_err(io::Error::other)?;
        luns.push(LunConfig::new(
            Some(registry.device("ram0").map_err(io::Error::other)?),
            "ram0",
        ));
    }
    for spec in &options.images {
        let (path, ro) = match spec.strip_suffix(":ro") {
            Some(p) => (p, true),
            None => (spec.as_str(), false),
        };
        let disk = FileDisk::open(path, ro).map_err(|e| io::Error::other(e.to_string()))?;
        let name = registry.next_name("img");
        registry
            .add_disk(&name, share(disk), &format!("file {path}"))
            .map_err(io::Error::other)?;
        let _ = registry.scan(&name);
        let mut lun = LunConfig::new(
            Some(registry.device(&name).map_err(io::Error::other)?),
            &name,
        );
        lun.read_only = ro;
        luns.push(lun);
    }
    if luns.len() > lunbox_gadget::ums::MAX_LUNS {
        return Err(io::Error::other("at most 16 LUNs"));
    }

    // The USB controller: a USB/IP server.
    let interfaces = vec![(0x08, 0x06, 0x50), (0x02, 0x02, 0x00), (0x0A, 0x00, 0x00)];
    let info = DeviceInfo {
        path: String::from("/sys/devices/platform/lunbox/usb1/1-1"),
        busid: String::from(BUS_ID),
        busnum: 1,
        devnum: 1,
        speed: lunbox_platform::sandbox::usbip::proto::SPEED_HIGH,
        id_vendor: VID_PID.0,
        id_product: VID_PID.1,
        bcd_device: 0x0010,
        device_class: 0xEF,
        device_subclass: 0x02,
        device_protocol: 0x01,
        configuration_value: 1,
        num_configurations: 1,
        interfaces,
    };
    let (mut server, bus) = UsbipServer::bind(options.listen, info, log)?;
    let addr = server.local_addr()?;
    let usb_source = Source::new();
    machine.watch(usb_source.clone());

    // Leaked once: the allocator and device live as long as the program (as on the MCU).
    let alloc: &'static UsbBusAllocator<_> = Box::leak(Box::new(UsbBusAllocator::new(bus)));
    let mut config = UmsConfig::new(luns);
    config.activity = usb_source.ready.clone();
    let Ums {
        class: mut ums_class,
        function,
        control,
    } = Ums::new(alloc, config).map_err(|e| io::Error::other(e.to_string()))?;
    // The console's input source: stdin, and the USB serial port signals it too.
    let console_source = Source::new();
    let (mut acm, acm_port) = AcmClass::new(
        alloc,
        true,
        console_source.ready.clone(),
        usb_source.ready.clone(),
    );
    let mut qualifier = DeviceQualifier::new((0xEF, 0x02, 0x01), 64);
    let mut device = UsbDeviceBuilder::new(alloc, UsbVidPid(VID_PID.0, VID_PID.1))
        .usb_rev(UsbRev::Usb200)
        .composite_with_iads()
        .strings(&[StringDescriptors::default()
            .manufacturer("lunbox")
            .product("lunbox USB gadget")
            .serial_number("LUNBOX0001")])
        .map_err(|_| io::Error::other("USB strings"))?
        .max_packet_size_0(64)
        .map_err(|_| io::Error::other("USB ep0 size"))?
        .device_release(0x0010)
        .build();

    println!(
        "lunbox {} — USB mass-storage gadget (sandbox)",
        env!("CARGO_PKG_VERSION")
    );
    println!("USB/IP server on {addr}, bus id {BUS_ID}. Attach it from Linux with:");
    println!(
        "    sudo modprobe vhci-hcd && sudo usbip attach -r {} -b {BUS_ID}",
        addr.ip()
    );
    for info in control.list() {
        println!(
            "  LUN {}: {} ({} MiB{})",
            info.lun,
            info.name,
            (info.blocks * u64::from(info.block_size)) >> 20,
            if info.read_only { ", read-only" } else { "" }
        );
    }

    // The console asks the poller to detach the host (it may attach again).
    let detach = Rc::new(std::cell::Cell::new(false));
    let detach_usb = detach.clone();
    let wake_usb = usb_source.ready.clone();
    let ums = coroutine::Builder::new("ums")
        .stack_size(64 * 1024)
        .spawn(move || function.run());
    let usb = coroutine::Builder::new("usb")
        .stack_size(64 * 1024)
        .spawn(move || {
            let source = usb_source;
            while !coroutine::should_stop() {
                if detach_usb.take() {
                    server.disconnect();
                    log("usbip: host detached from the console");
                }
                let mut progress = server.service();
                for _ in 0..64 {
                    let events = device.poll(&mut [&mut qualifier, &mut ums_class, &mut acm]);
                    ums_class.pump();
                    acm.pump();
                    let moved = server.take_progress() > 0;
                    progress |= moved;
                    if !events && !moved {
                        break;
                    }
                }
                progress |= server.service();
                *source.fds.borrow_mut() = server.fds();
                if progress {
                    coroutine::yield_now();
                } else {
                    // Sleep until a socket is readable or the function posts work (both complete
                    // `source.ready`); the timeout is only a safety net.
                    source.ready.wait_timeout(Duration::from_millis(200));
                }
            }
            server.disconnect();
        });

    let ctx = Context {
        control,
        registry: Rc::new(std::cell::RefCell::new(registry)),
        detach: Box::new(move || {
            detach.set(true);
            wake_usb.complete();
        }),
    };
    let console = Console::new(ctx, &machine, console_source, Some(acm_port));
    let outcome = console.run();
    usb.stop().map_err(|e| io::Error::other(e.to_string()))?;
    ums.stop().map_err(|e| io::Error::other(e.to_string()))?;
    if outcome == Outcome::Reset {
        return Err(lunbox_platform::sandbox::os::reexec());
    }
    Ok(())
}
