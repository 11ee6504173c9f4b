//! The boot stage's decision and swap engine ([`boot`]), and the application's side
//! ([`request_test`], [`confirm`], [`cancel_test`], [`status`]).
//!
//! # State machine
//!
//! ```text
//!             request_test (app: secondary written and verified)
//!  Confirmed ───────────────────────────────────────────────► TestPending
//!   ▲  ▲  ◄──────────────────── cancel_test (app) ───────────────┘  │ boot
//!   │  │                                                            ▼
//!   │  │ boot: last sector swapped back         boot: swap primary↔secondary, sector by
//!   │  │                                         sector through scratch (Swapping{i, phase})
//!   │  └────────── Reverting{i, phase} ◄─┐                          │ last sector swapped
//!   │                                    │ boot (the new image      ▼
//!   │                                    └─ never confirmed) ─── OnTrial: the new image runs
//!   └──────────────────────── confirm (app, run by the new image) ──┘
//! ```
//!
//! A boot in `Confirmed` (or with blank or unreadable state) just runs the primary slot. A
//! boot in `TestPending` or `Swapping` swaps (or finishes swapping) and runs the new image on
//! trial; a boot in `OnTrial` or `Reverting` swaps (or finishes swapping) back and runs the
//! previous image, confirmed. Whatever runs, runs from the primary slot.
//!
//! # The swap, and power cuts
//!
//! Sector `i` (of the first [`Record::swap_sectors`] sectors) is swapped in three steps, each
//! an erase of the destination, a copy in [`CHUNK`]-byte pages and a read-back, and each
//! followed by a state record naming the step done:
//!
//! | recorded phase | step | its source, intact because |
//! |---|---|---|
//! | `Start` | primary\[i\] → scratch | nothing of sector `i` has been touched |
//! | `Scratch` | secondary\[i\] → primary\[i\] | only scratch and primary\[i\] were written since |
//! | `Primary` | scratch → secondary\[i\] | scratch is complete (recorded), untouched since |
//!
//! After the last step of a sector the record moves to `{i + 1, Start}`, after the last
//! sector to `OnTrial` (test) or `Confirmed` (revert), with the two sector counts exchanged.
//! A power cut anywhere (in an erase, a page program, a record write) leaves the newest valid
//! record naming a step whose source is intact, so the next boot does that step again from
//! the start, and the swap ends exactly as it would have without the cut. A torn record
//! write is invalid (CRC) and the previous record stands (see [`crate::state`]).
//!
//! The scratch sector is erased once per sector swapped: 256 times for a full swap of the
//! Teensy's 1 MiB slots, fewer when the images are small (only the sectors either image
//! occupies are swapped).
//!
//! [`CHUNK`]: crate::layout::CHUNK

use core::fmt;

use embedded_storage::nor_flash::NorFlash;

use crate::layout::{CHUNK, Layout, LayoutError};
use crate::state::{self, Log, Phase, Record, State, Stored};

/// What goes wrong in the boot stage or the application's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The flash reported an error.
    Flash(E),
    /// The layout is invalid or does not fit the flash.
    Layout(LayoutError),
    /// What was just programmed does not read back: the page at this offset.
    Readback {
        /// The flash offset of the page (or record) that differs.
        offset: u32,
    },
    /// The call does not fit the current state (e.g. [`request_test`] while a trial runs).
    InvalidState {
        /// The current state.
        state: State,
    },
    /// An image length of zero or larger than a slot.
    ImageLength {
        /// The length given.
        len: u32,
        /// The slot's size.
        slot_size: u32,
    },
}

impl<E> From<LayoutError> for Error<E> {
    fn from(e: LayoutError) -> Self {
        Error::Layout(e)
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Flash(e) => write!(f, "flash error: {e:?}"),
            Error::Layout(e) => write!(f, "bad flash layout: {e}"),
            Error::Readback { offset } => {
                write!(
                    f,
                    "flash at {offset:#x} does not read back what was written"
                )
            }
            Error::InvalidState { state } => write!(f, "not possible now: the update is {state}"),
            Error::ImageLength { len, slot_size } => {
                write!(f, "image of {len} bytes: a slot holds 1 to {slot_size}")
            }
        }
    }
}

