//! The test guests: a few dozen bytes of 32-bit protected-mode code
//! (flat segments, paging off, so linear = guest-physical), assembled here
//! into a read-only data section and copied into guest RAM at
//! [`CODE_GPA`].
//!
//! `hello`: prints "hello from the guest\n" on port 0x3f8 one `out` at a
//! time; runs CPUID leaf 0; writes and reads back [`PROBE_GPA`] (not mapped
//! until the hypervisor handles the nested page fault); reads the magic
//! register of the fake device at [`MMIO_GPA`] + 0x10 and writes its
//! command register at [`MMIO_GPA`]; reports what it saw with VMMCALL
//! (EAX = 1, EBX = the vendor's first four bytes, ECX = the magic, EDX =
//! what it read back from the probe page); then HLT.
//!
//! `triple_fault`: loads an IDT of limit 0 and executes `int3`: #BP cannot
//! be delivered (#GP), nor can the #GP (#DF), nor the #DF: shutdown.
//!
//! `npf_bench`: times, with `rdtsc` in the guest, [`BENCH_ITERATIONS`] of
//! each: a null VMMCALL (the cheapest exit and back), a first write to a
//! not-yet-mapped RAM page (nested page fault, the hypervisor maps a fresh
//! frame, retry), a write to an already-mapped page (the baseline without an
//! exit), and a read of the fake device's magic register (nested page
//! fault, instruction fetch, decode, emulation). After each phase it reports
//! the elapsed cycles with VMMCALL [`HYPERCALL_TIMING`] (EBX = phase,
//! EDX:ECX = cycles), then HLT.

/// Where the code is copied to and where RIP starts.
pub const CODE_GPA: u64 = 0x1000;
/// Initial ESP (the top of guest RAM).
pub const STACK_TOP_GPA: u64 = 0x8000;
/// Guest RAM mapped before the first run: `[0, RAM_BYTES)`.
pub const RAM_BYTES: u64 = 0x8000;
/// RAM the guest touches that is mapped only on its first nested page fault.
pub const PROBE_GPA: u64 = 0x40_0000;
/// The value the guest writes to [`PROBE_GPA`] and reads back.
pub const PROBE_VALUE: u32 = 0x1234_5678;
/// The fake device's page.
pub const MMIO_GPA: u64 = 0xFEB0_0000;
/// The value the guest writes to the device's command register.
pub const MMIO_COMMAND: u32 = 0x00C0_FFEE;
/// What the `hello` guest prints (the `.asciz` below spells it again).
pub const MESSAGE: &str = "hello from the guest\n";
/// VMMCALL number of the guest's report.
pub const HYPERCALL_REPORT: u64 = 1;
/// VMMCALL number of the bench guest's per-phase timing report.
pub const HYPERCALL_TIMING: u64 = 2;
/// VMMCALL number that does nothing (the bench's null exit).
pub const HYPERCALL_NULL: u64 = 3;
/// How many times the bench guest repeats each timed operation; it first
/// touches that many pages from [`PROBE_GPA`] up.
pub const BENCH_ITERATIONS: u64 = 2000;
/// The bench phases, in the order the guest reports them (EBX = index + 1).
pub const BENCH_PHASES: [&str; 4] = ["null-exit", "ram-npf", "mapped-write", "mmio-read"];

