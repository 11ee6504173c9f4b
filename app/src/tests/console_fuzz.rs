//! Property tests of the console's input path: the line editor fed arbitrary bytes, and lines
//! from the real commands' grammar mixed with junk run through a session on the fake board.
//! Every line gets its command's answer or an error, the console keeps answering, and no
//! command touches a disk's data.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use lunbox_config::MemStore;
use lunbox_storage::{DeviceRef, RamDisk, share};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::{session, session_on};
use crate::shell::{self, Action, Editor, Event, MAX_LINE, PROMPT};

/// Most bytes one input byte may echo: a completion list, the prompt and a whole line, or a
/// whole line erased and another written.
const ECHO_BOUND: usize = 4 * MAX_LINE + 256;

/// What the console answers a line longer than [`MAX_LINE`] (its literal must name the limit).
fn too_long() -> String {
    format!("error: line longer than {MAX_LINE} characters: not run")
}

/// Feed `bytes` one at a time: the events and all the echo. Checks that each byte's echo is
/// bounded and that only CR, LF and ^C end a line (only ^D the input).
fn feed_all(editor: &mut Editor, bytes: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let mut events = Vec::new();
    let mut echo = Vec::new();
    for &b in bytes {
        let mut out = Vec::new();
        let event = editor.feed(b, &mut out, &shell::complete);
        assert!(
            out.len() <= ECHO_BOUND,
            "{} bytes echoed for {b:#04x}",
            out.len()
        );
        match &event {
            None => {}
            Some(Event::Line(_) | Event::TooLong) => {
                assert!(
                    matches!(b, b'\r' | b'\n' | 0x03),
                    "a line ended by {b:#04x}"
                );
            }
            Some(Event::Eof) => assert_eq!(b, 0x04, "end of input from {b:#04x}"),
        }
        events.extend(event);
        echo.extend_from_slice(&out);
    }
    (events, echo)
}

/// Input a terminal sends: typing, editing keys, escape sequences, any byte, long runs.
fn keys() -> impl Strategy<Value = Vec<u8>> {
    let special: Vec<&'static [u8]> = vec![
        b"\r",
        b"\n",
        b"\r\n",
        b"\x7f",
        b"\x08",
        b"\x03",
        b"\x04",
        b"\x15",
        b"\x17",
        b"\t",
        b"\x1b",
        b"\x1b[",
        b"\x1bO",
        b"\x1b[A",
        b"\x1b[B",
        b"\x1b[C",
        b"\x1b[3~",
        b"\x1b[1;5A",
        b"\x1bOA",
        b"\x1bOB",
        b"he",
        b"c",
        b"lun ",
        b"\xff\xfe",
        b"\xc3\xa9",
    ];
    let key = prop_oneof![
        4 => vec(0x20u8..0x7F, 1..8),
        2 => any::<u8>().prop_map(|b| vec![b]),
        3 => select(special).prop_map(<[u8]>::to_vec),
        1 => vec(0x20u8..0x7F, 500..700),
    ];
    vec(key, 0..40).prop_map(|k| k.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever arrives, the editor does not panic, echoes a bounded amount of printable text,
    /// and returns lines of printable ASCII within the limit; echo changes only the output.
    #[test]
    fn any_input_gives_bounded_printable_echo_and_clean_lines(bytes in keys()) {
        let (events, echo) = feed_all(&mut Editor::new(true), &bytes);
        let (quiet_events, quiet_echo) = feed_all(&mut Editor::new(false), &bytes);
        prop_assert!(quiet_echo.is_empty(), "piped input is not echoed");
        prop_assert_eq!(&events, &quiet_events, "echo changes only the output");
        for e in &events {
            if let Event::Line(line) = e {
                prop_assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
                // So no CR, LF, ESC or invalid UTF-8 reaches a command.
                prop_assert!(line.bytes().all(|b| (0x20..=0x7E).contains(&b)), "{:?}", line);
            }
        }
        // No escape sequence or other control byte from the input reaches the terminal.
        prop_assert!(
            echo.iter().all(|&b| matches!(b, 0x08 | b'\r' | b'\n' | 0x20..=0x7E)),
            "{:?}",
            String::from_utf8_lossy(&echo)
        );
    }

    /// After anything and ^C, plain typing and Enter gives exactly what was typed (echoed as
    /// typed), or, past the limit, a refusal rather than a line cut short.
    #[test]
    fn a_typed_line_comes_back_exactly_or_is_refused_whole(
        before in keys(),
        text in "[ -~]{0,700}",
        end in select(vec!["\r", "\n", "\r\n"]),
        echo in any::<bool>(),
    ) {
        let mut editor = Editor::new(echo);
        feed_all(&mut editor, &before);
        feed_all(&mut editor, b"\x03");
        let (events, out) = feed_all(&mut editor, format!("{text}{end}").as_bytes());
        if text.len() <= MAX_LINE {
            prop_assert_eq!(events, vec![Event::Line(text.clone())]);
        } else {
            prop_assert_eq!(events, vec![Event::TooLong]);
        }
        if echo {
            let shown = &text[..text.len().min(MAX_LINE)];
            prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{shown}\r\n"));
        }
    }

    /// Up (as either kind of cursor key) and Enter runs the last non-blank line again.
    #[test]
    fn up_recalls_the_last_nonblank_line(
        lines in vec("[ -~]{0,40}", 1..6),
        up in select(vec!["\x1b[A", "\x1bOA"]),
    ) {
        let mut editor = Editor::new(true);
        for line in &lines {
            feed_all(&mut editor, format!("{line}\r").as_bytes());
        }
        let (events, _) = feed_all(&mut editor, format!("{up}\r").as_bytes());
        let last = lines.iter().rev().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap_or("");
        prop_assert_eq!(events, vec![Event::Line(last.to_string())]);
    }
}

