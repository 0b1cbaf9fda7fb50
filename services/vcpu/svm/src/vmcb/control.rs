//! The VMCB control area (APM vol. 2, Appendix B, table B-1): offsets
//! 0x000–0x3FF of the VMCB.

use core::mem::offset_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::event::EventInjection;
use crate::exit::ExitCode;
use crate::HostPhysAddr;

/// `TLB_CONTROL` (byte at 0x05C): what VMRUN flushes before entering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TlbControl {
    /// Flush nothing.
    DoNothing = 0,
    /// Flush every TLB entry of every ASID. The only flush QEMU TCG's SVM
    /// implements (it lacks flush-by-ASID), so Sinter uses it.
    FlushAll = 1,
    /// Flush this guest's ASID (needs flush-by-ASID; absent under TCG).
    FlushAsid = 3,
    /// Flush this guest's non-global entries (needs flush-by-ASID).
    FlushAsidNonGlobal = 7,
}

/// Bits of `V_INTR` control (dword at 0x060).
pub mod int_ctl {
    /// Bits 7:0: the virtual TPR (the guest's CR8, when V_INTR_MASKING=1).
    pub const V_TPR_MASK: u32 = 0xff;
    /// Bit 8: a virtual interrupt is pending.
    pub const V_IRQ: u32 = 1 << 8;
    /// Bits 19:16: priority of the pending virtual interrupt.
    pub const V_INTR_PRIO_SHIFT: u32 = 16;
    /// Mask of `V_INTR_PRIO`.
    pub const V_INTR_PRIO_MASK: u32 = 0xf << V_INTR_PRIO_SHIFT;
    /// Bit 20: deliver the virtual interrupt regardless of V_TPR.
    pub const V_IGN_TPR: u32 = 1 << 20;
    /// Bit 24: virtualise interrupt masking (host IF masks physical
    /// interrupts; guest IF and CR8 only affect virtual ones).
    pub const V_INTR_MASKING: u32 = 1 << 24;
    /// Bit 31: AVIC enable (never set: TCG has no AVIC).
    pub const AVIC_ENABLE: u32 = 1 << 31;
}

/// Bit 0 of the nested-paging control qword at 0x090.
pub const NP_ENABLE: u64 = 1 << 0;

/// The control area: what to intercept, where the bitmaps and nested page
/// tables are, and what the last `#VMEXIT` reported.
///
/// Plain data; the accessors below interpret the packed fields.
#[derive(Clone, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct VmcbControl {
    /// 0x000: bits 15:0 intercept reads of CR0–15, bits 31:16 writes.
    pub intercept_cr: u32,
    /// 0x004: bits 15:0 intercept reads of DR0–15, bits 31:16 writes.
    pub intercept_dr: u32,
    /// 0x008: bit n intercepts exception vector n.
    pub intercept_exceptions: u32,
    /// 0x00C: first vector of instruction/event intercepts
    /// ([`super::intercept::misc1`]).
    pub intercept_misc1: u32,
    /// 0x010: second vector ([`super::intercept::misc2`]).
    pub intercept_misc2: u32,
    /// 0x014: third vector (INVLPGB, INVPCID, …; unused by Sinter).
    pub intercept_misc3: u32,
    _reserved_018: [u8; 0x24],
    /// 0x03C: PAUSE filter threshold (pause filtering is absent under TCG).
    pub pause_filter_threshold: u16,
    /// 0x03E: PAUSE filter count.
    pub pause_filter_count: u16,
    /// 0x040: host-physical base of the 12 KiB I/O permission map.
    pub iopm_base_pa: u64,
    /// 0x048: host-physical base of the 8 KiB MSR permission map.
    pub msrpm_base_pa: u64,
    /// 0x050: added to the TSC the guest reads.
    pub tsc_offset: u64,
    /// 0x058: the guest's ASID (never 0, which is the host's).
    pub guest_asid: u32,
    /// 0x05C: [`TlbControl`] as a byte.
    pub tlb_control: u8,
    _reserved_05d: [u8; 3],
    /// 0x060: V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING
    /// ([`int_ctl`]).
    pub int_ctl: u32,
    /// 0x064: bits 7:0 V_INTR_VECTOR.
    pub int_vector: u32,
    /// 0x068: bit 0 the guest is in an interrupt shadow (after STI/MOV SS);
    /// bit 1 GUEST_INTERRUPT_MASK.
    pub int_state: u64,
    /// 0x070: EXITCODE of the last `#VMEXIT`.
    pub exit_code: u64,
    /// 0x078: EXITINFO1.
    pub exit_info_1: u64,
    /// 0x080: EXITINFO2.
    pub exit_info_2: u64,
    /// 0x088: EXITINTINFO: an event whose delivery the exit interrupted.
    pub exit_int_info: u64,
    /// 0x090: bit 0 NP_ENABLE (nested paging); SEV bits above, unused.
    pub nested_control: u64,
    /// 0x098: AVIC APIC_BAR (unused).
    pub avic_apic_bar: u64,
    /// 0x0A0: GHCB guest-physical address (SEV-ES; unused).
    pub ghcb_gpa: u64,
    /// 0x0A8: EVENTINJ: the event VMRUN injects.
    pub event_injection: u64,
    /// 0x0B0: N_CR3: host-physical address of the nested PML4.
    pub nested_cr3: u64,
    /// 0x0B8: LBR virtualisation and virtual VMLOAD/VMSAVE (unused).
    pub virt_ext: u64,
    /// 0x0C0: VMCB clean bits (TCG ignores them; Sinter keeps them 0).
    pub clean_bits: u32,
    _reserved_0c4: u32,
    /// 0x0C8: next RIP (only with nrip-save, which TCG lacks).
    pub next_rip: u64,
    /// 0x0D0: number of guest instruction bytes fetched (decode assists;
    /// 0 under TCG).
    pub insn_len: u8,
    /// 0x0D1: those bytes.
    pub insn_bytes: [u8; 15],
    _reserved_0e0: [u8; 0x320],
}

