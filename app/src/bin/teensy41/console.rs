//! The firmware's console: a small shell served on the UART (LPUART6) and on the USB serial
//! port (CDC-ACM) at the same time, each with its own line buffer. It runs in the main
//! context and sleeps until either terminal has input.
//!
//! This is the MCU's own, smaller command set: the shared app (`lunbox::shell`,
//! `lunbox::console`) does not fit the flash budget yet, see docs/teensy41.md.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::time::Duration;

use lunbox_gadget::acm::AcmPort;
use lunbox_gadget::ums::UmsControl;
use lunbox_platform::coroutine::{self, Completion};
use lunbox_platform::imxrt::{self, Uart, heap};
use lunbox_storage::Registry;

/// The prompt.
const PROMPT: &str = "lunbox> ";
/// Longest command line.
const MAX_LINE: usize = 200;

/// What commands act on.
pub(crate) struct Console {
    pub(crate) uart: Uart,
    pub(crate) acm: AcmPort,
    pub(crate) control: UmsControl,
    pub(crate) registry: Rc<RefCell<Registry>>,
    /// Completed when either terminal has input.
    pub(crate) ready: Rc<Completion>,
    /// Firmware updates (the A/B build).
    #[cfg(feature = "teensy41-ab")]
    pub(crate) firmware: Option<crate::firmware::Firmware>,
}

/// A terminal's line being typed.
#[derive(Default)]
struct Line {
    text: String,
    /// The last byte was CR (a following LF is the same line end).
    after_cr: bool,
}

impl Line {
    /// Take one byte; echo goes to `echo`. Returns a finished line.
    fn feed(&mut self, b: u8, echo: &mut Vec<u8>) -> Option<String> {
        let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
        match b {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                echo.extend_from_slice(b"\r\n");
                Some(core::mem::take(&mut self.text))
            }
            // Backspace, DEL.
            0x08 | 0x7F => {
                if self.text.pop().is_some() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                None
            }
            // ^C: drop the line; ^U: erase it.
            0x03 => {
                self.text.clear();
                echo.extend_from_slice(b"^C\r\n");
                echo.extend_from_slice(PROMPT.as_bytes());
                None
            }
            0x15 => {
                for _ in 0..self.text.len() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                self.text.clear();
                None
            }
            0x20..=0x7E if self.text.len() < MAX_LINE => {
                self.text.push(char::from(b));
                echo.push(b);
                None
            }
            _ => None,
        }
    }
}

