//! The named device registry: disks (`ram0`, `img0`, `sd0`) and their partitions (`sd0.0`,
//! `sd0.1`, …, plus GPT partition names as aliases such as `sd0.rootfs`), as barebox names
//! them. The configuration and the console look devices up here.

use alloc::format;
#[cfg(feature = "partitions")]
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::device::DeviceRef;
#[cfg(feature = "partitions")]
use crate::part::{self, Partition, PartitionError, PartitionKind, Scheme};
#[cfg(feature = "partitions")]
use crate::view::View;

/// What a registered name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A whole device; `backend` says what is behind it (`ram`, `file /path`, `sd spi`).
    Disk {
        /// Backend description for listings.
        backend: String,
    },
    /// A partition of disk `parent` (feature `partitions`).
    #[cfg(feature = "partitions")]
    Partition {
        /// The disk's name.
        parent: String,
        /// MBR or GPT.
        scheme: Scheme,
        /// What the table says.
        partition: Partition,
    },
}

/// One registered device.
#[derive(Clone)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Other names for it (GPT partition names).
    pub aliases: Vec<String>,
    /// The device.
    pub device: DeviceRef,
    /// Disk or partition.
    pub kind: EntryKind,
}

/// A line of `devinfo`: what a device is, without holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Its name.
    pub name: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Blocks.
    pub blocks: u64,
    /// Bytes per block.
    pub block_size: u32,
    /// Whether writes are refused.
    pub read_only: bool,
    /// Backend (disks) or partition type (partitions).
    pub description: String,
    /// GPT partition name, if any.
    pub label: Option<String>,
}

impl Listing {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(u64::from(self.block_size))
    }
}

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The name is not usable.
    BadName {
        /// The name.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// The name is taken.
    Exists(String),
    /// No such device.
    NotFound(String),
    /// The operation needs a disk, and this is a partition.
    NotADisk(String),
    /// The disk's partition table is corrupt (feature `partitions`).
    #[cfg(feature = "partitions")]
    Partition {
        /// The disk.
        disk: String,
        /// What is wrong.
        error: PartitionError,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::BadName { name, why } => write!(f, "bad device name '{name}': {why}"),
            RegistryError::Exists(name) => write!(f, "device '{name}' already exists"),
            RegistryError::NotFound(name) => {
                write!(f, "no device '{name}' (list them with devinfo)")
            }
            RegistryError::NotADisk(name) => write!(f, "'{name}' is a partition, not a disk"),
            #[cfg(feature = "partitions")]
            RegistryError::Partition { disk, error } => write!(f, "{disk}: {error}"),
        }
    }
}

impl core::error::Error for RegistryError {}

