//! The board's `firmware` DFU target: [`FlashSlotSink`] receives a signed image
//! ([`crate::image`]) over DFU, writes it into the *secondary* slot of a [`Layout`] so that it
//! can run in place at the primary slot's address once [`boot`](crate::boot) has swapped the
//! slots, verifies it there, and only then calls [`request_test`](crate::request_test).
//!
//! # The image in a slot
//!
//! The header and the signature go to a *trailer* in the slot's first sector; the payload (the
//! raw firmware, linked to run at the primary slot's start plus one sector: its vector table
//! first) follows from the second sector, so that it runs where it lies after the swap (flash
//! offset 0x11_1000 in the Teensy 4.1's secondary slot, 0x1_1000 = address 0x6001_1000 in its
//! primary, where `lunbox-teensy41-boot` starts it). This is MCUboot's order, header first:
//!
//! | trailer offset | size | holds |
//! |---:|---:|---|
//! | 0 | 128 | the image header, as downloaded (magic `LUNBOXFW`, …, payload length N, SHA-256) |
//! | 128 | 64 | the Ed25519 signature, as downloaded (of the header followed by the payload) |
//! | 192 | sector size − 192 | erased (`0xff`) |
//!
//! The payload takes at most `slot size − sector size` bytes (1 MiB − 4 KiB = 1044480 on the
//! Teensy 4.1); a larger one is refused (errADDRESS). Bytes from the payload's end to the end
//! of its last sector are `0xff`; the sectors after that keep whatever they held. The image as
//! downloaded is `trailer[0..128] ‖ payload[0..N] ‖ trailer[128..192]`: what UPLOAD reads back
//! from the primary slot.
//!
//! [`request_test`](crate::request_test) is given the trailer sector and the payload's
//! sectors as the image, so the swap moves only those (the primary slot's trailer describes
//! the image that runs, the secondary's the previous one): a 110 KiB firmware swaps 29
//! sectors, not the slot's 256 (the first update on a board whose primary image size is not
//! recorded swaps the whole slot).
//!
//! # A download
//!
//! - `begin`: refused (errWRITE) while the state record says the secondary slot is in use (a
//!   trial runs, whose fallback is there, or a swap is recorded in progress), or the state
//!   sectors cannot be read.
//! - The first 128 bytes (the header) are checked as soon as they are complete, as the
//!   sandbox does: structure and board (errFILE), size (errADDRESS), version (errTARGET).
//!   Then a pending test (an earlier image waiting for the next boot) is withdrawn
//!   ([`cancel_test`](crate::cancel_test)): its image is about to be overwritten.
//! - The payload is programmed as it arrives, in 256-byte pages (a multiple of the flash's
//!   write size; the last one padded with `0xff`), each read back; every sector is erased
//!   just before the first page that goes into it. Bytes beyond the length the header gives
//!   are counted but not written.
//! - Manifestation (`commit`): the length must be the header's (errFILE); the trailer is
//!   written; then the image is verified *as it is in flash*: the header and the signature
//!   read back from the trailer, the payload read back from the slot, 32 KiB per step
//!   (dfuMANIFEST in between): SHA-256 and signature (errVERIFY) with the key given to
//!   [`FlashSlotSink::new`], board (errFILE), version (errTARGET). Only then
//!   [`request_test`](crate::request_test): the next boot swaps it in, on trial.
//!
//! A refused image is never requested: the state record is left as it was (a pending test
//! withdrawn by the download stays withdrawn), and the primary slot is not touched. A refusal
//! at manifestation also erases the trailer, so the secondary slot does not look like it
//! holds an image, unless the download ended before its header (a pending image's trailer
//! stays). [`FlashSlotSink::refusal`] says why the last download was refused.
//!
//! | DFU status | when |
//! |---|---|
//! | errFILE | not a lunbox image, unknown format, malformed header, wrong length (truncated or trailing data), another board, an empty payload |
//! | errVERIFY | the payload's SHA-256 or the signature does not match (tampered payload or header, another key) |
//! | errTARGET | a downgrade: older than the running firmware, without the image's `allow-downgrade` flag or the sink's permission |
//! | errWRITE | the secondary slot is in use (a trial runs: confirm it first), or the flash or the state record cannot be written |
//! | errADDRESS | the payload is larger than a slot less its trailer sector |
//!
//! Nothing here waits: erases and programs happen inside `write`, one sector erase at most
//! per 256-byte page, and verification is split into steps. The signature check itself
//! (`finish`, one step) needs about 8.5 KiB of stack (measured in `platform/qemu-m7`).