core::arch::global_asm!(
    ".pushsection .rodata.sinter_svm_guests, \"a\"",
    ".code32",
    ".global sinter_svm_guest_hello_start",
    ".global sinter_svm_guest_hello_end",
    "sinter_svm_guest_hello_start:",
    // mov esi, imm32 (the message's GPA; spelt as bytes, since the Intel
    // syntax parser takes a label difference for a memory operand).
    ".byte 0xbe",
    ".long {code} + (sinter_svm_guest_hello_msg - sinter_svm_guest_hello_start)",
    "mov dx, 0x3f8",
    "2:",
    "mov al, byte ptr [esi]",
    "test al, al",
    "jz 3f",
    "out dx, al",
    "inc esi",
    "jmp 2b",
    "3:",
    "xor eax, eax",
    "xor ecx, ecx",
    "cpuid",
    "mov edi, ebx",
    "mov dword ptr [{probe}], {probe_value}",
    "mov ebp, dword ptr [{probe}]",
    "mov ecx, dword ptr [{mmio} + 0x10]",
    "mov dword ptr [{mmio}], {command}",
    "mov eax, {report}",
    "mov ebx, edi",
    "mov edx, ebp",
    "vmmcall",
    "hlt",
    "4:",
    "jmp 4b",
    "sinter_svm_guest_hello_msg:",
    ".asciz \"hello from the guest\\n\"",
    "sinter_svm_guest_hello_end:",
    ".global sinter_svm_guest_triple_start",
    ".global sinter_svm_guest_triple_end",
    "sinter_svm_guest_triple_start:",
    // lidt [disp32] (0f 01 /3, ModRM 0x1d), the descriptor's GPA.
    ".byte 0x0f, 0x01, 0x1d",
    ".long {code} + (sinter_svm_guest_triple_idt - sinter_svm_guest_triple_start)",
    "int3",
    "hlt",
    "sinter_svm_guest_triple_idt:",
    ".word 0",
    ".long 0",
    "sinter_svm_guest_triple_end:",
    ".global sinter_svm_guest_bench_start",
    ".global sinter_svm_guest_bench_end",
    "sinter_svm_guest_bench_start:",
    // Phase 1: null exits.
    "rdtsc",
    "mov esi, eax",
    "mov edi, edx",
    "mov ecx, {iterations}",
    "5:",
    "mov eax, {null}",
    "vmmcall",
    "dec ecx",
    "jnz 5b",
    "mov ebx, 1",
    "call 9f",
    // Phase 2: first write to each of `iterations` unmapped pages.
    "rdtsc",
    "mov esi, eax",
    "mov edi, edx",
    "mov ebp, {probe}",
    "mov ecx, {iterations}",
    "6:",
    "mov dword ptr [ebp], ecx",
    "add ebp, 4096",
    "dec ecx",
    "jnz 6b",
    "mov ebx, 2",
    "call 9f",
    // Phase 3: the same pages again, now mapped.
    "rdtsc",
    "mov esi, eax",
    "mov edi, edx",
    "mov ebp, {probe}",
    "mov ecx, {iterations}",
    "7:",
    "mov dword ptr [ebp], ecx",
    "add ebp, 4096",
    "dec ecx",
    "jnz 7b",
    "mov ebx, 3",
    "call 9f",
    // Phase 4: emulated MMIO reads.
    "rdtsc",
    "mov esi, eax",
    "mov edi, edx",
    "mov ecx, {iterations}",
    "8:",
    "mov eax, dword ptr [{mmio} + 0x10]",
    "dec ecx",
    "jnz 8b",
    "mov ebx, 4",
    "call 9f",
    "hlt",
    "10:",
    "jmp 10b",
    // Report the cycles since EDI:ESI for phase EBX.
    "9:",
    "rdtsc",
    "sub eax, esi",
    "sbb edx, edi",
    "mov ecx, eax",
    "mov eax, {timing}",
    "vmmcall",
    "ret",
    "sinter_svm_guest_bench_end:",
    ".code64",
    ".popsection",
    code = const CODE_GPA,
    probe = const PROBE_GPA,
    probe_value = const PROBE_VALUE,
    mmio = const MMIO_GPA,
    command = const MMIO_COMMAND,
    report = const HYPERCALL_REPORT,
    timing = const HYPERCALL_TIMING,
    null = const HYPERCALL_NULL,
    iterations = const BENCH_ITERATIONS,
);

extern "C" {
    static sinter_svm_guest_hello_start: u8;
    static sinter_svm_guest_hello_end: u8;
    static sinter_svm_guest_triple_start: u8;
    static sinter_svm_guest_triple_end: u8;
    static sinter_svm_guest_bench_start: u8;
    static sinter_svm_guest_bench_end: u8;
}

/// Which test guest to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestGuest {
    Hello,
    TripleFault,
    NpfBench,
}

impl TestGuest {
    /// The guest's code, to be loaded at [`CODE_GPA`].
    pub fn code(self) -> &'static [u8] {
        let (start, end) = match self {
            Self::Hello => (&raw const sinter_svm_guest_hello_start, &raw const sinter_svm_guest_hello_end),
            Self::TripleFault => (&raw const sinter_svm_guest_triple_start, &raw const sinter_svm_guest_triple_end),
            Self::NpfBench => (&raw const sinter_svm_guest_bench_start, &raw const sinter_svm_guest_bench_end),
        };
        let len = (end as usize).saturating_sub(start as usize);
        // SAFETY: both symbols bound one guest's bytes inside the same
        // read-only section of the kernel image (the `global_asm!` above),
        // start before end, and the image is never written or unmapped.
        unsafe { core::slice::from_raw_parts(start, len) }
    }
}
