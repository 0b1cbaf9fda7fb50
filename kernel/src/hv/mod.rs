//! The hypervisor's bare-metal half: the SVM world switch (`svm`), nested
//! page tables on the direct map (`npt`), and, for now, the test guests
//! and their exit loop (`guest`, `selftest`) that prove it under QEMU TCG.
//! The VMCB logic, exit decoding and CPUID/MSR models are `sinter-svm`;
//! MMIO instruction emulation is `sinter-mmio-emulator`.

mod guest;
pub mod linux;
mod npt;
pub mod selftest;
mod svm;
