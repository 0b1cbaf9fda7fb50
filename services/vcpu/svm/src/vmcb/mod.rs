//! The Virtual Machine Control Block: one 4 KiB page per vCPU, the control
//! area at 0x000 and the state save area at 0x400.
//!
//! Only the fields Sinter uses are named; the rest are private reserved
//! bytes so the layout is exact. A VMCB is plain data here: the bare-metal
//! service places it in a frame (`Vmcb::mut_from_bytes` or a zeroed
//! allocation) and hands that frame's physical address to VMRUN.

mod control;
pub mod intercept;
mod save;

use core::mem::offset_of;

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub use control::{int_ctl, ControlError, TlbControl, VirtualInterrupt, VmcbControl, NP_ENABLE};
pub use intercept::Intercepts;
pub use save::{seg_attr, VmcbSave, VmcbSegment};

/// EFER.SVME: must be set in the VMCB's EFER for VMRUN to accept it.
pub const EFER_SVME: u64 = 1 << 12;

/// Offset of the state save area inside the VMCB.
pub const SAVE_AREA_OFFSET: usize = 0x400;

/// One VMCB: exactly one 4 KiB, 4 KiB-aligned page.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4096))]
pub struct Vmcb {
    /// Offsets 0x000–0x3FF.
    pub control: VmcbControl,
    /// Offsets 0x400–0x6E7.
    pub save: VmcbSave,
    _reserved_6e8: [u8; 0x1000 - SAVE_AREA_OFFSET - 0x2e8],
}

const _: () = {
    assert!(size_of::<Vmcb>() == 4096);
    assert!(align_of::<Vmcb>() == 4096);
    assert!(offset_of!(Vmcb, control) == 0);
    assert!(offset_of!(Vmcb, save) == SAVE_AREA_OFFSET);
};

impl Vmcb {
    /// An all-zero VMCB.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }

    /// Prepares the control area the way Sinter runs every guest: the
    /// [`Intercepts::sinter`] set, the permission maps, nested paging with
    /// `n_cr3`, the ASID, V_INTR_MASKING, and a full TLB flush on the first
    /// VMRUN. The save area (the guest's registers) is the caller's.
    pub fn configure(&mut self, setup: &VmcbSetup) -> Result<(), ControlError> {
        let c = &mut self.control;
        Intercepts::sinter().apply(c);
        c.set_permission_maps(setup.iopm, setup.msrpm)?;
        c.enable_nested_paging(setup.nested_cr3)?;
        c.set_asid(setup.asid)?;
        c.set_virtual_interrupt_masking(true);
        c.set_tlb_control(TlbControl::FlushAll);
        c.tsc_offset = setup.tsc_offset;
        c.clean_bits = 0;
        self.save.efer |= EFER_SVME;
        Ok(())
    }
}

/// What [`Vmcb::configure`] needs.
#[derive(Clone, Copy, Debug)]
pub struct VmcbSetup {
    /// Host-physical base of the I/O permission map (12 KiB).
    pub iopm: crate::HostPhysAddr,
    /// Host-physical base of the MSR permission map (8 KiB).
    pub msrpm: crate::HostPhysAddr,
    /// The nested PML4.
    pub nested_cr3: crate::HostPhysAddr,
    /// The guest ASID (non-zero).
    pub asid: u32,
    /// Initial TSC offset.
    pub tsc_offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostPhysAddr;

    #[test]
    fn field_bytes_land_at_apm_offsets() {
        let mut v = Vmcb::zeroed();
        v.control.exit_code = 0x0102_0304_0506_0708;
        v.control.nested_cr3 = 0x1111_2000;
        v.save.rip = 0xdead_beef;
        v.save.g_pat = 0x0007_0406_0007_0406;
        let b = v.as_bytes();
        assert_eq!(&b[0x70..0x78], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[0xb0..0xb8], &0x1111_2000u64.to_le_bytes());
        assert_eq!(&b[0x578..0x580], &0xdead_beefu64.to_le_bytes());
        assert_eq!(&b[0x668..0x670], &0x0007_0406_0007_0406u64.to_le_bytes());
    }

    #[test]
    fn vmcb_reads_from_a_frame() {
        let mut frame = [0u8; 4096 * 2];
        // Find a 4 KiB-aligned window inside the buffer.
        let off = frame.as_ptr().align_offset(4096);
        let page = &mut frame[off..off + 4096];
        page[0x58..0x5c].copy_from_slice(&7u32.to_le_bytes());
        let vmcb = Vmcb::ref_from_bytes(page).expect("aligned page");
        assert_eq!(vmcb.control.guest_asid, 7);
    }

    #[test]
    fn configure_sets_the_sinter_baseline() {
        let mut v = Vmcb::zeroed();
        v.configure(&VmcbSetup {
            iopm: HostPhysAddr(0x10_0000),
            msrpm: HostPhysAddr(0x10_3000),
            nested_cr3: HostPhysAddr(0x20_0000),
            asid: 1,
            tsc_offset: 5,
        })
        .unwrap();
        let c = &v.control;
        assert!(c.nested_paging());
        assert_eq!(c.nested_cr3, 0x20_0000);
        assert_eq!(c.iopm_base_pa, 0x10_0000);
        assert_eq!(c.msrpm_base_pa, 0x10_3000);
        assert_eq!(c.guest_asid, 1);
        assert_eq!(c.tlb_control, TlbControl::FlushAll as u8);
        assert!(c.virtual_interrupt_masking());
        assert_ne!(c.intercept_misc2 & intercept::misc2::VMRUN, 0, "VMRUN intercept is mandatory");
        assert_ne!(c.intercept_misc1 & intercept::misc1::IOIO_PROT, 0);
        assert_ne!(c.intercept_misc1 & intercept::misc1::MSR_PROT, 0);
        assert_ne!(v.save.efer & EFER_SVME, 0);
    }

    #[test]
    fn configure_refuses_bad_setup() {
        let mut v = Vmcb::zeroed();
        let good = VmcbSetup {
            iopm: HostPhysAddr(0x1000),
            msrpm: HostPhysAddr(0x4000),
            nested_cr3: HostPhysAddr(0x8000),
            asid: 1,
            tsc_offset: 0,
        };
        assert_eq!(v.configure(&VmcbSetup { asid: 0, ..good }), Err(ControlError::HostAsid));
        assert!(matches!(
            v.configure(&VmcbSetup { nested_cr3: HostPhysAddr(0x8001), ..good }),
            Err(ControlError::MisalignedNestedCr3(_))
        ));
        assert!(matches!(
            v.configure(&VmcbSetup { iopm: HostPhysAddr(0x800), ..good }),
            Err(ControlError::MisalignedBitmap(_))
        ));
    }

    #[test]
    fn virtual_interrupt_round_trip() {
        let mut c = Vmcb::zeroed().control;
        c.int_ctl = 0x5; // V_TPR
        c.set_virtual_interrupt(VirtualInterrupt { vector: 0x30, priority: 0xf, ignore_tpr: true });
        assert_eq!(c.virtual_interrupt(), Some(VirtualInterrupt { vector: 0x30, priority: 0xf, ignore_tpr: true }));
        assert_eq!(c.v_tpr(), 5);
        c.clear_virtual_interrupt();
        assert_eq!(c.virtual_interrupt(), None);
        assert_eq!(c.v_tpr(), 5);
    }

    #[test]
    fn segment_helpers() {
        let cs = VmcbSegment::code64(0x10);
        assert!(cs.is_long());
        assert!(!cs.is_default_32());
        assert_eq!(cs.dpl(), 0);
        assert!(VmcbSegment::data(0x18).is_default_32());
    }
}
