//! What a board starts at boot: the saved configuration ([`lunbox_config::boot`]) completed
//! with the board's built-in gadget, and what happens when it cannot run. The sandbox and the
//! Teensy 4.1 share these rules; they differ only where the board can start a
//! gadget later (`usbgadget`) or only once per boot.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use lunbox_config::{Boot, Config, Store};

use crate::board::Board;
use crate::gadget::Gadgets;

/// What to do at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    /// The configuration the console shows and edits (`config`).
    pub config: Config,
    /// The gadget to start now; `None`: none until `usbgadget`.
    pub run: Option<Config>,
    /// Lines for the board's log.
    pub log: Vec<String>,
}

/// The plan for `boot` on a board whose built-in gadget is `defaults`.
///
/// - An empty `ums` list exports the built-in LUNs; until a configuration has been saved the
///   DFU targets are the built-in ones too.
/// - A board that can start a gadget later (`once_per_boot` false, the sandbox) starts
///   nothing when the saved configuration has problems or `autostart` is off: the console
///   fixes it and `usbgadget` starts it.
/// - A board that builds its gadget once per boot (the Teensy 4.1) has no later. When the
///   saved configuration names devices that are missing (`known` says which exist: a card
///   not in its slot), it runs without those entries if the rest is valid (when that leaves
///   no LUN, the built-in LUNs take their place, as for an empty `ums`); otherwise it starts
///   the built-in gadget, whose USB serial console is on. The trimmed configuration keeps
///   its own `acm` setting: with `acm=off` the board's UART console is the way to fix it.
///   `config` shows the saved configuration. `autostart=off` does not apply.
pub fn plan<E: fmt::Display>(
    boot: Boot<E>,
    defaults: &Config,
    once_per_boot: bool,
    known: impl Fn(&str) -> bool,
) -> BootPlan {
    let mut log: Vec<String> = boot
        .problems
        .iter()
        .map(|p| format!("config: {p}"))
        .collect();
    let mut config = with_builtin_luns(boot.config, defaults);
    if boot.loaded_from.is_none() && config.dfu.is_empty() {
        config.dfu = defaults.dfu.clone();
    }
    // `boot` does not start a saved configuration with problems: it does not fit the devices.
    let unusable = !boot.start && !boot.problems.is_empty();
    let run = match (once_per_boot, unusable, boot.start) {
        (true, true, _) => match without_missing(&config, defaults, &known) {
            Some((run, left_out)) => {
                log.push(format!(
                    "starting the saved configuration without {} (not found; config shows \
                     the saved configuration)",
                    left_out.join(", ")
                ));
                Some(run)
            }
            None => {
                log.push(String::from(
                    "starting the built-in gadget instead (config shows the saved \
                     configuration)",
                ));
                Some(defaults.clone())
            }
        },
        (true, false, start) => {
            if !start {
                log.push(String::from(
                    "config: autostart=off does not apply to this board: it builds its gadget \
                     at every boot",
                ));
            }
            Some(config.clone())
        }
        (false, _, true) => Some(config.clone()),
        (false, true, false) => {
            log.push(String::from(
                "the gadget is not started (fix the configuration, then: usbgadget)",
            ));
            None
        }
        (false, false, false) => {
            log.push(String::from(
                "autostart is off: start the gadget with usbgadget",
            ));
            None
        }
    };
    BootPlan { config, run, log }
}

/// A board's built-in gadget when it has no fixed one: every disk in `disks` (LUN entries,
/// in order) on a LUN and as a readable DFU target, the firmware target after them if the
/// board has one, the serial console on (the Teensy 4.1's).
pub fn every_disk(disks: &[lunbox_config::Entry], firmware_target: bool) -> Config {
    use lunbox_config::{Entry, FIRMWARE, Flag};
    let mut dfu: Vec<Entry> = disks
        .iter()
        .map(|e| Entry::new(e.device.clone()).flag(Flag::Readback))
        .collect();
    if firmware_target {
        dfu.push(Entry::new(FIRMWARE).named("firmware"));
    }
    Config {
        ums: disks.to_vec(),
        dfu,
        ..Config::default()
    }
}

