//! Where log lines go: stderr, written in batches by a thread of their own.
//!
//! A line is still formatted on the thread that logs it, but it is not written there: it is
//! appended to a shared buffer, and the `switchboard-logs` thread writes what has accumulated
//! every [`FLUSH_EVERY`], or as soon as it passes [`WAKE_AT`]. So a shard serving webhooks makes
//! no system call to log a line (a `write` per line was about 3 % of the server's CPU with
//! wrk playing whole calls, two `info` lines per call), and the lines of a busy second reach
//! stderr in a few dozen writes.
//!
//! Nothing is dropped: when stderr is slower than lines arrive and [`WRITE_AT`] bytes are
//! already waiting, the thread that logs writes the batch itself, so logging slows down the
//! way a direct write would instead of losing lines. Lines keep their order: a batch is taken
//! from the buffer and written while holding the output lock, so batches leave in the order
//! they were taken. [`LogGuard`] writes what is left when it is dropped (at the end of `main`);
//! a process killed with SIGKILL loses at most the last [`FLUSH_EVERY`] of lines.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Buffered bytes that wake the writing thread before its next tick.
pub const WAKE_AT: usize = 64 * 1024;
/// Buffered bytes at which the thread that logs writes the batch itself.
pub const WRITE_AT: usize = 1024 * 1024;

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while a batch is written, so batches reach stderr in the order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    stop: bool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A thread that panicked while appending leaves whole lines behind: keep them.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes everything buffered so far.
    fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = std::mem::take(&mut self.pending().bytes);
        if !batch.is_empty() {
            // stderr gone (closed by the parent): nowhere to report it either.
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }
}

/// The [`tracing_subscriber::fmt::MakeWriter`] that feeds the buffer.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("buffered", &self.shared.pending().bytes.len())
            .finish_non_exhaustive()
    }
}

/// Stops the writing thread and writes what is left when dropped.
#[must_use = "dropping the guard stops the log thread: keep it until the process ends"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard")
            .field("thread", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// The sink for stderr and the guard of its writing thread.
    pub fn stderr() -> (Self, LogGuard) {
        Self::start(Box::new(io::stderr()))
    }

    /// The sink for `out` and the guard of its writing thread. When the thread cannot be
    /// started, lines are written by the threads that log them (and the reason is printed on
    /// stderr).
    pub fn start(out: Box<dyn Write + Send>) -> (Self, LogGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(WAKE_AT),
                stop: false,
            }),
            wake: Condvar::new(),
            out: Mutex::new(out),
        });
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("switchboard-logs".to_owned())
            .spawn(move || write_batches(&writer))
            .map_err(|err| {
                eprintln!("switchboard: log lines are written unbatched ({err})");
                shared.pending().stop = true;
            })
            .ok();
        let guard = LogGuard {
            shared: Arc::clone(&shared),
            thread,
        };
        (Self { shared }, guard)
    }
}

