//! Host tests of the shared app on a fake board: the gadget built on the virtual USB bus, the
//! console serving a scripted terminal. Run with the default features (the sandbox's whole
//! shell) and with `--no-default-features` (the Teensy firmware's command set).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::time::Duration;
use std::collections::VecDeque;

use lunbox_config::{Config, Entry, MemStore};
use lunbox_gadget::dfu::ImageSink;
use lunbox_gadget::testing::{HostPort, VirtualBus};
use lunbox_platform::coroutine::{self, Completion};
use lunbox_storage::{DeviceRef, RamDisk, Registry, share};
use usb_device::bus::UsbBusAllocator;

use crate::board::{Board, Closed, DeviceSummary, StackSizes, Terminal};
use crate::console::Console;
use crate::gadget::Gadgets;
use crate::shell::{Action, Context};

mod console_fuzz;

std::thread_local! {
    /// Whether the fake board can exit (a program) or not (firmware).
    static CAN_EXIT: Cell<bool> = const { Cell::new(true) };
}

/// A board whose controller carries one gadget (like the Teensy's), on the virtual bus.
struct FakeBoard {
    bus: Cell<Option<&'static UsbBusAllocator<VirtualBus>>>,
    /// What wakes the USB poller (given to `Gadgets::new` too).
    usb_ready: Rc<Completion>,
    /// `on_polled` calls (the poller must make them).
    polled: Cell<u64>,
    /// The host side of the bus, kept so that the bus stays attached.
    _port: HostPort,
    logged: RefCell<Vec<String>>,
}

impl FakeBoard {
    fn new(usb_ready: Rc<Completion>) -> Self {
        let (bus, port) = VirtualBus::new();
        FakeBoard {
            bus: Cell::new(Some(Box::leak(Box::new(UsbBusAllocator::new(bus))))),
            usb_ready,
            polled: Cell::new(0),
            _port: port,
            logged: RefCell::new(Vec::new()),
        }
    }
}

impl Board for FakeBoard {
    type Bus = VirtualBus;
    type Store = MemStore;

    fn name(&self) -> &str {
        "fake board"
    }

    fn version(&self) -> &str {
        "9.8.7"
    }

    fn version_line(&self) -> String {
        String::from("lunbox 9.8.7 (fake)")
    }

    fn log(&self, line: &str) {
        self.logged.borrow_mut().push(String::from(line));
    }

    fn new_bus(
        &self,
        _summary: &DeviceSummary,
    ) -> Result<&'static UsbBusAllocator<VirtualBus>, String> {
        self.bus
            .take()
            .ok_or_else(|| String::from("one gadget per boot"))
    }

    fn can_rebuild(&self) -> bool {
        false
    }

    fn disconnect(&self) {}

    fn detach(&self) -> Result<(), String> {
        Err(String::from("detach: not on this board"))
    }

    fn service(&self) -> bool {
        false
    }

    fn after_poll(&self) -> bool {
        false
    }

    fn on_polled(&self, _device: &usb_device::device::UsbDevice<'_, VirtualBus>) {
        self.polled.set(self.polled.get() + 1);
    }

    fn wait_usb(&self, timeout: Duration) {
        self.usb_ready.wait_timeout(timeout);
    }

    fn can_exit(&self) -> bool {
        CAN_EXIT.with(Cell::get)
    }

    fn firmware_sink(&self) -> Result<Box<dyn ImageSink>, String> {
        Err(String::from("no firmware slots here"))
    }

    fn fw(&self, args: &[&str]) -> Result<String, String> {
        Ok(alloc::format!("fw called with {args:?}"))
    }

    fn fw_usage(&self) -> &'static str {
        "fw (the fake board's)"
    }

    fn default_serial(&self) -> String {
        String::from("FAKE0001")
    }

    fn stack_sizes(&self) -> StackSizes {
        StackSizes {
            usb: 64 * 1024,
            ums: 64 * 1024,
            console: 64 * 1024,
        }
    }

    fn heap_usage(&self) -> Option<(usize, usize)> {
        Some((3 << 20, 1 << 20))
    }
}

/// A terminal typing `input`, then at its end of input; what the console wrote.
struct Script {
    input: VecDeque<u8>,
    output: Rc<RefCell<Vec<u8>>>,
}