use core::fmt;

use embedded_storage::nor_flash::NorFlash;
use lunbox_gadget::dfu::{DfuError, ImageSink, Progress};

use crate::image::{self, Board, HEADER_LEN, Header, ImageError, SIGNATURE_LEN, Verifier, Version};
use crate::layout::{CHUNK, Layout};
use crate::state::{State, Stored};
use crate::swap;

/// Bytes of the trailer that hold something: the header and the signature.
pub const TRAILER_LEN: usize = HEADER_LEN + SIGNATURE_LEN;

/// Payload bytes read back and hashed per manifestation step.
const VERIFY_STEP: u32 = 32 * 1024;

/// bwPollTimeout while verifying: one step's work.
const VERIFY_POLL_MS: u32 = 10;

/// The page buffer: [`CHUNK`] bytes, which a flash's write size divides
/// ([`Layout::validate_for`]).
const PAGE: usize = CHUNK as usize;

/// The DFU status for an image error (the sandbox's target maps them the same way).
pub fn dfu_error(e: ImageError) -> DfuError {
    match e {
        ImageError::Hash | ImageError::Signature => DfuError::Verify,
        ImageError::TooShort
        | ImageError::Magic
        | ImageError::Format(_)
        | ImageError::Header
        | ImageError::Length { .. }
        | ImageError::Board => DfuError::File,
    }
}

/// Why a download was refused ([`FlashSlotSink::refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The image is malformed, truncated, for another board, or does not verify.
    Image(ImageError),
    /// The payload is empty: nothing to run.
    Empty,
    /// The payload does not fit a slot less its trailer sector.
    TooLarge {
        /// The header's payload length.
        payload_len: u64,
        /// The largest payload a slot takes.
        max: u32,
    },
    /// Older than the running firmware, and neither the image nor the sink allows it.
    Downgrade {
        /// The image's version.
        image: Version,
        /// The running firmware's.
        running: Version,
    },
    /// The secondary slot holds something still needed: a trial runs (its fallback is
    /// there), or a swap is recorded in progress.
    InUse {
        /// The state.
        state: State,
    },
    /// Erasing, programming or reading the flash failed at this offset, or what was
    /// programmed does not read back.
    Flash {
        /// The flash offset.
        offset: u32,
    },
    /// The state record cannot be read or written, or the layout does not fit the flash.
    State,
}

impl Refusal {
    /// The DFU status it is reported as.
    pub fn dfu_error(&self) -> DfuError {
        match self {
            Refusal::Image(e) => dfu_error(*e),
            Refusal::Empty => DfuError::File,
            Refusal::TooLarge { .. } => DfuError::Address,
            Refusal::Downgrade { .. } => DfuError::Target,
            Refusal::InUse { .. } | Refusal::Flash { .. } | Refusal::State => DfuError::Write,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Image(e) => write!(f, "image refused: {e}"),
            Refusal::Empty => f.write_str("image refused: empty payload"),
            Refusal::TooLarge { payload_len, max } => write!(
                f,
                "image refused: payload of {payload_len} bytes, a slot takes {max}"
            ),
            Refusal::Downgrade { image, running } => write!(
                f,
                "refusing {image}: older than the running {running} (downgrades not allowed)"
            ),
            Refusal::InUse { state } => write!(
                f,
                "the secondary slot is in use (the update is {state}): confirm first"
            ),
            Refusal::Flash { offset } => write!(f, "flash error at {offset:#x}"),
            Refusal::State => f.write_str("the update state cannot be read or written"),
        }
    }
}

/// A download in progress.
struct Download {
    /// Image bytes received so far (beyond the header's length too).
    received: u64,
    /// The header as it arrives.
    head: [u8; HEADER_LEN],
    /// The payload length, once the header has arrived and passed its checks.
    payload_len: Option<u32>,
    /// Payload bytes not programmed yet (they start at `programmed`).
    page: [u8; PAGE],
    page_len: usize,
    /// Payload bytes programmed (slot offset of `page`).
    programmed: u32,
    /// Slot bytes erased from offset 0 (whole sectors).
    erased: u32,
    /// The signature as it arrives.
    sig: [u8; SIGNATURE_LEN],
    sig_len: usize,
}

