//! The hypervisor's bare-metal half: the SVM world switch (`svm`), nested
//! page tables on the direct map (`npt`), the Linux guest on one node
//! (`linux`: VM build, vcpu services, device glue), and the test guests
//! with their exit loop (`guest`, `selftest`) that prove SVM under QEMU TCG.
//! The VMCB logic, exit decoding and CPUID/MSR models are `sinter-svm`;
//! MMIO instruction emulation is `sinter-mmio-emulator`.

mod guest;
pub mod linux;
mod npt;
pub mod selftest;
mod svm;

use sinter_mmio_emulator::CpuMode;
use sinter_svm::cpuid::{CpuidResult, CpuidSource};
use sinter_svm::Vmcb;

/// The host's CPUID, the input of every guest CPUID model.
pub(crate) struct HostCpuid;

impl CpuidSource for HostCpuid {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
    }
}

/// The guest's execution mode, for decoding its instructions: real mode
/// without CR0.PE, 64-bit with a long-mode CS while EFER.LMA is set,
/// otherwise protected mode.
pub(crate) fn guest_mode(vmcb: &Vmcb) -> CpuMode {
    const EFER_LMA: u64 = 1 << 10;
    if vmcb.save.cr0 & 1 == 0 {
        CpuMode::Real16
    } else if vmcb.save.cs.is_long() && vmcb.save.efer & EFER_LMA != 0 {
        CpuMode::Long64
    } else {
        CpuMode::Protected32
    }
}
