//! The guest MSR policy: which MSRs pass through to the CPU (held in the
//! VMCB and moved by VMRUN/VMLOAD/VMSAVE), which Sinter emulates, which it
//! ignores with a log line, and which fault (#GP, as on a CPU without them).
//!
//! | MSR | name | read | write |
//! |---|---|---|---|
//! | 0x10 | TSC | emulated: host TSC + TSC_OFFSET | ignored + log (a guest must not break cross-node TSC sync) |
//! | 0x1B | APIC_BASE | emulated: 0xFEE0_0000, EN, BSP on vCPU 0 | emulated: EN may toggle (virtual xAPIC on/off); x2APIC, relocation, reserved bits → #GP |
//! | 0x8B | PATCH_LEVEL | ignored (0) + log | ignored + log |
//! | 0xFE | MTRRcap | emulated: 8 variable, fixed, WC | #GP (read-only) |
//! | 0x174–0x176 | SYSENTER_CS/ESP/EIP | passthrough (VMLOAD/VMSAVE) | passthrough |
//! | 0x179 | MCG_CAP | ignored (0: no banks) + log | #GP |
//! | 0x17A–0x17B | MCG_STATUS, MCG_CTL | ignored (0) + log | ignored + log |
//! | 0x200–0x20F | MTRR_PHYSBASE/MASK0–7 | emulated (per-vCPU store) | emulated (checked) |
//! | 0x250, 0x258–0x259, 0x268–0x26F | fixed MTRRs | emulated | emulated (checked) |
//! | 0x277 | PAT | emulated (VMCB G_PAT) | emulated: bad memory type → #GP; written to G_PAT |
//! | 0x2FF | MTRR_DEF_TYPE | emulated | emulated (checked) |
//! | 0xC000_0080 | EFER | emulated: VMCB EFER without SVME | emulated: SCE/LME/NXE only; LME change with paging on, SVME, reserved → #GP; SVME kept set in the VMCB |
//! | 0xC000_0081–0xC000_0084 | STAR, LSTAR, CSTAR, SFMASK | passthrough (VMLOAD/VMSAVE) | passthrough |
//! | 0xC000_0100–0xC000_0102 | FS_BASE, GS_BASE, KERNEL_GS_BASE | passthrough (VMLOAD/VMSAVE) | passthrough |
//! | 0xC000_0103 | TSC_AUX | emulated (per-vCPU; loaded into the CPU around VMRUN for RDTSCP/RDPID) | emulated: bits 63:32 → #GP |
//! | 0xC001_0000–0xC001_0007 | legacy PERF_CTL/CTR | ignored (0) + log (Linux then runs without a PMU) | ignored + log |
//! | 0xC001_0010 | SYSCFG | ignored (0) + log | ignored + log |
//! | 0xC001_0015 | HWCR | emulated: TscFreqSel (bit 24) | ignored + log |
//! | 0xC001_001A, 0xC001_001D | TOP_MEM, TOM2 | ignored (0) + log | ignored + log |
//! | 0xC001_001F | NB_CFG | ignored (0) + log | ignored + log |
//! | 0xC001_0058 | MMIO_CONF_BASE | ignored (0: no MMCONFIG via MSR) + log | ignored + log |
//! | 0xC001_1029 | DE_CFG | emulated: LFENCE serialising (bit 1) | ignored + log |
//! | anything else | | #GP + log | #GP + log |
//!
//! Passthrough MSRs are the ones whose guest copy lives in the VMCB, so
//! the host's values are never exposed or clobbered; the MSRPM opens
//! exactly those ([`permission_map`]). Every other MSR exits.

mod emulated;

pub use emulated::{MsrContext, MsrFault, MsrFaultReason, MsrRead, MsrWrite, VcpuMsrs};

use crate::msrpm::{MsrIntercept, MsrPermissionMap};

/// MSR numbers Sinter names.
#[allow(missing_docs, reason = "architectural MSR names")]
pub mod index {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    pub const PATCH_LEVEL: u32 = 0x8b;
    pub const MTRR_CAP: u32 = 0xfe;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MCG_CAP: u32 = 0x179;
    pub const MCG_STATUS: u32 = 0x17a;
    pub const MCG_CTL: u32 = 0x17b;
    pub const MTRR_PHYS_BASE0: u32 = 0x200;
    pub const MTRR_PHYS_MASK7: u32 = 0x20f;
    pub const MTRR_FIX_64K_00000: u32 = 0x250;
    pub const MTRR_FIX_16K_80000: u32 = 0x258;
    pub const MTRR_FIX_16K_A0000: u32 = 0x259;
    pub const MTRR_FIX_4K_C0000: u32 = 0x268;
    pub const MTRR_FIX_4K_F8000: u32 = 0x26f;
    pub const PAT: u32 = 0x277;
    pub const MTRR_DEF_TYPE: u32 = 0x2ff;
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
    pub const PERF_LEGACY_FIRST: u32 = 0xc001_0000;
    pub const PERF_LEGACY_LAST: u32 = 0xc001_0007;
    pub const SYSCFG: u32 = 0xc001_0010;
    pub const HWCR: u32 = 0xc001_0015;
    pub const TOP_MEM: u32 = 0xc001_001a;
    pub const TOM2: u32 = 0xc001_001d;
    pub const NB_CFG: u32 = 0xc001_001f;
    pub const MMIO_CONF_BASE: u32 = 0xc001_0058;
    pub const DE_CFG: u32 = 0xc001_1029;
}

