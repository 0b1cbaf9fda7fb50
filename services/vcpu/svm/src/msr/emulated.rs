//! Per-vCPU state of the emulated MSRs, and the checks on guest writes.

use core::fmt;

use super::{index::*, policy, Treatment};
use crate::vmcb::EFER_SVME;

/// The xAPIC's fixed base (Sinter does not relocate it).
pub const APIC_BASE_ADDRESS: u64 = 0xfee0_0000;
const APIC_BSP: u64 = 1 << 8;
const APIC_X2APIC: u64 = 1 << 10;
const APIC_ENABLE: u64 = 1 << 11;

const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const CR0_PG: u64 = 1 << 31;

/// PAT at reset: WB, WT, UC-, UC, repeated.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;
/// MTRRcap: 8 variable ranges, fixed ranges, write-combining.
pub const MTRR_CAP_VALUE: u64 = 8 | (1 << 8) | (1 << 10);
/// MTRR_DEF_TYPE at reset: MTRRs enabled, default write-back, fixed off.
pub const MTRR_DEF_TYPE_RESET: u64 = (1 << 11) | 6;
/// HWCR as read: TscFreqSel (the TSC counts at P0 frequency).
pub const HWCR_VALUE: u64 = 1 << 24;
/// DE_CFG as read: LFENCE is dispatch-serialising.
pub const DE_CFG_VALUE: u64 = 1 << 1;

/// Guest and host state an MSR access depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrContext {
    /// EFER in the VMCB (with SVME).
    pub vmcb_efer: u64,
    /// The guest's CR0.
    pub cr0: u64,
    /// The host TSC now.
    pub host_tsc: u64,
    /// The VMCB's TSC_OFFSET.
    pub tsc_offset: u64,
    /// Guest physical address bits (CPUID 0x8000_0008 EAX bits 7:0).
    pub phys_addr_bits: u8,
}

/// A successful RDMSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrRead {
    /// EDX:EAX to return.
    pub value: u64,
    /// An ignored MSR: log the access.
    pub log: bool,
}

/// What a successful WRMSR asks of the vcpu service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrWrite {
    /// Stored in [`VcpuMsrs`]; nothing else to do.
    Stored,
    /// Dropped; log the access.
    Ignored,
    /// Write this EFER into the VMCB.
    Efer {
        /// The value for the VMCB (SVME set).
        vmcb_efer: u64,
    },
    /// Write this into the VMCB's G_PAT.
    Pat {
        /// The new guest PAT.
        g_pat: u64,
    },
    /// The virtual xAPIC was enabled or disabled.
    ApicBase {
        /// `IA32_APIC_BASE.EN`.
        enabled: bool,
    },
    /// Load this into the CPU's TSC_AUX before the next VMRUN.
    TscAux {
        /// The value.
        value: u64,
    },
}

/// Why the guest gets #GP(0) for an MSR access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrFaultReason {
    /// Not in the policy (or a faulting direction of a listed MSR).
    NotAvailable,
    /// A read-only MSR was written.
    ReadOnly,
    /// Reserved bits set.
    ReservedBits,
    /// An invalid memory type in PAT or an MTRR.
    InvalidMemoryType,
    /// x2APIC mode requested (x2APIC is hidden).
    X2ApicUnavailable,
    /// The APIC base moved.
    ApicRelocation,
    /// EFER.LME changed with paging enabled.
    LongModeWhilePaging,
    /// EFER.SVME set (SVM is hidden).
    SvmUnavailable,
    /// A passthrough MSR exited: the MSRPM is wrong (a Sinter bug, stop
    /// the VM rather than inject).
    NotIntercepted,
}

/// An MSR access the guest gets #GP(0) for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrFault {
    /// The MSR.
    pub msr: u32,
    /// Why.
    pub why: MsrFaultReason,
}

impl fmt::Display for MsrFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MSR {:#x} ({}): {:?}", self.msr, policy(self.msr).name, self.why)
    }
}

