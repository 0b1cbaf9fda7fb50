//! CPUID feature bits Sinter names, and the allow-lists built from them.
//! A bit not named in an allow-list is hidden from the guest.

/// Leaf 1 ECX.
#[allow(missing_docs, reason = "architectural feature names")]
pub mod l1_ecx {
    pub const SSE3: u32 = 1 << 0;
    pub const PCLMULQDQ: u32 = 1 << 1;
    pub const MONITOR: u32 = 1 << 3;
    pub const VMX: u32 = 1 << 5;
    pub const SSSE3: u32 = 1 << 9;
    pub const FMA: u32 = 1 << 12;
    pub const CX16: u32 = 1 << 13;
    pub const PCID: u32 = 1 << 17;
    pub const SSE4_1: u32 = 1 << 19;
    pub const SSE4_2: u32 = 1 << 20;
    pub const X2APIC: u32 = 1 << 21;
    pub const MOVBE: u32 = 1 << 22;
    pub const POPCNT: u32 = 1 << 23;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const AES: u32 = 1 << 25;
    pub const XSAVE: u32 = 1 << 26;
    pub const OSXSAVE: u32 = 1 << 27;
    pub const AVX: u32 = 1 << 28;
    pub const F16C: u32 = 1 << 29;
    pub const RDRAND: u32 = 1 << 30;
    pub const HYPERVISOR: u32 = 1 << 31;
}

/// Leaf 1 EDX (bits 0–9, 12–17, 23, 24 are mirrored in 0x8000_0001 EDX).
#[allow(missing_docs, reason = "architectural feature names")]
pub mod l1_edx {
    pub const FPU: u32 = 1 << 0;
    pub const VME: u32 = 1 << 1;
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const MCE: u32 = 1 << 7;
    pub const CX8: u32 = 1 << 8;
    pub const APIC: u32 = 1 << 9;
    pub const SEP: u32 = 1 << 11;
    pub const MTRR: u32 = 1 << 12;
    pub const PGE: u32 = 1 << 13;
    pub const MCA: u32 = 1 << 14;
    pub const CMOV: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const PSE36: u32 = 1 << 17;
    pub const CLFSH: u32 = 1 << 19;
    pub const MMX: u32 = 1 << 23;
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
    pub const HTT: u32 = 1 << 28;
}

/// Leaf 7 subleaf 0 EBX.
#[allow(missing_docs, reason = "architectural feature names")]
pub mod l7_ebx {
    pub const FSGSBASE: u32 = 1 << 0;
    pub const TSC_ADJUST: u32 = 1 << 1;
    pub const BMI1: u32 = 1 << 3;
    pub const AVX2: u32 = 1 << 5;
    pub const SMEP: u32 = 1 << 7;
    pub const BMI2: u32 = 1 << 8;
    pub const ERMS: u32 = 1 << 9;
    pub const INVPCID: u32 = 1 << 10;
    pub const RDSEED: u32 = 1 << 18;
    pub const ADX: u32 = 1 << 19;
    pub const SMAP: u32 = 1 << 20;
    pub const CLFLUSHOPT: u32 = 1 << 23;
    pub const CLWB: u32 = 1 << 24;
    pub const SHA: u32 = 1 << 29;
}

/// Leaf 7 subleaf 0 ECX.
#[allow(missing_docs, reason = "architectural feature names")]
pub mod l7_ecx {
    pub const UMIP: u32 = 1 << 2;
    pub const PKU: u32 = 1 << 3;
    pub const VAES: u32 = 1 << 9;
    pub const VPCLMULQDQ: u32 = 1 << 10;
    pub const LA57: u32 = 1 << 16;
    pub const RDPID: u32 = 1 << 22;
}

