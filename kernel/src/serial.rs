//! The console: a 16550 UART on COM1 (I/O port 0x3f8), 115200 8N1.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const LINE_STATUS: u16 = 5;
const TRANSMIT_EMPTY: u8 = 1 << 5;

pub struct Uart {
    base: u16,
}

impl Uart {
    const fn new(base: u16) -> Self {
        Self { base }
    }

    fn out(&self, offset: u16, value: u8) {
        let mut port = Port::<u8>::new(self.base + offset);
        // SAFETY: COM1's registers are the only thing at base..base+8; writing
        // them has no effect on memory.
        unsafe { port.write(value) };
    }

    fn status(&self) -> u8 {
        let mut port = Port::<u8>::new(self.base + LINE_STATUS);
        // SAFETY: reading the line status register has no side effects.
        unsafe { port.read() }
    }

    fn init(&self) {
        self.out(1, 0x00); // no interrupts
        self.out(3, 0x80); // DLAB on
        self.out(0, 0x01); // divisor 1: 115200 baud
        self.out(1, 0x00);
        self.out(3, 0x03); // 8N1, DLAB off
        self.out(2, 0xc7); // FIFO on, cleared
        self.out(4, 0x03); // DTR + RTS
    }

    fn put(&self, byte: u8) {
        // Bounded wait: a missing UART must not hang the node forever.
        for _ in 0..100_000 {
            if self.status() & TRANSMIT_EMPTY != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        self.out(0, byte);
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.put(b'\r');
            }
            self.put(byte);
        }
        Ok(())
    }
}

static CONSOLE: Mutex<Uart> = Mutex::new(Uart::new(COM1));
/// Core holding the console lock, or `NO_OWNER`.
static CONSOLE_OWNER: AtomicUsize = AtomicUsize::new(NO_OWNER);
const NO_OWNER: usize = usize::MAX;

pub fn init() {
    CONSOLE.lock().init();
}

pub fn print(args: fmt::Arguments<'_>) {
    let mut console = CONSOLE.lock();
    CONSOLE_OWNER.store(crate::exec::core_index(), Ordering::Relaxed);
    let _ = console.write_fmt(args);
    CONSOLE_OWNER.store(NO_OWNER, Ordering::Relaxed);
}

/// After a service panicked mid-print on this core, the lock it held would
/// block the console forever; the service is abandoned, so release it.
pub fn release_if_held_by_this_core() {
    if CONSOLE_OWNER.load(Ordering::Relaxed) == crate::exec::core_index() {
        CONSOLE_OWNER.store(NO_OWNER, Ordering::Relaxed);
        // SAFETY: the owner is this core, whose holder (the panicking
        // service) will never run again; no guard for it is used after this.
        unsafe { CONSOLE.force_unlock() };
    }
}

/// For the panic path: writes without taking the console lock, which the
/// panicking code may hold. Output may interleave; it is never lost.
pub fn emergency_writer(f: impl FnOnce(&mut Uart)) {
    let mut uart = Uart::new(COM1);
    f(&mut uart);
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::serial::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::serial::print(format_args!("{}\n", format_args!($($arg)*))) };
}
