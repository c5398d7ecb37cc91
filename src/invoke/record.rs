//! What an invocation gave, as the REPORT line describes it: data that every host compiles,
//! though only a Linux host produces it (see [`super::check_host`]).

use std::time::Duration;

use super::lambda::Failure;

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

/// Where the lines go: the function's output, and START when an invocation begins.
pub trait Log {
    fn start(&self, request_id: &str);
    fn output(&self, line: &[u8]);
    fn warn(&self, message: &str);
}