/// The app's start, the same on every board once it has its disks and its configuration
/// store: the saved configuration read from `store` and planned by [`plan`] (its lines
/// logged), the gadget the plan chose started on `gadgets` (once per boot: through
/// [`start_or_builtin`]), and how that went, logged. Returns the configuration the console
/// shows and edits (`config`).
pub fn start<B: Board + 'static, S: Store + ?Sized>(
    gadgets: &Gadgets<B>,
    store: &mut S,
    defaults: &Config,
    once_per_boot: bool,
    mut log: impl FnMut(&str),
) -> Config
where
    S::Error: fmt::Display,
{
    let known = |name: &str| gadgets.registry().borrow().get(name).is_some();
    let boot = lunbox_config::boot(store, known);
    let plan = plan(boot, defaults, once_per_boot, known);
    for line in &plan.log {
        log(line);
    }
    let started = match plan.run {
        Some(run) if once_per_boot => Some(start_or_builtin(gadgets, run, defaults, &mut log)),
        Some(run) => {
            let started = gadgets.start(run.clone());
            Some((run, started))
        }
        None => None,
    };
    match started {
        Some((run, Ok(()))) => log(&format!(
            "USB device {:04x}:{:04x}: mass storage ({} LUNs), serial console {}, DFU ({} \
             targets)",
            run.vid,
            run.pid,
            run.ums.len(),
            if run.acm { "on" } else { "off" },
            run.dfu.len()
        )),
        Some((_, Err(e))) => log(&format!("the gadget did not start: {e}")),
        None => {}
    }
    plan.config
}

/// Start `run` on a board that builds its gadget once per boot; if it fails and is not the
/// built-in gadget, start `defaults` instead, so that a saved configuration that passed
/// validation but still cannot start (a `firmware` DFU target on a build without firmware
/// slots, say) does not cost the USB console. Every step is logged through `log`. Returns what
/// was started (or tried last) and the outcome.
pub fn start_or_builtin<B: Board + 'static>(
    gadgets: &Gadgets<B>,
    run: Config,
    defaults: &Config,
    mut log: impl FnMut(&str),
) -> (Config, Result<(), String>) {
    match gadgets.start(run.clone()) {
        Err(e) if run != *defaults => {
            log(&format!("the saved configuration did not start: {e}"));
            log("starting the built-in gadget instead (config shows the saved configuration)");
            let started = gadgets.start(defaults.clone());
            (defaults.clone(), started)
        }
        started => (run, started),
    }
}

/// `config` as it runs: an empty `ums` list exports the built-in LUNs (`defaults.ums`), what
/// `config default` leaves so that every disk found at each boot is exported. `plan` and the
/// shell's `usbgadget` both start a configuration through this.
pub fn with_builtin_luns(mut config: Config, defaults: &Config) -> Config {
    if config.ums.is_empty() {
        config.ums = defaults.ums.clone();
    }
    config
}

