//! Hostile firmware images: arbitrary bytes through `Header::parse`, `verify` and the
//! streamed `Verifier`, and signed images with edits, which verify only when unchanged.

use lunbox_update::image::{
    self, Board, FLAG_ALLOW_DOWNGRADE, HEADER_LEN, Header, ImageError, SIGNATURE_LEN, Verifier,
    Version,
};
use lunbox_update::keys::DEV_PUBLIC;

use super::input::Input;
use super::{SECRET, noise, text};

/// A change to an image's bytes; positions are taken modulo the length.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// XOR a byte with a non-zero mask.
    Flip { at: usize, mask: u8 },
    /// Set a byte (perhaps to what it was).
    Set { at: usize, byte: u8 },
    /// Keep the first bytes only.
    Truncate(usize),
    /// Add bytes at the end.
    Append(Vec<u8>),
    /// Insert bytes.
    Insert { at: usize, bytes: Vec<u8> },
    /// Remove up to `len` bytes.
    Remove { at: usize, len: usize },
}

impl Edit {
    /// Up to four edits.
    pub(crate) fn read_list(input: &mut Input<'_>) -> Vec<Edit> {
        let n = input.byte() % 5;
        (0..n).map(|_| Edit::read(input)).collect()
    }

    fn read(input: &mut Input<'_>) -> Edit {
        let kind = input.byte();
        let at = usize::from(input.u16());
        match kind % 6 {
            0 => Edit::Flip {
                at,
                mask: input.byte().max(1),
            },
            1 => Edit::Set {
                at,
                byte: input.byte(),
            },
            2 => Edit::Truncate(at),
            3 => {
                let n = usize::from(input.byte() % 16) + 1;
                Edit::Append(input.bytes(n).to_vec())
            }
            4 => {
                let n = usize::from(input.byte() % 16) + 1;
                Edit::Insert {
                    at,
                    bytes: input.bytes(n).to_vec(),
                }
            }
            _ => Edit::Remove {
                at,
                len: usize::from(input.byte() % 16) + 1,
            },
        }
    }

    pub(crate) fn apply(&self, img: &mut Vec<u8>) {
        let len = img.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match self {
            Edit::Flip { at, mask } if len > 0 => img[pos(*at)] ^= (*mask).max(1),
            Edit::Set { at, byte } if len > 0 => img[pos(*at)] = *byte,
            Edit::Flip { .. } | Edit::Set { .. } => {}
            Edit::Truncate(at) => img.truncate(pos(*at)),
            Edit::Append(bytes) => img.extend_from_slice(bytes),
            Edit::Insert { at, bytes } => {
                let at = pos(*at);
                img.splice(at..at, bytes.iter().copied());
            }
            Edit::Remove { at, len: n } => {
                let at = pos(*at);
                img.drain(at..(at + n).min(len));
            }
        }
    }
}

/// A signed image and the edits made to it.
#[derive(Debug, Clone)]
pub(crate) struct SignedCase {
    pub(crate) payload: Vec<u8>,
    pub(crate) version: Version,
    pub(crate) downgrade: bool,
    pub(crate) board: Board,
    pub(crate) edits: Vec<Edit>,
}

impl SignedCase {
    /// A payload of up to `max_len` bytes, a version near 1.0.0, mostly the board
    /// `teensy41`, then edits.
    pub(crate) fn read(input: &mut Input<'_>, max_len: usize) -> SignedCase {
        let len = usize::from(input.u16()) % (max_len + 1);
        let payload = noise(u64::from(input.u32()), len);
        let version = Version {
            major: u32::from(input.byte() % 3),
            minor: u32::from(input.byte()),
            patch: u32::from(input.byte()),
        };
        let downgrade = input.byte() & 1 == 1;
        let board = match input.byte() {
            0..=127 => Board::new("teensy41"),
            128..=191 => Board::new("sandbox-x86_64"),
            _ => {
                const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.";
                let n = usize::from(input.byte() % 31) + 1;
                let name: String = (0..n)
                    .map(|_| char::from(CHARS[usize::from(input.byte()) % CHARS.len()]))
                    .collect();
                Board::new(&name)
            }
        }
        .expect("a valid board id");
        let edits = Edit::read_list(input);
        SignedCase {
            payload,
            version,
            downgrade,
            board,
            edits,
        }
    }

    /// The image's header flags.
    pub(crate) fn flags(&self) -> u32 {
        if self.downgrade {
            FLAG_ALLOW_DOWNGRADE
        } else {
            0
        }
    }

    /// The signed image, and the bytes after the edits.
    pub(crate) fn build(&self) -> (Vec<u8>, Vec<u8>) {
        let signed = image::sign(
            &self.payload,
            self.version,
            self.board,
            self.flags(),
            &SECRET,
        );
        let mut edited = signed.clone();
        for e in &self.edits {
            e.apply(&mut edited);
        }
        (signed, edited)
    }
}

/// The image target: the input as an image, and as a signed image with edits.
pub(crate) fn fuzz(data: &[u8]) {
    let mut input = Input::new(data);
    let pieces: Vec<usize> = input.bytes(4).iter().map(|&b| usize::from(b)).collect();
    let _ = check_raw(data, &pieces);
    text::check(data);
    let case = SignedCase::read(&mut input, 8192);
    check_signed(&case, &pieces);
}

