//! Sinter's guest-side test workload.
//!
//! It runs inside the Linux guest (a static musl binary started by the
//! initramfs' `/init`) and checks that the machine it runs on behaves like
//! one SMP computer: atomics, locks, x86's memory ordering and RAM contents
//! must all hold across every vCPU, whichever node each one runs on.
//!
//! Output, one line each (the harness parses it):
//!
//! ```text
//! workload: nproc=N
//! workload: memtotal_kib=N
//! workload: ...                      (informational lines)
//! check <name>: ok
//! check <name>: FAILED <detail>
//! N passed, N failed                 (last line; exit 0 only if none failed)
//! ```
//!
//! Every check takes its sizes from [`Config`], so the same code runs on the
//! host with small sizes in the unit tests.

use std::io::Write;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sizes of the checks. [`Config::guest`] is what runs in the guest.
#[derive(Debug, Clone)]
pub struct Config {
    /// Increments per thread for the atomic counter.
    pub atomic_increments: u64,
    /// Increments per thread for the mutex- and spinlock-protected counters.
    pub lock_increments: u64,
    /// Runs of each store-buffer litmus test.
    pub sb_iterations: u64,
    /// Share of MemAvailable the memory check fills, in percent.
    pub mem_percent: u64,
    /// Upper bound on the memory check's size (bytes); `None` = no bound.
    pub mem_max_bytes: Option<u64>,
    /// Size of one allocation of the memory check.
    pub mem_chunk_bytes: usize,
}

impl Config {
    /// The sizes used in the guest. Environment variables override them
    /// (the kernel passes unknown `NAME=value` cmdline words to init):
    /// `WORKLOAD_ATOMIC_INCREMENTS`, `WORKLOAD_LOCK_INCREMENTS`,
    /// `WORKLOAD_SB_ITERATIONS`, `WORKLOAD_MEM_PERCENT`, `WORKLOAD_MEM_MAX_MIB`.
    pub fn guest() -> Self {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
        Config {
            atomic_increments: env("WORKLOAD_ATOMIC_INCREMENTS").unwrap_or(1_000_000),
            lock_increments: env("WORKLOAD_LOCK_INCREMENTS").unwrap_or(200_000),
            sb_iterations: env("WORKLOAD_SB_ITERATIONS").unwrap_or(100_000),
            mem_percent: env("WORKLOAD_MEM_PERCENT").unwrap_or(80).min(95),
            mem_max_bytes: env("WORKLOAD_MEM_MAX_MIB").map(|mib| mib << 20),
            mem_chunk_bytes: 16 << 20,
        }
    }

    /// Small sizes for host unit tests.
    pub fn small() -> Self {
        Config {
            atomic_increments: 20_000,
            lock_increments: 5_000,
            sb_iterations: 5_000,
            mem_percent: 1,
            mem_max_bytes: Some(8 << 20),
            mem_chunk_bytes: 1 << 20,
        }
    }
}

/// The verdict of one check: `Err` carries the detail printed after `FAILED`.
pub type CheckResult = Result<(), String>;

// ---------------------------------------------------------------- CPUs --

/// The CPUs this process may run on (its affinity mask), in order. Its
/// length is what `nproc` prints.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bitmask; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0
    // is the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        return (0..n).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| {
            // SAFETY: CPU_ISSET only reads bit `cpu` of `set`; cpu < CPU_SETSIZE.
            unsafe { libc::CPU_ISSET(cpu, &set) }
        })
        .collect()
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("cpu {cpu} is beyond CPU_SETSIZE"));
    }
    // SAFETY: cpu_set_t is a plain bitmask; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET only writes bit `cpu` of `set`; cpu < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(format!("sched_setaffinity(cpu {cpu}): {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The CPUs the multi-threaded checks use, one thread each: every allowed
/// CPU, and at least two threads (on one CPU they then share it).
fn worker_cpus(cpus: &[usize]) -> Vec<usize> {
    let mut workers = cpus.to_vec();
    if workers.is_empty() {
        workers.push(0);
    }
    while workers.len() < 2 {
        workers.push(workers[0]);
    }
    workers
}

