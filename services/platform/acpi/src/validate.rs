//! Checks a [`GuestMachine`] before any byte is written, so that MADT,
//! SRAT and SLIT agree by construction: unique APIC IDs, NUMA nodes
//! exactly 0..count, a count × count distance matrix with 10 on the
//! diagonal and 11..=254 elsewhere, 4 KiB aligned non-overlapping RAM,
//! GSIs on the I/O APIC, distinct PM ports.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::AcpiError;
use crate::machine::{GuestMachine, NumaDistances, PmRegisters, LOCAL_DISTANCE};

const PAGE: u64 = 4096;
/// A sanity bound on NUMA nodes (one per Sinter node); the SLIT matrix
/// grows with its square.
pub const MAX_NUMA_NODES: u32 = 64;

/// A bound on RAM ranges (40 SRAT bytes each), which keeps the whole
/// image far below 1 MiB.
pub const MAX_MEMORY_RANGES: usize = 1024;

/// A machine that passed [`validate`], with the SLIT matrix resolved.
#[derive(Clone, Debug)]
pub struct Validated {
    /// Number of NUMA nodes (= SLIT localities); nodes are 0..nodes.
    pub nodes: u32,
    /// Row-major `nodes × nodes` distances.
    pub distances: Vec<u8>,
}

/// Checks `machine`; see the module comment for the rules.
pub fn validate(machine: &GuestMachine) -> Result<Validated, AcpiError> {
    check_vcpus(machine)?;
    check_memory(machine)?;
    let nodes = check_nodes(machine)?;
    let distances = resolve_distances(&machine.numa_distances, nodes)?;
    check_interrupts(machine)?;
    check_pm(&machine.pm)?;
    check_table_address(machine.table_address)?;
    Ok(Validated { nodes, distances })
}

fn check_vcpus(machine: &GuestMachine) -> Result<(), AcpiError> {
    let vcpus = &machine.vcpus;
    if vcpus.is_empty() {
        return Err(AcpiError::NoVcpus);
    }
    if vcpus.len() > 255 {
        return Err(AcpiError::TooManyVcpus { count: vcpus.len() });
    }
    let mut seen: [Option<usize>; 256] = [None; 256];
    for (index, vcpu) in vcpus.iter().enumerate() {
        if vcpu.apic_id == 0xFF {
            return Err(AcpiError::BroadcastApicId { vcpu: index });
        }
        let slot = &mut seen[usize::from(vcpu.apic_id)];
        if let Some(first_vcpu) = *slot {
            return Err(AcpiError::DuplicateApicId { apic_id: vcpu.apic_id, first_vcpu, second_vcpu: index });
        }
        *slot = Some(index);
    }
    Ok(())
}

fn check_memory(machine: &GuestMachine) -> Result<(), AcpiError> {
    let memory = &machine.memory;
    if memory.is_empty() {
        return Err(AcpiError::NoMemory);
    }
    if memory.len() > MAX_MEMORY_RANGES {
        return Err(AcpiError::TooManyMemoryRanges { count: memory.len() });
    }
    for (index, range) in memory.iter().enumerate() {
        if range.len == 0 {
            return Err(AcpiError::EmptyMemoryRange { index });
        }
        if !range.base.is_multiple_of(PAGE) || !range.len.is_multiple_of(PAGE) {
            return Err(AcpiError::MisalignedMemoryRange { index, base: range.base, len: range.len });
        }
        if range.base.checked_add(range.len).is_none() {
            return Err(AcpiError::MemoryRangeOverflows { index });
        }
    }
    // Sort indices by base; neighbours must not overlap.
    let mut order: Vec<usize> = (0..memory.len()).collect();
    order.sort_by_key(|&i| memory[i].base);
    for pair in order.windows(2) {
        let (a, b) = (&memory[pair[0]], &memory[pair[1]]);
        // `a.base + a.len` cannot overflow: checked above.
        if a.base + a.len > b.base {
            let (first, second) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
            return Err(AcpiError::OverlappingMemory { first, second });
        }
    }
    Ok(())
}

/// The node count, after checking the used nodes are exactly 0..count.
fn check_nodes(machine: &GuestMachine) -> Result<u32, AcpiError> {
    let used = machine.vcpus.iter().map(|v| v.numa_node).chain(machine.memory.iter().map(|m| m.numa_node));
    // Both lists are non-empty here.
    let highest = used.clone().max().unwrap_or(0);
    if highest >= MAX_NUMA_NODES {
        return Err(AcpiError::TooManyNumaNodes { count: u64::from(highest) + 1 });
    }
    let mut present = vec![false; highest as usize + 1];
    for node in used {
        present[node as usize] = true;
    }
    if let Some(missing) = present.iter().position(|p| !p) {
        return Err(AcpiError::NumaNodeGap { missing: missing as u32, highest });
    }
    Ok(highest + 1)
}

