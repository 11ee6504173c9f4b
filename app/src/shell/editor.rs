//! A small line editor for one terminal: typing, backspace, ^U, ^C, history (up/down) and tab
//! completion of command names. It turns input bytes into echo output and finished lines.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Lines of history kept per terminal.
const HISTORY: usize = 50;
/// Longest line accepted.
const MAX_LINE: usize = 512;

/// What feeding a byte produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete line (without the terminator).
    Line(String),
    /// ^D on an empty line.
    Eof,
}

/// The editing state of one terminal.
pub struct Editor {
    line: Vec<u8>,
    history: VecDeque<String>,
    /// Position while browsing the history (None: editing a new line).
    browsing: Option<usize>,
    /// Escape sequence in progress.
    escape: Vec<u8>,
    /// Echo what is typed (a terminal in raw mode); off for piped input.
    echo: bool,
    /// The previous byte was CR (so a following LF is not a second line).
    after_cr: bool,
}

impl Editor {
    /// An editor that echoes when `echo`.
    pub fn new(echo: bool) -> Self {
        Editor {
            line: Vec::new(),
            history: VecDeque::new(),
            browsing: None,
            escape: Vec::new(),
            echo,
            after_cr: false,
        }
    }

    /// Feed one input byte; echo goes to `out`. `complete` lists completions of a word.
    pub fn feed(
        &mut self,
        b: u8,
        out: &mut Vec<u8>,
        complete: &dyn Fn(&str) -> Vec<&'static str>,
    ) -> Option<Event> {
        if !self.escape.is_empty() || b == 0x1B {
            self.escape.push(b);
            return self.escape_byte(out);
        }
        let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
        match b {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                if self.echo {
                    out.extend_from_slice(b"\r\n");
                }
                let text = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                self.browsing = None;
                let trimmed = text.trim();
                if !trimmed.is_empty() && self.history.back().map(String::as_str) != Some(trimmed) {
                    if self.history.len() == HISTORY {
                        self.history.pop_front();
                    }
                    self.history.push_back(trimmed.to_string());
                }
                Some(Event::Line(text))
            }
            0x7F | 0x08 => {
                if self.line.pop().is_some() && self.echo {
                    out.extend_from_slice(b"\x08 \x08");
                }
                None
            }
            0x03 => {
                self.line.clear();
                if self.echo {
                    out.extend_from_slice(b"^C\r\n");
                }
                Some(Event::Line(String::new()))
            }
            0x04 if self.line.is_empty() => Some(Event::Eof),
            0x15 => {
                self.replace_line(Vec::new(), out);
                None
            }
            b'\t' => {
                self.complete(out, complete);
                None
            }
            0x20..=0x7E if self.line.len() < MAX_LINE => {
                self.line.push(b);
                if self.echo {
                    out.push(b);
                }
                None
            }
            _ => None,
        }
    }

    fn escape_byte(&mut self, out: &mut Vec<u8>) -> Option<Event> {
        match self.escape.as_slice() {
            [0x1B] | [0x1B, b'['] => return None,
            [0x1B, b'[', b'A'] => self.history_step(true, out),
            [0x1B, b'[', b'B'] => self.history_step(false, out),
            _ => {}
        }
        self.escape.clear();
        None
    }

    fn history_step(&mut self, up: bool, out: &mut Vec<u8>) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        self.browsing = match (self.browsing, up) {
            (None, true) => Some(last),
            (Some(0), true) => Some(0),
            (Some(i), true) => Some(i - 1),
            (Some(i), false) if i < last => Some(i + 1),
            (_, false) => None,
        };
        let text = self
            .browsing
            .map(|i| self.history[i].clone().into_bytes())
            .unwrap_or_default();
        self.replace_line(text, out);
    }

    fn replace_line(&mut self, text: Vec<u8>, out: &mut Vec<u8>) {
        if self.echo {
            for _ in 0..self.line.len() {
                out.extend_from_slice(b"\x08 \x08");
            }
            out.extend_from_slice(&text);
        }
        self.line = text;
    }

    fn complete(&mut self, out: &mut Vec<u8>, complete: &dyn Fn(&str) -> Vec<&'static str>) {
        let text = String::from_utf8_lossy(&self.line).into_owned();
        if text.contains(' ') {
            return; // only command names complete
        }
        let matches = complete(&text);
        match matches.as_slice() {
            [] => {}
            [one] => {
                // A completion starts with what was typed.
                let rest = one.strip_prefix(text.as_str()).unwrap_or_default();
                self.line.extend_from_slice(rest.as_bytes());
                self.line.push(b' ');
                if self.echo {
                    out.extend_from_slice(rest.as_bytes());
                    out.push(b' ');
                }
            }
            many => {
                if self.echo {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(many.join("  ").as_bytes());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(super::PROMPT.as_bytes());
                    out.extend_from_slice(&self.line);
                }
            }
        }
    }
}
