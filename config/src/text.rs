//! The text syntax: parsing ([`parse`], [`parse_bytes`]) and canonical printing
//! ([`Config::to_text`], `Display`).
//!
//! # Syntax
//!
//! A configuration is UTF-8 text, one `key=value` per line. Blank lines are ignored, `#` starts
//! a comment that runs to the end of the line (anywhere outside a quoted string), spaces and
//! tabs may surround the key, the `=` and the value, and lines may end in `\r\n`. Each key may
//! appear once; a key left out keeps its default, so the empty text is [`Config::default`].
//!
//! ```text
//! # lunbox configuration
//! ums=sd0.1(data),ram0(scratch)ro   # LUN 0 and LUN 1
//! dfu=sd0.2(rootfs)s,firmware(fw)r
//! acm=on
//! autostart=on
//! vid=0x1209
//! pid=0x0001
//! manufacturer="lunbox"
//! product="lunbox USB gadget"
//! serial=LB0001
//! ```
//!
//! | key | value | default |
//! |-----|-------|---------|
//! | `ums` | list of mass-storage LUNs, in LUN order (at most 16) | empty: the board's default devices |
//! | `dfu` | list of DFU alternate settings, in order (at most 16) | empty: no DFU function |
//! | `acm` | `on` or `off`: the CDC-ACM serial console | `on` |
//! | `autostart` | `on` or `off`: start the gadget at boot | `on` |
//! | `vid`, `pid` | USB vendor and product ID: decimal, or hex with `0x` (0 to 0xffff) | `0x1209`, `0x0001` |
//! | `manufacturer`, `product` | USB strings | `"lunbox"`, `"lunbox USB gadget"` |
//! | `serial` | USB serial number string | left out: the board's unique ID |
//!
//! **Lists** (`ums`, `dfu`) are entries separated by commas (spaces allowed around them), in
//! the style of barebox's file lists: `DEVICE(NAME)FLAGS`. An empty value is an empty list.
//!
//! - `DEVICE` is a name from the device registry: a disk `[a-z][a-z0-9_-]*` (`sd0`, `ram0`,
//!   `img0`), optionally `.` and a partition `[A-Za-z0-9_-]+` (`sd0.1`, `sd0.rootfs`). In
//!   `dfu`, `firmware` is the firmware itself.
//! - `(NAME)` is optional: characters `A-Z a-z 0-9 _ - .`. Without it (or with `()`), the
//!   entry goes by its device's name. UMS: the LUN's name on the console; DFU: the alternate
//!   setting's name (`dfu-util -l`, `dfu-util -a NAME`).
//! - `FLAGS` follow the `)` directly, written one after another; flags without a name need the
//!   empty parentheses: `sd0.2()s`. UMS flags: `ro` (read-only), `fixed` (not removable), e.g.
//!   `sd0(disk)rofixed`. DFU flags: `s` (safe: receive the whole image and check it before
//!   writing), `r` (readback: the host may upload), e.g. `firmware(fw)sr`. Each flag at most once.
//!
//! **Strings** are quoted (`"lunbox USB gadget"`) with the escapes `\"`, `\\`, `\n`, `\r`,
//! `\t` and `\u{HEX}` (any Unicode scalar value); control characters other than tab must be
//! escaped. A value without spaces may be written bare (`serial=LB0001`): a bare word ends at a
//! space, tab or `#` and has no `"` or `\`.
//!
//! **Errors** say where, what was expected and what was found: `ums=sd0.1(data,ram0` gives
//! `line 1, column 15: expected ')' after the name, found ','`. Lines and columns count from 1;
//! a column counts characters (a tab is one).
//!
//! **Printing** ([`Config::to_text`]) gives the canonical text: every key in the order above
//! (`serial` only when set), lists without spaces, strings quoted, numbers as `0x` and four
//! hex digits. Parsing it gives back an equal [`Config`] for every configuration that
//! [`validate`](crate::validate()) accepts, and for every configuration [`parse`] returns.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::model::{Config, Entry, Flag, Flags, List};

/// Why a text is not a configuration: where, what was expected there and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
    /// What the syntax allows there.
    pub expected: Expected,
    /// What is there instead, as shown in the message (`','`, `'foo'`, `the end of the line`).
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.column, self.expected, self.found
        )
    }
}

impl core::error::Error for ParseError {}

