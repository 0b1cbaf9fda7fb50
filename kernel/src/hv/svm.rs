//! The one hardware touch of the SVM backend: turning SVM on for a core and
//! the world switch (`VmRunner`) that `sinter_svm::SvmVcpu` drives.
//!
//! Per core, once: check CPUID (SVM, nested paging, more than one ASID) and
//! `VM_CR.SVMDIS`, set `EFER.SVME`, point `VM_HSAVE_PA` at a zeroed frame,
//! and keep a second frame where the host's VMLOAD/VMSAVE state (FS, GS,
//! TR, LDTR, KernelGsBase, STAR/LSTAR/CSTAR/SFMASK, SYSENTER_*) waits
//! while a guest runs. Both frames stay for the life of the core.
//!
//! The world switch (`sinter_svm_world_switch` below) is, in order: CLGI,
//! VMSAVE host, VMLOAD guest, load the guest GPRs VMRUN does not hold,
//! VMRUN, store them back, VMSAVE guest, VMLOAD host, STGI. Between CLGI and
//! STGI no interrupt or NMI reaches the host; a physical interrupt that
//! arrives in guest mode is an INTR exit and is taken right after STGI.

use core::sync::atomic::{AtomicU64, Ordering};

use sinter_svm::vcpu::GuestGprs;
use sinter_svm::{vcpu::VmRunner, Vmcb};
use x86_64::registers::model_specific::Msr;

use crate::memory::{self, phys_to_virt};

const MSR_EFER: u32 = 0xC000_0080;
const MSR_VM_CR: u32 = 0xC001_0114;
const MSR_VM_HSAVE_PA: u32 = 0xC001_0117;
const EFER_SVME: u64 = 1 << 12;
const VM_CR_SVMDIS: u64 = 1 << 4;

/// Why SVM cannot be used on this core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvmUnavailable {
    /// CPUID 0x8000_0001 ECX[2] is clear.
    NoSvm,
    /// CPUID 0x8000_000A EDX[0] is clear.
    NoNestedPaging,
    /// CPUID 0x8000_000A EBX: fewer than two ASIDs.
    NoGuestAsid,
    /// `VM_CR.SVMDIS` is set (disabled by firmware).
    DisabledByFirmware,
    /// No frame for the host-save areas.
    OutOfFrames,
    /// More cores than this module keeps state for.
    CoreIndex,
}

/// What CPUID says about SVM on this core.
#[derive(Clone, Copy, Debug)]
pub struct SvmInfo {
    /// SVM revision (CPUID 0x8000_000A EAX[7:0]).
    pub revision: u32,
    /// Number of ASIDs (CPUID 0x8000_000A EBX).
    pub asids: u32,
    /// Feature bits (CPUID 0x8000_000A EDX).
    pub features: u32,
}

impl SvmInfo {
    /// nrip-save (EDX[3]).
    pub fn nrip_save(&self) -> bool {
        self.features & (1 << 3) != 0
    }
    /// Decode assists (EDX[7]).
    pub fn decode_assists(&self) -> bool {
        self.features & (1 << 7) != 0
    }
    /// VMCB clean bits (EDX[5]).
    pub fn vmcb_clean(&self) -> bool {
        self.features & (1 << 5) != 0
    }
    /// Flush by ASID (EDX[6]).
    pub fn flush_by_asid(&self) -> bool {
        self.features & (1 << 6) != 0
    }
}

/// Reads the SVM CPUID leaves and checks what Sinter needs.
pub fn probe() -> Result<SvmInfo, SvmUnavailable> {
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    if max_ext < 0x8000_000A || core::arch::x86_64::__cpuid(0x8000_0001).ecx & (1 << 2) == 0 {
        return Err(SvmUnavailable::NoSvm);
    }
    let leaf = core::arch::x86_64::__cpuid(0x8000_000A);
    if leaf.edx & 1 == 0 {
        return Err(SvmUnavailable::NoNestedPaging);
    }
    if leaf.ebx < 2 {
        return Err(SvmUnavailable::NoGuestAsid);
    }
    Ok(SvmInfo { revision: leaf.eax & 0xff, asids: leaf.ebx, features: leaf.edx })
}

const MAX_CORES: usize = 64;

/// Per core: the host VMSAVE area's physical address (0 until enabled).
static HOST_SAVE: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];

/// Turns SVM on for the calling core (idempotent) and returns the
/// physical address of its host VMSAVE area.
pub fn enable_on_this_core() -> Result<u64, SvmUnavailable> {
    let core = crate::exec::core_index();
    let slot = HOST_SAVE.get(core).ok_or(SvmUnavailable::CoreIndex)?;
    let done = slot.load(Ordering::Acquire);
    if done != 0 {
        return Ok(done);
    }
    probe()?;
    let vm_cr = Msr::new(MSR_VM_CR);
    // SAFETY: VM_CR exists on every CPU that reports SVM (checked above);
    // reading it has no side effects.
    let vm_cr_value = unsafe { vm_cr.read() };
    if vm_cr_value & VM_CR_SVMDIS != 0 {
        return Err(SvmUnavailable::DisabledByFirmware);
    }
    let hsave = memory::alloc_frame().map_err(|_| SvmUnavailable::OutOfFrames)?;
    let host_save = memory::alloc_frame().map_err(|_| SvmUnavailable::OutOfFrames)?;
    let mut efer = Msr::new(MSR_EFER);
    // SAFETY: reading EFER has no side effects.
    let efer_value = unsafe { efer.read() };
    // SAFETY: setting SVME only makes the SVM instructions legal; it changes
    // no paging or mode bit (CPUID and VM_CR.SVMDIS checked above).
    unsafe { efer.write(efer_value | EFER_SVME) };
    let mut hsave_msr = Msr::new(MSR_VM_HSAVE_PA);
    // SAFETY: `hsave` is a zeroed 4 KiB frame owned by this core for ever;
    // VMRUN writes the host state there and nothing else uses it.
    unsafe { hsave_msr.write(hsave) };
    slot.store(host_save, Ordering::Release);
    Ok(host_save)
}

