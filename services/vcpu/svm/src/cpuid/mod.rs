//! The CPUID a guest vCPU sees.
//!
//! CPUID is always intercepted. [`GuestCpuid::build`] computes a vCPU's
//! table once from a documented [`CpuModel`], the cluster-wide
//! [`HostFeatures`] and the [`Topology`]; [`GuestCpuid::lookup`] answers
//! each CPUID exit, patching in the few bits that follow guest state
//! ([`CpuidDynamic`]). Features are the host's ANDed with an allow-list
//! ([`bits`]), so nothing the host (or QEMU TCG) lacks ever appears, and
//! every vCPU on every node sees the same features.
//!
//! # The model
//!
//! | leaf | value |
//! |---|---|
//! | 0x0 | max basic leaf 0xD; vendor `AuthenticAMD` |
//! | 0x1 EAX | family 0x17, model 0x01, stepping 2 (`0x00800F12`, AMD EPYC "Naples", QEMU's `EPYC` model) |
//! | 0x1 EBX | APIC ID in 31:24; 2^ApicIdSize logical processors in 23:16; CLFLUSH line 64 B |
//! | 0x1 ECX | host ∩ {SSE3, PCLMULQDQ, SSSE3, FMA, CX16, PCID, SSE4.1, SSE4.2, MOVBE, POPCNT, AES, XSAVE, AVX, F16C, RDRAND}; **HYPERVISOR set**; OSXSAVE = guest CR4.OSXSAVE; hidden: MONITOR, VMX, x2APIC, TSC-deadline, PDCM, DCA |
//! | 0x1 EDX | host ∩ {FPU, VME, DE, PSE, TSC, MSR, PAE, CX8, SEP, PGE, CMOV, PSE36, CLFSH, MMX, FXSR, SSE, SSE2}; APIC = guest `APIC_BASE.EN` (emulated xAPIC); MTRR, PAT set (emulated MSRs); HTT set when >1 vCPU; hidden: MCE, MCA |
//! | 0x2–0x6, 0x8–0xC | zero (AMD leaves 2–4 are reserved; no MONITOR, no thermal/power, no leaf 0xB: topology comes from 0x8000_001E), except 0x6 EAX ARAT with [`CpuModel::tsc_deadline`] |
//! | (model options) | [`CpuModel::tsc_deadline`] sets leaf 1 ECX TSC-deadline; `xsave: false` hides XSAVE, AVX, FMA, F16C, AVX2 and leaf 0xD |
//! | 0x7.0 | EBX: host ∩ {FSGSBASE, BMI1, AVX2, SMEP, BMI2, ERMS, RDSEED, ADX, SMAP, CLFLUSHOPT, CLWB, SHA}; ECX: host ∩ {UMIP, VAES, VPCLMULQDQ, RDPID}; EDX 0; hidden: TSC_ADJUST, INVPCID, HLE/RTM, MPX, AVX-512, PT, PKU, LA57, all speculation-control bits |
//! | 0xD.0 | XCR0 = host ∩ {x87, SSE, AVX}; EBX = XSAVE size for the guest's current XCR0; ECX = size for all offered |
//! | 0xD.1 | host ∩ {XSAVEOPT, XGETBV1}; hidden: XSAVEC, XSAVES (no IA32_XSS) |
//! | 0xD.2 | AVX: 256 bytes at 576 (when AVX is offered) |
//! | 0x4000_0000 | max 0x4000_0010; signature `SinterSinter` |
//! | 0x4000_0001 | EAX: Sinter paravirtual interface version (1); no features yet |
//! | 0x4000_0010 | EAX: TSC kHz, EBX: virtual APIC timer kHz (the VMware/KVM timing-leaf convention) |
//! | 0x4000_0100 | only with [`CpuModel::kvm_features`]: `KVMKVMKVM\0\0\0`, max 0x4000_0101 (Linux scans 0x4000_0000–0x4000_FF00 in steps of 0x100) |
//! | 0x4000_0101 | EAX: the KVM feature bits offered (none until their MSRs exist) |
//! | 0x8000_0000 | max extended leaf 0x8000_001E; vendor `AuthenticAMD` |
//! | 0x8000_0001 | EAX as 0x1; ECX: host ∩ {LAHF_LM, ABM, SSE4A, MisAlignSSE, PREFETCHW}, TOPOEXT set, CmpLegacy set when >1 vCPU; hidden: **SVM**, ExtApicSpace, OSVW, IBS, XOP, SKINIT, WDT, LWP, FMA4, TBM, PerfCtr*, MONITORX; EDX: host ∩ leaf-1 mirrors ∪ {SYSCALL, NX, MmxExt, Page1GB, RDTSCP, LM}, APIC/MTRR/PAT as leaf 1; hidden: FFXSR, 3DNow! |
//! | 0x8000_0002–4 | brand string `Sinter vCPU (AMD EPYC-class)` |
//! | 0x8000_0005/6 | synthetic caches (the same on every node): L1d 32 KiB 8-way, L1i 64 KiB 4-way, L2 512 KiB 8-way, L3 8 MiB 16-way, 64 B lines |
//! | 0x8000_0007 | EDX bit 8: **invariant TSC** (Sinter keeps the TSC monotonic across nodes); no power management bits |
//! | 0x8000_0008 | EAX: physical bits = min(host, 48) (4-level nested paging), linear bits 48; EBX 0 (no CLZERO/IBPB/…); ECX: ApicIdSize in 15:12, vCPUs − 1 in 7:0 |
//! | 0x8000_0009–0x8000_001C | zero (0x8000_000A SVM features: hidden) |
//! | 0x8000_001D.0–3 | the caches above; L1/L2 per vCPU, L3 shared by the vCPUs of one node |
//! | 0x8000_001E | EAX: APIC ID; EBX: core ID = APIC ID, 1 thread per core; ECX: node ID = Sinter node, nodes per package − 1 |
//! | anything else | zero |
//!
//! Not modelled yet: leaf 0x8000_0026 (extended topology), AMD speculation
//! controls (hidden, so Linux uses its no-hardware-support paths).