/// Regression: a line past the limit was cut to its first 512 characters and run as such
/// (`config set ums=...` would keep a shorter list than the one typed).
#[test]
fn a_line_past_the_limit_is_refused_not_run_cut_short() {
    let mut editor = Editor::new(false);
    let long = format!("config set product={}\r", "x".repeat(MAX_LINE));
    let (events, _) = feed_all(&mut editor, long.as_bytes());
    assert_eq!(events, vec![Event::TooLong]);
    // Erasing back under the limit makes it a line again: nothing typed is lost.
    let mut typed = "y".repeat(MAX_LINE + 2).into_bytes();
    typed.extend_from_slice(b"\x7f\x7f\r");
    let (events, _) = feed_all(&mut editor, &typed);
    assert_eq!(events, vec![Event::Line("y".repeat(MAX_LINE))]);

    let (out, _) = session(&[&long[..long.len() - 1], "version"]);
    assert!(
        out.contains(&format!("\n{}\nlunbox> version\nlunbox 9.8.7", too_long())),
        "{out}"
    );
}

/// Regression: the rest of a longer escape sequence was typed into the line (Delete added
/// `~`, ctrl-right `;5C`), and the byte after a lone ESC was lost, even Enter.
#[test]
fn escape_sequences_type_nothing_and_esc_does_not_eat_enter() {
    let mut editor = Editor::new(true);
    let keys = b"lun\x1b[3~\x1b[1;5C\x1b[H\x1bOD\x1b[15~ 1\x1b\r";
    let (events, out) = feed_all(&mut editor, keys);
    assert_eq!(events, vec![Event::Line(String::from("lun 1"))]);
    assert_eq!(out, b"lun 1\r\n");
}

/// The grammar's words for LUN numbers: in range, out of it, not numbers.
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (0u32..4).prop_map(|n| n.to_string()),
        1 => select(vec!["-1", "+1", "01", "x", "", "18446744073709551616", "1e3", "0x1"])
            .prop_map(String::from),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
    .boxed()
}

/// Device names: the fake board's, ones it does not have, and junk.
fn device() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(vec![
            "ram0", "ram1", "slot0", "ram0.0", "ram0.1", "img0", "img0.0", "firmware",
            "nosuch", "RAM0", "ram", "ram0.", ".", "-",
        ])
        .prop_map(String::from),
        1 => "[a-z0-9._()-]{0,12}",
    ]
    .boxed()
}

