//! The `firmware` DFU target of the sandbox: downloads go to the inactive slot, and
//! manifestation verifies the image before it marks the slot to be tried once at the next
//! start.
//!
//! | DFU status | when |
//! |---|---|
//! | errFILE | not a lunbox image, unknown format, malformed header, wrong length (truncated or trailing data), another board |
//! | errVERIFY | the payload's SHA-256 or the signature does not match |
//! | errTARGET | a downgrade (older version than the running firmware) without `fw allow-downgrade on` or the image's downgrade flag |
//! | errWRITE | the slot cannot be written (a trial is running: confirm it first; a file error) |
//! | errADDRESS | larger than [`MAX_IMAGE`] |
//!
//! The checks that need only the header run as soon as it has arrived, so a wrong image
//! fails early; manifestation checks everything again on the complete image read back from
//! the slot's download file, on a helper thread (dfuMANIFEST until it is done), then renames
//! it into the slot and marks the slot pending in the state record. On any error nothing changes: the slot file and the state record stay as
//! they were.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use lunbox_gadget::dfu::{DfuError, ImageSink, Progress};

use super::image::{self, HEADER_LEN, Header, Version};
use super::slots::{self, Slot, Store};
use super::{BOARD, VERSION, keys, log};

/// The largest image accepted (header, payload and signature).
pub(crate) const MAX_IMAGE: u64 = 128 << 20;

/// The DFU status for an image error: the board's `firmware` target's mapping.
pub(crate) use lunbox_update::sink::dfu_error;

/// Whether an image with `header` may replace the running firmware.
fn check_downgrade(header: &Header) -> Result<(), DfuError> {
    if header.version < VERSION && !header.allows_downgrade() && !super::downgrades_allowed() {
        log(&format!(
            "firmware: refusing {} (older than the running {VERSION}; fw allow-downgrade on \
             allows it)",
            header.version
        ));
        return Err(DfuError::Target);
    }
    Ok(())
}

/// A download in progress.
struct Download {
    slot: Slot,
    file: File,
    /// The header, as it arrives.
    head: Vec<u8>,
}

/// An image being verified (on a helper thread: verification takes a while for a large
/// image, and more stack than a coroutine has).
struct Verifying {
    slot: Slot,
    result: Receiver<Result<Version, DfuError>>,
}

/// Writes firmware images to the inactive slot of a state directory.
pub(crate) struct SlotSink {
    store: Store,
    download: Option<Download>,
    verifying: Option<Verifying>,
}

/// Check the image in `part` as manifestation does; its version if it passes.
fn verify_part(part: &std::path::Path) -> Result<Version, DfuError> {
    let bytes = fs::read(part).map_err(|_| DfuError::Write)?;
    let verified = image::verify(&bytes, &keys::BUILTIN).map_err(|e| {
        log(&format!("firmware: image refused: {e}"));
        dfu_error(e)
    })?;
    image::check_board(&verified.header, &BOARD).map_err(|e| {
        log(&format!(
            "firmware: image refused: it is for {}, this is {BOARD}",
            verified.header.board
        ));
        dfu_error(e)
    })?;
    check_downgrade(&verified.header)?;
    Ok(verified.header.version)
}

impl SlotSink {
    /// The `firmware` target for the slots of `state_dir`.
    pub(crate) fn new(state_dir: &std::path::Path) -> SlotSink {
        SlotSink {
            store: Store::new(state_dir),
            download: None,
            verifying: None,
        }
    }

    /// Make `slot`, whose image passed verification as `version`, the pending slot.
    fn activate(&self, slot: Slot, version: Version) -> Result<(), DfuError> {
        let mut rec = self.store.load().map_err(|_| DfuError::Write)?;
        if rec.on_trial() || rec.active == Some(slot) || super::running() == Some(slot) {
            return Err(DfuError::Write);
        }
        // The record must never name a slot whose file is being replaced: un-pend it first.
        if rec.pending == Some(slot) || rec.version(slot).is_some() {
            rec.pending = rec.pending.filter(|&p| p != slot);
            rec.set_version(slot, None);
            self.store.save(&mut rec).map_err(|_| DfuError::Write)?;
        }
        let part = self.store.part_path(slot);
        let path = self.store.image_path(slot);
        fs::rename(&part, &path).map_err(|_| DfuError::Write)?;
        slots::sync_dir(&path).map_err(|_| DfuError::Write)?;
        rec.pending = Some(slot);
        rec.set_version(slot, Some(version));
        self.store.save(&mut rec).map_err(|_| DfuError::Write)?;
        log(&format!(
            "firmware: {version} verified and written to slot {slot}; it runs once at the next \
             start (reset), and stays if it confirms itself (fw confirm)"
        ));
        Ok(())
    }

