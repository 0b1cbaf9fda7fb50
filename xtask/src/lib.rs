//! Sinter's build tool as a library: the pieces `cargo xtask` is made of, and
//! the harness API the whole-system tests in `tests/` drive QEMU with.
//!
//! It runs on the developer's host only. It must never send traffic off
//! loopback, never leave a QEMU process behind, and never install anything
//! without saying so.

pub mod bench;
pub mod build;
pub mod cluster;
pub mod console;
pub mod defmt_log;
pub mod guest;
pub mod images;
pub mod paths;
pub mod prereq;
pub mod qemu;
pub mod runstate;
pub mod status;
pub mod symbolize;
