//! The hardware-free half of Sinter's AMD SVM backend: everything the vcpu
//! service needs to know about SVM that can be computed and tested on a host.
//!
//! - [`vmcb`]: the VMCB as `zerocopy` types (control area and state save
//!   area, AMD APM vol. 2 §15 and Appendix B), with compile-time offset
//!   checks, and the intercept set Sinter runs guests with.
//! - [`exit`]: `EXITCODE` + `EXITINFO1/2` decoded into a typed [`SvmExit`],
//!   and the plan for each exit ([`ExitAction`]).
//! - [`event`]: `EVENTINJ` / `EXITINTINFO` encoding.
//! - [`iopm`], [`msrpm`]: the I/O and MSR permission bitmaps.
//! - [`npt`]: nested page table entries and a table builder over a
//!   [`npt::TableMemory`] trait (map, unmap, protect a GPA; 2 MiB and 4 KiB).
//! - [`cpuid`]: the CPUID leaves a guest vCPU sees, and [`msr`]: which MSRs
//!   pass through, which are emulated and how, which are ignored.
//! - [`vcpu`]: the backend-neutral [`Vcpu`] trait, the SVM implementation
//!   over a [`vcpu::VmRunner`] (the one hardware touch, supplied by the
//!   bare-metal service) and a scripted fake for tests.
//!
//! Written for QEMU 7.2 TCG's SVM as well as silicon: TCG has nested paging
//! but no nrip-save, no decode assists, no flush-by-ASID, no VMCB clean
//! bits, no AVIC and no x2APIC, so nothing here relies on them
//! (`docs/hypervisor.md` says what that forces). It is checked by host
//! tests, and driven under QEMU TCG by the kernel's `hv` module (the
//! `svm-guest` system test); **none of it has run on silicon yet**.
//!
//! What this crate must never do: execute `VMRUN`, `VMLOAD`, `VMSAVE`,
//! `CLGI`/`STGI`, `RDMSR`/`WRMSR`, `CPUID` or any other privileged
//! instruction; dereference a physical address (table frames are reached
//! only through [`npt::TableMemory`]); trust a value the guest controls (a
//! guest register, an exit field, a guest-written MSR value) without
//! checking it; panic on anything a guest can cause; use `unsafe`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod cpuid;
pub mod event;
pub mod exit;
pub mod iopm;
pub mod msr;
pub mod msrpm;
pub mod npt;
pub mod pvclock;
pub mod vcpu;
pub mod vmcb;

pub use addr::{GuestPhysAddr, HostPhysAddr};
pub use event::{EventInjection, EventType};
pub use exit::{ExitAction, ExitCode, SvmExit};
pub use vcpu::{Vcpu, VcpuExit};
pub use vmcb::Vmcb;
