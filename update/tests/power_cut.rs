//! The swap engine on a RAM NOR flash that enforces NOR semantics and loses power after a
//! chosen number of operations: power cuts at every erase and program of a test swap and of
//! a revert (and of two cuts in a row), the confirm/revert semantics, corrupted state and
//! bad layouts.

mod common;

use common::{ERASE, FakeError, Flash, MODES, Torn, rng};
use embedded_storage::nor_flash::NorFlash;
use lunbox_update::{
    Area, BootOutcome, BootReason, Error, Layout, LayoutError, Phase, Record, Region, State,
    Stored, boot, cancel_test, confirm, request_test, status,
};

/// A small layout: a boot sector, 4-sector slots, scratch, two state sectors.
const L: Layout = Layout {
    sector_size: ERASE as u32,
    primary: Region::new(0x400, 0x1000),
    secondary: Region::new(0x1400, 0x1000),
    scratch: 0x2400,
    state: [0x2800, 0x2C00],
};
const CAPACITY: usize = 0x3000;
const SLOT: usize = 0x1000;

/// `len` bytes of image `tag`, then `0xff` to the end of a slot.
fn image(tag: u8, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| tag.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8)
        .collect();
    v.resize(SLOT, 0xff);
    v
}

fn slot<const W: usize>(f: &Flash<W>, region: Region) -> Vec<u8> {
    f.mem[region.offset as usize..region.end() as usize].to_vec()
}

fn put<const W: usize>(f: &mut Flash<W>, region: Region, data: &[u8]) {
    f.mem[region.offset as usize..region.offset as usize + data.len()].copy_from_slice(data);
}

fn record<const W: usize>(f: &mut Flash<W>) -> Record {
    match status(f, &L).unwrap() {
        Stored::Valid(r) => r,
        other => panic!("no valid record: {other:?}"),
    }
}

const NEW_LEN: usize = 3500;

/// A board whose primary holds OLD (flashed whole, state blank) and whose secondary holds NEW,
/// downloaded; `prefill` extra records are written first (moving the log's position), then
/// the test is requested.
fn pending<const W: usize>(prefill: usize) -> (Flash<W>, Vec<u8>, Vec<u8>) {
    let mut f = Flash::<W>::new(CAPACITY);
    f.mem[..0x400].fill(0x5a);
    let (old, new) = (image(0xA0, SLOT), image(0xB7, NEW_LEN));
    put(&mut f, L.primary, &old);
    put(&mut f, L.secondary, &new);
    for _ in 0..prefill {
        request_test(&mut f, &L, NEW_LEN as u32).unwrap();
    }
    request_test(&mut f, &L, NEW_LEN as u32).unwrap();
    (f, old, new)
}

/// Boots with each cut in turn (stopping at the first boot that completes), then without.
/// Returns the outcome of the boot that completed and the state it started from.
fn finish<const W: usize>(f: &mut Flash<W>, cuts: &[(u64, Torn)]) -> (BootOutcome, Stored) {
    for &(n, torn) in cuts {
        let before = status(f, &L).unwrap();
        f.arm(n, torn);
        match boot(f, &L) {
            Ok(out) => {
                f.power_on();
                return (out, before);
            }
            Err(Error::Flash(FakeError::PowerLost)) => f.power_on(),
            Err(e) => panic!("boot failed: {e:?}"),
        }
    }
    let before = status(f, &L).unwrap();
    (boot(f, &L).unwrap(), before)
}

fn state_of(stored: &Stored) -> State {
    match stored {
        Stored::Valid(r) => r.state,
        other => panic!("no valid record: {other:?}"),
    }
}

/// After cuts during a test swap: the new image on trial, unless the last cut came after
/// the swap's final record (on trial) was written, in which case the trial was spent while
/// the power was off (as if the new image had died at once) and the boot reverted.
fn assert_tested<const W: usize>(
    f: &mut Flash<W>,
    (out, before): (BootOutcome, Stored),
    old: &[u8],
    new: &[u8],
) -> bool {
    if state_of(&before) == State::OnTrial {
        assert_reverted(f, &out, old, new);
        true
    } else {
        assert_trial(f, &out, old, new);
        false
    }
}

