//! The sandbox's `firmware` DFU target: the downloaded image becomes `firmware.bin` in the
//! state directory. It is written to `firmware.bin.part` and renamed only when the download
//! completes, so an aborted download leaves the previous image. (The firmware-update work
//! makes this an A/B slot with signature checks.)

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use lunbox_gadget::dfu::{DfuError, ImageSink, Progress};

/// Largest firmware image accepted.
pub(crate) const MAX_FIRMWARE: u64 = 64 << 20;

/// Writes the `firmware` target into the state directory.
pub(crate) struct FirmwareFile {
    dir: PathBuf,
    part: Option<File>,
}

impl FirmwareFile {
    /// A sink writing `dir/firmware.bin`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        FirmwareFile {
            dir: dir.into(),
            part: None,
        }
    }

    fn final_path(&self) -> PathBuf {
        self.dir.join("firmware.bin")
    }

    fn part_path(&self) -> PathBuf {
        self.dir.join("firmware.bin.part")
    }
}

impl ImageSink for FirmwareFile {
    fn begin(&mut self) -> Result<(), DfuError> {
        self.part = Some(File::create(self.part_path()).map_err(|_| DfuError::Write)?);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<Progress, DfuError> {
        let f = self.part.as_mut().ok_or(DfuError::Unknown)?;
        f.write_all(data).map_err(|_| DfuError::Write)?;
        Ok(Progress::Done)
    }

    fn commit(&mut self) -> Result<Progress, DfuError> {
        let f = self.part.take().ok_or(DfuError::NotDone)?;
        f.sync_all().map_err(|_| DfuError::Write)?;
        drop(f);
        fs::rename(self.part_path(), self.final_path()).map_err(|_| DfuError::Write)?;
        Ok(Progress::Done)
    }

    fn discard(&mut self) {
        self.part = None;
        let _ = fs::remove_file(self.part_path());
    }

    fn max_size(&self) -> Option<u64> {
        Some(MAX_FIRMWARE)
    }

    fn can_read(&self) -> bool {
        true
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DfuError> {
        let mut f = match File::open(self.final_path()) {
            Ok(f) => f,
            Err(_) => return Ok(0), // no firmware yet: an empty upload
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