/// How one direction of an MSR is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Not intercepted: the CPU reads/writes the guest copy in the VMCB.
    Passthrough,
    /// Intercepted and emulated by [`VcpuMsrs`].
    Emulated,
    /// Intercepted; reads return 0, writes are dropped; both are logged.
    Ignored,
    /// Intercepted; the guest gets #GP(0), and it is logged.
    Fault,
}

/// The policy for a range of MSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrRule {
    /// First MSR of the range.
    pub first: u32,
    /// Last MSR of the range (inclusive).
    pub last: u32,
    /// Name for logs.
    pub name: &'static str,
    /// RDMSR.
    pub read: Treatment,
    /// WRMSR.
    pub write: Treatment,
}

const fn rule(first: u32, last: u32, name: &'static str, read: Treatment, write: Treatment) -> MsrRule {
    MsrRule { first, last, name, read, write }
}

use index::*;
use Treatment::{Emulated as E, Fault as F, Ignored as I, Passthrough as P};

/// The policy table (sorted, non-overlapping). MSRs not listed fault.
pub const MSR_POLICY: &[MsrRule] = &[
    rule(TSC, TSC, "TSC", E, I),
    rule(APIC_BASE, APIC_BASE, "APIC_BASE", E, E),
    rule(PATCH_LEVEL, PATCH_LEVEL, "PATCH_LEVEL", I, I),
    rule(MTRR_CAP, MTRR_CAP, "MTRRcap", E, F),
    rule(SYSENTER_CS, SYSENTER_EIP, "SYSENTER_*", P, P),
    rule(MCG_CAP, MCG_CAP, "MCG_CAP", I, F),
    rule(MCG_STATUS, MCG_CTL, "MCG_STATUS/CTL", I, I),
    rule(MTRR_PHYS_BASE0, MTRR_PHYS_MASK7, "MTRR_PHYS*", E, E),
    rule(MTRR_FIX_64K_00000, MTRR_FIX_64K_00000, "MTRR_FIX_64K", E, E),
    rule(MTRR_FIX_16K_80000, MTRR_FIX_16K_A0000, "MTRR_FIX_16K", E, E),
    rule(MTRR_FIX_4K_C0000, MTRR_FIX_4K_F8000, "MTRR_FIX_4K", E, E),
    rule(PAT, PAT, "PAT", E, E),
    rule(MTRR_DEF_TYPE, MTRR_DEF_TYPE, "MTRR_DEF_TYPE", E, E),
    rule(EFER, EFER, "EFER", E, E),
    rule(STAR, SFMASK, "STAR/LSTAR/CSTAR/SFMASK", P, P),
    rule(FS_BASE, KERNEL_GS_BASE, "FS/GS/KERNEL_GS_BASE", P, P),
    rule(TSC_AUX, TSC_AUX, "TSC_AUX", E, E),
    rule(PERF_LEGACY_FIRST, PERF_LEGACY_LAST, "PERF_CTL/CTR (legacy)", I, I),
    rule(SYSCFG, SYSCFG, "SYSCFG", I, I),
    rule(HWCR, HWCR, "HWCR", E, I),
    rule(TOP_MEM, TOP_MEM, "TOP_MEM", I, I),
    rule(TOM2, TOM2, "TOM2", I, I),
    rule(NB_CFG, NB_CFG, "NB_CFG", I, I),
    rule(MMIO_CONF_BASE, MMIO_CONF_BASE, "MMIO_CONF_BASE", I, I),
    rule(DE_CFG, DE_CFG, "DE_CFG", E, I),
];

/// The rule for `msr` (a faulting "unknown" rule if none is listed).
pub fn policy(msr: u32) -> MsrRule {
    MSR_POLICY.iter().find(|r| (r.first..=r.last).contains(&msr)).copied().unwrap_or(MsrRule {
        first: msr,
        last: msr,
        name: "unknown",
        read: F,
        write: F,
    })
}

/// The MSRPM for [`MSR_POLICY`]: everything intercepted except the
/// passthrough directions.
pub fn permission_map() -> MsrPermissionMap {
    let mut map = MsrPermissionMap::intercept_all();
    for r in MSR_POLICY {
        for msr in r.first..=r.last {
            let intercept = MsrIntercept { read: r.read != P, write: r.write != P };
            // Every passthrough MSR in the table is inside the MSRPM ranges
            // (checked by a test); others stay intercepted regardless.
            let _ = map.set(msr, intercept);
        }
    }
    map
}

#[cfg(test)]
mod tests;
