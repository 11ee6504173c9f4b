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

    /// The Teensy 4.1's flash usable for programs: 8 MiB less the last 256 KiB, which hold
    /// the EEPROM emulation and the bootloader's restore program.
    const FLASH_SIZE: usize = 8 * 1024 * 1024 - 256 * 1024;
    /// The linker script imxrt-rt writes to OUT_DIR (on the linker's search path).
    const SCRIPT: &str = "lunbox-teensy41.x";
    /// Main stack (the coroutine runtime's main context: the console).
    const STACK: usize = 16 * 1024;
    /// Heap in DTCM: coroutine stacks, USB function buffers, device records.
    const HEAP: usize = 256 * 1024;

    pub(super) fn memory_map() {
        // Host builds of the feature (clippy --all-features on a PC) have nothing to link.
        let target = std::env::var("TARGET").unwrap_or_default();
        if !target.starts_with("thumbv7em-none") {
            return;
        }
        // The 512 KiB FlexRAM: 192 KiB ITCM for the code (room for the opt-level 3 build; the
        // size-optimised one CI checks stays under the 128 KiB flash budget) and 320 KiB DTCM
        // for data, stack and heap, as teensy4-bsp splits it. OCRAM2 (512 KiB, not FlexRAM)
        // takes only `.uninit`: the RAM disk. See docs/teensy41.md.
        RuntimeBuilder::from_flexspi(Family::Imxrt1060, FLASH_SIZE)
            .flexram_banks(FlexRamBanks {
                ocram: 0,
                itcm: 6,
                dtcm: 10,
            })
            .text(Memory::Itcm)
            .vectors(Memory::Dtcm)
            .rodata(Memory::Dtcm)
            .data(Memory::Dtcm)
            .bss(Memory::Dtcm)
            .uninit(Memory::Ocram)
            .stack(Memory::Dtcm)
            .stack_size(STACK)
            .heap(Memory::Dtcm)
            .heap_size(HEAP)
            .linker_script_name(SCRIPT)
            .build()
            .expect("imxrt-rt: the Teensy 4.1 memory map");
        println!("cargo:rustc-link-arg-bin=lunbox-teensy41=-T{SCRIPT}");
    }
}
