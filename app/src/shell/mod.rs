//! The console shell: one command language on every terminal (the UART — stdin in the
//! sandbox — and the USB serial port), each with its own line editor.

mod editor;
#[cfg(feature = "fat")]
mod fat;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use lunbox_gadget::ums::UmsControl;
use lunbox_platform::coroutine;
use lunbox_storage::Registry;

use lunbox_config::Config;
#[cfg(feature = "full-shell")]
use lunbox_config::List;

use crate::board::Board;
use crate::gadget::Gadgets;
#[cfg(feature = "full-shell")]
use crate::gadget::Spec;

pub use editor::{Editor, Event, MAX_LINE};

/// The prompt.
pub const PROMPT: &str = "lunbox> ";

/// What the shell asks its caller to do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the next command.
    Continue,
    /// Quit lunbox.
    Exit,
    /// Restart lunbox.
    Reset,
}

/// What commands act on.
pub struct Context<B: Board> {
    /// The gadget: its functions, LUNs and serial port.
    pub gadgets: Rc<Gadgets<B>>,
    /// Block devices and partitions.
    pub registry: Rc<RefCell<Registry>>,
    /// The configuration being edited (what `usbgadget` starts).
    pub config: RefCell<Config>,
    /// The board's built-in configuration (what runs with nothing saved): `config default`.
    pub defaults: Config,
    /// Where `config save`/`config load` keep it.
    pub store: RefCell<B::Store>,
}

impl<B: Board + 'static> Context<B> {
    fn control(&self) -> Result<UmsControl, String> {
        self.gadgets
            .control()
            .ok_or_else(|| String::from(NOT_RUNNING))
    }
}

/// Why a LUN command cannot act, and how to get mass storage running in this build.
#[cfg(feature = "full-shell")]
const NOT_RUNNING: &str = "mass storage is not running (start it: usbgadget -S LIST)";
#[cfg(not(feature = "full-shell"))]
const NOT_RUNNING: &str = "mass storage is not running (this board builds its gadget at boot)";

/// One command: name, one-line summary, usage and details.
struct Help {
    name: &'static str,
    summary: &'static str,
    usage: &'static str,
}

/// The commands every build has.
const COMMANDS: &[Help] = &[
    Help {
        name: "help",
        summary: "list commands, or explain one",
        usage: "help [COMMAND]",
    },
    Help {
        name: "version",
        summary: "lunbox version",
        usage: "version",
    },
    Help {
        name: "devinfo",
        summary: "block devices and partitions with sizes",
        usage: "devinfo",
    },
    Help {
        name: "lun",
        summary: "what each LUN exports; change it while the host is attached",
        usage: "lun                       list the LUNs\n\
                lun add N DEVICE [ro]     export DEVICE (a name devinfo lists, e.g. ram0) on LUN N\n\
                lun remove N [-f]         take LUN N's medium away\n\
                lun eject N [-f]          eject LUN N's medium (lun insert brings it back)\n\
                lun insert N              put LUN N's ejected medium back\n\
                lun ro N | lun rw N       make LUN N read-only / writable\n\
                -f: even if the host prevents medium removal",
    },
    #[cfg(feature = "full-shell")]
    Help {
        name: "threads",
        summary: "coroutines: state, switches, stack use (-t: self-test)",
        usage: "threads [-t]",
    },
    #[cfg(not(feature = "full-shell"))]
    Help {
        name: "threads",
        summary: "coroutines: state, switches, stack use",
        usage: "threads",
    },
    Help {
        name: "mem",
        summary: "heap use",
        usage: "mem",
    },
    Help {
        name: "uptime",
        summary: "time since start",
        usage: "uptime",
    },
    Help {
        name: "fw",
        summary: "firmware slots: status, confirm a new firmware, allow downgrades",
        usage: "fw [ARGS]",
    },
    Help {
        name: "detach",
        summary: "disconnect the USB host (it can attach again)",
        usage: "detach",
    },
    Help {
        name: "reset",
        summary: "restart lunbox",
        usage: "reset",
    },
    Help {
        name: "exit",
        summary: "quit lunbox",
        usage: "exit",
    },
];

