//! The text syntax: valid configurations, errors with their exact messages, canonical printing.

use lunbox_config::{Config, Entry, Expected, Flag, Flags, List, ParseError, parse, parse_bytes};

/// The message for `text`, which must not parse.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("{text:?} parsed: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_issue_examples() {
    let c = parse("ums=sd0.1(data),ram0(scratch)ro\ndfu=sd0.2(rootfs)s,firmware(fw)r\n").unwrap();
    assert_eq!(
        c.ums,
        [
            Entry::new("sd0.1").named("data"),
            Entry::new("ram0").named("scratch").flag(Flag::ReadOnly),
        ]
    );
    assert_eq!(
        c.dfu,
        [
            Entry::new("sd0.2").named("rootfs").flag(Flag::Safe),
            Entry::new("firmware").named("fw").flag(Flag::Readback),
        ]
    );
    assert_eq!(
        Config {
            ums: Vec::new(),
            dfu: Vec::new(),
            ..c
        },
        Config::default()
    );
}

#[test]
fn empty_text_is_the_default() {
    let d = Config::default();
    assert_eq!(parse("").unwrap(), d);
    assert_eq!(parse("\n\n   \n# nothing\n\t# indented\n").unwrap(), d);
    assert_eq!(d.vid, 0x1209);
    assert_eq!(d.pid, 0x0001);
    assert_eq!(d.manufacturer, "lunbox");
    assert_eq!(d.product, "lunbox USB gadget");
    assert!(d.acm && d.autostart);
    assert!(d.ums.is_empty() && d.dfu.is_empty() && d.serial.is_none());
}

#[test]
fn every_key() {
    let text = "\u{feff}# lunbox configuration\r\n\
                ums = sd0 , img0()fixed,ram1(x)rofixed ,sd0.rootfs()fixedro # LUNs\r\n\
                dfu=firmware()sr,sd0.1(a.b-c_D9)rs\n\
                acm=off\n\
                autostart = off   # wait for the console\n\
                vid=4617\n\
                pid=0XBEEF\n\
                manufacturer=ACME#comment\n\
                product=\"a \\\"quoted\\\" \\\\ string\\twith\\n\\r escapes \\u{e9}\\u{1F600} and # hash\"\n\
                serial=\t\"\"\n";
    let c = parse(text).unwrap();
    assert_eq!(
        c,
        Config {
            ums: vec![
                Entry::new("sd0"),
                Entry::new("img0").flag(Flag::Fixed),
                Entry::new("ram1")
                    .named("x")
                    .flag(Flag::ReadOnly)
                    .flag(Flag::Fixed),
                Entry::new("sd0.rootfs")
                    .flag(Flag::Fixed)
                    .flag(Flag::ReadOnly),
            ],
            dfu: vec![
                Entry::new("firmware")
                    .with_flags([Flag::Safe, Flag::Readback].into_iter().collect()),
                Entry::new("sd0.1")
                    .named("a.b-c_D9")
                    .flag(Flag::Readback)
                    .flag(Flag::Safe),
            ],
            acm: false,
            autostart: false,
            vid: 4617,
            pid: 0xbeef,
            manufacturer: "ACME".into(),
            product: "a \"quoted\" \\ string\twith\n\r escapes \u{e9}\u{1F600} and # hash".into(),
            serial: Some(String::new()),
        }
    );
}

#[test]
fn empty_lists_and_numbers() {
    let c = parse("ums=\ndfu=   # none\nvid=0\npid=65535\n").unwrap();
    assert!(c.ums.is_empty() && c.dfu.is_empty());
    assert_eq!((c.vid, c.pid), (0, 0xffff));
    assert_eq!(parse("vid=0x0000ffff").unwrap().vid, 0xffff);
    assert_eq!(parse("vid=000123").unwrap().vid, 123);
    assert_eq!(
        parse("serial=LB-0001/x=y").unwrap().serial.as_deref(),
        Some("LB-0001/x=y")
    );
    assert_eq!(
        parse("product=\u{e9}t\u{e9}").unwrap().product,
        "\u{e9}t\u{e9}"
    );
}

