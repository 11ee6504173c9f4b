//! Hostile downloads through the board's DFU target (`FlashSlotSink`) on a RAM NOR flash:
//! signed images with edits, or raw bytes, in chunks of any size, after an abandoned
//! download or not, from any update state. The sink accepts exactly what `verify` and the
//! policy (board, size, version, a free secondary slot) accept; a refused download never
//! leaves a test requested for anything but an earlier, untouched image.

use std::sync::OnceLock;

use lunbox_gadget::dfu::{DfuError, ImageSink, Progress};
use lunbox_update::image::{self, Board, HEADER_LEN, Header, SIGNATURE_LEN, Version};
use lunbox_update::sink::{FlashSlotSink, Refusal, TRAILER_LEN};
use lunbox_update::{BootReason, Record, State, Stored, boot, confirm, status};

use super::image::SignedCase;
use super::input::Input;
use super::{CAPACITY, L, SECRET, noise, region};
use crate::common::{ERASE, Flash};

/// The running firmware's version.
const RUNNING: Version = Version {
    major: 1,
    minor: 0,
    patch: 0,
};

/// The largest payload a slot of [`L`] takes (less its trailer sector).
const MAX_PAYLOAD: usize = 0x2000 - ERASE;

/// The update state before the download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Freshly flashed: no record.
    Blank,
    /// A confirmed firmware.
    Confirmed,
    /// An earlier image downloaded, waiting for the next boot.
    Pending,
    /// A new firmware on trial: the secondary slot holds the fallback.
    OnTrial,
}

/// What is downloaded.
#[derive(Debug, Clone)]
pub(crate) enum Bytes {
    /// A signed image, perhaps edited.
    Signed(SignedCase),
    /// Anything.
    Raw(Vec<u8>),
}

/// A download.
#[derive(Debug, Clone)]
pub(crate) struct SinkCase {
    /// The flash's program word: 1, 4 or 256 bytes.
    pub(crate) write_size: usize,
    pub(crate) start: Start,
    /// The console's `fw allow-downgrade`.
    pub(crate) allow_downgrade: bool,
    /// Chunks of the download (cycled; 0 is read as 1).
    pub(crate) chunks: Vec<usize>,
    /// A first download of this many chunks, abandoned (DFU_ABORT).
    pub(crate) abandoned: Option<usize>,
    pub(crate) bytes: Bytes,
}

impl SinkCase {
    pub(crate) fn read(input: &mut Input<'_>) -> SinkCase {
        let write_size = [1, 4, 256][usize::from(input.byte() % 3)];
        let start = [
            Start::Blank,
            Start::Confirmed,
            Start::Pending,
            Start::OnTrial,
        ][usize::from(input.byte() % 4)];
        let allow_downgrade = input.byte().is_multiple_of(4);
        let chunks = (0..input.byte() % 4 + 1)
            .map(|_| usize::from(input.u16() % 4097))
            .collect();
        let abandoned = match input.byte() {
            0..=191 => None,
            n => Some(usize::from(n % 8)),
        };
        let bytes = if input.byte() < 224 {
            Bytes::Signed(SignedCase::read(input, MAX_PAYLOAD + 64))
        } else {
            let n = usize::from(input.u16()) % (MAX_PAYLOAD + 512);
            Bytes::Raw(input.bytes(n).to_vec())
        };
        SinkCase {
            write_size,
            start,
            allow_downgrade,
            chunks,
            abandoned,
            bytes,
        }
    }
}

/// The sink target.
pub(crate) fn fuzz(data: &[u8]) {
    check(&SinkCase::read(&mut Input::new(data)));
}

/// Runs the download on a flash with the case's write size.
pub(crate) fn check(case: &SinkCase) {
    match case.write_size {
        1 => check_on::<1>(case),
        4 => check_on::<4>(case),
        _ => check_on::<256>(case),
    }
}

fn key() -> [u8; 32] {
    image::public_key(&SECRET)
}

fn teensy() -> Board {
    Board::new("teensy41").expect("a board id")
}

fn never() -> bool {
    false
}

fn always() -> bool {
    true
}

fn sink<const W: usize>(f: &mut Flash<W>, allow: bool) -> FlashSlotSink<&mut Flash<W>> {
    let allow = if allow { always } else { never };
    FlashSlotSink::new(f, L, key(), teensy(), RUNNING, allow)
}

