use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

/// Roughly what QEMU 7.2 TCG reports for `-cpu EPYC,+svm,+npt` (the bits
/// that matter here; the model only ever ANDs with them).
fn qemu_epyc() -> HostFeatures {
    use bits::*;
    HostFeatures {
        l1_ecx: l1_ecx::SSE3
            | l1_ecx::PCLMULQDQ
            | l1_ecx::MONITOR
            | l1_ecx::SSSE3
            | l1_ecx::FMA
            | l1_ecx::CX16
            | l1_ecx::SSE4_1
            | l1_ecx::SSE4_2
            | l1_ecx::MOVBE
            | l1_ecx::POPCNT
            | l1_ecx::AES
            | l1_ecx::XSAVE
            | l1_ecx::AVX
            | l1_ecx::F16C
            | l1_ecx::RDRAND
            | l1_ecx::HYPERVISOR,
        l1_edx: 0x178b_fbff, // EPYC: FPU..SSE2 incl. MCE, MCA, HTT
        l7_ebx: l7_ebx::FSGSBASE
            | l7_ebx::BMI1
            | l7_ebx::AVX2
            | l7_ebx::SMEP
            | l7_ebx::BMI2
            | l7_ebx::RDSEED
            | l7_ebx::ADX
            | l7_ebx::SMAP
            | l7_ebx::CLFLUSHOPT
            | l7_ebx::SHA,
        l7_ecx: 0,
        e1_ecx: e1_ecx::LAHF_LM
            | e1_ecx::CMP_LEGACY
            | e1_ecx::SVM
            | e1_ecx::EXT_APIC_SPACE
            | e1_ecx::ABM
            | e1_ecx::SSE4A
            | e1_ecx::MISALIGN_SSE
            | e1_ecx::PREFETCHW
            | e1_ecx::OSVW,
        e1_edx: 0x2fd3_fbff,
        xcr0: 0b111,
        xsave_ext: 0b101,
        phys_addr_bits: 40,
    }
}

fn everything() -> HostFeatures {
    HostFeatures {
        l1_ecx: u32::MAX,
        l1_edx: u32::MAX,
        l7_ebx: u32::MAX,
        l7_ecx: u32::MAX,
        e1_ecx: u32::MAX,
        e1_edx: u32::MAX,
        xcr0: u64::MAX,
        xsave_ext: u32::MAX,
        phys_addr_bits: 52,
    }
}

fn table(host: &HostFeatures, nodes: &[u8], vcpu: u16) -> GuestCpuid {
    GuestCpuid::build(&CpuModel::SINTER_EPYC, host, &Topology::new(nodes).unwrap(), vcpu).unwrap()
}

const NOW: CpuidDynamic = CpuidDynamic::RESET;

fn text(words: &[u32]) -> String {
    words.iter().flat_map(|w| w.to_le_bytes()).map(char::from).collect()
}

#[test]
fn identity() {
    let t = table(&qemu_epyc(), &[1], 0);
    let l0 = t.lookup(0, 0, &NOW);
    assert_eq!(l0.eax, 0xd);
    assert_eq!(text(&[l0.ebx, l0.edx, l0.ecx]), "AuthenticAMD");
    assert_eq!(t.lookup(1, 0, &NOW).eax, 0x0080_0f12);
    assert_eq!(t.lookup(0x8000_0001, 0, &NOW).eax, 0x0080_0f12);
    let e0 = t.lookup(0x8000_0000, 0, &NOW);
    assert_eq!(e0.eax, 0x8000_001e);
    assert_eq!(text(&[e0.ebx, e0.edx, e0.ecx]), "AuthenticAMD");
    let brand: Vec<u32> = (0x8000_0002..=0x8000_0004u32)
        .flat_map(|l| {
            let r = t.lookup(l, 0, &NOW);
            [r.eax, r.ebx, r.ecx, r.edx]
        })
        .collect();
    assert_eq!(text(&brand).trim_end_matches('\0'), "Sinter vCPU (AMD EPYC-class)");
}

#[test]
fn hypervisor_leaves() {
    let t = table(&qemu_epyc(), &[1], 0);
    assert_ne!(t.lookup(1, 0, &NOW).ecx & bits::l1_ecx::HYPERVISOR, 0);
    let h = t.lookup(0x4000_0000, 0, &NOW);
    assert_eq!(h.eax, 0x4000_0010);
    assert_eq!(text(&[h.ebx, h.ecx, h.edx]), "SinterSinter");
    assert_eq!(t.lookup(0x4000_0001, 0, &NOW).eax, 1);
    assert_eq!(t.lookup(0x4000_0010, 0, &NOW).ebx, 1_000_000);
    assert_eq!(t.lookup(0x4000_0100, 0, &NOW), CpuidResult::ZERO, "KVM leaves hidden by default");

    let kvm = CpuModel { kvm_features: Some(0), ..CpuModel::SINTER_EPYC };
    let t = GuestCpuid::build(&kvm, &qemu_epyc(), &Topology::new(&[1]).unwrap(), 0).unwrap();
    let k = t.lookup(0x4000_0100, 0, &NOW);
    assert_eq!(k.eax, 0x4000_0101);
    assert_eq!(text(&[k.ebx, k.ecx, k.edx]), "KVMKVMKVM\0\0\0");
}

