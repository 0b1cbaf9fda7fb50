//! Switching stacks between the scheduler and a service.

use core::arch::global_asm;

// sinter_switch_context(save_rsp: *mut u64 [rdi], load_rsp: u64 [rsi])
// Saves the callee-saved registers of the caller on its stack, stores its
// rsp, loads the other context's rsp, restores its registers and returns
// into it. Everything else is caller-saved by the System V ABI.
global_asm!(
    ".global sinter_switch_context",
    "sinter_switch_context:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

extern "sysv64" {
    fn sinter_switch_context(save_rsp: *mut u64, load_rsp: u64);
}

/// Saves the current context into `*save` and resumes the one at `load`.
///
/// # Safety
/// `load` must be a stack pointer saved by this function, or built by
/// [`initial_frame`], on a stack that is still allocated and not in use.
pub unsafe fn switch(save: *mut u64, load: u64) {
    // SAFETY: the caller guarantees `load` is a valid saved context; `save`
    // points at a u64 the caller owns.
    unsafe { sinter_switch_context(save, load) }
}

/// Builds the frame a fresh task starts from: the six callee-saved
/// registers (zero, so rbp = 0 ends backtraces), then `entry` as the return
/// address, then a zero fake return address so `entry` sees the ABI's
/// "just called" alignment (rsp ≡ 8 mod 16). Returns the rsp to load.
pub fn initial_frame(stack_top: u64, entry: extern "sysv64" fn() -> !) -> u64 {
    let top = stack_top & !0xf;
    let words: [u64; 8] = [0, 0, 0, 0, 0, 0, entry as usize as u64, 0];
    let base = top - (words.len() as u64) * 8;
    for (i, word) in words.iter().enumerate() {
        let slot = (base + 8 * i as u64) as *mut u64;
        // SAFETY: [base, top) lies inside the task's own stack, which no one
        // runs on while its frame is (re)built.
        unsafe { slot.write(*word) };
    }
    base
}