fn write_batches(shared: &Shared) {
    loop {
        let stop = {
            let pending = shared.pending();
            let (pending, _) = shared
                .wake
                .wait_timeout_while(pending, FLUSH_EVERY, |p| !p.stop && p.bytes.len() < WAKE_AT)
                .unwrap_or_else(PoisonError::into_inner);
            pending.stop
        };
        shared.flush();
        if stop {
            return;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.pending().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

/// One event's bytes (tracing-subscriber writes each formatted line with one `write_all`).
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl std::fmt::Debug for LineWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter").finish_non_exhaustive()
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.pending();
        pending.bytes.extend_from_slice(bytes);
        let buffered = pending.bytes.len();
        // Stopped (or never started): nobody else writes.
        let write_now = pending.stop || buffered >= WRITE_AT;
        drop(pending);
        if write_now {
            self.shared.flush();
        } else if buffered >= WAKE_AT && buffered - bytes.len() < WAKE_AT {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

/// Each line's time, in the form tracing-subscriber writes by default
/// (`2026-12-01T22:45:12.123456Z`, UTC, microseconds), with the date and the time of day
/// formatted once a second per thread rather than for every line: tracing-subscriber's own
/// formatting of them was 2,400 instructions a line, 1.6 % of the server's instructions per
/// webhook with wrk playing whole calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timestamp;

thread_local! {
    /// The second last formatted on this thread, and its text up to the seconds.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl Timestamp {
    /// Writes `at` (a time after 1970).
    fn write(at: SystemTime, w: &mut impl std::fmt::Write) -> std::fmt::Result {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        SECOND.with(|second| {
            let mut second = second.borrow_mut();
            if second.0 != secs {
                second.1.clear();
                let day = i64::try_from(secs)
                    .ok()
                    .and_then(|s| chrono::DateTime::<chrono::Utc>::from_timestamp(s, 0))
                    .unwrap_or_default();
                write!(second.1, "{}", day.format("%Y-%m-%dT%H:%M:%S"))?;
                second.0 = secs;
            }
            w.write_str(&second.1)
        })?;
        let micros = since.subsec_micros();
        let mut tail = *b".000000Z";
        let mut rest = micros;
        for digit in tail[1..7].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        // ASCII digits, a dot and a Z.
        w.write_str(std::str::from_utf8(&tail).unwrap_or(".000000Z"))
    }
}

impl FormatTime for Timestamp {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        Self::write(SystemTime::now(), w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn line(sink: &LogSink, text: &str) {
        use tracing_subscriber::fmt::MakeWriter;
        sink.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn timestamps_read_as_tracing_subscribers_own() {
        let text = |at: SystemTime| {
            let mut out = String::new();
            Timestamp::write(at, &mut out).unwrap();
            out
        };
        let at = |secs: u64, micros: u64| {
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
        };
        // 2026-12-01T22:45:12Z, the same second twice (from the cache), the next one, a new day.
        assert_eq!(
            text(at(1_796_165_112, 123_456)),
            "2026-12-01T22:45:12.123456Z"
        );
        assert_eq!(text(at(1_796_165_112, 7)), "2026-12-01T22:45:12.000007Z");
        assert_eq!(
            text(at(1_796_165_113, 999_999)),
            "2026-12-01T22:45:13.999999Z"
        );
        assert_eq!(text(at(1_796_169_600, 0)), "2026-12-02T00:00:00.000000Z");
        assert_eq!(text(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // The shape tracing-subscriber's default timer writes.
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        let ours = text(SystemTime::now());
        assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
        let shape = |t: &str| {
            t.chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect::<String>()
        };
        assert_eq!(shape(&ours), shape(&theirs));
    }

    #[test]
    fn lines_arrive_within_a_tick_without_a_flush() {
        let out = Captured::default();
        let (sink, _guard) = LogSink::start(Box::new(out.clone()));
        line(&sink, "one\n");
        // The writing thread's tick, with room for a slow machine.
        for _ in 0..500 {
            if !out.text().is_empty() {
                break;
            }
            std::thread::sleep(FLUSH_EVERY);
        }
        assert_eq!(out.text(), "one\n");
    }

    #[test]
    fn every_line_of_many_threads_is_written_once_in_each_threads_order() {
        let out = Captured::default();
        let (sink, guard) = LogSink::start(Box::new(out.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                // Long lines, so the buffer passes WAKE_AT and WRITE_AT as well as the tick.
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        line(&sink, &format!("{t} {i:05} {}\n", "x".repeat(t * 300)));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = out.text();
        for t in 0..4 {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|l| l[..5].parse().unwrap())
                .collect();
            assert_eq!(seen, (0..2_000).collect::<Vec<_>>(), "thread {t}");
        }
        assert_eq!(text.lines().count(), 8_000);
    }

    #[test]
    fn after_the_guard_is_dropped_lines_are_written_at_once() {
        let out = Captured::default();
        let (sink, guard) = LogSink::start(Box::new(out.clone()));
        line(&sink, "before\n");
        drop(guard);
        assert_eq!(out.text(), "before\n", "the guard writes what is left");
        line(&sink, "after\n");
        assert_eq!(out.text(), "before\nafter\n");
    }
}
