//! The x86-64 exception vectors (Intel SDM vol. 3A §6.3.1, AMD APM vol. 2
//! §8.2): names, which ones push an error code, and how a page-fault error
//! code reads. Used by the kernel's exception report.

/// One architecturally defined exception vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionKind {
    pub vector: u8,
    /// Short mnemonic, e.g. `#PF`.
    pub mnemonic: &'static str,
    pub name: &'static str,
    /// Whether the CPU pushes an error code for this vector.
    pub has_error_code: bool,
}

const fn kind(vector: u8, mnemonic: &'static str, name: &'static str, has_error_code: bool) -> ExceptionKind {
    ExceptionKind { vector, mnemonic, name, has_error_code }
}

/// Vectors 0..=31, indexed by vector.
pub const EXCEPTIONS: [ExceptionKind; 32] = [
    kind(0, "#DE", "divide error", false),
    kind(1, "#DB", "debug", false),
    kind(2, "NMI", "non-maskable interrupt", false),
    kind(3, "#BP", "breakpoint", false),
    kind(4, "#OF", "overflow", false),
    kind(5, "#BR", "bound range exceeded", false),
    kind(6, "#UD", "invalid opcode", false),
    kind(7, "#NM", "device not available", false),
    kind(8, "#DF", "double fault", true),
    kind(9, "#CSO", "coprocessor segment overrun", false),
    kind(10, "#TS", "invalid TSS", true),
    kind(11, "#NP", "segment not present", true),
    kind(12, "#SS", "stack-segment fault", true),
    kind(13, "#GP", "general protection", true),
    kind(14, "#PF", "page fault", true),
    kind(15, "#15", "reserved", false),
    kind(16, "#MF", "x87 floating-point error", false),
    kind(17, "#AC", "alignment check", true),
    kind(18, "#MC", "machine check", false),
    kind(19, "#XM", "SIMD floating-point", false),
    kind(20, "#VE", "virtualization exception", false),
    kind(21, "#CP", "control protection", true),
    kind(22, "#22", "reserved", false),
    kind(23, "#23", "reserved", false),
    kind(24, "#24", "reserved", false),
    kind(25, "#25", "reserved", false),
    kind(26, "#26", "reserved", false),
    kind(27, "#27", "reserved", false),
    kind(28, "#HV", "hypervisor injection", false),
    kind(29, "#VC", "VMM communication", true),
    kind(30, "#SX", "security exception", true),
    kind(31, "#31", "reserved", false),
];

/// The exception for `vector`, or `None` for an interrupt vector (32..=255).
pub fn exception(vector: u64) -> Option<&'static ExceptionKind> {
    usize::try_from(vector).ok().and_then(|v| EXCEPTIONS.get(v))
}

/// Vectors that run on their own IST stack because the interrupted stack
/// cannot be trusted: double fault, NMI, machine check.
pub const IST_DOUBLE_FAULT: u8 = 8;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 18;

/// A page-fault error code, decoded (SDM vol. 3A §4.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFaultCode(pub u64);

impl PageFaultCode {
    pub fn present(self) -> bool {
        self.0 & 1 != 0
    }
    pub fn write(self) -> bool {
        self.0 & 2 != 0
    }
    pub fn user(self) -> bool {
        self.0 & 4 != 0
    }
    pub fn reserved_bit(self) -> bool {
        self.0 & 8 != 0
    }
    pub fn instruction_fetch(self) -> bool {
        self.0 & 16 != 0
    }
}

impl core::fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let access = if self.instruction_fetch() {
            "instruction fetch"
        } else if self.write() {
            "write"
        } else {
            "read"
        };
        let cause = if self.present() { "protection violation" } else { "page not present" };
        let mode = if self.user() { "user" } else { "kernel" };
        write!(f, "{access}, {cause}, {mode} mode")?;
        if self.reserved_bit() {
            f.write_str(", reserved bit set in a paging entry")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_vector() {
        for (index, kind) in EXCEPTIONS.iter().enumerate() {
            assert_eq!(usize::from(kind.vector), index);
        }
        assert_eq!(exception(14).unwrap().mnemonic, "#PF");
        assert!(exception(32).is_none());
        assert!(exception(u64::MAX).is_none());
    }

    #[test]
    fn error_code_vectors_match_the_sdm() {
        let with: Vec<u8> = EXCEPTIONS.iter().filter(|k| k.has_error_code).map(|k| k.vector).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }

    #[test]
    fn page_fault_codes_read_plainly() {
        assert_eq!(PageFaultCode(0).to_string(), "read, page not present, kernel mode");
        assert_eq!(PageFaultCode(0b11).to_string(), "write, protection violation, kernel mode");
        assert_eq!(PageFaultCode(0b10101).to_string(), "instruction fetch, protection violation, user mode");
        assert!(PageFaultCode(0b1000).to_string().ends_with("reserved bit set in a paging entry"));
    }
}