/// Manifestation: the payload being read back and verified.
struct Verify {
    verifier: Verifier,
    /// Payload bytes read back so far.
    read: u32,
    payload_len: u32,
}

/// What the sink is doing.
// The variants differ by ~0.7 KiB; the sink is one per firmware and lives inline, without a
// heap, so boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Job {
    Idle,
    Download(Download),
    Verify(Verify),
}

/// The `firmware` DFU target on flash: see the [module](self) for what it does.
pub struct FlashSlotSink<F: NorFlash> {
    flash: F,
    layout: Layout,
    key: [u8; 32],
    board: Board,
    running: Version,
    allow_downgrade: fn() -> bool,
    job: Job,
    refusal: Option<Refusal>,
}

impl<F: NorFlash> FlashSlotSink<F> {
    /// A target writing the secondary slot of `layout` in `flash`, accepting images signed
    /// with `key` (an Ed25519 public key, e.g. [`crate::keys::BUILTIN`]) for `board`, no
    /// older than `running` (the running firmware's version) unless the image carries the
    /// `allow-downgrade` flag or `allow_downgrade()` says yes when the image is checked (the
    /// console's `fw allow-downgrade`).
    pub fn new(
        flash: F,
        layout: Layout,
        key: [u8; 32],
        board: Board,
        running: Version,
        allow_downgrade: fn() -> bool,
    ) -> Self {
        FlashSlotSink {
            flash,
            layout,
            key,
            board,
            running,
            allow_downgrade,
            job: Job::Idle,
            refusal: None,
        }
    }

    /// The flash.
    pub fn flash(&mut self) -> &mut F {
        &mut self.flash
    }

    /// The flash, giving up the sink.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Why the last download was refused (`None` after a successful one, or while one runs).
    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    /// The largest payload a slot takes: the slot less its trailer sector.
    pub fn max_payload(&self) -> u32 {
        self.layout
            .secondary
            .size
            .saturating_sub(self.layout.sector_size)
    }

    /// The slot offset of the trailer: the slot's first sector.
    fn trailer_offset(&self) -> u32 {
        0
    }

    /// The slot offset of the payload: right after the trailer sector, where the firmware is
    /// linked to run (the primary slot's start plus one sector).
    pub fn payload_offset(&self) -> u32 {
        self.layout.sector_size
    }

    /// Records a refusal, forgets the download and returns its DFU status.
    fn refuse(&mut self, why: Refusal) -> DfuError {
        self.refusal = Some(why);
        self.job = Job::Idle;
        why.dfu_error()
    }

    /// Refuses an image older than the running firmware, unless allowed.
    fn check_version(&self, header: &Header) -> Result<(), Refusal> {
        if header.version < self.running && !header.allows_downgrade() && !(self.allow_downgrade)()
        {
            return Err(Refusal::Downgrade {
                image: header.version,
                running: self.running,
            });
        }
        Ok(())
    }

    /// The checks the header alone allows; its payload length if it passes.
    fn check_header(&self, head: &[u8; HEADER_LEN]) -> Result<u32, Refusal> {
        let header = Header::parse(head).map_err(Refusal::Image)?;
        image::check_board(&header, &self.board).map_err(Refusal::Image)?;
        let max = self.max_payload();
        if header.payload_len > u64::from(max) {
            return Err(Refusal::TooLarge {
                payload_len: header.payload_len,
                max,
            });
        }
        if header.payload_len == 0 {
            return Err(Refusal::Empty);
        }
        self.check_version(&header)?;
        Ok(header.payload_len as u32)
    }

    /// The state the secondary slot may be written in; withdraws a pending test if
    /// `cancel`.
    fn claim_secondary(&mut self, cancel: bool) -> Result<(), Refusal> {
        let stored = swap::status(&mut self.flash, &self.layout).map_err(|_| Refusal::State)?;
        match stored {
            Stored::Valid(r) if r.state == State::TestPending => {
                if cancel {
                    swap::cancel_test(&mut self.flash, &self.layout).map_err(|_| Refusal::State)?;
                }
                Ok(())
            }
            Stored::Valid(r) if !stored.secondary_writable() => {
                Err(Refusal::InUse { state: r.state })
            }
            _ => Ok(()),
        }
    }