/// The earlier image of [`Start::Pending`] and [`Start::OnTrial`].
fn earlier() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let p = noise(0xEA71, 3000);
        image::sign(
            &p,
            Version {
                minor: 5,
                ..RUNNING
            },
            teensy(),
            0,
            &SECRET,
        )
    })
}

/// How a download ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Manifested.
    Done,
    /// The sink refused it.
    Refused(DfuError),
    /// The DFU class refused a chunk past the sink's `max_size` (errADDRESS).
    TooLong,
}

/// Downloads `bytes` in `chunks` as the DFU class's `SinkTarget` does (size check, discard
/// after an error), then manifests it; with `stop_after`, abandons it after that many chunks.
fn download(
    s: &mut impl ImageSink,
    bytes: &[u8],
    chunks: &[usize],
    stop_after: Option<usize>,
) -> Ended {
    if let Err(e) = s.begin() {
        s.discard();
        return Ended::Refused(e);
    }
    let mut rest = bytes;
    let mut at = 0u64;
    for i in 0.. {
        if rest.is_empty() || stop_after == Some(i) {
            break;
        }
        let size = chunks.get(i % chunks.len().max(1)).copied().unwrap_or(4096);
        let (chunk, later) = rest.split_at(size.clamp(1, rest.len()));
        rest = later;
        at += chunk.len() as u64;
        if s.max_size().is_some_and(|max| at > max) {
            s.discard();
            return Ended::TooLong;
        }
        if let Err(e) = s.write(chunk) {
            s.discard();
            return Ended::Refused(e);
        }
    }
    if stop_after.is_some() {
        s.discard();
        return Ended::TooLong;
    }
    let mut p = s.commit();
    let mut steps = 0;
    while let Ok(Progress::Pending { .. }) = p {
        steps += 1;
        assert!(steps < 100, "manifestation does not end");
        p = s.resume();
    }
    match p {
        Ok(_) => Ended::Done,
        Err(e) => {
            s.discard();
            Ended::Refused(e)
        }
    }
}

/// A board in the case's start state: an old firmware in the primary slot (no trailer),
/// leftovers in the secondary.
fn board<const W: usize>(start: Start) -> Flash<W> {
    let mut f = Flash::<W>::new(CAPACITY);
    f.mem[..L.primary.offset as usize].fill(0x5a);
    for (r, seed) in [(L.primary, 0xA0), (L.secondary, 0x33)] {
        let at = r.offset as usize;
        f.mem[at..at + r.size as usize].copy_from_slice(&noise(seed, r.size as usize));
    }
    if start != Start::Blank {
        confirm(&mut f, &L).expect("confirm");
    }
    if matches!(start, Start::Pending | Start::OnTrial) {
        let ended = download(&mut sink(&mut f, false), earlier(), &[4096], None);
        assert_eq!(ended, Ended::Done, "the earlier image");
    }
    if start == Start::OnTrial {
        assert_eq!(boot(&mut f, &L).expect("boot").reason, BootReason::Trial);
    }
    f
}

/// The header of an image the sink must accept from `start`: one that verifies with the
/// key, for this board, with a payload of 1 byte to a slot less its trailer sector, not
/// older than the running firmware unless allowed, into a secondary slot not in use.
fn acceptable(bytes: &[u8], start: Start, allow: bool) -> Option<Header> {
    let h = image::verify(bytes, &key()).ok()?.header;
    let ok = h.board == teensy()
        && (1..=MAX_PAYLOAD as u64).contains(&h.payload_len)
        && (h.version >= RUNNING || h.allows_downgrade() || allow)
        && start != Start::OnTrial;
    ok.then_some(h)
}