/// After cuts during a revert: the previous image back, confirmed (by this boot or, if the
/// cut came after the final record, by the cut one).
fn assert_revert_done<const W: usize>(
    f: &mut Flash<W>,
    (out, before): (BootOutcome, Stored),
    old: &[u8],
    new: &[u8],
) -> bool {
    if state_of(&before) == State::Confirmed {
        assert_eq!(out.reason, BootReason::Confirmed);
        let out = BootOutcome {
            reason: BootReason::Reverted,
            ..out
        };
        assert_reverted(f, &out, old, new);
        true
    } else {
        assert_reverted(f, &out, old, new);
        false
    }
}

/// Operations an uncut boot of `f` does.
fn ops_of_boot<const W: usize>(f: &Flash<W>) -> u64 {
    let mut c = f.clone();
    let before = c.ops;
    boot(&mut c, &L).unwrap();
    c.ops - before
}

/// The new image runs on trial: primary NEW, secondary OLD.
fn assert_trial<const W: usize>(f: &mut Flash<W>, out: &BootOutcome, old: &[u8], new: &[u8]) {
    assert_eq!(out.reason, BootReason::Trial);
    assert_eq!(out.start, L.primary.offset);
    assert!(slot(f, L.primary) == new, "primary is not the new image");
    assert!(
        slot(f, L.secondary) == old,
        "secondary is not the old image"
    );
    assert_eq!(record(f).state, State::OnTrial);
    assert!(!status(f, &L).unwrap().secondary_writable());
    assert_eq!(f.mem[..0x400], [0x5a; 0x400], "the boot stage was touched");
}

/// The previous image is back, confirmed: primary OLD, secondary NEW.
fn assert_reverted<const W: usize>(f: &mut Flash<W>, out: &BootOutcome, old: &[u8], new: &[u8]) {
    assert_eq!(out.reason, BootReason::Reverted);
    assert!(slot(f, L.primary) == old, "primary is not the old image");
    assert!(
        slot(f, L.secondary) == new,
        "secondary is not the new image"
    );
    assert_eq!(record(f).state, State::Confirmed);
    assert!(status(f, &L).unwrap().secondary_writable());
    // And it stays that way: the next boot writes nothing.
    let ops = f.ops;
    assert_eq!(boot(f, &L).unwrap().reason, BootReason::Confirmed);
    assert_eq!(f.ops, ops);
    assert!(slot(f, L.primary) == old);
}

fn cut_test_swap<const W: usize>(prefill: usize) -> usize {
    let (base, old, new) = pending::<W>(prefill);
    let total = ops_of_boot(&base);
    let mut runs = 0;
    for n in 0..total {
        for torn in MODES {
            let mut f = base.clone();
            let result = finish(&mut f, &[(n, torn)]);
            let spent = assert_tested(&mut f, result, &old, &new);
            assert!(!spent || n == total - 1, "trial spent by a cut at {n}");
            if !spent {
                // No confirmation: the next boot reverts.
                let out = boot(&mut f, &L).unwrap();
                assert_reverted(&mut f, &out, &old, &new);
            }
            runs += 1;
        }
    }
    runs
}

fn cut_revert<const W: usize>(prefill: usize) -> usize {
    let (mut base, old, new) = pending::<W>(prefill);
    let out = boot(&mut base, &L).unwrap();
    assert_trial(&mut base, &out, &old, &new);
    let total = ops_of_boot(&base);
    let mut runs = 0;
    for n in 0..total {
        for torn in MODES {
            let mut f = base.clone();
            let result = finish(&mut f, &[(n, torn)]);
            let early = assert_revert_done(&mut f, result, &old, &new);
            assert!(!early || n == total - 1, "confirmed by a cut at {n}");
            runs += 1;
        }
    }
    runs
}

#[test]
fn power_cut_at_every_operation_of_a_test_swap() {
    for prefill in [0, 5, 20, 31] {
        let runs = cut_test_swap::<4>(prefill);
        assert!(runs > 200, "{runs}");
    }
    // Program words of 256 bytes: 4 record slots per state sector, so the log changes
    // sectors every few records.
    for prefill in [0, 1, 2, 3] {
        cut_test_swap::<256>(prefill);
    }
}

