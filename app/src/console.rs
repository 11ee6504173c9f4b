//! The console: the shell served on the board's own terminal (stdin/stdout in the sandbox,
//! the UART on the board) and on the USB serial port at the same time, each with its own line
//! editor. It runs as its own coroutine, `console` ([`Console::spawn`]), and sleeps until
//! either has input, so the USB functions keep running while nobody types (and while a
//! command runs).

use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::time::Duration;

use lunbox_gadget::acm::AcmPort;
use lunbox_platform::coroutine::{self, Completion, JoinHandle};

use crate::board::{Board, Terminal};
use crate::shell::{self, Action, Context, Editor, Event, PROMPT};

/// How long after the host opens the serial port (raises DTR) the greeting goes out. A
/// terminal program sets its termios (raw, no echo) just after opening; a line discipline
/// still in its default mode would echo the greeting back as input.
pub const GREETING_DELAY: Duration = Duration::from_millis(100);

/// The console on a terminal and the USB serial port.
pub struct Console<B: Board, T: Terminal> {
    ctx: Context<B>,
    terminal: T,
    ready: Rc<Completion>,
    poll: Option<Duration>,
}

impl<B: Board + 'static, T: Terminal> Console<B, T> {
    /// A console running commands on `ctx`, reading `terminal` and the gadget's serial port.
    /// `ready` must be completed when either has input (the serial port's completion is the
    /// one given to [`crate::gadget::Gadgets::new`]). With `poll`, the console also looks for
    /// input at least that often (a terminal whose input does not always complete `ready`).
    pub fn new(
        ctx: Context<B>,
        terminal: T,
        ready: Rc<Completion>,
        poll: Option<Duration>,
    ) -> Self {
        Console {
            ctx,
            terminal,
            ready,
            poll,
        }
    }

    /// What commands act on.
    pub fn context(&self) -> &Context<B> {
        &self.ctx
    }

    /// Serve the console in its own coroutine, `console`, on the stack the board chose
    /// ([`crate::board::StackSizes::console`]), until it asks for a reset, or for an exit on a
    /// board that can exit ([`Board::can_exit`]): the join handle gives which.
    pub fn spawn(mut self) -> JoinHandle<Action>
    where
        T: 'static,
    {
        let board = self.ctx.gadgets.board().clone();
        coroutine::Builder::new("console")
            .stack_size(board.stack_sizes().console)
            .spawn(move || {
                loop {
                    match self.run() {
                        Action::Reset => return Action::Reset,
                        Action::Exit if board.can_exit() => return Action::Exit,
                        // A board that cannot exit serves again.
                        Action::Exit | Action::Continue => {}
                    }
                }
            })
    }

    /// Serve both terminals until `exit`, `reset` or the end of the terminal's input. Output
    /// still queued for the terminal has left when this returns.
    pub fn run(&mut self) -> Action {
        let action = self.serve();
        self.terminal.flush();
        action
    }

    fn serve(&mut self) -> Action {
        let interactive = self.terminal.interactive();
        let mut local = Editor::new(interactive);
        let mut usb = Editor::new(true);
        let mut usb_connected = false;
        let mut greet_at = None;
        self.terminal.write(PROMPT.as_bytes());
        loop {
            let mut progress = false;
            {
                let mut buf = [0u8; 256];
                match self.terminal.read(&mut buf) {
                    // The end of input ends lunbox (a script finished, or ^D).
                    Err(_) => return Action::Exit,
                    Ok(0) => {}
                    Ok(n) => {
                        progress = true;
                        let mut out = Vec::new();
                        for &b in &buf[..n] {
                            match local.feed(b, &mut out, &shell::complete) {
                                None => {}
                                Some(Event::Eof) if self.ctx.gadgets.board().can_exit() => {
                                    return Action::Exit;
                                }
                                Some(Event::Eof) => {}
                                Some(Event::TooLong) => {
                                    push_output(&mut out, TOO_LONG, interactive);
                                    out.extend_from_slice(PROMPT.as_bytes());
                                }
                                Some(Event::Line(line)) => {
                                    let (text, action) = shell::execute(&self.ctx, &line);
                                    if action != Action::Continue {
                                        self.terminal.write(&out);
                                        return action;
                                    }
                                    push_output(&mut out, &text, interactive);
                                    out.extend_from_slice(PROMPT.as_bytes());
                                }
                            }
                        }
                        self.terminal.write(&out);
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
                    let version = self.ctx.gadgets.board().version();
                    write_usb(
                        port,
                        format!("lunbox {version} console\r\n{PROMPT}").as_bytes(),
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
                            Some(Event::TooLong) => {
                                push_output(&mut out, TOO_LONG, true);
                                out.extend_from_slice(PROMPT.as_bytes());
                            }
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
                let until_greeting =
                    greet_at.map(|at| at.saturating_duration_since(coroutine::now()));
                let timeout = match (until_greeting, self.poll) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                match timeout {
                    Some(t) => {
                        self.ready.wait_timeout(t);
                    }
                    None => self.ready.wait(),
                }
            }
        }
    }
}

/// What a line longer than the editor keeps ([`shell::MAX_LINE`]) gets instead of running (a
/// literal: no formatting code in the firmware for it).
const TOO_LONG: &str = "error: line longer than 512 characters: not run";

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

/// Send everything to the USB serial port while a program has it open, letting the poller
/// drain it; gives up after a second without room (the host stopped reading).
fn write_usb(port: &AcmPort, mut bytes: &[u8]) {
    let mut stalled_since = None;
    while !bytes.is_empty() && port.connected() {
        let n = port.write(bytes);
        bytes = &bytes[n..];
        if n > 0 {
            stalled_since = None;
            if !bytes.is_empty() {
                coroutine::yield_now();
            }
        } else {
            let since = *stalled_since.get_or_insert_with(coroutine::now);
            if coroutine::now().saturating_duration_since(since) > Duration::from_secs(1) {
                return;
            }
            // The buffer is full: sleep rather than spin, so that the idle hook runs (on the
            // board it is what passes the USB interrupt on to the poller that drains it).
            coroutine::sleep(Duration::from_millis(1));
        }
    }
}
