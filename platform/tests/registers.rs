//! Callee-saved registers, FP/SIMD ones and (on aarch64) the FP control register included,
//! survive switches.
//!
//! Each check loads known values into the callee-saved registers in inline assembly, calls
//! `yield_now` through the C ABI (so the registers must be preserved by the callee, i.e. by the
//! switch), and reads them back, while other coroutines do the same with other values.

#![cfg(feature = "std")]

use std::arch::asm;

use lunbox_platform::coroutine;

extern "C" fn do_yield() {
    coroutine::yield_now();
}

/// Integer callee-saved registers after a yield, given what was loaded: seed + i.
#[cfg(target_arch = "x86_64")]
fn integer_registers_across_yield(seed: u64) -> Vec<u64> {
    let mut out = [0u64; 5];
    // SAFETY: rbx (not an allowed operand) is saved and restored by the block itself; r12-r15
    // are declared clobbered; the stack stays 16-byte aligned at the call (two pushes); `out`
    // is valid for 5 writes; `do_yield` is an extern "C" fn.
    unsafe {
        asm!(
            "push rbx",
            "push {out}",
            "mov rbx, {seed}",
            "lea r12, [rbx + 1]",
            "lea r13, [rbx + 2]",
            "lea r14, [rbx + 3]",
            "lea r15, [rbx + 4]",
            "call {f}",
            "pop rax",
            "mov [rax], rbx",
            "mov [rax + 8], r12",
            "mov [rax + 16], r13",
            "mov [rax + 24], r14",
            "mov [rax + 32], r15",
            "pop rbx",
            seed = in(reg) seed,
            out = in(reg) out.as_mut_ptr(),
            f = in(reg) do_yield as extern "C" fn(),
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    out.to_vec()
}

/// x20-x28 after a yield, given what was loaded: seed + i. (x19 and x29 cannot be operands;
/// the switch saves them with the rest.)
#[cfg(target_arch = "aarch64")]
fn integer_registers_across_yield(seed: u64) -> Vec<u64> {
    let mut out = [0u64; 9];
    // SAFETY: x20-x28 are declared clobbered; `out` is kept on the stack across the call
    // (16-byte aligned slot) and valid for 9 writes; `do_yield` is an extern "C" fn.
    unsafe {
        asm!(
            "str {out}, [sp, #-16]!",
            "add x20, {seed}, #0",
            "add x21, {seed}, #1",
            "add x22, {seed}, #2",
            "add x23, {seed}, #3",
            "add x24, {seed}, #4",
            "add x25, {seed}, #5",
            "add x26, {seed}, #6",
            "add x27, {seed}, #7",
            "add x28, {seed}, #8",
            "blr {f}",
            "ldr x9, [sp], #16",
            "stp x20, x21, [x9, #0]",
            "stp x22, x23, [x9, #16]",
            "stp x24, x25, [x9, #32]",
            "stp x26, x27, [x9, #48]",
            "str x28, [x9, #64]",
            seed = in(reg) seed,
            out = in(reg) out.as_mut_ptr(),
            f = in(reg) do_yield as extern "C" fn(),
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    out.to_vec()
}

/// d8-d15 after a yield, given what was loaded: seed + i as f64.
#[cfg(target_arch = "aarch64")]
fn fp_registers_across_yield(seed: f64) -> Vec<f64> {
    let values: Vec<f64> = (0..8).map(|i| seed + i as f64).collect();
    let mut out = [0f64; 8];
    // SAFETY: d8-d15 are declared clobbered (v8-v15); pointers are to live buffers kept on the
    // stack across the call; `do_yield` is an extern "C" fn.
    unsafe {
        asm!(
            "stp {out}, xzr, [sp, #-16]!",
            "ldp d8, d9, [{vals}, #0]",
            "ldp d10, d11, [{vals}, #16]",
            "ldp d12, d13, [{vals}, #32]",
            "ldp d14, d15, [{vals}, #48]",
            "blr {f}",
            "ldr x9, [sp], #16",
            "stp d8, d9, [x9, #0]",
            "stp d10, d11, [x9, #16]",
            "stp d12, d13, [x9, #32]",
            "stp d14, d15, [x9, #48]",
            vals = in(reg) values.as_ptr(),
            out = in(reg) out.as_mut_ptr(),
            f = in(reg) do_yield as extern "C" fn(),
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    out.to_vec()
}

/// FPCR after a yield, with rounding mode `mode` (0..=3) set before it.
#[cfg(target_arch = "aarch64")]
fn fp_control_across_yield(mode: u32) -> u64 {
    let fpcr_in = u64::from(mode) << 22;
    let mut fpcr_out: u64 = 0;
    // SAFETY: sets FPCR, yields, reads it back and restores 0 (the default) before it ends;
    // the output pointer is kept on the stack across the call.
    unsafe {
        asm!(
            "stp {out}, xzr, [sp, #-16]!",
            "msr fpcr, {v}",
            "blr {f}",
            "ldr x9, [sp], #16",
            "mrs x10, fpcr",
            "str x10, [x9]",
            "msr fpcr, xzr",
            v = in(reg) fpcr_in,
            out = in(reg) &mut fpcr_out,
            f = in(reg) do_yield as extern "C" fn(),
            clobber_abi("C"),
        );
    }
    fpcr_out
}

#[cfg(target_arch = "aarch64")]
fn expected_fp_control(mode: u32) -> u64 {
    u64::from(mode) << 22
}

/// Run `check(seed)` in several coroutines and the main context at once, interleaved.
fn interleaved<T: PartialEq + std::fmt::Debug + 'static>(
    check: fn(u32) -> T,
    expected: fn(u32) -> T,
    seeds: &[u32],
) {
    let handles: Vec<_> = seeds[1..]
        .iter()
        .map(|&seed| {
            coroutine::spawn(format!("regs{seed}"), move || {
                (0..20).map(|_| check(seed)).collect::<Vec<_>>()
            })
        })
        .collect();
    for _ in 0..20 {
        assert_eq!(check(seeds[0]), expected(seeds[0]), "main context");
    }
    for (h, &seed) in handles.into_iter().zip(&seeds[1..]) {
        for got in h.join().unwrap() {
            assert_eq!(got, expected(seed), "coroutine with seed {seed}");
        }
    }
}

#[test]
fn integer_callee_saved_registers_survive_switches() {
    const N: u64 = if cfg!(target_arch = "x86_64") { 5 } else { 9 };
    interleaved(
        |seed| integer_registers_across_yield(seed as u64 * 1000),
        |seed| (0..N).map(|i| seed as u64 * 1000 + i).collect::<Vec<_>>(),
        &[1, 2, 3, 4],
    );
}

/// On x86_64 the FP environment is not switched: Rust code always runs with the default one
/// (see `arch/x86_64.rs`).
#[cfg(target_arch = "aarch64")]
#[test]
fn fp_control_register_is_per_coroutine() {
    interleaved(fp_control_across_yield, expected_fp_control, &[0, 1, 2, 3]);
}

#[cfg(target_arch = "aarch64")]
#[test]
fn fp_simd_callee_saved_registers_survive_switches() {
    interleaved(
        |seed| fp_registers_across_yield(seed as f64 * 0.5),
        |seed| {
            (0..8)
                .map(|i| seed as f64 * 0.5 + i as f64)
                .collect::<Vec<_>>()
        },
        &[1, 3, 5, 7],
    );
}

/// x86_64 has no callee-saved vector registers in the System V ABI: the compiler spills live
/// `xmm` values around every call, so FP values in ordinary code survive switches.
#[test]
fn floating_point_values_survive_switches() {
    let handles: Vec<_> = (1..4)
        .map(|k| {
            coroutine::spawn(format!("fp{k}"), move || {
                let mut acc = [k as f64; 4];
                let mut accs = std::hint::black_box(k as f32);
                for i in 0..50 {
                    for a in acc.iter_mut() {
                        *a = *a * 1.5 + i as f64;
                    }
                    accs = accs * 0.75 + i as f32;
                    coroutine::yield_now();
                }
                (acc, accs)
            })
        })
        .collect();
    for (k, h) in (1..4).zip(handles) {
        let mut acc = [k as f64; 4];
        let mut accs = k as f32;
        for i in 0..50 {
            for a in acc.iter_mut() {
                *a = *a * 1.5 + i as f64;
            }
            accs = accs * 0.75 + i as f32;
        }
        assert_eq!(h.join().unwrap(), (acc, accs));
    }
}