/// Runs `body(thread index)` on one thread per entry of `cpus`, each pinned
/// to its CPU, and collects the results in order. A pinning failure or a
/// panic becomes an `Err`.
fn on_cpus<T: Send>(cpus: &[usize], body: impl Fn(usize) -> Result<T, String> + Sync) -> Result<Vec<T>, String> {
    let body = &body;
    std::thread::scope(|scope| {
        let handles: Vec<_> = cpus
            .iter()
            .enumerate()
            .map(|(index, &cpu)| {
                scope.spawn(move || {
                    pin_current_thread(cpu)?;
                    body(index)
                })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(index, h)| h.join().unwrap_or_else(|_| Err(format!("thread {index} panicked"))))
            .collect()
    })
}

/// Spins until `done()`; yields now and then so that two threads sharing
/// one CPU still make progress.
#[inline]
fn spin_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins += 1;
        if spins & 1023 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

// ------------------------------------------------------------ meminfo --

/// Reads one `Key:   N kB` field of /proc/meminfo text, in KiB.
pub fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

// ------------------------------------------------------------ counters --

/// Every thread adds `increments` to one atomic counter; the total must be
/// exact.
pub fn check_atomic_counter(cpus: &[usize], increments: u64) -> CheckResult {
    let counter = AtomicU64::new(0);
    let start = AtomicU64::new(0);
    let workers = worker_cpus(cpus);
    let threads = workers.len() as u64;
    on_cpus(&workers, |_| {
        // Start together so that the increments contend.
        start.fetch_add(1, Ordering::AcqRel);
        spin_until(|| start.load(Ordering::Acquire) == threads);
        for _ in 0..increments {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    expect_total("atomic counter", counter.load(Ordering::SeqCst), threads * increments)
}

/// Every thread increments a plain (non-atomic) counter under one
/// `std::sync::Mutex`, with a read-pause-write so that a lock that lets two
/// threads in loses updates.
pub fn check_mutex_counter(cpus: &[usize], increments: u64) -> CheckResult {
    let counter = Mutex::new(0u64);
    let workers = worker_cpus(cpus);
    let threads = workers.len() as u64;
    on_cpus(&workers, |_| {
        for _ in 0..increments {
            let mut guard = counter.lock().map_err(|_| "mutex poisoned".to_string())?;
            let value = std::hint::black_box(*guard);
            std::hint::spin_loop();
            *guard = value + 1;
        }
        Ok(())
    })?;
    let total = *counter.lock().map_err(|_| "mutex poisoned".to_string())?;
    expect_total("mutex-protected counter", total, threads * increments)
}

/// A test-and-test-and-set spinlock built on one atomic flag (acquire on
/// lock, release on unlock, no kernel help) protecting a counter that is
/// read and written with separate plain loads and stores: only the lock's
/// ordering and exclusion keep the total exact.
pub fn check_spinlock_counter(cpus: &[usize], increments: u64) -> CheckResult {
    let locked = AtomicBool::new(false);
    // Relaxed load + relaxed store: on x86 two plain `mov`s, not an atomic RMW.
    let counter = AtomicU64::new(0);
    let workers = worker_cpus(cpus);
    let threads = workers.len() as u64;
    on_cpus(&workers, |_| {
        for _ in 0..increments {
            loop {
                if locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    break;
                }
                spin_until(|| !locked.load(Ordering::Relaxed));
            }
            let value = counter.load(Ordering::Relaxed);
            std::hint::spin_loop();
            counter.store(value + 1, Ordering::Relaxed);
            locked.store(false, Ordering::Release);
        }
        Ok(())
    })?;
    expect_total("spinlock-protected counter", counter.load(Ordering::SeqCst), threads * increments)
}

fn expect_total(what: &str, got: u64, expected: u64) -> CheckResult {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what} is {got}, expected {expected} (lost {})", expected as i128 - got as i128))
    }
}

// ----------------------------------------------------- store buffering --

/// How often each outcome of the store-buffer test was seen. "old" means a
/// thread's load missed the other thread's store of the same run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SbOutcomes {
    /// r1 = old, r2 = old: forbidden when each thread fences between its
    /// store and its load (x86-TSO allows it without the fence).
    pub both_old: u64,
    pub first_old: u64,
    pub second_old: u64,
    pub both_new: u64,
    /// Loads that returned neither the previous run's nor this run's value
    /// (impossible on any coherent machine).
    pub impossible: u64,
}

