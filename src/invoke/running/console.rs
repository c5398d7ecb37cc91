//! stderr, as CloudWatch would show the function's log stream: its output between START, END
//! and REPORT lines, and the summary of a run.

use std::cell::RefCell;
use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;

use super::telemetry::rfc3339_millis;
use crate::env::Verbosity;
use crate::invoke::Outcomes;
use crate::invoke::record::{self, Log, Record, Status};
use crate::lambda::{LATEST_VERSION, PLATFORM_REPORT, PLATFORM_START};
use crate::report::Reporter;

pub struct Console<'a> {
    reporter: &'a Reporter,
    /// START / END / REPORT, left out with `-q`.
    lambda_lines: bool,
    /// The function runs under qemu-user, whose memory its peak includes.
    emulated: bool,
    /// The JSON log format: Lambda's lines are `platform.*` objects (see `lambda::PLATFORM_START`).
    json: bool,
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
            json: false,
            captured: RefCell::new(None),
        }
    }

    /// Lambda's lines as the JSON log format writes them.
    pub fn json(self, json: bool) -> Self {
        Console { json, ..self }
    }

    /// One of Lambda's own lines in the JSON log format.
    fn platform(kind: &str, record: impl Serialize) -> String {
        let line = Platform {
            time: rfc3339_millis(SystemTime::now()),
            kind,
            record,
        };
        serde_json::to_string(&line).unwrap_or_default()
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

    /// END and REPORT, or `platform.report` in the JSON log format.
    fn closing_lines(&self, record: &Record, memory_mb: u32) -> Vec<String> {
        if self.json {
            return vec![Self::platform(
                PLATFORM_REPORT,
                report_record(record, memory_mb),
            )];
        }
        vec![
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

/// A line of Lambda's in the JSON log format, its fields in Lambda's order.
#[derive(Serialize)]
struct Platform<'a, R> {
    time: String,
    #[serde(rename = "type")]
    kind: &'a str,
    record: R,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartRecord<'a> {
    request_id: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportRecord<'a> {
    request_id: &'a str,
    metrics: Metrics,
    /// `success`, `error` or `timeout`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
}

#[derive(Serialize)]
struct Metrics {
    #[serde(rename = "durationMs")]
    duration_ms: f64,
    #[serde(rename = "memorySizeMB")]
    memory_size_mb: u32,
    #[serde(rename = "maxMemoryUsedMB", skip_serializing_if = "Option::is_none")]
    max_memory_used_mb: Option<u64>,
    #[serde(rename = "initDurationMs", skip_serializing_if = "Option::is_none")]
    init_duration_ms: Option<f64>,
    #[serde(rename = "restoreDurationMs", skip_serializing_if = "Option::is_none")]
    restore_duration_ms: Option<f64>,
}

/// REPORT's fields as `platform.report`'s record, in milliseconds to two places as REPORT has
/// them.
fn report_record(record: &Record, memory_mb: u32) -> ReportRecord<'_> {
    let millis = |d: std::time::Duration| (d.as_secs_f64() * 100_000.0).round() / 100.0;
    let (status, error_type) = match &record.status {
        None => ("success", None),
        Some(Status::Timeout) => ("timeout", None),
        Some(Status::Error(error_type)) => ("error", Some(error_type.as_str())),
    };
    ReportRecord {
        request_id: &record.request_id,
        metrics: Metrics {
            duration_ms: millis(record.duration),
            memory_size_mb: memory_mb,
            max_memory_used_mb: record.max_memory_kib.map(record::mb_of_kib),
            init_duration_ms: record.init_duration.map(millis),
            restore_duration_ms: record.restore_duration.map(millis),
        },
        status,
        error_type,
    }
}

impl Log for Console<'_> {
    fn start(&self, request_id: &str) {
        let start = if self.json {
            let record = StartRecord {
                request_id,
                version: LATEST_VERSION,
            };
            Self::platform(PLATFORM_START, record)
        } else {
            format!("START RequestId: {request_id} Version: {LATEST_VERSION}")
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_records_are_lambdas_platform_report() {
        let mut record = crate::invoke::record::tests::cold_record();
        let report = |record: &Record| serde_json::to_value(report_record(record, 128)).unwrap();
        assert_eq!(
            serde_json::to_string(&report_record(&record, 128)).unwrap(),
            "{\"requestId\":\"id\",\"metrics\":{\"durationMs\":1.23,\"memorySizeMB\":128,\
             \"maxMemoryUsedMB\":10,\"initDurationMs\":25.5},\"status\":\"success\"}",
            "Lambda's order"
        );
        assert_eq!(
            report(&record),
            serde_json::json!({
                "requestId": "id",
                "metrics": {
                    "durationMs": 1.23,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 10,
                    "initDurationMs": 25.5,
                },
                "status": "success",
            })
        );
        record.status = Some(Status::Error("Runtime.ExitError".into()));
        let failed = report(&record);
        assert_eq!(
            (&failed["status"], &failed["errorType"]),
            (
                &serde_json::json!("error"),
                &serde_json::json!("Runtime.ExitError")
            )
        );
        record.status = Some(Status::Timeout);
        assert_eq!(report(&record)["status"], "timeout");
    }
}
