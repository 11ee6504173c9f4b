//! Hostile state sectors: records (any state, fitting the layout or not), torn records and
//! garbage in the record slots, through `status` and `boot`: no panic, no flash error, and
//! the boot does what the newest valid record says.

use lunbox_update::state::is_newer;
use lunbox_update::{BootReason, Record, State, Stored, boot, status};

use super::input::Input;
use super::state::read_record;
use super::{CAPACITY, L, noise, region};
use crate::common::Flash;

/// What a record slot holds.
#[derive(Debug, Clone)]
pub(crate) enum Fill {
    /// Erased.
    Blank,
    /// A record.
    Record(Record),
    /// The first bytes of a record (a write cut short), erased after.
    Torn(Record, usize),
    /// These bytes, erased after.
    Garbage(Vec<u8>),
}

/// Slot images and state sectors.
#[derive(Debug, Clone)]
pub(crate) struct LogCase {
    /// A flash with 256-byte program words (256-byte record slots), else 4.
    pub(crate) wide: bool,
    /// The record slots in order, state sector 0 then 1 (missing ones erased).
    pub(crate) fills: Vec<Fill>,
    /// Seeds and lengths of the images in the primary and secondary slots.
    pub(crate) images: [(u64, usize); 2],
}

impl LogCase {
    /// A case from the input: record sequence numbers within 256 of each other (a log's
    /// records are consecutive; only their order is asked of the store).
    pub(crate) fn read(input: &mut Input<'_>) -> LogCase {
        let wide = input.byte() & 1 == 1;
        let slot = L.slot_sectors() as usize * L.sector_size as usize;
        let mut images = [(0, 0); 2];
        for image in &mut images {
            *image = (
                u64::from(input.u32()),
                usize::from(input.u16()) % (slot + 1),
            );
        }
        let base = input.u32();
        let mut fills = Vec::new();
        while !input.is_empty() && fills.len() < 64 {
            fills.push(match input.byte() % 8 {
                0..=2 => Fill::Blank,
                3..=5 => Fill::Record(read_record(input, base)),
                6 => {
                    let cut = usize::from(input.byte() % 32);
                    Fill::Torn(read_record(input, base), cut)
                }
                _ => {
                    let n = usize::from(input.byte() % 32) + 1;
                    Fill::Garbage(input.bytes(n).to_vec())
                }
            });
        }
        LogCase {
            wide,
            fills,
            images,
        }
    }
}

/// Runs the case on its flash.
pub(crate) fn check(case: &LogCase) {
    if case.wide {
        check_on::<256>(case);
    } else {
        check_on::<4>(case);
    }
}

fn check_on<const W: usize>(case: &LogCase) {
    let mut f = Flash::<W>::new(CAPACITY);
    for (image, r) in case.images.iter().zip([L.primary, L.secondary]) {
        let at = r.offset as usize;
        f.mem[at..at + image.1].copy_from_slice(&noise(image.0, image.1));
    }
    let slot_len = W.max(32);
    let slots = 2 * L.sector_size as usize / slot_len;
    for (i, fill) in case.fills.iter().take(slots).enumerate() {
        let sector = L.state[i * slot_len / L.sector_size as usize] as usize;
        let at = sector + (i * slot_len) % L.sector_size as usize;
        let bytes = match fill {
            Fill::Blank => Vec::new(),
            Fill::Record(r) => r.encode().to_vec(),
            Fill::Torn(r, cut) => r.encode()[..*cut].to_vec(),
            Fill::Garbage(g) => g.clone(),
        };
        f.mem[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    let before = f.clone();
    let stored = status(&mut f, &L).expect("status of a healthy flash");
    assert_eq!(f.ops, 0, "status only reads");
    let out = boot(&mut f, &L).expect("boot on a healthy flash");
    assert_eq!(out.start, L.primary.offset);
    let r = match stored {
        Stored::Valid(r) if r.state != State::Confirmed => r,
        _ => {
            // Nothing to swap: the primary runs as it is, nothing written.
            let reason = match stored {
                Stored::Blank => BootReason::Fresh,
                Stored::Damaged => BootReason::StateUnreadable,
                Stored::Mismatch(_) => BootReason::StateMismatch,
                Stored::Valid(_) => BootReason::Confirmed,
            };
            assert_eq!((out.reason, out.sectors_swapped), (reason, 0), "{stored:?}");
            assert!(f.mem == before.mem, "{stored:?} changed the flash");
            return;
        }
    };
    check_swap(&mut f, &before, &r, out.reason, out.sectors_swapped);
}

/// After a boot that swapped (`reason`, `swapped` sectors) from record `r`: the record that
/// ends the swap, the sectors it swapped and those it left; and a test swapped in from the
/// start comes back out whole at the next boot.
fn check_swap<const W: usize>(
    f: &mut Flash<W>,
    before: &Flash<W>,
    r: &Record,
    reason: BootReason,
    swapped: u32,
) {
    let (from, resumed, test) = match r.state {
        State::TestPending => (0, false, true),
        State::Swapping { index, .. } => (index, true, true),
        State::OnTrial => (0, false, false),
        State::Reverting { index, .. } => (index, true, false),
        State::Confirmed => unreachable!("no swap"),
    };
    let (want, end) = if test {
        (BootReason::Trial, State::OnTrial)
    } else {
        (BootReason::Reverted, State::Confirmed)
    };
    assert_eq!(reason, want, "{r:?}");
    let span = r.swap_sectors();
    assert_eq!(swapped, span - from, "{r:?}");
    match status(f, &L).expect("status after the boot") {
        Stored::Valid(a) => {
            assert_eq!(a.state, end, "{r:?}");
            assert_eq!(
                (a.primary_sectors, a.secondary_sectors),
                (r.secondary_sectors, r.primary_sectors)
            );
            assert!(is_newer(a.sequence, r.sequence), "{a:?} after {r:?}");
        }
        other => panic!("after swapping from {r:?}: {other:?}"),
    }
    let sector = |mem: &[u8], slot: lunbox_update::Region, i: u32| {
        let at = (i * L.sector_size) as usize;
        region(mem, slot)[at..at + L.sector_size as usize].to_vec()
    };
    for i in 0..L.slot_sectors() {
        let (p, s) = (sector(&f.mem, L.primary, i), sector(&f.mem, L.secondary, i));
        let (p0, s0) = (
            sector(&before.mem, L.primary, i),
            sector(&before.mem, L.secondary, i),
        );
        if i < from || i >= span {
            assert!(p == p0 && s == s0, "sector {i} outside the swap changed");
        } else if !resumed {
            assert!(p == s0 && s == p0, "sector {i} not swapped");
        }
    }
    if test && !resumed {
        let out = boot(f, &L).expect("the second boot");
        assert_eq!(out.reason, BootReason::Reverted);
        assert!(
            region(&f.mem, L.primary) == region(&before.mem, L.primary)
                && region(&f.mem, L.secondary) == region(&before.mem, L.secondary),
            "a test swapped in and out is not the slots as they were"
        );
    }
}