    /// Erases `len` bytes at flash offset `offset` (whole sectors).
    fn erase(&mut self, offset: u32, len: u32) -> Result<(), Refusal> {
        self.flash
            .erase(offset, offset + len)
            .map_err(|_| Refusal::Flash { offset })
    }

    /// Programs `data` (a multiple of the write size, at most a page) at flash offset
    /// `offset` and reads it back.
    fn program(&mut self, offset: u32, data: &[u8]) -> Result<(), Refusal> {
        let failed = Refusal::Flash { offset };
        self.flash.write(offset, data).map_err(|_| failed)?;
        let mut back = [0u8; PAGE];
        let back = &mut back[..data.len()];
        self.flash.read(offset, back).map_err(|_| failed)?;
        if back != data {
            return Err(failed);
        }
        Ok(())
    }

    /// Programs the download's page buffer at its slot offset (padded with `0xff` to the
    /// write size), erasing the sector it goes into first if it is not erased yet.
    fn flush_page(&mut self, d: &mut Download) -> Result<(), Refusal> {
        if d.page_len == 0 {
            return Ok(());
        }
        let sector = self.layout.sector_size;
        let end = d.programmed + PAGE as u32;
        while d.erased < end {
            self.erase(
                self.layout.secondary.offset + self.payload_offset() + d.erased,
                sector,
            )?;
            d.erased += sector;
        }
        let len = d.page_len.next_multiple_of(F::WRITE_SIZE);
        d.page[d.page_len..len].fill(0xff);
        let at = self.layout.secondary.offset + self.payload_offset() + d.programmed;
        self.program(at, &d.page[..len])?;
        d.programmed += d.page_len as u32;
        d.page_len = 0;
        Ok(())
    }

    /// Takes the next bytes of the image.
    fn take(&mut self, d: &mut Download, mut data: &[u8]) -> Result<(), Refusal> {
        while !data.is_empty() {
            let at = d.received;
            let n = if at < HEADER_LEN as u64 {
                let at = at as usize;
                let n = (HEADER_LEN - at).min(data.len());
                d.head[at..at + n].copy_from_slice(&data[..n]);
                if at + n == HEADER_LEN {
                    let len = self.check_header(&d.head)?;
                    self.claim_secondary(true)?;
                    d.payload_len = Some(len);
                }
                n
            } else {
                let payload_len = u64::from(d.payload_len.unwrap_or(0));
                let in_payload = at - HEADER_LEN as u64;
                if in_payload < payload_len {
                    let n = ((payload_len - in_payload) as usize)
                        .min(data.len())
                        .min(PAGE - d.page_len);
                    d.page[d.page_len..d.page_len + n].copy_from_slice(&data[..n]);
                    d.page_len += n;
                    if d.page_len == PAGE {
                        self.flush_page(d)?;
                    }
                    n
                } else if d.sig_len < SIGNATURE_LEN {
                    let n = (SIGNATURE_LEN - d.sig_len).min(data.len());
                    d.sig[d.sig_len..d.sig_len + n].copy_from_slice(&data[..n]);
                    d.sig_len += n;
                    n
                } else {
                    // Trailing bytes: counted (manifestation refuses the length), not kept.
                    data.len()
                }
            };
            d.received += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Manifestation's first part: the length, the last page, the trailer; then the
    /// verification of what the flash holds starts.
    fn finish_download(&mut self, mut d: Download) -> Result<Verify, Refusal> {
        if d.received < HEADER_LEN as u64 {
            return Err(Refusal::Image(ImageError::TooShort));
        }
        let payload_len = d.payload_len.unwrap_or(0);
        let expected = u64::from(payload_len) + TRAILER_LEN as u64;
        if d.received != expected {
            return Err(Refusal::Image(ImageError::Length {
                expected,
                actual: d.received,
            }));
        }
        self.flush_page(&mut d)?;
        // The trailer: header, signature, 0xff.
        let trailer = self.layout.secondary.offset + self.trailer_offset();
        self.erase(trailer, self.layout.sector_size)?;
        let mut page = [0xffu8; PAGE];
        page[..HEADER_LEN].copy_from_slice(&d.head);
        page[HEADER_LEN..TRAILER_LEN].copy_from_slice(&d.sig);
        let len = TRAILER_LEN.next_multiple_of(F::WRITE_SIZE);
        self.program(trailer, &page[..len])?;
        // From here on, what the flash holds.
        let (head, sig) = self.read_trailer(trailer)?;
        let verifier = Verifier::new(&head, &sig, &self.key).map_err(Refusal::Image)?;
        Ok(Verify {
            verifier,
            read: 0,
            payload_len,
        })
    }

    /// The header and the signature of the trailer at flash offset `offset`.
    fn read_trailer(
        &mut self,
        offset: u32,
    ) -> Result<([u8; HEADER_LEN], [u8; SIGNATURE_LEN]), Refusal> {
        let mut buf = [0u8; PAGE];
        let len = TRAILER_LEN.next_multiple_of(F::READ_SIZE);
        self.flash
            .read(offset, &mut buf[..len])
            .map_err(|_| Refusal::Flash { offset })?;
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&buf[..HEADER_LEN]);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&buf[HEADER_LEN..TRAILER_LEN]);
        Ok((head, sig))
    }