/// One vCPU's emulated MSRs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuMsrs {
    apic_base: u64,
    pat: u64,
    tsc_aux: u64,
    mtrr_def_type: u64,
    mtrr_var: [u64; 16],
    mtrr_fixed: [u64; 11],
}

/// Memory types valid in PAT entries.
const fn valid_pat_type(t: u8) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6 | 7)
}

/// Memory types valid in MTRRs.
const fn valid_mtrr_type(t: u8) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

fn fixed_index(msr: u32) -> Option<usize> {
    match msr {
        MTRR_FIX_64K_00000 => Some(0),
        MTRR_FIX_16K_80000 => Some(1),
        MTRR_FIX_16K_A0000 => Some(2),
        MTRR_FIX_4K_C0000..=MTRR_FIX_4K_F8000 => Some(3 + (msr - MTRR_FIX_4K_C0000) as usize),
        _ => None,
    }
}

impl VcpuMsrs {
    /// State at reset; `bootstrap` marks vCPU 0.
    pub fn new(bootstrap: bool) -> Self {
        Self {
            apic_base: APIC_BASE_ADDRESS | APIC_ENABLE | if bootstrap { APIC_BSP } else { 0 },
            pat: PAT_RESET,
            tsc_aux: 0,
            mtrr_def_type: MTRR_DEF_TYPE_RESET,
            mtrr_var: [0; 16],
            mtrr_fixed: [0; 11],
        }
    }

    /// Whether the guest's xAPIC is enabled.
    pub fn apic_enabled(&self) -> bool {
        self.apic_base & APIC_ENABLE != 0
    }

    /// The guest PAT (to put in the VMCB's G_PAT at setup).
    pub fn pat(&self) -> u64 {
        self.pat
    }

    /// The guest TSC_AUX.
    pub fn tsc_aux(&self) -> u64 {
        self.tsc_aux
    }

    /// RDMSR of `msr`.
    pub fn read(&self, msr: u32, ctx: &MsrContext) -> Result<MsrRead, MsrFault> {
        let fault = |why| MsrFault { msr, why };
        let ok = |value| Ok(MsrRead { value, log: false });
        match policy(msr).read {
            Treatment::Passthrough => return Err(fault(MsrFaultReason::NotIntercepted)),
            Treatment::Fault => return Err(fault(MsrFaultReason::NotAvailable)),
            Treatment::Ignored => return Ok(MsrRead { value: 0, log: true }),
            Treatment::Emulated => {}
        }
        match msr {
            TSC => ok(ctx.host_tsc.wrapping_add(ctx.tsc_offset)),
            APIC_BASE => ok(self.apic_base),
            MTRR_CAP => ok(MTRR_CAP_VALUE),
            MTRR_PHYS_BASE0..=MTRR_PHYS_MASK7 => ok(self.mtrr_var[(msr - MTRR_PHYS_BASE0) as usize]),
            PAT => ok(self.pat),
            MTRR_DEF_TYPE => ok(self.mtrr_def_type),
            EFER => ok(ctx.vmcb_efer & !EFER_SVME),
            TSC_AUX => ok(self.tsc_aux),
            HWCR => ok(HWCR_VALUE),
            DE_CFG => ok(DE_CFG_VALUE),
            _ => match fixed_index(msr) {
                Some(i) => ok(self.mtrr_fixed[i]),
                None => Err(fault(MsrFaultReason::NotAvailable)),
            },
        }
    }