const _: () = {
    assert!(size_of::<VmcbControl>() == 0x400);
    assert!(offset_of!(VmcbControl, intercept_cr) == 0x000);
    assert!(offset_of!(VmcbControl, intercept_dr) == 0x004);
    assert!(offset_of!(VmcbControl, intercept_exceptions) == 0x008);
    assert!(offset_of!(VmcbControl, intercept_misc1) == 0x00c);
    assert!(offset_of!(VmcbControl, intercept_misc2) == 0x010);
    assert!(offset_of!(VmcbControl, intercept_misc3) == 0x014);
    assert!(offset_of!(VmcbControl, pause_filter_threshold) == 0x03c);
    assert!(offset_of!(VmcbControl, pause_filter_count) == 0x03e);
    assert!(offset_of!(VmcbControl, iopm_base_pa) == 0x040);
    assert!(offset_of!(VmcbControl, msrpm_base_pa) == 0x048);
    assert!(offset_of!(VmcbControl, tsc_offset) == 0x050);
    assert!(offset_of!(VmcbControl, guest_asid) == 0x058);
    assert!(offset_of!(VmcbControl, tlb_control) == 0x05c);
    assert!(offset_of!(VmcbControl, int_ctl) == 0x060);
    assert!(offset_of!(VmcbControl, int_vector) == 0x064);
    assert!(offset_of!(VmcbControl, int_state) == 0x068);
    assert!(offset_of!(VmcbControl, exit_code) == 0x070);
    assert!(offset_of!(VmcbControl, exit_info_1) == 0x078);
    assert!(offset_of!(VmcbControl, exit_info_2) == 0x080);
    assert!(offset_of!(VmcbControl, exit_int_info) == 0x088);
    assert!(offset_of!(VmcbControl, nested_control) == 0x090);
    assert!(offset_of!(VmcbControl, avic_apic_bar) == 0x098);
    assert!(offset_of!(VmcbControl, ghcb_gpa) == 0x0a0);
    assert!(offset_of!(VmcbControl, event_injection) == 0x0a8);
    assert!(offset_of!(VmcbControl, nested_cr3) == 0x0b0);
    assert!(offset_of!(VmcbControl, virt_ext) == 0x0b8);
    assert!(offset_of!(VmcbControl, clean_bits) == 0x0c0);
    assert!(offset_of!(VmcbControl, next_rip) == 0x0c8);
    assert!(offset_of!(VmcbControl, insn_len) == 0x0d0);
    assert!(offset_of!(VmcbControl, insn_bytes) == 0x0d1);
};

/// A pending virtual interrupt (`V_IRQ`), as used to open an interrupt
/// window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualInterrupt {
    /// V_INTR_VECTOR.
    pub vector: u8,
    /// V_INTR_PRIO (4 bits).
    pub priority: u8,
    /// V_IGN_TPR.
    pub ignore_tpr: bool,
}

impl VmcbControl {
    /// The exit code of the last `#VMEXIT`.
    pub fn exit(&self) -> ExitCode {
        ExitCode(self.exit_code)
    }

    /// Sets the guest ASID. ASID 0 belongs to the host and is refused.
    pub fn set_asid(&mut self, asid: u32) -> Result<(), ControlError> {
        if asid == 0 {
            return Err(ControlError::HostAsid);
        }
        self.guest_asid = asid;
        Ok(())
    }