/// Why the primary slot's image runs, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootReason {
    /// No state record and blank state sectors: a freshly flashed board; the primary slot
    /// runs as flashed.
    Fresh,
    /// The confirmed image.
    Confirmed,
    /// The new image, swapped in, runs on trial: unless it calls [`confirm`], the next boot
    /// swaps the previous image back.
    Trial,
    /// The image on trial did not confirm itself: the previous image is back, confirmed.
    Reverted,
    /// The state sectors hold no valid record but are not blank (corruption): the primary
    /// slot runs as it is, without swapping (a swap needs to know where it stands).
    StateUnreadable,
    /// The newest record does not fit the layout (written for another one): the primary slot
    /// runs as it is, as for [`BootReason::StateUnreadable`].
    StateMismatch,
}

/// What [`boot`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOutcome {
    /// The flash offset of the image to start: always the primary slot's.
    pub start: u32,
    /// Why, and which image that is.
    pub reason: BootReason,
    /// A swap record was found: an earlier boot started this swap and was cut off.
    pub resumed: bool,
    /// Sectors this boot finished swapping.
    pub sectors_swapped: u32,
}

/// Which way a swap goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The new image in: ends on trial.
    Test,
    /// The previous image back: ends confirmed.
    Revert,
}

/// Decides what runs and does (or finishes) a swap first: the boot stage calls it at every
/// start, then starts the image at [`BootOutcome::start`].
///
/// On an error nothing may run: the flash may be half-swapped. The boot stage should reset
/// (a later boot resumes the swap); it must not start the primary slot.
pub fn boot<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<BootOutcome, Error<F::Error>> {
    layout.validate_for(flash)?;
    let mut log = state::scan(flash, layout)?;
    let mut outcome = BootOutcome {
        start: layout.primary.offset,
        reason: BootReason::Confirmed,
        resumed: false,
        sectors_swapped: 0,
    };
    let record = match log.stored(layout) {
        Stored::Blank => {
            outcome.reason = BootReason::Fresh;
            return Ok(outcome);
        }
        Stored::Damaged => {
            outcome.reason = BootReason::StateUnreadable;
            return Ok(outcome);
        }
        Stored::Mismatch(_) => {
            outcome.reason = BootReason::StateMismatch;
            return Ok(outcome);
        }
        Stored::Valid(record) => record,
    };
    let (direction, index, phase) = match record.state {
        State::Confirmed => return Ok(outcome),
        State::TestPending => (Direction::Test, 0, Phase::Start),
        State::Swapping { index, phase } => (Direction::Test, index, phase),
        State::OnTrial => (Direction::Revert, 0, Phase::Start),
        State::Reverting { index, phase } => (Direction::Revert, index, phase),
    };
    outcome.resumed = matches!(
        record.state,
        State::Swapping { .. } | State::Reverting { .. }
    );
    outcome.sectors_swapped = swap(flash, layout, &mut log, &record, direction, index, phase)?;
    outcome.reason = match direction {
        Direction::Test => BootReason::Trial,
        Direction::Revert => BootReason::Reverted,
    };
    Ok(outcome)
}

/// Swaps the first `record.swap_sectors()` sectors of the slots, from sector `index` at
/// `phase` on, recording progress; returns the sectors it finished.
fn swap<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    log: &mut Log,
    record: &Record,
    direction: Direction,
    mut index: u32,
    mut phase: Phase,
) -> Result<u32, Error<F::Error>> {
    let (p, s) = (record.primary_sectors, record.secondary_sectors);
    let span = record.swap_sectors();
    let mut done = 0;
    loop {
        let (primary, secondary) = (layout.primary_sector(index), layout.secondary_sector(index));
        let next = match phase {
            Phase::Start => {
                copy(flash, layout, primary, layout.scratch)?;
                Phase::Scratch
            }
            Phase::Scratch => {
                copy(flash, layout, secondary, primary)?;
                Phase::Primary
            }
            Phase::Primary => {
                copy(flash, layout, layout.scratch, secondary)?;
                done += 1;
                index += 1;
                Phase::Start
            }
        };
        phase = next;
        if index == span {
            let end = match direction {
                Direction::Test => State::OnTrial,
                Direction::Revert => State::Confirmed,
            };
            *log = state::append(flash, layout, log, end, s, p)?;
            return Ok(done);
        }
        let progress = match direction {
            Direction::Test => State::Swapping { index, phase },
            Direction::Revert => State::Reverting { index, phase },
        };
        *log = state::append(flash, layout, log, progress, p, s)?;
    }
}