#[test]
fn power_cut_at_every_operation_of_a_revert() {
    for prefill in [0, 5, 20, 31] {
        cut_revert::<4>(prefill);
    }
    for prefill in [0, 1, 2, 3] {
        cut_revert::<256>(prefill);
    }
}

/// Two cuts in a row: at every operation of the first boot, then at every operation of the
/// boot that resumes (the ways the operations tear rotate over the runs).
#[test]
fn second_power_cut_while_resuming() {
    for revert in [false, true] {
        let (mut base, old, new) = pending::<4>(20);
        if revert {
            boot(&mut base, &L).unwrap();
        }
        let total = ops_of_boot(&base);
        for n1 in 0..total {
            let torn1 = if n1 % 2 == 0 {
                Torn::Half
            } else {
                Torn::Random(n1)
            };
            let mut cut = base.clone();
            cut.arm(n1, torn1);
            assert!(boot(&mut cut, &L).is_err());
            cut.power_on();
            let total2 = ops_of_boot(&cut);
            for n2 in 0..total2 {
                let torn2 = match MODES[((n1 + n2) % 4) as usize] {
                    Torn::Random(seed) => Torn::Random(seed ^ n2),
                    torn => torn,
                };
                let mut f = cut.clone();
                let result = finish(&mut f, &[(n2, torn2)]);
                if revert {
                    assert_revert_done(&mut f, result, &old, &new);
                } else {
                    assert_tested(&mut f, result, &old, &new);
                }
            }
        }
    }
}

/// A sample of three and more cuts in a row.
#[test]
fn repeated_power_cuts() {
    let (base, old, new) = pending::<4>(25);
    let total = ops_of_boot(&base);
    let mut seed = 12345u64;
    for n1 in (0..total).step_by(3) {
        for n2 in (0..total).step_by(7) {
            let n3 = u64::from(rng(&mut seed)) % total;
            let mut f = base.clone();
            let cuts = [
                (n1, Torn::Half),
                (n2, Torn::Random(n1 * 31 + n2)),
                (n3, Torn::AllButLast),
                (1, Torn::Nothing),
                (0, Torn::Half),
            ];
            let result = finish(&mut f, &cuts);
            assert_tested(&mut f, result, &old, &new);
        }
    }
}