/// A `ums`/`dfu` list as `usbgadget -S` and `config set` take it, or junk.
fn list() -> BoxedStrategy<String> {
    let name = prop_oneof![
        Just(String::new()),
        "\\([A-Za-z0-9_.-]{0,8}\\)",
        "\\([!-~]{0,6}"
    ];
    let flags = select(vec![
        "", "ro", "fixed", "rofixed", "s", "r", "sr", "x", "roro",
    ]);
    let entry = (device(), name, flags).prop_map(|(d, n, f)| format!("{d}{n}{f}"));
    prop_oneof![
        3 => vec(entry, 0..18).prop_map(|e| e.join(",")),
        1 => "[!-~]{0,16}",
    ]
    .boxed()
}

/// `lun` with its subcommands, right or wrong.
fn lun_line() -> BoxedStrategy<String> {
    let sub = select(vec![
        "add", "remove", "eject", "insert", "ro", "rw", "list", "", "ADD",
    ]);
    let tail = select(vec!["", "ro", "rw", "-f", "ro -f", "-f -f", "x"]);
    let word = prop_oneof![number(), device(), tail.clone().prop_map(String::from)];
    prop_oneof![
        3 => (sub, number(), device(), tail).prop_map(|(s, n, d, t)| match s {
            "add" => format!("lun add {n} {d} {t}"),
            s => format!("lun {s} {n} {t}"),
        }),
        1 => vec(word, 0..4).prop_map(|w| format!("lun {}", w.join(" "))),
    ]
    .boxed()
}

/// The `config` commands, with KEY=VALUE text right and wrong.
fn config_line() -> BoxedStrategy<String> {
    let key = select(vec![
        "ums",
        "dfu",
        "acm",
        "autostart",
        "vid",
        "pid",
        "manufacturer",
        "product",
        "serial",
        "",
        "UMS",
        "#",
        "x",
    ]);
    let value = prop_oneof![
        list(),
        select(vec![
            "on",
            "off",
            "0x1209",
            "65536",
            "-1",
            "0",
            "\"two words\"",
            "\"open",
            "\\u{41}",
            "a#b",
            "\"\\u{110000}\"",
        ])
        .prop_map(String::from),
        "[ -~]{0,24}",
    ];
    prop_oneof![
        1 => select(vec![
            "config",
            "config show",
            "config save",
            "config load",
            "config default",
            "config bogus",
            "config set",
            "config save now",
        ])
        .prop_map(String::from),
        3 => (key, value).prop_map(|(k, v)| format!("config set {k}={v}")),
        1 => "[ -~]{0,30}".prop_map(|t| format!("config set {t}")),
    ]
    .boxed()
}

/// `usbgadget` with options and lists in any order.
fn usbgadget_line() -> BoxedStrategy<String> {
    let opt = prop_oneof![
        select(vec!["-S", "-D", "-a", "-s", "-d", "-x", "--"]).prop_map(String::from),
        list(),
    ];
    vec(opt, 0..5)
        .prop_map(|o| format!("usbgadget {}", o.join(" ")))
        .boxed()
}

/// A path on a FAT volume: ones the test volume has, ones it has not, junk.
fn path() -> BoxedStrategy<String> {
    prop_oneof![
        2 => select(vec![
            "HELLO.TXT", "DIR", "DIR/INNER.TXT", "dir/inner.txt", "/", "..", "DIR/..", ".",
            "NOPE.TXT", "averyverylongname.txt", "HELLO.TXT/X", "a..b", "",
        ])
        .prop_map(String::from),
        1 => "[A-Za-z0-9./~*]{0,16}",
    ]
    .boxed()
}

/// The other commands, right and wrong (`threads -t`, a slow self-test, is left out).
fn other_line() -> BoxedStrategy<String> {
    let volume = || prop_oneof![3 => Just(String::from("ram1")), 1 => device()];
    let command = select(vec![
        "help",
        "version",
        "devinfo",
        "lun",
        "threads",
        "mem",
        "uptime",
        "fw",
        "detach",
        "config",
        "part",
        "usbgadget",
        "ls",
        "cat",
        "nosuch",
        "HELP",
        "",
    ]);
    prop_oneof![
        2 => select(vec![
            "help", "?", "version", "version now", "devinfo", "devinfo ram0", "mem", "uptime",
            "threads", "threads -x", "detach", "fw", "fw status", "fw confirm now", "ls", "cat",
            "part", "help help help", "? lun",
        ])
        .prop_map(String::from),
        1 => command.prop_map(|c| format!("help {c}")),
        1 => device().prop_map(|d| format!("part {d}")),
        1 => (volume(), path()).prop_map(|(d, p)| format!("ls {d} {p}")),
        1 => (volume(), path()).prop_map(|(d, p)| format!("cat {d} {p}")),
    ]
    .boxed()
}

