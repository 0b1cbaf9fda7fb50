//! Per-core data: one [`Core`] record per processor in a static table, found
//! from the running core through its GS base (`current_core`).

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use x86_64::registers::model_specific::GsBase;
use x86_64::VirtAddr;

use crate::memory::Stack;

/// Most cores one node runs (the config allows 256 per node).
pub const MAX_CORES: usize = 256;

/// Where a core is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CoreState {
    /// Slot not in use.
    Absent = 0,
    /// INIT-SIPI-SIPI sent, not yet in Rust.
    Starting = 1,
    /// Tables loaded, APIC and timer running.
    Online = 2,
    /// Gave up waiting for it.
    Failed = 3,
}

/// The IST slots (1-based in the IDT gate, 0-based in the TSS).
pub const IST_DOUBLE_FAULT: usize = 0;
pub const IST_NMI: usize = 1;
pub const IST_MACHINE_CHECK: usize = 2;
pub const IST_COUNT: usize = 3;

/// One processor's record. Written by the BSP before the core starts and by
/// the core itself; everything is atomic so any core may read it.
#[repr(C, align(64))]
pub struct Core {
    apic_id: AtomicU32,
    state: AtomicU8,
    /// LAPIC timer interrupts taken.
    pub timer_ticks: AtomicU64,
    /// Test IPIs (`IPI_VECTOR`) received.
    pub ipis_received: AtomicU64,
    pub spurious: AtomicU64,
    /// `[low, high)` of the core's kernel stack and of its IST stacks.
    stack: [AtomicU64; 2],
    ist: [[AtomicU64; 2]; IST_COUNT],
}

impl Core {
    const fn new() -> Self {
        Self {
            apic_id: AtomicU32::new(0),
            state: AtomicU8::new(CoreState::Absent as u8),
            timer_ticks: AtomicU64::new(0),
            ipis_received: AtomicU64::new(0),
            spurious: AtomicU64::new(0),
            stack: [AtomicU64::new(0), AtomicU64::new(0)],
            ist: [const { [AtomicU64::new(0), AtomicU64::new(0)] }; IST_COUNT],
        }
    }

    /// Position in the core table: 0 is the boot processor.
    pub fn index(&'static self) -> usize {
        (self as *const Core as usize - CORES.as_ptr() as usize) / core::mem::size_of::<Core>()
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }

    pub fn state(&self) -> CoreState {
        match self.state.load(Ordering::Acquire) {
            1 => CoreState::Starting,
            2 => CoreState::Online,
            3 => CoreState::Failed,
            _ => CoreState::Absent,
        }
    }

    pub(super) fn set_state(&self, state: CoreState) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub(super) fn set_stack(&self, stack: Stack) {
        self.stack[0].store(stack.bottom, Ordering::Relaxed);
        self.stack[1].store(stack.top, Ordering::Relaxed);
    }

    pub(super) fn set_ist(&self, slot: usize, stack: Stack) {
        self.ist[slot][0].store(stack.bottom, Ordering::Relaxed);
        self.ist[slot][1].store(stack.top, Ordering::Relaxed);
    }

    pub fn ist_top(&self, slot: usize) -> u64 {
        self.ist[slot][1].load(Ordering::Relaxed)
    }

    /// The known stack (`[low, high)`) that holds `address`, if any.
    pub fn stack_holding(&self, address: u64) -> Option<(u64, u64)> {
        let pair = |p: &[AtomicU64; 2]| (p[0].load(Ordering::Relaxed), p[1].load(Ordering::Relaxed));
        core::iter::once(pair(&self.stack))
            .chain(self.ist.iter().map(pair))
            .find(|&(low, high)| low < high && (low..high).contains(&address))
    }
}

static CORES: [Core; MAX_CORES] = [const { Core::new() }; MAX_CORES];
static CORES_CLAIMED: AtomicUsize = AtomicUsize::new(0);

/// Takes the next free slot for the core with `apic_id`.
pub(super) fn claim(apic_id: u32) -> Option<&'static Core> {
    let index = CORES_CLAIMED.fetch_add(1, Ordering::Relaxed);
    let Some(core) = CORES.get(index) else {
        CORES_CLAIMED.fetch_sub(1, Ordering::Relaxed);
        return None;
    };
    core.apic_id.store(apic_id, Ordering::Relaxed);
    Some(core)
}

/// Every claimed core record, boot processor first.
pub fn cores() -> &'static [Core] {
    &CORES[..CORES_CLAIMED.load(Ordering::Relaxed).min(MAX_CORES)]
}

/// Makes `core` the running core's record (its GS base).
pub(super) fn install(core: &'static Core) {
    GsBase::write(VirtAddr::from_ptr(core));
}

/// The running core's record, or `None` before [`install`] ran on it. Never
/// trusts the GS base blindly: it must point at a record in the table.
pub fn try_current_core() -> Option<&'static Core> {
    let base = GsBase::read().as_u64() as usize;
    let table = CORES.as_ptr() as usize;
    let size = core::mem::size_of::<Core>();
    if base < table || base >= table + MAX_CORES * size || !(base - table).is_multiple_of(size) {
        return None;
    }
    CORES.get((base - table) / size)
}

/// The running core's record. Valid once `arch::init` (boot core) or
/// `ap_entry` (other cores) has run on this core.
pub fn current_core() -> &'static Core {
    match try_current_core() {
        Some(core) => core,
        None => panic!("current_core() on core with APIC id {} before its bring-up", cpuid_apic_id()),
    }
}

/// The initial APIC id from CPUID (needs no APIC access; safe anywhere).
pub fn cpuid_apic_id() -> u32 {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    if core::arch::x86_64::__cpuid(0).eax >= 0xb {
        let topology = core::arch::x86_64::__cpuid_count(0xb, 0);
        if topology.ebx != 0 {
            return topology.edx;
        }
    }
    leaf1.ebx >> 24
}