/// Copies the sector at `from` to the sector at `to`: erase, program page by page (pages
/// that are all `0xff` are left erased), read back.
fn copy<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    from: u32,
    to: u32,
) -> Result<(), Error<F::Error>> {
    flash
        .erase(to, to + layout.sector_size)
        .map_err(Error::Flash)?;
    let mut page = [0u8; CHUNK as usize];
    let mut back = [0u8; CHUNK as usize];
    for offset in (0..layout.sector_size).step_by(CHUNK as usize) {
        flash.read(from + offset, &mut page).map_err(Error::Flash)?;
        if page.iter().all(|&b| b == 0xff) {
            continue;
        }
        flash.write(to + offset, &page).map_err(Error::Flash)?;
        flash.read(to + offset, &mut back).map_err(Error::Flash)?;
        if back != page {
            return Err(Error::Readback {
                offset: to + offset,
            });
        }
    }
    Ok(())
}

/// Sectors of `len` bytes, rounded up.
fn sectors(len: u32, layout: &Layout) -> u32 {
    len.div_ceil(layout.sector_size)
}

/// What the state sectors hold: for the application (`fw status`) and to decide whether the
/// secondary slot may be written ([`Stored::secondary_writable`]). Reads only.
pub fn status<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<Stored, Error<F::Error>> {
    layout.validate_for(flash)?;
    Ok(state::scan(flash, layout)?.stored(layout))
}

/// Asks the next boot to swap in the image in the secondary slot and run it on trial: the
/// application calls it once the download (`image_len` bytes from the start of the secondary
/// slot) is complete and verified.
///
/// Possible when the running image is confirmed (or the state is blank or unreadable, which
/// boots treat as confirmed) and again while a test is pending (another image was written
/// meanwhile, after [`cancel_test`]); not while a trial runs ([`Error::InvalidState`]).
pub fn request_test<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    image_len: u32,
) -> Result<(), Error<F::Error>> {
    layout.validate_for(flash)?;
    if image_len == 0 || image_len > layout.secondary.size {
        return Err(Error::ImageLength {
            len: image_len,
            slot_size: layout.secondary.size,
        });
    }
    let log = state::scan(flash, layout)?;
    let primary_sectors = match log.stored(layout) {
        Stored::Valid(r) => match r.state {
            State::Confirmed | State::TestPending => r.primary_sectors,
            state => return Err(Error::InvalidState { state }),
        },
        // What the primary slot holds is not known: swap all of it.
        Stored::Blank | Stored::Damaged | Stored::Mismatch(_) => layout.slot_sectors(),
    };
    state::append(
        flash,
        layout,
        &log,
        State::TestPending,
        primary_sectors,
        sectors(image_len, layout),
    )?;
    Ok(())
}

/// Withdraws a pending test (before the secondary slot is written again): the state goes
/// back to confirmed. Nothing to do when nothing is pending; not possible during a trial.
pub fn cancel_test<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<(), Error<F::Error>> {
    layout.validate_for(flash)?;
    let log = state::scan(flash, layout)?;
    match log.stored(layout) {
        Stored::Valid(r) => match r.state {
            State::TestPending => {
                state::append(
                    flash,
                    layout,
                    &log,
                    State::Confirmed,
                    r.primary_sectors,
                    r.secondary_sectors,
                )?;
                Ok(())
            }
            State::Confirmed => Ok(()),
            state => Err(Error::InvalidState { state }),
        },
        Stored::Blank | Stored::Damaged | Stored::Mismatch(_) => Ok(()),
    }
}

/// The running image keeps its place: called by a new image on trial once it is healthy.
/// Nothing to do when the running image is already confirmed (or a test is merely pending);
/// with blank or unreadable state, writes a confirmed record (repairing the state). Not
/// possible while a swap is recorded in progress (the application cannot be running then).
pub fn confirm<F: NorFlash>(flash: &mut F, layout: &Layout) -> Result<(), Error<F::Error>> {
    layout.validate_for(flash)?;
    let log = state::scan(flash, layout)?;
    let (primary, secondary) = match log.stored(layout) {
        Stored::Valid(r) => match r.state {
            State::OnTrial => (r.primary_sectors, r.secondary_sectors),
            State::Confirmed | State::TestPending => return Ok(()),
            state => return Err(Error::InvalidState { state }),
        },
        Stored::Blank | Stored::Damaged | Stored::Mismatch(_) => {
            (layout.slot_sectors(), layout.slot_sectors())
        }
    };
    state::append(flash, layout, &log, State::Confirmed, primary, secondary)?;
    Ok(())
}