/// The commands of the `full-shell` feature.
#[cfg(feature = "full-shell")]
const FULL_COMMANDS: &[Help] = &[
    Help {
        name: "part",
        summary: "read a disk's partition table again and list its partitions",
        usage: "part DISK\n  e.g. part img0",
    },
    Help {
        name: "usbgadget",
        summary: "start, rebuild or stop the USB gadget",
        usage: "usbgadget                 start the gadget from the configuration (see config)\n\
                usbgadget [-S LIST] [-D LIST] [-a]\n\
                                          mass storage exporting LIST, DFU targets LIST, -a: the\n\
                                          serial console\n\
                usbgadget -a              only the serial console\n\
                usbgadget -s              show what runs\n\
                usbgadget -d              stop the gadget (the host sees it go away)\n\
                LIST: DEVICE(NAME)FLAGS,... e.g. -S img0,ram0(scratch)ro -D img0.0(fat)s,firmware\n\
                mass-storage flags: ro (read-only), fixed (not removable)\n\
                DFU flags: s (stage the whole image first), r (allow upload)",
    },
];
#[cfg(not(feature = "full-shell"))]
const FULL_COMMANDS: &[Help] = &[];

/// The configuration commands (feature `config`).
#[cfg(feature = "config")]
const CONFIG_COMMANDS: &[Help] = &[Help {
    name: "config",
    summary: "show, change, save and load the configuration",
    usage: CONFIG_USAGE,
}];
/// `config`'s usage; what runs a changed configuration depends on the build.
#[cfg(feature = "config")]
macro_rules! config_usage {
    ($then:literal) => {
        concat!(
            "config                    show the configuration being edited\n\
            config set KEY=VALUE      change one setting (keys: ums, dfu, acm, autostart,\n\
                                      vid, pid, manufacturer, product, serial)\n\
            config save               save it (the gadget starts from it at boot)\n\
            config load               back to the saved configuration\n\
            config default            back to the built-in defaults\n\
            then: ",
            $then
        )
    };
}
#[cfg(all(feature = "config", feature = "full-shell"))]
const CONFIG_USAGE: &str = config_usage!("usbgadget to run it");
#[cfg(all(feature = "config", not(feature = "full-shell")))]
const CONFIG_USAGE: &str =
    config_usage!("config save and reset to run it (the gadget is built at boot)");
#[cfg(not(feature = "config"))]
const CONFIG_COMMANDS: &[Help] = &[];

/// The FAT commands (feature `fat`).
#[cfg(feature = "fat")]
const FAT_COMMANDS: &[Help] = &[
    Help {
        name: "ls",
        summary: "list a directory on a FAT volume",
        usage: "ls DEVICE [DIR]\n  e.g. ls img0.0 /  (8.3 names)",
    },
    Help {
        name: "cat",
        summary: "print a file from a FAT volume",
        usage: "cat DEVICE FILE\n  e.g. cat img0.0 README.TXT",
    },
];
#[cfg(not(feature = "fat"))]
const FAT_COMMANDS: &[Help] = &[];

/// The commands this build has: `ls` and `cat` need the `fat` feature, `config` the `config`
/// feature, `usbgadget` and `part` the `full-shell` feature (the board's firmware has only
/// `config`, for flash space).
fn commands() -> impl Iterator<Item = &'static Help> {
    COMMANDS
        .iter()
        .chain(FULL_COMMANDS)
        .chain(CONFIG_COMMANDS)
        .chain(FAT_COMMANDS)
}