fn resolve_distances(distances: &NumaDistances, nodes: u32) -> Result<Vec<u8>, AcpiError> {
    let n = nodes as usize;
    let matrix: Vec<u8> = match distances {
        NumaDistances::LocalRemote { remote } => {
            (0..n * n).map(|i| if i / n == i % n { LOCAL_DISTANCE } else { *remote }).collect()
        }
        NumaDistances::Matrix(rows) => {
            if rows.len() != n {
                return Err(AcpiError::DistanceMatrixShape { nodes: n, rows: rows.len(), bad_row: None });
            }
            if let Some(bad) = rows.iter().position(|r| r.len() != n) {
                return Err(AcpiError::DistanceMatrixShape { nodes: n, rows: rows.len(), bad_row: Some(bad) });
            }
            rows.iter().flatten().copied().collect()
        }
    };
    check_distance_matrix(&matrix, n)?;
    Ok(matrix)
}

/// The SLIT rule Linux enforces (`slit_valid`): 10 on the diagonal,
/// more than 10 elsewhere; 255 means unreachable, which a Sinter node
/// never is.
pub fn check_distance_matrix(matrix: &[u8], n: usize) -> Result<(), AcpiError> {
    for from in 0..n {
        for to in 0..n {
            let distance = matrix[from * n + to];
            if from == to && distance != LOCAL_DISTANCE {
                return Err(AcpiError::LocalDistanceNot10 { node: from, distance });
            }
            if from != to && (distance <= LOCAL_DISTANCE || distance == 0xFF) {
                return Err(AcpiError::BadRemoteDistance { from, to, distance });
            }
        }
    }
    Ok(())
}

fn check_interrupts(machine: &GuestMachine) -> Result<(), AcpiError> {
    let ioapic = &machine.ioapic;
    let on_ioapic = |what: &'static str, gsi: u32| {
        let end = u64::from(ioapic.gsi_base) + u64::from(ioapic.pins);
        if gsi >= ioapic.gsi_base && u64::from(gsi) < end {
            Ok(())
        } else {
            Err(AcpiError::GsiNotOnIoApic { what, gsi })
        }
    };
    let isa = |what: &'static str, irq: u8| if irq < 16 { Ok(()) } else { Err(AcpiError::BadIsaIrq { what, irq }) };
    // ISA IRQ 0 (the PIT) arrives on GSI 2.
    on_ioapic("timer (ISA IRQ 0)", 2)?;
    isa("SCI", machine.pm.sci_irq)?;
    on_ioapic("SCI", u32::from(machine.pm.sci_irq))?;
    // IRQ 0 already has an override (→ GSI 2), GSI 2 is taken by it, and
    // the SCI is level triggered, so none of them can be shared.
    let sci = machine.pm.sci_irq;
    if sci == 0 || sci == 2 {
        return Err(AcpiError::IrqConflict { what: "SCI", irq: sci });
    }
    if let Some(uart) = machine.uart {
        isa("UART", uart.irq)?;
        on_ioapic("UART", u32::from(uart.irq))?;
        if uart.irq == 0 || uart.irq == 2 || uart.irq == sci {
            return Err(AcpiError::IrqConflict { what: "UART", irq: uart.irq });
        }
    }
    Ok(())
}

fn check_pm(pm: &PmRegisters) -> Result<(), AcpiError> {
    let blocks = [
        (pm.pm1a_event, PmRegisters::PM1_EVENT_LEN),
        (pm.pm1a_control, PmRegisters::PM1_CONTROL_LEN),
        (pm.pm_timer, PmRegisters::PM_TIMER_LEN),
    ];
    for (i, &(port, len)) in blocks.iter().enumerate() {
        if port == 0 || u32::from(port) + u32::from(len) > 0x1_0000 {
            return Err(AcpiError::BadPmPorts);
        }
        for &(other, other_len) in &blocks[i + 1..] {
            let (a, b) = (u32::from(port), u32::from(other));
            if a < b + u32::from(other_len) && b < a + u32::from(len) {
                return Err(AcpiError::BadPmPorts);
            }
        }
    }
    Ok(())
}

fn check_table_address(address: u64) -> Result<(), AcpiError> {
    if !address.is_multiple_of(16) {
        return Err(AcpiError::MisalignedTableAddress { address });
    }
    // The image is a few KiB; 1 MiB of headroom is plenty.
    if address.checked_add(1 << 20).is_none() {
        return Err(AcpiError::TableAddressOverflows { address });
    }
    Ok(())
}
