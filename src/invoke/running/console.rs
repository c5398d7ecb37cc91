//! stderr, as CloudWatch would show the function's log stream: its output between START, END
//! and REPORT lines, and the summary of a run.

use std::cell::RefCell;
use std::io::Write;

use crate::env::Verbosity;
use crate::invoke::Outcomes;
use crate::invoke::record::{self, Log, Record};
use crate::lambda::LATEST_VERSION;
use crate::report::Reporter;

pub struct Console<'a> {
    reporter: &'a Reporter,
    /// START / END / REPORT, left out with `-q`.
    lambda_lines: bool,
    /// The function runs under qemu-user, whose memory its peak includes.
    emulated: bool,
    /// The log lines of the invocation being captured (the Invoke API's `X-Amz-Log-Type:
    /// Tail`), START to REPORT, whatever `-q` leaves out.
    captured: RefCell<Option<Vec<u8>>>,
}

impl Console<'_> {
    pub fn new(reporter: &Reporter, verbosity: Verbosity, emulated: bool) -> Console<'_> {
        Console {
            reporter,
            lambda_lines: verbosity != Verbosity::Quiet,
            emulated,
            captured: RefCell::new(None),
        }
    }

    /// Keeps the log lines from now on, until [`Console::captured`].
    pub fn capture(&self) {
        *self.captured.borrow_mut() = Some(Vec::new());
    }

    /// The lines kept since [`Console::capture`], with `record`'s END and REPORT, which
    /// [`Console::end`] prints after.
    pub fn captured(&self, record: &Record, memory_mb: u32) -> Vec<u8> {
        let mut log = self.captured.borrow_mut().take().unwrap_or_default();
        for line in self.closing_lines(record, memory_mb) {
            log.extend_from_slice(line.as_bytes());
            log.push(b'\n');
        }
        log
    }

    fn keep(&self, line: &[u8]) {
        if let Some(log) = self.captured.borrow_mut().as_mut() {
            log.extend_from_slice(line);
            log.push(b'\n');
        }
    }

    fn closing_lines(&self, record: &Record, memory_mb: u32) -> [String; 2] {
        [
            format!("END RequestId: {}", record.request_id),
            record.report_line(memory_mb, self.emulated),
        ]
    }

    pub fn line(&self, line: &[u8]) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line);
        let _ = stderr.write_all(b"\n");
    }

    /// END and REPORT, and START first when the init failed before it was written.
    pub fn end(&self, record: &Record, memory_mb: u32) {
        if !self.lambda_lines {
            return;
        }
        if !record.started {
            self.start(&record.request_id);
        }
        for line in self.closing_lines(record, memory_mb) {
            self.line(line.as_bytes());
        }
    }
}

impl Log for Console<'_> {
    fn start(&self, request_id: &str) {
        let start = format!("START RequestId: {request_id} Version: {LATEST_VERSION}");
        self.keep(start.as_bytes());
        if self.lambda_lines {
            self.line(start.as_bytes());
        }
    }

    fn output(&self, line: &[u8]) {
        self.keep(line);
        self.line(line);
    }

    fn warn(&self, message: &str) {
        self.reporter.warn(message);
    }
}

/// `Finished N invocations, M failed: init ..., peak memory ...`, and a warning when the peak
/// is over the function's memory (Lambda would have stopped it).
pub fn report_summary(summary: &Outcomes, reporter: &Reporter, emulated: bool) {
    let total = summary.records.len();
    let failed = summary.failures().count();
    let peak_mb = summary
        .records
        .iter()
        .filter_map(|r| r.max_memory_kib)
        .max()
        .map(record::mb_of_kib);
    let init = summary
        .records
        .iter()
        .find_map(|r| r.init_duration)
        .map(|d| format!("init {}, ", record::millis(d)))
        .unwrap_or_default();
    let peak = peak_mb
        .map(|mb| format!("peak memory {mb} MB of {} MB", summary.memory_mb))
        .unwrap_or_else(|| "peak memory unknown".to_owned());
    reporter.status(
        "Finished",
        format!(
            "{total} invocation{}, {failed} failed: {init}{peak}",
            if total == 1 { "" } else { "s" }
        ),
    );
    if let Some(peak_mb) = peak_mb.filter(|mb| *mb > u64::from(summary.memory_mb)) {
        reporter.warn(format!(
            "the function used up to {peak_mb} MB, more than its {} MB: on Lambda it would be \
             stopped with Runtime.OutOfMemory; raise `--memory`{}",
            summary.memory_mb,
            if emulated {
                " (under qemu the peak includes the emulator's own memory)"
            } else {
                ""
            }
        ));
    }
}