    /// WRMSR of `value` to `msr`. On `Err` nothing changed.
    pub fn write(&mut self, msr: u32, value: u64, ctx: &MsrContext) -> Result<MsrWrite, MsrFault> {
        let fault = |why| MsrFault { msr, why };
        match policy(msr).write {
            Treatment::Passthrough => return Err(fault(MsrFaultReason::NotIntercepted)),
            Treatment::Fault if msr == MTRR_CAP || msr == MCG_CAP => return Err(fault(MsrFaultReason::ReadOnly)),
            Treatment::Fault => return Err(fault(MsrFaultReason::NotAvailable)),
            Treatment::Ignored => return Ok(MsrWrite::Ignored),
            Treatment::Emulated => {}
        }
        let above_phys = u64::MAX.checked_shl(u32::from(ctx.phys_addr_bits)).unwrap_or(0);
        match msr {
            APIC_BASE => {
                if value & APIC_X2APIC != 0 {
                    return Err(fault(MsrFaultReason::X2ApicUnavailable));
                }
                if value & (0xff | (1 << 9) | above_phys) != 0 {
                    return Err(fault(MsrFaultReason::ReservedBits));
                }
                if value & !0xfff != APIC_BASE_ADDRESS {
                    return Err(fault(MsrFaultReason::ApicRelocation));
                }
                // BSP is read-only.
                self.apic_base = (value & !APIC_BSP) | (self.apic_base & APIC_BSP);
                Ok(MsrWrite::ApicBase { enabled: self.apic_enabled() })
            }
            PAT => {
                if !value.to_le_bytes().iter().all(|&t| valid_pat_type(t)) {
                    return Err(fault(MsrFaultReason::InvalidMemoryType));
                }
                self.pat = value;
                Ok(MsrWrite::Pat { g_pat: value })
            }
            MTRR_DEF_TYPE => {
                if value & !(0xff | (1 << 10) | (1 << 11)) != 0 {
                    return Err(fault(MsrFaultReason::ReservedBits));
                }
                if !valid_mtrr_type(value as u8) {
                    return Err(fault(MsrFaultReason::InvalidMemoryType));
                }
                self.mtrr_def_type = value;
                Ok(MsrWrite::Stored)
            }
            MTRR_PHYS_BASE0..=MTRR_PHYS_MASK7 => {
                let is_mask = (msr - MTRR_PHYS_BASE0) % 2 == 1;
                let reserved = if is_mask { 0x7ff } else { 0xf00 } | above_phys;
                if value & reserved != 0 {
                    return Err(fault(MsrFaultReason::ReservedBits));
                }
                if !is_mask && !valid_mtrr_type(value as u8) {
                    return Err(fault(MsrFaultReason::InvalidMemoryType));
                }
                self.mtrr_var[(msr - MTRR_PHYS_BASE0) as usize] = value;
                Ok(MsrWrite::Stored)
            }
            EFER => {
                let allowed = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
                if value & EFER_SVME != 0 {
                    return Err(fault(MsrFaultReason::SvmUnavailable));
                }
                if value & !allowed != 0 {
                    return Err(fault(MsrFaultReason::ReservedBits));
                }
                let old = ctx.vmcb_efer;
                if ctx.cr0 & CR0_PG != 0 && (old ^ value) & EFER_LME != 0 {
                    return Err(fault(MsrFaultReason::LongModeWhilePaging));
                }
                // LMA belongs to the CPU: keep the current value.
                let new = (value & !EFER_LMA) | (old & EFER_LMA);
                Ok(MsrWrite::Efer { vmcb_efer: new | EFER_SVME })
            }
            TSC_AUX => {
                if value >> 32 != 0 {
                    return Err(fault(MsrFaultReason::ReservedBits));
                }
                self.tsc_aux = value;
                Ok(MsrWrite::TscAux { value })
            }
            _ => match fixed_index(msr) {
                Some(i) => {
                    if !value.to_le_bytes().iter().all(|&t| valid_mtrr_type(t)) {
                        return Err(fault(MsrFaultReason::InvalidMemoryType));
                    }
                    self.mtrr_fixed[i] = value;
                    Ok(MsrWrite::Stored)
                }
                None => Err(fault(MsrFaultReason::NotAvailable)),
            },
        }
    }
}
