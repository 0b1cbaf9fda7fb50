//! Intercept bits and the intercept set Sinter runs every guest with.

use super::VmcbControl;

/// Bits of the first instruction/event intercept vector (VMCB 0x00C).
pub mod misc1 {
    /// Physical maskable interrupt.
    pub const INTR: u32 = 1 << 0;
    /// Physical NMI.
    pub const NMI: u32 = 1 << 1;
    /// Physical SMI.
    pub const SMI: u32 = 1 << 2;
    /// Physical INIT.
    pub const INIT: u32 = 1 << 3;
    /// Virtual interrupt (V_IRQ taken): the interrupt window is open.
    pub const VINTR: u32 = 1 << 4;
    /// Writes of CR0 other than TS/MP.
    pub const CR0_SEL_WRITE: u32 = 1 << 5;
    /// RDTSC.
    pub const RDTSC: u32 = 1 << 14;
    /// RDPMC.
    pub const RDPMC: u32 = 1 << 15;
    /// PUSHF.
    pub const PUSHF: u32 = 1 << 16;
    /// POPF.
    pub const POPF: u32 = 1 << 17;
    /// CPUID.
    pub const CPUID: u32 = 1 << 18;
    /// RSM.
    pub const RSM: u32 = 1 << 19;
    /// IRET.
    pub const IRET: u32 = 1 << 20;
    /// INTn.
    pub const INTN: u32 = 1 << 21;
    /// INVD.
    pub const INVD: u32 = 1 << 22;
    /// PAUSE.
    pub const PAUSE: u32 = 1 << 23;
    /// HLT.
    pub const HLT: u32 = 1 << 24;
    /// INVLPG.
    pub const INVLPG: u32 = 1 << 25;
    /// INVLPGA.
    pub const INVLPGA: u32 = 1 << 26;
    /// IN/OUT/INS/OUTS, filtered by the IOPM.
    pub const IOIO_PROT: u32 = 1 << 27;
    /// RDMSR/WRMSR, filtered by the MSRPM.
    pub const MSR_PROT: u32 = 1 << 28;
    /// Hardware task switch.
    pub const TASK_SWITCH: u32 = 1 << 29;
    /// FERR_FREEZE (legacy FPU error handling).
    pub const FERR_FREEZE: u32 = 1 << 30;
    /// Shutdown (triple fault).
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// Bits of the second instruction intercept vector (VMCB 0x010).
pub mod misc2 {
    /// VMRUN. Must be set, or VMRUN fails its consistency checks.
    pub const VMRUN: u32 = 1 << 0;
    /// VMMCALL.
    pub const VMMCALL: u32 = 1 << 1;
    /// VMLOAD.
    pub const VMLOAD: u32 = 1 << 2;
    /// VMSAVE.
    pub const VMSAVE: u32 = 1 << 3;
    /// STGI.
    pub const STGI: u32 = 1 << 4;
    /// CLGI.
    pub const CLGI: u32 = 1 << 5;
    /// SKINIT.
    pub const SKINIT: u32 = 1 << 6;
    /// RDTSCP.
    pub const RDTSCP: u32 = 1 << 7;
    /// ICEBP.
    pub const ICEBP: u32 = 1 << 8;
    /// WBINVD/WBNOINVD.
    pub const WBINVD: u32 = 1 << 9;
    /// MONITOR/MONITORX.
    pub const MONITOR: u32 = 1 << 10;
    /// MWAIT/MWAITX, unconditionally.
    pub const MWAIT: u32 = 1 << 11;
    /// MWAIT/MWAITX when armed.
    pub const MWAIT_CONDITIONAL: u32 = 1 << 12;
    /// XSETBV.
    pub const XSETBV: u32 = 1 << 13;
    /// RDPRU.
    pub const RDPRU: u32 = 1 << 14;
}

/// Exception vectors Sinter intercepts.
pub mod exceptions {
    /// #DB: intercepted so a guest cannot hang the core with a #DB loop
    /// (CVE-2015-8104); reflected back to the guest.
    pub const DEBUG: u32 = 1 << 1;
    /// #AC: intercepted for the same reason (CVE-2015-5307); reflected.
    pub const ALIGNMENT_CHECK: u32 = 1 << 17;
    /// #MC: a machine check in guest mode belongs to the host.
    pub const MACHINE_CHECK: u32 = 1 << 18;
}

/// A full set of intercepts, written into a control area with
/// [`Intercepts::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intercepts {
    /// Bits 15:0 CR reads, 31:16 CR writes.
    pub cr: u32,
    /// Bits 15:0 DR reads, 31:16 DR writes.
    pub dr: u32,
    /// Exception vectors.
    pub exceptions: u32,
    /// [`misc1`] bits.
    pub misc1: u32,
    /// [`misc2`] bits.
    pub misc2: u32,
}

impl Intercepts {
    /// The set every Sinter guest runs with (see `docs/hypervisor.md`).
    ///
    /// With nested paging the guest owns CR0/CR3/CR4 and its own page
    /// faults, so no CR, DR or #PF intercepts. Everything that would let
    /// the guest touch real hardware state, SVM itself, or cache/power
    /// behaviour is intercepted; RDTSC/RDTSCP are not (TSC_OFFSET does
    /// the work), nor is PAUSE (TCG has no pause filter).
    pub const fn sinter() -> Self {
        use misc1 as m1;
        use misc2 as m2;
        Self {
            cr: 0,
            dr: 0,
            exceptions: exceptions::DEBUG | exceptions::ALIGNMENT_CHECK | exceptions::MACHINE_CHECK,
            misc1: m1::INTR
                | m1::NMI
                | m1::SMI
                | m1::INIT
                | m1::RDPMC
                | m1::CPUID
                | m1::RSM
                | m1::INVD
                | m1::HLT
                | m1::INVLPGA
                | m1::IOIO_PROT
                | m1::MSR_PROT
                | m1::TASK_SWITCH
                | m1::FERR_FREEZE
                | m1::SHUTDOWN,
            misc2: m2::VMRUN
                | m2::VMMCALL
                | m2::VMLOAD
                | m2::VMSAVE
                | m2::STGI
                | m2::CLGI
                | m2::SKINIT
                | m2::WBINVD
                | m2::MONITOR
                | m2::MWAIT
                | m2::MWAIT_CONDITIONAL
                | m2::XSETBV
                | m2::RDPRU,
        }
    }

    /// Writes these intercepts into `control`, replacing the old ones.
    /// The VINTR bit is left as it was (it belongs to the interrupt-window
    /// logic, not to the policy).
    pub fn apply(&self, control: &mut VmcbControl) {
        let vintr = control.intercept_misc1 & misc1::VINTR;
        control.intercept_cr = self.cr;
        control.intercept_dr = self.dr;
        control.intercept_exceptions = self.exceptions;
        control.intercept_misc1 = (self.misc1 & !misc1::VINTR) | vintr;
        control.intercept_misc2 = self.misc2;
        control.intercept_misc3 = 0;
    }
}