#[test]
fn hidden_features_stay_hidden_even_if_the_host_has_them() {
    let t = table(&everything(), &[2], 0);
    let l1 = t.lookup(1, 0, &NOW);
    for (bit, name) in [
        (bits::l1_ecx::X2APIC, "x2APIC"),
        (bits::l1_ecx::VMX, "VMX"),
        (bits::l1_ecx::MONITOR, "MONITOR"),
        (bits::l1_ecx::TSC_DEADLINE, "TSC-deadline"),
        (bits::l1_ecx::OSXSAVE, "OSXSAVE before CR4.OSXSAVE"),
    ] {
        assert_eq!(l1.ecx & bit, 0, "{name}");
    }
    assert_eq!(l1.edx & (bits::l1_edx::MCE | bits::l1_edx::MCA), 0);
    let e1 = t.lookup(0x8000_0001, 0, &NOW);
    assert_eq!(e1.ecx & bits::e1_ecx::SVM, 0, "SVM hidden");
    assert_eq!(e1.ecx & (bits::e1_ecx::OSVW | bits::e1_ecx::EXT_APIC_SPACE | bits::e1_ecx::PERFCTR_CORE), 0);
    assert_ne!(e1.ecx & bits::e1_ecx::TOPOEXT, 0);
    assert_eq!(e1.edx & (bits::e1_edx::FFXSR | bits::e1_edx::AMD_3DNOW | bits::e1_edx::AMD_3DNOW_EXT), 0);
    let l7 = t.lookup(7, 0, &NOW);
    assert_eq!(l7.ebx, bits::ALLOW_L7_EBX, "no TSC_ADJUST, INVPCID, TSX, MPX, AVX-512, PT");
    assert_eq!(l7.ecx, bits::ALLOW_L7_ECX, "no PKU, LA57");
    assert_eq!(l7.edx, 0);
    assert_eq!(t.lookup(0xd, 0, &NOW).eax, 0b111, "XCR0 limited to x87/SSE/AVX");
    assert_eq!(t.lookup(0xd, 1, &NOW).eax, 0b101, "no XSAVEC/XSAVES");
    assert_eq!(t.lookup(0x8000_000a, 0, &NOW), CpuidResult::ZERO, "no SVM leaf");
    assert_eq!(t.lookup(0x8000_0008, 0, &NOW).eax & 0xff, 48, "GPA bits capped by 4-level NPT");
    assert_eq!(t.lookup(0x8000_0008, 0, &NOW).ebx, 0);
}

#[test]
fn absent_host_features_stay_absent() {
    let mut host = qemu_epyc();
    host.l1_ecx &= !(bits::l1_ecx::AVX | bits::l1_ecx::RDRAND);
    let t = table(&host, &[1], 0);
    assert_eq!(t.lookup(1, 0, &NOW).ecx & (bits::l1_ecx::AVX | bits::l1_ecx::RDRAND), 0);
    assert_eq!(t.lookup(0xd, 0, &NOW).eax, 0b011, "no AVX state without AVX");
    assert_eq!(t.lookup(0xd, 2, &NOW), CpuidResult::ZERO);
    host.l1_ecx &= !bits::l1_ecx::XSAVE;
    let t = table(&host, &[1], 0);
    assert_eq!(t.lookup(0xd, 0, &NOW), CpuidResult::ZERO);
    let now = CpuidDynamic { cr4: 1 << 18, ..NOW };
    assert_eq!(t.lookup(1, 0, &now).ecx & bits::l1_ecx::OSXSAVE, 0);
    assert_eq!(t.xcr0_offered(), 0);
}

#[test]
fn realistic_epyc_host() {
    let t = table(&qemu_epyc(), &[1], 0);
    let l1 = t.lookup(1, 0, &NOW);
    assert_eq!(l1.ecx, (qemu_epyc().l1_ecx & !bits::l1_ecx::MONITOR) | bits::l1_ecx::HYPERVISOR);
    assert_ne!(l1.edx & bits::l1_edx::APIC, 0);
    assert_eq!(l1.edx & bits::l1_edx::HTT, 0, "one vCPU: no HTT");
    assert_eq!(t.lookup(0x8000_0007, 0, &NOW).edx, bits::INVARIANT_TSC);
    assert_eq!(t.lookup(0x8000_0008, 0, &NOW).eax, 40 | (48 << 8));
}

