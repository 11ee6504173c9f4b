//! SD cards over SPI, through embedded-sdmmc's `SdCard`, with delays that let other
//! coroutines run.

use core::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::SpiDevice;
use embedded_sdmmc::{SdCard, SdCardError};
use lunbox_platform::coroutine;

use crate::error::{IoOp, StorageError};
use crate::sdmmc::SdmmcBackend;

/// An [`embedded_hal::delay::DelayNs`] that sleeps on the coroutine clock: while the card is
/// busy the USB poller and the console keep running.
#[derive(Debug, Default, Clone, Copy)]
pub struct YieldingDelay;

impl DelayNs for YieldingDelay {
    fn delay_ns(&mut self, ns: u32) {
        coroutine::sleep(Duration::from_nanos(u64::from(ns)));
    }
}

/// An SD card on an SPI bus, as a lunbox device.
pub type SpiSdCard<SPI> = SdmmcBackend<SdCard<SPI, YieldingDelay>>;

/// Initialise the card on `spi` (its chip select managed by the `SpiDevice`) and wrap it.
///
/// No card answering is [`StorageError::NoMedia`]; other failures are I/O errors at block 0.
/// After a failed transfer the card is initialised again on the next access. (embedded-sdmmc
/// sends no power-up clocks with chip select high; a card that insists on them answers after
/// the first CMD0 times out.)
pub fn open_sd_card<SPI: SpiDevice<u8>>(spi: SPI) -> Result<SpiSdCard<SPI>, StorageError> {
    SdmmcBackend::new(SdCard::new(spi, YieldingDelay)).map_err(|e| match e {
        SdCardError::CardNotFound | SdCardError::TimeoutCommand(_) => StorageError::NoMedia,
        _ => StorageError::Io {
            lba: 0,
            op: IoOp::Read,
            reason: "SD card initialisation failed",
        },
    })
}
