//! The signed firmware image: a 128-byte header, the payload, and an Ed25519 signature over
//! both. The byte layout is documented in docs/firmware-update.md ("Image format"); this
//! file is its definition. The sandbox (`app/src/update/`) and the board's `firmware` DFU
//! target (the `sink` module) check images with the same code.
//!
//! Parsing and verification use only `core`, `sha2` and `ed25519-dalek` (both without
//! `std` or precomputed tables), so the same code checks an image on the MCU. An image in one
//! piece of memory is checked with [`verify`]; one whose parts are elsewhere (the board's
//! slot holds the payload first and the header and signature in a trailer) is fed to a
//! [`Verifier`] piece by piece: the same checks, in the same order, with the same errors
//! ([`verify`] is built on it). Signing (`sign`, feature `sign`) is for tools and tests
//! and needs `alloc` (`Vec`).

use core::fmt;

use ed25519_dalek::{Signature, SigningKey, StreamVerifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The first eight bytes of every image.
pub const MAGIC: [u8; 8] = *b"LUNBOXFW";
/// The header layout described here.
pub const FORMAT: u16 = 1;
/// Header length in bytes (the payload starts here).
pub const HEADER_LEN: usize = 128;
/// Ed25519 signature length (it follows the payload).
pub const SIGNATURE_LEN: usize = 64;
/// Size of the board id field (ASCII, NUL-padded; at most 31 characters).
pub const BOARD_LEN: usize = 32;
/// Header flag: this image may replace a newer firmware (signed into the image).
pub const FLAG_ALLOW_DOWNGRADE: u32 = 1;

/// Header field offsets.
mod at {
    pub(super) const MAGIC: usize = 0;
    pub(super) const FORMAT: usize = 8;
    pub(super) const HEADER_LEN: usize = 10;
    pub(super) const FLAGS: usize = 12;
    pub(super) const VERSION: usize = 16;
    pub(super) const RESERVED0: usize = 28;
    pub(super) const BOARD: usize = 32;
    pub(super) const PAYLOAD_LEN: usize = 64;
    pub(super) const SHA256: usize = 72;
    pub(super) const RESERVED1: usize = 104;
}

/// A firmware version: major.minor.patch, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Incompatible changes.
    pub major: u32,
    /// Features.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

impl Version {
    /// `X.Y.Z`, optionally followed by a `-` or `+` suffix that is ignored (so
    /// `CARGO_PKG_VERSION` values like `0.2.0-rc1` parse); `None` for anything else.
    pub const fn parse(s: &str) -> Option<Version> {
        let b = s.as_bytes();
        let mut parts = [0u32; 3];
        let mut part = 0;
        let mut digits = 0;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_digit() {
                let Some(v) = parts[part].checked_mul(10) else {
                    return None;
                };
                let Some(v) = v.checked_add((c - b'0') as u32) else {
                    return None;
                };
                parts[part] = v;
                digits += 1;
            } else if c == b'.' && part < 2 && digits > 0 {
                part += 1;
                digits = 0;
            } else if (c == b'-' || c == b'+') && part == 2 && digits > 0 && i + 1 < b.len() {
                break;
            } else {
                return None;
            }
            i += 1;
        }
        if part != 2 || digits == 0 {
            return None;
        }
        Some(Version {
            major: parts[0],
            minor: parts[1],
            patch: parts[2],
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A board id: 1–31 characters of `a-z 0-9 - _ .`, stored NUL-padded in 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Board([u8; BOARD_LEN]);

impl Board {
    /// `name` as a board id, if it is one.
    pub const fn new(name: &str) -> Option<Board> {
        Board::concat(name, "")
    }

    /// `prefix` followed by `suffix` as a board id, if that is one.
    pub const fn concat(prefix: &str, suffix: &str) -> Option<Board> {
        let (a, b) = (prefix.as_bytes(), suffix.as_bytes());
        let len = a.len() + b.len();
        if len == 0 || len >= BOARD_LEN {
            return None;
        }
        let mut field = [0u8; BOARD_LEN];
        let mut i = 0;
        while i < len {
            let c = if i < a.len() { a[i] } else { b[i - a.len()] };
            if !(c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'-'
                || c == b'_'
                || c == b'.')
            {
                return None;
            }
            field[i] = c;
            i += 1;
        }
        Some(Board(field))
    }

    /// The board id of a header field, if it is a valid one.
    fn from_field(field: &[u8; BOARD_LEN]) -> Option<Board> {
        let len = field.iter().position(|&c| c == 0)?;
        if field[len..].iter().any(|&c| c != 0) {
            return None;
        }
        let name = core::str::from_utf8(&field[..len]).ok()?;
        Board::new(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&c| c == 0).unwrap_or(BOARD_LEN);
        core::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }

    /// The 32-byte field.
    pub const fn field(&self) -> &[u8; BOARD_LEN] {
        &self.0
    }
}

impl fmt::Debug for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Flags ([`FLAG_ALLOW_DOWNGRADE`]).
    pub flags: u32,
    /// The firmware version of the payload.
    pub version: Version,
    /// The board the payload is built for.
    pub board: Board,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// SHA-256 of the payload.
    pub sha256: [u8; 32],
}

/// Why an image is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than a header.
    TooShort,
    /// Not a lunbox firmware image.
    Magic,
    /// A format version this firmware does not know.
    Format(u16),
    /// A header that breaks the format: wrong header length, unknown flags, non-zero
    /// reserved bytes, an invalid board id field.
    Header,
    /// The image is not header + payload length + signature long (truncated, or with
    /// trailing bytes).
    Length {
        /// What the header makes it.
        expected: u64,
        /// What it is.
        actual: u64,
    },
    /// The payload's SHA-256 is not the header's.
    Hash,
    /// The signature does not verify with the key.
    Signature,
    /// Built for another board.
    Board,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::TooShort => write!(f, "shorter than an image header ({HEADER_LEN} bytes)"),
            ImageError::Magic => f.write_str("not a lunbox firmware image (bad magic)"),
            ImageError::Format(v) => {
                write!(f, "unknown image format {v} (this firmware reads {FORMAT})")
            }
            ImageError::Header => f.write_str("malformed image header"),
            ImageError::Length { expected, actual } => write!(
                f,
                "image length {actual} bytes, the header makes it {expected} (truncated or trailing data)"
            ),
            ImageError::Hash => f.write_str("payload SHA-256 does not match the header"),
            ImageError::Signature => f.write_str("signature does not verify with the key"),
            ImageError::Board => f.write_str("image is for another board"),
        }
    }
}