#[test]
fn dynamic_bits_follow_guest_state() {
    let t = table(&qemu_epyc(), &[1], 0);
    let on = CpuidDynamic { cr4: 1 << 18, apic_enabled: false, xcr0: 0b111 };
    let l1 = t.lookup(1, 0, &on);
    assert_ne!(l1.ecx & bits::l1_ecx::OSXSAVE, 0);
    assert_eq!(l1.edx & bits::l1_edx::APIC, 0);
    assert_eq!(t.lookup(0x8000_0001, 0, &on).edx & bits::l1_edx::APIC, 0);
    assert_eq!(t.lookup(0xd, 0, &on).ebx, 832);
    assert_eq!(t.lookup(0xd, 0, &NOW).ebx, 576);
    assert_eq!(t.lookup(0xd, 0, &NOW).ecx, 832);
}

#[test]
fn subleaves_and_unknown_leaves() {
    let t = table(&qemu_epyc(), &[1], 0);
    assert_eq!(t.lookup(7, 1, &NOW), CpuidResult::ZERO);
    assert_eq!(t.lookup(1, 5, &NOW), t.lookup(1, 0, &NOW), "leaf 1 ignores ECX");
    for leaf in [2, 4, 5, 6, 0xb, 0xe, 0x14, 0x4000_0002, 0x8000_0019, 0x8000_001f, 0x8000_0026, 0xffff_ffff] {
        assert_eq!(t.lookup(leaf, 0, &NOW), CpuidResult::ZERO, "{leaf:#x}");
    }
    assert_eq!(t.lookup(0x8000_001d, 4, &NOW), CpuidResult::ZERO, "cache list ends");
}

/// Linux's view: get_count_order(n) = ceil(log2(n)).
fn count_order(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

#[test]
fn topology_two_nodes() {
    let t = table(&qemu_epyc(), &[2, 2], 3);
    let l1 = t.lookup(1, 0, &NOW);
    assert_eq!(l1.ebx >> 24, 3, "APIC ID");
    assert_eq!((l1.ebx >> 16) & 0xff, 4);
    assert_ne!(l1.edx & bits::l1_edx::HTT, 0);
    assert_eq!(t.lookup(0x8000_0008, 0, &NOW).ecx, (2 << 12) | 3);
    let e = t.lookup(0x8000_001e, 0, &NOW);
    assert_eq!((e.eax, e.ebx, e.ecx), (3, 3, 1 | (1 << 8)));
    let l3 = t.lookup(0x8000_001d, 3, &NOW);
    assert_eq!(((l3.eax >> 14) & 0xfff) + 1, 2, "L3 shared by the node's two vCPUs");
    assert_eq!(l3.eax & 0x1f, 3);
    assert_eq!((l3.eax >> 5) & 7, 3);
    let sets = l3.ecx + 1;
    let ways = (l3.ebx >> 22) + 1;
    let line = (l3.ebx & 0xfff) + 1;
    assert_eq!(sets * ways * line, 8 << 20);
}

#[test]
fn host_features_read_and_intersect() {
    struct Table(BTreeMap<(u32, u32), CpuidResult>);
    impl CpuidSource for Table {
        fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
            self.0.get(&(leaf, subleaf)).copied().unwrap_or_default()
        }
    }
    let r = |eax, ebx, ecx, edx| CpuidResult { eax, ebx, ecx, edx };
    let mut m = BTreeMap::new();
    m.insert((0, 0), r(0xd, 0, 0, 0));
    m.insert((1, 0), r(0, 0, bits::l1_ecx::XSAVE | 1, 0x10));
    m.insert((7, 0), r(0, 0x8, 0x4, 0));
    m.insert((0xd, 0), r(0x7, 0, 0, 0));
    m.insert((0xd, 1), r(0x1, 0, 0, 0));
    m.insert((0x8000_0000, 0), r(0x8000_0008, 0, 0, 0));
    m.insert((0x8000_0001, 0), r(0, 0, 0x40, 0x800));
    m.insert((0x8000_0008, 0), r(0x3028, 0, 0, 0));
    let a = HostFeatures::read(&Table(m.clone()));
    assert_eq!(a.xcr0, 7);
    assert_eq!(a.phys_addr_bits, 0x28);
    assert_eq!(a.l7_ebx, 0x8);
    m.insert((0x8000_0000, 0), r(0x8000_0001, 0, 0, 0)); // no 0x8000_0008
    m.insert((0xd, 0), r(0x3, 0, 0, 0));
    let b = HostFeatures::read(&Table(m));
    assert_eq!(b.phys_addr_bits, 36, "architectural default");
    let both = a.intersect(&b);
    assert_eq!((both.xcr0, both.phys_addr_bits, both.e1_ecx), (3, 36, 0x40));
}