pub mod bits;
mod host;
pub mod topology;
pub mod xsave;

use core::fmt;

pub use host::{CpuidSource, HostFeatures};
pub use topology::{Topology, TopologyError, VcpuPlace};

use bits::*;

/// One CPUID answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidResult {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

impl CpuidResult {
    /// All zero.
    pub const ZERO: Self = Self { eax: 0, ebx: 0, ecx: 0, edx: 0 };
}

/// The identity of the CPU Sinter presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// Family (0x17: Zen).
    pub family: u16,
    /// Model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
    /// Brand string (at most 47 bytes).
    pub brand: &'static str,
    /// TSC frequency in kHz (leaf 0x4000_0010); 0 in the constant model,
    /// filled in by the vcpu service with the cluster's calibrated value.
    pub tsc_khz: u32,
    /// The virtual APIC timer's frequency in kHz (leaf 0x4000_0010); 1 GHz
    /// as KVM's.
    pub apic_bus_khz: u32,
    /// KVM feature bits to offer at 0x4000_0101, or `None` to hide the KVM
    /// leaves altogether.
    pub kvm_features: Option<u32>,
    /// Offer the TSC-deadline mode of the virtual xAPIC timer (leaf 1 ECX
    /// bit 24) and an always-running APIC timer (leaf 6 EAX ARAT), for a
    /// vcpu service that emulates `IA32_TSC_DEADLINE`.
    pub tsc_deadline: bool,
    /// Offer XSAVE (and so AVX and leaf 0xD). Requires a world switch that
    /// loads the guest's XCR0 around VMRUN (SVM does not switch XCR0);
    /// without it the guest falls back to FXSAVE.
    pub xsave: bool,
}

impl CpuModel {
    /// The model every Sinter guest sees: an AMD EPYC-class (Zen, family
    /// 0x17 model 1) vCPU, as QEMU's `-cpu EPYC` reports.
    pub const SINTER_EPYC: Self = Self {
        family: 0x17,
        model: 0x01,
        stepping: 2,
        brand: "Sinter vCPU (AMD EPYC-class)",
        tsc_khz: 0,
        apic_bus_khz: 1_000_000,
        kvm_features: None,
        tsc_deadline: false,
        xsave: true,
    };