    /// One manifestation step: the next payload bytes read back and hashed; at the end the
    /// checks, and the test request.
    fn verify_step(&mut self, mut v: Verify) -> Result<Option<Verify>, Refusal> {
        let end = v.payload_len.min(v.read.saturating_add(VERIFY_STEP));
        let mut buf = [0u8; PAGE];
        while v.read < end {
            let n = (end - v.read).min(PAGE as u32) as usize;
            let offset = self.layout.secondary.offset + self.payload_offset() + v.read;
            // Reads whole READ_SIZE units (it divides the page); hashes only the payload.
            let len = n.next_multiple_of(F::READ_SIZE);
            self.flash
                .read(offset, &mut buf[..len])
                .map_err(|_| Refusal::Flash { offset })?;
            v.verifier.update(&buf[..n]);
            v.read += n as u32;
        }
        if v.read < v.payload_len {
            return Ok(Some(v));
        }
        let header = v.verifier.finish().map_err(Refusal::Image)?;
        image::check_board(&header, &self.board).map_err(Refusal::Image)?;
        self.check_version(&header)?;
        let stored = swap::status(&mut self.flash, &self.layout).map_err(|_| Refusal::State)?;
        if !stored.secondary_writable() {
            let state = match stored {
                Stored::Valid(r) => r.state,
                _ => State::Confirmed,
            };
            return Err(Refusal::InUse { state });
        }
        // The image's sectors: the trailer and the payload's; the rest of the slot stays.
        let image_len = self.payload_offset() + v.payload_len;
        swap::request_test(&mut self.flash, &self.layout, image_len).map_err(|_| Refusal::State)?;
        Ok(None)
    }

    /// Runs a manifestation step; on a refusal, erases the trailer (best effort).
    fn manifest(&mut self, v: Verify) -> Result<Progress, DfuError> {
        match self.verify_step(v) {
            Ok(Some(v)) => {
                self.job = Job::Verify(v);
                Ok(Progress::Pending {
                    poll_timeout_ms: VERIFY_POLL_MS,
                })
            }
            Ok(None) => {
                self.job = Job::Idle;
                self.refusal = None;
                Ok(Progress::Done)
            }
            Err(why) => {
                self.erase_trailer();
                Err(self.refuse(why))
            }
        }
    }

    /// Erases the secondary slot's trailer sector, ignoring errors.
    fn erase_trailer(&mut self) {
        let trailer = self.layout.secondary.offset + self.trailer_offset();
        let _ = self.erase(trailer, self.layout.sector_size);
    }
}

