//! The description of the virtual machine the tables are built from, and
//! the fixed facts about Sinter's emulated chipset that the platform
//! service's device models must match.

use alloc::vec::Vec;

/// Where the guest's local APICs live (xAPIC default; the MADT header).
pub const LOCAL_APIC_ADDRESS: u32 = 0xFEE0_0000;

/// SLIT distance of a node to itself (ACPI requires 10).
pub const LOCAL_DISTANCE: u8 = 10;
/// SLIT distance between two different nodes under [`NumaDistances::LocalRemote`].
pub const DEFAULT_REMOTE_DISTANCE: u8 = 20;

/// The `SLP_TYP` value for S5 (soft off) in the DSDT's `\_S5_` package,
/// for both PM1a and PM1b. The emulated PM1a control register powers the
/// guest off when it sees `SLP_EN` (bit 13) with `SLP_TYP` (bits 12:10)
/// equal to this value. 5 is chosen over 0 so that a stray write of zeros
/// with `SLP_EN` set can never switch the machine off.
pub const S5_SLP_TYP: u8 = 5;

/// One vCPU as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuPlacement {
    /// xAPIC ID (0..=254; 255 is the broadcast ID). The ACPI processor
    /// UID is the vCPU's index in [`GuestMachine::vcpus`].
    pub apic_id: u8,
    /// NUMA node (= ACPI proximity domain = Sinter node index).
    pub numa_node: u32,
}

/// One range of guest RAM and the node whose memory backs it (its home).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestMemoryRange {
    /// Guest-physical base, 4 KiB aligned.
    pub base: u64,
    /// Length in bytes, a non-zero multiple of 4 KiB.
    pub len: u64,
    pub numa_node: u32,
}

/// Distances between NUMA nodes for the SLIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumaDistances {
    /// [`LOCAL_DISTANCE`] on the diagonal, `remote` everywhere else.
    LocalRemote { remote: u8 },
    /// A full matrix, `rows[from][to]`, one row per node in node order.
    /// Need not be symmetric.
    Matrix(Vec<Vec<u8>>),
}

impl Default for NumaDistances {
    fn default() -> Self {
        Self::LocalRemote { remote: DEFAULT_REMOTE_DISTANCE }
    }
}

/// The guest's one I/O APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    /// First GSI of its pins.
    pub gsi_base: u32,
    /// Number of redirection entries (24 for an 82093AA-style IOAPIC).
    pub pins: u32,
}

impl Default for IoApic {
    fn default() -> Self {
        Self { id: 0, address: 0xFEC0_0000, gsi_base: 0, pins: 24 }
    }
}

/// A 16550 UART on ISA ports, described in the DSDT as `PNP0501`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaSerial {
    /// First of its 8 I/O ports.
    pub port: u16,
    /// ISA IRQ (identity-mapped to the same GSI, edge, active high).
    pub irq: u8,
}

impl IsaSerial {
    /// COM1 (0x3F8, IRQ 4).
    pub const COM1: Self = Self { port: 0x3F8, irq: 4 };
}

/// The ACPI fixed-hardware register blocks of the emulated chipset (I/O
/// ports) and the SCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmRegisters {
    /// PM1a event block: PM1_STS (2 bytes) then PM1_EN (2 bytes).
    pub pm1a_event: u16,
    /// PM1a control block: PM1_CNT (2 bytes). `SCI_EN` (bit 0) always
    /// reads 1: there is no SMI and the chipset is in ACPI mode from reset.
    pub pm1a_control: u16,
    /// PM timer: a 32-bit counter at 3.579545 MHz (4 bytes).
    pub pm_timer: u16,
    /// ISA IRQ of the SCI, identity-mapped to the same GSI, level
    /// triggered, active high (a MADT interrupt source override says so).
    pub sci_irq: u8,
}

impl PmRegisters {
    /// Sinter's chipset: the block QEMU's PIIX4/ICH9 models put at
    /// PMBASE 0x600, so a guest that already runs under QEMU sees familiar
    /// ports, and the SCI on IRQ 9.
    pub const SINTER: Self = Self { pm1a_event: 0x600, pm1a_control: 0x604, pm_timer: 0x608, sci_irq: 9 };

    /// Length of the PM1 event block in bytes.
    pub const PM1_EVENT_LEN: u8 = 4;
    /// Length of the PM1 control block in bytes.
    pub const PM1_CONTROL_LEN: u8 = 2;
    /// Length of the PM timer block in bytes.
    pub const PM_TIMER_LEN: u8 = 4;
}

impl Default for PmRegisters {
    fn default() -> Self {
        Self::SINTER
    }
}

/// Everything the tables describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestMachine {
    /// vCPUs in processor-UID order; the first is the boot processor.
    pub vcpus: Vec<VcpuPlacement>,
    /// Guest RAM ranges (any order, no overlaps).
    pub memory: Vec<GuestMemoryRange>,
    pub numa_distances: NumaDistances,
    pub ioapic: IoApic,
    /// The console UART, if the guest gets one.
    pub uart: Option<IsaSerial>,
    pub pm: PmRegisters,
    /// Whether a pair of 8259 PICs is emulated (MADT `PCAT_COMPAT`).
    pub legacy_pic: bool,
    /// Guest-physical address where the table image (RSDP first) is
    /// loaded; 16-byte aligned. The guest finds the RSDP there through
    /// `boot_params.acpi_rsdp_addr`.
    pub table_address: u64,
}
