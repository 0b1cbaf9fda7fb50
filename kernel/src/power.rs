//! Ending a run: ACPI S5, QEMU's isa-debug-exit, or a halt.

use sinter_kerncore::power::{pm1_sleep_value, SCI_EN};
use x86_64::instructions::port::Port;

use crate::acpi::PowerInfo;

/// QEMU's `-device isa-debug-exit,iobase=0xf4,iosize=4`.
const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Verdicts written to isa-debug-exit; QEMU exits with `(code << 1) | 1`.
/// Neither status (33, 35) is one QEMU uses for its own errors (1).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum ExitCode {
    /// QEMU status 33.
    Success = 0x10,
    /// QEMU status 35: the node stopped on an error.
    Failure = 0x11,
}

pub fn acpi_poweroff(power: &PowerInfo) {
    let Some(pm1a) = power.pm1a_control else { return };
    let types = power.sleep_types.unwrap_or(sinter_kerncore::power::SleepTypes { pm1a: 0, pm1b: 0 });
    let mut pm1a_port = Port::<u16>::new(pm1a);
    // SAFETY: PM1a_CNT is the FADT's power-management control port; reading
    // and writing it only changes the machine's sleep state.
    let current = unsafe { pm1a_port.read() };
    if current & SCI_EN == 0 && power.smi_command != 0 && power.acpi_enable != 0 {
        let mut smi = Port::<u8>::new(power.smi_command);
        // SAFETY: writing ACPI_ENABLE to SMI_CMD is how ACPI mode is entered
        // (ACPI 6.5 §4.8.2.1); it has no memory effects.
        unsafe { smi.write(power.acpi_enable) };
        for _ in 0..1_000_000 {
            // SAFETY: as above, a read of PM1a_CNT.
            if unsafe { pm1a_port.read() } & SCI_EN != 0 {
                break;
            }
            core::hint::spin_loop();
        }
    }
    if let Some(pm1b) = power.pm1b_control {
        let mut port = Port::<u16>::new(pm1b);
        // SAFETY: PM1b_CNT from the FADT, as for PM1a.
        let value = unsafe { port.read() };
        // SAFETY: as above.
        unsafe { port.write(pm1_sleep_value(value, types.pm1b)) };
    }
    // SAFETY: as above; this write powers the machine off.
    unsafe { pm1a_port.write(pm1_sleep_value(current, types.pm1a)) };
    for _ in 0..10_000_000 {
        core::hint::spin_loop();
    }
}

/// True when CPUID says we run under QEMU (TCG or KVM), where the
/// isa-debug-exit port exists; on real hardware port 0xf4 is never written.
pub fn running_under_qemu() -> bool {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    if leaf1.ecx & (1 << 31) == 0 {
        return false;
    }
    let vendor = core::arch::x86_64::__cpuid(0x4000_0000);
    let mut name = [0u8; 12];
    name[..4].copy_from_slice(&vendor.ebx.to_le_bytes());
    name[4..8].copy_from_slice(&vendor.ecx.to_le_bytes());
    name[8..].copy_from_slice(&vendor.edx.to_le_bytes());
    &name == b"TCGTCGTCGTCG" || &name == b"KVMKVMKVM\0\0\0"
}

pub fn qemu_exit(code: ExitCode) -> ! {
    if running_under_qemu() {
        let mut port = Port::<u32>::new(ISA_DEBUG_EXIT_PORT);
        // SAFETY: under QEMU, the harness attaches isa-debug-exit here; the
        // write ends the process. Without the device the write is ignored.
        unsafe { port.write(code as u32) };
    }
    halt_forever()
}

/// Stops after a fatal error: QEMU exits with a failing status; real
/// hardware halts with the report on the console.
pub fn fail_stop() -> ! {
    qemu_exit(ExitCode::Failure)
}

pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