impl SbOutcomes {
    /// Adds one run's observations: what each thread read of the other's
    /// location in run `i` (where run `i` stores `i + 1`).
    pub fn record(&mut self, i: u64, first_read: u64, second_read: u64) {
        let class = |read: u64| match read {
            r if r == i => Some(true),
            r if r == i + 1 => Some(false),
            _ => None,
        };
        match (class(first_read), class(second_read)) {
            (Some(true), Some(true)) => self.both_old += 1,
            (Some(true), Some(false)) => self.first_old += 1,
            (Some(false), Some(true)) => self.second_old += 1,
            (Some(false), Some(false)) => self.both_new += 1,
            _ => self.impossible += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.both_old + self.first_old + self.second_old + self.both_new + self.impossible
    }
}

impl std::fmt::Display for SbOutcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r1r2=00:{} 01:{} 10:{} 11:{}", self.both_old, self.first_old, self.second_old, self.both_new)?;
        if self.impossible > 0 {
            write!(f, " impossible:{}", self.impossible)?;
        }
        Ok(())
    }
}

/// The time-stamp counter (the common clock the SB test lines its threads
/// up on; Linux and Sinter keep it consistent across CPUs).
#[inline]
fn timestamp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC reads a counter; it has no memory effects and every
        // x86-64 CPU has it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Cycles between a run's release and its start: long enough for the
/// release to reach the other CPU, so both start together.
const SB_START_DELAY: u64 = 10_000;
/// Upper bound on the wait for a run's start time.
const SB_MAX_START_SPINS: u32 = 1_000_000;

/// The classic store-buffer (SB) litmus test, `iterations` runs:
///
/// ```text
/// thread 0: x = 1; [mfence]; r1 = y        thread 1: y = 1; [mfence]; r2 = x
/// ```
///
/// The two threads are pinned to `cpus.0` and `cpus.1`. Before each run
/// they meet at a barrier; the second to arrive sets a start time a little
/// ahead on the time-stamp counter and both spin until it (plus a small
/// offset that varies from run to run), so that their stores and loads
/// overlap. Run `i` stores `i + 1` (no reset between runs): a load then reads
/// either `i` (old) or `i + 1` (new). With `fenced`, each thread has a
/// SeqCst fence (`mfence` on x86) between its store and its load.
pub fn store_buffer_litmus(iterations: u64, fenced: bool, cpus: (usize, usize)) -> Result<SbOutcomes, String> {
    let x = AtomicU64::new(0);
    let y = AtomicU64::new(0);
    let arrived = AtomicU64::new(0);
    // (run number + 1, start time), published by the run's second arrival.
    let released = AtomicU64::new(0);
    let start_at = AtomicU64::new(0);
    let reads = on_cpus(&[cpus.0, cpus.1], |thread| {
        let (mine, theirs) = if thread == 0 { (&x, &y) } else { (&y, &x) };
        let mut reads = Vec::with_capacity(iterations as usize);
        for i in 0..iterations {
            // Both threads have finished run i - 1 when the run is released.
            if arrived.fetch_add(1, Ordering::AcqRel) == 2 * i + 1 {
                start_at.store(timestamp() + SB_START_DELAY, Ordering::Relaxed);
                released.store(i + 1, Ordering::Release);
            } else {
                spin_until(|| released.load(Ordering::Acquire) == i + 1);
            }
            // Sweep the two threads' relative start over about ±100 cycles.
            let skew = if thread == 0 { (i * 37) % 200 } else { (i * 53) % 200 };
            let start = start_at.load(Ordering::Relaxed) + skew;
            // Bounded, so a counter that differs between CPUs only costs
            // overlap, never progress.
            let mut spins = 0u32;
            while timestamp() < start && spins < SB_MAX_START_SPINS {
                spins += 1;
                std::hint::spin_loop();
            }
            mine.store(i + 1, Ordering::Relaxed);
            if fenced {
                fence(Ordering::SeqCst);
            }
            reads.push(theirs.load(Ordering::Relaxed));
        }
        Ok(reads)
    })?;
    let mut outcomes = SbOutcomes::default();
    for (i, (&r1, &r2)) in reads[0].iter().zip(&reads[1]).enumerate() {
        outcomes.record(i as u64, r1, r2);
    }
    Ok(outcomes)
}