impl Terminal for Script {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Closed> {
        // A line at a time, as a person types: the other coroutines run in between.
        coroutine::yield_now();
        let Some(end) = self.input.iter().position(|&b| b == b'\r') else {
            return Err(Closed);
        };
        let n = (end + 1).min(buf.len());
        for (dst, b) in buf.iter_mut().zip(self.input.drain(..n)) {
            *dst = b;
        }
        Ok(n)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.output.borrow_mut().extend_from_slice(bytes);
    }

    fn interactive(&self) -> bool {
        true
    }
}

/// Boot the fake board with two RAM disks on LUNs, type `lines`, and return the console's
/// output (CR LF turned into LF) and how it ended.
fn session(lines: &[&str]) -> (String, Action) {
    session_with_store(lines, MemStore::new(4096)).0
}

/// [`session`] with the configuration store `store`, returned after the session.
fn session_with_store(lines: &[&str], store: MemStore) -> ((String, Action), MemStore) {
    let disks = [(); 2].map(|()| share(RamDisk::new(2048).unwrap()));
    session_on(disks, lines, store)
}

/// [`session_with_store`] with `disks` as ram0 and ram1.
fn session_on(
    disks: [DeviceRef; 2],
    lines: &[&str],
    store: MemStore,
) -> ((String, Action), MemStore) {
    let (mut console, board, output) = fake_console(disks, lines, store);
    let action = console.run();
    let store = console.context().store.replace(MemStore::new(0));
    drop(console);
    assert!(
        board.polled.get() > 0,
        "the poller ran and called on_polled"
    );
    ((text_of(&output), action), store)
}

/// What the console wrote, CR LF turned into LF.
fn text_of(output: &RefCell<Vec<u8>>) -> String {
    String::from_utf8(output.borrow().clone())
        .unwrap()
        .replace("\r\n", "\n")
}

/// A console on the fake board, the board, and what the console writes.
type FakeConsole = (
    Console<FakeBoard, Script>,
    Rc<FakeBoard>,
    Rc<RefCell<Vec<u8>>>,
);

/// The fake board with `disks` as ram0 and ram1 on LUNs, its gadget started, and a console
/// about to read `lines`; the board and what the console writes.
fn fake_console(disks: [DeviceRef; 2], lines: &[&str], store: MemStore) -> FakeConsole {
    let mut registry = Registry::new();
    for (name, disk) in ["ram0", "ram1"].into_iter().zip(disks) {
        registry.add_disk(name, disk, "ram").unwrap();
    }
    // A card slot without a card (the Teensy's sd0 while empty).
    registry
        .add_disk(
            "slot0",
            share(lunbox_storage::MediaSlot::empty()),
            "card slot",
        )
        .unwrap();
    let registry = Rc::new(RefCell::new(registry));
    let usb_ready = Rc::new(Completion::new());
    let console_ready = Rc::new(Completion::new());
    let board = Rc::new(FakeBoard::new(usb_ready.clone()));
    let gadgets = Rc::new(Gadgets::new(
        board.clone(),
        registry.clone(),
        usb_ready,
        console_ready.clone(),
    ));
    let config = Config {
        ums: alloc::vec![Entry::new("ram0"), Entry::new("ram1")],
        ..Config::default()
    };
    gadgets.start(config.clone()).unwrap();
    let output = Rc::new(RefCell::new(Vec::new()));
    let mut input = VecDeque::new();
    for line in lines {
        input.extend(line.bytes());
        input.push_back(b'\r');
    }
    let ctx = Context {
        gadgets: gadgets.clone(),
        registry,
        config: RefCell::new(config.clone()),
        // The board's built-in gadget: these LUNs and a readable DFU target.
        defaults: Config {
            dfu: alloc::vec![Entry::new("ram0").flag(lunbox_config::Flag::Readback)],
            ..config
        },
        store: RefCell::new(store),
    };
    let terminal = Script {
        input,
        output: output.clone(),
    };
    (
        Console::new(ctx, terminal, console_ready, None),
        board,
        output,
    )
}