/// Command names starting with `prefix` (tab completion).
pub fn complete(prefix: &str) -> Vec<&'static str> {
    commands()
        .map(|c| c.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Run one command line; returns its output (lines separated by `\n`) and what to do next.
pub fn execute<B: Board + 'static>(ctx: &Context<B>, line: &str) -> (String, Action) {
    let words: Vec<&str> = line.split_whitespace().collect();
    // Console commands run in command context: work that must not overlap waits.
    let _guard = coroutine::command_context();
    let result = match words.as_slice() {
        [] => Ok(String::new()),
        ["help"] | ["?"] => Ok(help_all()),
        ["help", cmd] => help_one(ctx, cmd),
        ["version"] => Ok(ctx.gadgets.board().version_line()),
        ["exit"] | ["quit"] if ctx.gadgets.board().can_exit() => {
            return (String::new(), Action::Exit);
        }
        ["exit"] | ["quit"] => Err(String::from(
            "exit: the firmware keeps running (reset restarts it)",
        )),
        ["reset"] => return (String::new(), Action::Reset),
        ["detach"] => ctx.gadgets.detach().map(|()| "host detached".to_string()),
        #[cfg(feature = "full-shell")]
        ["usbgadget", rest @ ..] => usbgadget(ctx, rest),
        ["fw", rest @ ..] => ctx.gadgets.board().fw(rest),
        #[cfg(feature = "config")]
        ["config"] | ["config", "show"] => {
            Ok(ctx.config.borrow().to_string().trim_end().to_string())
        }
        #[cfg(feature = "config")]
        // The value as typed: spaces in a quoted string are kept.
        ["config", "set", _, ..] => config_set(ctx, after_words(line, 2)),
        #[cfg(feature = "config")]
        ["config", "save"] => config_save(ctx),
        #[cfg(feature = "config")]
        ["config", "load"] => config_load(ctx),
        #[cfg(feature = "config")]
        ["config", "default"] => {
            // The built-in gadget, with an empty `ums`: every disk found at each boot, not the
            // ones found at this one.
            *ctx.config.borrow_mut() = Config {
                ums: Vec::new(),
                ..ctx.defaults.clone()
            };
            Ok(ctx.config.borrow().to_string().trim_end().to_string())
        }
        #[cfg(not(feature = "config"))]
        ["config", ..] => Err(String::from(
            "config: this build saves no configuration (it starts its built-in gadget)",
        )),
        ["devinfo"] => Ok(devinfo(ctx)),
        #[cfg(feature = "full-shell")]
        ["part", disk] => part(ctx, disk),
        ["lun"] => luns(ctx),
        ["lun", rest @ ..] => lun(ctx, rest),
        #[cfg(feature = "fat")]
        ["ls", dev] => fat::ls(ctx, dev, "/"),
        #[cfg(feature = "fat")]
        ["ls", dev, dir] => fat::ls(ctx, dev, dir),
        #[cfg(feature = "fat")]
        ["cat", dev, file] => fat::cat(ctx, dev, file),
        ["mem"] => match ctx.gadgets.board().heap_usage() {
            Some((used, free)) => Ok(format!(
                "heap: {} used, {} free",
                size(used as u64),
                size(free as u64)
            )),
            None => Err(String::from("this board does not count its heap")),
        },
        ["uptime"] => Ok(uptime()),
        ["threads"] => Ok(threads()),
        #[cfg(feature = "full-shell")]
        ["threads", "-t"] => coroutine::self_test(200_000)
            .map(|r| r.to_string())
            .map_err(String::from),
        [cmd, ..] => match commands().find(|c| c.name == *cmd) {
            Some(h) => Err(format!("wrong arguments; usage:\n{}", usage(ctx, h))),
            None => Err(format!(
                "unknown command '{cmd}' (type 'help' for the list)"
            )),
        },
    };
    let out = match result {
        Ok(text) => text,
        Err(e) => format!("error: {e}"),
    };
    (out, Action::Continue)
}

/// What follows the first `n` words of `line`, as typed.
#[cfg(feature = "config")]
fn after_words(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..n {
        rest = rest
            .trim_start_matches(|c: char| !c.is_whitespace())
            .trim_start();
    }
    rest
}

fn help_all() -> String {
    let mut out = String::from("commands (help COMMAND for details):");
    for c in commands() {
        out.push_str(&format!("\n  {:<9} {}", c.name, c.summary));
    }
    out
}

/// A command's usage text (the board's for `fw`).
fn usage<B: Board + 'static>(ctx: &Context<B>, h: &Help) -> &'static str {
    if h.name == "fw" {
        ctx.gadgets.board().fw_usage()
    } else {
        h.usage
    }
}

fn help_one<B: Board + 'static>(ctx: &Context<B>, cmd: &str) -> Result<String, String> {
    commands()
        .find(|c| c.name == cmd)
        .map(|c| format!("{} - {}\nusage: {}", c.name, c.summary, usage(ctx, c)))
        .ok_or_else(|| format!("no command '{cmd}' (type 'help' for the list)"))
}

fn devinfo<B: Board + 'static>(ctx: &Context<B>) -> String {
    let mut out = String::from("name           size          ro  what");
    for d in ctx.registry.borrow().list() {
        let mut what = d.description.clone();
        if let Some(label) = &d.label {
            what.push_str(&format!(" \"{label}\""));
        }
        if !d.aliases.is_empty() {
            what.push_str(&format!(" (also {})", d.aliases.join(", ")));
        }
        out.push_str(&format!(
            "\n{:<14} {:<13} {:<3} {}",
            d.name,
            size(d.bytes()),
            if d.read_only { "ro" } else { "" },
            what
        ));
    }
    out
}