#[test]
fn canonical_text() {
    let c = parse("ums=sd0.1(data),ram0(scratch)ro\ndfu=sd0.2(rootfs)s,firmware(fw)r\n").unwrap();
    assert_eq!(
        c.to_text(),
        "ums=sd0.1(data),ram0(scratch)ro\n\
         dfu=sd0.2(rootfs)s,firmware(fw)r\n\
         acm=on\n\
         autostart=on\n\
         vid=0x1209\n\
         pid=0x0001\n\
         manufacturer=\"lunbox\"\n\
         product=\"lunbox USB gadget\"\n"
    );
    assert_eq!(c.to_string(), c.to_text());
    let c = Config {
        ums: vec![
            Entry::new("sd0").flag(Flag::Fixed).flag(Flag::ReadOnly),
            Entry::new("img0"),
        ],
        dfu: vec![Entry::new("firmware").flag(Flag::Readback).flag(Flag::Safe)],
        acm: false,
        autostart: false,
        vid: 0xabc,
        pid: 0xffff,
        manufacturer: String::new(),
        product: "\"q\" \\ \t\n\r\u{0}\u{7f}\u{85}\u{e9}".into(),
        serial: Some("#1".into()),
    };
    let text = c.to_text();
    assert_eq!(
        text,
        "ums=sd0()rofixed,img0\n\
         dfu=firmware()sr\n\
         acm=off\n\
         autostart=off\n\
         vid=0x0abc\n\
         pid=0xffff\n\
         manufacturer=\"\"\n\
         product=\"\\\"q\\\" \\\\ \\t\\n\\r\\u{0}\\u{7f}\\u{85}\u{e9}\"\n\
         serial=\"#1\"\n"
    );
    assert_eq!(parse(&text).unwrap(), c);
    assert_eq!(Entry::new("sd0.1").named("x").to_string(), "sd0.1(x)");
    assert_eq!(
        Flags::EMPTY
            .with(Flag::Readback)
            .with(Flag::Safe)
            .to_string(),
        "sr"
    );
}