#[test]
fn the_console_serves_in_its_own_coroutine_until_exit_or_reset() {
    let disks = || [(); 2].map(|()| share(RamDisk::new(2048).unwrap()));
    let (console, board, output) = fake_console(disks(), &["version"], MemStore::new(4096));
    let handle = console.spawn();
    assert_eq!(handle.name(), "console");
    assert_eq!(
        handle.join().unwrap(),
        Action::Exit,
        "the end of input ends it on a board that can exit"
    );
    let out = text_of(&output);
    assert!(out.contains("lunbox 9.8.7 (fake)"), "{out}");
    assert!(board.polled.get() > 0, "the gadget ran meanwhile");

    // A board that cannot exit: `exit` is refused and the console serves on; `reset` ends it.
    CAN_EXIT.with(|c| c.set(false));
    let (console, _board, output) =
        fake_console(disks(), &["exit", "version", "reset"], MemStore::new(4096));
    let action = console.spawn().join();
    CAN_EXIT.with(|c| c.set(true));
    let out = text_of(&output);
    assert_eq!(action.unwrap(), Action::Reset, "{out}");
    assert!(
        out.contains("error: exit: the firmware keeps running"),
        "{out}"
    );
    assert!(
        out.contains("lunbox 9.8.7 (fake)"),
        "commands after exit run: {out}"
    );
}

#[test]
fn the_console_runs_commands_on_the_board_and_ends_with_its_input() {
    let (out, action) = session(&["version", "lun", "lun eject 1", "lun", "mem", "fw status"]);
    assert_eq!(action, Action::Exit, "the end of input ends the console");
    // Each line is echoed after the prompt, its output follows.
    assert!(
        out.starts_with("lunbox> version\nlunbox 9.8.7 (fake)\n"),
        "{out}"
    );
    assert!(out.contains("lunbox> lun\nLUN  medium"), "{out}");
    let luns: Vec<&str> = out.lines().filter(|l| l.starts_with("1 ")).collect();
    assert_eq!(
        luns.len(),
        3,
        "LUN 1 in both listings and after the eject: {out}"
    );
    assert!(luns[0].contains("ram1"), "{out}");
    assert!(luns[2].contains("(none)"), "ejected: {out}");
    assert!(out.contains("heap: 3.0 MiB used, 1.0 MiB free"), "{out}");
    assert!(
        out.contains("fw called with [\"status\"]"),
        "the board's fw: {out}"
    );
}

#[test]
fn bad_lines_get_errors_not_panics() {
    let (out, action) = session(&[
        "frobnicate",
        "lun eject 9",
        "lun eject x",
        "lun add",
        "lun add 0 nosuchdisk",
        "detach",
        "",
        "help",
    ]);
    assert_eq!(action, Action::Exit);
    assert!(out.contains("error: unknown command 'frobnicate'"), "{out}");
    assert!(
        out.contains("error: '9' is not a LUN number: use 0 to 1"),
        "{out}"
    );
    assert!(out.contains("error: 'x' is not a LUN number"), "{out}");
    assert!(out.contains("wrong arguments"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("error:") && l.contains("nosuchdisk")),
        "{out}"
    );
    assert!(out.contains("error: detach: not on this board"), "{out}");
    // help lists this build's commands only.
    assert!(out.contains("  lun "), "{out}");
    assert_eq!(
        out.contains("  usbgadget "),
        cfg!(feature = "full-shell"),
        "{out}"
    );
    assert_eq!(out.contains("  config "), cfg!(feature = "config"), "{out}");
}

#[cfg(not(feature = "config"))]
#[test]
fn a_build_without_config_says_so() {
    let (out, _) = session(&["config save"]);
    assert!(
        out.contains("error: config: this build saves no configuration"),
        "{out}"
    );
    assert_eq!(out.contains("  cat "), cfg!(feature = "fat"), "{out}");
}

#[test]
fn a_one_gadget_board_refuses_a_rebuild() {
    for line in ["usbgadget -d", "usbgadget -S ram0"] {
        let (out, _) = session(&[line]);
        if cfg!(feature = "full-shell") {
            assert!(
                out.contains("error: the fake board builds its USB gadget once per boot"),
                "{line}: {out}"
            );
        } else {
            assert!(out.contains("error: unknown command 'usbgadget'"), "{out}");
        }
    }
}

/// The fake one-gadget board with ram0 and ram1, nothing started.
fn one_gadget_board() -> Gadgets<FakeBoard> {
    let mut registry = Registry::new();
    for name in ["ram0", "ram1"] {
        registry
            .add_disk(name, share(RamDisk::new(64).unwrap()), "ram")
            .unwrap();
    }
    let usb_ready = Rc::new(Completion::new());
    Gadgets::new(
        Rc::new(FakeBoard::new(usb_ready.clone())),
        Rc::new(RefCell::new(registry)),
        usb_ready,
        Rc::new(Completion::new()),
    )
}

