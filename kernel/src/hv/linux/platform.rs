//! Glue between the vcpu services and `sinter-guest-devices`: the serial
//! sink that forwards the guest's COM1 output to the node console line by
//! line, and interrupt routing between vCPUs (each vCPU owns its
//! `LocalApic`; messages for it wait in its inbox until its service
//! drains them before the next VMRUN).

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use sinter_guest_devices::{resolve_destinations, ApicMessage, ApicTarget, Deliveries, SerialSink};
use spin::Mutex;

use super::vm::{Vm, MAX_VCPUS};
use crate::kprintln;

/// COM1 output to the node console, one guest line per console line.
#[derive(Default)]
pub struct ConsoleSink {
    line: String,
}

/// A guest line longer than this is printed in pieces.
const MAX_LINE: usize = 512;

impl SerialSink for ConsoleSink {
    fn write_byte(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                kprintln!("{}", self.line);
                self.line.clear();
            }
            b'\r' => {}
            0x20..=0x7e | b'\t' => {
                self.line.push(char::from(byte));
                if self.line.len() >= MAX_LINE {
                    kprintln!("{}", self.line);
                    self.line.clear();
                }
            }
            // Control and non-ASCII bytes (escape sequences) are dropped.
            _ => {}
        }
    }
}

/// Interrupt messages waiting for one vCPU.
pub struct Inbox {
    queue: Mutex<Vec<ApicMessage>>,
    pending: AtomicBool,
}

impl Inbox {
    pub const fn new() -> Self {
        Self { queue: Mutex::new(Vec::new()), pending: AtomicBool::new(false) }
    }

    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Takes every waiting message.
    pub fn drain(&self) -> Vec<ApicMessage> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        core::mem::take(&mut *self.queue.lock())
    }

    fn push(&self, msg: ApicMessage) {
        self.queue.lock().push(msg);
        self.pending.store(true, Ordering::Release);
    }
}

/// Where each vCPU's APIC answers (published by its owner after every
/// APIC register write).
pub struct Targets(pub Mutex<[ApicTarget; MAX_VCPUS]>);

/// Sends this VM's wake-up IPI to the core running vCPU `target`.
fn kick(vm: &Vm, target: usize, me: Option<usize>) {
    if Some(target) != me {
        if let Some(&core) = vm.cores.get(target) {
            crate::arch::apic::send_ipi(core as u32, crate::arch::apic::Ipi::Fixed(crate::arch::IPI_VECTOR));
        }
    }
}

/// Routes one message (an IPI from vCPU `source`, or a device interrupt
/// with `source` = None) to the inboxes of the vCPUs it names.
pub fn route(vm: &Vm, msg: ApicMessage, source: Option<usize>) {
    let targets = *vm.targets.0.lock();
    for i in resolve_destinations(&msg, source, &targets[..vm.vcpus]) {
        vm.inboxes[i].push(msg);
        kick(vm, i, source);
    }
}

pub fn route_all(vm: &Vm, out: &Deliveries, source: Option<usize>) {
    for msg in out.iter() {
        route(vm, *msg, source);
    }
    if out.dropped > 0 {
        kprintln!("vm: {} interrupt messages dropped (delivery list full)", out.dropped);
    }
}
