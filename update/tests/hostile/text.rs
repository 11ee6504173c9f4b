//! The text parsers next to the image format: versions, board ids and key files.

use lunbox_update::image::{BOARD_LEN, Board, Version};
use lunbox_update::keys::{self, PUBLIC_TAG, SECRET_TAG};

/// Any bytes as a version, a board id and a key file: no panic, and whatever parses is what
/// the text says.
pub(crate) fn check(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        check_version(s);
        check_board(s);
    }
    let public = keys::parse(data, PUBLIC_TAG.as_bytes());
    let secret = keys::parse(data, SECRET_TAG.as_bytes());
    let lower = data.to_ascii_lowercase();
    for key in [public, secret].into_iter().flatten() {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            lower.windows(64).any(|w| w == hex.as_bytes()),
            "key {hex} is not in {data:?}"
        );
    }
    // A bare key line is both; a tagged one only one of them.
    if let (Some(a), Some(b)) = (public, secret) {
        assert_eq!(a, b);
    }
}

/// A version is its three numbers, up to a `-` or `+` suffix, and prints back to itself.
fn check_version(s: &str) {
    let Some(v) = Version::parse(s) else { return };
    let numbers = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<Option<u32>> = numbers.split('.').map(|p| p.parse().ok()).collect();
    assert_eq!(
        parts,
        [Some(v.major), Some(v.minor), Some(v.patch)],
        "{s:?}"
    );
    assert_eq!(Version::parse(&v.to_string()), Some(v));
}

/// A board id is the text itself, NUL-padded.
fn check_board(s: &str) {
    let Some(b) = Board::new(s) else { return };
    assert!(!s.is_empty() && s.len() < BOARD_LEN, "{s:?}");
    assert_eq!(b.as_str(), s);
    assert_eq!(&b.field()[..s.len()], s.as_bytes());
    assert!(b.field()[s.len()..].iter().all(|&c| c == 0));
}