/// The two CPUs the SB test runs on: the first two allowed ones (or the
/// only one twice).
pub fn sb_cpus(cpus: &[usize]) -> (usize, usize) {
    let workers = worker_cpus(cpus);
    (workers[0], workers[1])
}

/// Judges a fenced SB run: the forbidden outcome must never appear.
pub fn judge_fenced_sb(outcomes: &SbOutcomes) -> CheckResult {
    if outcomes.both_old == 0 && outcomes.impossible == 0 {
        Ok(())
    } else {
        Err(format!("forbidden outcome r1=0 && r2=0 seen despite mfence: {outcomes}"))
    }
}

// ------------------------------------------------------------- memory --

/// The value stored at address `addr`: a bijection of the address (odd
/// multiplier, xor, rotate), so a word that lands at the wrong address, a
/// stale page or a page shared by mistake shows as a mismatch.
#[inline]
pub fn pattern(addr: usize, seed: u64) -> u64 {
    ((addr as u64) ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ seed
}

/// Fills `words` (which must have capacity `len` and be empty) with the
/// pattern of their addresses; returns the wrapping sum of what it wrote.
pub fn fill_chunk(words: &mut Vec<u64>, len: usize, seed: u64) -> u64 {
    assert!(words.is_empty() && words.capacity() >= len, "fill_chunk needs an empty vector with room for {len}");
    let base = words.as_ptr() as usize;
    let mut sum = 0u64;
    words.extend((0..len).map(|i| {
        let value = pattern(base + i * 8, seed);
        sum = sum.wrapping_add(value);
        value
    }));
    sum
}

/// What [`verify_chunk`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkReport {
    /// Wrapping sum of the words read.
    pub sum: u64,
    pub mismatches: u64,
    /// Index of the first wrong word, with what it held and what it should.
    pub first_bad: Option<(usize, u64, u64)>,
}

/// Re-reads a chunk written by [`fill_chunk`].
pub fn verify_chunk(words: &[u64], seed: u64) -> ChunkReport {
    let base = words.as_ptr() as usize;
    let mut report = ChunkReport::default();
    for (i, &value) in words.iter().enumerate() {
        report.sum = report.sum.wrapping_add(value);
        let expected = pattern(base + i * 8, seed);
        if value != expected {
            report.mismatches += 1;
            if report.first_bad.is_none() {
                report.first_bad = Some((i, value, expected));
            }
        }
    }
    report
}