impl<F: NorFlash> ImageSink for FlashSlotSink<F> {
    fn begin(&mut self) -> Result<(), DfuError> {
        self.job = Job::Idle;
        self.refusal = None;
        if self.layout.validate_for(&self.flash).is_err() {
            return Err(self.refuse(Refusal::State));
        }
        if let Err(why) = self.claim_secondary(false) {
            return Err(self.refuse(why));
        }
        self.job = Job::Download(Download {
            received: 0,
            head: [0; HEADER_LEN],
            payload_len: None,
            page: [0xff; PAGE],
            page_len: 0,
            programmed: 0,
            erased: 0,
            sig: [0; SIGNATURE_LEN],
            sig_len: 0,
        });
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<Progress, DfuError> {
        let Job::Download(mut d) = core::mem::replace(&mut self.job, Job::Idle) else {
            return Err(DfuError::Unknown);
        };
        match self.take(&mut d, data) {
            Ok(()) => {
                self.job = Job::Download(d);
                Ok(Progress::Done)
            }
            Err(why) => Err(self.refuse(why)),
        }
    }

    fn commit(&mut self) -> Result<Progress, DfuError> {
        let Job::Download(d) = core::mem::replace(&mut self.job, Job::Idle) else {
            return Err(DfuError::NotDone);
        };
        // Only a download whose header passed has written the slot (and withdrawn a pending
        // test): a shorter one leaves a pending image's trailer alone.
        let wrote = d.payload_len.is_some();
        match self.finish_download(d) {
            Ok(v) => self.manifest(v),
            Err(why) => {
                if wrote && matches!(why, Refusal::Image(_)) {
                    self.erase_trailer();
                }
                Err(self.refuse(why))
            }
        }
    }

    fn resume(&mut self) -> Result<Progress, DfuError> {
        match core::mem::replace(&mut self.job, Job::Idle) {
            Job::Verify(v) => self.manifest(v),
            Job::Download(d) => {
                self.job = Job::Download(d);
                Ok(Progress::Done)
            }
            Job::Idle => Err(DfuError::NotDone),
        }
    }

    fn discard(&mut self) {
        // The secondary slot keeps what was written; the state record was not touched (a
        // pending test the download withdrew stays withdrawn).
        self.job = Job::Idle;
    }

    fn max_size(&self) -> Option<u64> {
        Some(u64::from(self.max_payload()) + TRAILER_LEN as u64)
    }

    fn can_read(&self) -> bool {
        true
    }

    /// UPLOAD reads the running image back as it was downloaded: the header from the
    /// primary slot's trailer, the payload from the slot, the signature from the trailer.
    /// Nothing when the trailer holds no valid header (a board flashed over USB with a bare
    /// firmware).
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let primary = self.layout.primary;
        let trailer = primary.offset + self.trailer_offset();
        let (head, sig) = self.read_trailer(trailer).map_err(|_| DfuError::Unknown)?;
        let Ok(header) = Header::parse(&head) else {
            return Ok(0);
        };
        if header.payload_len > u64::from(self.max_payload()) {
            return Ok(0);
        }
        let payload_len = header.payload_len;
        let total = header.image_len();
        let mut n = 0;
        while n < buf.len() {
            let at = offset + n as u64;
            if at >= total {
                break;
            }
            let out = &mut buf[n..];
            let k = if at < HEADER_LEN as u64 {
                let from = &head[at as usize..];
                let k = from.len().min(out.len());
                out[..k].copy_from_slice(&from[..k]);
                k
            } else if at < HEADER_LEN as u64 + payload_len {
                let in_payload = (at - HEADER_LEN as u64) as u32;
                let left = (payload_len - u64::from(in_payload)) as usize;
                // Whole READ_SIZE units through a page buffer.
                let start = in_payload - in_payload % F::READ_SIZE as u32;
                let skip = (in_payload - start) as usize;
                let k = left.min(out.len()).min(PAGE - skip);
                let len = (skip + k).next_multiple_of(F::READ_SIZE);
                let mut page = [0u8; PAGE];
                self.flash
                    .read(
                        primary.offset + self.payload_offset() + start,
                        &mut page[..len],
                    )
                    .map_err(|_| DfuError::Unknown)?;
                out[..k].copy_from_slice(&page[skip..skip + k]);
                k
            } else {
                let from = &sig[(at - HEADER_LEN as u64 - payload_len) as usize..];
                let k = from.len().min(out.len());
                out[..k].copy_from_slice(&from[..k]);
                k
            };
            n += k;
        }
        Ok(n)
    }
}
