//! Why a [`GuestMachine`](crate::GuestMachine) cannot be described, or why
//! built tables disagree with each other.

use core::fmt;

/// A machine description the tables cannot (or must not) describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No vCPUs.
    NoVcpus,
    /// More vCPUs than an 8-bit ACPI processor UID can name.
    TooManyVcpus { count: usize },
    /// Two vCPUs share an APIC ID.
    DuplicateApicId { apic_id: u8, first_vcpu: usize, second_vcpu: usize },
    /// APIC ID 0xFF is the xAPIC broadcast ID.
    BroadcastApicId { vcpu: usize },
    /// No guest RAM.
    NoMemory,
    /// More memory ranges than [`MAX_MEMORY_RANGES`](crate::validate::MAX_MEMORY_RANGES).
    TooManyMemoryRanges { count: usize },
    /// A memory range with zero length.
    EmptyMemoryRange { index: usize },
    /// A memory range whose base or length is not a multiple of 4 KiB.
    MisalignedMemoryRange { index: usize, base: u64, len: u64 },
    /// A memory range that runs past the end of the address space.
    MemoryRangeOverflows { index: usize },
    /// Two memory ranges overlap.
    OverlappingMemory { first: usize, second: usize },
    /// The NUMA nodes used by vCPUs and memory are not exactly 0..count
    /// (the SLIT indexes its matrix by node number).
    NumaNodeGap { missing: u32, highest: u32 },
    /// More NUMA nodes than the SLIT/SRAT encoding (or common sense) allows.
    TooManyNumaNodes { count: u64 },
    /// The distance matrix is not `nodes` × `nodes`.
    DistanceMatrixShape { nodes: usize, rows: usize, bad_row: Option<usize> },
    /// A diagonal SLIT entry other than 10.
    LocalDistanceNot10 { node: usize, distance: u8 },
    /// An off-diagonal SLIT entry ≤ 10, or 255 (unreachable).
    BadRemoteDistance { from: usize, to: usize, distance: u8 },
    /// A GSI the tables route to is not a pin of the I/O APIC.
    GsiNotOnIoApic { what: &'static str, gsi: u32 },
    /// An ISA IRQ ≥ 16.
    BadIsaIrq { what: &'static str, irq: u8 },
    /// An IRQ that is the timer's (0, 2) or already the SCI's.
    IrqConflict { what: &'static str, irq: u8 },
    /// Two fixed-hardware register blocks overlap, or one is port 0.
    BadPmPorts,
    /// The table address is not 16-byte aligned.
    MisalignedTableAddress { address: u64 },
    /// The table image would run past the end of the address space.
    TableAddressOverflows { address: u64 },
    /// Built tables disagree (a Sinter bug, or tampered bytes).
    Inconsistent(Inconsistency),
}

/// How built MADT/SRAT/SLIT (and the rest of the image) disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inconsistency {
    /// A table is missing from the XSDT, or a pointer leads nowhere.
    MissingTable { signature: [u8; 4] },
    /// A table's bytes do not sum to 0.
    BadChecksum { signature: [u8; 4] },
    /// A table is too short for what its length or entries claim.
    Truncated { signature: [u8; 4] },
    /// A MADT processor has no SRAT processor affinity.
    ProcessorWithoutAffinity { apic_id: u8 },
    /// An SRAT processor affinity names an APIC ID the MADT lacks.
    AffinityWithoutProcessor { apic_id: u8 },
    /// An SRAT proximity domain is outside the SLIT.
    DomainOutsideSlit { domain: u32, localities: u64 },
    /// The SLIT has localities no SRAT entry uses.
    SlitLargerThanSrat { localities: u64, domains: u64 },
    /// A SLIT entry breaks the diagonal-10 / off-diagonal-above-10 rule.
    BadSlitEntry { from: u64, to: u64, distance: u8 },
    /// Two MADT processors share an APIC ID.
    DuplicateApicId { apic_id: u8 },
}

impl From<Inconsistency> for AcpiError {
    fn from(value: Inconsistency) -> Self {
        Self::Inconsistent(value)
    }
}

fn sig(s: &[u8; 4]) -> &str {
    core::str::from_utf8(s).unwrap_or("????")
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoVcpus => write!(f, "no vCPUs"),
            Self::TooManyVcpus { count } => write!(f, "{count} vCPUs; at most 255 fit an 8-bit processor UID"),
            Self::DuplicateApicId { apic_id, first_vcpu, second_vcpu } => {
                write!(f, "vCPUs {first_vcpu} and {second_vcpu} share APIC ID {apic_id}")
            }
            Self::BroadcastApicId { vcpu } => write!(f, "vCPU {vcpu} has APIC ID 255 (the xAPIC broadcast ID)"),
            Self::NoMemory => write!(f, "no guest memory"),
            Self::TooManyMemoryRanges { count } => write!(f, "{count} memory ranges; at most 1024"),
            Self::EmptyMemoryRange { index } => write!(f, "memory range {index} is empty"),
            Self::MisalignedMemoryRange { index, base, len } => {
                write!(f, "memory range {index} ({base:#x}, {len:#x} bytes) is not 4 KiB aligned")
            }
            Self::MemoryRangeOverflows { index } => write!(f, "memory range {index} runs past 2^64"),
            Self::OverlappingMemory { first, second } => write!(f, "memory ranges {first} and {second} overlap"),
            Self::NumaNodeGap { missing, highest } => {
                write!(f, "NUMA node {missing} is unused but node {highest} is used; nodes must be 0..count")
            }
            Self::TooManyNumaNodes { count } => write!(f, "{count} NUMA nodes is too many"),
            Self::DistanceMatrixShape { nodes, rows, bad_row } => match bad_row {
                Some(row) => write!(f, "distance row {row} does not have {nodes} entries"),
                None => write!(f, "distance matrix has {rows} rows for {nodes} NUMA nodes"),
            },
            Self::LocalDistanceNot10 { node, distance } => {
                write!(f, "distance from node {node} to itself is {distance}, must be 10")
            }
            Self::BadRemoteDistance { from, to, distance } => {
                write!(f, "distance from node {from} to node {to} is {distance}, must be 11..=254")
            }
            Self::GsiNotOnIoApic { what, gsi } => write!(f, "{what}: GSI {gsi} is not a pin of the I/O APIC"),
            Self::BadIsaIrq { what, irq } => write!(f, "{what}: ISA IRQ {irq} is not below 16"),
            Self::IrqConflict { what, irq } => write!(f, "{what}: IRQ {irq} is already in use"),
            Self::BadPmPorts => write!(f, "PM1 event, PM1 control and PM timer ports overlap or are 0"),
            Self::MisalignedTableAddress { address } => write!(f, "table address {address:#x} is not 16-byte aligned"),
            Self::TableAddressOverflows { address } => write!(f, "tables at {address:#x} run past 2^64"),
            Self::Inconsistent(i) => write!(f, "built tables disagree: {i}"),
        }
    }
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTable { signature } => write!(f, "{} missing", sig(signature)),
            Self::BadChecksum { signature } => write!(f, "{} checksum wrong", sig(signature)),
            Self::Truncated { signature } => write!(f, "{} truncated", sig(signature)),
            Self::ProcessorWithoutAffinity { apic_id } => write!(f, "MADT APIC ID {apic_id} has no SRAT entry"),
            Self::AffinityWithoutProcessor { apic_id } => write!(f, "SRAT APIC ID {apic_id} is not in the MADT"),
            Self::DomainOutsideSlit { domain, localities } => {
                write!(f, "SRAT domain {domain} outside a SLIT of {localities} localities")
            }
            Self::SlitLargerThanSrat { localities, domains } => {
                write!(f, "SLIT has {localities} localities, SRAT uses {domains} domains")
            }
            Self::BadSlitEntry { from, to, distance } => write!(f, "SLIT[{from}][{to}] = {distance}"),
            Self::DuplicateApicId { apic_id } => write!(f, "MADT lists APIC ID {apic_id} twice"),
        }
    }
}
