//! The VMCB state save area (APM vol. 2, Appendix B, table B-2): offsets
//! 0x400–0x6E7 of the VMCB. Offsets in the assertions below are relative to
//! the start of the save area, as in the APM.

use core::mem::offset_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A segment register as the VMCB stores it: selector, packed attributes,
/// limit, base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct VmcbSegment {
    /// The visible selector.
    pub selector: u16,
    /// Packed attributes: bits 7:0 are descriptor bits 47:40 (type, S, DPL,
    /// P), bits 11:8 are descriptor bits 55:52 (AVL, L, D/B, G).
    pub attrib: u16,
    /// The expanded limit.
    pub limit: u32,
    /// The base address.
    pub base: u64,
}

const _: () = assert!(size_of::<VmcbSegment>() == 16);

/// Segment attribute bits in VMCB form.
pub mod seg_attr {
    /// Type: accessed.
    pub const ACCESSED: u16 = 1 << 0;
    /// Type: readable (code) / writable (data).
    pub const READ_WRITE: u16 = 1 << 1;
    /// Type: code segment.
    pub const CODE: u16 = 1 << 3;
    /// S: code/data (not system).
    pub const CODE_DATA: u16 = 1 << 4;
    /// P: present.
    pub const PRESENT: u16 = 1 << 7;
    /// L: 64-bit code.
    pub const LONG: u16 = 1 << 9;
    /// D/B: 32-bit default size.
    pub const DEFAULT_32: u16 = 1 << 10;
    /// G: limit in 4 KiB units.
    pub const GRANULARITY: u16 = 1 << 11;
    /// Busy 64-bit TSS (system type 0xB).
    pub const TSS64_BUSY: u16 = 0xb;
}

impl VmcbSegment {
    /// A flat ring-0 64-bit code segment.
    pub const fn code64(selector: u16) -> Self {
        use seg_attr::*;
        Self {
            selector,
            attrib: ACCESSED | READ_WRITE | CODE | CODE_DATA | PRESENT | LONG | GRANULARITY,
            limit: 0xffff_ffff,
            base: 0,
        }
    }

    /// A flat ring-0 writable data segment.
    pub const fn data(selector: u16) -> Self {
        use seg_attr::*;
        Self {
            selector,
            attrib: ACCESSED | READ_WRITE | CODE_DATA | PRESENT | DEFAULT_32 | GRANULARITY,
            limit: 0xffff_ffff,
            base: 0,
        }
    }

    /// The descriptor privilege level (bits 6:5 of the attributes).
    pub const fn dpl(&self) -> u8 {
        ((self.attrib >> 5) & 3) as u8
    }

    /// Whether this is a 64-bit code segment (L=1).
    pub const fn is_long(&self) -> bool {
        self.attrib & seg_attr::LONG != 0
    }

    /// Whether the default operand size is 32 bits (D/B=1).
    pub const fn is_default_32(&self) -> bool {
        self.attrib & seg_attr::DEFAULT_32 != 0
    }
}