/// Fills `bytes` of RAM in chunks of `chunk_bytes`, one thread per CPU
/// (chunk k on thread k mod n), then verifies every chunk on the *next*
/// thread's CPU, so that each word is read by another CPU than the one that
/// wrote it. The sums of what was written and what was read must agree and
/// no word may differ from its address pattern. Returns a summary.
pub fn check_memory_fill(cpus: &[usize], bytes: u64, chunk_bytes: usize, seed: u64) -> Result<String, String> {
    let chunk_words = (chunk_bytes / 8).max(1);
    let total_words = (bytes / 8) as usize;
    if total_words == 0 {
        return Err(format!("nothing to fill ({bytes} bytes)"));
    }
    let mut chunks: Vec<Vec<u64>> = Vec::new();
    let mut left = total_words;
    while left > 0 {
        let len = left.min(chunk_words);
        let mut chunk = Vec::new();
        chunk
            .try_reserve_exact(len)
            .map_err(|e| format!("allocating chunk {} ({} bytes): {e}", chunks.len(), len * 8))?;
        chunks.push(chunk);
        left -= len;
    }
    let lens: Vec<usize> = (0..chunks.len()).map(|k| (total_words - k * chunk_words).min(chunk_words)).collect();
    let workers = worker_cpus(cpus);
    let n = workers.len();

    // Fill: each thread takes its chunks out of a shared slot table.
    let slots: Vec<Mutex<Option<Vec<u64>>>> = chunks.into_iter().map(|c| Mutex::new(Some(c))).collect();
    let written = on_cpus(&workers, |thread| {
        let mut sum = 0u64;
        for k in (thread..slots.len()).step_by(n) {
            let mut slot = slots[k].lock().map_err(|_| "slot poisoned".to_string())?;
            let chunk = slot.as_mut().ok_or("chunk missing")?;
            sum = sum.wrapping_add(fill_chunk(chunk, lens[k], seed));
        }
        Ok(sum)
    })?;
    let written = written.into_iter().fold(0u64, u64::wrapping_add);

    // Verify on the next CPU.
    let reports = on_cpus(&workers, |thread| {
        let writer = (thread + 1) % n;
        let mut total = ChunkReport::default();
        for k in (writer..slots.len()).step_by(n) {
            let slot = slots[k].lock().map_err(|_| "slot poisoned".to_string())?;
            let report = verify_chunk(slot.as_ref().ok_or("chunk missing")?, seed);
            total.sum = total.sum.wrapping_add(report.sum);
            total.mismatches += report.mismatches;
            if total.first_bad.is_none() {
                if let Some((i, got, want)) = report.first_bad {
                    total.first_bad = Some((k * chunk_words + i, got, want));
                }
            }
        }
        Ok(total)
    })?;
    let read = reports.iter().fold(0u64, |acc, r| acc.wrapping_add(r.sum));
    let mismatches: u64 = reports.iter().map(|r| r.mismatches).sum();
    if mismatches > 0 {
        let (word, got, want) = reports.iter().find_map(|r| r.first_bad).unwrap_or_default();
        return Err(format!(
            "{mismatches} of {total_words} words wrong; first at byte offset {:#x}: {got:#018x}, expected {want:#018x}",
            word * 8
        ));
    }
    if read != written {
        return Err(format!("checksum of what was read {read:#018x} != what was written {written:#018x}"));
    }
    Ok(format!("{} MiB in {} chunks on {n} threads, checksum {written:#018x}", (total_words * 8) >> 20, slots.len()))
}

/// How many bytes the memory check fills, from /proc/meminfo text.
pub fn memory_check_bytes(meminfo: &str, config: &Config) -> Option<u64> {
    let available = meminfo_kib(meminfo, "MemAvailable").or_else(|| meminfo_kib(meminfo, "MemFree"))?;
    let bytes = available * 1024 / 100 * config.mem_percent;
    Some(config.mem_max_bytes.map_or(bytes, |max| bytes.min(max)))
}

// -------------------------------------------------------------- runner --

/// Counts of passed and failed checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