core::arch::global_asm!(
    ".pushsection .text.sinter_svm_world_switch, \"ax\"",
    ".global sinter_svm_world_switch",
    // rdi = guest VMCB (physical), rsi = &mut [u64; 16] guest GPRs,
    // rdx = host VMSAVE area (physical), rcx = guest VMCB (virtual, unused:
    // passed so the compiler knows the VMCB may change).
    "sinter_svm_world_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "push rsi", // [rsp + 16]: the GPR array
    "push rdx", // [rsp + 8]: host VMSAVE area
    "push rdi", // [rsp]: guest VMCB
    "clgi",
    "mov rax, rdx",
    "vmsave rax",
    "mov rax, rdi",
    "vmload rax",
    "mov rcx, [rsi + 1 * 8]",
    "mov rdx, [rsi + 2 * 8]",
    "mov rbx, [rsi + 3 * 8]",
    "mov rbp, [rsi + 5 * 8]",
    "mov rdi, [rsi + 7 * 8]",
    "mov r8, [rsi + 8 * 8]",
    "mov r9, [rsi + 9 * 8]",
    "mov r10, [rsi + 10 * 8]",
    "mov r11, [rsi + 11 * 8]",
    "mov r12, [rsi + 12 * 8]",
    "mov r13, [rsi + 13 * 8]",
    "mov r14, [rsi + 14 * 8]",
    "mov r15, [rsi + 15 * 8]",
    "mov rsi, [rsi + 6 * 8]",
    "mov rax, [rsp]",
    "vmrun rax",
    // #VMEXIT: RSP and RAX are the host's again, GIF = 0; the other GPRs
    // hold the guest's values.
    "push rsi",
    "mov rsi, [rsp + 24]",
    "mov [rsi + 1 * 8], rcx",
    "mov [rsi + 2 * 8], rdx",
    "mov [rsi + 3 * 8], rbx",
    "mov [rsi + 5 * 8], rbp",
    "mov [rsi + 7 * 8], rdi",
    "mov [rsi + 8 * 8], r8",
    "mov [rsi + 9 * 8], r9",
    "mov [rsi + 10 * 8], r10",
    "mov [rsi + 11 * 8], r11",
    "mov [rsi + 12 * 8], r12",
    "mov [rsi + 13 * 8], r13",
    "mov [rsi + 14 * 8], r14",
    "mov [rsi + 15 * 8], r15",
    "pop rax",
    "mov [rsi + 6 * 8], rax",
    "mov rax, [rsp]",
    "vmsave rax",
    "mov rax, [rsp + 8]",
    "vmload rax",
    "stgi",
    "add rsp, 24",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".popsection",
);

extern "sysv64" {
    fn sinter_svm_world_switch(vmcb_phys: u64, gprs: *mut [u64; 16], host_save_phys: u64, vmcb: *mut Vmcb);
}

/// The bare-metal [`VmRunner`] for one VMCB on one core.
pub struct BareMetalRunner {
    vmcb_phys: u64,
    host_save_phys: u64,
    core: usize,
    /// VMRUNs done (for reports).
    pub runs: u64,
}

impl BareMetalRunner {
    /// A runner for the VMCB in frame `vmcb_phys` (reached through the
    /// direct map), on the calling core, which must have SVM enabled.
    pub fn new(vmcb_phys: u64) -> Result<Self, SvmUnavailable> {
        let host_save_phys = enable_on_this_core()?;
        Ok(Self { vmcb_phys, host_save_phys, core: crate::exec::core_index(), runs: 0 })
    }
}

impl VmRunner for BareMetalRunner {
    fn vmrun(&mut self, vmcb: &mut Vmcb, gprs: &mut GuestGprs) {
        let virt = vmcb as *mut Vmcb;
        assert_eq!(virt as u64, phys_to_virt(self.vmcb_phys), "the VMCB is not the runner's frame");
        assert_eq!(crate::exec::core_index(), self.core, "a vCPU moved to another core");
        self.runs += 1;
        // SAFETY: `vmcb_phys` is the 4 KiB frame behind `vmcb` (checked
        // above), configured by `Vmcb::configure` and exclusively borrowed
        // for this call; `host_save_phys` is this core's host VMSAVE frame
        // and SVM is enabled here (`new`, same core, checked above). The
        // routine saves and restores every callee-saved register, returns
        // on the same stack, and writes only the VMCB, the GPR array, the
        // host-save frames and the state VMLOAD/VMSAVE move, which it
        // restores to the host's before STGI.
        unsafe { sinter_svm_world_switch(self.vmcb_phys, &mut gprs.0, self.host_save_phys, virt) };
    }
}