    /// Leaf 1 EAX.
    pub const fn signature(&self) -> u32 {
        let (base_family, ext_family) = if self.family > 0xf { (0xf, self.family - 0xf) } else { (self.family, 0) };
        ((ext_family as u32 & 0xff) << 20)
            | ((self.model as u32 >> 4) << 16)
            | ((base_family as u32) << 8)
            | ((self.model as u32 & 0xf) << 4)
            | (self.stepping as u32 & 0xf)
    }
}

/// Guest state some CPUID bits follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidDynamic {
    /// The guest's CR4 (OSXSAVE, bit 18).
    pub cr4: u64,
    /// The guest's `IA32_APIC_BASE.EN`.
    pub apic_enabled: bool,
    /// The guest's XCR0.
    pub xcr0: u64,
}

impl CpuidDynamic {
    /// State at reset: APIC enabled, XCR0 = x87.
    pub const RESET: Self = Self { cr4: 0, apic_enabled: true, xcr0: xsave::XCR0_X87 };
}

const CR4_OSXSAVE: u64 = 1 << 18;

/// Why a table could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidError {
    /// The vCPU index is not in the topology.
    NoSuchVcpu(u16),
    /// The brand string is longer than 47 bytes.
    BrandTooLong,
}

impl fmt::Display for CpuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchVcpu(i) => write!(f, "vCPU {i} is not in the topology"),
            Self::BrandTooLong => write!(f, "brand string longer than 47 bytes"),
        }
    }
}

/// Leaves that take a subleaf in ECX.
const fn is_indexed(leaf: u32) -> bool {
    matches!(leaf, 0x7 | 0xd | 0x8000_001d)
}

const MAX_ENTRIES: usize = 40;
/// Max basic leaf offered.
pub const MAX_BASIC_LEAF: u32 = 0xd;
/// Max extended leaf offered.
pub const MAX_EXTENDED_LEAF: u32 = 0x8000_001e;
/// Max leaf of the Sinter hypervisor range.
pub const MAX_SINTER_LEAF: u32 = 0x4000_0010;
/// Version of the Sinter paravirtual interface (leaf 0x4000_0001 EAX).
pub const SINTER_INTERFACE_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    leaf: u32,
    subleaf: u32,
    value: CpuidResult,
}

/// One vCPU's CPUID table.
#[derive(Clone, Debug)]
pub struct GuestCpuid {
    entries: [Entry; MAX_ENTRIES],
    len: usize,
    xcr0_offered: u64,
}

fn signature_words(sig: &[u8; 12]) -> [u32; 3] {
    let w = |i: usize| u32::from_le_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
    [w(0), w(4), w(8)]
}

/// A cache level for leaf 0x8000_001D.
struct Cache {
    kind: u32, // 1 data, 2 instruction, 3 unified
    level: u32,
    kib: u32,
    ways: u32,
}

const CACHES: [Cache; 4] = [
    Cache { kind: 1, level: 1, kib: 32, ways: 8 },
    Cache { kind: 2, level: 1, kib: 64, ways: 4 },
    Cache { kind: 3, level: 2, kib: 512, ways: 8 },
    Cache { kind: 3, level: 3, kib: 8 * 1024, ways: 16 },
];
const LINE: u32 = 64;

