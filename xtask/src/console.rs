//! Node consoles: each QEMU's serial output, split into lines, cleaned of
//! terminal escape sequences, kept for assertions (each with the host time
//! it was read at, for boot timings) and echoed with a `[node k]` prefix.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines a node has printed so far, shared between the reader thread and
/// whoever waits on them.
#[derive(Clone, Default)]
pub struct ConsoleLog {
    inner: Arc<(Mutex<Lines>, Condvar)>,
}

#[derive(Default)]
struct Lines {
    text: Vec<String>,
    /// When each line was pushed (read from QEMU), same index as `text`.
    at: Vec<Instant>,
}

impl ConsoleLog {
    pub fn push(&self, line: String) {
        let (lines, changed) = &*self.inner;
        let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.text.push(line);
        lines.at.push(Instant::now());
        changed.notify_all();
    }

    pub fn lines(&self) -> Vec<String> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner()).text.clone()
    }

    /// Every line with the host time it arrived at.
    pub fn timed_lines(&self) -> Vec<(Instant, String)> {
        let lines = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.at.iter().copied().zip(lines.text.iter().cloned()).collect()
    }

    /// When the first line satisfying `pred` arrived, if one has.
    pub fn first_at(&self, pred: impl Fn(&str) -> bool) -> Option<Instant> {
        let lines = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.text.iter().position(|l| pred(l)).map(|i| lines.at[i])
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until a line satisfies `pred`; returns it, or `None` on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, changed) = &*self.inner;
        let mut guard = lines.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(line) = guard.text.iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = changed.wait_timeout(guard, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// Removes ANSI/VT100 escape sequences and carriage returns (OVMF paints its
/// text console with them).
pub fn strip_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // CSI: parameters then one final byte in @..~
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// QEMU's warnings that TCG lacks some of the EPYC model's features: expected
/// on every boot (DESIGN.md §6), kept in the log but not echoed.
pub fn is_noise(line: &str) -> bool {
    line.contains("TCG doesn't support requested feature")
}

/// Turns a cleaned console line into another one (`None`: keep it), e.g.
/// the backtrace symbolizer (`crate::symbolize`).
pub type LineRewriter = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads `source` line by line into `log`, echoing to stdout when `echo`.
pub fn spawn_reader(source: impl Read + Send + 'static, prefix: String, log: ConsoleLog, echo: bool) -> JoinHandle<()> {
    spawn_reader_rewriting(source, prefix, log, echo, None)
}

/// As [`spawn_reader`], passing every line through `rewrite` before it is
/// echoed and logged.
pub fn spawn_reader_rewriting(
    source: impl Read + Send + 'static,
    prefix: String,
    log: ConsoleLog,
    echo: bool,
    rewrite: Option<LineRewriter>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_escapes(&String::from_utf8_lossy(&raw));
            let line = line.trim_end().to_string();
            if line.trim().is_empty() {
                continue;
            }
            let line = rewrite.as_ref().and_then(|rewrite| rewrite(&line)).unwrap_or(line);
            if echo && !is_noise(&line) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{prefix} {line}");
            }
            log.push(line);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_and_carriage_returns() {
        assert_eq!(strip_escapes("\u{1b}[2J\u{1b}[01;01Hbanner: node=0\r"), "banner: node=0");
        assert_eq!(strip_escapes("a\u{1b}[0m\u{1b}[1;37mb"), "ab");
        assert_eq!(strip_escapes("plain"), "plain");
    }

    #[test]
    fn wait_for_sees_lines_from_another_thread() {
        let log = ConsoleLog::default();
        let writer = log.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.push("hello node".into());
        });
        assert_eq!(log.wait_for(Duration::from_secs(5), |l| l.contains("node")).as_deref(), Some("hello node"));
        assert!(log.wait_for(Duration::from_millis(10), |l| l.contains("absent")).is_none());
        t.join().unwrap();
    }

    #[test]
    fn lines_keep_their_arrival_times() {
        let log = ConsoleLog::default();
        let before = Instant::now();
        log.push("first".into());
        std::thread::sleep(Duration::from_millis(5));
        log.push("second".into());
        let timed = log.timed_lines();
        assert_eq!(timed.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(), ["first", "second"]);
        assert!(before <= timed[0].0 && timed[0].0 < timed[1].0);
        assert_eq!(log.first_at(|l| l == "second"), Some(timed[1].0));
        assert_eq!(log.first_at(|l| l == "third"), None);
    }

    #[test]
    fn reader_applies_the_rewriter() {
        let log = ConsoleLog::default();
        let rewrite: LineRewriter =
            std::sync::Arc::new(|line: &str| line.strip_prefix("raw ").map(|r| format!("named {r}")));
        let input = b"raw 0x10\r\nplain\n".to_vec();
        spawn_reader_rewriting(std::io::Cursor::new(input), "[node 0]".into(), log.clone(), false, Some(rewrite))
            .join()
            .unwrap();
        assert_eq!(log.lines(), vec!["named 0x10", "plain"]);
    }

    #[test]
    fn reader_splits_and_cleans() {
        let log = ConsoleLog::default();
        let input = b"\x1b[2Jfirst\r\n\r\nsecond\n".to_vec();
        spawn_reader(std::io::Cursor::new(input), "[node 0]".into(), log.clone(), false).join().unwrap();
        assert_eq!(log.lines(), vec!["first", "second"]);
    }
}