/// Any bytes: a header that parses encodes back to the same bytes; `verify` fails exactly
/// where the header says it must, agrees with the header on success, and the streamed check
/// (in pieces of the given sizes) gives `verify`'s answer, with either key. Returns the
/// answers for the development key and for [`SECRET`]'s.
pub(crate) fn check_raw(data: &[u8], pieces: &[usize]) -> [Result<Header, ImageError>; 2] {
    let parsed = Header::parse(data);
    match &parsed {
        Ok(h) => {
            assert_eq!(h.encode()[..], data[..HEADER_LEN]);
            assert!(h.image_len() >= (HEADER_LEN + SIGNATURE_LEN) as u64);
        }
        Err(e) if data.len() < HEADER_LEN => assert_eq!(*e, ImageError::TooShort),
        Err(e) => assert!(
            matches!(
                e,
                ImageError::Magic | ImageError::Format(_) | ImageError::Header
            ),
            "{e:?}"
        ),
    }
    let len = data.len() as u64;
    [DEV_PUBLIC, image::public_key(&SECRET)].map(|key| {
        let verified = image::verify(data, &key);
        match (&parsed, &verified) {
            (Err(p), v) => assert_eq!(*v, Err(*p)),
            (Ok(h), Ok(v)) => {
                assert_eq!(&v.header, h);
                assert_eq!(len, h.image_len());
                assert_eq!(v.payload, &data[HEADER_LEN..data.len() - SIGNATURE_LEN]);
            }
            (Ok(h), Err(e)) if len != h.image_len() => assert_eq!(
                *e,
                ImageError::Length {
                    expected: h.image_len(),
                    actual: len
                }
            ),
            (Ok(_), Err(e)) => assert!(
                matches!(e, ImageError::Hash | ImageError::Signature),
                "{e:?}"
            ),
        }
        let verified = verified.map(|v| v.header);
        if let Some(streamed) = streamed(data, &key, pieces) {
            assert_eq!(streamed, verified, "streamed vs verify");
        }
        verified
    })
}

/// The image checked by a [`Verifier`], the payload fed in pieces of the given sizes (0: an
/// empty piece, then one byte); `None` when it is too short to hold a header and a
/// signature.
fn streamed(data: &[u8], key: &[u8; 32], pieces: &[usize]) -> Option<Result<Header, ImageError>> {
    let end = data.len().checked_sub(SIGNATURE_LEN)?;
    let head: &[u8; HEADER_LEN] = data.get(..HEADER_LEN)?.try_into().ok()?;
    let body = data.get(HEADER_LEN..end)?;
    let sig: &[u8; SIGNATURE_LEN] = data[end..].try_into().ok()?;
    let mut v = match Verifier::new(head, sig, key) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    assert_eq!(Ok(v.header()), Header::parse(head).as_ref());
    let mut rest = body;
    for i in 0.. {
        if rest.is_empty() {
            break;
        }
        let piece = pieces.get(i % pieces.len().max(1)).copied().unwrap_or(4096);
        if piece == 0 {
            v.update(&[]);
        }
        let (now, later) = rest.split_at(piece.clamp(1, rest.len()));
        v.update(now);
        rest = later;
    }
    Some(v.finish())
}

/// A signed image verifies with its key (and not with the development key) exactly when the
/// edits left it unchanged; an edited one fails with the error its first difference calls
/// for, by `verify` and by the streamed check alike (`check_raw`).
pub(crate) fn check_signed(case: &SignedCase, pieces: &[usize]) {
    let (signed, edited) = case.build();
    let [dev, verified] = check_raw(&edited, pieces);
    assert!(dev.is_err(), "verified with the development key");
    if edited == signed {
        let h = verified.expect("an unchanged signed image verifies");
        assert_eq!(
            &edited[HEADER_LEN..edited.len() - SIGNATURE_LEN],
            &case.payload[..]
        );
        assert_eq!(h.version, case.version);
        assert_eq!(h.board, case.board);
        assert_eq!(h.flags, case.flags());
        assert_eq!(h.payload_len, case.payload.len() as u64);
    } else {
        let e = verified.expect_err("an edited image verifies");
        check_edit_error(&signed, &edited, e);
    }
}

/// The error for `edited`, a changed `signed` image: a short one is too short; a changed
/// header fails as malformed (`Header::parse`'s error) or on length, hash or signature;
/// with the header intact, another length is a length error, a changed payload a hash error,
/// a changed signature a signature error.
fn check_edit_error(signed: &[u8], edited: &[u8], e: ImageError) {
    let sig_at = signed.len() - SIGNATURE_LEN;
    let want = if edited.len() < HEADER_LEN {
        ImageError::TooShort
    } else if edited[..HEADER_LEN] != signed[..HEADER_LEN] {
        match Header::parse(edited) {
            Err(p) => p,
            Ok(_) => {
                assert!(
                    matches!(
                        e,
                        ImageError::Length { .. } | ImageError::Hash | ImageError::Signature
                    ),
                    "{e:?}"
                );
                return;
            }
        }
    } else if edited.len() != signed.len() {
        ImageError::Length {
            expected: signed.len() as u64,
            actual: edited.len() as u64,
        }
    } else if edited[HEADER_LEN..sig_at] != signed[HEADER_LEN..sig_at] {
        ImageError::Hash
    } else {
        ImageError::Signature
    };
    assert_eq!(e, want);
}