/// A console line: a command from the grammar or junk, maybe with spaces around it, never
/// one that ends the console.
fn line() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        3 => lun_line(),
        2 => config_line(),
        1 => usbgadget_line(),
        3 => other_line(),
        2 => "[ -~]{0,60}",
        1 => "[ -~]{500,600}",
    ];
    let pad = || select(vec!["", " ", "  "]);
    (pad(), body, pad())
        .prop_map(|(a, b, c)| format!("{a}{b}{c}"))
        .prop_filter("the line ends the console", |l| {
            !matches!(l.split_whitespace().next(), Some("exit" | "quit" | "reset"))
        })
}

/// What a line's output must be.
#[derive(Debug)]
enum Expect {
    /// Nothing (an empty line).
    Nothing,
    /// Exactly this.
    Exactly(String),
    /// Output starting with this, not an error.
    Output(String),
    /// An error.
    Error,
    /// Output starting with this, or an error: which depends on what ran before.
    OutputOrError(String),
}

/// What `line` must answer on the fake board, in this build.
fn expect(line: &str) -> Expect {
    use Expect::*;
    let s = String::from;
    if line.len() > MAX_LINE {
        return Exactly(too_long());
    }
    let known = |c: &str| shell::complete(c).contains(&c);
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => Nothing,
        ["help"] | ["?"] => Output(s("commands (help COMMAND for details):")),
        ["help", c] if known(c) => Output(format!("{c} - ")),
        ["version"] => Exactly(s("lunbox 9.8.7 (fake)")),
        ["mem"] => Exactly(s("heap: 3.0 MiB used, 1.0 MiB free")),
        ["uptime"] => Output(s("up ")),
        ["threads"] => Output(s("id      name")),
        ["threads", "-t"] if cfg!(feature = "full-shell") => OutputOrError(String::new()),
        ["devinfo"] => Output(s("name           size")),
        ["fw", ..] => Output(s("fw called with")),
        ["lun"] => Output(s("LUN  medium")),
        ["lun", ..] => OutputOrError(s("LUN  medium")),
        ["config", ..] if !cfg!(feature = "config") => Error,
        ["config"] | ["config", "show"] | ["config", "default"] => Output(s("ums=")),
        ["config", "load"] => OutputOrError(s("ums=")),
        ["config", "save"] => Output(s("saved (slot ")),
        ["config", "set", _, ..] => OutputOrError(s("changed (")),
        ["part", d] if cfg!(feature = "full-shell") => OutputOrError(format!("{d}: ")),
        // ram1 holds a FAT volume where fatfs can make one.
        ["cat", "ram1", "HELLO.TXT"] if cfg!(feature = "sandbox") => Exactly(s("hello from FAT")),
        ["ls", "ram1"] if cfg!(feature = "sandbox") => Output(s("HELLO.TXT")),
        ["ls", "ram1", _] | ["cat", "ram1", _] if cfg!(feature = "sandbox") => {
            OutputOrError(String::new())
        }
        ["usbgadget", "-s"] if cfg!(feature = "full-shell") => {
            Output(s("running: mass storage [ram0,ram1], DFU [off]"))
        }
        // Everything else is wrong here: an unknown command or wrong arguments, no such
        // device, no FAT volume on the other disks, a board that cannot detach or rebuild.
        _ => Error,
    }
}