    /// See whether verification is done; finish manifestation if it is.
    fn poll_verifying(&mut self) -> Result<Progress, DfuError> {
        let Some(v) = self.verifying.as_ref() else {
            return Err(DfuError::NotDone);
        };
        let result = match v.result.recv_timeout(Duration::from_millis(1)) {
            Err(RecvTimeoutError::Timeout) => {
                return Ok(Progress::Pending {
                    poll_timeout_ms: 10,
                });
            }
            Err(RecvTimeoutError::Disconnected) => Err(DfuError::Unknown),
            Ok(r) => r,
        };
        let slot = v.slot;
        self.verifying = None;
        let result = result.and_then(|version| self.activate(slot, version));
        if result.is_err() {
            let _ = fs::remove_file(self.store.part_path(slot));
        }
        result.map(|()| Progress::Done)
    }
}

impl ImageSink for SlotSink {
    fn begin(&mut self) -> Result<(), DfuError> {
        self.discard();
        let rec = self.store.load().map_err(|e| {
            log(&format!("firmware: {e}"));
            DfuError::Write
        })?;
        if rec.on_trial() {
            log("firmware: a new firmware is on trial: confirm it (fw confirm) or reset first");
            return Err(DfuError::Write);
        }
        let slot = rec.active.map_or(Slot::A, Slot::other);
        if super::running() == Some(slot) {
            log(&format!(
                "firmware: slot {slot} is running but the record says it is not active: \
                 not overwriting it"
            ));
            return Err(DfuError::Write);
        }
        self.store.create_dir().map_err(|_| DfuError::Write)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.store.part_path(slot))
            .map_err(|_| DfuError::Write)?;
        self.download = Some(Download {
            slot,
            file,
            head: Vec::with_capacity(HEADER_LEN),
        });
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<Progress, DfuError> {
        let d = self.download.as_mut().ok_or(DfuError::Unknown)?;
        let header_was_complete = d.head.len() == HEADER_LEN;
        if !header_was_complete {
            let take = (HEADER_LEN - d.head.len()).min(data.len());
            d.head.extend_from_slice(&data[..take]);
        }
        let early = if !header_was_complete && d.head.len() == HEADER_LEN {
            // The header is complete: refuse what it alone tells is wrong.
            Header::parse(&d.head)
                .and_then(|h| image::check_board(&h, &BOARD).map(|()| h))
                .map_err(|e| {
                    log(&format!("firmware: image refused: {e}"));
                    dfu_error(e)
                })
                .and_then(|h| {
                    if h.image_len() > MAX_IMAGE {
                        return Err(DfuError::Address);
                    }
                    check_downgrade(&h)
                })
        } else {
            Ok(())
        };
        let written = d.file.write_all(data).map_err(|_| DfuError::Write);
        if let Err(e) = early.and(written) {
            self.discard();
            return Err(e);
        }
        Ok(Progress::Done)
    }

    fn commit(&mut self) -> Result<Progress, DfuError> {
        let d = self.download.take().ok_or(DfuError::NotDone)?;
        let slot = d.slot;
        let synced = d.file.sync_all();
        drop(d.file);
        if synced.is_err() {
            let _ = fs::remove_file(self.store.part_path(slot));
            return Err(DfuError::Write);
        }
        let (tx, rx) = mpsc::channel();
        let part = self.store.part_path(slot);
        std::thread::Builder::new()
            .name(String::from("fw-verify"))
            .spawn(move || {
                let _ = tx.send(verify_part(&part));
            })
            .map_err(|_| DfuError::Unknown)?;
        self.verifying = Some(Verifying { slot, result: rx });
        self.poll_verifying()
    }

    fn resume(&mut self) -> Result<Progress, DfuError> {
        self.poll_verifying()
    }

    fn discard(&mut self) {
        let slot = match (self.download.take(), self.verifying.take()) {
            (Some(d), _) => Some(d.slot),
            (None, Some(v)) => Some(v.slot),
            (None, None) => None,
        };
        if let Some(slot) = slot {
            let _ = fs::remove_file(self.store.part_path(slot));
        }
    }

