//! SD cards over SPI, through embedded-sdmmc's `SdCard`, with delays that let other
//! coroutines run.

use core::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
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

/// The Stop Tran token that ends a multiple-block write.
const STOP_TRAN_TOKEN: u8 = 0xFD;

/// The SPI bus as embedded-sdmmc sees it: after the Stop Tran token that ends a
/// multiple-block write it clocks one more byte, the N_BR gap the SD spec makes the host skip
/// before it polls for "not busy".
///
/// Why: embedded-sdmmc 0.10 polls right after the token. A card that waits its one N_BR byte
/// before going busy answers that poll 0xFF, "ready", and gets the next command while it is
/// still programming the blocks: the command is lost or the write fails. Skipping the byte
/// costs nothing on cards without the gap (it reads 0xFF or the first busy byte, and busy
/// polling follows either way). embedded-sdmmc sends every token as a transaction of its own, a
/// one-byte transfer (data and CRC bytes go in larger writes), so that is what is recognised.
#[derive(Debug)]
pub struct SkipNbr<SPI>(SPI);

impl<SPI: SpiDevice<u8>> ErrorType for SkipNbr<SPI> {
    type Error = SPI::Error;
}

impl<SPI: SpiDevice<u8>> SpiDevice<u8> for SkipNbr<SPI> {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        let stop_tran = matches!(
            operations,
            [Operation::Transfer(_, [STOP_TRAN_TOKEN]) | Operation::Write([STOP_TRAN_TOKEN])]
        );
        self.0.transaction(operations)?;
        if stop_tran {
            // MOSI high while reading, as for every byte the host clocks in.
            self.0.transfer_in_place(&mut [0xFF])?;
        }
        Ok(())
    }
}

/// An SD card on an SPI bus, as a lunbox device.
pub type SpiSdCard<SPI> = SdmmcBackend<SdCard<SkipNbr<SPI>, YieldingDelay>>;

/// Initialise the card on `spi` (its chip select managed by the `SpiDevice`) and wrap it.
///
/// No card answering is [`StorageError::NoMedia`]; other failures are I/O errors at block 0.
/// After a failed transfer the card is initialised again on the next access. (embedded-sdmmc
/// sends no power-up clocks with chip select high; a card that insists on them answers after
/// the first CMD0 times out.)
pub fn open_sd_card<SPI: SpiDevice<u8>>(spi: SPI) -> Result<SpiSdCard<SPI>, StorageError> {
    SdmmcBackend::new(SdCard::new(SkipNbr(spi), YieldingDelay)).map_err(|e| match e {
        SdCardError::CardNotFound | SdCardError::TimeoutCommand(_) => StorageError::NoMedia,
        _ => StorageError::Io {
            lba: 0,
            op: IoOp::Read,
            reason: "SD card initialisation failed",
        },
    })
}