#[cfg(feature = "full-shell")]
fn part<B: Board + 'static>(ctx: &Context<B>, disk: &str) -> Result<String, String> {
    let n = ctx
        .registry
        .borrow_mut()
        .scan(disk)
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(format!("{disk}: no partition table"));
    }
    let prefix = format!("{disk}.");
    let mut out = format!("{disk}: {n} partitions");
    for d in ctx
        .registry
        .borrow()
        .list()
        .iter()
        .filter(|d| d.name.starts_with(&prefix))
    {
        out.push_str(&format!(
            "\n  {:<12} {:<13} {}",
            d.name,
            size(d.bytes()),
            d.description
        ));
    }
    Ok(out)
}

/// `bytes` for people: `1.5 GiB`, `64.0 MiB`, `448 KiB` (integer arithmetic: no float
/// formatting code in the firmware).
pub fn size(bytes: u64) -> String {
    let tenths = |unit: u32| {
        // In 1/1024 of the unit, so that the arithmetic stays within u64.
        let t = ((bytes >> (unit - 10)) * 10 + 512) >> 10;
        format!("{}.{}", t / 10, t % 10)
    };
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", tenths(30)),
        b if b >= 1 << 20 => format!("{} MiB", tenths(20)),
        b => format!("{} KiB", b >> 10),
    }
}

fn luns<B: Board + 'static>(ctx: &Context<B>) -> Result<String, String> {
    let mut out = String::from("LUN  medium         size          flags");
    for l in ctx.control()?.list() {
        let mut flags = Vec::new();
        if l.read_only {
            flags.push("ro");
        }
        if l.removable {
            flags.push("removable");
        }
        if l.prevented {
            flags.push("locked-by-host");
        }
        let name = match (l.present, l.name.is_empty()) {
            (true, _) => l.name.clone(),
            // A card slot without a card.
            (false, false) => format!("{} (empty)", l.name),
            (false, true) => String::from("(none)"),
        };
        let sz = if l.present {
            size(l.blocks * u64::from(l.block_size))
        } else {
            String::from("-")
        };
        out.push_str(&format!(
            "\n{:<4} {:<14} {:<13} {}",
            l.lun,
            name,
            sz,
            flags.join(",")
        ));
    }
    Ok(out)
}

fn lun_number<B: Board + 'static>(ctx: &Context<B>, n: &str) -> Result<usize, String> {
    let count = ctx.control()?.lun_count();
    match n.parse::<usize>() {
        Ok(v) if v < count => Ok(v),
        _ => Err(format!("'{n}' is not a LUN number: use 0 to {}", count - 1)),
    }
}

fn lun<B: Board + 'static>(ctx: &Context<B>, args: &[&str]) -> Result<String, String> {
    let force = args.last() == Some(&"-f");
    let args = if force { &args[..args.len() - 1] } else { args };
    let c = &ctx.control()?;
    let r = match args {
        ["add", n, dev] | ["add", n, dev, "rw"] => add(ctx, lun_number(ctx, n)?, dev, false, force),
        ["add", n, dev, "ro"] => add(ctx, lun_number(ctx, n)?, dev, true, force),
        ["remove", n] => c
            .remove(lun_number(ctx, n)?, force)
            .map_err(|e| e.to_string()),
        ["eject", n] => c
            .eject(lun_number(ctx, n)?, force)
            .map_err(|e| e.to_string()),
        ["insert", n] => {
            let lun = lun_number(ctx, n)?;
            if let Some(l) = c.list().into_iter().find(|l| l.lun == lun) {
                shared_writable(c, lun, &l.ejected, l.read_only)?;
            }
            c.load(lun).map_err(|e| e.to_string())
        }
        ["ro", n] => c
            .set_read_only(lun_number(ctx, n)?, true)
            .map_err(|e| e.to_string()),
        ["rw", n] => {
            let lun = lun_number(ctx, n)?;
            let name = c
                .list()
                .into_iter()
                .find(|l| l.lun == lun)
                .map(|l| l.name)
                .unwrap_or_default();
            shared_writable(c, lun, &name, false)?;
            c.set_read_only(lun, false).map_err(|e| e.to_string())
        }
        _ => {
            return help_one(ctx, "lun")
                .map(|h| format!("wrong arguments\n{h}"))
                .and_then(Err);
        }
    };
    r?;
    luns(ctx)
}

