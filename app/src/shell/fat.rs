//! `ls` and `cat` on FAT volumes through embedded-sdmmc.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::ControlFlow;

use embedded_sdmmc::{Mode, VolumeIdx, VolumeManager};
use lunbox_platform::coroutine;
use lunbox_storage::{EntryKind, FixedTime, SdmmcDevice};

use super::Context;
use crate::board::Board;

/// Most bytes `cat` prints.
const CAT_LIMIT: u32 = 1 << 20;

/// The FAT volume on `dev`: a partition (or a bare file system) as volume 0 behind a
/// synthetic MBR, a partitioned disk as its first volume.
fn volume_device<B: Board + 'static>(ctx: &Context<B>, dev: &str) -> Result<SdmmcDevice, String> {
    let registry = ctx.registry.borrow();
    let entry = registry
        .get(dev)
        .ok_or_else(|| format!("no device '{dev}' (see devinfo)"))?;
    let partitioned = matches!(entry.kind, EntryKind::Disk { .. })
        && registry.entries().any(
            |e| matches!(&e.kind, EntryKind::Partition { parent, .. } if *parent == entry.name),
        );
    let device = entry.device.clone();
    drop(registry);
    let d = if partitioned {
        SdmmcDevice::disk(device)
    } else {
        SdmmcDevice::volume(device)
    };
    d.map_err(|e| e.to_string())
}

fn fat_error(e: impl core::fmt::Debug) -> String {
    format!("FAT: {e:?} (is it a FAT16/FAT32 volume? try a partition such as img0.0)")
}

/// Why `name`, a step of a path on a volume that opened, cannot be used.
fn path_error<E: core::fmt::Debug + core::error::Error>(
    name: &str,
    e: embedded_sdmmc::Error<E>,
) -> String {
    use embedded_sdmmc::Error;
    match e {
        Error::NotFound => format!("{name}: no such file or directory"),
        Error::FilenameError(_) => {
            format!("{name}: not an 8.3 name (up to 8 characters, a dot, up to 3)")
        }
        Error::OpenedDirAsFile => format!("{name}: is a directory"),
        Error::OpenedFileAsDir => format!("{name}: is not a directory"),
        e => format!("{name}: {}", fat_error(e)),
    }
}

/// List directory `dir` (a `/`-separated path of 8.3 names).
pub(super) fn ls<B: Board + 'static>(
    ctx: &Context<B>,
    dev: &str,
    dir: &str,
) -> Result<String, String> {
    let mgr: VolumeManager<_, _> =
        VolumeManager::new(volume_device(ctx, dev)?, FixedTime::default());
    let volume = mgr.open_volume(VolumeIdx(0)).map_err(fat_error)?;
    let mut d = volume.open_root_dir().map_err(fat_error)?;
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        d.change_dir(part).map_err(|e| path_error(part, e))?;
    }
    let mut out = String::new();
    d.iterate_dir(|e| {
        let kind = if e.attributes.is_directory() {
            "<dir>"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<12} {:>10} {kind}\n",
            e.name.to_string(),
            e.size
        ));
        ControlFlow::Continue(())
    })
    .map_err(fat_error)?;
    out.pop();
    Ok(out)
}

/// Print file `path` (at most 1 MiB; the USB functions keep running meanwhile).
pub(super) fn cat<B: Board + 'static>(
    ctx: &Context<B>,
    dev: &str,
    path: &str,
) -> Result<String, String> {
    let mgr: VolumeManager<_, _> =
        VolumeManager::new(volume_device(ctx, dev)?, FixedTime::default());
    let volume = mgr.open_volume(VolumeIdx(0)).map_err(fat_error)?;
    let mut d = volume.open_root_dir().map_err(fat_error)?;
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let name = parts.pop().ok_or("name a file")?;
    for part in parts {
        d.change_dir(part).map_err(|e| path_error(part, e))?;
    }
    let f = d
        .open_file_in_dir(name, Mode::ReadOnly)
        .map_err(|e| path_error(name, e))?;
    if f.length() > CAT_LIMIT {
        return Err(format!(
            "{name} is {} bytes; cat prints at most {CAT_LIMIT}",
            f.length()
        ));
    }
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 512];
    while !f.is_eof() {
        let n = f.read(&mut chunk).map_err(fat_error)?;
        bytes.extend_from_slice(&chunk[..n]);
        coroutine::yield_now();
    }
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}