/// Guest register state that VMRUN loads and `#VMEXIT` saves (FS, GS, TR,
/// LDTR, KernelGsBase, STAR/LSTAR/CSTAR/SFMASK and SYSENTER_* move only
/// with VMLOAD/VMSAVE).
#[derive(Clone, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct VmcbSave {
    /// 0x000.
    pub es: VmcbSegment,
    /// 0x010.
    pub cs: VmcbSegment,
    /// 0x020.
    pub ss: VmcbSegment,
    /// 0x030.
    pub ds: VmcbSegment,
    /// 0x040 (VMLOAD/VMSAVE).
    pub fs: VmcbSegment,
    /// 0x050 (VMLOAD/VMSAVE).
    pub gs: VmcbSegment,
    /// 0x060: only limit and base are used.
    pub gdtr: VmcbSegment,
    /// 0x070 (VMLOAD/VMSAVE).
    pub ldtr: VmcbSegment,
    /// 0x080: only limit and base are used.
    pub idtr: VmcbSegment,
    /// 0x090 (VMLOAD/VMSAVE).
    pub tr: VmcbSegment,
    _reserved_0a0: [u8; 0x2b],
    /// 0x0CB: current privilege level.
    pub cpl: u8,
    _reserved_0cc: [u8; 4],
    /// 0x0D0: EFER as the CPU uses it (SVME must be set).
    pub efer: u64,
    _reserved_0d8: [u8; 0x70],
    /// 0x148.
    pub cr4: u64,
    /// 0x150.
    pub cr3: u64,
    /// 0x158.
    pub cr0: u64,
    /// 0x160.
    pub dr7: u64,
    /// 0x168.
    pub dr6: u64,
    /// 0x170.
    pub rflags: u64,
    /// 0x178.
    pub rip: u64,
    _reserved_180: [u8; 0x58],
    /// 0x1D8.
    pub rsp: u64,
    _reserved_1e0: [u8; 0x18],
    /// 0x1F8.
    pub rax: u64,
    /// 0x200 (VMLOAD/VMSAVE).
    pub star: u64,
    /// 0x208 (VMLOAD/VMSAVE).
    pub lstar: u64,
    /// 0x210 (VMLOAD/VMSAVE).
    pub cstar: u64,
    /// 0x218 (VMLOAD/VMSAVE).
    pub sfmask: u64,
    /// 0x220 (VMLOAD/VMSAVE).
    pub kernel_gs_base: u64,
    /// 0x228 (VMLOAD/VMSAVE).
    pub sysenter_cs: u64,
    /// 0x230 (VMLOAD/VMSAVE).
    pub sysenter_esp: u64,
    /// 0x238 (VMLOAD/VMSAVE).
    pub sysenter_eip: u64,
    /// 0x240.
    pub cr2: u64,
    _reserved_248: [u8; 0x20],
    /// 0x268: the guest's PAT when nested paging is on.
    pub g_pat: u64,
    /// 0x270.
    pub dbgctl: u64,
    /// 0x278.
    pub br_from: u64,
    /// 0x280.
    pub br_to: u64,
    /// 0x288.
    pub last_excp_from: u64,
    /// 0x290.
    pub last_excp_to: u64,
    _reserved_298: [u8; 0x48],
    /// 0x2E0: guest SPEC_CTRL (unused: not exposed to guests).
    pub spec_ctrl: u64,
}

const _: () = {
    assert!(size_of::<VmcbSave>() == 0x2e8);
    assert!(offset_of!(VmcbSave, es) == 0x000);
    assert!(offset_of!(VmcbSave, cs) == 0x010);
    assert!(offset_of!(VmcbSave, ss) == 0x020);
    assert!(offset_of!(VmcbSave, ds) == 0x030);
    assert!(offset_of!(VmcbSave, fs) == 0x040);
    assert!(offset_of!(VmcbSave, gs) == 0x050);
    assert!(offset_of!(VmcbSave, gdtr) == 0x060);
    assert!(offset_of!(VmcbSave, ldtr) == 0x070);
    assert!(offset_of!(VmcbSave, idtr) == 0x080);
    assert!(offset_of!(VmcbSave, tr) == 0x090);
    assert!(offset_of!(VmcbSave, cpl) == 0x0cb);
    assert!(offset_of!(VmcbSave, efer) == 0x0d0);
    assert!(offset_of!(VmcbSave, cr4) == 0x148);
    assert!(offset_of!(VmcbSave, cr3) == 0x150);
    assert!(offset_of!(VmcbSave, cr0) == 0x158);
    assert!(offset_of!(VmcbSave, dr7) == 0x160);
    assert!(offset_of!(VmcbSave, dr6) == 0x168);
    assert!(offset_of!(VmcbSave, rflags) == 0x170);
    assert!(offset_of!(VmcbSave, rip) == 0x178);
    assert!(offset_of!(VmcbSave, rsp) == 0x1d8);
    assert!(offset_of!(VmcbSave, rax) == 0x1f8);
    assert!(offset_of!(VmcbSave, star) == 0x200);
    assert!(offset_of!(VmcbSave, lstar) == 0x208);
    assert!(offset_of!(VmcbSave, cstar) == 0x210);
    assert!(offset_of!(VmcbSave, sfmask) == 0x218);
    assert!(offset_of!(VmcbSave, kernel_gs_base) == 0x220);
    assert!(offset_of!(VmcbSave, sysenter_cs) == 0x228);
    assert!(offset_of!(VmcbSave, sysenter_esp) == 0x230);
    assert!(offset_of!(VmcbSave, sysenter_eip) == 0x238);
    assert!(offset_of!(VmcbSave, cr2) == 0x240);
    assert!(offset_of!(VmcbSave, g_pat) == 0x268);
    assert!(offset_of!(VmcbSave, dbgctl) == 0x270);
    assert!(offset_of!(VmcbSave, br_from) == 0x278);
    assert!(offset_of!(VmcbSave, br_to) == 0x280);
    assert!(offset_of!(VmcbSave, last_excp_from) == 0x288);
    assert!(offset_of!(VmcbSave, last_excp_to) == 0x290);
    assert!(offset_of!(VmcbSave, spec_ctrl) == 0x2e0);
};