/// What the syntax expected where a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A key at the start of a line.
    Key,
    /// A key that was not set before.
    NewKey,
    /// `=` after the key.
    Equals,
    /// A device name at the start of a list entry.
    Device,
    /// A name, or `)`, after `(`.
    Name,
    /// `)` after the name.
    CloseParen,
    /// A flag allowed in this list.
    Flag(List),
    /// A flag not given before in this entry.
    NewFlag,
    /// `,` or the end of the line after a list entry.
    ListSeparator,
    /// The end of the line after a value.
    EndOfLine,
    /// The end of the line after a bare word (whose value may need quotes).
    EndAfterWord,
    /// `on` or `off`.
    OnOff,
    /// A 16-bit number.
    Number,
    /// A string value.
    String,
    /// The `"` that closes a string.
    StringEnd,
    /// A character allowed in a quoted string.
    StringChar,
    /// An escape sequence after `\`.
    Escape,
    /// A valid `\u{HEX}` escape.
    UnicodeEscape,
    /// UTF-8 text ([`parse_bytes`]).
    Utf8,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Key => {
                f.write_str("a key (")?;
                for (i, k) in Key::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(k.name())?;
                }
                f.write_str(")")
            }
            Expected::NewKey => f.write_str("each key at most once"),
            Expected::Equals => f.write_str("'=' after the key"),
            Expected::Device => f.write_str("a device name (such as sd0, sd0.1 or ram0)"),
            Expected::Name => f.write_str("a name (A-Z a-z 0-9 _ - .) or ')'"),
            Expected::CloseParen => f.write_str("')' after the name"),
            Expected::Flag(list) => {
                let what = match list {
                    List::Ums => "UMS",
                    List::Dfu => "DFU",
                };
                write!(f, "a {what} flag (")?;
                for (i, flag) in list.allowed_flags().iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(flag.word())?;
                }
                f.write_str(")")
            }
            Expected::NewFlag => f.write_str("each flag at most once"),
            Expected::ListSeparator => f.write_str("',' or the end of the line"),
            Expected::EndOfLine => f.write_str("the end of the line"),
            Expected::EndAfterWord => {
                f.write_str("the end of the line (quote a value that has spaces)")
            }
            Expected::OnOff => f.write_str("'on' or 'off'"),
            Expected::Number => f.write_str("a number from 0 to 65535 (decimal, or hex with 0x)"),
            Expected::String => f.write_str("a quoted string or a word"),
            Expected::StringEnd => f.write_str("'\"' to close the string"),
            Expected::StringChar => f.write_str("a printable character or an escape"),
            Expected::Escape => f.write_str("an escape (\\\" \\\\ \\n \\r \\t \\u{HEX})"),
            Expected::UnicodeEscape => f.write_str(
                "a Unicode escape: \\u{ then 1 to 6 hex digits of a scalar value, then }",
            ),
            Expected::Utf8 => f.write_str("UTF-8 text"),
        }
    }
}

/// The keys, in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Ums,
    Dfu,
    Acm,
    Autostart,
    Vid,
    Pid,
    Manufacturer,
    Product,
    Serial,
}

impl Key {
    const ALL: [Key; 9] = [
        Key::Ums,
        Key::Dfu,
        Key::Acm,
        Key::Autostart,
        Key::Vid,
        Key::Pid,
        Key::Manufacturer,
        Key::Product,
        Key::Serial,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::Ums => "ums",
            Key::Dfu => "dfu",
            Key::Acm => "acm",
            Key::Autostart => "autostart",
            Key::Vid => "vid",
            Key::Pid => "pid",
            Key::Manufacturer => "manufacturer",
            Key::Product => "product",
            Key::Serial => "serial",
        }
    }
}

/// Parses a configuration.
pub fn parse(text: &str) -> Result<Config, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut config = Config::default();
    let mut seen: [Option<usize>; Key::ALL.len()] = [None; Key::ALL.len()];
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let mut line = Line {
            chars: raw.chars().collect(),
            pos: 0,
            number: index + 1,
        };
        line.parse_into(&mut config, &mut seen)?;
    }
    Ok(config)
}

/// Parses one list value on its own (what follows `ums=` or `dfu=`, e.g. a console argument
/// `sd0.1(data),ram0(scratch)ro`); errors are on line 1. Unlike in a configuration, `#` does
/// not start a comment here.
pub fn parse_list(list: List, value: &str) -> Result<Vec<Entry>, ParseError> {
    let mut line = Line {
        chars: value.chars().collect(),
        pos: 0,
        number: 1,
    };
    let mut entries = Vec::new();
    line.skip_spaces();
    if line.peek().is_none() {
        return Ok(entries);
    }
    loop {
        entries.push(line.entry(list)?);
        line.skip_spaces();
        match line.peek() {
            None => return Ok(entries),
            Some(',') => {
                line.pos += 1;
                line.skip_spaces();
            }
            Some(_) => return Err(line.unexpected(Expected::ListSeparator)),
        }
    }
}