impl Header {
    /// Parse the first [`HEADER_LEN`] bytes of an image: magic, format, header length,
    /// flags, reserved bytes and the board id field must be well formed. Authenticates
    /// nothing: see [`verify`].
    pub fn parse(bytes: &[u8]) -> Result<Header, ImageError> {
        let h: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(ImageError::TooShort)?;
        if h[at::MAGIC..at::MAGIC + 8] != MAGIC {
            return Err(ImageError::Magic);
        }
        let format = u16::from_le_bytes([h[at::FORMAT], h[at::FORMAT + 1]]);
        if format != FORMAT {
            return Err(ImageError::Format(format));
        }
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let header_len = u16::from_le_bytes([h[at::HEADER_LEN], h[at::HEADER_LEN + 1]]);
        let flags = u32_at(at::FLAGS);
        let reserved = h[at::RESERVED0..at::BOARD]
            .iter()
            .chain(&h[at::RESERVED1..HEADER_LEN]);
        if usize::from(header_len) != HEADER_LEN
            || flags & !FLAG_ALLOW_DOWNGRADE != 0
            || reserved.into_iter().any(|&b| b != 0)
        {
            return Err(ImageError::Header);
        }
        let mut field = [0u8; BOARD_LEN];
        field.copy_from_slice(&h[at::BOARD..at::BOARD + BOARD_LEN]);
        let board = Board::from_field(&field).ok_or(ImageError::Header)?;
        let mut len = [0u8; 8];
        len.copy_from_slice(&h[at::PAYLOAD_LEN..at::PAYLOAD_LEN + 8]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&h[at::SHA256..at::SHA256 + 32]);
        Ok(Header {
            flags,
            version: Version {
                major: u32_at(at::VERSION),
                minor: u32_at(at::VERSION + 4),
                patch: u32_at(at::VERSION + 8),
            },
            board,
            payload_len: u64::from_le_bytes(len),
            sha256,
        })
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[at::MAGIC..at::MAGIC + 8].copy_from_slice(&MAGIC);
        h[at::FORMAT..at::FORMAT + 2].copy_from_slice(&FORMAT.to_le_bytes());
        h[at::HEADER_LEN..at::HEADER_LEN + 2].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[at::FLAGS..at::FLAGS + 4].copy_from_slice(&self.flags.to_le_bytes());
        let v = self.version;
        for (i, part) in [v.major, v.minor, v.patch].into_iter().enumerate() {
            h[at::VERSION + 4 * i..at::VERSION + 4 * i + 4].copy_from_slice(&part.to_le_bytes());
        }
        h[at::BOARD..at::BOARD + BOARD_LEN].copy_from_slice(self.board.field());
        h[at::PAYLOAD_LEN..at::PAYLOAD_LEN + 8].copy_from_slice(&self.payload_len.to_le_bytes());
        h[at::SHA256..at::SHA256 + 32].copy_from_slice(&self.sha256);
        h
    }

