//! Firmware update: signed images ([`image`]), A/B slots with a try-once state record
//! ([`slots`]), the `firmware` DFU target writing the inactive slot ([`sink`]), the early
//! boot that runs the slot the record chooses ([`boot`]), the `fw` console commands
//! ([`console`]) and the `lunbox image` host tools ([`tool`]). docs/firmware-update.md
//! describes the design.

pub(crate) mod boot;
pub(crate) mod console;
pub(crate) mod image;
pub(crate) mod keys;
pub(crate) mod sink;
pub(crate) mod slots;
pub(crate) mod tool;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use image::{Board, Version};
use slots::Slot;

/// This build's firmware version as text: `LUNBOX_FW_VERSION` at build time, else the
/// package version.
pub(crate) const VERSION_STR: &str = match option_env!("LUNBOX_FW_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// This build's firmware version.
pub(crate) const VERSION: Version = match Version::parse(VERSION_STR) {
    Some(v) => v,
    None => panic!("LUNBOX_FW_VERSION must be a version X.Y.Z"),
};

/// The board this build runs on: `sandbox-` and the CPU architecture (`sandbox-x86_64`).
pub(crate) const BOARD: Board = match Board::concat("sandbox-", std::env::consts::ARCH) {
    Some(b) => b,
    None => panic!("no board id for this architecture"),
};

/// What precedes the identity record in a binary ([`IDENTITY`]).
pub(crate) const IDENTITY_TAG: &[u8] = b"\0lunbox-fw-id:";
/// Size of the identity record.
const IDENTITY_LEN: usize = 96;

/// This build's identity as it appears in its executable: `\0lunbox-fw-id:BOARD;VERSION\0`,
/// zero-padded. `lunbox image sign` reads it from the payload for the default `--version`
/// and `--board`.
pub(crate) static IDENTITY: [u8; IDENTITY_LEN] = identity();

const fn identity() -> [u8; IDENTITY_LEN] {
    let mut out = [0u8; IDENTITY_LEN];
    let mut n = 0;
    let parts: [&[u8]; 4] = [IDENTITY_TAG, BOARD.field(), b";", VERSION_STR.as_bytes()];
    let mut p = 0;
    while p < parts.len() {
        let part = parts[p];
        let mut i = 0;
        while i < part.len() && !(p == 1 && part[i] == 0) {
            assert!(n < IDENTITY_LEN - 1, "LUNBOX_FW_VERSION is too long");
            out[n] = part[i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    out
}

/// The identity records in `binary`: (board, version) of each well-formed one.
pub(crate) fn find_identity(binary: &[u8]) -> Vec<(Board, Version)> {
    let mut found = Vec::new();
    for start in tag_positions(binary) {
        let rest = &binary[start + IDENTITY_TAG.len()..];
        let rest = &rest[..rest.len().min(IDENTITY_LEN)];
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(&rest[..end]) else {
            continue;
        };
        let Some((board, version)) = text.split_once(';') else {
            continue;
        };
        if let (Some(b), Some(v)) = (Board::new(board), Version::parse(version)) {
            found.push((b, v));
        }
    }
    found
}

/// Where [`IDENTITY_TAG`] starts in `binary`. Looks at eight bytes at a time for its second
/// byte (a rarer one than its first, NUL), so that even an unoptimised build scans a large
/// executable quickly.
fn tag_positions(binary: &[u8]) -> Vec<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let probe = ONES * u64::from(IDENTITY_TAG[1]);
    let mut out = Vec::new();
    let mut look = |base: usize, bytes: &[u8]| {
        for (k, &b) in bytes.iter().enumerate() {
            let i = base + k;
            if b == IDENTITY_TAG[1] && i >= 1 && binary[i - 1..].starts_with(IDENTITY_TAG) {
                out.push(i - 1);
            }
        }
    };
    let words = binary.chunks_exact(8);
    let tail = words.remainder();
    for (w, word) in words.enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_ne_bytes(bytes) ^ probe;
        // Some byte of x is zero: some byte of the word is the probe byte.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            look(w * 8, word);
        }
    }
    look(binary.len() - tail.len(), tail);
    out
}

/// Where this program keeps its state (set by [`boot::start`]).
static STATE_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
/// The slot this program runs from (`None`: the built-in program).
static RUNNING: OnceLock<Option<Slot>> = OnceLock::new();
/// The console's `fw allow-downgrade` switch (off at every start).
static ALLOW_DOWNGRADE: AtomicBool = AtomicBool::new(false);

/// The slot this program was started from, `None` for the built-in program.
pub(crate) fn running() -> Option<Slot> {
    RUNNING.get().copied().flatten()
}

/// The state directory given at start.
pub(crate) fn state_dir() -> Option<&'static std::path::Path> {
    STATE_DIR.get().map(|p| p.as_path())
}

/// Whether the console allowed downgrades.
pub(crate) fn downgrades_allowed() -> bool {
    ALLOW_DOWNGRADE.load(Ordering::Relaxed)
}

/// Allow or refuse downgrades until the next start.
pub(crate) fn allow_downgrades(on: bool) {
    ALLOW_DOWNGRADE.store(on, Ordering::Relaxed);
}

/// What the console's `version` shows.
pub(crate) fn version_line() -> String {
    // Reading the identity keeps it in the executable for `lunbox image sign`.
    let id = std::hint::black_box(&IDENTITY);
    debug_assert!(id.starts_with(IDENTITY_TAG));
    let from = match running() {
        None => String::from("built-in program"),
        Some(s) => format!("slot {s}"),
    };
    format!("lunbox {VERSION_STR} ({BOARD}, {from})")
}

/// Log a line to stderr.
pub(crate) fn log(line: &str) {
    eprintln!("lunbox: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_found_in_a_binary() {
        let mut binary = b"junk\0lunbox-fw-id:\x01\x02 more junk".to_vec();
        binary.extend_from_slice(&IDENTITY);
        binary.extend_from_slice(b"\0lunbox-fw-id:teensy41;9.9.9\0");
        binary.extend_from_slice(b"\0lunbox-fw-id:Bad;1.0.0\0\0lunbox-fw-id:x;1.0\0");
        let found = find_identity(&binary);
        assert_eq!(
            found,
            vec![
                (BOARD, VERSION),
                (
                    Board::new("teensy41").unwrap(),
                    Version::parse("9.9.9").unwrap()
                )
            ]
        );
        assert!(version_line().starts_with(&format!("lunbox {VERSION_STR} (sandbox-")));
        // At every alignment, and at the very end.
        let record = b"\0lunbox-fw-id:teensy41;1.2.3\0";
        for offset in 0..20 {
            let mut binary = vec![0x6c; offset];
            binary.extend_from_slice(record);
            assert_eq!(find_identity(&binary).len(), 1, "offset {offset}");
            assert_eq!(tag_positions(&binary), vec![offset]);
        }
    }
}
