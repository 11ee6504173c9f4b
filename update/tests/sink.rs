//! The board's `firmware` DFU target ([`FlashSlotSink`]) on a RAM NOR flash: a good image
//! lands in the secondary slot (trailer in the first sector, payload from the second), is requested
//! for a test and runs at the primary after `boot`; bad images are refused with the sandbox's
//! DFU statuses and change nothing; power cuts during a download or manifestation leave the
//! old firmware or the new one requested, never a mix.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{ERASE, Flash, MODES, Torn, rng};
use embedded_storage::nor_flash::NorFlash;
use lunbox_gadget::dfu::{DfuError, ImageSink, Progress};
use lunbox_update::image::{
    self, Board, FLAG_ALLOW_DOWNGRADE, HEADER_LEN, ImageError, SIGNATURE_LEN, Version,
};
use lunbox_update::sink::{FlashSlotSink, Refusal, TRAILER_LEN};
use lunbox_update::{
    BootReason, Layout, Region, State, Stored, boot, confirm, request_test, status,
};

/// A boot sector, 8-sector slots, scratch, two state sectors.
const L: Layout = Layout {
    sector_size: ERASE as u32,
    primary: Region::new(0x400, 0x2000),
    secondary: Region::new(0x2400, 0x2000),
    scratch: 0x4400,
    state: [0x4800, 0x4C00],
};
const CAPACITY: usize = 0x5000;
const SLOT: usize = 0x2000;
/// The slot offset of the trailer: the first sector.
const TRAILER: usize = 0;
/// The slot offset of the payload: after the trailer sector.
const PAYLOAD: usize = ERASE;

const SECRET: [u8; 32] = [0x42; 32];

fn key() -> [u8; 32] {
    image::public_key(&SECRET)
}

fn teensy() -> Board {
    Board::new("teensy41").unwrap()
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// The running firmware's version.
const RUNNING: &str = "1.0.0";

static ALLOW: AtomicBool = AtomicBool::new(false);

fn never() -> bool {
    false
}

fn allowed() -> bool {
    ALLOW.load(Ordering::Relaxed)
}

fn payload(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_add((i as u8).wrapping_mul(29)) ^ (i >> 7) as u8)
        .collect()
}

fn signed(payload: &[u8], version: &str, board: Board, flags: u32) -> Vec<u8> {
    image::sign(payload, v(version), board, flags, &SECRET)
}

const NEW_LEN: usize = 5000;

/// The image most tests download: 5000 bytes (5 sectors, the last page partial), 1.1.0.
fn new_image() -> (Vec<u8>, Vec<u8>) {
    let p = payload(0xB7, NEW_LEN);
    let img = signed(&p, "1.1.0", teensy(), 0);
    (p, img)
}

/// A board whose primary slot holds an old firmware (flashed whole, no trailer) and whose
/// state is blank (freshly flashed) or, with `confirmed`, holds a confirmed record.
fn board<const W: usize>(confirmed: bool) -> (Flash<W>, Vec<u8>) {
    let mut f = Flash::<W>::new(CAPACITY);
    f.mem[..0x400].fill(0x5a);
    let old = payload(0xA0, SLOT);
    let p = L.primary.offset as usize;
    f.mem[p..p + SLOT].copy_from_slice(&old);
    // Something in the secondary slot from before.
    let s = L.secondary.offset as usize;
    f.mem[s..s + SLOT].copy_from_slice(&payload(0x33, SLOT));
    if confirmed {
        confirm(&mut f, &L).unwrap();
    }
    (f, old)
}

fn sink<const W: usize>(f: &mut Flash<W>, key: [u8; 32]) -> FlashSlotSink<&mut Flash<W>> {
    FlashSlotSink::new(f, L, key, teensy(), v(RUNNING), allowed)
}

/// Downloads `bytes` in `block`-byte DNLOADs as the DFU class and `SinkTarget` do (size
/// check, discard on an error), then manifests it (commit, resume until done).
fn download<F: NorFlash>(
    sink: &mut FlashSlotSink<F>,
    bytes: &[u8],
    block: usize,
) -> Result<(), DfuError> {
    sink.begin()?;
    let mut at = 0u64;
    for chunk in bytes.chunks(block) {
        at += chunk.len() as u64;
        let r = if sink.max_size().is_some_and(|max| at > max) {
            Err(DfuError::Address)
        } else {
            sink.write(chunk)
        };
        if let Err(e) = r {
            sink.discard();
            return Err(e);
        }
    }
    let mut p = sink.commit();
    let mut steps = 0;
    while let Ok(Progress::Pending { .. }) = p {
        steps += 1;
        assert!(steps < 1000);
        p = sink.resume();
    }
    if p.is_err() {
        sink.discard();
    }
    p.map(|_| ())
}