#[test]
fn the_error_fields() {
    assert_eq!(
        parse("acm=on\nums=sd0.1(data,ram0\n"),
        Err(ParseError {
            line: 2,
            column: 15,
            expected: Expected::CloseParen,
            found: "','".into(),
        })
    );
    assert_eq!(
        parse("dfu=sd0(x)ro").unwrap_err().expected,
        Expected::Flag(List::Dfu)
    );
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        // Keys.
        (
            "foo=1",
            "line 1, column 1: expected a key (ums, dfu, acm, autostart, vid, pid, manufacturer, \
             product, serial), found 'foo'",
        ),
        (
            "  UMS=sd0",
            "line 1, column 3: expected a key (ums, dfu, acm, autostart, vid, pid, manufacturer, \
             product, serial), found 'UMS'",
        ),
        (
            "=sd0",
            "line 1, column 1: expected a key (ums, dfu, acm, autostart, vid, pid, manufacturer, \
             product, serial), found '='",
        ),
        (
            "acm=on\n\n  acm=off",
            "line 3, column 3: expected each key at most once, found 'acm' again (first on line 1)",
        ),
        (
            "acm on",
            "line 1, column 5: expected '=' after the key, found 'o'",
        ),
        (
            "vid",
            "line 1, column 4: expected '=' after the key, found the end of the line",
        ),
        (
            "vid:0x1",
            "line 1, column 4: expected '=' after the key, found ':'",
        ),
        // Lists.
        (
            "ums=sd0.1(data,ram0",
            "line 1, column 15: expected ')' after the name, found ','",
        ),
        (
            "ums=sd0.1(data",
            "line 1, column 15: expected ')' after the name, found the end of the line",
        ),
        (
            "ums=sd0( x)",
            "line 1, column 9: expected a name (A-Z a-z 0-9 _ - .) or ')', found ' '",
        ),
        (
            "ums=sd0,",
            "line 1, column 9: expected a device name (such as sd0, sd0.1 or ram0), found the \
             end of the line",
        ),
        (
            "ums=sd0,,ram0",
            "line 1, column 9: expected a device name (such as sd0, sd0.1 or ram0), found ','",
        ),
        (
            "ums=/dev/sda",
            "line 1, column 5: expected a device name (such as sd0, sd0.1 or ram0), found '/'",
        ),
        (
            "ums=Sd0",
            "line 1, column 5: expected a device name (such as sd0, sd0.1 or ram0), found 'Sd0'",
        ),
        (
            "ums=ram0, sd0..1",
            "line 1, column 11: expected a device name (such as sd0, sd0.1 or ram0), found \
             'sd0..1'",
        ),
        (
            "ums=sd0.",
            "line 1, column 5: expected a device name (such as sd0, sd0.1 or ram0), found 'sd0.'",
        ),
        (
            "ums=0sd",
            "line 1, column 5: expected a device name (such as sd0, sd0.1 or ram0), found '0sd'",
        ),
        (
            "ums=sd0 ram0",
            "line 1, column 9: expected ',' or the end of the line, found 'r'",
        ),
        (
            "ums=sd0;ram0",
            "line 1, column 8: expected ',' or the end of the line, found ';'",
        ),
        (
            "ums=sd0 (data)",
            "line 1, column 9: expected ',' or the end of the line, found '('",
        ),
        (
            "ums=sd0.1(data)ro!",
            "line 1, column 18: expected ',' or the end of the line, found '!'",
        ),
        // Flags.
        (
            "ums=ram0(scratch)rw",
            "line 1, column 18: expected a UMS flag (ro, fixed), found 'rw'",
        ),
        (
            "ums=ram0(scratch)rox",
            "line 1, column 20: expected a UMS flag (ro, fixed), found 'x'",
        ),
        (
            "ums=ram0()s",
            "line 1, column 11: expected a UMS flag (ro, fixed), found 's'",
        ),
        (
            "dfu=sd0.2(rootfs)ro",
            "line 1, column 19: expected a DFU flag (s, r), found 'o'",
        ),
        (
            "dfu=sd0.2(rootfs)c",
            "line 1, column 18: expected a DFU flag (s, r), found 'c'",
        ),
        (
            "dfu=firmware(fw)srs",
            "line 1, column 19: expected each flag at most once, found 's' again",
        ),
        (
            "ums=ram0()roro",
            "line 1, column 13: expected each flag at most once, found 'ro' again",
        ),
        // Booleans and numbers.
        (
            "acm=yes",
            "line 1, column 5: expected 'on' or 'off', found 'yes'",
        ),
        (
            "acm=",
            "line 1, column 5: expected 'on' or 'off', found the end of the line",
        ),
        (
            "autostart=ON",
            "line 1, column 11: expected 'on' or 'off', found 'ON'",
        ),
        (
            "acm=on off",
            "line 1, column 8: expected the end of the line, found 'o'",
        ),
        (
            "vid=0x12345",
            "line 1, column 5: expected a number from 0 to 65535 (decimal, or hex with 0x), \
             found '0x12345'",
        ),
        (
            "pid=65536",
            "line 1, column 5: expected a number from 0 to 65535 (decimal, or hex with 0x), \
             found '65536'",
        ),
        (
            "pid=0x",
            "line 1, column 5: expected a number from 0 to 65535 (decimal, or hex with 0x), \
             found '0x'",
        ),
        (
            "pid=-1",
            "line 1, column 5: expected a number from 0 to 65535 (decimal, or hex with 0x), \
             found '-1'",
        ),
        (
            "pid=12ab",
            "line 1, column 5: expected a number from 0 to 65535 (decimal, or hex with 0x), \
             found '12ab'",
        ),
        (
            "pid=",
            "line 1, column 5: expected a number from 0 to 65535 (decimal, or hex with 0x), \
             found the end of the line",
        ),
        (
            "vid=0x1209 0x0001",
            "line 1, column 12: expected the end of the line, found '0'",
        ),
        // Strings.
        (
            "product=lunbox USB gadget",
            "line 1, column 16: expected the end of the line (quote a value that has spaces), \
             found 'U'",
        ),
        (
            "serial=",
            "line 1, column 8: expected a quoted string or a word, found the end of the line",
        ),
        (
            "serial=\\x",
            "line 1, column 8: expected a quoted string or a word, found '\\'",
        ),
        (
            "product=\"lunbox",
            "line 1, column 16: expected '\"' to close the string, found the end of the line",
        ),
        (
            "product=\"a\" b",
            "line 1, column 13: expected the end of the line, found 'b'",
        ),
        (
            "product=\"a\\qb\"",
            "line 1, column 11: expected an escape (\\\" \\\\ \\n \\r \\t \\u{HEX}), found '\\q'",
        ),
        (
            "product=\"a\\",
            "line 1, column 11: expected an escape (\\\" \\\\ \\n \\r \\t \\u{HEX}), found '\\' at \
             the end of the line",
        ),
        (
            "product=\"\\u{110000}\"",
            "line 1, column 10: expected a Unicode escape: \\u{ then 1 to 6 hex digits of a \
             scalar value, then }, found '\\u{110000}'",
        ),
        (
            "product=\"\\u{d800}\"",
            "line 1, column 10: expected a Unicode escape: \\u{ then 1 to 6 hex digits of a \
             scalar value, then }, found '\\u{d800}'",
        ),
        (
            "product=\"\\u{}\"",
            "line 1, column 10: expected a Unicode escape: \\u{ then 1 to 6 hex digits of a \
             scalar value, then }, found '\\u{}'",
        ),
        (
            "product=\"\\u41\"",
            "line 1, column 10: expected a Unicode escape: \\u{ then 1 to 6 hex digits of a \
             scalar value, then }, found '\\u4'",
        ),
        (
            "product=\"\\u{0000041}\"",
            "line 1, column 10: expected a Unicode escape: \\u{ then 1 to 6 hex digits of a \
             scalar value, then }, found '\\u{0000041'",
        ),
        (
            "product=\"\\u{41\"",
            "line 1, column 10: expected a Unicode escape: \\u{ then 1 to 6 hex digits of a \
             scalar value, then }, found '\\u{41\"'",
        ),
        (
            "product=\"a\u{1}b\"",
            "line 1, column 11: expected a printable character or an escape, found '\\u{1}'",
        ),
        // Characters that are not spaces or tabs.
        (
            "acm=on\u{a0}",
            "line 1, column 5: expected 'on' or 'off', found 'on\\u{a0}'",
        ),
        (
            "acm=on\r\r\n",
            "line 1, column 5: expected 'on' or 'off', found 'on\\r'",
        ),
        // Columns count characters, not bytes.
        (
            "product=a\u{a0}b",
            "line 1, column 10: expected the end of the line (quote a value that has spaces), \
             found '\\u{a0}'",
        ),
        (
            "product=\"\u{e9}\u{e9}\" x",
            "line 1, column 14: expected the end of the line, found 'x'",
        ),
        // Long words are shortened.
        (
            "autostart=abcdefghijklmnopqrstuvwxyz",
            "line 1, column 11: expected 'on' or 'off', found 'abcdefghijklmnopqrstuvwx…'",
        ),
    ];
    let mut failed = Vec::new();
    for (text, message) in cases {
        let got = error(text);
        if got != *message {
            failed.push(format!("{text:?}\n  got:  {got}\n  want: {message}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn bytes_must_be_utf8() {
    assert_eq!(
        parse_bytes(b"acm=on\nproduct=\"\xc3\xa9\xff\"")
            .unwrap_err()
            .to_string(),
        "line 2, column 11: expected UTF-8 text, found byte 0xff"
    );
    assert_eq!(
        parse_bytes(b"\xef\xbb\xbf\x80").unwrap_err().to_string(),
        "line 1, column 1: expected UTF-8 text, found byte 0x80"
    );
    assert_eq!(parse_bytes(b"vid=0x1").unwrap().vid, 1);
}

#[test]
fn a_list_on_its_own() {
    use lunbox_config::{format_list, parse_list};
    let entries = parse_list(List::Ums, " sd0.1(data), ram0(scratch)ro ").unwrap();
    assert_eq!(
        entries,
        [
            Entry::new("sd0.1").named("data"),
            Entry::new("ram0").named("scratch").flag(Flag::ReadOnly),
        ]
    );
    assert_eq!(format_list(&entries), "sd0.1(data),ram0(scratch)ro");
    assert_eq!(parse_list(List::Dfu, ""), Ok(Vec::new()));
    assert_eq!(
        parse_list(List::Dfu, "firmware(fw)r # x")
            .unwrap_err()
            .to_string(),
        "line 1, column 15: expected ',' or the end of the line, found '#'"
    );
    assert_eq!(
        parse_list(List::Dfu, "#").unwrap_err().to_string(),
        "line 1, column 1: expected a device name (such as sd0, sd0.1 or ram0), found '#'"
    );
    assert_eq!(
        parse_list(List::Ums, "img0,ram0\nsd0")
            .unwrap_err()
            .to_string(),
        "line 1, column 10: expected ',' or the end of the line, found '\\n'"
    );
}

/// The example file and the error messages in README.md are what the parser does.
#[test]
fn readme_examples() {
    let readme = include_str!("../README.md");
    let blocks: Vec<&str> = readme
        .split("```text\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let example = parse(blocks[0]).unwrap();
    assert_eq!(
        (
            example.ums.len(),
            example.dfu.len(),
            example.serial.as_deref()
        ),
        (2, 2, Some("LB0001"))
    );
    let texts = [
        "ums=sd0.1(data,ram0",
        "acm=on\ndfu=sd0.2(rootfs)ro",
        "\n\n\nacm=yes",
        "\n\n\n\n\n\n\nproduct=lunbox USB gadget",
        "\n\nacm=on\n\n\n\n\n\nacm=off",
    ];
    let messages: Vec<String> = texts.iter().map(|t| error(t) + "\n").collect();
    assert_eq!(messages.concat(), blocks[1]);
}
