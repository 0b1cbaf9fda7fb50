//! What the host CPUs offer, as the input of the guest CPUID model.
//!
//! In a cluster every vCPU must see the same features wherever it runs, so
//! each node reads its own [`HostFeatures`] and the cluster intersects them
//! ([`HostFeatures::intersect`]) before any guest CPUID is built. Under
//! QEMU TCG the "host" is QEMU's emulated CPU (e.g. `-cpu EPYC,+svm,+npt`),
//! so whatever TCG cannot emulate is already absent here.

use super::CpuidResult;

/// Reads host CPUID (bare metal: the `CPUID` instruction; tests: a table).
pub trait CpuidSource {
    /// CPUID with EAX = `leaf`, ECX = `subleaf`.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;
}

/// The host feature words the model consults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFeatures {
    /// Leaf 1 ECX.
    pub l1_ecx: u32,
    /// Leaf 1 EDX.
    pub l1_edx: u32,
    /// Leaf 7.0 EBX.
    pub l7_ebx: u32,
    /// Leaf 7.0 ECX.
    pub l7_ecx: u32,
    /// Leaf 0x8000_0001 ECX.
    pub e1_ecx: u32,
    /// Leaf 0x8000_0001 EDX.
    pub e1_edx: u32,
    /// XCR0 components (leaf 0xD.0 EDX:EAX).
    pub xcr0: u64,
    /// Leaf 0xD.1 EAX (XSAVEOPT, XSAVEC, XGETBV1, XSAVES).
    pub xsave_ext: u32,
    /// Physical address bits (leaf 0x8000_0008 EAX bits 7:0).
    pub phys_addr_bits: u8,
}

impl HostFeatures {
    /// Reads the feature words from `src`, treating leaves beyond the
    /// host's maximum as all-zero.
    pub fn read(src: &impl CpuidSource) -> Self {
        let max_basic = src.cpuid(0, 0).eax;
        let max_ext = src.cpuid(0x8000_0000, 0).eax;
        let basic = |leaf, sub| if leaf <= max_basic { src.cpuid(leaf, sub) } else { CpuidResult::ZERO };
        let ext = |leaf| if leaf <= max_ext && max_ext >= 0x8000_0000 { src.cpuid(leaf, 0) } else { CpuidResult::ZERO };
        let (l1, l7, d0, d1) = (basic(1, 0), basic(7, 0), basic(0xd, 0), basic(0xd, 1));
        let (e1, e8) = (ext(0x8000_0001), ext(0x8000_0008));
        let xsave = l1.ecx & super::bits::l1_ecx::XSAVE != 0;
        Self {
            l1_ecx: l1.ecx,
            l1_edx: l1.edx,
            l7_ebx: l7.ebx,
            l7_ecx: l7.ecx,
            e1_ecx: e1.ecx,
            e1_edx: e1.edx,
            xcr0: if xsave { (u64::from(d0.edx) << 32) | u64::from(d0.eax) } else { 0 },
            xsave_ext: if xsave { d1.eax } else { 0 },
            phys_addr_bits: if e8.eax & 0xff == 0 { 36 } else { (e8.eax & 0xff) as u8 },
        }
    }

    /// What every one of two hosts offers.
    pub fn intersect(&self, other: &Self) -> Self {
        Self {
            l1_ecx: self.l1_ecx & other.l1_ecx,
            l1_edx: self.l1_edx & other.l1_edx,
            l7_ebx: self.l7_ebx & other.l7_ebx,
            l7_ecx: self.l7_ecx & other.l7_ecx,
            e1_ecx: self.e1_ecx & other.e1_ecx,
            e1_edx: self.e1_edx & other.e1_edx,
            xcr0: self.xcr0 & other.xcr0,
            xsave_ext: self.xsave_ext & other.xsave_ext,
            phys_addr_bits: self.phys_addr_bits.min(other.phys_addr_bits),
        }
    }
}