    /// Sets `TLB_CONTROL`.
    pub fn set_tlb_control(&mut self, control: TlbControl) {
        self.tlb_control = control as u8;
    }

    /// Turns nested paging on with `n_cr3` as the nested PML4.
    pub fn enable_nested_paging(&mut self, n_cr3: HostPhysAddr) -> Result<(), ControlError> {
        if !n_cr3.is_aligned(crate::addr::PAGE_SIZE_4K) {
            return Err(ControlError::MisalignedNestedCr3(n_cr3));
        }
        self.nested_control |= NP_ENABLE;
        self.nested_cr3 = n_cr3.get();
        Ok(())
    }

    /// Whether nested paging is on.
    pub fn nested_paging(&self) -> bool {
        self.nested_control & NP_ENABLE != 0
    }

    /// Sets where the I/O and MSR permission maps live.
    pub fn set_permission_maps(&mut self, iopm: HostPhysAddr, msrpm: HostPhysAddr) -> Result<(), ControlError> {
        for pa in [iopm, msrpm] {
            if !pa.is_aligned(crate::addr::PAGE_SIZE_4K) {
                return Err(ControlError::MisalignedBitmap(pa));
            }
        }
        self.iopm_base_pa = iopm.get();
        self.msrpm_base_pa = msrpm.get();
        Ok(())
    }

    /// Writes `EVENTINJ`.
    pub fn set_event_injection(&mut self, event: Option<EventInjection>) {
        self.event_injection = event.map_or(0, EventInjection::raw);
    }

    /// Whether V_INTR_MASKING is set.
    pub fn virtual_interrupt_masking(&self) -> bool {
        self.int_ctl & int_ctl::V_INTR_MASKING != 0
    }

    /// Sets or clears V_INTR_MASKING.
    pub fn set_virtual_interrupt_masking(&mut self, on: bool) {
        set_bit32(&mut self.int_ctl, int_ctl::V_INTR_MASKING, on);
    }

    /// The virtual TPR (bits 7:0; the guest's CR8 is bits 3:0 of it).
    pub fn v_tpr(&self) -> u8 {
        (self.int_ctl & int_ctl::V_TPR_MASK) as u8
    }

    /// Raises `V_IRQ` with `irq`.
    pub fn set_virtual_interrupt(&mut self, irq: VirtualInterrupt) {
        self.int_ctl &= !(int_ctl::V_INTR_PRIO_MASK | int_ctl::V_IGN_TPR);
        self.int_ctl |= int_ctl::V_IRQ | (u32::from(irq.priority & 0xf) << int_ctl::V_INTR_PRIO_SHIFT);
        if irq.ignore_tpr {
            self.int_ctl |= int_ctl::V_IGN_TPR;
        }
        self.int_vector = u32::from(irq.vector);
    }

    /// Drops any pending `V_IRQ`.
    pub fn clear_virtual_interrupt(&mut self) {
        self.int_ctl &= !(int_ctl::V_IRQ | int_ctl::V_INTR_PRIO_MASK | int_ctl::V_IGN_TPR);
        self.int_vector = 0;
    }

    /// The pending virtual interrupt, if `V_IRQ` is set.
    pub fn virtual_interrupt(&self) -> Option<VirtualInterrupt> {
        (self.int_ctl & int_ctl::V_IRQ != 0).then_some(VirtualInterrupt {
            vector: self.int_vector as u8,
            priority: ((self.int_ctl & int_ctl::V_INTR_PRIO_MASK) >> int_ctl::V_INTR_PRIO_SHIFT) as u8,
            ignore_tpr: self.int_ctl & int_ctl::V_IGN_TPR != 0,
        })
    }

    /// Whether the guest is in an interrupt shadow (the instruction after
    /// STI or MOV SS): no interrupt may be injected now.
    pub fn interrupt_shadow(&self) -> bool {
        self.int_state & 1 != 0
    }
}

fn set_bit32(word: &mut u32, bit: u32, on: bool) {
    if on {
        *word |= bit;
    } else {
        *word &= !bit;
    }
}

/// A control-area setting Sinter refuses to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// ASID 0 is the host's.
    HostAsid,
    /// N_CR3 must be 4 KiB aligned.
    MisalignedNestedCr3(HostPhysAddr),
    /// IOPM/MSRPM bases must be 4 KiB aligned.
    MisalignedBitmap(HostPhysAddr),
}

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::HostAsid => write!(f, "ASID 0 belongs to the host"),
            Self::MisalignedNestedCr3(pa) => write!(f, "nested CR3 {pa} is not 4 KiB aligned"),
            Self::MisalignedBitmap(pa) => write!(f, "permission map {pa} is not 4 KiB aligned"),
        }
    }
}
