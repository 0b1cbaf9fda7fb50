//! DSDT (ACPI 6.5 §5.2.11.1): the AML namespace Sinter's guest needs.
//!
//! ```text
//! DefinitionBlock ("", "DSDT", 2, "SINTER", "SINTERVM", 1) {
//!     Name (_S5, Package (4) { S5_SLP_TYP, S5_SLP_TYP, 0, 0 })
//!     Scope (\_SB) {
//!         Device (COM1) {                      // only with a UART
//!             Name (_HID, EisaId ("PNP0501"))
//!             Name (_UID, 1)
//!             Name (_CRS, ResourceTemplate () {
//!                 IO (Decode16, port, port, 0, 8)
//!                 IRQNoFlags () { irq }
//!             })
//!         }
//!     }
//! }
//! ```

use alloc::vec::Vec;

use crate::aml::{self, resource};
use crate::machine::{GuestMachine, IsaSerial, S5_SLP_TYP};
use crate::sdt::{seal, SdtHeader};

/// `16550A-compatible COM port`.
const UART_HID: u32 = 0x0105_D041;
const _: () = assert!(UART_HID == 0x0105_D041);

/// The AML body (without the header).
pub fn aml(machine: &GuestMachine) -> Vec<u8> {
    let s5 = u64::from(S5_SLP_TYP);
    let mut out =
        aml::name(*b"_S5_", &aml::package(&[aml::integer(s5), aml::integer(s5), aml::integer(0), aml::integer(0)]));
    if let Some(uart) = machine.uart {
        out.extend_from_slice(&aml::root_scope(*b"_SB_", &uart_device(&uart)));
    }
    out
}

fn uart_device(uart: &IsaSerial) -> Vec<u8> {
    let crs =
        [resource::io_decode16(uart.port, uart.port, 0, 8), resource::irq_no_flags(uart.irq), resource::end_tag()]
            .concat();
    let body = [
        aml::name(*b"_HID", &aml::integer(u64::from(UART_HID))),
        aml::name(*b"_UID", &aml::integer(1)),
        aml::name(*b"_CRS", &aml::buffer(&crs)),
    ]
    .concat();
    aml::device(*b"COM1", &body)
}

/// A sealed DSDT for a validated `machine`.
pub fn build(machine: &GuestMachine) -> Vec<u8> {
    let body = aml(machine);
    let len = size_of::<SdtHeader>() + body.len();
    let mut out = Vec::with_capacity(len);
    // Revision 2: 64-bit AML integers.
    crate::sdt::push(&mut out, &SdtHeader::new(*b"DSDT", 2, len as u32));
    out.extend_from_slice(&body);
    seal(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hid_constant_is_the_eisa_encoding() {
        assert_eq!(aml::eisa_id(b"PNP0501"), Some(UART_HID));
    }
}