/// Append `text` with CR LF line ends.
fn push_text(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        return;
    }
    for line in text.split('\n') {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Send to the USB serial port while a program has it open; gives up after a second of no
/// room (the host stopped reading).
fn write_acm(port: &AcmPort, mut bytes: &[u8]) {
    let mut stalled = 0;
    while !bytes.is_empty() && port.connected() && stalled < 1000 {
        let n = port.write(bytes);
        bytes = &bytes[n..];
        if n == 0 {
            stalled += 1;
            coroutine::sleep(Duration::from_millis(1));
        } else {
            stalled = 0;
        }
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{}.{} GiB", bytes >> 30, ((bytes % (1 << 30)) * 10) >> 30)
    } else if bytes >= 1 << 20 {
        format!("{}.{} MiB", bytes >> 20, ((bytes % (1 << 20)) * 10) >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

const HELP: &str = "\
help                 this list
version              firmware version
devinfo              block devices and partitions
lun                  what each LUN exports
lun eject|insert N   take LUN N's medium out / put it back (-f: even if the host locked it)
lun ro|rw N          make LUN N read-only / writable
threads              coroutines: state, switches, stack use
mem                  heap use
uptime               time since boot (GPT1 clock; compare with a stopwatch)
reset                restart the board
fw                   firmware update state, fw confirm (A/B build only; help fw)";

impl Console {
    /// Serve both terminals; never returns (`reset` restarts the board).
    pub(crate) fn run(&self) -> ! {
        let mut uart_line = Line::default();
        let mut usb_line = Line::default();
        let mut usb_open = false;
        self.uart.write(PROMPT.as_bytes());
        loop {
            let mut progress = false;
            let mut buf = [0u8; 64];
            let n = self.uart.read(&mut buf);
            if n > 0 {
                progress = true;
                let mut out = Vec::new();
                for &b in &buf[..n] {
                    if let Some(line) = uart_line.feed(b, &mut out) {
                        push_text(&mut out, &self.execute(&line));
                        out.extend_from_slice(PROMPT.as_bytes());
                    }
                }
                self.uart.write(&out);
            }
            let open = self.acm.connected();
            if open && !usb_open {
                write_acm(
                    &self.acm,
                    format!("lunbox {} console\r\n{PROMPT}", env!("CARGO_PKG_VERSION")).as_bytes(),
                );
            }
            usb_open = open;
            let n = self.acm.read(&mut buf);
            if n > 0 {
                progress = true;
                let mut out = Vec::new();
                for &b in &buf[..n] {
                    if let Some(line) = usb_line.feed(b, &mut out) {
                        push_text(&mut out, &self.execute(&line));
                        out.extend_from_slice(PROMPT.as_bytes());
                    }
                }
                write_acm(&self.acm, &out);
            }
            if !progress {
                // The UART's wake-up comes from the idle hook; while other coroutines keep
                // the core busy the timeout picks typed bytes up.
                self.ready.wait_timeout(Duration::from_millis(50));
            }
        }
    }

    /// Run one command line; its output.
    fn execute(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let result = match words.as_slice() {
            [] => Ok(String::new()),
            ["help"] => Ok(String::from(HELP)),
            ["version"] => Ok(format!(
                "lunbox {} (Teensy 4.1, i.MX RT1062)",
                env!("CARGO_PKG_VERSION")
            )),
            ["devinfo"] => Ok(self.devinfo()),
            ["lun"] => Ok(self.luns()),
            ["lun", rest @ ..] => self.lun(rest),
            ["threads"] => Ok(threads()),
            #[cfg(feature = "teensy41-ab")]
            ["fw", rest @ ..] => match &self.firmware {
                Some(f) => f.command(rest),
                None => Err(String::from("fw: the program flash is not available")),
            },
            #[cfg(feature = "teensy41-ab")]
            ["help", "fw"] => Ok(String::from(crate::firmware::USAGE)),
            ["mem"] => {
                let (used, free) = heap::usage();
                Ok(format!(
                    "heap: {} used, {} free",
                    size(used as u64),
                    size(free as u64)
                ))
            }
            ["uptime"] => {
                let ms = coroutine::now().as_nanos() / 1_000_000;
                Ok(format!(
                    "up {}:{:02}:{:02}.{:03}",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                ))
            }
            ["reset"] => {
                self.uart.write(b"resetting\r\n");
                while self.uart.is_sending() {
                    coroutine::sleep(Duration::from_millis(1));
                }
                imxrt::reset()
            }
            [cmd, ..] => Err(format!("{cmd}: unknown command (try help)")),
        };
        result.unwrap_or_else(|e| format!("error: {e}"))
    }

    fn devinfo(&self) -> String {
        let mut out = format!("{:<14} {:>10}  {}", "device", "size", "what");
        for d in self.registry.borrow().list() {
            out.push_str(&format!(
                "\n{:<14} {:>10}  {}{}",
                d.name,
                size(d.bytes()),
                d.description,
                if d.read_only { " (read-only)" } else { "" }
            ));
        }
        out
    }

    fn luns(&self) -> String {
        let mut out = format!("{:<4} {:<14} {:>10}  flags", "lun", "medium", "size");
        for l in self.control.list() {
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
            let (name, sz) = if l.present {
                (l.name.as_str(), size(l.blocks * u64::from(l.block_size)))
            } else {
                ("(none)", String::from("-"))
            };
            out.push_str(&format!(
                "\n{:<4} {:<14} {:>10}  {}",
                l.lun,
                name,
                sz,
                flags.join(",")
            ));
        }
        out
    }

    fn lun(&self, args: &[&str]) -> Result<String, String> {
        let force = args.last() == Some(&"-f");
        let args = if force { &args[..args.len() - 1] } else { args };
        let [op, n] = args else {
            return Err(String::from("usage: lun eject|insert|ro|rw N [-f]"));
        };
        let count = self.control.lun_count();
        let lun = match n.parse::<usize>() {
            Ok(v) if v < count => v,
            _ => return Err(format!("'{n}' is not a LUN number: use 0 to {}", count - 1)),
        };
        let c = &self.control;
        match *op {
            "eject" => c.eject(lun, force),
            "insert" => c.load(lun),
            "ro" => c.set_read_only(lun, true),
            "rw" => c.set_read_only(lun, false),
            _ => return Err(format!("lun {op}: use eject, insert, ro or rw")),
        }
        .map_err(|e| format!("{e}"))?;
        Ok(String::new())
    }
}

fn threads() -> String {
    let mut out = format!(
        "{:<10} {:<8} {:>10} {:>7} {:>7}",
        "name", "state", "switches", "stack", "used"
    );
    for c in coroutine::coroutines() {
        out.push_str(&format!(
            "\n{:<10} {:<8} {:>10} {:>7} {:>7}",
            c.name,
            c.state.as_str(),
            c.switches,
            c.stack_size,
            c.stack_high_water
        ));
    }
    out
}
