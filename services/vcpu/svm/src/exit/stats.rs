//! Exit counts by reason: plain integers the vcpu service bumps once per
//! `#VMEXIT` (no logging, no atomics) and prints when the VM stops, as
//! one `bench vm-exits:` line per vCPU that `cargo xtask bench --only
//! guest` reads (docs/benchmarks.md).

use core::fmt;

use super::{MsrDirection, SvmExit};

/// Why the guest exited, as the exit statistics group it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitReason {
    /// IN/OUT (the UART, the PM timer, the PIT, the RTC, ...).
    Ioio,
    /// CPUID.
    Cpuid,
    /// RDMSR.
    Rdmsr,
    /// WRMSR (the TSC-deadline timer is re-armed with one).
    Wrmsr,
    /// HLT (the guest's idle loop).
    Hlt,
    /// A nested page fault on the xAPIC page (timer, EOI, ICR, ...).
    NpfLapic,
    /// A nested page fault on a platform MMIO page (the I/O APIC).
    NpfIoapic,
    /// A nested page fault on guest-physical space with nothing behind it.
    NpfUnbacked,
    /// A host interrupt arrived while the guest ran (the host tick, an IPI).
    Intr,
    /// The interrupt window opened (V_IRQ): a pending interrupt can go in.
    Vintr,
    /// A host NMI.
    Nmi,
    /// The guest triple-faulted.
    Shutdown,
    /// Anything else (SMI, INIT, XSETBV, VMMCALL, WBINVD, #UD of SVM
    /// instructions, reflected exceptions, fatal exits).
    Other,
}

impl ExitReason {
    /// Every reason, in the order the statistics line prints them.
    pub const ALL: [ExitReason; 13] = [
        Self::Ioio,
        Self::Cpuid,
        Self::Rdmsr,
        Self::Wrmsr,
        Self::Hlt,
        Self::NpfLapic,
        Self::NpfIoapic,
        Self::NpfUnbacked,
        Self::Intr,
        Self::Vintr,
        Self::Nmi,
        Self::Shutdown,
        Self::Other,
    ];

    /// The key in the statistics line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ioio => "ioio",
            Self::Cpuid => "cpuid",
            Self::Rdmsr => "rdmsr",
            Self::Wrmsr => "wrmsr",
            Self::Hlt => "hlt",
            Self::NpfLapic => "npf-lapic",
            Self::NpfIoapic => "npf-ioapic",
            Self::NpfUnbacked => "npf-unbacked",
            Self::Intr => "intr",
            Self::Vintr => "vintr",
            Self::Nmi => "nmi",
            Self::Shutdown => "shutdown",
            Self::Other => "other",
        }
    }

    /// The reason of a decoded exit; `None` for a nested page fault, which
    /// the caller classifies by what lies at the faulting address.
    pub fn of(exit: &SvmExit) -> Option<ExitReason> {
        Some(match exit {
            SvmExit::Io(_) => Self::Ioio,
            SvmExit::Cpuid => Self::Cpuid,
            SvmExit::Msr(MsrDirection::Read) => Self::Rdmsr,
            SvmExit::Msr(MsrDirection::Write) => Self::Wrmsr,
            SvmExit::Hlt => Self::Hlt,
            SvmExit::NestedPageFault(_) => return None,
            SvmExit::PhysicalInterrupt => Self::Intr,
            SvmExit::VirtualInterrupt => Self::Vintr,
            SvmExit::Nmi => Self::Nmi,
            SvmExit::Shutdown => Self::Shutdown,
            _ => Self::Other,
        })
    }
}

/// Exits counted by reason, plus the number of `VMRUN`s (counted
/// separately, so that the reasons adding up to it checks the
/// classification).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitCounts {
    runs: u64,
    by_reason: [u64; ExitReason::ALL.len()],
}

impl ExitCounts {
    /// One more `VMRUN` (call just before it).
    pub fn vmrun(&mut self) {
        self.runs += 1;
    }

    /// The exit that `VMRUN` ended with.
    pub fn record(&mut self, reason: ExitReason) {
        self.by_reason[reason as usize] += 1;
    }

    /// `VMRUN`s so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Exits with `reason` so far.
    pub fn get(&self, reason: ExitReason) -> u64 {
        self.by_reason[reason as usize]
    }

    /// The statistics line's fields after the `vcpu=` and `run_ms=` the
    /// caller writes: `total=N ioio=N cpuid=N ...`.
    pub fn fields(&self) -> Fields<'_> {
        Fields(self)
    }
}

/// [`ExitCounts::fields`] as text.
pub struct Fields<'a>(&'a ExitCounts);

impl fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "total={}", self.0.runs)?;
        for reason in ExitReason::ALL {
            write!(f, " {}={}", reason.name(), self.0.get(reason))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use crate::exit::{ExitCode, IoAccess};

    #[test]
    fn all_lists_every_reason_once_in_discriminant_order() {
        for (i, r) in ExitReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        let mut names: std::vec::Vec<_> = ExitReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ExitReason::ALL.len());
    }

    #[test]
    fn decoded_exits_map_to_reasons() {
        let d = |code: u64, info1: u64, info2: u64| SvmExit::decode(ExitCode(code), info1, info2).unwrap();
        assert_eq!(ExitReason::of(&d(0x60, 0, 0)), Some(ExitReason::Intr));
        assert_eq!(ExitReason::of(&d(0x61, 0, 0)), Some(ExitReason::Nmi));
        assert_eq!(ExitReason::of(&d(0x62, 0, 0)), Some(ExitReason::Other));
        assert_eq!(ExitReason::of(&d(0x64, 0, 0)), Some(ExitReason::Vintr));
        assert_eq!(ExitReason::of(&d(0x72, 0, 0)), Some(ExitReason::Cpuid));
        assert_eq!(ExitReason::of(&d(0x78, 0, 0)), Some(ExitReason::Hlt));
        assert_eq!(ExitReason::of(&d(0x7c, 0, 0)), Some(ExitReason::Rdmsr));
        assert_eq!(ExitReason::of(&d(0x7c, 1, 0)), Some(ExitReason::Wrmsr));
        assert_eq!(ExitReason::of(&d(0x7f, 0, 0)), Some(ExitReason::Shutdown));
        assert_eq!(ExitReason::of(&d(0x81, 0, 0)), Some(ExitReason::Other));
        assert_eq!(ExitReason::of(&d(0x400, 0x4, 0xfee0_0000)), None);
        // OUT DX, AL to COM1 (size 8 bits).
        let out = SvmExit::Io(IoAccess::decode((0x3f8 << 16) | (1 << 4), 0x1000).unwrap());
        assert_eq!(ExitReason::of(&out), Some(ExitReason::Ioio));
    }

    #[test]
    fn the_line_lists_the_total_then_every_reason() {
        let mut c = ExitCounts::default();
        for reason in [ExitReason::Ioio, ExitReason::Ioio, ExitReason::NpfLapic] {
            c.vmrun();
            c.record(reason);
        }
        assert_eq!(c.runs(), 3);
        assert_eq!(c.get(ExitReason::Ioio), 2);
        assert_eq!(
            c.fields().to_string(),
            "total=3 ioio=2 cpuid=0 rdmsr=0 wrmsr=0 hlt=0 npf-lapic=1 npf-ioapic=0 npf-unbacked=0 intr=0 vintr=0 \
             nmi=0 shutdown=0 other=0"
        );
    }
}