/// Check `out`, what the console answered `line`.
fn check(line: &str, out: &str) -> Result<(), String> {
    let is_error = out.starts_with("error:");
    let ok = match expect(line) {
        Expect::Nothing => out.is_empty(),
        Expect::Exactly(want) => out == want,
        Expect::Output(prefix) => !is_error && out.starts_with(&prefix),
        Expect::Error => is_error,
        Expect::OutputOrError(prefix) => is_error || out.starts_with(&prefix),
    };
    if !ok {
        return Err(format!(
            "{line:?} answered {out:?}, expected {:?}",
            expect(line)
        ));
    }
    // The LUN listing always has the gadget's two LUNs.
    if let Some(rows) = out.strip_prefix("LUN  medium") {
        let numbers: Vec<&str> = rows
            .lines()
            .skip(1)
            .filter_map(|r| r.split_whitespace().next())
            .collect();
        if numbers != ["0", "1"] {
            return Err(format!("{line:?}: LUN listing {out:?}"));
        }
    }
    Ok(())
}

/// Split a session's transcript into what each of `lines` answered, checking that each was
/// echoed after a prompt.
fn answers<'a>(transcript: &'a str, lines: &[String]) -> Result<Vec<&'a str>, String> {
    let echo = |l: &str| l[..l.len().min(MAX_LINE)].to_string();
    let mut rest = transcript
        .strip_prefix(PROMPT)
        .ok_or("no prompt at the start")?;
    let mut outs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        rest = rest
            .strip_prefix(echo(line).as_str())
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| format!("line {i} {line:?} not echoed before {rest:?}"))?;
        // The answer ends with the next prompt at the start of a line (the next line's echo
        // after it), or the last prompt at the end.
        let end = match lines.get(i + 1) {
            Some(next) => {
                let marker = format!("{PROMPT}{}\n", echo(next));
                rest.match_indices(&marker)
                    .map(|(at, _)| at)
                    .find(|&at| at == 0 || rest[..at].ends_with('\n'))
            }
            None => rest.strip_suffix(PROMPT).map(str::len),
        }
        .ok_or_else(|| format!("no prompt after line {i} {line:?}: {rest:?}"))?;
        let out = &rest[..end];
        outs.push(match out {
            "" => out,
            _ => out
                .strip_suffix('\n')
                .ok_or_else(|| format!("{line:?}: answer without a line end: {out:?}"))?,
        });
        rest = &rest[end + PROMPT.len()..];
    }
    Ok(outs)
}

/// A 64 KiB RAM disk's bytes: a pattern different for each `seed` (no partition table).
fn image(seed: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..128u32 * 512)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> (8 + seed % 16)) as u8)
        .collect();
    bytes[510..512].fill(0);
    bytes
}

/// A 4 MiB FAT16 volume (no partition table) holding `HELLO.TXT` and `DIR/INNER.TXT`, for
/// `ls` and `cat`: made once per thread with fatfs (the sandbox's formatter).
#[cfg(feature = "sandbox")]
fn fat_image() -> Vec<u8> {
    use std::io::{Cursor, Write};
    std::thread_local! {
        static IMAGE: Vec<u8> = {
            let mut disk = Cursor::new(vec![0u8; 8192 * 512]);
            let options = fatfs::FormatVolumeOptions::new()
                .fat_type(fatfs::FatType::Fat16)
                .bytes_per_cluster(512);
            fatfs::format_volume(&mut disk, options).unwrap();
            {
                let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
                let root = fs.root_dir();
                root.create_file("HELLO.TXT")
                    .unwrap()
                    .write_all(b"hello from FAT\n")
                    .unwrap();
                root.create_dir("DIR")
                    .unwrap()
                    .create_file("INNER.TXT")
                    .unwrap()
                    .write_all(b"inner")
                    .unwrap();
            }
            disk.into_inner()
        };
    }
    IMAGE.with(Clone::clone)
}

