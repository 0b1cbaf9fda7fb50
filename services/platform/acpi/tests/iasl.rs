//! Disassembles every built table with ACPICA's `iasl` (Debian package
//! `acpica-tools`), the same code base as Linux's ACPI interpreter, and
//! checks what it prints. Skipped, with a note, when `iasl` is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{four_nodes, table, two_by_two};
use sinter_guest_acpi::*;

fn iasl() -> Option<PathBuf> {
    let out = Command::new("iasl").arg("-v").output().ok()?;
    out.status.success().then(|| PathBuf::from("iasl"))
}

/// Disassembles `bytes` (one table) in `dir`; returns the `.dsl` text
/// and iasl's own output.
fn disassemble(iasl: &Path, dir: &Path, name: &str, bytes: &[u8]) -> (String, String) {
    let dat = dir.join(format!("{name}.dat"));
    std::fs::write(&dat, bytes).unwrap();
    let out = Command::new(iasl).current_dir(dir).arg("-d").arg(&dat).output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "iasl -d {name} failed:\n{log}");
    let dsl = std::fs::read_to_string(dir.join(format!("{name}.dsl"))).unwrap();
    (dsl, log)
}

fn check(machine: &GuestMachine, tag: &str) {
    let Some(iasl) = iasl() else {
        println!("note: iasl not found (apt-get install acpica-tools); skipping the ACPICA disassembly check");
        return;
    };
    let image = build_tables(machine).unwrap();
    let dir = std::env::temp_dir().join(format!("sinter-guest-acpi-iasl-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut all = String::new();
    for (sig, name) in [(b"FACP", "facp"), (b"DSDT", "dsdt"), (b"APIC", "apic"), (b"SRAT", "srat"), (b"SLIT", "slit")] {
        let (dsl, log) = disassemble(&iasl, &dir, name, table(&image, sig));
        let lower = log.to_lowercase();
        assert!(!lower.contains("error") && !lower.contains("incorrect checksum"), "{name}:\n{log}");
        assert!(!dsl.to_lowercase().contains("incorrect checksum"), "{name}:\n{dsl}");
        all.push_str(&dsl);
        if name == "dsdt" {
            assert!(dsl.contains("Name (_S5, Package (0x04)"), "{dsl}");
            if machine.uart.is_some() {
                assert!(dsl.contains("Device (COM1)"), "{dsl}");
                assert!(dsl.contains("EisaId (\"PNP0501\")"), "{dsl}");
                assert!(dsl.contains("0x03F8,"), "{dsl}");
                assert!(dsl.contains("IRQNoFlags ()") && dsl.contains("{4}"), "{dsl}");
            }
        }
    }
    // iasl names every entry it understands; an unknown one would say so.
    assert!(!all.contains("Unknown"), "{all}");
    assert_eq!(all.matches("[Processor Local APIC]").count(), machine.vcpus.len(), "MADT processors");
    assert_eq!(all.matches("[Processor Local APIC/SAPIC Affinity]").count(), machine.vcpus.len(), "SRAT processors");
    assert_eq!(all.matches("[Interrupt Source Override]").count(), 2);
    assert_eq!(all.matches("[Local APIC NMI]").count(), 1);
    assert!(all.contains("Hardware Reduced (V5) : 0"));
    assert!(all.contains("Use APIC Physical Destination Mode (V4) : 1"));
    assert_eq!(all.matches("[Memory Affinity]").count(), machine.memory.len());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn iasl_disassembles_two_by_two() {
    check(&two_by_two(), "2x2");
}

#[test]
fn iasl_disassembles_four_nodes() {
    check(&four_nodes(), "4n");
}
