//! The microkernel's hardware-free logic: what `kernel/` decides, without
//! touching hardware, so it can be tested on the host (Hubris's `kerncore`
//! beside `kern`).
//!
//! This crate must never execute a privileged instruction, touch an I/O port
//! or dereference a physical address. It takes bytes and numbers and returns
//! decisions.
#![cfg_attr(not(test), no_std)]

pub mod backtrace;
pub mod clock;
pub mod exception;
pub mod frames;
pub mod madt;
pub mod power;
pub mod supervisor;
