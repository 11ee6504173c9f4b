//! The console: the shell served on the UART (stdin/stdout in the sandbox: raw mode with
//! echo on a terminal, plain lines when piped) and on the USB serial port at the same time.
//! It runs as the main context and sleeps in the idle hook until either has input, so the
//! USB functions keep running while nobody types (and while a command runs).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use lunbox_gadget::acm::AcmPort;
use lunbox_platform::coroutine;
use lunbox_platform::sandbox::{SandboxMachine, Source, os};

use crate::shell::{self, Action, Context, Editor, Event, PROMPT};

/// How long after the host opens the serial port (raises DTR) the greeting goes out. A
/// terminal program sets its termios (raw, no echo) just after opening; a line discipline
/// still in its default mode would echo the greeting back as input.
const GREETING_DELAY: Duration = Duration::from_millis(100);

/// How the console ended.
pub(crate) use crate::shell::Action as Outcome;

/// The console on stdin/stdout and the USB serial port.
pub(crate) struct Console {
    ctx: Context,
    source: Rc<Source>,
}

impl Console {
    /// A console running commands on `ctx`, reading stdin (watched by `machine`) and the
    /// gadget's serial port. `source` must be the one whose completion the serial port
    /// signals on input.
    pub(crate) fn new(ctx: Context, machine: &SandboxMachine, source: Rc<Source>) -> Self {
        source.fds.borrow_mut().push(io::stdin().as_raw_fd());
        machine.watch(source.clone());
        Console { ctx, source }
    }

    /// Serve both terminals until `exit`, `reset` or the end of stdin.
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
        let mut uart = Editor::new(tty);
        let mut usb = Editor::new(true);
        let mut usb_connected = false;
        let mut greet_at = None;
        let mut stdin_open = true;
        write_uart(PROMPT.as_bytes());
        loop {
            let mut progress = false;
            if stdin_open {
                let mut buf = [0u8; 256];
                match io::stdin().lock().read(&mut buf) {
                    // The end of stdin ends lunbox (a script finished, or ^D).
                    Ok(0) => return Action::Exit,
                    Ok(n) => {
                        progress = true;
                        let mut out = Vec::new();
                        for &b in &buf[..n] {
                            match uart.feed(b, &mut out, &shell::complete) {
                                None => {}
                                Some(Event::Eof) => return Action::Exit,
                                Some(Event::Line(line)) => {
                                    let (text, action) = shell::execute(&self.ctx, &line);
                                    if action != Action::Continue {
                                        write_uart(&out);
                                        return action;
                                    }
                                    push_output(&mut out, &text, tty);
                                    out.extend_from_slice(PROMPT.as_bytes());
                                }
                            }
                        }
                        write_uart(&out);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(e) => {
                        eprintln!("lunbox: console input failed: {e}");
                        stdin_open = false;
                    }
                }
            }
            if let Some(port) = &self.ctx.gadgets.acm() {
                let now = port.connected();
                if now && !usb_connected {
                    // A new session: forget a half-typed line from the last one, greet soon.
                    usb = Editor::new(true);
                    greet_at = Some(coroutine::now() + GREETING_DELAY);
                } else if !now {
                    greet_at = None;
                }
                usb_connected = now;
                if greet_at.is_some_and(|at| coroutine::now() >= at) {
                    greet_at = None;
                    write_usb(
                        port,
                        format!("lunbox {} console\r\n{PROMPT}", crate::update::VERSION_STR)
                            .as_bytes(),
                    );
                }
                let mut buf = [0u8; 256];
                let n = port.read(&mut buf);
                if n > 0 {
                    progress = true;
                    let mut out = Vec::new();
                    for &b in &buf[..n] {
                        match usb.feed(b, &mut out, &shell::complete) {
                            None | Some(Event::Eof) => {}
                            Some(Event::Line(line)) => {
                                let (text, action) = shell::execute(&self.ctx, &line);
                                if action != Action::Continue {
                                    write_usb(port, &out);
                                    return action;
                                }
                                push_output(&mut out, &text, true);
                                out.extend_from_slice(PROMPT.as_bytes());
                            }
                        }
                    }
                    write_usb(port, &out);
                }
            }
            if !progress {
                match greet_at {
                    Some(at) => {
                        self.source
                            .ready
                            .wait_timeout(at.saturating_duration_since(coroutine::now()));
                    }
                    None => self.source.ready.wait(),
                }
            }
        }
    }
}

/// Append command output, with CR LF line ends on terminals.
fn push_output(out: &mut Vec<u8>, text: &str, crlf: bool) {
    if text.is_empty() {
        return;
    }
    for line in text.split('\n') {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
}

fn write_uart(bytes: &[u8]) {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

/// Send everything to the USB serial port, letting the poller drain it as needed.
fn write_usb(port: &AcmPort, mut bytes: &[u8]) {
    while !bytes.is_empty() && port.connected() {
        let n = port.write(bytes);
        bytes = &bytes[n..];
        if !bytes.is_empty() {
            coroutine::yield_now();
        }
    }
}