/// A list as written after `ums=` or `dfu=`: entries separated by commas.
pub fn format_list(entries: &[Entry]) -> String {
    let mut s = String::new();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "{e}");
    }
    s
}

/// Parses a configuration from bytes, which must be UTF-8 (what a store holds).
pub fn parse_bytes(bytes: &[u8]) -> Result<Config, ParseError> {
    match core::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by definition.
            let prefix = core::str::from_utf8(valid).unwrap_or_default();
            let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
            // `get`, not an index: a str index's panic path formats a `char` with `Debug`,
            // which pulls Unicode tables into the firmware (docs/teensy41.md).
            let mut column = prefix.get(line_start..).unwrap_or_default().chars().count() + 1;
            let line = prefix.matches('\n').count() + 1;
            if line == 1 && prefix.starts_with('\u{feff}') {
                column -= 1;
            }
            Err(ParseError {
                line,
                column,
                expected: Expected::Utf8,
                found: format!("byte 0x{:02x}", bytes[e.valid_up_to()]),
            })
        }
    }
}

/// Characters of a device name as the lexer takes them (checked by [`device_syntax_ok`]).
fn is_device_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Characters of an entry name.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Characters of a bare string word.
fn is_bare_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '#' | '\\')
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `[a-z][a-z0-9_-]*(\.[A-Za-z0-9_-]+)?`.
pub(crate) fn device_syntax_ok(device: &str) -> bool {
    let (disk, part) = match device.split_once('.') {
        Some((disk, part)) => (disk, Some(part)),
        None => (device, None),
    };
    disk.starts_with(|c: char| c.is_ascii_lowercase())
        && disk
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && part.is_none_or(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Why letters are not flags of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagsError {
    /// No allowed flag starts at this character.
    Unknown(usize),
    /// This flag repeats at this character.
    Repeated(usize, Flag),
}

/// Splits `letters` into flags allowed in `list` (longest word first at each place).
pub(crate) fn split_flags(list: List, letters: &[char]) -> Result<Flags, FlagsError> {
    let mut flags = Flags::EMPTY;
    let mut i = 0;
    while i < letters.len() {
        let rest = &letters[i..];
        let flag = list
            .allowed_flags()
            .iter()
            .filter(|f| {
                let w = f.word();
                rest.len() >= w.len() && rest.iter().zip(w.chars()).all(|(a, b)| *a == b)
            })
            .max_by_key(|f| f.word().len())
            .ok_or(FlagsError::Unknown(i))?;
        if !flags.insert(*flag) {
            return Err(FlagsError::Repeated(i, *flag));
        }
        i += flag.word().len();
    }
    Ok(flags)
}

/// Pushes `c` as shown in messages: control and space characters other than ' ' escaped.
fn push_visible(s: &mut String, c: char) {
    // Escaped by hand, not with `char::escape_debug`: its printable-character tables cost
    // the firmware ~5 KiB of flash.
    match c {
        '\t' => s.push_str("\\t"),
        '\n' => s.push_str("\\n"),
        '\r' => s.push_str("\\r"),
        '\0' => s.push_str("\\0"),
        c if c.is_control() || (c.is_whitespace() && c != ' ') => {
            // Writing to a String cannot fail.
            let _ = write!(s, "\\u{{{:x}}}", u32::from(c));
        }
        c => s.push(c),
    }
}

fn quote_char(c: char) -> String {
    let mut s = String::from("'");
    push_visible(&mut s, c);
    s.push('\'');
    s
}

/// `'word'`, shortened to 24 characters.
fn quote_word(chars: &[char]) -> String {
    const MAX: usize = 24;
    let mut s = String::from("'");
    for c in chars.iter().take(MAX) {
        push_visible(&mut s, *c);
    }
    if chars.len() > MAX {
        s.push('…');
    }
    s.push('\'');
    s
}

struct Line {
    chars: Vec<char>,
    pos: usize,
    number: usize,
}

impl Line {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Advances over characters matching `keep`; returns where the run started.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        start
    }

    /// At the end of the line or a comment.
    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some('#'))
    }

    /// What is at `pos`, for a message.
    fn found_at(&self, pos: usize) -> String {
        match self.chars.get(pos) {
            None => String::from("the end of the line"),
            Some(c) => quote_char(*c),
        }
    }

    fn error(&self, pos: usize, expected: Expected, found: String) -> ParseError {
        ParseError {
            line: self.number,
            column: pos + 1,
            expected,
            found,
        }
    }

    /// An error about what is at the current position.
    fn unexpected(&self, expected: Expected) -> ParseError {
        self.error(self.pos, expected, self.found_at(self.pos))
    }

    /// An error about the word `start..self.pos` (or the character there if it is empty).
    fn bad_word(&self, start: usize, expected: Expected) -> ParseError {
        if start == self.pos {
            self.unexpected(expected)
        } else {
            self.error(start, expected, quote_word(&self.chars[start..self.pos]))
        }
    }

    fn end_of_line(&mut self, expected: Expected) -> Result<(), ParseError> {
        self.skip_spaces();
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn parse_into(
        &mut self,
        config: &mut Config,
        seen: &mut [Option<usize>; Key::ALL.len()],
    ) -> Result<(), ParseError> {
        self.skip_spaces();
        if self.at_end() {
            return Ok(());
        }
        let start = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let word: String = self.chars[start..self.pos].iter().collect();
        let Some(index) = Key::ALL.iter().position(|k| k.name() == word) else {
            return Err(self.bad_word(start, Expected::Key));
        };
        let key = Key::ALL[index];
        if let Some(first) = seen[index] {
            return Err(self.error(
                start,
                Expected::NewKey,
                format!("'{word}' again (first on line {first})"),
            ));
        }
        seen[index] = Some(self.number);
        self.skip_spaces();
        if self.peek() != Some('=') {
            return Err(self.unexpected(Expected::Equals));
        }
        self.pos += 1;
        self.skip_spaces();
        match key {
            Key::Ums => config.ums = self.list(List::Ums)?,
            Key::Dfu => config.dfu = self.list(List::Dfu)?,
            Key::Acm => config.acm = self.on_off()?,
            Key::Autostart => config.autostart = self.on_off()?,
            Key::Vid => config.vid = self.number()?,
            Key::Pid => config.pid = self.number()?,
            Key::Manufacturer => config.manufacturer = self.string()?,
            Key::Product => config.product = self.string()?,
            Key::Serial => config.serial = Some(self.string()?),
        }
        Ok(())
    }

    fn list(&mut self, list: List) -> Result<Vec<Entry>, ParseError> {
        let mut entries = Vec::new();
        if self.at_end() {
            return Ok(entries);
        }
        loop {
            entries.push(self.entry(list)?);
            self.skip_spaces();
            if self.at_end() {
                return Ok(entries);
            }
            if self.peek() != Some(',') {
                return Err(self.unexpected(Expected::ListSeparator));
            }
            self.pos += 1;
            self.skip_spaces();
        }
    }

    fn entry(&mut self, list: List) -> Result<Entry, ParseError> {
        let start = self.take_while(is_device_char);
        let device: String = self.chars[start..self.pos].iter().collect();
        if device.is_empty() || !device_syntax_ok(&device) {
            return Err(self.bad_word(start, Expected::Device));
        }
        let mut entry = Entry::new(device);
        if self.peek() != Some('(') {
            return Ok(entry);
        }
        self.pos += 1;
        let start = self.take_while(is_name_char);
        if self.peek() != Some(')') {
            return Err(self.unexpected(if start == self.pos {
                Expected::Name
            } else {
                Expected::CloseParen
            }));
        }
        if start < self.pos {
            entry.name = Some(self.chars[start..self.pos].iter().collect());
        }
        self.pos += 1;
        let start = self.take_while(|c| c.is_ascii_alphanumeric());
        let letters = &self.chars[start..self.pos];
        match split_flags(list, letters) {
            Ok(flags) => entry.flags = flags,
            Err(FlagsError::Repeated(at, flag)) => {
                return Err(self.error(
                    start + at,
                    Expected::NewFlag,
                    format!("'{}' again", flag.word()),
                ));
            }
            Err(FlagsError::Unknown(at)) => {
                return Err(self.error(
                    start + at,
                    Expected::Flag(list),
                    quote_word(&letters[at..]),
                ));
            }
        }
        Ok(entry)
    }

    /// A value word: up to a space, tab or `#`.
    fn word(&mut self) -> usize {
        self.take_while(|c| !is_space(c) && c != '#')
    }

    fn on_off(&mut self) -> Result<bool, ParseError> {
        let start = self.word();
        let value = match self.chars[start..self.pos] {
            ['o', 'n'] => true,
            ['o', 'f', 'f'] => false,
            _ => return Err(self.bad_word(start, Expected::OnOff)),
        };
        self.end_of_line(Expected::EndOfLine)?;
        Ok(value)
    }

    fn number(&mut self) -> Result<u16, ParseError> {
        let start = self.word();
        let word = &self.chars[start..self.pos];
        let (digits, radix) = match word {
            ['0', 'x' | 'X', rest @ ..] => (rest, 16u16),
            _ => (word, 10u16),
        };
        let value = digits.iter().try_fold(None, |value: Option<u16>, c| {
            let digit = u16::try_from(c.to_digit(u32::from(radix))?).ok()?;
            value
                .unwrap_or(0)
                .checked_mul(radix)?
                .checked_add(digit)
                .map(Some)
        });
        let Some(Some(value)) = value else {
            return Err(self.bad_word(start, Expected::Number));
        };
        self.end_of_line(Expected::EndOfLine)?;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        if self.peek() != Some('"') {
            let start = self.take_while(is_bare_char);
            if start == self.pos {
                return Err(self.unexpected(Expected::String));
            }
            let value = self.chars[start..self.pos].iter().collect();
            self.end_of_line(Expected::EndAfterWord)?;
            return Ok(value);
        }
        self.pos += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(self.unexpected(Expected::StringEnd)),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => value.push(self.escape()?),
                Some(c) if c.is_control() && c != '\t' => {
                    return Err(self.unexpected(Expected::StringChar));
                }
                Some(c) => {
                    value.push(c);
                    self.pos += 1;
                }
            }
        }
        self.end_of_line(Expected::EndOfLine)?;
        Ok(value)
    }

    /// An escape sequence at `\`.
    fn escape(&mut self) -> Result<char, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let simple = match self.peek() {
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('u') => None,
            Some(_) => {
                self.pos += 1;
                return Err(self.bad_word(start, Expected::Escape));
            }
            None => {
                let found = String::from("'\\' at the end of the line");
                return Err(self.error(start, Expected::Escape, found));
            }
        };
        self.pos += 1;
        if let Some(c) = simple {
            return Ok(c);
        }
        // \u{HEX}
        let bad = |line: &mut Self| {
            line.pos = (line.pos + 1).min(line.chars.len());
            Err(line.bad_word(start, Expected::UnicodeEscape))
        };
        if self.peek() != Some('{') {
            return bad(self);
        }
        self.pos += 1;
        let mut value: u32 = 0;
        let mut digits = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
            if digits == 6 {
                return bad(self);
            }
            value = value * 16 + d;
            digits += 1;
            self.pos += 1;
        }
        if digits == 0 || self.peek() != Some('}') {
            return bad(self);
        }
        match char::from_u32(value) {
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
            None => bad(self),
        }
    }
}

