//! The public key images are checked with, and the key file format.
//!
//! Key files are text: `#` comment lines, then one line `lunbox-ed25519-secret HEX` (the
//! 32-byte Ed25519 secret key seed) or `lunbox-ed25519-public HEX` (the 32-byte public
//! key), HEX being 64 hexadecimal digits ([`parse`]; writing them is host tooling, in the
//! `lunbox` package's `lunbox image keygen`).
//!
//! The firmware (sandbox or board) checks images with [`BUILTIN`]: the public key in
//! `app/keys/dev.pub` unless the build sets `LUNBOX_FW_PUBKEY` (the contents of a `.pub`
//! file, or just its 64 hex digits) when this crate is compiled. The dev key's secret half is
//! committed next to it so anyone can sign test images: a real deployment must build with its
//! own key (docs/firmware-update.md).

/// The key line's tag in a secret key file.
pub const SECRET_TAG: &str = "lunbox-ed25519-secret";
/// The key line's tag in a public key file.
pub const PUBLIC_TAG: &str = "lunbox-ed25519-public";

/// The committed development key (public half): the lunbox package's `keys/dev.pub`.
const DEV_PUBLIC_FILE: &[u8] = include_bytes!("../../app/keys/dev.pub");

/// The development public key.
pub const DEV_PUBLIC: [u8; 32] = match parse(DEV_PUBLIC_FILE, PUBLIC_TAG.as_bytes()) {
    Some(k) => k,
    None => panic!("app/keys/dev.pub is not a lunbox public key file"),
};

/// The public key images must be signed with (built in).
pub const BUILTIN: [u8; 32] = match option_env!("LUNBOX_FW_PUBKEY") {
    Some(text) => match parse(text.as_bytes(), PUBLIC_TAG.as_bytes()) {
        Some(k) => k,
        None => panic!(
            "LUNBOX_FW_PUBKEY must hold a public key: a .pub file's contents or 64 hex digits"
        ),
    },
    None => DEV_PUBLIC,
};

/// Whether the built-in key is the development key (anyone can sign for it).
pub const BUILTIN_IS_DEV: bool = eq(&BUILTIN, &DEV_PUBLIC);

const fn eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut i = 0;
    while i < 32 {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

const fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r'
}

/// The key of a key file's text: the first line that is not blank or a `#` comment must be
/// `TAG HEX` or `HEX` (64 hex digits), with nothing else on it. `None` if it is not.
pub const fn parse(text: &[u8], tag: &[u8]) -> Option<[u8; 32]> {
    let mut i = 0;
    // Find the first meaningful line.
    loop {
        while i < text.len() && (is_space(text[i]) || text[i] == b'\n') {
            i += 1;
        }
        if i == text.len() {
            return None;
        }
        if text[i] != b'#' {
            break;
        }
        while i < text.len() && text[i] != b'\n' {
            i += 1;
        }
    }
    // An optional tag and blanks.
    if text.len() - i >= tag.len() {
        let mut matches = true;
        let mut k = 0;
        while k < tag.len() {
            if text[i + k] != tag[k] {
                matches = false;
            }
            k += 1;
        }
        if matches {
            i += tag.len();
            if i == text.len() || !is_space(text[i]) {
                return None;
            }
            while i < text.len() && is_space(text[i]) {
                i += 1;
            }
        }
    }
    // 64 hex digits, then the end of the line.
    let mut key = [0u8; 32];
    let mut n = 0;
    while n < 64 {
        if i + n >= text.len() {
            return None;
        }
        let Some(d) = hex_digit(text[i + n]) else {
            return None;
        };
        key[n / 2] = (key[n / 2] << 4) | d;
        n += 1;
    }
    i += 64;
    while i < text.len() && is_space(text[i]) {
        i += 1;
    }
    if i < text.len() && text[i] != b'\n' {
        return None;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines() {
        let public = crate::image::public_key(&[0x5a; 32]);
        let tag = PUBLIC_TAG.len();
        let mut line = [b' '; 128];
        line[..tag].copy_from_slice(PUBLIC_TAG.as_bytes());
        let hex = b"0123456789abcdef";
        for (i, b) in public.iter().enumerate() {
            line[tag + 1 + 2 * i] = hex[usize::from(b >> 4)];
            line[tag + 2 + 2 * i] = hex[usize::from(b & 15)];
        }
        let end = tag + 1 + 64;
        assert_eq!(parse(&line[..end], PUBLIC_TAG.as_bytes()), Some(public));
        // Trailing blanks, a bare key.
        assert_eq!(parse(&line, PUBLIC_TAG.as_bytes()), Some(public));
        assert_eq!(parse(&line[tag..end], PUBLIC_TAG.as_bytes()), Some(public));
        assert_eq!(parse(&line[..end], SECRET_TAG.as_bytes()), None);
        assert_eq!(parse(&line[..end - 1], PUBLIC_TAG.as_bytes()), None);
    }

    #[test]
    fn the_dev_key_pair_matches() {
        let text = include_bytes!("../../app/keys/dev.key");
        let secret = parse(text, SECRET_TAG.as_bytes()).expect("app/keys/dev.key");
        assert_eq!(crate::image::public_key(&secret), DEV_PUBLIC);
    }
}