/// A configuration exporting `names` on LUNs 0, 1, …
fn luns(names: &[&str]) -> Config {
    Config {
        ums: names.iter().map(|n| Entry::new(*n)).collect(),
        ..Config::default()
    }
}

/// Boot a one-gadget board with ram0 and ram1 and start `run` through
/// [`crate::boot::start_or_builtin`]: what ran, the outcome, what runs now, and the log.
fn boot_start(
    run: &Config,
    defaults: &Config,
) -> (Config, Result<(), String>, Option<Config>, Vec<String>) {
    let gadgets = one_gadget_board();
    let mut log = Vec::new();
    let (ran, started) = crate::boot::start_or_builtin(&gadgets, run.clone(), defaults, |l| {
        log.push(String::from(l))
    });
    (ran, started, gadgets.spec(), log)
}

#[test]
fn a_saved_configuration_that_cannot_start_gives_way_to_the_built_in_gadget() {
    let defaults = luns(&["ram0", "ram1"]);
    // Saved by a build with firmware slots; this board has none, so it cannot start.
    let saved = Config {
        dfu: alloc::vec![Entry::new("firmware")],
        ..luns(&["ram1"])
    };
    let (ran, started, running, log) = boot_start(&saved, &defaults);
    assert_eq!(started, Ok(()));
    assert_eq!(ran, defaults, "the built-in gadget runs");
    assert_eq!(running, Some(defaults.clone()));
    assert!(
        log[0].starts_with("the saved configuration did not start: "),
        "{log:?}"
    );
    assert!(log[1].contains("built-in gadget instead"), "{log:?}");

    // One that can start runs as it is, with nothing logged.
    let good = luns(&["ram1"]);
    let (ran, started, running, log) = boot_start(&good, &defaults);
    assert_eq!((ran, started), (good.clone(), Ok(())));
    assert_eq!(running, Some(good));
    assert!(log.is_empty(), "{log:?}");

    // The built-in gadget failing is not tried twice.
    let broken = luns(&["nosuchdisk"]);
    let (ran, started, _, log) = boot_start(&broken, &broken);
    assert_eq!(ran, broken);
    assert!(started.is_err());
    assert!(log.is_empty(), "{log:?}");
}

/// A one-gadget board with ram0 and ram1 booted through [`crate::boot::start`] from a store
/// holding `saved` (nothing if `None`): the configuration the console gets, what runs, the
/// log.
fn boot_from_store(
    saved: Option<&Config>,
    defaults: &Config,
    once_per_boot: bool,
) -> (Config, Option<Config>, Vec<String>) {
    let gadgets = one_gadget_board();
    let mut store = MemStore::new(4096);
    if let Some(saved) = saved {
        lunbox_config::save(&mut store, saved).unwrap();
    }
    let mut log = Vec::new();
    let config = crate::boot::start(&gadgets, &mut store, defaults, once_per_boot, |l| {
        log.push(String::from(l))
    });
    (config, gadgets.spec(), log)
}

#[test]
fn the_board_s_built_in_gadget_has_every_disk() {
    let disks = [Entry::new("sd0"), Entry::new("ram0")];
    let text = |c: &Config| c.to_text();
    let plain = crate::boot::every_disk(&disks, false);
    assert_eq!(plain.ums, disks);
    assert_eq!(
        plain.dfu,
        [
            Entry::new("sd0").flag(lunbox_config::Flag::Readback),
            Entry::new("ram0").flag(lunbox_config::Flag::Readback)
        ]
    );
    assert!(plain.acm, "{}", text(&plain));
    let ab = crate::boot::every_disk(&disks, true);
    assert_eq!(ab.dfu.len(), 3);
    assert_eq!(
        ab.dfu[2],
        Entry::new(lunbox_config::FIRMWARE).named("firmware")
    );
    let known = |n: &str| ["sd0", "ram0", lunbox_config::FIRMWARE].contains(&n);
    assert_eq!(lunbox_config::validate(&ab, known), Ok(()), "{}", text(&ab));
}

