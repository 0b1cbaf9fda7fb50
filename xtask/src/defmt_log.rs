//! Decoding a node's defmt stream (COM2, written by QEMU to a file) against
//! the kernel ELF it was built into.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use defmt_decoder::{DecodeError, Table};

use crate::console::ConsoleLog;

/// The kernel's `log::STREAM_START`: defmt frames follow it; bytes before
/// it are the firmware's own text console mirrored to COM2.
pub const STREAM_START: &[u8] = b"\0\0SINTER-DEFMT-START\0";

/// Splits `pending` at the start marker: `Some(rest)` once it is found.
pub fn after_start_marker(pending: &[u8]) -> Option<&[u8]> {
    pending.windows(STREAM_START.len()).position(|w| w == STREAM_START).map(|at| &pending[at + STREAM_START.len()..])
}

/// Follows `stream` (a file QEMU appends to) until `stop` is set and the
/// file is drained; every decoded frame becomes a line `LEVEL message` in
/// `log`, echoed with `prefix` when `echo`.
pub fn spawn_reader(
    stream: PathBuf,
    kernel_elf: PathBuf,
    prefix: String,
    log: ConsoleLog,
    echo: bool,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let emit = |line: String| {
            if echo {
                println!("{prefix} {line}");
            }
            log.push(line);
        };
        let elf = match std::fs::read(&kernel_elf) {
            Ok(elf) => elf,
            Err(e) => return emit(format!("defmt: cannot read {}: {e}", kernel_elf.display())),
        };
        let table = match Table::parse(&elf) {
            Ok(Some(table)) => table,
            Ok(None) => return emit("defmt: the kernel has no .defmt section".into()),
            Err(e) => return emit(format!("defmt: bad table in {}: {e}", kernel_elf.display())),
        };
        let mut decoder = table.new_stream_decoder();
        let mut before_start: Option<Vec<u8>> = Some(Vec::new());
        let mut file = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if file.is_none() {
                file = std::fs::File::open(&stream).ok();
            }
            let read = file.as_mut().map(|f| f.read(&mut buf).unwrap_or(0)).unwrap_or(0);
            if read == 0 {
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            match before_start.as_mut() {
                Some(pending) => {
                    pending.extend_from_slice(&buf[..read]);
                    let Some(rest) = after_start_marker(pending) else { continue };
                    decoder.received(rest);
                    before_start = None;
                }
                None => decoder.received(&buf[..read]),
            }
            loop {
                match decoder.decode() {
                    Ok(frame) => {
                        let level = frame.level().map(|l| l.as_str().to_uppercase()).unwrap_or_else(|| "PRINT".into());
                        emit(format!("{level} {}", frame.display_message()));
                    }
                    Err(DecodeError::UnexpectedEof) => break,
                    Err(DecodeError::Malformed) => emit("defmt: malformed frame skipped".into()),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_marker_splits_firmware_text_from_frames() {
        let mut stream = b"\x1b[2JBdsDxe: loading\r\n".to_vec();
        assert_eq!(after_start_marker(&stream), None);
        stream.extend_from_slice(STREAM_START);
        stream.extend_from_slice(&[1, 2, 3]);
        assert_eq!(after_start_marker(&stream), Some(&[1u8, 2, 3][..]));
    }
}
