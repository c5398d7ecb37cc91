//! What an invocation gave, as the REPORT line describes it.

use std::time::Duration;

use super::failure::Failure;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(Vec<u8>),
    /// A streamed response of this many bytes, already passed on as it arrived.
    Streamed(u64),
    Failed(Failure),
}

/// One invocation, as the REPORT line describes it.
#[derive(Debug, Clone)]
pub struct Record {
    pub request_id: String,
    pub outcome: Outcome,
    /// From the event's delivery to the runtime's next `next` (Lambda's `Duration`).
    pub duration: Duration,
    /// Set on a cold start: from the process's start to its first `next`.
    pub init_duration: Option<Duration>,
    /// SnapStart, in its stead: from the restore (`restore/next` answered) to the first `next`,
    /// the after-restore hooks' time.
    pub restore_duration: Option<Duration>,
    /// The process's peak resident memory so far, in KiB.
    pub max_memory_kib: Option<u64>,
    /// `Status: timeout` or `Status: error` with an error type, on the REPORT line.
    pub status: Option<Status>,
    /// Whether START was already written (it is not when the init failed).
    pub started: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Timeout,
    Error(String),
}

impl Record {
    /// The REPORT line, tab-separated as in CloudWatch: `Status` only when the invocation timed
    /// out or the runtime failed, `Init Duration` only on a cold start (`Restore Duration`
    /// instead after a SnapStart restore: the init ran when the version was published). Under qemu-user
    /// (`emulated`) the peak is the emulator's process, qemu's own memory included (about 15
    /// MB): the line says so.
    pub fn report_line(&self, memory_mb: u32, emulated: bool) -> String {
        let mut fields = vec![
            format!("REPORT RequestId: {}", self.request_id),
            format!("Duration: {}", millis(self.duration)),
            format!("Memory Size: {memory_mb} MB"),
        ];
        if let Some(kib) = self.max_memory_kib {
            fields.push(format!(
                "Max Memory Used: {} MB{}",
                mb_of_kib(kib),
                if emulated {
                    " (qemu's own included)"
                } else {
                    ""
                }
            ));
        }
        if let Some(init) = self.init_duration {
            fields.push(format!("Init Duration: {}", millis(init)));
        }
        if let Some(restore) = self.restore_duration {
            fields.push(format!("Restore Duration: {}", millis(restore)));
        }
        match &self.status {
            None => {}
            Some(Status::Timeout) => fields.push("Status: timeout".to_owned()),
            Some(Status::Error(error_type)) => {
                fields.push("Status: error".to_owned());
                fields.push(format!("Error Type: {error_type}"));
            }
        }
        fields.join("\t")
    }
}

/// Lambda reports memory in whole MB (MiB), rounded up.
pub fn mb_of_kib(kib: u64) -> u64 {
    kib.div_ceil(1024)
}

pub fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Where the lines go: the function's output, and START when an invocation begins.
pub trait Log {
    fn start(&self, request_id: &str);
    fn output(&self, line: &[u8]);
    fn warn(&self, message: &str);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cold start's record: 1.234 ms, init 25.5 ms, a peak just over 9 MB.
    pub(crate) fn cold_record() -> Record {
        Record {
            request_id: "id".into(),
            outcome: Outcome::Response(b"{}".to_vec()),
            duration: Duration::from_micros(1_234),
            init_duration: Some(Duration::from_micros(25_500)),
            restore_duration: None,
            max_memory_kib: Some(9 * 1024 + 1),
            status: None,
            started: true,
        }
    }

    #[test]
    fn report_lines_read_like_cloudwatch() {
        let mut record = cold_record();
        assert_eq!(
            record.report_line(128, false),
            "REPORT RequestId: id\tDuration: 1.23 ms\tMemory Size: 128 MB\t\
             Max Memory Used: 10 MB\tInit Duration: 25.50 ms"
        );
        assert!(
            record
                .report_line(128, true)
                .contains("\tMax Memory Used: 10 MB (qemu's own included)\t")
        );
        record.init_duration = None;
        record.restore_duration = Some(Duration::from_micros(3_000));
        assert!(
            record
                .report_line(128, false)
                .ends_with("\tMax Memory Used: 10 MB\tRestore Duration: 3.00 ms")
        );
        record.restore_duration = None;
        record.status = Some(Status::Error("Runtime.ExitError".into()));
        assert!(
            record
                .report_line(128, false)
                .ends_with("\tStatus: error\tError Type: Runtime.ExitError")
        );
        record.status = Some(Status::Timeout);
        assert!(
            record
                .report_line(128, false)
                .ends_with("MB\tStatus: timeout")
        );
    }
}