    fn max_size(&self) -> Option<u64> {
        Some(MAX_IMAGE)
    }

    fn can_read(&self) -> bool {
        true
    }

    /// UPLOAD reads the image of the slot this program runs from (nothing for the built-in
    /// program).
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let Some(slot) = super::running() else {
            return Ok(0);
        };
        let mut f = match File::open(self.store.image_path(slot)) {
            Ok(f) => f,
            Err(_) => return Ok(0),
        };
        f.seek(SeekFrom::Start(offset))
            .map_err(|_| DfuError::Unknown)?;
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => return Err(DfuError::Unknown),
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::image::{Board, FLAG_ALLOW_DOWNGRADE};
    use crate::update::slots::Record;

    fn secret() -> [u8; 32] {
        let text = include_str!("../../keys/dev.key");
        keys::parse(text.as_bytes(), keys::SECRET_TAG.as_bytes()).unwrap()
    }

    fn image(version: &str, board: Board, flags: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
        image::sign(
            &payload,
            Version::parse(version).unwrap(),
            board,
            flags,
            &secret(),
        )
    }

    /// Download `bytes` as the DFU class would; the first error.
    fn download(sink: &mut SlotSink, bytes: &[u8]) -> Result<(), DfuError> {
        sink.begin()?;
        for chunk in bytes.chunks(256) {
            if let Err(e) = sink.write(chunk) {
                sink.discard();
                return Err(e);
            }
        }
        let mut p = sink.commit();
        while let Ok(Progress::Pending { .. }) = p {
            p = sink.resume();
        }
        p.map(|_| ())
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lunbox-sink-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn good_images_go_to_the_inactive_slot_and_bad_ones_change_nothing() {
        let d = dir("slots");
        let store = Store::new(&d);
        let mut sink = SlotSink::new(&d);
        let newer = image("99.0.0", BOARD, 0);
        let mut tampered = newer.clone();
        tampered[HEADER_LEN + 10] ^= 4;
        let mut truncated = newer.clone();
        truncated.pop();
        let other_board = image("99.0.0", Board::new("teensy41").unwrap(), 0);
        let older = image("0.0.1", BOARD, 0);
        let cases: [(&[u8], DfuError); 6] = [
            (&tampered, DfuError::Verify),
            (&truncated, DfuError::File),
            (&other_board, DfuError::File),
            (&older, DfuError::Target),
            (b"not an image at all", DfuError::NotDone),
            (&[0u8; 300], DfuError::File),
        ];
        for (bytes, want) in cases {
            // A download too short for a header fails at manifestation only.
            let want = if want == DfuError::NotDone {
                DfuError::File
            } else {
                want
            };
            assert_eq!(download(&mut sink, bytes), Err(want));
            assert_eq!(store.load().unwrap(), Record::default(), "{want:?}");
            assert!(!store.image_path(Slot::A).exists());
            assert!(!store.part_path(Slot::A).exists());
        }
        // A good one: slot a, pending.
        download(&mut sink, &newer).unwrap();
        let rec = store.load().unwrap();
        assert_eq!(rec.pending, Some(Slot::A));
        assert_eq!(rec.version(Slot::A), Version::parse("99.0.0"));
        assert_eq!(fs::read(store.image_path(Slot::A)).unwrap(), newer);
        // An older one with the downgrade flag replaces it.
        let flagged = image("0.0.1", BOARD, FLAG_ALLOW_DOWNGRADE);
        download(&mut sink, &flagged).unwrap();
        let rec = store.load().unwrap();
        assert_eq!(
            (rec.pending, rec.version(Slot::A)),
            (Some(Slot::A), Version::parse("0.0.1"))
        );
        // With slot a active, downloads go to b.
        let mut rec = Record {
            active: Some(Slot::A),
            ..Record::default()
        };
        store.save(&mut rec).unwrap();
        download(&mut sink, &newer).unwrap();
        assert_eq!(store.load().unwrap().pending, Some(Slot::B));
        // During a trial nothing can be written.
        let mut rec = Record {
            active: Some(Slot::B),
            confirmed: false,
            previous: Some(Slot::A),
            ..Record::default()
        };
        store.save(&mut rec).unwrap();
        assert_eq!(download(&mut sink, &newer), Err(DfuError::Write));
        let _ = fs::remove_dir_all(&d);
    }
}
