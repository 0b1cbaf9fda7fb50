//! The per-core service executor: services run as cooperative tasks, each
//! with its own stack and name, and a supervisor restarts or halts on panic
//! as the config says (`[service.NAME] on_panic`).
//!
//! Each core runs its own [`Executor`]; only that core touches it, except for
//! the atomic wake flags. A service gives up the core with [`yield_now`] or by
//! returning. Services talk to each other only through `sinter-ipc`.

mod context;

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sinter_config::{ClusterConfig, OnPanic};
use sinter_kerncore::supervisor::{RestartPolicy, Supervision, Verdict};
use spin::Mutex;

use crate::memory::{self, Stack};
use crate::{kprintln, power};

/// Most cores one node runs (xAPIC ids fit in 8 bits).
pub const MAX_CORES: usize = 256;
const SERVICE_STACK_BYTES: usize = 64 * 1024;

/// A service's body. It gets its argument and its generation (0 on first
/// start, +1 per restart).
pub type ServiceEntry = fn(arg: usize, generation: u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskState {
    Ready,
    /// Blocked in [`block_until_notified`] or [`block_until`] until this
    /// core is notified or, if set, the TSC reaches `until`.
    Waiting {
        until: Option<u64>,
    },
    /// Panicked; restart when the clock passes `not_before`.
    Restarting {
        not_before: u64,
    },
    Finished,
}

struct Task {
    name: &'static str,
    entry: ServiceEntry,
    arg: usize,
    stack: Stack,
    saved_rsp: u64,
    state: TaskState,
    policy: RestartPolicy,
    supervision: Supervision,
    /// TSC cycles spent running this task (including any halt inside it).
    cycles: u64,
}

/// A service waiting to be placed on a core's executor.
pub struct ServiceSpec {
    pub name: &'static str,
    pub entry: ServiceEntry,
    pub arg: usize,
}

pub struct Executor {
    tasks: Vec<Task>,
    current: Option<usize>,
    scheduler_rsp: u64,
    /// TSC cycles this core spent halted with every task waiting.
    idle_cycles: u64,
    /// Scheduling rounds (one pass over the tasks).
    rounds: u64,
}

struct CoreSlot {
    executor: UnsafeCell<Option<Executor>>,
    /// Set by anyone who queued work or signalled a task on this core.
    wake: AtomicBool,
    incoming: Mutex<Vec<ServiceSpec>>,
    /// TSC cycles this core has spent halted by its executor, for any core
    /// to read (the status report's per-core load).
    halted_cycles: AtomicU64,
}

// SAFETY: `executor` is only ever accessed by the core that owns the slot
// (see `this_core`); the other fields are atomics and a lock.
unsafe impl Sync for CoreSlot {}

#[allow(clippy::declare_interior_mutable_const, reason = "used only to initialise the static array")]
const EMPTY_SLOT: CoreSlot = CoreSlot {
    executor: UnsafeCell::new(None),
    wake: AtomicBool::new(false),
    incoming: Mutex::new(Vec::new()),
    halted_cycles: AtomicU64::new(0),
};
static CORES: [CoreSlot; MAX_CORES] = [EMPTY_SLOT; MAX_CORES];

static POLICIES: Mutex<Vec<(&'static str, RestartPolicy)>> = Mutex::new(Vec::new());

/// This core's index (its initial local APIC id, from CPUID).
pub fn core_index() -> usize {
    let leaf = core::arch::x86_64::__cpuid(1);
    (leaf.ebx >> 24) as usize
}

fn read_tsc() -> u64 {
    // SAFETY: rdtsc has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Cores whose executors are running (bit per core index).
static ONLINE_EXECUTORS: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// Some core other than this one whose executor runs, if any.
pub fn other_online_core() -> Option<usize> {
    let here = core_index();
    (0..MAX_CORES).find(|&c| c != here && ONLINE_EXECUTORS[c].load(Ordering::Acquire))
}

/// Entry for an application processor once it is set up: runs its executor
/// for ever, picking up services other cores queue for it.
pub fn run_ap() -> ! {
    let core = core_index() % MAX_CORES;
    ONLINE_EXECUTORS[core].store(true, Ordering::Release);
    loop {
        run_until_idle();
        // Nothing left to run: sleep until another core queues work here.
        let halted = read_tsc();
        idle_until_woken(core, None);
        CORES[core].halted_cycles.fetch_add(read_tsc().wrapping_sub(halted), Ordering::Relaxed);
    }
}

/// Reads the supervision policies for every `[service.NAME]` in the config.
pub fn configure(config: &ClusterConfig) {
    let mut policies = POLICIES.lock();
    policies.clear();
    for (name, policy) in &config.services {
        let name: &'static str = alloc::boxed::Box::leak(name.clone().into_boxed_str());
        policies.push((
            name,
            RestartPolicy { restart: policy.on_panic == OnPanic::Restart, max_restarts: policy.max_restarts },
        ));
    }
}

fn policy_for(name: &str) -> RestartPolicy {
    POLICIES
        .lock()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .unwrap_or(RestartPolicy { restart: true, max_restarts: sinter_config::ServicePolicy::default().max_restarts })
}

/// Queues a service for core `core`; it starts when that core's executor runs.
pub fn spawn_on(core: usize, spec: ServiceSpec) {
    CORES[core % MAX_CORES].incoming.lock().push(spec);
    wake_core(core);
}

/// Notifications sent to each core as IPIs (for reports).
static WAKE_IPIS: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];

/// Marks `core`'s executor as having work: its waiting services become
/// ready, and a halted core is woken with an IPI.
pub fn wake_core(core: usize) {
    let slot = &CORES[core % MAX_CORES];
    slot.wake.store(true, Ordering::Release);
    if core != core_index() && ONLINE_EXECUTORS[core % MAX_CORES].load(Ordering::Acquire) {
        // The executor index is the core's APIC id (see `core_index`).
        crate::arch::apic::send_ipi(core as u32, crate::arch::apic::Ipi::Fixed(crate::arch::IPI_VECTOR));
        WAKE_IPIS[core % MAX_CORES].fetch_add(1, Ordering::Relaxed);
    }
}

/// TSC cycles `core` has spent halted with nothing to run, since boot.
pub fn halted_cycles(core: usize) -> u64 {
    CORES[core % MAX_CORES].halted_cycles.load(Ordering::Relaxed)
}

/// The cores whose executors run, in index order.
pub fn online_cores() -> impl Iterator<Item = usize> {
    (0..MAX_CORES).filter(|&c| ONLINE_EXECUTORS[c].load(Ordering::Acquire))
}

/// Wake-up IPIs sent so far, to every core.
pub fn wake_ipis_sent() -> u64 {
    WAKE_IPIS.iter().map(|n| n.load(Ordering::Relaxed)).sum()
}

/// Wake-up IPIs sent so far to `core`.
pub fn wake_ipis_sent_to(core: usize) -> u64 {
    WAKE_IPIS[core % MAX_CORES].load(Ordering::Relaxed)
}

/// `sinter-ipc`'s wake-up hook, implemented by the executor: a receiver that
/// armed its ring and blocked is made ready again (and its core woken).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecutorNotify;

impl sinter_ipc::Notify for ExecutorNotify {
    fn notify(&self, target: sinter_ipc::WakeTarget) {
        match target {
            sinter_ipc::WakeTarget::Core(core) => wake_core(core.0 as usize),
            // Services are placed on cores by the kernel; without a
            // service-to-core table yet, wake every running executor.
            sinter_ipc::WakeTarget::Service(_) => {
                for (core, online) in ONLINE_EXECUTORS.iter().enumerate() {
                    if online.load(Ordering::Acquire) || core == core_index() {
                        wake_core(core);
                    }
                }
            }
        }
    }
}

/// Blocks the running service until its core is next notified (see
/// [`wake_core`]). Callers re-check their condition afterwards: a wake-up is
/// a hint, not a message.
pub fn block_until_notified() {
    block(None);
}

/// Blocks the running service until its core is notified or the TSC
/// reaches `deadline_tsc`, whichever comes first. The core halts when every
/// service on it waits (see [`run_until_idle`]), so a service that has
/// nothing to do should arm its rings and call this instead of spinning.
pub fn block_until(deadline_tsc: u64) {
    block(Some(deadline_tsc));
}

fn block(until: Option<u64>) {
    let executor = this_core();
    let Some(index) = executor.current else { return };
    executor.tasks[index].state = TaskState::Waiting { until };
    yield_now();
}

/// Marks the running core as notified, from an interrupt handler (a
/// device's interrupt): its waiting services run again. No IPI, no lock.
pub fn wake_this_core_from_interrupt() {
    CORES[core_index() % MAX_CORES].wake.store(true, Ordering::Release);
}

/// This core's executor.
fn this_core() -> &'static mut Executor {
    let slot = &CORES[core_index() % MAX_CORES];
    // SAFETY: only this core ever dereferences its own slot's executor, and
    // never re-entrantly across a context switch: the scheduler and the task
    // it runs hand the core back and forth, one at a time.
    let executor = unsafe { &mut *slot.executor.get() };
    executor.get_or_insert_with(|| Executor {
        tasks: Vec::new(),
        current: None,
        scheduler_rsp: 0,
        idle_cycles: 0,
        rounds: 0,
    })
}

extern "sysv64" fn task_start() -> ! {
    let executor = this_core();
    let index = executor.current.expect("a task is running");
    let (entry, arg, generation) = {
        let task = &executor.tasks[index];
        (task.entry, task.arg, task.supervision.generation)
    };
    entry(arg, generation);
    let executor = this_core();
    executor.tasks[index].state = TaskState::Finished;
    back_to_scheduler(executor, index)
}

fn back_to_scheduler(executor: &mut Executor, index: usize) -> ! {
    let save = &mut executor.tasks[index].saved_rsp as *mut u64;
    let target = executor.scheduler_rsp;
    // SAFETY: `scheduler_rsp` was saved by `switch` when the scheduler
    // resumed this task; its stack is this core's boot/idle stack, alive.
    unsafe { context::switch(save, target) };
    unreachable!("a finished or panicked task is never resumed");
}

/// Gives the core to the next ready service on it.
pub fn yield_now() {
    let executor = this_core();
    let Some(index) = executor.current else { return };
    let save = &mut executor.tasks[index].saved_rsp as *mut u64;
    let target = executor.scheduler_rsp;
    // SAFETY: as in `back_to_scheduler`; the scheduler resumes this task
    // from the rsp saved here.
    unsafe { context::switch(save, target) };
}

impl Executor {
    fn adopt_incoming(&mut self, core: usize) {
        let specs: Vec<ServiceSpec> = core::mem::take(&mut *CORES[core].incoming.lock());
        for spec in specs {
            let stack = match memory::alloc_stack(SERVICE_STACK_BYTES) {
                Ok(stack) => stack,
                Err(why) => crate::fatal(format_args!("no stack for service `{}`: {why:?}", spec.name)),
            };
            self.tasks.push(Task {
                name: spec.name,
                entry: spec.entry,
                arg: spec.arg,
                stack,
                saved_rsp: context::initial_frame(stack.top, task_start),
                state: TaskState::Ready,
                policy: policy_for(spec.name),
                supervision: Supervision::default(),
                cycles: 0,
            });
        }
    }
}

/// Runs this core's services until all have finished (production services
/// never do; self-tests do). Returns to the caller afterwards.
pub fn run_until_idle() {
    let core = core_index() % MAX_CORES;
    // The boot core too: without this, a notification from another core to
    // a service here set the wake flag but sent no IPI, and the halted boot
    // core saw it only at its next timer tick (up to 10 ms later).
    ONLINE_EXECUTORS[core].store(true, Ordering::Release);
    loop {
        let woken = CORES[core].wake.swap(false, Ordering::AcqRel);
        let executor = this_core();
        executor.adopt_incoming(core);
        let now = read_tsc();
        let mut earliest: Option<u64> = None;
        for task in executor.tasks.iter_mut() {
            if let TaskState::Waiting { until } = task.state {
                if woken || until.is_some_and(|t| t <= now) {
                    task.state = TaskState::Ready;
                } else if let Some(t) = until {
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
            }
        }
        executor.rounds += 1;
        let mut ran_any = false;
        let mut pending = false;
        for index in 0..executor.tasks.len() {
            let executor = this_core();
            match executor.tasks[index].state {
                TaskState::Finished => continue,
                TaskState::Waiting { .. } => {
                    pending = true;
                    continue;
                }
                TaskState::Restarting { not_before } if now < not_before => {
                    pending = true;
                    continue;
                }
                TaskState::Restarting { .. } => {
                    let task = &mut executor.tasks[index];
                    task.saved_rsp = context::initial_frame(task.stack.top, task_start);
                    task.state = TaskState::Ready;
                    kprintln!(
                        "supervisor: starting `{}` again as generation {}",
                        task.name,
                        task.supervision.generation
                    );
                }
                TaskState::Ready => {}
            }
            pending = true;
            ran_any = true;
            executor.current = Some(index);
            let target = executor.tasks[index].saved_rsp;
            let save = &mut executor.scheduler_rsp as *mut u64;
            let started = read_tsc();
            // SAFETY: `target` was built by `initial_frame` or saved by a
            // switch out of this task; its stack belongs to the task.
            unsafe { context::switch(save, target) };
            let executor = this_core();
            executor.current = None;
            executor.tasks[index].cycles += read_tsc().wrapping_sub(started);
        }
        if !pending && !CORES[core].wake.load(Ordering::Acquire) {
            return;
        }
        if !ran_any {
            let halted = read_tsc();
            idle_until_woken(core, earliest.map(|t| t.saturating_sub(halted)));
            let slept = read_tsc().wrapping_sub(halted);
            this_core().idle_cycles += slept;
            CORES[core].halted_cycles.fetch_add(slept, Ordering::Relaxed);
        }
    }
}

/// Where this core's time went: TSC cycles per service (in start order),
/// cycles halted with nothing to run, and scheduling rounds. Cheap (a
/// copy of counters), for benches and status.
pub fn cycles_by_service() -> (Vec<(&'static str, u64)>, u64, u64) {
    let executor = this_core();
    (executor.tasks.iter().map(|t| (t.name, t.cycles)).collect(), executor.idle_cycles, executor.rounds)
}

/// Halts this core until it is notified or an interrupt (the periodic
/// timer at the latest) arrives. `sti; hlt` cannot miss an IPI sent after
/// the check: sti takes effect only once hlt has started. With a waiting
/// service's deadline `within` TSC ticks, the local APIC timer is set to
/// fire then (and put back to its normal period afterwards), so a timed
/// wait is not rounded up to the next periodic tick.
fn idle_until_woken(core: usize, within: Option<u64>) {
    x86_64::instructions::interrupts::disable();
    if !CORES[core].wake.load(Ordering::Acquire) {
        let hz = crate::arch::time::tsc_hz().max(1);
        let period_ns = 1_000_000_000 / crate::arch::TIMER_HZ;
        let soon = within
            .map(|ticks| sinter_kerncore::clock::ticks_to_ns(ticks, hz))
            .filter(|&ns| ns < period_ns)
            .map(|ns| ns.max(MIN_TIMED_WAIT_NS));
        if let Some(ns) = soon {
            let _ = crate::arch::time::retune_timer_period_ns(ns);
        }
        x86_64::instructions::interrupts::enable_and_hlt();
        if soon.is_some() {
            let _ = crate::arch::time::retune_timer_period_ns(period_ns);
        }
    }
    x86_64::instructions::interrupts::enable();
}

/// Shortest timer the idle core programs for a timed wait: below this the
/// interrupt would cost more than the wait.
const MIN_TIMED_WAIT_NS: u64 = 20_000;

/// Called from the panic handler. If a service was running on this core,
/// reports it, asks the supervisor, and either restarts it (never returning
/// here) or halts the node. Returns only if no service was running.
pub fn on_panic(info: &core::panic::PanicInfo<'_>) {
    let slot = &CORES[core_index() % MAX_CORES];
    // SAFETY: as in `this_core`: this core's own slot. The panicking task is
    // abandoned, so no other reference to the executor is used again.
    let Some(executor) = (unsafe { &mut *slot.executor.get() }).as_mut() else { return };
    let Some(index) = executor.current else { return };
    let now = read_tsc();
    let core = core_index();
    crate::serial::release_if_held_by_this_core();
    let task = &mut executor.tasks[index];
    crate::serial::emergency_writer(|w| {
        use core::fmt::Write;
        let _ = writeln!(
            w,
            "sinter: service `{}` (core {core}, generation {}) panicked: {}",
            task.name,
            task.supervision.generation,
            info.message()
        );
        if let Some(location) = info.location() {
            let _ = writeln!(w, "  at {}:{}", location.file(), location.line());
        }
    });
    match task.supervision.on_panic(task.policy, now) {
        Verdict::Restart { generation, not_before } => {
            kprintln!(
                "supervisor: restarting `{}` (restart {} of {}, generation {generation})",
                task.name,
                task.supervision.restarts,
                task.policy.max_restarts
            );
            task.state = TaskState::Restarting { not_before };
            defmt::warn!("supervisor: service {=str} restarts as generation {=u32}", task.name, generation);
            back_to_scheduler(executor, index)
        }
        Verdict::HaltNode { reason } => {
            kprintln!("supervisor: halting the node: service `{}`: {reason:?}", task.name);
            power::fail_stop()
        }
    }
}