fn region<const W: usize>(f: &Flash<W>, r: Region) -> &[u8] {
    &f.mem[r.offset as usize..r.end() as usize]
}

/// The trailer an image leaves: header, signature, then erased.
fn trailer_of(img: &[u8]) -> Vec<u8> {
    let mut t = img[..HEADER_LEN].to_vec();
    t.extend_from_slice(&img[img.len() - SIGNATURE_LEN..]);
    t.resize(ERASE, 0xff);
    t
}

/// Reads the running image back as UPLOAD does.
fn upload<F: NorFlash>(sink: &mut FlashSlotSink<F>, block: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; block];
    loop {
        let n = sink.read(out.len() as u64, &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
        if n < block {
            return out;
        }
    }
}

fn record<const W: usize>(f: &mut Flash<W>) -> lunbox_update::Record {
    match status(f, &L).unwrap() {
        Stored::Valid(r) => r,
        other => panic!("no valid record: {other:?}"),
    }
}

fn good_image_lands_and_runs<const W: usize>(block: usize) {
    let (mut f, old) = board::<W>(false);
    let (p, img) = new_image();
    let mut s = sink(&mut f, key());
    assert_eq!(
        s.max_size(),
        Some((SLOT - ERASE + HEADER_LEN + SIGNATURE_LEN) as u64)
    );
    // Nothing runs from a trailer yet: UPLOAD has nothing to read.
    assert_eq!(upload(&mut s, 4096), Vec::<u8>::new());
    download(&mut s, &img, block).unwrap();
    assert_eq!(s.refusal(), None);
    // The trailer in the first sector; the payload after it, erased to its sector's end; the
    // primary untouched.
    let sec = region(&f, L.secondary).to_vec();
    assert_eq!(&sec[PAYLOAD..PAYLOAD + NEW_LEN], &p[..]);
    assert!(
        sec[PAYLOAD + NEW_LEN..(PAYLOAD + NEW_LEN).next_multiple_of(ERASE)]
            .iter()
            .all(|&b| b == 0xff)
    );
    assert_eq!(&sec[TRAILER..TRAILER + ERASE], &trailer_of(&img)[..]);
    assert_eq!(region(&f, L.primary), &old[..]);
    let r = record(&mut f);
    assert_eq!(r.state, State::TestPending);
    // Only the image's sectors (trailer and payload) are swapped in.
    assert_eq!(
        r.secondary_sectors,
        u32::try_from((PAYLOAD + NEW_LEN).div_ceil(ERASE)).unwrap()
    );
    // The next boot swaps it in: it runs on trial from the primary slot, trailer included.
    let out = boot(&mut f, &L).unwrap();
    assert_eq!(out.reason, BootReason::Trial);
    assert_eq!(out.start, L.primary.offset);
    let pri = region(&f, L.primary).to_vec();
    assert_eq!(&pri[PAYLOAD..PAYLOAD + NEW_LEN], &p[..]);
    assert_eq!(&pri[TRAILER..TRAILER + ERASE], &trailer_of(&img)[..]);
    assert_eq!(region(&f, L.secondary), &old[..]);
    // UPLOAD reads the running image back as downloaded.
    let mut s = sink(&mut f, key());
    assert_eq!(upload(&mut s, 4096), img);
    assert_eq!(upload(&mut s, 100), img);
    // During the trial the secondary slot holds the fallback: no download.
    assert_eq!(download(&mut s, &img, block), Err(DfuError::Write));
    assert_eq!(
        s.refusal(),
        Some(Refusal::InUse {
            state: State::OnTrial
        })
    );
    assert_eq!(region(&f, L.secondary), &old[..]);
    confirm(&mut f, &L).unwrap();
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
    assert_eq!(&region(&f, L.primary)[PAYLOAD..PAYLOAD + NEW_LEN], &p[..]);
}

#[test]
fn a_good_image_lands_in_the_secondary_and_runs_at_the_primary() {
    good_image_lands_and_runs::<4>(4096);
    good_image_lands_and_runs::<1>(1000);
    good_image_lands_and_runs::<32>(7);
    good_image_lands_and_runs::<256>(256);
}

