//! The MMIO instruction emulator of Sinter's fault service.
//!
//! When a guest touches a device page, the nested page fault gives the
//! faulting guest-physical address but not the instruction: QEMU TCG's SVM
//! has no decode assists (no instruction bytes in the VMCB) and no
//! nrip-save. So the fault service fetches up to 15 bytes at the guest's
//! RIP, and [`emulate_mmio`] decodes them with `iced-x86`, checks they are
//! one of the forms below, performs the access on an [`MmioBus`] and
//! returns the new RIP (RIP + instruction length).
//!
//! # Supported forms
//!
//! Exactly what Linux's `readb/w/l/q`, `writeb/w/l/q` and their callers
//! compile to, plus a few read-modify-write forms:
//!
//! | form | widths | notes |
//! |---|---|---|
//! | `mov reg, [mem]` | 8, 16, 32, 64 | 8-bit includes AH/CH/DH/BH and SPL/BPL/SIL/DIL/R8B–R15B; 32-bit zero-extends into the 64-bit register; 8/16-bit keep the other bits |
//! | `mov [mem], reg` | 8, 16, 32, 64 | |
//! | `mov [mem], imm` | 8, 16, 32, 64 | the 64-bit form's imm32 is sign-extended |
//! | `mov` with a moffs operand (`A0`–`A3`) | 8, 16, 32, 64 | |
//! | `movzx reg, [mem]` | 8, 16 → 16, 32, 64 | |
//! | `movsx reg, [mem]`, `movsxd reg, [mem]` | 8, 16, 32 → 16, 32, 64 | |
//! | `add/sub/and/or/xor [mem], reg/imm` | 8, 16, 32, 64 | read, compute, write back; CF, PF, AF, ZF, SF, OF set as the CPU does (AF cleared by the logical ops, where it is undefined); a LOCK prefix is accepted |
//!
//! Any addressing the decoder accepts: base, index × scale, displacement,
//! RIP-relative, SIB, REX, operand-size (0x66) and address-size (0x67)
//! prefixes, segment overrides (FS/GS bases from [`GuestCpuState`]; others
//! 0). The operand's computed linear address must have the same page
//! offset as the faulting GPA, which catches emulating the wrong
//! instruction; the access must not cross a 4 KiB page.
//!
//! Not supported (an [`EmulationError`] naming the instruction): string
//! instructions (`movs`, `stos`, `ins`/`outs` are port I/O anyway), `xchg`,
//! `cmpxchg`, `test`/`cmp`/`bt*` with memory, ALU operations with memory as
//! the source, `push`/`pop` of memory, x87/SSE/AVX loads and stores,
//! real-mode and 16-bit code.
//!
//! What this crate must never do: trust guest bytes (every byte string is
//! a decode result or an error, never a panic; tested with ≥ 100,000
//! random strings); touch guest state when it refuses an instruction; read
//! or write anything but the one access at the faulting GPA; execute
//! anything; use `unsafe`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bus;
mod decode;
mod error;
mod execute;
mod flags;
mod state;
pub mod walk;

pub use bus::{AccessSize, BusError, MmioBus};
pub use decode::{decode_mmio, Extend, MmioInstruction, MmioOp, RegOperand, RegPart, Source};
pub use error::{EmulationError, Why};
pub use execute::{emulate_mmio, Emulated, MmioAccess, MmioAccessKind};
pub use flags::{alu, AluOp};
pub use iced_x86::Mnemonic;
pub use state::*;