/// Refuse LUN `lun` exporting `dev` (read-only if `ro`) when another LUN exports the same
/// blocks (the device, its disk or one of its partitions), or holds them ejected for a LOAD,
/// and either is writable: two
/// writable views of the same blocks corrupt a file system the host mounts from both. The
/// configuration's rule (`ValidationError::Overlap`) for changes made while the host is
/// attached.
fn shared_writable(c: &UmsControl, lun: usize, dev: &str, ro: bool) -> Result<(), String> {
    if dev.is_empty() {
        return Ok(());
    }
    // Another LUN's medium, or the one it holds ejected: the host may load that one again
    // (START STOP UNIT) without asking the console.
    let clash = c
        .list()
        .into_iter()
        .filter(|l| l.lun != lun && !(ro && l.read_only))
        .find_map(|l| {
            [l.name, l.ejected]
                .into_iter()
                .find(|other| !other.is_empty() && lunbox_config::overlap(other, dev))
                .map(|other| (l.lun, other))
        });
    match clash {
        Some(other) => {
            let (mut first, mut second) = (other, (lun, String::from(dev)));
            if first.0 > second.0 {
                core::mem::swap(&mut first, &mut second);
            }
            Err(lunbox_config::ValidationError::Overlap {
                first: first.0,
                first_device: first.1,
                second: second.0,
                second_device: second.1,
            }
            .to_string())
        }
        None => Ok(()),
    }
}

fn add<B: Board + 'static>(
    ctx: &Context<B>,
    lun: usize,
    dev: &str,
    ro: bool,
    force: bool,
) -> Result<(), String> {
    shared_writable(&ctx.control()?, lun, dev, ro)?;
    let device = ctx
        .registry
        .borrow()
        .device(dev)
        .map_err(|e| e.to_string())?;
    ctx.control()?
        .set_backend(lun, device, dev, ro, force)
        .map_err(|e| e.to_string())
}

fn uptime() -> String {
    let ms = coroutine::now().as_nanos() / 1_000_000;
    format!(
        "up {}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn threads() -> String {
    let mut out = String::from("id      name          state     switches   stack   used");
    for c in coroutine::coroutines() {
        out.push_str(&format!(
            "\n{:<7} {:<13} {:<9} {:<10} {:<7} {}",
            c.id.to_string(),
            c.name,
            c.state.as_str(),
            c.switches,
            c.stack_size,
            c.stack_high_water
        ));
    }
    out
}

#[cfg(feature = "full-shell")]
/// `usbgadget`: start from the configuration, or from `-S LIST` / `-a`; `-s` shows, `-d` stops.
fn usbgadget<B: Board + 'static>(ctx: &Context<B>, args: &[&str]) -> Result<String, String> {
    let show = |spec: Option<Spec>| match spec {
        None => String::from("the gadget is stopped"),
        Some(s) => {
            let list = |l: &[lunbox_config::Entry]| {
                if l.is_empty() {
                    String::from("off")
                } else {
                    lunbox_config::format_list(l)
                }
            };
            format!(
                "running: mass storage [{}], DFU [{}], serial console {}",
                list(&s.ums),
                list(&s.dfu),
                if s.acm { "on" } else { "off" }
            )
        }
    };
    match args {
        ["-s"] => Ok(show(ctx.gadgets.spec())),
        ["-d"] => {
            ctx.gadgets.stop()?;
            Ok(show(None))
        }
        [] => {
            // As at boot: an empty `ums` (after `config default`) exports the built-in LUNs.
            let spec = crate::boot::with_builtin_luns(ctx.config.borrow().clone(), &ctx.defaults);
            ctx.gadgets.start(spec)?;
            Ok(show(ctx.gadgets.spec()))
        }
        _ => {
            let mut spec = ctx.config.borrow().clone();
            spec.ums.clear();
            spec.dfu.clear();
            spec.acm = false;
            let mut i = 0;
            while i < args.len() {
                match args[i] {
                    "-a" => spec.acm = true,
                    "-S" => {
                        let list = args
                            .get(i + 1)
                            .ok_or("-S needs a LIST, e.g. -S img0,ram0(scratch)ro")?;
                        spec.ums = lunbox_config::parse_list(List::Ums, list)
                            .map_err(|e| format!("-S {list}: {e}"))?;
                        i += 1;
                    }
                    "-D" => {
                        let list = args
                            .get(i + 1)
                            .ok_or("-D needs a LIST, e.g. -D ram0(scratch)r,firmware")?;
                        spec.dfu = lunbox_config::parse_list(List::Dfu, list)
                            .map_err(|e| format!("-D {list}: {e}"))?;
                        i += 1;
                    }
                    other => return Err(format!("unknown option '{other}' (see help usbgadget)")),
                }
                i += 1;
            }
            ctx.gadgets.start(spec)?;
            Ok(show(ctx.gadgets.spec()))
        }
    }
}