/// Downloads `bytes` to a board with a confirmed firmware; checks the status, and that
/// nothing changed: the state record, the primary slot, what the next boot runs.
fn refused(bytes: &[u8], key: [u8; 32], want: DfuError) -> Refusal {
    let (mut f, old) = board::<4>(true);
    let before = status(&mut f, &L).unwrap();
    let mut s = sink(&mut f, key);
    assert_eq!(download(&mut s, bytes, 4096), Err(want));
    let why = s.refusal().expect("a refusal");
    assert_eq!(why.dfu_error(), want);
    assert_eq!(status(&mut f, &L).unwrap(), before, "{why:?}");
    assert_eq!(region(&f, L.primary), &old[..], "{why:?}");
    // The secondary does not carry the refused image's trailer.
    let t = L.secondary.offset as usize + TRAILER;
    assert_ne!(&f.mem[t..t + 8], b"LUNBOXFW", "{why:?}");
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
    assert_eq!(region(&f, L.primary), &old[..], "{why:?}");
    why
}

#[test]
fn bad_images_are_refused_and_change_nothing() {
    let (p, img) = new_image();
    let payload_at = |i: usize| HEADER_LEN + i;

    let mut tampered = img.clone();
    tampered[payload_at(4321)] ^= 0x20;
    let why = refused(&tampered, key(), DfuError::Verify);
    assert_eq!(why, Refusal::Image(ImageError::Hash));

    // The payload and its hash changed together: the signature catches it.
    let mut forged_payload = p.clone();
    forged_payload[10] ^= 1;
    let mut forged = signed(&forged_payload, "1.1.0", teensy(), 0);
    forged[img.len() - SIGNATURE_LEN..].copy_from_slice(&img[img.len() - SIGNATURE_LEN..]);
    assert_eq!(
        refused(&forged, key(), DfuError::Verify),
        Refusal::Image(ImageError::Signature)
    );

    // A header field changed (the version: 1.1.0 -> 1.2.0).
    let mut header = img.clone();
    header[20] = 2;
    assert_eq!(
        refused(&header, key(), DfuError::Verify),
        Refusal::Image(ImageError::Signature)
    );

    // Another key.
    assert_eq!(
        refused(&img, image::public_key(&[7; 32]), DfuError::Verify),
        Refusal::Image(ImageError::Signature)
    );

    // Truncated: in the signature, in the payload, in the header; trailing bytes.
    for cut in [
        img.len() - 1,
        img.len() - SIGNATURE_LEN,
        HEADER_LEN + 300,
        HEADER_LEN,
    ] {
        let why = refused(&img[..cut], key(), DfuError::File);
        assert!(
            matches!(why, Refusal::Image(ImageError::Length { .. })),
            "{cut}: {why:?}"
        );
    }
    assert_eq!(
        refused(&img[..100], key(), DfuError::File),
        Refusal::Image(ImageError::TooShort)
    );
    let mut long = img.clone();
    long.extend_from_slice(b"junk");
    assert!(matches!(
        refused(&long, key(), DfuError::File),
        Refusal::Image(ImageError::Length { .. })
    ));

    // Not an image; another board; an empty payload.
    assert_eq!(
        refused(&[0u8; 300], key(), DfuError::File),
        Refusal::Image(ImageError::Magic)
    );
    let sandbox = Board::new("sandbox-x86_64").unwrap();
    assert_eq!(
        refused(&signed(&p, "1.1.0", sandbox, 0), key(), DfuError::File),
        Refusal::Image(ImageError::Board)
    );
    assert_eq!(
        refused(&signed(&[], "1.1.0", teensy(), 0), key(), DfuError::File),
        Refusal::Empty
    );

    // Older than the running 1.0.0.
    assert_eq!(
        refused(&signed(&p, "0.9.9", teensy(), 0), key(), DfuError::Target),
        Refusal::Downgrade {
            image: v("0.9.9"),
            running: v(RUNNING)
        }
    );

    // Too large: the payload would reach the trailer sector.
    let max = SLOT - ERASE;
    let big = signed(&payload(1, max + 1), "1.1.0", teensy(), 0);
    assert_eq!(
        refused(&big, key(), DfuError::Address),
        Refusal::TooLarge {
            payload_len: max as u64 + 1,
            max: max as u32
        }
    );
    // ... while one that fills the slot up to the trailer sector fits.
    let (mut f, _) = board::<4>(true);
    let full = payload(2, max);
    let mut s = sink(&mut f, key());
    download(&mut s, &signed(&full, "1.1.0", teensy(), 0), 4096).unwrap();
    assert_eq!(&region(&f, L.secondary)[PAYLOAD..PAYLOAD + max], &full[..]);
}

