//! Property tests: printing round-trips, the parser's leniency (spacing, comments, order,
//! line endings) does not change the result, and errors point into the text.

use lunbox_config::{Config, Entry, FIRMWARE, List, parse, parse_bytes};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::subsequence;

fn device() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9_-]{0,31}", option::of("[A-Za-z0-9_-]{1,36}")).prop_map(|(disk, part)| match part
    {
        Some(part) => format!("{disk}.{part}"),
        None => disk,
    })
}

fn entry(list: List) -> impl Strategy<Value = Entry> {
    let device = match list {
        List::Ums => device().boxed(),
        List::Dfu => prop_oneof![device(), Just(String::from(FIRMWARE))].boxed(),
    };
    (
        device,
        option::of("[A-Za-z0-9_.-]{1,32}"),
        subsequence(
            list.allowed_flags().to_vec(),
            0..=list.allowed_flags().len(),
        ),
    )
        .prop_map(|(device, name, flags)| Entry {
            device,
            name,
            flags: flags.into_iter().collect(),
        })
}

/// Strings: anything, including quotes, backslashes, control characters and non-ASCII.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[\"\\\\#\t\r\n a-z\u{0}-\u{1f}\u{7f}-\u{9f}\u{e9}\u{feff}\u{1F600}]{0,20}",
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        vec(entry(List::Ums), 0..20),
        vec(entry(List::Dfu), 0..8),
        any::<bool>(),
        any::<bool>(),
        any::<u16>(),
        any::<u16>(),
        string(),
        string(),
        option::of(string()),
    )
        .prop_map(
            |(ums, dfu, acm, autostart, vid, pid, manufacturer, product, serial)| Config {
                ums,
                dfu,
                acm,
                autostart,
                vid,
                pid,
                manufacturer,
                product,
                serial,
            },
        )
}

/// How to respell the canonical text without changing its meaning.
#[derive(Debug, Clone)]
struct Noise {
    order: Vec<usize>,
    spaces: Vec<u8>,
    comments: Vec<bool>,
    blank_lines: Vec<bool>,
    crlf: bool,
    decimal: bool,
}

fn noise() -> impl Strategy<Value = Noise> {
    (
        Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
        vec(0u8..4, 200),
        vec(any::<bool>(), 10),
        vec(any::<bool>(), 10),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(order, spaces, comments, blank_lines, crlf, decimal)| Noise {
                order,
                spaces,
                comments,
                blank_lines,
                crlf,
                decimal,
            },
        )
}

/// The canonical text respelled: lines in another order, spaces and tabs around `=` and `,`,
/// comments, blank lines, `\r\n`, decimal numbers.
fn respell(config: &Config, noise: &Noise) -> String {
    let mut spaces = noise.spaces.iter().cycle();
    let mut pad = || match spaces.next() {
        Some(0) | None => "",
        Some(1) => " ",
        Some(2) => "\t",
        Some(_) => "  \t ",
    };
    let text = config.to_text();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::from("# respelled\n");
    for (n, &i) in noise.order.iter().enumerate() {
        let Some(line) = lines.get(i) else { continue };
        let (key, value) = line.split_once('=').unwrap();
        let value = match key {
            "ums" | "dfu" => value
                .split(',')
                .filter(|e| !e.is_empty())
                .map(|e| format!("{}{e}{}", pad(), pad()))
                .collect::<Vec<_>>()
                .join(","),
            "vid" | "pid" if noise.decimal => {
                u16::from_str_radix(&value[2..], 16).unwrap().to_string()
            }
            _ => value.to_string(),
        };
        out += &format!("{}{key}{}={}{value}{}", pad(), pad(), pad(), pad());
        if noise.comments[n] {
            out += &format!("{}# comment, with \"quotes\" = and ,", [" ", "\t"][n % 2]);
        }
        out += if noise.crlf { "\r\n" } else { "\n" };
        if noise.blank_lines[n] {
            out += pad();
            out += "\n";
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printing_round_trips(config in config()) {
        let text = config.to_text();
        prop_assert_eq!(parse(&text), Ok(config.clone()));
        prop_assert_eq!(parse_bytes(text.as_bytes()), Ok(config));
    }

    #[test]
    fn respelling_does_not_change_the_meaning(config in config(), noise in noise()) {
        let text = respell(&config, &noise);
        prop_assert_eq!(parse(&text), Ok(config), "{}", text);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Whatever the text, a parse error points at a line of it, at most one past its end.
    #[test]
    fn errors_point_into_the_text(text in "[a-z=,()\"\\\\# \t\n0-9.x\u{e9}]{0,60}") {
        match parse(&text) {
            Ok(config) => prop_assert_eq!(parse(&config.to_text()), Ok(config)),
            Err(e) => {
                let line = text.split('\n').nth(e.line - 1);
                prop_assert!(line.is_some(), "{e}");
                let len = line.unwrap().trim_end_matches('\r').chars().count();
                prop_assert!(e.column >= 1 && e.column <= len + 1, "{}: {:?}", e, text);
            }
        }
    }
}