#[test]
fn both_boards_boot_through_the_same_start() {
    let defaults = luns(&["ram0", "ram1"]);
    // Nothing saved: the built-in gadget, on either kind of board, and a line saying so.
    for once_per_boot in [false, true] {
        let (config, running, log) = boot_from_store(None, &defaults, once_per_boot);
        assert_eq!(running, Some(defaults.clone()));
        assert_eq!(config.ums, defaults.ums);
        assert_eq!(
            log.last().map(String::as_str),
            Some("USB device 1209:0001: mass storage (2 LUNs), serial console on, DFU (0 targets)"),
            "{log:?}"
        );
    }
    // A saved configuration runs as saved.
    let saved = luns(&["ram1"]);
    let (config, running, _) = boot_from_store(Some(&saved), &defaults, true);
    assert_eq!((config, running), (saved.clone(), Some(saved)));
    // One naming a missing disk: the sandbox starts nothing (the console fixes it), the
    // board runs without the missing entry.
    let saved = luns(&["ram1", "sd1"]);
    let (config, running, log) = boot_from_store(Some(&saved), &defaults, false);
    assert_eq!((config, running), (saved.clone(), None), "{log:?}");
    let (config, running, log) = boot_from_store(Some(&saved), &defaults, true);
    assert_eq!(config, saved, "config shows the saved configuration");
    assert_eq!(running, Some(luns(&["ram1"])), "{log:?}");
}

#[test]
fn help_names_only_commands_and_options_this_build_has() {
    let mut lines = alloc::vec!["help", "help threads", "help lun", "threads -t"];
    if cfg!(feature = "config") {
        lines.push("help config");
    }
    let (out, _) = session(&lines);
    if cfg!(feature = "full-shell") {
        assert!(out.contains("usbgadget"), "{out}");
        assert!(out.contains("threads [-t]"), "{out}");
    } else {
        // Every mention of a command the build lacks would send the user to an unknown command.
        assert!(!out.contains("usbgadget"), "{out}");
        assert!(!out.contains("[-t]") && !out.contains("self-test"), "{out}");
        assert!(out.contains("usage:\nthreads"), "{out}");
        if cfg!(feature = "config") {
            assert!(
                out.contains("then: config save and reset to run it"),
                "{out}"
            );
        }
    }
}

#[test]
fn firmware_cannot_exit() {
    CAN_EXIT.with(|c| c.set(false));
    let (out, action) = session(&["exit", "lun", "reset"]);
    CAN_EXIT.with(|c| c.set(true));
    assert_eq!(action, Action::Reset, "only reset ends it: {out}");
    assert!(
        out.contains("error: exit: the firmware keeps running (reset restarts it)"),
        "{out}"
    );
    assert!(
        out.contains("LUN  medium"),
        "commands after exit run: {out}"
    );
}

#[test]
fn reset_and_exit_end_the_console() {
    assert_eq!(session(&["lun", "reset", "lun"]).1, Action::Reset);
    let (out, action) = session(&["exit", "lun"]);
    assert_eq!(action, Action::Exit);
    assert!(
        !out.contains("LUN  medium"),
        "nothing runs after exit: {out}"
    );
}

/// The `config` commands on a board that builds its gadget once per boot (the Teensy): a
/// change is checked and saved for the next boot, the running gadget stays.
#[cfg(feature = "config")]
#[test]
fn config_saves_for_the_next_boot_on_a_one_gadget_board() {
    let ((out, _), mut store) = session_with_store(
        &[
            "config set ums=ram1()ro,ram0",
            "config set ums=nosuchdisk",
            "config set vid=banana",
            "config save",
            "lun",
        ],
        MemStore::new(4096),
    );
    assert!(
        out.contains("changed (config save keeps it, the next boot runs it)"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("error:") && l.contains("nosuchdisk")),
        "an unknown device is refused: {out}"
    );
    // A syntax error points into what was typed, not the whole configuration text.
    assert!(
        out.contains("error: vid=banana: column 5: expected a number"),
        "{out}"
    );
    assert!(out.contains("saved (slot 0, sequence 1)"), "{out}");
    // The running gadget is unchanged: LUN 0 still exports ram0, writable.
    let lun0: Vec<&str> = out.lines().filter(|l| l.starts_with("0 ")).collect();
    assert!(
        lun0.len() == 1 && lun0[0].contains("ram0") && !lun0[0].contains("ro"),
        "{out}"
    );
    // What the next boot finds: the accepted change only.
    let saved = lunbox_config::load(&mut store).unwrap().unwrap();
    assert_eq!(
        saved.ums,
        alloc::vec![
            Entry::new("ram1").flag(lunbox_config::Flag::ReadOnly),
            Entry::new("ram0")
        ]
    );
    assert_eq!(saved.vid, lunbox_config::DEFAULT_VID);
    // And `config load` in the next session shows it.
    let ((out, _), _) = session_with_store(&["config load", "config default"], store);
    assert!(out.contains("ums=ram1()ro,ram0"), "{out}");
    // `config default` is the board's built-in gadget: every disk it finds (an empty `ums`),
    // its DFU targets.
    assert!(
        out.contains("lunbox> config default\nums=\ndfu=ram0()r\n"),
        "{out}"
    );
}