#[test]
fn downgrades_need_the_flag_or_the_switch() {
    let p = payload(9, 3000);
    let old_flagged = signed(&p, "0.5.0", teensy(), FLAG_ALLOW_DOWNGRADE);
    let old = signed(&p, "0.5.0", teensy(), 0);
    let (mut f, _) = board::<4>(true);
    let mut s = sink(&mut f, key());
    download(&mut s, &old_flagged, 4096).unwrap();
    assert_eq!(record(&mut f).state, State::TestPending);

    let (mut f, _) = board::<4>(true);
    let mut s = FlashSlotSink::new(&mut f, L, key(), teensy(), v(RUNNING), never);
    assert_eq!(download(&mut s, &old, 4096), Err(DfuError::Target));
    // The switch, read when the image is checked.
    let mut s = sink(&mut f, key());
    ALLOW.store(true, Ordering::Relaxed);
    let r = download(&mut s, &old, 4096);
    ALLOW.store(false, Ordering::Relaxed);
    r.unwrap();
    assert_eq!(record(&mut f).state, State::TestPending);
}

#[test]
fn a_new_download_replaces_a_pending_one() {
    let (mut f, _) = board::<4>(true);
    let (p, img) = new_image();
    let mut s = sink(&mut f, key());
    download(&mut s, &img, 4096).unwrap();
    // An image refused by its header leaves the pending one alone.
    let other_board = signed(&p, "1.1.0", Board::new("sandbox-x86_64").unwrap(), 0);
    assert_eq!(download(&mut s, &other_board, 4096), Err(DfuError::File));
    assert_eq!(record(&mut f).state, State::TestPending);
    assert_eq!(&region(&f, L.secondary)[PAYLOAD..PAYLOAD + NEW_LEN], &p[..]);
    // A good one replaces it.
    let p2 = payload(0xC4, 2500);
    let img2 = signed(&p2, "1.2.0", teensy(), 0);
    let mut s = sink(&mut f, key());
    download(&mut s, &img2, 4096).unwrap();
    assert_eq!(record(&mut f).state, State::TestPending);
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Trial);
    assert_eq!(&region(&f, L.primary)[PAYLOAD..PAYLOAD + 2500], &p2[..]);
    // One refused after its header was accepted: the pending test is withdrawn (its image
    // is overwritten), nothing else is requested.
    confirm(&mut f, &L).unwrap();
    let mut s = sink(&mut f, key());
    download(&mut s, &img, 4096).unwrap();
    let mut bad = img2.clone();
    bad[HEADER_LEN + 5] ^= 1;
    assert_eq!(download(&mut s, &bad, 4096), Err(DfuError::Verify));
    assert_eq!(record(&mut f).state, State::Confirmed);
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
    assert_eq!(&region(&f, L.primary)[PAYLOAD..PAYLOAD + 2500], &p2[..]);
}

/// A download too short to hold a header (an empty or tiny file) is refused at manifestation
/// and leaves a pending image whole, trailer included (the refusal used to erase the pending
/// image's trailer while its test stayed requested: found by update/fuzz's `sink` target).
#[test]
fn a_short_download_leaves_a_pending_image_whole() {
    let (mut f, _) = board::<4>(true);
    let (p, img) = new_image();
    download(&mut sink(&mut f, key()), &img, 4096).unwrap();
    let slot = region(&f, L.secondary).to_vec();
    for short in [&[][..], &img[..1], &img[..HEADER_LEN - 1]] {
        let mut s = sink(&mut f, key());
        assert_eq!(download(&mut s, short, 4096), Err(DfuError::File));
        assert_eq!(s.refusal(), Some(Refusal::Image(ImageError::TooShort)));
        assert_eq!(record(&mut f).state, State::TestPending);
        assert!(
            region(&f, L.secondary) == &slot[..],
            "{} bytes changed the pending image",
            short.len()
        );
    }
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Trial);
    assert_eq!(&region(&f, L.primary)[PAYLOAD..PAYLOAD + NEW_LEN], &p[..]);
    assert_eq!(upload(&mut sink(&mut f, key()), 4096), img);
}

