use proptest::prelude::*;

use super::*;
use crate::msrpm::bit_index;
use crate::vmcb::EFER_SVME;

const CTX: MsrContext =
    MsrContext { vmcb_efer: EFER_SVME | 0xd01, cr0: 0x8000_0011, host_tsc: 1000, tsc_offset: 24, phys_addr_bits: 40 };

#[test]
fn table_is_sorted_and_disjoint() {
    for w in MSR_POLICY.windows(2) {
        assert!(w[0].first <= w[0].last && w[0].last < w[1].first, "{:?} / {:?}", w[0], w[1]);
    }
}

#[test]
fn msrpm_opens_exactly_the_passthrough_msrs() {
    let map = permission_map();
    for r in MSR_POLICY {
        for msr in r.first..=r.last {
            let i = map.get(msr);
            if r.read == Treatment::Passthrough || r.write == Treatment::Passthrough {
                assert!(bit_index(msr).is_some(), "passthrough MSR {msr:#x} outside the MSRPM ranges");
            }
            assert_eq!(i.read, r.read != Treatment::Passthrough, "{msr:#x}");
            assert_eq!(i.write, r.write != Treatment::Passthrough, "{msr:#x}");
        }
    }
    // Spot checks: LSTAR open, EFER and APIC_BASE trapped, unknown trapped.
    assert_eq!(map.get(index::LSTAR), crate::msrpm::MsrIntercept::NONE);
    assert_eq!(map.get(index::EFER), crate::msrpm::MsrIntercept::ALL);
    assert_eq!(map.get(index::APIC_BASE), crate::msrpm::MsrIntercept::ALL);
    assert_eq!(map.get(0x48), crate::msrpm::MsrIntercept::ALL, "SPEC_CTRL is hidden");
}

#[test]
fn handlers_match_the_table() {
    let mut m = VcpuMsrs::new(true);
    for r in MSR_POLICY {
        for msr in r.first..=r.last {
            match (r.read, m.read(msr, &CTX)) {
                (Treatment::Passthrough, Err(f)) => assert_eq!(f.why, MsrFaultReason::NotIntercepted),
                (Treatment::Emulated, Ok(v)) => assert!(!v.log, "{msr:#x}"),
                (Treatment::Ignored, Ok(v)) => assert_eq!((v.value, v.log), (0, true)),
                (Treatment::Fault, Err(_)) => {}
                (t, got) => panic!("{msr:#x}: {t:?} but {got:?}"),
            }
            // Writing back what was read succeeds for emulated MSRs.
            if let (Treatment::Emulated, Ok(v)) = (r.write, m.read(msr, &CTX)) {
                let v = if msr == index::TSC { 0 } else { v.value };
                assert!(m.write(msr, v, &CTX).is_ok(), "{msr:#x} <- {v:#x}");
            }
            match (r.write, m.write(msr, 0x1234_0000_0000, &CTX)) {
                (Treatment::Ignored, Ok(w)) => assert_eq!(w, MsrWrite::Ignored),
                (Treatment::Passthrough, Err(f)) => assert_eq!(f.why, MsrFaultReason::NotIntercepted),
                (Treatment::Fault, Err(_)) | (Treatment::Emulated, _) => {}
                (t, got) => panic!("{msr:#x}: {t:?} but {got:?}"),
            }
        }
    }
    assert_eq!(m.read(0x48, &CTX).unwrap_err().why, MsrFaultReason::NotAvailable);
    assert_eq!(m.write(0xc001_0117, 0, &CTX).unwrap_err().why, MsrFaultReason::NotAvailable);
}

#[test]
fn apic_base() {
    let mut bsp = VcpuMsrs::new(true);
    assert_eq!(bsp.read(index::APIC_BASE, &CTX).unwrap().value, 0xfee0_0900);
    let ap = VcpuMsrs::new(false);
    assert_eq!(ap.read(index::APIC_BASE, &CTX).unwrap().value, 0xfee0_0800);
    assert_eq!(bsp.write(index::APIC_BASE, 0xfee0_0100, &CTX), Ok(MsrWrite::ApicBase { enabled: false }));
    assert!(!bsp.apic_enabled());
    assert_eq!(bsp.write(index::APIC_BASE, 0xfee0_0800, &CTX), Ok(MsrWrite::ApicBase { enabled: true }));
    assert_eq!(bsp.read(index::APIC_BASE, &CTX).unwrap().value, 0xfee0_0900, "BSP is read-only");
    let why = |v| bsp.clone().write(index::APIC_BASE, v, &CTX).unwrap_err().why;
    assert_eq!(why(0xfee0_0c00), MsrFaultReason::X2ApicUnavailable);
    assert_eq!(why(0xfed0_0800), MsrFaultReason::ApicRelocation);
    assert_eq!(why(0xfee0_0801), MsrFaultReason::ReservedBits);
    assert_eq!(why(0x100_fee0_0800), MsrFaultReason::ReservedBits, "beyond 40 physical bits");
}

