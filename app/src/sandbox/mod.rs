//! The sandbox composition: state directory, LUN backends, the USB device over USB/IP, and
//! the shared app (gadget, console) on them.

mod board;
mod stdio;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use lunbox::console::Console;
use lunbox::gadget::Gadgets;
use lunbox::shell::{Action, Context};
use lunbox_platform::coroutine;
use lunbox_platform::sandbox::usbip::proto::DeviceInfo;
use lunbox_platform::sandbox::usbip::{BUS_ID, UsbipServer};
use lunbox_platform::sandbox::{SandboxMachine, Source};
use lunbox_storage::{FileDisk, RamDisk, Registry, share};

use crate::Options;
use crate::state;
use board::SandboxBoard;
use lunbox_config::{Config, Entry, FileStore, Flag};

/// Stack of the `usbip` coroutine, which answers USB/IP clients while no gadget runs.
const IDLE_STACK: usize = 64 * 1024;

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
    let disk = FileDisk::open(&image, false).map_err(|e| io::Error::other(e.to_string()))?;
    registry
        .add_disk("img0", share(disk), &format!("file {}", image.display()))
        .map_err(io::Error::other)?;
    let _ = registry.scan("img0");
    let mut defaults = vec![Entry::new("img0")];
    if options.ram_mib > 0 {
        let ram = RamDisk::new(options.ram_mib * 2048)
            .ok_or_else(|| io::Error::other("the RAM disk does not fit in memory"))?;
        registry
            .add_disk("ram0", share(ram), "ram")
            .map_err(io::Error::other)?;
        defaults.push(Entry::new("ram0"));
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
        defaults.push(if ro {
            Entry::new(name).flag(Flag::ReadOnly)
        } else {
            Entry::new(name)
        });
    }

    // The USB controller: a USB/IP server; the gadget on it is built by `Gadgets`.
    let info = DeviceInfo {
        path: String::new(),
        busid: String::from(BUS_ID),
        busnum: 1,
        devnum: 1,
        speed: lunbox_platform::sandbox::usbip::proto::SPEED_HIGH,
        id_vendor: lunbox_config::DEFAULT_VID,
        id_product: lunbox_config::DEFAULT_PID,
        bcd_device: 0x0010,
        device_class: 0xEF,
        device_subclass: 0x02,
        device_protocol: 0x01,
        configuration_value: 1,
        num_configurations: 1,
        interfaces: Vec::new(),
    };
    let (server, _unused_bus) = UsbipServer::bind(options.listen, info, log)?;
    let addr = server.local_addr()?;
    let usb_source = Source::new();
    machine.watch(usb_source.clone());
    let idle_source = Source::new();
    machine.watch(idle_source.clone());
    let console_source = Source::new();
    let registry = Rc::new(RefCell::new(registry));
    let board = Rc::new(SandboxBoard::new(
        server,
        usb_source.clone(),
        idle_source,
        &options.state_dir,
    ));
    let idle_board = board.clone();
    coroutine::Builder::new("usbip")
        .stack_size(IDLE_STACK)
        .spawn(move || idle_board.serve_while_stopped());
    let gadgets = Rc::new(Gadgets::new(
        board,
        registry.clone(),
        usb_source.ready.clone(),
        console_source.ready.clone(),
    ));
    // The saved configuration (autostart), or the built-in gadget: every disk above on its
    // LUN; DFU targets for the firmware file and the RAM disk (readable).
    let mut builtin = Config {
        ums: defaults,
        ..Config::default()
    };
    builtin
        .dfu
        .push(Entry::new(lunbox_config::FIRMWARE).named("firmware"));
    if registry.borrow().get("ram0").is_some() {
        builtin.dfu.push(Entry::new("ram0").flag(Flag::Readback));
    }
    let mut store = FileStore::new(&options.state_dir);
    // The shared start: the saved configuration, or the built-in gadget; the sandbox can start
    // one later (`usbgadget`), so a configuration with problems starts nothing.
    let config = lunbox::boot::start(&gadgets, &mut store, &builtin, false, log);

    println!(
        "lunbox {} — USB mass-storage gadget (sandbox)",
        crate::update::VERSION_STR
    );
    println!("USB/IP server on {addr}, bus id {BUS_ID}. Attach it from Linux with:");
    println!(
        "    sudo modprobe vhci-hcd && sudo usbip attach -r {} -b {BUS_ID}",
        addr.ip()
    );
    if let Some(control) = gadgets.control() {
        for info in control.list() {
            println!(
                "  LUN {}: {} ({} MiB{})",
                info.lun,
                info.name,
                (info.blocks * u64::from(info.block_size)) >> 20,
                if info.read_only { ", read-only" } else { "" }
            );
        }
    }
    println!("  serial console: /dev/ttyACM0 on the host");

    let ctx = Context {
        gadgets: gadgets.clone(),
        registry,
        config: RefCell::new(config),
        defaults: builtin,
        store: RefCell::new(store),
    };
    let stdio = stdio::Stdio::new(console_source.clone());
    machine.watch(console_source.clone());
    let console = Console::new(ctx, stdio, console_source.ready.clone(), None).spawn();
    let outcome = console.join();
    let _ = gadgets.stop();
    match outcome {
        Ok(Action::Reset) => Err(lunbox_platform::sandbox::os::reexec()),
        Ok(_) => Ok(()),
        // A panic in a command: lunbox ends with an error, as it did when the console was the
        // main context.
        Err(e) => Err(io::Error::other(format!("the console stopped: {e}"))),
    }
}
