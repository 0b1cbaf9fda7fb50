//! defmt logging on COM2 (I/O port 0x2f8), its own port so binary frames
//! never mix with the text console on COM1. `xtask` decodes the stream
//! against the kernel ELF. Frames are rzCOBS-encoded, so a reader can join
//! the stream at any frame boundary.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::port::Port;

const COM2: u16 = 0x2f8;

struct DefmtPort {
    encoder: defmt::Encoder,
}

static LOCKED: AtomicBool = AtomicBool::new(false);
static mut PORT: DefmtPort = DefmtPort { encoder: defmt::Encoder::new() };

fn com2_out(offset: u16, value: u8) {
    let mut port = Port::<u8>::new(COM2 + offset);
    // SAFETY: COM2's registers; writing them has no memory effects.
    unsafe { port.write(value) };
}

fn com2_write(bytes: &[u8]) {
    for &byte in bytes {
        let mut status = Port::<u8>::new(COM2 + 5);
        for _ in 0..100_000 {
            // SAFETY: reading the line status register has no side effects.
            if unsafe { status.read() } & (1 << 5) != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        com2_out(0, byte);
    }
}

/// Written once when the kernel takes COM2 over. UEFI firmware mirrors its
/// text console to every serial port, so the host decodes only what follows
/// this marker; the zero bytes also end any partial rzCOBS frame.
pub const STREAM_START: &[u8] = b"\0\0SINTER-DEFMT-START\0";

pub fn init() {
    com2_out(1, 0x00);
    com2_out(3, 0x80);
    com2_out(0, 0x01);
    com2_out(1, 0x00);
    com2_out(3, 0x03);
    com2_out(2, 0xc7);
    com2_out(4, 0x03);
    com2_write(STREAM_START);
}

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release form a spin lock around the single encoder, so
// frames from different cores never interleave, and `write` is only called
// by defmt between the two.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        while LOCKED.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            core::hint::spin_loop();
        }
        let port = core::ptr::addr_of_mut!(PORT);
        // SAFETY: the lock above gives this core exclusive use of PORT.
        unsafe { (*port).encoder.start_frame(com2_write) };
    }

    unsafe fn flush() {}

    unsafe fn release() {
        let port = core::ptr::addr_of_mut!(PORT);
        // SAFETY: defmt calls release only after acquire on this core.
        unsafe { (*port).encoder.end_frame(com2_write) };
        LOCKED.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        let port = core::ptr::addr_of_mut!(PORT);
        // SAFETY: defmt calls write only between acquire and release.
        unsafe { (*port).encoder.write(bytes, com2_write) };
    }
}

defmt::timestamp!("tsc={=u64}", {
    // SAFETY: rdtsc has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
});