#[test]
fn efer() {
    let mut m = VcpuMsrs::new(true);
    assert_eq!(m.read(index::EFER, &CTX).unwrap().value, 0xd01, "SVME hidden");
    // Linux's read-modify-write of NXE with paging on.
    assert_eq!(m.write(index::EFER, 0xd01, &CTX), Ok(MsrWrite::Efer { vmcb_efer: 0xd01 | EFER_SVME }));
    let why = |v, ctx: &MsrContext| m.clone().write(index::EFER, v, ctx).unwrap_err().why;
    assert_eq!(why(0x1d01, &CTX), MsrFaultReason::SvmUnavailable);
    assert_eq!(why(0xd01 | (1 << 14), &CTX), MsrFaultReason::ReservedBits);
    assert_eq!(why(0x501 & !(1 << 8), &CTX), MsrFaultReason::LongModeWhilePaging);
    // Before paging: LME may be set; LMA stays what the CPU says.
    let early = MsrContext { vmcb_efer: EFER_SVME, cr0: 0x11, ..CTX };
    assert_eq!(m.write(index::EFER, 0x500, &early), Ok(MsrWrite::Efer { vmcb_efer: 0x100 | EFER_SVME }));
}

#[test]
fn pat_and_mtrrs() {
    let mut m = VcpuMsrs::new(false);
    assert_eq!(m.read(index::PAT, &CTX).unwrap().value, 0x0007_0406_0007_0406);
    assert_eq!(m.write(index::PAT, 0x0007_0106_0007_0406, &CTX), Ok(MsrWrite::Pat { g_pat: 0x0007_0106_0007_0406 }));
    assert_eq!(m.write(index::PAT, 0x0002, &CTX).unwrap_err().why, MsrFaultReason::InvalidMemoryType);
    assert_eq!(m.read(index::MTRR_CAP, &CTX).unwrap().value, 0x508);
    assert_eq!(m.write(index::MTRR_CAP, 0, &CTX).unwrap_err().why, MsrFaultReason::ReadOnly);
    assert_eq!(m.read(index::MTRR_DEF_TYPE, &CTX).unwrap().value, 0x806);
    assert_eq!(m.write(index::MTRR_DEF_TYPE, 0xc00, &CTX), Ok(MsrWrite::Stored));
    assert_eq!(m.write(index::MTRR_DEF_TYPE, 0x2, &CTX).unwrap_err().why, MsrFaultReason::InvalidMemoryType);
    assert_eq!(m.write(index::MTRR_DEF_TYPE, 0x1006, &CTX).unwrap_err().why, MsrFaultReason::ReservedBits);
    // Variable range 1: base 0x8000_0000 UC, mask 2 GiB valid.
    m.write(0x202, 0x8000_0000, &CTX).unwrap();
    m.write(0x203, 0xff_8000_0800, &CTX).unwrap();
    assert_eq!(m.read(0x203, &CTX).unwrap().value, 0xff_8000_0800);
    assert_eq!(m.write(0x203, 0xff_8000_0801, &CTX).unwrap_err().why, MsrFaultReason::ReservedBits);
    assert_eq!(m.write(0x202, 0x8000_0007, &CTX).unwrap_err().why, MsrFaultReason::InvalidMemoryType);
    assert_eq!(m.write(0x202, 1 << 40, &CTX).unwrap_err().why, MsrFaultReason::ReservedBits);
    m.write(index::MTRR_FIX_4K_F8000, 0x0505_0505_0505_0505, &CTX).unwrap();
    assert_eq!(m.read(index::MTRR_FIX_4K_F8000, &CTX).unwrap().value, 0x0505_0505_0505_0505);
    assert_eq!(m.write(index::MTRR_FIX_64K_00000, 0x07, &CTX).unwrap_err().why, MsrFaultReason::InvalidMemoryType);
}

#[test]
fn tsc_and_friends() {
    let mut m = VcpuMsrs::new(false);
    assert_eq!(m.read(index::TSC, &CTX).unwrap().value, 1024);
    assert_eq!(m.write(index::TSC, 0, &CTX), Ok(MsrWrite::Ignored));
    assert_eq!(m.write(index::TSC_AUX, 3, &CTX), Ok(MsrWrite::TscAux { value: 3 }));
    assert_eq!(m.read(index::TSC_AUX, &CTX).unwrap().value, 3);
    assert_eq!(m.write(index::TSC_AUX, 1 << 32, &CTX).unwrap_err().why, MsrFaultReason::ReservedBits);
    assert_eq!(m.read(index::HWCR, &CTX).unwrap().value, 1 << 24);
    assert_eq!(m.read(index::DE_CFG, &CTX).unwrap().value, 2);
    assert_eq!(m.read(index::PATCH_LEVEL, &CTX).unwrap(), MsrRead { value: 0, log: true });
}

proptest! {
    /// No MSR number or value makes the handlers panic, and a refused
    /// write changes nothing.
    #[test]
    fn never_panics_and_failed_writes_change_nothing(msr in prop_oneof![0u32..0x300, 0xc000_0000u32..0xc000_0110, 0xc001_0000u32..0xc001_1030, any::<u32>()], value in any::<u64>(), pg: bool) {
        let mut m = VcpuMsrs::new(true);
        let ctx = MsrContext { cr0: if pg { 1 << 31 } else { 0 }, ..CTX };
        let _ = m.read(msr, &ctx);
        let before = m.clone();
        if m.write(msr, value, &ctx).is_err() {
            prop_assert_eq!(m, before);
        }
    }
}