#[test]
fn errors() {
    let topo = Topology::new(&[2]).unwrap();
    assert_eq!(
        GuestCpuid::build(&CpuModel::SINTER_EPYC, &qemu_epyc(), &topo, 2).unwrap_err(),
        CpuidError::NoSuchVcpu(2)
    );
    let long = CpuModel { brand: "0123456789012345678901234567890123456789012345678", ..CpuModel::SINTER_EPYC };
    assert_eq!(GuestCpuid::build(&long, &qemu_epyc(), &topo, 0).unwrap_err(), CpuidError::BrandTooLong);
}

proptest! {
    /// Every vCPU sees the same CPU except its topology fields, and Linux's
    /// LLC id (APIC ID >> order(L3 sharers)) and AMD node id both equal the
    /// Sinter node.
    #[test]
    fn vcpus_agree_except_topology(nodes in proptest::collection::vec(1u8..=8, 1..=4)) {
        let topo = Topology::new(&nodes).unwrap();
        let host = qemu_epyc();
        let first = GuestCpuid::build(&CpuModel::SINTER_EPYC, &host, &topo, 0).unwrap();
        let mut apic_ids = Vec::new();
        for i in 0..topo.vcpu_count() {
            let t = GuestCpuid::build(&CpuModel::SINTER_EPYC, &host, &topo, i).unwrap();
            let place = topo.place(i).unwrap();
            for ((leaf, sub, a), (_, _, b)) in t.entries().zip(first.entries()) {
                match leaf {
                    1 => prop_assert_eq!((a.eax, a.ebx & 0x00ff_ffff, a.ecx, a.edx), (b.eax, b.ebx & 0x00ff_ffff, b.ecx, b.edx)),
                    0x8000_001e => {}
                    _ => prop_assert_eq!(a, b, "leaf {:#x}.{}", leaf, sub),
                }
            }
            let apic = t.lookup(1, 0, &NOW).ebx >> 24;
            prop_assert_eq!(apic, u32::from(place.apic_id));
            prop_assert_eq!(t.lookup(0x8000_001e, 0, &NOW).eax, apic);
            prop_assert_eq!(t.lookup(0x8000_001e, 0, &NOW).ecx & 0xff, u32::from(place.node));
            let sharers = ((t.lookup(0x8000_001d, 3, &NOW).eax >> 14) & 0xfff) + 1;
            prop_assert_eq!(apic >> count_order(sharers), u32::from(place.node));
            let id_bits = (t.lookup(0x8000_0008, 0, &NOW).ecx >> 12) & 0xf;
            prop_assert!(apic < (1 << id_bits) || id_bits == 0);
            apic_ids.push(apic);
        }
        apic_ids.sort_unstable();
        apic_ids.dedup();
        prop_assert_eq!(apic_ids.len(), usize::from(topo.vcpu_count()), "APIC IDs unique");
    }
}

#[test]
fn model_options_tsc_deadline_and_no_xsave() {
    let model = CpuModel { tsc_deadline: true, xsave: false, kvm_features: Some(1 << 3), ..CpuModel::SINTER_EPYC };
    let t = GuestCpuid::build(&model, &everything(), &Topology::new(&[2]).unwrap(), 1).unwrap();
    let l1 = t.lookup(1, 0, &NOW);
    assert_ne!(l1.ecx & bits::l1_ecx::TSC_DEADLINE, 0);
    for bit in [bits::l1_ecx::XSAVE, bits::l1_ecx::AVX, bits::l1_ecx::FMA, bits::l1_ecx::F16C] {
        assert_eq!(l1.ecx & bit, 0, "bit {bit:#x} needs XSAVE");
    }
    assert_eq!(t.lookup(7, 0, &NOW).ebx & bits::l7_ebx::AVX2, 0);
    assert_eq!(t.lookup(0xd, 0, &NOW), CpuidResult::ZERO);
    assert_eq!(t.lookup(6, 0, &NOW).eax, 1 << 2, "ARAT");
    assert_eq!(t.lookup(0x4000_0101, 0, &NOW).eax, 1 << 3);
    // The default model keeps both as before.
    let t = table(&everything(), &[2], 0);
    assert_eq!(t.lookup(6, 0, &NOW), CpuidResult::ZERO);
    assert_ne!(t.lookup(1, 0, &NOW).ecx & bits::l1_ecx::XSAVE, 0);
}