/// `config` without the entries whose device is missing, if that leaves a valid
/// configuration that differs from it; and what was left out (`ums sd1`, `dfu sd1`).
fn without_missing(
    config: &Config,
    defaults: &Config,
    known: &impl Fn(&str) -> bool,
) -> Option<(Config, Vec<String>)> {
    let mut run = config.clone();
    let mut left_out = Vec::new();
    run.ums.retain(|e| {
        let keep = known(&e.device);
        if !keep {
            left_out.push(format!("ums {}", e.device));
        }
        keep
    });
    run.dfu.retain(|e| {
        let keep = e.device == lunbox_config::FIRMWARE || known(&e.device);
        if !keep {
            left_out.push(format!("dfu {}", e.device));
        }
        keep
    });
    if left_out.is_empty() {
        return None;
    }
    let run = with_builtin_luns(run, defaults);
    lunbox_config::validate(&run, known).ok()?;
    Some((run, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use lunbox_config::{Entry, Flag, MemStore, Store};

    fn defaults() -> Config {
        Config {
            ums: vec![Entry::new("sd0"), Entry::new("ram0")],
            dfu: vec![Entry::new("ram0").flag(Flag::Readback)],
            ..Config::default()
        }
    }

    fn saved(text: &str) -> Config {
        lunbox_config::parse(text).expect("test configuration parses")
    }

    /// The devices found at this boot.
    fn present(name: &str) -> bool {
        name == "sd0" || name == "ram0"
    }

    /// `boot` on a store holding `text` (or nothing), with the [`present`] devices.
    fn boot_with(text: Option<&str>) -> Boot<<MemStore as Store>::Error> {
        let mut store = MemStore::new(4096);
        if let Some(text) = text {
            lunbox_config::save(&mut store, &saved(text)).expect("save");
        }
        lunbox_config::boot(&mut store, present)
    }

    #[test]
    fn first_boot_runs_the_built_in_gadget_everywhere() {
        for once in [false, true] {
            let p = plan(boot_with(None), &defaults(), once, present);
            assert_eq!(p.config, defaults());
            assert_eq!(p.run, Some(defaults()));
            assert!(p.log.is_empty(), "{:?}", p.log);
        }
    }

    #[test]
    fn a_saved_configuration_runs_and_keeps_its_own_dfu_list() {
        for once in [false, true] {
            let p = plan(
                boot_with(Some("ums=ram0()ro\ndfu=\n")),
                &defaults(),
                once,
                present,
            );
            assert_eq!(p.config.ums, vec![Entry::new("ram0").flag(Flag::ReadOnly)]);
            // Saved with no DFU targets: none, not the built-in ones.
            assert!(p.config.dfu.is_empty());
            assert_eq!(p.run.as_ref(), Some(&p.config));
        }
        // An empty ums list exports the built-in LUNs.
        let p = plan(boot_with(Some("acm=on\n")), &defaults(), true, present);
        assert_eq!(p.config.ums, defaults().ums);
    }

    #[test]
    fn an_unusable_configuration_waits_or_falls_back_to_the_built_in_gadget() {
        // Both LUNs on ram0, writable: an overlap, nothing missing.
        let text = "ums=ram0(a),ram0(b)\nvid=0x1234\n";
        let sandbox = plan(boot_with(Some(text)), &defaults(), false, present);
        assert_eq!(sandbox.run, None);
        assert_eq!(sandbox.config, saved(text));
        assert!(sandbox.log[0].starts_with("config: the saved configuration is not usable"));
        assert!(sandbox.log[0].contains("ram0"), "{:?}", sandbox.log);
        assert!(sandbox.log.last().unwrap().contains("usbgadget"));

        let board = plan(boot_with(Some(text)), &defaults(), true, present);
        // The console edits the saved one; the built-in gadget keeps the USB console up.
        assert_eq!(board.config, saved(text));
        assert_eq!(board.run, Some(defaults()));
        assert!(board.log.last().unwrap().contains("built-in gadget"));
    }

    #[test]
    fn a_board_runs_the_saved_configuration_without_missing_devices() {
        // sd1 (a card on SPI, say) is not there at this boot.
        let text = "ums=sd1,ram0()ro\ndfu=sd1,firmware,ram0()r\nvid=0x1234\n";
        let sandbox = plan(boot_with(Some(text)), &defaults(), false, present);
        assert_eq!(sandbox.run, None, "the sandbox waits for the fix");

        let board = plan(boot_with(Some(text)), &defaults(), true, present);
        assert_eq!(
            board.config,
            saved(text),
            "config still shows what was saved"
        );
        let run = board.run.expect("a gadget starts");
        assert_eq!(run.ums, vec![Entry::new("ram0").flag(Flag::ReadOnly)]);
        assert_eq!(
            run.dfu,
            vec![
                Entry::new("firmware"),
                Entry::new("ram0").flag(Flag::Readback)
            ]
        );
        assert_eq!(run.vid, 0x1234, "the rest of the configuration applies");
        let last = board.log.last().unwrap();
        assert!(last.contains("without ums sd1, dfu sd1"), "{last}");

        // Only missing LUNs: the built-in ones take their place.
        let board = plan(boot_with(Some("ums=sd1\n")), &defaults(), true, present);
        assert_eq!(board.run.unwrap().ums, defaults().ums);
    }

    #[test]
    fn autostart_off_waits_only_where_a_gadget_can_start_later() {
        let text = "ums=ram0\nautostart=off\n";
        let sandbox = plan(boot_with(Some(text)), &defaults(), false, present);
        assert_eq!(sandbox.run, None);
        assert_eq!(
            sandbox.log,
            vec![String::from(
                "autostart is off: start the gadget with usbgadget"
            )]
        );
        let board = plan(boot_with(Some(text)), &defaults(), true, present);
        assert_eq!(board.run, Some(saved(text)));
        assert!(board.log[0].contains("autostart=off does not apply"));
    }

    #[test]
    fn an_unreadable_store_runs_the_defaults_and_says_why() {
        let mut store = MemStore::new(4096);
        lunbox_config::save(&mut store, &saved("ums=ram0\n")).expect("save");
        store.set_unreadable(0, true);
        store.set_unreadable(1, true);
        for once in [false, true] {
            let boot = lunbox_config::boot(&mut store, |_| true);
            let p = plan(boot, &defaults(), once, present);
            assert_eq!(p.run, Some(defaults()));
            assert!(p.log[0].contains("unreadable"), "{:?}", p.log);
        }
    }
}