#[test]
fn an_aborted_download_requests_nothing() {
    let (mut f, old) = board::<4>(true);
    let (_, img) = new_image();
    let mut s = sink(&mut f, key());
    s.begin().unwrap();
    s.write(&img[..3000]).unwrap();
    s.discard();
    assert_eq!(s.commit(), Err(DfuError::NotDone));
    assert_eq!(record(&mut f).state, State::Confirmed);
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
    assert_eq!(region(&f, L.primary), &old[..]);
}

/// A power cut at every erase and program of a download and its manifestation: after power
/// returns, the next boot runs the old firmware (nothing requested) or the new one on trial
/// (the request was written), never a mix.
#[test]
fn power_cut_during_a_download() {
    let (base, old) = board::<4>(true);
    let (p, img) = new_image();
    let mut probe = base.clone();
    let before = probe.ops;
    download(&mut sink(&mut probe, key()), &img, 4096).unwrap();
    let total = probe.ops - before;
    assert!(total > 20, "{total}");
    let mut seed = 77u64;
    for n in 0..total {
        for torn in MODES {
            let torn = match torn {
                Torn::Random(s) => Torn::Random(s ^ u64::from(rng(&mut seed))),
                t => t,
            };
            let mut f = base.clone();
            f.arm(n, torn);
            assert_eq!(
                download(&mut sink(&mut f, key()), &img, 4096),
                Err(DfuError::Write),
                "cut at {n}"
            );
            f.power_on();
            let out = boot(&mut f, &L).unwrap();
            let pri = region(&f, L.primary);
            match out.reason {
                BootReason::Confirmed => assert_eq!(pri, &old[..], "cut at {n} {torn:?}"),
                BootReason::Trial => {
                    assert_eq!(&pri[PAYLOAD..PAYLOAD + NEW_LEN], &p[..], "cut at {n}")
                }
                other => panic!("cut at {n} {torn:?}: {other:?}"),
            }
        }
    }
    // A download after a cut succeeds.
    let mut f = base.clone();
    f.arm(total / 2, Torn::Half);
    assert!(download(&mut sink(&mut f, key()), &img, 4096).is_err());
    f.power_on();
    download(&mut sink(&mut f, key()), &img, 4096).unwrap();
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Trial);
}

/// A layout that does not fit the flash, and a state record that changed under the download
/// (a test requested meanwhile): errWRITE, nothing requested.
#[test]
fn unusable_flash_or_state() {
    let mut small = Flash::<4>::new(0x1000);
    let mut s = FlashSlotSink::new(&mut small, L, key(), teensy(), v(RUNNING), never);
    assert_eq!(s.begin(), Err(DfuError::Write));
    assert_eq!(s.refusal(), Some(Refusal::State));

    let (mut f, old) = board::<4>(true);
    let (_, img) = new_image();
    let mut s = sink(&mut f, key());
    s.begin().unwrap();
    s.write(&img).unwrap();
    request_test(s.flash(), &L, 100).unwrap();
    let mut p = s.commit();
    while let Ok(Progress::Pending { .. }) = p {
        p = s.resume();
    }
    assert_eq!(p, Err(DfuError::Write));
    assert_eq!(
        s.refusal(),
        Some(Refusal::InUse {
            state: State::TestPending
        })
    );
    // Only the foreign request stands (100 bytes: one sector).
    assert_eq!(record(&mut f).secondary_sectors, 1);
    assert_eq!(region(&f, L.primary), &old[..]);
}

#[test]
fn teensy41_layout() {
    let mut f = Flash::<4>::new(0x80_0000);
    let l = Layout::TEENSY41;
    let (p, img) = new_image();
    let mut s = FlashSlotSink::new(&mut f, l, key(), teensy(), v(RUNNING), never);
    assert_eq!(s.max_payload(), 0x10_0000 - 0x1000);
    assert_eq!(s.max_size(), Some(0x10_0000 - 0x1000 + TRAILER_LEN as u64));
    assert_eq!(s.payload_offset(), 0x1000);
    download(&mut s, &img, 4096).unwrap();
    assert_eq!(&f.mem[0x11_1000..0x11_1000 + NEW_LEN], &p[..]);
    assert_eq!(&f.mem[0x11_0000..0x11_0000 + 8], b"LUNBOXFW");
    assert_eq!(boot(&mut f, &l).unwrap().reason, BootReason::Trial);
    // The firmware runs at 0x6001_1000: the primary slot's start plus the trailer sector.
    assert_eq!(&f.mem[0x1_1000..0x1_1000 + NEW_LEN], &p[..]);
    assert_eq!(&f.mem[0x1_0000..0x1_0000 + 8], b"LUNBOXFW");
}