impl GuestCpuid {
    /// Builds the table for vCPU `vcpu` (0-based, node by node).
    pub fn build(model: &CpuModel, host: &HostFeatures, topo: &Topology, vcpu: u16) -> Result<Self, CpuidError> {
        let place = topo.place(vcpu).ok_or(CpuidError::NoSuchVcpu(vcpu))?;
        if model.brand.len() > 47 {
            return Err(CpuidError::BrandTooLong);
        }
        let mut t = Self {
            entries: [Entry { leaf: 0, subleaf: 0, value: CpuidResult::ZERO }; MAX_ENTRIES],
            len: 0,
            xcr0_offered: 0,
        };
        let r = |eax, ebx, ecx, edx| CpuidResult { eax, ebx, ecx, edx };
        let multi = topo.vcpu_count() > 1;
        let apic_id = u32::from(place.apic_id);
        let [amd0, amd1, amd2] = signature_words(b"AuthenticAMD");

        t.push(0, 0, r(MAX_BASIC_LEAF, amd0, amd2, amd1));

        let logical = (1u32 << topo.apic_id_bits()).min(255);
        let l1_ebx = (apic_id << 24) | (logical << 16) | ((LINE / 8) << 8);
        let mut l1_ecx = (host.l1_ecx & ALLOW_L1_ECX) | l1_ecx::HYPERVISOR;
        if model.tsc_deadline {
            l1_ecx |= l1_ecx::TSC_DEADLINE;
        }
        let mut l7_ebx = host.l7_ebx & ALLOW_L7_EBX;
        if !model.xsave {
            // AVX, FMA, F16C and AVX2 need XSAVE-managed state.
            l1_ecx &= !(l1_ecx::XSAVE | l1_ecx::AVX | l1_ecx::FMA | l1_ecx::F16C);
            l7_ebx &= !l7_ebx::AVX2;
        }
        let mut l1_edx = (host.l1_edx & ALLOW_L1_EDX) | FORCE_L1_EDX;
        if multi {
            l1_edx |= l1_edx::HTT;
        }
        t.push(1, 0, r(model.signature(), l1_ebx, l1_ecx, l1_edx));
        if model.tsc_deadline {
            // ARAT: the APIC timer keeps running in deep C-states.
            t.push(6, 0, r(1 << 2, 0, 0, 0));
        }
        t.push(7, 0, r(0, l7_ebx, host.l7_ecx & ALLOW_L7_ECX, 0));

        // XSAVE, only if the host has it and we offer it.
        if l1_ecx & l1_ecx::XSAVE != 0 {
            let mut xcr0 = host.xcr0 & xsave::XCR0_ALLOWED;
            if l1_ecx & l1_ecx::AVX == 0 {
                xcr0 &= !xsave::XCR0_AVX;
            }
            t.xcr0_offered = xcr0;
            let max = xsave::xsave_size(xcr0);
            t.push(0xd, 0, r(xcr0 as u32, max, max, (xcr0 >> 32) as u32));
            t.push(0xd, 1, r(host.xsave_ext & 0b101, 0, 0, 0));
            if xcr0 & xsave::XCR0_AVX != 0 {
                t.push(0xd, 2, r(xsave::AVX_SIZE, xsave::AVX_OFFSET, 0, 0));
            }
        }

        let [s0, s1, s2] = signature_words(b"SinterSinter");
        t.push(0x4000_0000, 0, r(MAX_SINTER_LEAF, s0, s1, s2));
        t.push(0x4000_0001, 0, r(SINTER_INTERFACE_VERSION, 0, 0, 0));
        t.push(0x4000_0010, 0, r(model.tsc_khz, model.apic_bus_khz, 0, 0));
        if let Some(features) = model.kvm_features {
            let [k0, k1, k2] = signature_words(b"KVMKVMKVM\0\0\0");
            t.push(0x4000_0100, 0, r(0x4000_0101, k0, k1, k2));
            t.push(0x4000_0101, 0, r(features, 0, 0, 0));
        }

        t.push(0x8000_0000, 0, r(MAX_EXTENDED_LEAF, amd0, amd2, amd1));
        let mut e1_ecx = (host.e1_ecx & ALLOW_E1_ECX) | e1_ecx::TOPOEXT;
        if multi {
            e1_ecx |= e1_ecx::CMP_LEGACY;
        }
        let e1_edx = (host.e1_edx & ALLOW_E1_EDX) | FORCE_E1_EDX;
        t.push(0x8000_0001, 0, r(model.signature(), 0, e1_ecx, e1_edx));

        let mut brand = [0u8; 48];
        brand[..model.brand.len()].copy_from_slice(model.brand.as_bytes());
        for (i, leaf) in (0x8000_0002..=0x8000_0004u32).enumerate() {
            let w = |j: usize| {
                let o = i * 16 + j * 4;
                u32::from_le_bytes([brand[o], brand[o + 1], brand[o + 2], brand[o + 3]])
            };
            t.push(leaf, 0, r(w(0), w(1), w(2), w(3)));
        }

        // AMD legacy cache leaves, same caches as 0x8000_001D.
        let tlb = (0xff << 24) | (64 << 16) | (0xff << 8) | 64;
        let l1 = |c: &Cache| (c.kib << 24) | (c.ways << 16) | (1 << 8) | LINE;
        t.push(0x8000_0005, 0, r(tlb, tlb, l1(&CACHES[0]), l1(&CACHES[1])));
        let l2 = (CACHES[2].kib << 16) | (0x6 << 12) | (1 << 8) | LINE;
        let l3 = ((CACHES[3].kib / 512) << 18) | (0x8 << 12) | (1 << 8) | LINE;
        t.push(0x8000_0006, 0, r(0, 0, l2, l3));
        t.push(0x8000_0007, 0, r(0, 0, 0, INVARIANT_TSC));

        let phys = u32::from(host.phys_addr_bits.min(crate::npt::MAX_GPA_BITS as u8));
        let ecx = (u32::from(topo.apic_id_bits()) << 12) | (u32::from(topo.vcpu_count()) - 1);
        t.push(0x8000_0008, 0, r(phys | (48 << 8), 0, ecx, 0));

        for (i, c) in CACHES.iter().enumerate() {
            let sharing = if c.level == 3 { (1u32 << topo.core_bits()) - 1 } else { 0 };
            let eax = c.kind | (c.level << 5) | (1 << 8) | (sharing << 14);
            let ebx = (LINE - 1) | ((c.ways - 1) << 22);
            let sets = c.kib * 1024 / (c.ways * LINE) - 1;
            let edx = if c.level == 3 { 1 << 1 } else { 0 }; // L3 inclusive
            t.push(0x8000_001d, i as u32, r(eax, ebx, sets, edx));
        }
        let node = u32::from(place.node);
        let nodes = u32::from(topo.node_count()) - 1;
        t.push(0x8000_001e, 0, r(apic_id, apic_id & 0xff, node | (nodes << 8), 0));
        Ok(t)
    }