    /// The whole image's length: header, payload and signature (saturating).
    pub fn image_len(&self) -> u64 {
        self.payload_len
            .saturating_add((HEADER_LEN + SIGNATURE_LEN) as u64)
    }

    /// Whether the image may replace a newer firmware.
    pub fn allows_downgrade(&self) -> bool {
        self.flags & FLAG_ALLOW_DOWNGRADE != 0
    }
}

/// A verified image: its header and where its payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The (now authenticated) header.
    pub header: Header,
    /// The payload.
    pub payload: &'a [u8],
}

/// Check a whole image: its structure and length, the payload's SHA-256, and the Ed25519
/// signature over header and payload with `key` (strict verification: no malleable or
/// small-order signatures or keys). The board is not checked here (see [`check_board`]).
pub fn verify<'a>(image: &'a [u8], key: &[u8; 32]) -> Result<Verified<'a>, ImageError> {
    let header = Header::parse(image)?;
    let actual = image.len() as u64;
    let expected = header.image_len();
    if actual != expected {
        return Err(ImageError::Length { expected, actual });
    }
    let signed_len = HEADER_LEN + header.payload_len as usize;
    let payload = &image[HEADER_LEN..signed_len];
    let mut head = [0u8; HEADER_LEN];
    head.copy_from_slice(&image[..HEADER_LEN]);
    let mut sig = [0u8; SIGNATURE_LEN];
    sig.copy_from_slice(&image[signed_len..]);
    let mut v = Verifier::new(&head, &sig, key)?;
    v.update(payload);
    let header = v.finish()?;
    Ok(Verified { header, payload })
}

/// Verification of an image whose header, payload and signature are not in one piece of
/// memory: [`new`](Verifier::new) with the header and the signature, [`update`](Verifier::update)
/// with the payload's bytes in order (in pieces of any size), then [`finish`](Verifier::finish).
///
/// The checks and their order are [`verify`]'s: the header's structure (at `new`), the
/// payload's length, its SHA-256, then the signature. The signature check is Ed25519's strict
/// one, as `ed25519_dalek::VerifyingKey::verify_strict` does it: a non-canonical `s` (a
/// malleable signature), a small-order `R` or a small-order (weak) key is refused; the
/// message, header then payload, is hashed as it comes (SHA-512 inside Ed25519).
pub struct Verifier {
    header: Header,
    /// SHA-256 of the payload so far.
    sha256: Sha256,
    /// Payload bytes so far.
    len: u64,
    /// The signature check with the header and the payload so far; `None` if the key or the
    /// signature cannot verify anything (a small-order key or `R`, a non-canonical `s`, a key
    /// that is not a point): [`finish`](Verifier::finish) then refuses the signature, after
    /// the length and the hash (the order of [`verify`]).
    signature: Option<StreamVerifier>,
}

impl Verifier {
    /// Starts checking the image with `header` (its first [`HEADER_LEN`] bytes) and
    /// `signature` (its last [`SIGNATURE_LEN`]) against `key`. Refuses a malformed header at
    /// once ([`Header::parse`]); everything else is checked by [`finish`](Verifier::finish).
    pub fn new(
        header: &[u8; HEADER_LEN],
        signature: &[u8; SIGNATURE_LEN],
        key: &[u8; 32],
    ) -> Result<Verifier, ImageError> {
        let parsed = Header::parse(header)?;
        let mut stream = strict_stream(signature, key);
        if let Some(s) = stream.as_mut() {
            s.update(header);
        }
        Ok(Verifier {
            header: parsed,
            sha256: Sha256::new(),
            len: 0,
            signature: stream,
        })
    }

