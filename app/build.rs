//! Build script of the `lunbox` package. Only the Teensy 4.1 firmware (feature `teensy41`,
//! target `thumbv7em-none-eabihf`) needs it: it generates the firmware's memory map and boot
//! image layout with imxrt-rt and links the `lunbox-teensy41` binary with it. Host builds do
//! nothing here.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "teensy41")]
    teensy41::memory_map();
}

#[cfg(feature = "teensy41")]
mod teensy41 {
    use imxrt_rt::{Family, FlexRamBanks, Memory, RuntimeBuilder};

    /// The Teensy 4.1's flash usable for the plain firmware's image: up to lunbox's records
    /// (firmware update state at 0x7B_C000, configuration at 0x7B_E000), before the last
    /// 256 KiB, which hold PJRC's EEPROM emulation and restore program. The linker, not only
    /// the budget, keeps the image out of the sectors `config save` erases.
    const FLASH_SIZE: usize = 0x7B_C000;
    /// The linker script imxrt-rt writes to OUT_DIR (on the linker's search path).
    const SCRIPT: &str = "lunbox-teensy41.x";
    /// The FlexRAM split, the same for the firmware and the boot stage: the firmware's
    /// start-up sets it again while the boot stage's data is still where it was.
    const FLEXRAM: FlexRamBanks = FlexRamBanks {
        ocram: 0,
        itcm: 6,
        dtcm: 10,
    };
    /// The boot stage's flash (lunbox-update's `TEENSY41_BOOT_STAGE`) and its linker script.
    const BOOT_STAGE: usize = 64 * 1024;
    const BOOT_SCRIPT: &str = "lunbox-teensy41-boot.x";
    /// The boot stage's stack: the swap copies through 256-byte buffers.
    const BOOT_STACK: usize = 8 * 1024;
    /// Where the firmware runs in the primary slot (lunbox-update's `Layout::TEENSY41`: the
    /// slot at 0x1_0000, its first sector the image trailer), for `teensy41-ab`.
    const SLOT_OFFSET: u32 = 0x1_1000;
    const SLOT_SIZE: usize = 1024 * 1024 - 4096;
    /// Main stack (the coroutine runtime's main context: the board's set-up and the boot, then
    /// it waits for the `console` coroutine).
    const STACK: usize = 16 * 1024;
    /// Heap in DTCM: coroutine stacks, USB function buffers, device records.
    const HEAP: usize = 256 * 1024;

    /// Where both programs put their sections: the FlexRAM split, code in ITCM, everything
    /// else in DTCM but `.uninit` (in `uninit`), with a `stack`- and `heap`-byte stack and heap.
    fn place(
        builder: &mut RuntimeBuilder,
        uninit: Memory,
        stack: usize,
        heap: usize,
    ) -> &mut RuntimeBuilder {
        builder
            .flexram_banks(FLEXRAM)
            .text(Memory::Itcm)
            .vectors(Memory::Dtcm)
            .rodata(Memory::Dtcm)
            .data(Memory::Dtcm)
            .bss(Memory::Dtcm)
            .uninit(uninit)
            .stack(Memory::Dtcm)
            .stack_size(stack)
            .heap(Memory::Dtcm)
            .heap_size(heap)
    }

    /// The line of imxrt-rt's boot header (imxrt-rt 0.1.8, `imxrt-boot-header.x`) that pads
    /// the header to 8 KiB.
    const HEADER_PAD: &str = ". = ORIGIN(FLASH) + 0x2000;   /* Reserve the remaining 8K as a convenience for a non-XIP boot. */";

    /// The line of imxrt-rt's boot header that gives the boot data's image length as the sum of
    /// the sections' sizes (it leaves out `.data` and alignment gaps).
    const IMAGE_SIZE: &str = "__image_size = SIZEOF(.boot) + SIZEOF(.vector_table) + SIZEOF(.xip) + SIZEOF(.text) + SIZEOF(.rodata);";

    /// Lets the image follow the boot header (FlexSPI configuration block at 0, image vector
    /// table and boot data at 0x1000, the reset handler) instead of starting at 0x2000, and
    /// gives the boot data the image's real length.
    ///
    /// imxrt-rt pads the header to 8 KiB for a boot where the ROM copies the image; lunbox
    /// boots in place (XIP: the reset handler runs from flash and copies the sections
    /// itself), where the ROM reads only the configuration block and the IVT. PJRC's own
    /// Teensy 4 linker script likewise puts code right after the boot data. The ~3 KiB are
    /// flash the firmware needs (docs/teensy41.md, "Build and budget"). Fails the build if
    /// imxrt-rt's script no longer has the line, rather than link a layout nobody checked.
    fn close_boot_header_gap(script: &str) {
        let path = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join(script);
        let text = std::fs::read_to_string(&path).expect("imxrt-rt's linker script");
        for line in [HEADER_PAD, IMAGE_SIZE] {
            assert_eq!(
                text.matches(line).count(),
                1,
                "{}: imxrt-rt's boot header changed: check close_boot_header_gap",
                path.display()
            );
        }
        let text = text.replace(
            HEADER_PAD,
            ". = ALIGN(4);   /* lunbox: the image follows (XIP boot). */",
        );
        // The boot data's length: the whole image, from the start of the flash to the end of
        // `.data`'s load image.
        let text = text.replace(
            IMAGE_SIZE,
            "__image_size = LOADADDR(.data) + SIZEOF(.data) - ORIGIN(FLASH);",
        );
        std::fs::write(&path, text).expect("write the linker script");
    }

    pub(super) fn memory_map() {
        // Host builds of the feature (clippy --all-features on a PC) have nothing to link.
        let target = std::env::var("TARGET").unwrap_or_default();
        if !target.starts_with("thumbv7em-none") {
            return;
        }
        // The 512 KiB FlexRAM: 192 KiB ITCM for the code (room for the `firmware` profile's
        // build; the opt-level 3 one does not fit) and 320 KiB DTCM
        // for data, stack and heap, as teensy4-bsp splits it. OCRAM2 (512 KiB, not FlexRAM)
        // takes only `.uninit`: the RAM disk. See docs/teensy41.md.
        // With `teensy41-ab` the firmware is the primary slot's image, started by the boot
        // stage; else the boot image the ROM starts.
        let mut firmware = if cfg!(feature = "teensy41-ab") {
            RuntimeBuilder::in_flash(Family::Imxrt1060, SLOT_SIZE, SLOT_OFFSET)
        } else {
            RuntimeBuilder::from_flexspi(Family::Imxrt1060, FLASH_SIZE)
        };
        place(&mut firmware, Memory::Ocram, STACK, HEAP)
            .linker_script_name(SCRIPT)
            .build()
            .expect("imxrt-rt: the Teensy 4.1 memory map");
        if !cfg!(feature = "teensy41-ab") {
            close_boot_header_gap(SCRIPT);
        }
        println!("cargo:rustc-link-arg-bin=lunbox-teensy41=-T{SCRIPT}");

        // The boot stage: a boot image of at most BOOT_STAGE bytes, no heap.
        let mut boot = RuntimeBuilder::from_flexspi(Family::Imxrt1060, BOOT_STAGE);
        place(&mut boot, Memory::Dtcm, BOOT_STACK, 0)
            .linker_script_name(BOOT_SCRIPT)
            .build()
            .expect("imxrt-rt: the Teensy 4.1 boot stage's memory map");
        println!("cargo:rustc-link-arg-bin=lunbox-teensy41-boot=-T{BOOT_SCRIPT}");
    }
}