fn check_on<const W: usize>(case: &SinkCase) {
    let (bytes, edited) = match &case.bytes {
        Bytes::Signed(c) => {
            let (signed, edited) = c.build();
            let differs = edited != signed;
            (edited, differs)
        }
        Bytes::Raw(b) => (b.clone(), false),
    };
    let mut f = board::<W>(case.start);
    let before = f.clone();
    let stored = status(&mut f, &L).expect("status");
    let mut s = sink(&mut f, case.allow_downgrade);
    if let Some(n) = case.abandoned {
        download(&mut s, &bytes, &case.chunks, Some(n));
    }
    let ended = download(&mut s, &bytes, &case.chunks, None);
    let refusal = s.refusal();
    let want = acceptable(&bytes, case.start, case.allow_downgrade);
    assert_eq!(region(&f.mem, L.primary), region(&before.mem, L.primary));
    match (ended, want) {
        (Ended::Done, Some(h)) => {
            assert!(!edited, "an edited image was accepted");
            assert_eq!(refusal, None);
            accepted(&mut f, &bytes, &h);
        }
        (Ended::Done, None) => panic!("accepted an image verify or the policy refuses"),
        (_, Some(h)) => panic!("refused {h:?} ({ended:?}, {refusal:?})"),
        (Ended::Refused(e), None) => {
            let why = refusal.expect("a refusal says why");
            assert_eq!(why.dfu_error(), e);
            if case.start != Start::OnTrial {
                assert!(
                    !matches!(
                        why,
                        Refusal::Flash { .. } | Refusal::State | Refusal::InUse { .. }
                    ),
                    "{why:?} on a healthy flash with a free slot"
                );
            }
            refused(&mut f, &before, stored);
        }
        (Ended::TooLong, None) => refused(&mut f, &before, stored),
    }
}

/// An accepted image: in the secondary slot (trailer, then the payload from the second
/// sector), a test requested for its sectors, and it runs from the primary at the next boot.
fn accepted<const W: usize>(f: &mut Flash<W>, bytes: &[u8], h: &Header) {
    let n = h.payload_len as usize;
    let payload = &bytes[HEADER_LEN..HEADER_LEN + n];
    let secondary = region(&f.mem, L.secondary);
    assert_eq!(&secondary[..HEADER_LEN], &bytes[..HEADER_LEN]);
    assert_eq!(
        &secondary[HEADER_LEN..TRAILER_LEN],
        &bytes[bytes.len() - SIGNATURE_LEN..]
    );
    assert_eq!(&secondary[ERASE..ERASE + n], payload);
    match status(f, &L).expect("status") {
        Stored::Valid(Record {
            state: State::TestPending,
            secondary_sectors,
            ..
        }) => assert_eq!(secondary_sectors as usize, (ERASE + n).div_ceil(ERASE)),
        other => panic!("accepted, but {other:?}"),
    }
    assert_eq!(boot(f, &L).expect("boot").reason, BootReason::Trial);
    assert_eq!(&region(&f.mem, L.primary)[ERASE..ERASE + n], payload);
}

/// A refused download: the state is as before, or a pending test is withdrawn; a test still
/// pending has its image untouched; the next boot runs what the state says.
fn refused<const W: usize>(f: &mut Flash<W>, before: &Flash<W>, stored: Stored) {
    let after = status(f, &L).expect("status");
    let withdrawn = match stored {
        Stored::Valid(r) if r.state == State::TestPending => Stored::Valid(Record {
            sequence: r.sequence.wrapping_add(1),
            state: State::Confirmed,
            ..r
        }),
        other => other,
    };
    assert!(
        after == stored || after == withdrawn,
        "refused, but the state went from {stored:?} to {after:?}"
    );
    let pending = matches!(after, Stored::Valid(r) if r.state == State::TestPending);
    if pending {
        assert!(
            region(&f.mem, L.secondary) == region(&before.mem, L.secondary),
            "a test is pending for a secondary slot the refused download changed"
        );
    }
    let out = boot(f, &L).expect("boot");
    let want = match after {
        Stored::Blank => BootReason::Fresh,
        Stored::Valid(r) => match r.state {
            State::Confirmed => BootReason::Confirmed,
            State::TestPending => BootReason::Trial,
            State::OnTrial => BootReason::Reverted,
            other => panic!("a download left {other:?}"),
        },
        other => panic!("a download left {other:?}"),
    };
    assert_eq!(out.reason, want);
    if want == BootReason::Trial {
        let e = earlier();
        let n = e.len() - HEADER_LEN - SIGNATURE_LEN;
        assert_eq!(
            &region(&f.mem, L.primary)[ERASE..ERASE + n],
            &e[HEADER_LEN..HEADER_LEN + n]
        );
    }
}