    fn push(&mut self, leaf: u32, subleaf: u32, value: CpuidResult) {
        // MAX_ENTRIES covers every leaf above; a debug build catches growth.
        debug_assert!(self.len < MAX_ENTRIES);
        if let Some(e) = self.entries.get_mut(self.len) {
            *e = Entry { leaf, subleaf, value };
            self.len += 1;
        }
    }

    /// XCR0 components offered (CPUID 0xD.0 EDX:EAX), for checking XSETBV.
    pub fn xcr0_offered(&self) -> u64 {
        self.xcr0_offered
    }

    /// The answer to CPUID(`leaf`, `subleaf`) for a guest in state `now`.
    pub fn lookup(&self, leaf: u32, subleaf: u32, now: &CpuidDynamic) -> CpuidResult {
        let sub = if is_indexed(leaf) { subleaf } else { 0 };
        let Some(e) = self.entries[..self.len].iter().find(|e| e.leaf == leaf && e.subleaf == sub) else {
            return CpuidResult::ZERO;
        };
        let mut v = e.value;
        match (leaf, sub) {
            (1, _) => {
                if v.ecx & l1_ecx::XSAVE != 0 && now.cr4 & CR4_OSXSAVE != 0 {
                    v.ecx |= l1_ecx::OSXSAVE;
                }
                if !now.apic_enabled {
                    v.edx &= !l1_edx::APIC;
                }
            }
            (0x8000_0001, _) if !now.apic_enabled => v.edx &= !l1_edx::APIC,
            (0xd, 0) => v.ebx = xsave::xsave_size(now.xcr0 & self.xcr0_offered),
            _ => {}
        }
        v
    }

    /// Every (leaf, subleaf) in the table with its static value, for logs
    /// and for handing the table to tools.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u32, CpuidResult)> + '_ {
        self.entries[..self.len].iter().map(|e| (e.leaf, e.subleaf, e.value))
    }
}

#[cfg(test)]
mod tests;
