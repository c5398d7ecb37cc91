//! Lambda's error payloads: how an invocation fails, and the `errorType` and `errorMessage` a
//! function's caller sees for each, worded as on the real service.

use std::time::Duration;

use crate::lambda::{
    BOOTSTRAP, EXTENSIONS_PATH, MAX_RESPONSE_BYTES, MAX_STREAMED_BYTES, OPT, TASK_ROOT,
};

/// How an invocation ended when it did not return a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The handler returned an error (`POST .../error`).
    Handler,
    /// The runtime reported an init error (`POST /runtime/init/error`).
    InitError,
    /// SnapStart: an after-restore hook failed (`POST /runtime/restore/error`).
    RestoreError,
    /// The process ended before answering (`Runtime.ExitError`).
    Exit,
    /// `Sandbox.Timedout`.
    Timeout,
    /// `Sandbox.Timedout` too, but the process never called the Runtime API: not a runtime.
    NeverAsked,
    /// `Function.ResponseSizeTooLarge`.
    ResponseTooLarge,
    /// `Function.ResponseSizeTooLarge` for a streamed response: cut at Lambda's streaming limit.
    StreamTooLarge,
    /// `Runtime.InvalidEntrypoint`: no `bootstrap`, or not one that can be executed.
    InvalidEntrypoint,
    /// An extension could not start, crashed, or reported an init error (`Extension.*`).
    Extension,
}

/// A failed invocation: the payload Lambda returns (with `X-Amz-Function-Error: Unhandled`), and
/// the `errorType` and `errorMessage` read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub error_type: String,
    pub message: String,
    pub payload: Vec<u8>,
}

impl Failure {
    /// An error Lambda itself reports, in its `{"errorType", "errorMessage"}` shape.
    pub fn lambda(kind: FailureKind, error_type: &str, message: String) -> Failure {
        #[derive(serde::Serialize)]
        struct Shape<'a> {
            #[serde(rename = "errorType")]
            error_type: &'a str,
            #[serde(rename = "errorMessage")]
            error_message: &'a str,
        }
        let payload = serde_json::to_vec(&Shape {
            error_type,
            error_message: &message,
        })
        .unwrap_or_default();
        Failure {
            kind,
            error_type: error_type.to_owned(),
            message,
            payload,
        }
    }

    /// An error the function posted: Lambda passes the payload through as it is; the type comes
    /// from the payload, else from the `Lambda-Runtime-Function-Error-Type` header.
    pub fn posted(kind: FailureKind, payload: Vec<u8>, header_type: Option<&str>) -> Failure {
        #[derive(serde::Deserialize)]
        struct Shape {
            #[serde(rename = "errorType")]
            error_type: Option<String>,
            #[serde(rename = "errorMessage")]
            error_message: Option<String>,
        }
        let shape = serde_json::from_slice::<Shape>(&payload).ok();
        let error_type = shape
            .as_ref()
            .and_then(|s| s.error_type.clone())
            .or_else(|| header_type.map(str::to_owned))
            .unwrap_or_else(|| "Unhandled".to_owned());
        let message = shape
            .and_then(|s| s.error_message)
            .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
        Failure {
            kind,
            error_type,
            message,
            payload,
        }
    }

    pub fn timeout(request_id: &str, timeout: Duration) -> Failure {
        Failure::lambda(
            FailureKind::Timeout,
            "Sandbox.Timedout",
            format!(
                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            ),
        )
    }

    /// A process that never called the Runtime API in the init phase: Lambda answers as for
    /// any timeout (the payload), but what to say is that it is not a Lambda runtime at all (an
    /// HTTP server packaged by mistake), not that it needs longer.
    pub fn never_asked(request_id: &str, timeout: Duration) -> Failure {
        Failure {
            kind: FailureKind::NeverAsked,
            message: format!(
                "the function never asked for an event: it made no request to the Runtime API \
                 (`AWS_LAMBDA_RUNTIME_API`) within Lambda's {} s init phase",
                crate::lambda::INIT_TIMEOUT.as_secs()
            ),
            ..Failure::timeout(request_id, timeout)
        }
    }

    pub fn exit(request_id: &str, status: ExitStatus) -> Failure {
        let error = match status {
            ExitStatus::Code(0) => "Runtime exited without providing a reason".to_owned(),
            status => format!("Runtime exited with error: {status}"),
        };
        Failure::lambda(
            FailureKind::Exit,
            "Runtime.ExitError",
            format!("RequestId: {request_id} Error: {error}"),
        )
    }

    pub fn response_too_large(size: u64) -> Failure {
        Failure::lambda(
            FailureKind::ResponseTooLarge,
            "Function.ResponseSizeTooLarge",
            format!(
                "Response payload size ({size} bytes) exceeded maximum allowed payload size \
                 ({MAX_RESPONSE_BYTES} bytes)."
            ),
        )
    }

    /// A streamed response that went past Lambda's limit for streams: it was cut there, so
    /// its whole size is not known.
    pub fn response_too_large_streamed() -> Failure {
        Failure::lambda(
            FailureKind::StreamTooLarge,
            "Function.ResponseSizeTooLarge",
            format!(
                "Response payload size exceeded maximum allowed payload size \
                 ({MAX_STREAMED_BYTES} bytes) for a streamed response."
            ),
        )
    }

    pub fn no_bootstrap(request_id: &str) -> Failure {
        Failure::lambda(
            FailureKind::InvalidEntrypoint,
            "Runtime.InvalidEntrypoint",
            format!(
                "RequestId: {request_id} Error: Couldn't find valid bootstrap(s): \
                 [{TASK_ROOT}/{BOOTSTRAP} {OPT}/{BOOTSTRAP}]"
            ),
        )
    }

    /// `exec` of `bootstrap` failed with `errno`, worded as Lambda's Go runtime words it
    /// (`fork/exec /var/task/bootstrap: permission denied`).
    pub fn exec_failed(request_id: &str, errno: i32) -> Failure {
        Failure::lambda(
            FailureKind::InvalidEntrypoint,
            "Runtime.InvalidEntrypoint",
            format!(
                "RequestId: {request_id} Error: fork/exec {TASK_ROOT}/{BOOTSTRAP}: {}",
                errno_text(errno)
            ),
        )
    }
}