    /// The (not yet authenticated) header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next bytes of the payload.
    pub fn update(&mut self, payload: &[u8]) {
        self.len = self.len.saturating_add(payload.len() as u64);
        self.sha256.update(payload);
        if let Some(s) = self.signature.as_mut() {
            s.update(payload);
        }
    }

    /// The payload is complete: checks its length and SHA-256 against the header, then the
    /// signature; the now authenticated header if all pass.
    pub fn finish(self) -> Result<Header, ImageError> {
        if self.len != self.header.payload_len {
            return Err(ImageError::Length {
                expected: self.header.image_len(),
                actual: self.len.saturating_add((HEADER_LEN + SIGNATURE_LEN) as u64),
            });
        }
        let digest: [u8; 32] = self.sha256.finalize().into();
        if digest != self.header.sha256 {
            return Err(ImageError::Hash);
        }
        let stream = self.signature.ok_or(ImageError::Signature)?;
        stream
            .finalize_and_verify()
            .map_err(|_| ImageError::Signature)?;
        Ok(self.header)
    }
}

/// The streamed Ed25519 check of `signature` with `key`, with `verify_strict`'s extra
/// checks done first: `None` when the key is not a point or has small order, `R` is not a
/// point or has small order, or `s` is not canonical (`verify_strict` refuses all of these).
fn strict_stream(signature: &[u8; SIGNATURE_LEN], key: &[u8; 32]) -> Option<StreamVerifier> {
    let key = VerifyingKey::from_bytes(key).ok()?;
    let sig = Signature::from_bytes(signature);
    // R as a point: `from_bytes` decompresses it as `verify_strict` does, and `is_weak` is
    // its small-order test.
    let r = VerifyingKey::from_bytes(sig.r_bytes()).ok()?;
    if key.is_weak() || r.is_weak() {
        return None;
    }
    // Refuses a non-canonical s (s >= l).
    key.verify_stream(&sig).ok()
}

/// Refuse an image built for another board than `board`.
pub fn check_board(header: &Header, board: &Board) -> Result<(), ImageError> {
    if header.board == *board {
        Ok(())
    } else {
        Err(ImageError::Board)
    }
}