/// Leaf 0x8000_0001 ECX.
#[allow(missing_docs, reason = "architectural feature names")]
pub mod e1_ecx {
    pub const LAHF_LM: u32 = 1 << 0;
    pub const CMP_LEGACY: u32 = 1 << 1;
    pub const SVM: u32 = 1 << 2;
    pub const EXT_APIC_SPACE: u32 = 1 << 3;
    pub const ABM: u32 = 1 << 5;
    pub const SSE4A: u32 = 1 << 6;
    pub const MISALIGN_SSE: u32 = 1 << 7;
    pub const PREFETCHW: u32 = 1 << 8;
    pub const OSVW: u32 = 1 << 9;
    pub const TOPOEXT: u32 = 1 << 22;
    pub const PERFCTR_CORE: u32 = 1 << 23;
}

/// Leaf 0x8000_0001 EDX.
#[allow(missing_docs, reason = "architectural feature names")]
pub mod e1_edx {
    pub const SYSCALL: u32 = 1 << 11;
    pub const NX: u32 = 1 << 20;
    pub const MMXEXT: u32 = 1 << 22;
    pub const FFXSR: u32 = 1 << 25;
    pub const PAGE1GB: u32 = 1 << 26;
    pub const RDTSCP: u32 = 1 << 27;
    pub const LM: u32 = 1 << 29;
    pub const AMD_3DNOW_EXT: u32 = 1 << 30;
    pub const AMD_3DNOW: u32 = 1 << 31;
}

/// Leaf 0x8000_0007 EDX bit 8: the TSC runs at a constant rate in every
/// power state (Sinter keeps it monotonic across nodes too).
pub const INVARIANT_TSC: u32 = 1 << 8;

/// Host features a guest may see in leaf 1 ECX (then ANDed with the host).
pub const ALLOW_L1_ECX: u32 = {
    use l1_ecx::*;
    SSE3 | PCLMULQDQ | SSSE3 | FMA | CX16 | PCID | SSE4_1 | SSE4_2 | MOVBE | POPCNT | AES | XSAVE | AVX | F16C | RDRAND
};

/// Host features a guest may see in leaf 1 EDX.
pub const ALLOW_L1_EDX: u32 = {
    use l1_edx::*;
    FPU | VME | DE | PSE | TSC | MSR | PAE | CX8 | SEP | PGE | CMOV | PSE36 | CLFSH | MMX | FXSR | SSE | SSE2
};

/// Leaf 1 EDX bits Sinter provides itself, whatever the host: the
/// emulated xAPIC (follows `IA32_APIC_BASE.EN`), emulated MTRR and PAT MSRs.
pub const FORCE_L1_EDX: u32 = l1_edx::APIC | l1_edx::MTRR | l1_edx::PAT;

/// Host features a guest may see in leaf 7.0 EBX.
pub const ALLOW_L7_EBX: u32 = {
    use l7_ebx::*;
    FSGSBASE | BMI1 | AVX2 | SMEP | BMI2 | ERMS | RDSEED | ADX | SMAP | CLFLUSHOPT | CLWB | SHA
};

/// Host features a guest may see in leaf 7.0 ECX.
pub const ALLOW_L7_ECX: u32 = {
    use l7_ecx::*;
    UMIP | VAES | VPCLMULQDQ | RDPID
};

/// Host features a guest may see in leaf 0x8000_0001 ECX.
pub const ALLOW_E1_ECX: u32 = {
    use e1_ecx::*;
    LAHF_LM | ABM | SSE4A | MISALIGN_SSE | PREFETCHW
};

/// Host features a guest may see in leaf 0x8000_0001 EDX (the leaf-1
/// mirrors plus the AMD-only bits).
pub const ALLOW_E1_EDX: u32 = {
    use e1_edx::*;
    (ALLOW_L1_EDX & 0x0183_f3ff) | SYSCALL | NX | MMXEXT | PAGE1GB | RDTSCP | LM
};

/// Leaf 0x8000_0001 EDX bits Sinter provides itself.
pub const FORCE_E1_EDX: u32 = FORCE_L1_EDX;