/// A cut while the new image confirms: afterwards it is either confirmed (and stays) or
/// reverted; if `confirm` returned, confirmed.
#[test]
fn power_cut_during_confirm() {
    for prefill in [0, 17] {
        let (mut base, old, new) = pending::<4>(prefill);
        boot(&mut base, &L).unwrap();
        let mut probe = base.clone();
        let before = probe.ops;
        confirm(&mut probe, &L).unwrap();
        let total = probe.ops - before;
        assert!(total >= 1);
        let mut seen = [false; 2];
        for n in 0..total + 1 {
            for torn in MODES {
                let mut f = base.clone();
                f.arm(n, torn);
                let result = confirm(&mut f, &L);
                f.power_on();
                let out = boot(&mut f, &L).unwrap();
                match out.reason {
                    BootReason::Confirmed => {
                        assert!(slot(&f, L.primary) == new);
                        assert!(slot(&f, L.secondary) == old);
                        seen[0] = true;
                    }
                    BootReason::Reverted => {
                        assert!(result.is_err(), "confirmed, then reverted");
                        assert_reverted(&mut f, &out, &old, &new);
                        seen[1] = true;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(seen, [true, true]);
    }
}

/// A cut while the test is requested: the next boot runs either the old image, confirmed,
/// or the new one on trial; if `request_test` returned, the new one.
#[test]
fn power_cut_during_request_test() {
    let mut base = Flash::<4>::new(CAPACITY);
    let (old, new) = (image(0x11, SLOT), image(0x22, 2000));
    put(&mut base, L.primary, &old);
    put(&mut base, L.secondary, &new);
    for _ in 0..40 {
        let mut probe = base.clone();
        let before = probe.ops;
        request_test(&mut probe, &L, 2000).unwrap();
        let total = probe.ops - before;
        for n in 0..total + 1 {
            for torn in MODES {
                let mut f = base.clone();
                f.arm(n, torn);
                let result = request_test(&mut f, &L, 2000);
                f.power_on();
                let out = boot(&mut f, &L).unwrap();
                match out.reason {
                    // A torn first record leaves the state unreadable: the primary runs.
                    BootReason::Fresh | BootReason::Confirmed | BootReason::StateUnreadable => {
                        assert!(result.is_err());
                        assert!(slot(&f, L.primary) == old);
                    }
                    BootReason::Trial => assert!(slot(&f, L.primary) == new),
                    other => panic!("{other:?}"),
                }
            }
        }
        // Move the log on (two records) and try again from there.
        request_test(&mut base, &L, 2000).unwrap();
        cancel_test(&mut base, &L).unwrap();
    }
}

/// Test, confirm, test again, no confirmation: revert to the confirmed image; only the sectors
/// the images occupy are swapped.
#[test]
fn update_cycles() {
    let mut f = Flash::<4>::new(CAPACITY);
    let a = image(0xA1, SLOT);
    put(&mut f, L.primary, &a);
    assert_eq!(status(&mut f, &L).unwrap(), Stored::Blank);
    let out = boot(&mut f, &L).unwrap();
    assert_eq!(out.reason, BootReason::Fresh);
    assert_eq!(f.ops, 0);
    assert!(confirm(&mut f, &L).is_ok());

    // B: 1000 bytes, one sector. The primary's image is of unknown size: all 4 swapped.
    assert!(status(&mut f, &L).unwrap().secondary_writable());
    let b = image(0xB2, 1000);
    f.erase(L.secondary.offset, L.secondary.end() as u32)
        .unwrap();
    f.write(L.secondary.offset, &b[..1000]).unwrap();
    request_test(&mut f, &L, 1000).unwrap();
    assert!(!status(&mut f, &L).unwrap().secondary_writable());
    let out = boot(&mut f, &L).unwrap();
    assert_eq!((out.reason, out.sectors_swapped), (BootReason::Trial, 4));
    assert!(slot(&f, L.primary) == b);
    assert!(slot(&f, L.secondary) == a);
    assert!(matches!(
        request_test(&mut f, &L, 1000),
        Err(Error::InvalidState {
            state: State::OnTrial
        })
    ));
    assert!(matches!(
        cancel_test(&mut f, &L),
        Err(Error::InvalidState { .. })
    ));
    confirm(&mut f, &L).unwrap();
    let r = record(&mut f);
    assert_eq!(
        (r.state, r.primary_sectors, r.secondary_sectors),
        (State::Confirmed, 1, 4)
    );
    confirm(&mut f, &L).unwrap(); // again: nothing to do
    assert_eq!(record(&mut f), r);
    for _ in 0..3 {
        let ops = f.ops;
        assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
        assert_eq!(f.ops, ops);
        assert!(slot(&f, L.primary) == b);
    }

    // C: 900 bytes over sector 0 of the secondary (a download erases what it writes); the
    // swap covers one sector only.
    let mut secondary = slot(&f, L.secondary);
    f.erase(L.secondary.offset, L.secondary.offset + 1024)
        .unwrap();
    let c = image(0xC3, 900);
    f.write(L.secondary.offset, &c[..900]).unwrap();
    secondary[..1024].copy_from_slice(&c[..1024]);
    request_test(&mut f, &L, 900).unwrap();
    let primary = slot(&f, L.primary);
    let out = boot(&mut f, &L).unwrap();
    assert_eq!((out.reason, out.sectors_swapped), (BootReason::Trial, 1));
    let (p, s) = (slot(&f, L.primary), slot(&f, L.secondary));
    assert!(p[..1024] == c[..1024] && p[1024..] == primary[1024..]);
    assert!(s[..1024] == b[..1024] && s[1024..] == secondary[1024..]);
    // Not confirmed: back to B, one sector.
    let out = boot(&mut f, &L).unwrap();
    assert_eq!((out.reason, out.sectors_swapped), (BootReason::Reverted, 1));
    assert!(slot(&f, L.primary) == primary);
    assert!(slot(&f, L.secondary) == secondary);
    let r = record(&mut f);
    assert_eq!((r.primary_sectors, r.secondary_sectors), (1, 1));
}

#[test]
fn cancel_a_pending_test() {
    let (mut f, old, _) = pending::<4>(0);
    assert_eq!(record(&mut f).state, State::TestPending);
    assert!(!status(&mut f, &L).unwrap().secondary_writable());
    cancel_test(&mut f, &L).unwrap();
    assert!(status(&mut f, &L).unwrap().secondary_writable());
    cancel_test(&mut f, &L).unwrap();
    let ops = f.ops;
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
    assert_eq!(f.ops, ops);
    assert!(slot(&f, L.primary) == old);
    // confirm during a test pending changes nothing: the test still happens.
    request_test(&mut f, &L, NEW_LEN as u32).unwrap();
    confirm(&mut f, &L).unwrap();
    assert_eq!(record(&mut f).state, State::TestPending);
}

#[test]
fn calls_that_do_not_fit() {
    let (mut f, _, _) = pending::<4>(0);
    assert_eq!(
        request_test(&mut f, &L, 0),
        Err(Error::ImageLength {
            len: 0,
            slot_size: 0x1000
        })
    );
    assert!(matches!(
        request_test(&mut f, &L, 0x1001),
        Err(Error::ImageLength { .. })
    ));
    // A swap cut off half-way: the application cannot be running, so nothing is allowed.
    f.arm(10, Torn::Half);
    assert!(boot(&mut f, &L).is_err());
    f.power_on();
    let state = record(&mut f).state;
    assert!(matches!(state, State::Swapping { .. }), "{state:?}");
    assert_eq!(confirm(&mut f, &L), Err(Error::InvalidState { state }));
    assert_eq!(cancel_test(&mut f, &L), Err(Error::InvalidState { state }));
    assert_eq!(
        request_test(&mut f, &L, 100),
        Err(Error::InvalidState { state })
    );
    assert!(boot(&mut f, &L).unwrap().resumed);
}

/// Both state sectors corrupt: the boot runs the primary as it is and writes nothing (it
/// cannot know where a swap stood); `confirm` repairs the state.
#[test]
fn corrupt_state_runs_primary_as_is() {
    let (mut f, _, _) = pending::<4>(3);
    let primary = slot(&f, L.primary);
    let mut seed = 99;
    for b in &mut f.mem[L.state[0] as usize..L.state[1] as usize + ERASE] {
        *b = rng(&mut seed) & 0x7f;
    }
    assert_eq!(status(&mut f, &L).unwrap(), Stored::Damaged);
    assert!(status(&mut f, &L).unwrap().secondary_writable());
    let ops = f.ops;
    let out = boot(&mut f, &L).unwrap();
    assert_eq!(out.reason, BootReason::StateUnreadable);
    assert_eq!((out.start, out.sectors_swapped), (L.primary.offset, 0));
    assert_eq!(f.ops, ops);
    assert!(slot(&f, L.primary) == primary);
    confirm(&mut f, &L).unwrap();
    let r = record(&mut f);
    assert_eq!(
        (r.state, r.primary_sectors, r.secondary_sectors),
        (State::Confirmed, 4, 4)
    );
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::Confirmed);
}

/// One state sector corrupt, the other fine: the valid record decides.
#[test]
fn one_corrupt_state_sector() {
    let (mut f, old, new) = pending::<4>(0);
    let s1 = L.state[1] as usize;
    f.mem[s1..s1 + ERASE].fill(0x00);
    let out = boot(&mut f, &L).unwrap();
    assert_trial(&mut f, &out, &old, &new);
}

/// A valid record that does not fit the layout (another layout wrote it): primary as is.
#[test]
fn record_for_another_layout() {
    let mut f = Flash::<4>::new(CAPACITY);
    let r = Record {
        sequence: 3,
        state: State::Swapping {
            index: 9,
            phase: Phase::Scratch,
        },
        primary_sectors: 16,
        secondary_sectors: 16,
    };
    let s0 = L.state[0] as usize;
    f.mem[s0..s0 + 32].copy_from_slice(&r.encode());
    assert_eq!(status(&mut f, &L).unwrap(), Stored::Mismatch(r));
    assert_eq!(boot(&mut f, &L).unwrap().reason, BootReason::StateMismatch);
    assert_eq!(f.ops, 0);
}

/// Sequence numbers wrap around in the middle of a swap.
#[test]
fn sequence_wraps_during_a_swap() {
    let mut f = Flash::<4>::new(CAPACITY);
    let (old, new) = (image(0x31, SLOT), image(0x42, SLOT));
    put(&mut f, L.primary, &old);
    put(&mut f, L.secondary, &new);
    let r = Record {
        sequence: u32::MAX - 4,
        state: State::TestPending,
        primary_sectors: 4,
        secondary_sectors: 4,
    };
    let s1 = L.state[1] as usize;
    f.mem[s1 + 64..s1 + 96].copy_from_slice(&r.encode());
    let base = f.clone();
    let total = ops_of_boot(&base);
    for n in 0..total {
        let mut f = base.clone();
        let (out, _) = finish(&mut f, &[(n, Torn::Half)]);
        assert_eq!(out.reason, BootReason::Trial);
        assert!(slot(&f, L.primary) == new);
        assert!(slot(&f, L.secondary) == old);
        assert!(record(&mut f).sequence < 100);
    }
}

#[test]
fn bad_layouts_are_refused() {
    let mut f = Flash::<4>::new(CAPACITY);
    let overlapping = Layout {
        scratch: L.secondary.offset,
        ..L
    };
    assert_eq!(
        boot(&mut f, &overlapping),
        Err(Error::Layout(LayoutError::Overlap {
            first: Area::Secondary,
            second: Area::Scratch
        }))
    );
    let unequal = Layout {
        secondary: Region::new(0x1400, 0xC00),
        ..L
    };
    assert!(matches!(
        request_test(&mut f, &unequal, 10),
        Err(Error::Layout(LayoutError::SlotSize { .. }))
    ));
    // 512-byte sectors on a flash that erases 1024.
    let small = Layout {
        sector_size: 512,
        ..L
    };
    assert!(matches!(
        boot(&mut f, &small),
        Err(Error::Layout(LayoutError::Geometry { .. }))
    ));
    let beyond = Layout {
        state: [0x2800, 0x3000],
        ..L
    };
    assert!(matches!(
        confirm(&mut f, &beyond),
        Err(Error::Layout(LayoutError::OutOfRange {
            area: Area::State1,
            ..
        }))
    ));
    assert!(matches!(
        status(&mut f, &Layout::TEENSY41),
        Err(Error::Layout(LayoutError::OutOfRange { .. }))
    ));
    assert_eq!(f.ops, 0);
}

/// The Teensy layout on an 8 MiB fake: one small update cycle end to end.
#[test]
fn teensy41_layout() {
    let l = Layout::TEENSY41;
    let mut f = Flash::<4>::new(0x80_0000);
    // The fake's sectors are 1 KiB; the layout's 4 KiB are a multiple.
    let old: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let new: Vec<u8> = (0..9_000u32).map(|i| (i * 13 + 1) as u8).collect();
    let p = l.primary.offset as usize;
    let s = l.secondary.offset as usize;
    f.mem[p..p + old.len()].copy_from_slice(&old);
    f.mem[s..s + new.len()].copy_from_slice(&new);
    confirm(&mut f, &l).unwrap();
    request_test(&mut f, &l, new.len() as u32).unwrap();
    let out = boot(&mut f, &l).unwrap();
    assert_eq!((out.reason, out.sectors_swapped), (BootReason::Trial, 256));
    assert_eq!(out.start, 0x1_0000);
    assert!(f.mem[p..p + new.len()] == new[..]);
    assert!(f.mem[s..s + old.len()] == old[..]);
    confirm(&mut f, &l).unwrap();
    // Next update: only the sectors either image occupies (9000 bytes: 3 sectors).
    f.mem[s..s + 0x1000].fill(0xff);
    f.mem[s..s + 100].fill(0x77);
    request_test(&mut f, &l, 100).unwrap();
    let out = boot(&mut f, &l).unwrap();
    assert_eq!((out.reason, out.sectors_swapped), (BootReason::Trial, 3));
    assert!(f.mem[p..p + 100].iter().all(|&b| b == 0x77));
    let out = boot(&mut f, &l).unwrap();
    assert_eq!((out.reason, out.sectors_swapped), (BootReason::Reverted, 3));
    assert!(f.mem[p..p + new.len()] == new[..]);
    // Nothing outside the slots, scratch and state sectors was written.
    assert!(f.mem[..p].iter().all(|&b| b == 0xff));
    assert!(f.mem[0x7B_E000..].iter().all(|&b| b == 0xff));
}
