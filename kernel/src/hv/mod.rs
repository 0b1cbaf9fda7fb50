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