impl Summary {
    /// The closing line, `N passed, N failed`.
    pub fn line(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

/// Prints the workload's output for `config` on the given CPUs to `out`
/// and returns the tally (the summary line is printed last).
pub fn run_all(config: &Config, cpus: &[usize], meminfo: &str, out: &mut impl Write) -> Summary {
    let mut summary = Summary::default();
    let say = |out: &mut dyn Write, line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let cpu_list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    say(out, format!("workload: nproc={}", cpus.len()));
    say(out, format!("workload: memtotal_kib={}", meminfo_kib(meminfo, "MemTotal").unwrap_or(0)));
    say(out, format!("workload: cpus={}", cpu_list.join(",")));

    let mut check = |out: &mut dyn Write, name: &str, run: &mut dyn FnMut() -> Result<Option<String>, String>| {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err("the check panicked".to_string()));
        let took = started.elapsed();
        match result {
            Ok(info) => {
                if let Some(info) = info {
                    say(out, format!("workload: {name}: {info}"));
                }
                say(out, format!("workload: {name}: took {}", seconds(took)));
                say(out, format!("check {name}: ok"));
                summary.passed += 1;
            }
            Err(detail) => {
                say(out, format!("workload: {name}: took {}", seconds(took)));
                say(out, format!("check {name}: FAILED {detail}"));
                summary.failed += 1;
            }
        }
    };

    let threads = worker_cpus(cpus).len();
    check(out, "atomic_counter", &mut || {
        check_atomic_counter(cpus, config.atomic_increments)?;
        Ok(Some(format!("{threads} threads x {} increments", config.atomic_increments)))
    });
    check(out, "mutex_counter", &mut || {
        check_mutex_counter(cpus, config.lock_increments)?;
        Ok(Some(format!("{threads} threads x {} increments", config.lock_increments)))
    });
    check(out, "spinlock_counter", &mut || {
        check_spinlock_counter(cpus, config.lock_increments)?;
        Ok(Some(format!("{threads} threads x {} increments", config.lock_increments)))
    });
    let pair = sb_cpus(cpus);
    check(out, "sb_litmus_mfence", &mut || {
        let outcomes = store_buffer_litmus(config.sb_iterations, true, pair)?;
        judge_fenced_sb(&outcomes)?;
        Ok(Some(format!("{} runs on cpus {},{}: {outcomes}", outcomes.total(), pair.0, pair.1)))
    });
    // Without the fence x86 allows r1=r2=0; how often it shows is printed
    // (it tells how hard the fenced run was exercised), never judged.
    match store_buffer_litmus(config.sb_iterations, false, pair) {
        Ok(outcomes) => say(out, format!("workload: sb_litmus_nofence (allowed, not judged): {outcomes}")),
        Err(e) => say(out, format!("workload: sb_litmus_nofence could not run: {e}")),
    }
    check(out, "memory_fill", &mut || {
        let bytes = memory_check_bytes(meminfo, config).ok_or("no MemAvailable/MemFree in /proc/meminfo")?;
        let seed = 0x5117_7e12_0000_0000 ^ u64::from(std::process::id());
        check_memory_fill(cpus, bytes, config.mem_chunk_bytes, seed).map(Some)
    });

    // Evidence that cross-CPU interrupts (rescheduling, function calls, TLB
    // shootdowns) reached every CPU; reported, not judged.
    if let Ok(text) = std::fs::read_to_string("/proc/interrupts") {
        for line in ipi_counts(&text) {
            say(out, format!("workload: interrupts {line}"));
        }
    }
    say(out, summary.line());
    summary
}

/// The inter-processor interrupt rows of `/proc/interrupts` (`RES`, `CAL`,
/// `TLB`), as `NAME: per-CPU counts`.
pub fn ipi_counts(proc_interrupts: &str) -> Vec<String> {
    proc_interrupts
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.trim_start().split_once(':')?;
            if !["RES", "CAL", "TLB"].contains(&name) {
                return None;
            }
            let counts: Vec<&str> = rest.split_whitespace().take_while(|w| w.parse::<u64>().is_ok()).collect();
            Some(format!("{name}: {}", counts.join(" ")))
        })
        .collect()
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus() -> Vec<usize> {
        allowed_cpus()
    }

    #[test]
    fn ipi_counts_picks_the_ipi_rows() {
        let text = "           CPU0       CPU1\n  0:         40          0   IO-APIC   2-edge      timer\n\
                    RES:       1795       2101   Rescheduling interrupts\n\
                    CAL:        412        377   Function call interrupts\n\
                    TLB:         58         61   TLB shootdowns\nERR:          0\n";
        assert_eq!(ipi_counts(text), ["RES: 1795 2101", "CAL: 412 377", "TLB: 58 61"]);
        assert!(ipi_counts("garbage\n:\n").is_empty());
    }

    #[test]
    fn allowed_cpus_matches_available_parallelism() {
        let cpus = cpus();
        assert!(!cpus.is_empty());
        let n = std::thread::available_parallelism().unwrap().get();
        // available_parallelism may also apply a cgroup quota, never more.
        assert!(n <= cpus.len(), "{n} > {cpus:?}");
        // Pinning to each allowed CPU works, then restore the mask.
        std::thread::scope(|s| {
            s.spawn(|| {
                for &cpu in &cpus {
                    pin_current_thread(cpu).unwrap();
                    assert_eq!(allowed_cpus(), vec![cpu]);
                }
            });
        });
        assert!(pin_current_thread(libc::CPU_SETSIZE as usize).is_err());
    }

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:        1004052 kB\nMemFree:          950000 kB\nMemAvailable:     940120 kB\n";
        assert_eq!(meminfo_kib(text, "MemTotal"), Some(1_004_052));
        assert_eq!(meminfo_kib(text, "MemAvailable"), Some(940_120));
        assert_eq!(meminfo_kib(text, "Mem"), None);
        let config = Config { mem_percent: 80, mem_max_bytes: None, ..Config::small() };
        assert_eq!(memory_check_bytes(text, &config), Some(940_120 * 1024 / 100 * 80));
        let capped = Config { mem_percent: 80, mem_max_bytes: Some(1 << 20), ..Config::small() };
        assert_eq!(memory_check_bytes(text, &capped), Some(1 << 20));
        let real = std::fs::read_to_string("/proc/meminfo").unwrap();
        assert!(meminfo_kib(&real, "MemTotal").unwrap() > 0);
    }

    #[test]
    fn counters_are_exact() {
        let cpus = cpus();
        check_atomic_counter(&cpus, 20_000).unwrap();
        check_mutex_counter(&cpus, 5_000).unwrap();
        check_spinlock_counter(&cpus, 5_000).unwrap();
        // Works on a single CPU too (two threads share it).
        check_spinlock_counter(&cpus[..1], 1_000).unwrap();
    }

    #[test]
    fn totals_are_judged() {
        assert!(expect_total("c", 10, 10).is_ok());
        let err = expect_total("c", 9, 10).unwrap_err();
        assert!(err.contains("is 9, expected 10 (lost 1)"), "{err}");
    }

    #[test]
    fn fenced_store_buffer_never_shows_both_old() {
        let outcomes = store_buffer_litmus(5_000, true, sb_cpus(&cpus())).unwrap();
        assert_eq!(outcomes.total(), 5_000);
        judge_fenced_sb(&outcomes).unwrap();
        // The unfenced variant runs and classifies every run (x86 may or may
        // not show 00 on this host; it is not judged).
        let unfenced = store_buffer_litmus(2_000, false, sb_cpus(&cpus())).unwrap();
        assert_eq!(unfenced.total(), 2_000);
        assert_eq!(unfenced.impossible, 0);
    }

    #[test]
    fn unfenced_store_buffer_shows_the_relaxed_outcome() {
        // x86-TSO's store buffer lets both loads miss both stores without
        // the fence: the harness must be able to catch that, or the fenced
        // run proves nothing. Bounded retries, for a loaded host.
        let pair = sb_cpus(&cpus());
        if pair.0 == pair.1 {
            return; // one CPU: the threads cannot overlap
        }
        let mut seen = SbOutcomes::default();
        for _ in 0..20 {
            let o = store_buffer_litmus(20_000, false, pair).unwrap();
            seen.both_old += o.both_old;
            seen.impossible += o.impossible;
            if seen.both_old > 0 {
                break;
            }
        }
        assert_eq!(seen.impossible, 0);
        assert!(seen.both_old > 0, "the SB test never overlapped the two threads: {seen}");
    }

    #[test]
    fn sb_outcomes_are_classified() {
        let mut o = SbOutcomes::default();
        o.record(5, 5, 5); // both old: forbidden with fences
        o.record(5, 5, 6);
        o.record(5, 6, 5);
        o.record(5, 6, 6);
        o.record(5, 7, 6); // from the future: impossible
        assert_eq!(o, SbOutcomes { both_old: 1, first_old: 1, second_old: 1, both_new: 1, impossible: 1 }, "{o}");
        let err = judge_fenced_sb(&o).unwrap_err();
        assert!(err.contains("r1r2=00:1"), "{err}");
        assert!(judge_fenced_sb(&SbOutcomes { both_new: 3, first_old: 2, ..Default::default() }).is_ok());
    }

    #[test]
    fn pattern_is_distinct_per_address() {
        let values: std::collections::HashSet<u64> = (0..10_000).map(|i| pattern(0x1000 + i * 8, 42)).collect();
        assert_eq!(values.len(), 10_000);
        assert_ne!(pattern(0x1000, 1), pattern(0x1000, 2));
    }

    #[test]
    fn verify_finds_a_corrupted_word_and_a_moved_chunk() {
        let mut words = Vec::with_capacity(1000);
        let written = fill_chunk(&mut words, 1000, 7);
        let clean = verify_chunk(&words, 7);
        assert_eq!(clean, ChunkReport { sum: written, mismatches: 0, first_bad: None });
        let good = words[123];
        words[123] ^= 1 << 17;
        let bad = verify_chunk(&words, 7);
        assert_eq!(bad.mismatches, 1);
        assert_eq!(bad.first_bad, Some((123, good ^ (1 << 17), good)));
        words[123] = good;
        // The same contents at another address (a page mapped at the wrong
        // place) fail as a whole.
        let moved: Vec<u64> = words.clone();
        assert_ne!(moved.as_ptr(), words.as_ptr());
        assert_eq!(verify_chunk(&moved, 7).mismatches, 1000);
    }

    #[test]
    fn memory_fill_passes_on_several_chunks() {
        // Not a multiple of the chunk size, to cover the short last chunk.
        let info = check_memory_fill(&cpus(), (5 << 20) + 24, 1 << 20, 99).unwrap();
        assert!(info.contains("in 6 chunks"), "{info}");
        assert!(check_memory_fill(&cpus(), 7, 1 << 20, 99).unwrap_err().contains("nothing to fill"));
    }

    #[test]
    fn run_all_prints_the_documented_format() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let mut out = Vec::new();
        let cpus = cpus();
        let summary = run_all(&Config::small(), &cpus, &meminfo, &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("workload: nproc={}", cpus.len()));
        assert!(lines[1].starts_with("workload: memtotal_kib=") && !lines[1].ends_with("=0"), "{text}");
        let checks: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("check ")).collect();
        assert_eq!(
            checks,
            [
                "check atomic_counter: ok",
                "check mutex_counter: ok",
                "check spinlock_counter: ok",
                "check sb_litmus_mfence: ok",
                "check memory_fill: ok"
            ],
            "{text}"
        );
        assert_eq!(summary, Summary { passed: 5, failed: 0 });
        assert_eq!(*lines.last().unwrap(), "5 passed, 0 failed");
        assert!(text.contains("workload: sb_litmus_nofence (allowed, not judged): r1r2=00:"), "{text}");
    }

    #[test]
    fn a_failing_check_is_reported() {
        // A meminfo without MemAvailable/MemFree makes the memory check fail.
        let mut out = Vec::new();
        let summary = run_all(&Config::small(), &cpus(), "MemTotal: 1 kB\n", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(summary, Summary { passed: 4, failed: 1 });
        assert!(text.contains("check memory_fill: FAILED no MemAvailable/MemFree in /proc/meminfo"), "{text}");
        assert_eq!(text.lines().last(), Some("4 passed, 1 failed"));
    }
}
