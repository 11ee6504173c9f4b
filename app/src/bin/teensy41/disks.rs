//! The firmware's block devices: the RAM disk in OCRAM, the built-in microSD slot, an SD card
//! on LPSPI4, and a wrapper that blinks the activity LED on every medium access.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use lunbox_platform::imxrt::{ActivityLed, Pin13, Uart, Usdhc};
use lunbox_storage::{
    BLOCK_SIZE, BlockDevice, DeviceRef, Registry, SdmmcBackend, StorageError, check_io,
    check_write, open_sd_card, share,
};

use crate::log;

/// A RAM disk over a fixed memory region (the board's OCRAM2 area), lost at reset.
pub(crate) struct RegionDisk {
    data: &'static mut [u8],
}

impl RegionDisk {
    pub(crate) fn new(data: &'static mut [u8]) -> Self {
        let whole = data.len() / BLOCK_SIZE as usize * BLOCK_SIZE as usize;
        RegionDisk {
            data: &mut data[..whole],
        }
    }
}

impl BlockDevice for RegionDisk {
    fn block_size(&self) -> u32 {
        BLOCK_SIZE
    }

    fn num_blocks(&self) -> u64 {
        (self.data.len() / BLOCK_SIZE as usize) as u64
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_io(lba, buf.len(), BLOCK_SIZE, self.num_blocks())?;
        let start = lba as usize * BLOCK_SIZE as usize;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        check_write(lba, buf.len(), BLOCK_SIZE, self.num_blocks(), false)?;
        let start = lba as usize * BLOCK_SIZE as usize;
        self.data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn is_read_only(&self) -> bool {
        false
    }
}

/// A device seen through the activity LED: every read and write pulses it.
struct Blinking {
    inner: DeviceRef,
    led: Rc<ActivityLed>,
}

impl BlockDevice for Blinking {
    fn block_size(&self) -> u32 {
        self.inner.lock().block_size()
    }

    fn num_blocks(&self) -> u64 {
        self.inner.lock().num_blocks()
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.led.pulse();
        self.inner.lock().read(lba, buf)
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), StorageError> {
        self.led.pulse();
        self.inner.lock().write(lba, buf)
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.inner.lock().flush()
    }

    fn is_read_only(&self) -> bool {
        self.inner.lock().is_read_only()
    }

    fn media_present(&self) -> bool {
        self.inner.lock().media_present()
    }

    fn take_media_changed(&mut self) -> bool {
        self.inner.lock().take_media_changed()
    }
}

/// What the firmware exports and shows.
pub(crate) struct Disks {
    /// Every device and partition, by name.
    pub(crate) registry: Rc<RefCell<Registry>>,
    /// The mass-storage LUNs in order: name and device (`None`: no medium at boot).
    pub(crate) luns: Vec<(String, Option<DeviceRef>)>,
    /// The activity LED, when pin 13 is not the SPI card's clock.
    pub(crate) led: Option<Rc<ActivityLed>>,
}

fn add(registry: &mut Registry, uart: &Uart, name: &str, device: DeviceRef, what: &str) {
    // Partition tables are not read on the board yet: the GPT check's CRC-32 (crc32fast,
    // a 16 KiB table) does not fit the flash budget. The LUNs export whole disks.
    if let Err(e) = registry.add_disk(name, device, what) {
        log(uart, &format!("{name}: {e}"));
    }
}

/// Register the board's devices and choose the LUNs: the microSD slot (`sd0`, a LUN even
/// without a card), the SPI card (`sd1`, if pin 13 is its clock) and the RAM disk (`ram0`).
pub(crate) fn setup(
    ram_disk: &'static mut [u8],
    sd_slot: Usdhc,
    pin13: Pin13,
    uart: &Uart,
) -> Disks {
    let mut registry = Registry::new();
    let mut luns = Vec::new();

    match SdmmcBackend::new(sd_slot) {
        Ok(card) => {
            let card = card.on_error(|slot| slot.mark_card_uninit());
            let device = share(card);
            add(
                &mut registry,
                uart,
                "sd0",
                device.clone(),
                "microSD slot (uSDHC1, 4-bit)",
            );
            luns.push((String::from("sd0"), Some(device)));
        }
        Err(e) => {
            log(uart, &format!("sd0: {e}"));
            luns.push((String::from("sd0"), None));
        }
    }

    let led = match pin13 {
        Pin13::SdSpi(spi) => {
            match open_sd_card(spi) {
                Ok(card) => {
                    let device = share(card);
                    add(
                        &mut registry,
                        uart,
                        "sd1",
                        device.clone(),
                        "SD card on LPSPI4 (SPI)",
                    );
                    luns.push((String::from("sd1"), Some(device)));
                }
                Err(e) => log(uart, &format!("sd1 (SPI): {e}")),
            }
            None
        }
        Pin13::Led(led) => Some(Rc::new(led)),
    };

    let ram = share(RegionDisk::new(ram_disk));
    add(&mut registry, uart, "ram0", ram.clone(), "ram (OCRAM)");
    luns.push((String::from("ram0"), Some(ram)));

    if let Some(led) = &led {
        for (_, device) in luns.iter_mut() {
            if let Some(inner) = device.take() {
                *device = Some(share(Blinking {
                    inner,
                    led: led.clone(),
                }));
            }
        }
    }

    Disks {
        registry: Rc::new(RefCell::new(registry)),
        luns,
        led,
    }
}
