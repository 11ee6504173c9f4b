//! The signed firmware image: `lunbox_update::image` (the format, its parsing, verification
//! and signing), shared with the board's `firmware` DFU target. docs/firmware-update.md
//! documents the byte layout.

pub(crate) use lunbox_update::image::*;
