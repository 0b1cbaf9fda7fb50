//! Emulated devices for Sinter's guest: the chipset an unmodified Linux
//! (x86-64, q35-like, no PCI devices) finds on the machine the ACPI tables
//! of `sinter-guest-acpi` describe.
//!
//! - [`LocalApic`]: the xAPIC page, one per vCPU, with its timer
//!   (one-shot, periodic, TSC-deadline), and IPIs decoded into
//!   [`IpiRequest`]s; [`resolve_destinations`] maps a message to vCPUs.
//! - [`IoApic`]: 24 pins, level/edge, Remote IRR, EOI register.
//! - [`Uart`]: a 16550A (COM1) with a host-filled input queue and a
//!   [`SerialSink`] for output.
//! - [`PmBlock`]: ACPI PM1a event/control blocks and the PM timer, S5
//!   power-off; [`ResetControl`] (port 0xCF9) and [`I8042`] (reset only).
//! - [`Pic`] (8259 pair, probed but routing nothing), [`Pit`] (8254, with
//!   channel 2 gated by port 0x61), [`Rtc`] (CMOS
//!   clock from a caller-given wall-clock time).
//! - [`PlatformBus`]: owns the shared devices, dispatches port and MMIO
//!   accesses, and turns device interrupt lines into I/O APIC messages.
//!
//! Time is always an argument: `now` is nanoseconds from one monotonic
//! clock (the same for every call on one device), and the TSC-deadline
//! timer also takes the vCPU's TSC. Devices tell the caller when they next
//! need a call (`next_deadline`) and catch up in `tick`.
//!
//! How the vCPU exit loop uses it (see `tests/linux_flow.rs`):
//! - IOIO exit → [`PlatformBus::port_read`] / [`PlatformBus::port_write`];
//!   NPF in the I/O APIC page → [`PlatformBus::mmio_read`] /
//!   [`PlatformBus::mmio_write`]; in the vCPU's APIC page
//!   ([`LocalApic::page_offset`]) → [`LocalApic::read`] /
//!   [`LocalApic::write`]. An [`IoOutcome`] carries interrupt messages
//!   (route each with [`resolve_destinations`] over every vCPU's
//!   [`LocalApic::target`], then [`LocalApic::receive`] on each
//!   destination, possibly on another node) and [`PowerEvent`]s.
//! - [`LapicEffect::Ipi`] → route likewise with the sender as `source`;
//!   [`LapicEffect::Eoi`] with `level_triggered` → [`PlatformBus::eoi`].
//! - Before VMRUN: [`LocalApic::tick`], then [`LocalApic::pending_interrupt`];
//!   on injecting vector `v`, [`LocalApic::ack`]`(v)`.
//! - Arm a host timer for the earliest of [`LocalApic::next_deadline`] (per
//!   vCPU; [`Deadline::to_nanos`] converts a TSC deadline) and
//!   [`PlatformBus::next_deadline`]; on expiry call the `tick`s.
//! - Host console input → [`PlatformBus::push_uart_input`].
//!
//! This crate must never: touch hardware or read a clock, use `unsafe`,
//! panic or loop unboundedly on guest input (every register access of
//! any size and offset is handled; odd ones are counted), or deliver an
//! interrupt itself (it returns messages; the caller routes them).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bus;
pub mod i8042;
pub mod ioapic;
pub mod lapic;
pub mod msg;
pub mod pic;
pub mod pit;
pub mod pm;
pub mod rtc;
pub mod uart;

#[cfg(test)]
mod proptests;

pub use bus::{BusStats, IoOutcome, PlatformBus};
pub use i8042::I8042;
pub use ioapic::{IoApic, IoApicStats, IOAPIC_PINS};
pub use lapic::{
    Deadline, LapicConfig, LapicEffect, LapicStats, LocalApic, Lvt, Received, TimerMode, MSR_APIC_BASE,
    MSR_TSC_DEADLINE,
};
pub use msg::{
    destination_matches, resolve_destinations, ApicMessage, ApicTarget, Deliveries, DeliveryMode, DestinationMode,
    IpiRequest, Shorthand, TriggerMode,
};
pub use pic::{Pic, Pic8259};
pub use pit::Pit;
pub use pm::{PmBlock, PowerEvent, ResetControl};
pub use rtc::{DateTime, Rtc};
pub use uart::{RxFull, SerialSink, Uart};