/// Check a disk name: lower-case letters, digits, `_` and `-`, starting with a letter, at
/// most 32 characters. (`.` separates partitions.)
pub fn check_disk_name(name: &str) -> Result<(), RegistryError> {
    let bad = |why| {
        Err(RegistryError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > 32 {
        return bad("use 1 to 32 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("start with a lower-case letter");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return bad("use only a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

/// The registry.
#[derive(Default, Clone)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first free name `prefix0`, `prefix1`, … (as barebox numbers `ram0`, `sd0`).
    pub fn next_name(&self, prefix: &str) -> String {
        (0u32..)
            .map(|n| format!("{prefix}{n}"))
            .find(|name| self.get(name).is_none())
            .expect("some number is free")
    }

    /// Register a whole device under `name`.
    pub fn add_disk(
        &mut self,
        name: &str,
        device: DeviceRef,
        backend: &str,
    ) -> Result<(), RegistryError> {
        check_disk_name(name)?;
        if self.get(name).is_some() {
            return Err(RegistryError::Exists(name.to_string()));
        }
        self.entries.push(Entry {
            name: name.to_string(),
            aliases: Vec::new(),
            device,
            kind: EntryKind::Disk {
                backend: backend.to_string(),
            },
        });
        Ok(())
    }

    /// (Re)read the partition table of disk `name` and register its partitions as
    /// `name.N` (and GPT names as `name.LABEL`). Returns how many were found. On a corrupt
    /// table the disk keeps no partitions and the error says why. (Feature `partitions`: the
    /// Teensy 4.1 firmware reads no partition tables, for flash space.)
    #[cfg(feature = "partitions")]
    pub fn scan(&mut self, name: &str) -> Result<usize, RegistryError> {
        let disk = self
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        if !matches!(disk.kind, EntryKind::Disk { .. }) {
            return Err(RegistryError::NotADisk(name.to_string()));
        }
        let (name, device) = (disk.name.clone(), disk.device.clone());
        self.remove_partitions(&name);
        let table = {
            let mut dev = device.lock();
            part::read_table(&mut *dev)
        }
        .map_err(|error| RegistryError::Partition {
            disk: name.clone(),
            error,
        })?;
        let Some(table) = table else { return Ok(0) };
        for p in &table.partitions {
            let Some(view) = View::new(device.clone(), p.start, p.blocks, false) else {
                // read_table checked every partition against the disk.
                unreachable!("partition outside its disk after checks")
            };
            let mut aliases = Vec::new();
            if let PartitionKind::Gpt { name: label, .. } = &p.kind
                && let Some(alias) = alias_for(&name, label)
                && self.get(&alias).is_none()
                && !self.entries_pending_alias(&alias)
            {
                aliases.push(alias);
            }
            self.entries.push(Entry {
                name: format!("{name}.{}", p.index),
                aliases,
                device: Rc::new(lunbox_platform::coroutine::Mutex::new(view)),
                kind: EntryKind::Partition {
                    parent: name.clone(),
                    scheme: table.scheme,
                    partition: p.clone(),
                },
            });
        }
        Ok(table.partitions.len())
    }

    #[cfg(feature = "partitions")]
    fn entries_pending_alias(&self, alias: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.aliases.iter().any(|a| a == alias))
    }

    #[cfg(feature = "partitions")]
    fn remove_partitions(&mut self, disk: &str) {
        self.entries
            .retain(|e| !matches!(&e.kind, EntryKind::Partition { parent, .. } if parent == disk));
    }

    /// Remove disk `name` and its partitions. Users holding the device keep it alive.
    pub fn remove(&mut self, name: &str) -> Result<(), RegistryError> {
        let entry = self
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        if !matches!(entry.kind, EntryKind::Disk { .. }) {
            return Err(RegistryError::NotADisk(name.to_string()));
        }
        let name = entry.name.clone();
        #[cfg(feature = "partitions")]
        self.remove_partitions(&name);
        self.entries.retain(|e| e.name != name);
        Ok(())
    }

    /// The entry called `name` (or with that alias).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == name || e.aliases.iter().any(|a| a == name))
    }

    /// The device called `name`.
    pub fn device(&self, name: &str) -> Result<DeviceRef, RegistryError> {
        self.get(name)
            .map(|e| e.device.clone())
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))
    }

    /// Every entry, disks before their partitions, in registration order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Every device as a listing line (locks each device briefly).
    pub fn list(&self) -> Vec<Listing> {
        self.entries
            .iter()
            .map(|e| {
                let (blocks, block_size, read_only) = {
                    let d = e.device.lock();
                    (d.num_blocks(), d.block_size(), d.is_read_only())
                };
                let (description, label) = match &e.kind {
                    EntryKind::Disk { backend } => (backend.clone(), None),
                    #[cfg(feature = "partitions")]
                    EntryKind::Partition { partition, .. } => {
                        let label = match &partition.kind {
                            PartitionKind::Gpt { name, .. } if !name.is_empty() => {
                                Some(name.clone())
                            }
                            _ => None,
                        };
                        (part::type_label(&partition.kind), label)
                    }
                };
                Listing {
                    name: e.name.clone(),
                    aliases: e.aliases.clone(),
                    blocks,
                    block_size,
                    read_only,
                    description,
                    label,
                }
            })
            .collect()
    }
}

/// `disk.LABEL` for a GPT partition name usable as a device name, else `None`.
#[cfg(feature = "partitions")]
fn alias_for(disk: &str, label: &str) -> Option<String> {
    let ok = !label.is_empty()
        && label.len() <= 36
        && !label.bytes().all(|b| b.is_ascii_digit())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| format!("{disk}.{label}"))
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