/// The public key of a 32-byte Ed25519 secret key (seed).
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Build a signed image of `payload` for `board` at `version` with `secret` (an Ed25519
/// secret key seed).
#[cfg(any(test, feature = "sign"))]
pub fn sign(
    payload: &[u8],
    version: Version,
    board: Board,
    flags: u32,
    secret: &[u8; 32],
) -> alloc::vec::Vec<u8> {
    use ed25519_dalek::Signer;
    let header = Header {
        flags,
        version,
        board,
        payload_len: payload.len() as u64,
        sha256: Sha256::digest(payload).into(),
    };
    let mut image = alloc::vec::Vec::with_capacity(HEADER_LEN + payload.len() + SIGNATURE_LEN);
    image.extend_from_slice(&header.encode());
    image.extend_from_slice(payload);
    let sig = SigningKey::from_bytes(secret).sign(&image);
    image.extend_from_slice(&sig.to_bytes());
    image
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec::Vec;

    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    fn board() -> Board {
        Board::new("sandbox-x86_64").unwrap()
    }

    fn image(payload: &[u8]) -> Vec<u8> {
        sign(
            payload,
            Version::parse("1.2.3").unwrap(),
            board(),
            0,
            &SECRET,
        )
    }

    #[test]
    fn versions_parse_and_order() {
        let v = |s| Version::parse(s);
        assert_eq!(
            v("1.2.3"),
            Some(Version {
                major: 1,
                minor: 2,
                patch: 3
            })
        );
        assert_eq!(v("0.2.0-rc1"), v("0.2.0"));
        assert_eq!(v("0.2.0+build.5"), v("0.2.0"));
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.",
            ".1.2",
            "1.2.3.4",
            "a.b.c",
            "1.2.3-",
            "99999999999.0.0",
        ] {
            assert_eq!(v(bad), None, "{bad:?}");
        }
        assert!(v("0.10.0") > v("0.9.7"));
        assert!(v("1.0.0") > v("0.99.99"));
        assert_eq!(v("4294967295.0.1").unwrap().to_string(), "4294967295.0.1");
    }

    #[test]
    fn board_ids() {
        assert_eq!(board().as_str(), "sandbox-x86_64");
        assert!(Board::new("teensy41").is_some());
        for bad in ["", "Teensy", "a b", "x".repeat(32).as_str(), "ü"] {
            assert!(Board::new(bad).is_none(), "{bad:?}");
        }
        assert!(Board::new(&"x".repeat(31)).is_some());
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let img = image(&payload);
        assert_eq!(img.len(), HEADER_LEN + payload.len() + SIGNATURE_LEN);
        assert_eq!(&img[..8], b"LUNBOXFW");
        let v = verify(&img, &public_key(&SECRET)).unwrap();
        assert_eq!(v.payload, &payload[..]);
        assert_eq!(v.header.version.to_string(), "1.2.3");
        assert_eq!(v.header.board, board());
        assert_eq!(v.header.payload_len, 10_000);
        assert!(!v.header.allows_downgrade());
        assert_eq!(check_board(&v.header, &board()), Ok(()));
        assert_eq!(
            check_board(&v.header, &Board::new("teensy41").unwrap()),
            Err(ImageError::Board)
        );
        // Header encoding is the inverse of parsing.
        assert_eq!(Header::parse(&v.header.encode()).unwrap(), v.header);
        // An empty payload is an image too.
        verify(&image(&[]), &public_key(&SECRET)).unwrap();
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let img = image(b"payload bytes: a tiny firmware");
        let key = public_key(&SECRET);
        for i in 0..img.len() {
            for bit in [0x01, 0x80] {
                let mut bad = img.clone();
                bad[i] ^= bit;
                let e = verify(&bad, &key).unwrap_err();
                let expected_kind = if i < HEADER_LEN {
                    // Structure fields are refused as such; the rest fail the hash or the
                    // signature.
                    matches!(
                        e,
                        ImageError::Magic
                            | ImageError::Format(_)
                            | ImageError::Header
                            | ImageError::Length { .. }
                            | ImageError::Hash
                            | ImageError::Signature
                    )
                } else if i < img.len() - SIGNATURE_LEN {
                    e == ImageError::Hash
                } else {
                    e == ImageError::Signature
                };
                assert!(expected_kind, "byte {i} bit {bit:#x}: {e:?}");
            }
        }
    }

    #[test]
    fn tampering_wrong_keys_and_lengths_are_refused() {
        let payload = b"0123456789abcdef".repeat(100);
        let img = image(&payload);
        let key = public_key(&SECRET);
        // Payload changed, hash field recomputed: the signature catches it.
        let mut forged = img.clone();
        forged[HEADER_LEN] ^= 1;
        let digest: [u8; 32] =
            Sha256::digest(&forged[HEADER_LEN..HEADER_LEN + payload.len()]).into();
        forged[at::SHA256..at::SHA256 + 32].copy_from_slice(&digest);
        assert_eq!(verify(&forged, &key), Err(ImageError::Signature));
        // A version bump in the header.
        let mut bumped = img.clone();
        bumped[at::VERSION] += 1;
        assert_eq!(verify(&bumped, &key), Err(ImageError::Signature));
        // Another key.
        assert_eq!(
            verify(&img, &public_key(&[8; 32])),
            Err(ImageError::Signature)
        );
        // Truncated anywhere, or with trailing bytes.
        for cut in [0, 1, 64, HEADER_LEN - 1] {
            assert_eq!(verify(&img[..cut], &key), Err(ImageError::TooShort));
        }
        for cut in [HEADER_LEN, HEADER_LEN + 1, img.len() - 1] {
            assert!(
                matches!(verify(&img[..cut], &key), Err(ImageError::Length { .. })),
                "cut at {cut}"
            );
        }
        let mut long = img.clone();
        long.push(0);
        assert!(matches!(
            verify(&long, &key),
            Err(ImageError::Length { .. })
        ));
        // Unknown flags and formats.
        let mut flags = img.clone();
        flags[at::FLAGS] |= 2;
        assert_eq!(verify(&flags, &key), Err(ImageError::Header));
        let mut format = img.clone();
        format[at::FORMAT] = 2;
        assert_eq!(verify(&format, &key), Err(ImageError::Format(2)));
        // A payload length that would overflow.
        let mut huge = img.clone();
        huge[at::PAYLOAD_LEN..at::PAYLOAD_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            verify(&huge, &key),
            Err(ImageError::Length { .. })
        ));
    }

    #[test]
    fn the_downgrade_flag_is_signed() {
        let img = sign(
            b"x",
            Version::parse("0.0.1").unwrap(),
            board(),
            FLAG_ALLOW_DOWNGRADE,
            &SECRET,
        );
        let v = verify(&img, &public_key(&SECRET)).unwrap();
        assert!(v.header.allows_downgrade());
        let mut cleared = img.clone();
        cleared[at::FLAGS] = 0;
        assert_eq!(
            verify(&cleared, &public_key(&SECRET)),
            Err(ImageError::Signature)
        );
    }

    #[test]
    fn streamed_verification_is_verify() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 11) as u8).collect();
        let img = image(&payload);
        let key = public_key(&SECRET);
        let split = |img: &[u8]| {
            let n = img.len() - SIGNATURE_LEN;
            let head: [u8; HEADER_LEN] = img[..HEADER_LEN].try_into().unwrap();
            let sig: [u8; SIGNATURE_LEN] = img[n..].try_into().unwrap();
            (head, sig, img[HEADER_LEN..n].to_vec())
        };
        // Any piece size gives the same answer.
        for piece in [1, 7, 256, 4096, 5000] {
            let (head, sig, body) = split(&img);
            let mut v = Verifier::new(&head, &sig, &key).unwrap();
            for p in body.chunks(piece) {
                v.update(p);
            }
            assert_eq!(v.finish(), Ok(verify(&img, &key).unwrap().header));
        }
        // A payload short or long of the header's length.
        let (head, sig, body) = split(&img);
        let mut v = Verifier::new(&head, &sig, &key).unwrap();
        v.update(&body[1..]);
        assert!(matches!(v.finish(), Err(ImageError::Length { .. })));
        let mut v = Verifier::new(&head, &sig, &key).unwrap();
        v.update(&body);
        v.update(&[0]);
        assert!(matches!(v.finish(), Err(ImageError::Length { .. })));
        // Flipped bits anywhere: the same error as verify.
        for i in (0..img.len())
            .step_by(97)
            .chain([0, 8, 12, 150, img.len() - 1])
        {
            let mut bad = img.clone();
            bad[i] ^= 0x10;
            let (head, sig, body) = split(&bad);
            let streamed = Verifier::new(&head, &sig, &key).and_then(|mut v| {
                v.update(&body);
                v.finish()
            });
            assert_eq!(streamed, verify(&bad, &key).map(|v| v.header), "byte {i}");
        }
    }

    #[test]
    fn verification_is_strict() {
        // The identity point as key and as R, s = 0: [s]B = R + [k]A holds for every
        // message, so a non-strict check accepts it. Strict verification refuses small-order
        // keys and R.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let payload = b"anything";
        let header = Header {
            flags: 0,
            version: Version::parse("1.0.0").unwrap(),
            board: board(),
            payload_len: payload.len() as u64,
            sha256: Sha256::digest(payload).into(),
        };
        let mut img = header.encode().to_vec();
        img.extend_from_slice(payload);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[0] = 1;
        img.extend_from_slice(&sig);
        assert_eq!(verify(&img, &identity), Err(ImageError::Signature));
        // With a good key, a small-order R is refused too.
        assert_eq!(
            verify(&img, &public_key(&SECRET)),
            Err(ImageError::Signature)
        );
        // A non-canonical s (s + l): refused (malleability).
        let good = image(payload);
        let n = good.len() - 32;
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&good[n..]);
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, l) in s_bytes.iter_mut().zip(L) {
            let sum = u16::from(*b) + u16::from(l) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
        let mut malleable = good.clone();
        malleable[n..].copy_from_slice(&s_bytes);
        assert_eq!(
            verify(&malleable, &public_key(&SECRET)),
            Err(ImageError::Signature)
        );
        assert!(verify(&good, &public_key(&SECRET)).is_ok());
    }
}
