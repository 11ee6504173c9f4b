//! The firmware's block devices: the RAM disk in OCRAM, the built-in microSD slot (cards come
//! and go: [`BuiltinSlot`] under a [`SlotWatcher`]), an SD card on LPSPI4, and a wrapper that
//! blinks the activity LED on every medium access.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use lunbox::card_slot::{CardSlot, SlotWatcher};
use lunbox_platform::coroutine::Mutex;
use lunbox_platform::imxrt::{ActivityLed, Pin13, Uart, Usdhc};
use lunbox_storage::{
    BlockDevice, DeviceRef, MediaSlot, RamDisk, Registry, SdmmcBackend, StorageError, open_sd_card,
    share,
};

use lunbox_config::Entry;

use crate::log;

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

/// The built-in microSD slot as a [`CardSlot`]: DAT3 card detection, cards brought up by the
/// uSDHC driver behind embedded-sdmmc's block device.
pub(crate) struct BuiltinSlot(&'static Usdhc);

impl CardSlot for BuiltinSlot {
    fn present(&mut self) -> bool {
        self.0.card_present()
    }

    fn open(&mut self) -> Result<Box<dyn BlockDevice>, String> {
        self.0.mark_card_uninit();
        let card = SdmmcBackend::new(self.0).map_err(|e| e.to_string())?;
        // After a failed transfer the next one brings the card up again.
        Ok(Box::new(card.on_error(|slot| slot.mark_card_uninit())))
    }

    fn removed(&mut self) {
        self.0.mark_card_uninit();
    }
}

/// What the firmware exports and shows.
pub(crate) struct Disks {
    /// Every device, by name.
    pub(crate) registry: Registry,
    /// The default mass-storage LUNs: every disk found at boot.
    pub(crate) defaults: Vec<Entry>,
    /// The activity LED, when pin 13 is not the SPI card's clock.
    pub(crate) led: Option<Rc<ActivityLed>>,
    /// Keeps `sd0` holding the card in the built-in slot (run it as a coroutine).
    pub(crate) slot: SlotWatcher<BuiltinSlot>,
}

/// Register disk `name` (through the activity LED, if there is one) and make it a default
/// LUN. Partition tables are not read on this firmware (flash space: docs/teensy41.md).
fn add(disks: &mut Disks, uart: &Uart, name: &str, device: DeviceRef, what: &str) {
    let device = match &disks.led {
        Some(led) => share(Blinking {
            inner: device,
            led: led.clone(),
        }),
        None => device,
    };
    if let Err(e) = disks.registry.add_disk(name, device, what) {
        log(uart, &format!("{name}: {e}"));
        return;
    }
    disks.defaults.push(Entry::new(name));
}

/// Register the board's devices: the microSD slot (`sd0`, with or without a card), the SPI
/// card (`sd1`, if pin 13 is its clock and a card answers) and the RAM disk (`ram0`).
pub(crate) fn setup(
    ram_disk: &'static mut [u8],
    sd_slot: Usdhc,
    pin13: Pin13,
    uart: &Uart,
) -> Disks {
    let (spi, led) = match pin13 {
        Pin13::SdSpi(spi) => (Some(spi), None),
        Pin13::Led(led) => (None, Some(Rc::new(led))),
    };
    // sd0 is the slot, registered with or without a card: a card put in later becomes its
    // medium (the host sees a medium change). The one in the slot now is opened at once.
    let media = Rc::new(Mutex::new(MediaSlot::empty()));
    let mut watcher = SlotWatcher::new(BuiltinSlot(Box::leak(Box::new(sd_slot))), media.clone());
    match watcher.check_now() {
        Some(event) => log(uart, &format!("sd0: {event}")),
        None => log(uart, "sd0: no card in the slot (one put in later is found)"),
    }
    // Present from the start: not a change for the host.
    media.lock().take_media_changed();
    let mut disks = Disks {
        registry: Registry::new(),
        defaults: Vec::new(),
        led,
        slot: watcher,
    };
    add(
        &mut disks,
        uart,
        "sd0",
        media,
        "microSD slot (uSDHC1, 4-bit)",
    );

    if let Some(spi) = spi {
        match open_sd_card(spi) {
            Ok(card) => add(
                &mut disks,
                uart,
                "sd1",
                share(card),
                "SD card on LPSPI4 (SPI)",
            ),
            Err(e) => log(uart, &format!("sd1 (SPI): {e}")),
        }
    }

    add(
        &mut disks,
        uart,
        "ram0",
        share(RamDisk::over(ram_disk)),
        "ram (OCRAM)",
    );
    disks
}
