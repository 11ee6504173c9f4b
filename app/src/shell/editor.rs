//! A small line editor for one terminal: typing, backspace, ^U, ^C, history (up/down) and tab
//! completion of command names. It turns input bytes into echo output and finished lines.
//! Other escape sequences (Delete, Home, ctrl-arrows, ...) are read whole and ignored; a line
//! longer than [`MAX_LINE`] is refused whole ([`Event::TooLong`]), never run cut short.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Lines of history kept per terminal.
const HISTORY: usize = 50;
/// Longest line accepted.
pub const MAX_LINE: usize = 512;

/// What feeding a byte produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete line (without the terminator).
    Line(String),
    /// A line longer than [`MAX_LINE`] ended: it is dropped, not returned cut short.
    TooLong,
    /// ^D on an empty line.
    Eof,
}

/// Where the editor is in an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Not in one.
    None,
    /// After ESC.
    Esc,
    /// In a control sequence (ESC `[`), `params` once a parameter byte came.
    Csi { params: bool },
    /// After ESC `O` (cursor keys in application mode): one more byte.
    Ss3,
}

/// The editing state of one terminal.
pub struct Editor {
    line: Vec<u8>,
    /// Printable bytes typed past [`MAX_LINE`] (not kept): the line is too long while nonzero.
    excess: usize,
    history: VecDeque<String>,
    /// Position while browsing the history (None: editing a new line).
    browsing: Option<usize>,
    /// Escape sequence in progress.
    escape: Escape,
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
            excess: 0,
            history: VecDeque::new(),
            browsing: None,
            escape: Escape::None,
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
        if self.escape != Escape::None {
            if (0x20..=0x7E).contains(&b) {
                self.escape_byte(b, out);
                return None;
            }
            // A control byte cuts the sequence short and counts as itself (ESC then Enter
            // still ends the line).
            self.escape = Escape::None;
        }
        if b == 0x1B {
            self.escape = Escape::Esc;
            return None;
        }
        let after_cr = core::mem::replace(&mut self.after_cr, b == b'\r');
        match b {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                if self.echo {
                    out.extend_from_slice(b"\r\n");
                }
                let text = self.text();
                self.line.clear();
                self.browsing = None;
                if core::mem::take(&mut self.excess) > 0 {
                    return Some(Event::TooLong);
                }
                let trimmed = text.trim();
                if !trimmed.is_empty() && self.history.back().map(String::as_str) != Some(trimmed) {
                    if self.history.len() == HISTORY {
                        self.history.pop_front();
                    }
                    self.history.push_back(trimmed.to_string());
                }
                Some(Event::Line(text))
            }
            0x7F | 0x08 if self.excess > 0 => {
                // The bytes past the limit were not echoed either.
                self.excess -= 1;
                None
            }
            0x7F | 0x08 => {
                if self.line.pop().is_some() && self.echo {
                    out.extend_from_slice(b"\x08 \x08");
                }
                None
            }
            0x03 => {
                self.line.clear();
                self.excess = 0;
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
            0x20..=0x7E => {
                self.excess = self.excess.saturating_add(1);
                None
            }
            _ => None,
        }
    }

    /// A printable byte of an escape sequence: up and down browse the history, the rest of
    /// what a terminal sends is read to its end and ignored.
    fn escape_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        self.escape = match (self.escape, b) {
            (Escape::Esc, b'[') => Escape::Csi { params: false },
            (Escape::Esc, b'O') => Escape::Ss3,
            // Parameter and intermediate bytes (`ESC [ 1 ; 5 A` is ctrl-up).
            (Escape::Csi { .. }, 0x20..=0x3F) => Escape::Csi { params: true },
            (Escape::Csi { params: false } | Escape::Ss3, b'A') => {
                self.history_step(true, out);
                Escape::None
            }
            (Escape::Csi { params: false } | Escape::Ss3, b'B') => {
                self.history_step(false, out);
                Escape::None
            }
            // A final byte, ESC and another key (alt-x), or anything else: the end.
            _ => Escape::None,
        };
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
        self.excess = 0;
        if self.echo {
            for _ in 0..self.line.len() {
                out.extend_from_slice(b"\x08 \x08");
            }
            out.extend_from_slice(&text);
        }
        self.line = text;
    }

    /// The line as text: it holds only printable ASCII (`0x20..=0x7E`), each byte one char.
    fn text(&self) -> String {
        self.line.iter().map(|&b| char::from(b)).collect()
    }

    fn complete(&mut self, out: &mut Vec<u8>, complete: &dyn Fn(&str) -> Vec<&'static str>) {
        let text = self.text();
        if text.contains(' ') || self.excess > 0 {
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