impl Failure {
    /// `/opt/extensions/<name>` could not be executed.
    pub fn extension_launch(request_id: &str, name: &str, errno: i32) -> Failure {
        Failure::lambda(
            FailureKind::Extension,
            "Extension.LaunchError",
            format!(
                "RequestId: {request_id} Error: fork/exec {EXTENSIONS_PATH}/{name}: {}",
                errno_text(errno)
            ),
        )
    }

    /// An extension's process ended while Lambda needed it.
    pub fn extension_crash(request_id: &str, name: &str, status: ExitStatus) -> Failure {
        Failure::lambda(
            FailureKind::Extension,
            "Extension.Crash",
            format!("RequestId: {request_id} Error: extension {name} exited: {status}"),
        )
    }
}

/// How the process ended, printed as Go's `os.ProcessState` prints it (Lambda's runtime is Go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitStatus::Code(code) => write!(f, "exit status {code}"),
            ExitStatus::Signal(signal) => match signal_name(signal) {
                Some(name) => write!(f, "signal: {name}"),
                None => write!(f, "signal: signal {signal}"),
            },
        }
    }
}

/// Go's names of the signals a crashing function dies of, by Linux's numbers: the function is
/// a Linux process, whatever host the tool was built for.
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        4 => "illegal instruction",
        2 => "interrupt",
        9 => "killed",
        11 => "segmentation fault",
        15 => "terminated",
        5 => "trace/breakpoint trap",
        _ => return None,
    })
}

/// `Permission denied (os error 13)` -> `permission denied`, as Go's syscall errors read.
fn errno_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // errno texts are the host's; invoke runs on Linux only
    #[cfg(unix)]
    #[test]
    fn lambdas_own_errors_read_as_on_the_service() {
        let timeout = Failure::timeout("id-1", Duration::from_secs(3));
        assert_eq!(
            String::from_utf8(timeout.payload).unwrap(),
            r#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: id-1 Error: Task timed out after 3.00 seconds"}"#
        );
        assert_eq!(
            Failure::exit("id", ExitStatus::Code(101)).message,
            "RequestId: id Error: Runtime exited with error: exit status 101"
        );
        assert_eq!(
            Failure::exit("id", ExitStatus::Signal(libc::SIGABRT)).message,
            "RequestId: id Error: Runtime exited with error: signal: aborted"
        );
        assert_eq!(
            Failure::exit("id", ExitStatus::Code(0)).message,
            "RequestId: id Error: Runtime exited without providing a reason"
        );
        assert_eq!(
            Failure::exec_failed("id", libc::EACCES).message,
            "RequestId: id Error: fork/exec /var/task/bootstrap: permission denied"
        );
        assert_eq!(
            Failure::exec_failed("id", libc::ENOEXEC).message,
            "RequestId: id Error: fork/exec /var/task/bootstrap: exec format error"
        );
        let big = Failure::response_too_large(7_000_000);
        assert_eq!(big.error_type, "Function.ResponseSizeTooLarge");
        assert_eq!(
            big.message,
            "Response payload size (7000000 bytes) exceeded maximum allowed payload size \
             (6291556 bytes)."
        );
        let streamed = Failure::response_too_large_streamed();
        assert_eq!(streamed.error_type, "Function.ResponseSizeTooLarge");
        assert_eq!(streamed.kind, FailureKind::StreamTooLarge);
        assert_eq!(
            streamed.message,
            "Response payload size exceeded maximum allowed payload size (209715200 bytes) \
             for a streamed response."
        );
    }

    #[test]
    fn posted_errors_pass_through_and_name_their_type() {
        let body = br#"{"errorType":"EchoError","errorMessage":"echo was asked to fail"}"#;
        let failure = Failure::posted(FailureKind::Handler, body.to_vec(), None);
        assert_eq!(failure.payload, body);
        assert_eq!(failure.error_type, "EchoError");
        assert_eq!(failure.message, "echo was asked to fail");

        let failure = Failure::posted(FailureKind::Handler, b"oops".to_vec(), Some("Custom"));
        assert_eq!(failure.error_type, "Custom");
        assert_eq!(failure.message, "oops");
        let failure = Failure::posted(FailureKind::InitError, Vec::new(), None);
        assert_eq!(failure.error_type, "Unhandled");
    }
}
