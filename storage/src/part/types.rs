//! Human names of partition types, for listings.

use super::{Guid, PartitionKind};

/// MBR system IDs lunbox users meet.
const MBR_TYPES: &[(u8, &str)] = &[
    (0x01, "FAT12"),
    (0x04, "FAT16 <32M"),
    (0x06, "FAT16"),
    (0x07, "NTFS/exFAT"),
    (0x0B, "FAT32"),
    (0x0C, "FAT32 LBA"),
    (0x0E, "FAT16 LBA"),
    (0x82, "Linux swap"),
    (0x83, "Linux"),
    (0x8E, "Linux LVM"),
    (0xDA, "Non-FS data"),
    (0xEF, "EFI System"),
    (0xFD, "Linux RAID"),
];

/// GPT type GUIDs lunbox users meet.
const GPT_TYPES: &[(&str, &str)] = &[
    ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"),
    (
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "Microsoft basic data",
    ),
    ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
    ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
    ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
    ("A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"),
    ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
];

/// A short description of a partition's type: a known name, or the raw ID.
pub fn type_label(kind: &PartitionKind) -> alloc::string::String {
    use alloc::format;
    match kind {
        PartitionKind::Mbr { type_id, .. } => {
            match MBR_TYPES.iter().find(|(id, _)| id == type_id) {
                Some((_, name)) => format!("{name} (0x{type_id:02x})"),
                None => format!("0x{type_id:02x}"),
            }
        }
        PartitionKind::Gpt { type_guid, .. } => {
            match GPT_TYPES
                .iter()
                .find(|(g, _)| Guid::parse(g) == Some(*type_guid))
            {
                Some((_, name)) => alloc::string::String::from(*name),
                None => format!("{type_guid}"),
            }
        }
    }
}
