//! Fuzz the text syntax: any bytes either fail with an error inside the text, or parse to a
//! configuration whose canonical text parses back to it (and prints the same again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunbox_config::{parse, parse_bytes, validate};

fuzz_target!(|data: &[u8]| {
    match parse_bytes(data) {
        Ok(config) => {
            let text = config.to_text();
            let again = parse(&text).expect("the canonical text parses");
            assert_eq!(again, config, "round trip of {text:?}");
            assert_eq!(again.to_text(), text);
            // Validation never panics, whatever the registry says.
            let _ = validate(&config, |name| name.len() % 2 == 0);
        }
        Err(e) => {
            // The error points at a line of the input, at most one column past its end.
            let lines = data.split(|b| *b == b'\n').count();
            assert!(e.line >= 1 && e.line <= lines, "{e}");
            assert!(e.column >= 1, "{e}");
            if let Ok(text) = std::str::from_utf8(data) {
                let line = text.split('\n').nth(e.line - 1).unwrap();
                let len = line.trim_start_matches('\u{feff}').chars().count();
                assert!(e.column <= len + 1, "{e}");
            }
            let _ = e.to_string();
        }
    }
});
