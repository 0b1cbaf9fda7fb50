//! Whole-system tests: see `tests/*.rs`. They boot QEMU clusters through `xtask`'s harness.
