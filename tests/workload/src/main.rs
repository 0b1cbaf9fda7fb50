//! `sinter-workload`: the guest's self-checking test program. See the
//! library docs for the checks and the output format. Exit status 0 only if
//! every check passed.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Tests of the hypervisor's handling of a misbehaving guest ask for it
    // on the kernel command line (`WORKLOAD_MISBEHAVE=...` reaches init's
    // environment).
    if let Ok(what) = std::env::var("WORKLOAD_MISBEHAVE") {
        return misbehave::run(what.trim());
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpus = sinter_workload::allowed_cpus();
    let summary = sinter_workload::run_all(&sinter_workload::Config::guest(), &cpus, &meminfo, &mut std::io::stdout());
    if summary.failed == 0 && summary.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Guest behaviour a hypervisor must survive: accesses to guest-physical
/// space through `/dev/mem`.
mod misbehave {
    use std::process::ExitCode;

    /// Guest-physical page with neither RAM nor a device on Sinter's guest
    /// machine (below the I/O APIC at 0xFEC0_0000), and free for `/dev/mem`
    /// under Debian's `CONFIG_IO_STRICT_DEVMEM` since no driver claims it.
    pub const UNBACKED_GPA: u64 = 0xFEB0_0000;

    pub fn run(what: &str) -> ExitCode {
        let page = match map_page(UNBACKED_GPA) {
            Ok(page) => page,
            Err(why) => {
                println!("workload: misbehave: cannot map {UNBACKED_GPA:#x} from /dev/mem: {why}");
                return ExitCode::FAILURE;
            }
        };
        match what {
            "unbacked-mmio" => {
                println!("workload: misbehave: reading unbacked guest-physical {UNBACKED_GPA:#x}");
                drain_console();
                // SAFETY: `page` maps one readable page; a volatile read of
                // its first aligned u32 is what the test is about.
                let value = unsafe { std::ptr::read_volatile(page.cast::<u32>()) };
                println!("workload: misbehave: read {value:#x}; the hypervisor let the guest go on");
            }
            "unsupported-mmio" => {
                // SAFETY: as above.
                let value = unsafe { std::ptr::read_volatile(page.cast::<u32>()) };
                println!("workload: misbehave: plain read of {UNBACKED_GPA:#x} gave {value:#x}");
                println!("workload: misbehave: 16-byte SSE load (movdqu) from {UNBACKED_GPA:#x}");
                drain_console();
                let low: u64;
                // SAFETY: reads 16 bytes of the mapped page into xmm0 (declared
                // clobbered) and copies its low half out; no memory is written.
                unsafe {
                    core::arch::asm!(
                        "movdqu xmm0, [{p}]",
                        "movq {low}, xmm0",
                        p = in(reg) page,
                        low = out(reg) low,
                        out("xmm0") _,
                        options(nostack, readonly),
                    )
                };
                println!("workload: misbehave: movdqu gave {low:#x}; the hypervisor let the guest go on");
            }
            other => {
                println!("workload: misbehave: unknown WORKLOAD_MISBEHAVE={other:?}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    }

    /// Waits until the console has sent what was printed: the access that
    /// follows may stop the machine before the UART would.
    fn drain_console() {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: tcdrain on fd 1 only waits; an error (not a tty) is harmless.
        unsafe { libc::tcdrain(1) };
    }

    fn map_page(gpa: u64) -> Result<*mut u8, std::io::Error> {
        let path = c"/dev/mem";
        // SAFETY: `path` is a NUL-terminated C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_SYNC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let offset = libc::off_t::try_from(gpa).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh shared mapping of one page of /dev/mem chosen by
        // the kernel (null hint); it aliases no Rust object.
        let page = unsafe {
            libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, offset)
        };
        if page == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(page.cast())
    }
}
