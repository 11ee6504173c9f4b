//! The sandbox's state directory and its built-in default disk image.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the default disk image in the state directory.
pub(crate) const DEFAULT_IMAGE: &str = "disk0.img";
/// Size of the default disk image.
pub(crate) const DEFAULT_IMAGE_BYTES: u64 = 64 << 20;
/// First block of the FAT32 partition (1 MiB aligned, as fdisk does).
const PARTITION_START: u64 = 2048;

/// What README.TXT on the default image says.
const README: &str = "This is a lunbox disk.\r\n\r\n\
lunbox is a USB mass-storage gadget: this FAT32 partition lives in the file\r\n\
disk0.img of lunbox's state directory. Change what lunbox exports from its console\r\n\
(type `help` there).\r\n";

/// Create the state directory and the default image if they do not exist yet. Returns the
/// image's path and whether it was created now.
pub(crate) fn ensure_default(state_dir: &Path) -> io::Result<(PathBuf, bool)> {
    fs::create_dir_all(state_dir)?;
    let path = state_dir.join(DEFAULT_IMAGE);
    if path.exists() {
        return Ok((path, false));
    }
    // Build it under a temporary name, then rename: a crash never leaves half an image.
    let tmp = state_dir.join(format!("{DEFAULT_IMAGE}.tmp"));
    {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.set_len(DEFAULT_IMAGE_BYTES)?;
        write_mbr(&mut file)?;
        let part_bytes = DEFAULT_IMAGE_BYTES - PARTITION_START * 512;
        let mut window = Window {
            file: &mut file,
            start: PARTITION_START * 512,
            len: part_bytes,
            pos: 0,
        };
        fatfs::format_volume(
            &mut window,
            fatfs::FormatVolumeOptions::new()
                .fat_type(fatfs::FatType::Fat32)
                .volume_label(*b"LUNBOX     "),
        )?;
        window.pos = 0;
        let fs = fatfs::FileSystem::new(&mut window, fatfs::FsOptions::new())?;
        let mut readme = fs.root_dir().create_file("README.TXT")?;
        readme.truncate()?;
        readme.write_all(README.as_bytes())?;
        drop(readme);
        // Count the free clusters so unmount writes them to FSInfo (fsck wants them there).
        fs.stats()?;
        fs.unmount()?;
        file.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    Ok((path, true))
}

/// A DOS partition table with one FAT32 (LBA) partition filling the disk from block 2048.
fn write_mbr(file: &mut File) -> io::Result<()> {
    let mut mbr = [0u8; 512];
    let blocks = DEFAULT_IMAGE_BYTES / 512 - PARTITION_START;
    let e = &mut mbr[446..462];
    e[4] = 0x0C;
    e[8..12].copy_from_slice(&(PARTITION_START as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(blocks as u32).to_le_bytes());
    // A non-zero disk signature, as partitioning tools write.
    mbr[440..444].copy_from_slice(&0x4C55_4E42u32.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&mbr)
}

/// A byte window of a file (the partition) for fatfs.
struct Window<'a> {
    file: &'a mut File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.pos).min(buf.len() as u64) as usize;
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (self.len - self.pos).min(buf.len() as u64) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "end of partition"));
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.write(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the partition",
            )),
        }
    }
}