#[cfg(feature = "config")]
/// `config set KEY=VALUE`: replace one line of the configuration text and parse it again.
fn config_set<B: Board + 'static>(ctx: &Context<B>, line: &str) -> Result<String, String> {
    let line = line.trim();
    let (key, _) = line
        .split_once('=')
        .filter(|_| !line.starts_with('#'))
        .ok_or("write KEY=VALUE, e.g. config set acm=off")?;
    let key = key.trim();
    let current = ctx.config.borrow().to_string();
    // The line number of the typed line in the text parsed below.
    let mut typed_at = None;
    let mut text = String::new();
    for (n, l) in current.lines().enumerate() {
        if l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            text.push_str(line);
            typed_at = Some(n + 1);
        } else {
            text.push_str(l);
        }
        text.push('\n');
    }
    if typed_at.is_none() {
        text.push_str(line);
        text.push('\n');
        typed_at = Some(current.lines().count() + 1);
    }
    let config = lunbox_config::parse(&text).map_err(|e| {
        if Some(e.line) == typed_at {
            // Where in what was typed, not in the whole configuration's text.
            format!(
                "{line}: column {}: expected {}, found {}",
                e.column, e.expected, e.found
            )
        } else {
            e.to_string()
        }
    })?;
    let registry = ctx.registry.clone();
    if let Err(errors) = lunbox_config::validate(&config, |n| registry.borrow().get(n).is_some()) {
        let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(msgs.join("\n"));
    }
    *ctx.config.borrow_mut() = config;
    Ok(String::from(if ctx.gadgets.board().can_rebuild() {
        "changed (usbgadget runs it, config save keeps it)"
    } else {
        "changed (config save keeps it, the next boot runs it)"
    }))
}

#[cfg(feature = "config")]
fn config_save<B: Board + 'static>(ctx: &Context<B>) -> Result<String, String> {
    let config = ctx.config.borrow().clone();
    let written =
        lunbox_config::save(&mut *ctx.store.borrow_mut(), &config).map_err(|e| e.to_string())?;
    Ok(format!(
        "saved (slot {}, sequence {})",
        written.slot, written.sequence
    ))
}

#[cfg(feature = "config")]
fn config_load<B: Board + 'static>(ctx: &Context<B>) -> Result<String, String> {
    let loaded = lunbox_config::load(&mut *ctx.store.borrow_mut()).map_err(|e| e.to_string())?;
    match loaded {
        None => Err(String::from("nothing saved yet (config save)")),
        Some(config) => {
            *ctx.config.borrow_mut() = config;
            Ok(ctx.config.borrow().to_string().trim_end().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(0), "0 KiB");
        assert_eq!(size(448 * 1024), "448 KiB");
        assert_eq!(size(1 << 20), "1.0 MiB");
        assert_eq!(size(64 << 20), "64.0 MiB");
        assert_eq!(size((1 << 20) + (1 << 19)), "1.5 MiB");
        // Rounded to the nearest tenth: 1.96 MiB is 2.0 MiB.
        assert_eq!(size(2_055_209), "2.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
        assert_eq!(size(u64::MAX), "17179869184.0 GiB");
    }

    #[test]
    fn completion_lists_only_the_commands_this_build_has() {
        let sorted = |mut v: Vec<&'static str>| {
            v.sort_unstable();
            v
        };
        assert_eq!(
            complete("us"),
            if cfg!(feature = "full-shell") {
                vec!["usbgadget"]
            } else {
                vec![]
            }
        );
        let mut want = vec![];
        if cfg!(feature = "fat") {
            want.push("cat");
        }
        if cfg!(feature = "config") {
            want.push("config");
        }
        assert_eq!(sorted(complete("c")), want);
        assert_eq!(complete("threads"), vec!["threads"]);
        assert!(complete("zz").is_empty());
    }
}
