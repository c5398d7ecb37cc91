//! stderr, as CloudWatch would show the function's log stream: its output between START, END
//! and REPORT lines, and the summary of a run.

use std::io::Write;

use std::time::SystemTime;

use serde_json::json;

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
}

impl Console<'_> {
    pub fn new(reporter: &Reporter, verbosity: Verbosity, emulated: bool) -> Console<'_> {
        Console {
            reporter,
            lambda_lines: verbosity != Verbosity::Quiet,
            emulated,
            json: false,
        }
    }

    /// Lambda's lines as the JSON log format writes them.
    pub fn json(self, json: bool) -> Self {
        Console { json, ..self }
    }

    /// One of Lambda's own lines in the JSON log format.
    fn platform(&self, kind: &str, record: serde_json::Value) {
        let line = json!({
            "time": rfc3339_millis(SystemTime::now()),
            "type": kind,
            "record": record,
        });
        self.line(line.to_string().as_bytes());
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
        if self.json {
            self.platform(PLATFORM_REPORT, report_record(record, memory_mb));
            return;
        }
        self.line(format!("END RequestId: {}", record.request_id).as_bytes());
        self.line(record.report_line(memory_mb, self.emulated).as_bytes());
    }
}

/// REPORT's fields as `platform.report`'s record.
fn report_record(record: &Record, memory_mb: u32) -> serde_json::Value {
    let millis = |d: std::time::Duration| (d.as_secs_f64() * 100_000.0).round() / 100.0;
    let mut metrics = json!({
        "durationMs": millis(record.duration),
        "memorySizeMB": memory_mb,
    });
    if let Some(kib) = record.max_memory_kib {
        metrics["maxMemoryUsedMB"] = json!(record::mb_of_kib(kib));
    }
    if let Some(init) = record.init_duration {
        metrics["initDurationMs"] = json!(millis(init));
    }
    let mut fields = json!({
        "requestId": record.request_id,
        "metrics": metrics,
        "status": "success",
    });
    match &record.status {
        None => {}
        Some(Status::Timeout) => fields["status"] = json!("timeout"),
        Some(Status::Error(error_type)) => {
            fields["status"] = json!("error");
            fields["errorType"] = json!(error_type);
        }
    }
    fields
}

impl Log for Console<'_> {
    fn start(&self, request_id: &str) {
        if self.lambda_lines && self.json {
            self.platform(
                PLATFORM_START,
                json!({"requestId": request_id, "version": LATEST_VERSION}),
            );
        } else if self.lambda_lines {
            self.line(
                format!("START RequestId: {request_id} Version: {LATEST_VERSION}").as_bytes(),
            );
        }
    }

    fn output(&self, line: &[u8]) {
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
        assert_eq!(
            report_record(&record, 128),
            json!({
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
        let failed = report_record(&record, 128);
        assert_eq!(
            (&failed["status"], &failed["errorType"]),
            (&json!("error"), &json!("Runtime.ExitError"))
        );
        record.status = Some(Status::Timeout);
        assert_eq!(report_record(&record, 128)["status"], "timeout");
    }
}
