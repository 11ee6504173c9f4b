//! The console shell on stdin/stdout: line editing in raw mode when stdin is a terminal,
//! plain lines when it is piped (so scripts can drive it). It runs in the main context and
//! waits for input in the idle hook, so the gadget keeps running while nobody types.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use lunbox_gadget::ums::UmsControl;
use lunbox_platform::coroutine;
use lunbox_platform::sandbox::{SandboxMachine, Source, os};
use lunbox_storage::Registry;

/// How the console ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `exit`, or end of input.
    Exit,
    /// `reset`: run the program again.
    Reset,
}

/// The console shell.
pub(crate) struct Console {
    control: UmsControl,
    registry: Registry,
    source: Rc<Source>,
    detach: Box<dyn Fn()>,
}

const HELP: &str = "\
commands:
  help                 this list
  version              lunbox version
  devinfo              block devices and partitions
  lun                  what each LUN exports
  lun eject N [-f]     take LUN N's medium out (-f: even if the host prevents removal)
  lun insert N         put LUN N's ejected medium back
  lun ro N | lun rw N  make LUN N read-only / writable
  coroutine [-t]       list coroutines (-t: run the runtime self-test)
  detach               disconnect the USB/IP host (it can attach again)
  reset                restart lunbox (the host sees a disconnect)
  exit                 quit lunbox";

impl Console {
    /// A console for `control` and `registry`, waiting for stdin through `machine`;
    /// `detach` disconnects the USB/IP host.
    pub(crate) fn new(
        control: UmsControl,
        registry: Registry,
        machine: Rc<SandboxMachine>,
        detach: impl Fn() + 'static,
    ) -> Self {
        let source = Source::new();
        source.fds.borrow_mut().push(io::stdin().as_raw_fd());
        machine.watch(source.clone());
        Console {
            control,
            registry,
            source,
            detach: Box::new(detach),
        }
    }

    /// Read and run commands until `exit`, `reset` or end of input.
    pub(crate) fn run(&self) -> Outcome {
        let fd = io::stdin().as_raw_fd();
        let tty = os::is_terminal(fd);
        let _raw = if tty {
            os::RawMode::enter(fd).ok()
        } else {
            None
        };
        if os::set_nonblocking(fd).is_err() {
            eprintln!(
                "lunbox: stdin cannot be made non-blocking; the console may stall the gadget"
            );
        }
        let mut line = Vec::new();
        let mut pending = Vec::new();
        prompt();
        loop {
            let mut buf = [0u8; 256];
            match io::stdin().lock().read(&mut buf) {
                Ok(0) => {
                    println!();
                    return Outcome::Exit;
                }
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.source.ready.wait();
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("lunbox: console input failed: {e}");
                    return Outcome::Exit;
                }
            }
            for b in std::mem::take(&mut pending) {
                match b {
                    b'\r' | b'\n' => {
                        if tty {
                            print!("\r\n");
                        }
                        let text = String::from_utf8_lossy(&line).into_owned();
                        line.clear();
                        match self.execute(text.trim()) {
                            Some(outcome) => return outcome,
                            None => prompt(),
                        }
                    }
                    0x7F | 0x08 if tty && line.pop().is_some() => print!("\x08 \x08"),
                    0x03 if tty => {
                        line.clear();
                        print!("^C\r\n");
                        prompt();
                    }
                    0x04 if tty && line.is_empty() => return Outcome::Exit,
                    0x20..=0x7E => {
                        line.push(b);
                        if tty {
                            print!("{}", b as char);
                        }
                    }
                    _ => {}
                }
            }
            let _ = io::stdout().flush();
        }
    }

    /// Run one command line; `Some` ends the console.
    fn execute(&self, line: &str) -> Option<Outcome> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let out = match words.as_slice() {
            [] => Ok(String::new()),
            ["help"] | ["?"] => Ok(HELP.to_string()),
            ["version"] => Ok(format!("lunbox {}", env!("CARGO_PKG_VERSION"))),
            ["exit"] | ["quit"] => return Some(Outcome::Exit),
            ["reset"] => return Some(Outcome::Reset),
            ["detach"] => {
                (self.detach)();
                Ok(String::from("host detached"))
            }
            ["devinfo"] => Ok(self.devinfo()),
            ["lun"] => Ok(self.luns()),
            ["lun", verb, n, rest @ ..] => self.lun(verb, n, rest),
            ["coroutine"] => Ok(coroutines()),
            ["coroutine", "-t"] => coroutine::self_test(200_000)
                .map(|r| r.to_string())
                .map_err(String::from),
            [cmd, ..] => Err(format!(
                "unknown command '{cmd}' (type 'help' for the list)"
            )),
        };
        match out {
            Ok(text) if text.is_empty() => {}
            Ok(text) => println!("{}", text.replace('\n', "\r\n")),
            Err(e) => println!("error: {e}"),
        }
        None
    }

    fn lun(&self, verb: &str, n: &str, rest: &[&str]) -> Result<String, String> {
        let lun: usize = n
            .parse()
            .map_err(|_| format!("'{n}' is not a LUN number"))?;
        let force = rest == ["-f"];
        if !rest.is_empty() && !force {
            return Err(format!(
                "unexpected '{}' (only -f is allowed)",
                rest.join(" ")
            ));
        }
        let r = match verb {
            "eject" => self.control.eject(lun, force),
            "insert" => self.control.load(lun),
            "ro" => self.control.set_read_only(lun, true),
            "rw" => self.control.set_read_only(lun, false),
            _ => return Err(format!("unknown 'lun {verb}' (eject, insert, ro, rw)")),
        };
        r.map(|()| String::new()).map_err(|e| e.to_string())
    }

    fn luns(&self) -> String {
        let mut out = String::from("LUN  medium        size       flags");
        for l in self.control.list() {
            let size = format!("{} MiB", (l.blocks * u64::from(l.block_size)) >> 20);
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
            let name = if l.present { l.name.as_str() } else { "(none)" };
            out.push_str(&format!(
                "\n{:<4} {:<13} {:<10} {}",
                l.lun,
                name,
                size,
                flags.join(",")
            ));
        }
        out
    }

    fn devinfo(&self) -> String {
        let mut out = String::from("name           size        ro  what");
        for d in self.registry.list() {
            let mut what = d.description.clone();
            if let Some(label) = &d.label {
                what.push_str(&format!(" \"{label}\""));
            }
            out.push_str(&format!(
                "\n{:<14} {:<11} {:<3} {}",
                d.name,
                format!("{} KiB", d.bytes() >> 10),
                if d.read_only { "ro" } else { "" },
                what
            ));
        }
        out
    }
}

fn prompt() {
    print!("lunbox> ");
    let _ = io::stdout().flush();
}

fn coroutines() -> String {
    let mut out = String::from("id     name          state     switches  stack  used");
    for c in coroutine::coroutines() {
        out.push_str(&format!(
            "\n{:<6} {:<13} {:<9} {:<9} {:<6} {}",
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