/// A spec the functions would refuse is refused before the controller is taken, so that a
/// board with one gadget per boot can still start another (the Teensy's fallback to its
/// built-in gadget).
#[test]
fn a_refused_spec_leaves_the_one_bus_for_the_next() {
    let mut registry = Registry::new();
    registry
        .add_disk("ram0", share(RamDisk::new(2048).unwrap()), "ram")
        .unwrap();
    let registry = Rc::new(RefCell::new(registry));
    let usb_ready = Rc::new(Completion::new());
    let board = Rc::new(FakeBoard::new(usb_ready.clone()));
    let gadgets = Gadgets::new(board, registry, usb_ready, Rc::new(Completion::new()));
    let too_many = Config {
        ums: alloc::vec![Entry::new("ram0")],
        dfu: (0..17)
            .map(|i| Entry::new("ram0").named(alloc::format!("t{i}")))
            .collect(),
        ..Config::default()
    };
    let e = gadgets.start(too_many).unwrap_err();
    assert!(e.contains("17"), "{e}");
    let lots_of_luns = Config {
        ums: (0..17)
            .map(|i| {
                Entry::new("ram0")
                    .named(alloc::format!("l{i}"))
                    .flag(lunbox_config::Flag::ReadOnly)
            })
            .collect(),
        ..Config::default()
    };
    let e = gadgets.start(lots_of_luns).unwrap_err();
    assert!(e.contains("17"), "{e}");
    gadgets
        .start(Config {
            ums: alloc::vec![Entry::new("ram0")],
            ..Config::default()
        })
        .expect("the bus is still there");
    assert_eq!(gadgets.control().unwrap().lun_count(), 1);
}

#[test]
fn two_luns_share_a_device_only_when_both_are_read_only() {
    let (out, _) = session(&[
        "lun add 1 ram0",
        "lun add 1 ram0 ro",
        "lun ro 0",
        "lun add 1 ram0 ro",
        "lun rw 1",
        "lun rw 0",
        "lun add 1 ram1",
        "lun rw 0",
        // An ejected medium is still LUN 0's: the host may load it again by itself.
        "lun eject 0",
        "lun add 1 ram0",
        "lun insert 0",
        "lun",
    ]);
    let refusals: Vec<&str> = out.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        refusals,
        ["error: ums: LUNs 0 and 1 both export ram0: export it once, or make both read-only \
             (ro)"; 5],
        "{out}"
    );
    // Both read-only: allowed; back to one writable LUN each at the end.
    let lun1: Vec<&str> = out.lines().filter(|l| l.starts_with("1 ")).collect();
    assert!(
        lun1.iter().any(|l| l.contains("ram0") && l.contains("ro")),
        "{out}"
    );
    let last = out.rsplit("lunbox> lun\n").next().unwrap();
    assert!(
        last.contains("0    ram0") && last.contains("1    ram1"),
        "{out}"
    );
    assert!(!last.contains(" ro,"), "{out}");
}

#[test]
fn an_empty_card_slot_shows_as_empty_and_can_be_swapped() {
    let (out, _) = session(&[
        "lun add 1 slot0",
        "lun eject 1",
        "lun insert 1",
        "lun add 1 ram1",
    ]);
    let lun1: Vec<&str> = out.lines().filter(|l| l.starts_with("1 ")).collect();
    assert!(lun1[0].contains("slot0 (empty)"), "{out}");
    assert!(lun1[0].contains(" - "), "no size: {out}");
    assert!(lun1[1].contains("(none)"), "ejected: {out}");
    assert!(lun1[2].contains("slot0 (empty)"), "back: {out}");
    assert!(lun1[3].contains("ram1"), "replaced: {out}");
    assert!(!out.contains("error"), "{out}");
}