/// All of `disk`'s bytes.
fn contents(disk: &DeviceRef) -> Vec<u8> {
    let mut d = disk.lock();
    let mut bytes = vec![0; d.num_blocks() as usize * d.block_size() as usize];
    d.read(0, &mut bytes).unwrap();
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of lines: each gets its command's answer or an error, the console still
    /// answers at the end, and the RAM disks (one a FAT volume, read by `ls` and `cat`) hold
    /// what they held.
    #[test]
    fn any_lines_get_answers_and_leave_the_disks_alone(lines in vec(line(), 1..16)) {
        let mut all = lines;
        all.push(String::from("lun"));
        all.push(String::from("version"));
        #[cfg(feature = "sandbox")]
        let images = [image(1), fat_image()];
        #[cfg(not(feature = "sandbox"))]
        let images = [image(1), image(2)];
        let disks = images
            .clone()
            .map(|i| share(RamDisk::from_image(i).unwrap()));
        let typed: Vec<&str> = all.iter().map(String::as_str).collect();
        let ((transcript, action), _) = session_on(disks.clone(), &typed, MemStore::new(4096));
        prop_assert_eq!(action, Action::Exit, "only the end of input ends it");
        let outs = answers(&transcript, &all).map_err(TestCaseError::fail)?;
        for (line, out) in all.iter().zip(&outs) {
            check(line, out).map_err(TestCaseError::fail)?;
        }
        for (disk, image) in disks.iter().zip(&images) {
            prop_assert!(contents(disk) == *image, "a disk's data changed");
        }
    }
}

/// The oracle's checks can fail: a wrong answer, a missing error, a lost LUN are caught.
#[test]
fn the_answer_checks_catch_wrong_answers() {
    assert!(check("version", "lunbox 9.8.7 (fake)").is_ok());
    assert!(check("version", "error: no").is_err());
    assert!(check("frobnicate", "frobnicated").is_err());
    assert!(check("", "x").is_err());
    assert!(check("lun eject 1", "LUN  medium\n0    ram0").is_err());
    let lines = [String::from("a"), String::from("b")];
    assert_eq!(
        answers("lunbox> a\nx\nlunbox> b\nlunbox> ", &lines).unwrap(),
        ["x", ""]
    );
    assert!(answers("lunbox> a\nx\nlunbox> ", &lines).is_err());
}

/// Regression: a path missing on a FAT volume that opened was answered with a hint that the
/// volume might not be FAT (`FAT: NotFound (is it a FAT16/FAT32 volume? ...)`).
#[cfg(feature = "sandbox")]
#[test]
fn a_bad_path_on_a_fat_volume_says_what_is_wrong_with_it() {
    let disks = [image(1), fat_image()].map(|i| share(RamDisk::from_image(i).unwrap()));
    let lines = [
        "cat ram1 NOPE.TXT",
        "ls ram1 DIR/NOPE",
        "cat ram1 averyverylongname.txt",
        "cat ram1 DIR",
        "ls ram1 HELLO.TXT",
        "cat ram1 dir/inner.txt",
        "ls ram0",
    ];
    let ((out, _), _) = session_on(disks, &lines, MemStore::new(4096));
    let outs = answers(&out, &lines.map(String::from)).unwrap();
    assert_eq!(
        outs[..6],
        [
            "error: NOPE.TXT: no such file or directory",
            "error: NOPE: no such file or directory",
            "error: averyverylongname.txt: not an 8.3 name (up to 8 characters, a dot, up to 3)",
            "error: DIR: is a directory",
            "error: HELLO.TXT: is not a directory",
            "inner",
        ]
    );
    // Not a FAT volume at all: the hint is for that.
    assert!(
        outs[6].contains("is it a FAT16/FAT32 volume?"),
        "{}",
        outs[6]
    );
}

/// Regression: `config set` joined the words of the line again with single spaces (a
/// quoted `"two  words"` was saved as `"two words"`), and took a comment (`config set #=x`)
/// as a change that changed nothing.
#[cfg(feature = "config")]
#[test]
fn config_set_keeps_what_was_typed_and_refuses_a_comment() {
    let lines = [
        "config set product=\"two  words\"",
        "config  set   serial = \" x \"",
        "config set #=x",
        "config set # ums=ram1",
        "config",
    ];
    let (out, _) = session(&lines);
    let outs = answers(&out, &lines.map(String::from)).unwrap();
    assert!(outs[0].starts_with("changed ("), "{out}");
    assert!(outs[1].starts_with("changed ("), "{out}");
    assert_eq!(outs[2], "error: write KEY=VALUE, e.g. config set acm=off");
    assert_eq!(outs[3], outs[2]);
    assert!(outs[4].contains("\nproduct=\"two  words\"\n"), "{out}");
    assert!(outs[4].contains("\nserial=\" x \""), "{out}");
    assert!(outs[4].starts_with("ums=ram0,ram1\n"), "unchanged: {out}");
}