fn write_quoted(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// `DEVICE(NAME)FLAGS` as in the text syntax.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.device)?;
        match &self.name {
            Some(name) => write!(f, "({name})")?,
            None if !self.flags.is_empty() => f.write_str("()")?,
            None => {}
        }
        write!(f, "{}", self.flags)
    }
}

/// The canonical text ([`Config::to_text`]).
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for list in [List::Ums, List::Dfu] {
            writeln!(f, "{}={}", list.key(), format_list(self.list(list)))?;
        }
        let on_off = |b: bool| if b { "on" } else { "off" };
        writeln!(f, "acm={}", on_off(self.acm))?;
        writeln!(f, "autostart={}", on_off(self.autostart))?;
        writeln!(f, "vid=0x{:04x}", self.vid)?;
        writeln!(f, "pid=0x{:04x}", self.pid)?;
        let strings = [
            ("manufacturer", Some(&self.manufacturer)),
            ("product", Some(&self.product)),
            ("serial", self.serial.as_ref()),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                write!(f, "{key}=")?;
                write_quoted(f, value)?;
                f.write_char('\n')?;
            }
        }
        Ok(())
    }
}

impl core::str::FromStr for Config {
    type Err = ParseError;

    /// [`parse`].
    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse(text)
    }
}

impl Config {
    /// The canonical text (see the [syntax](crate::text)); [`parse`] gives the configuration
    /// back.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(s, "{self}");
        s
    }
}
