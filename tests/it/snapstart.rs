//! `--snap-start`: SnapStart's lifecycle through `invoke` and `serve`, with the `snapstart`
//! fixture, whose before-snapshot and after-restore hooks (lambda_runtime's
//! `SnapStartResource`) print a line each and whose invocations answer the initialization type
//! and how many hooks ran.

use crate::invoke::{assert_exit, build_zip, invoke, payloads, reports};
use crate::serve::Served;
use crate::support::stderr;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const BEFORE: &str = "snapstart: before snapshot";
const AFTER: &str = "snapstart: after restore";

fn snapstart_zip() -> &'static str {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("snapstart", "x86_64"))
        .to_str()
        .unwrap()
}

/// Where `text` first appears in `err`, which must hold it.
fn at(err: &str, text: &str) -> usize {
    err.find(text)
        .unwrap_or_else(|| panic!("no {text:?} in:\n{err}"))
}

#[test]
fn snap_start_runs_the_hooks_around_the_restore_then_the_events() {
    let output = invoke(&[snapstart_zip(), "--snap-start", "-d", r#"{"n":1}{"n":2}"#]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    // Before-snapshot hook, restore, after-restore hook, then the first event.
    assert!(at(&err, BEFORE) < at(&err, AFTER), "{err}");
    assert!(at(&err, AFTER) < at(&err, "START RequestId"), "{err}");
    assert_eq!(err.matches(BEFORE).count(), 1, "{err}");
    assert_eq!(err.matches(AFTER).count(), 1, "{err}");
    let answers = payloads(&output);
    assert_eq!(answers.len(), 2, "{err}");
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer["initialization_type"], "snap-start", "{answer}");
        assert_eq!(answer["hooks"], 2, "{answer}");
        assert_eq!(answer["event"]["n"], n + 1, "{answer}");
    }
    // The first REPORT says how long the restore took, not the init (done at publishing).
    let reports = reports(&output);
    assert!(
        reports[0]
            .iter()
            .any(|f| f.starts_with("Restore Duration: ")),
        "{reports:?}"
    );
    assert!(
        !reports
            .iter()
            .flatten()
            .any(|f| f.starts_with("Init Duration")),
        "{reports:?}"
    );
    assert!(
        !reports[1].iter().any(|f| f.starts_with("Restore Duration")),
        "{reports:?}"
    );
    assert!(!err.contains("restore/next"), "no warning: {err}");
}

#[test]
fn without_the_flag_no_hook_runs() {
    let output = invoke(&[snapstart_zip(), "-d", r#"{"n":1}"#]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert!(!err.contains(BEFORE) && !err.contains(AFTER), "{err}");
    let answers = payloads(&output);
    assert_eq!(answers[0]["initialization_type"], "on-demand");
    assert_eq!(answers[0]["hooks"], 0);
    let reports = reports(&output);
    assert!(
        reports[0].iter().any(|f| f.starts_with("Init Duration: ")),
        "{reports:?}"
    );
    assert!(!err.contains("Restore Duration"), "{err}");
}

#[test]
fn a_failing_after_restore_hook_fails_the_invoke_as_lambda_does() {
    let output = invoke(&[
        snapstart_zip(),
        "--snap-start",
        "-e",
        "FAIL_RESTORE=1",
        "-d",
        "{}",
    ]);
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(err.contains(BEFORE) && !err.contains(AFTER), "{err}");
    let answers = payloads(&output);
    assert_eq!(answers[0]["errorType"], "SnapStartException", "{err}");
    assert!(
        answers[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("afterRestore()"),
        "{err}"
    );
    // The runtime's own report, posted to restore/error, is in the output.
    assert!(err.contains("restore error"), "{err}");
    assert!(
        err.contains("the connection pool could not reconnect"),
        "{err}"
    );
}

/// A runtime that knows nothing of SnapStart (bash over /dev/tcp, as lambda_runtime before 1.5)
/// asks for events without calling `restore/next`: the output says what Lambda would need.
#[test]
fn a_runtime_that_never_calls_restore_next_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::fs::write(
        &bootstrap,
        [
            crate::invoke::BASH_RUNTIME,
            r#"event=$(req GET /2018-06-01/runtime/invocation/next)
id=$(printf '%s\n' "$event" | grep -i '^lambda-runtime-aws-request-id:' | cut -d' ' -f2 | tr -d '\r')
req POST /2018-06-01/runtime/invocation/$id/response '{"from":"bash"}' >/dev/null
req GET /2018-06-01/runtime/invocation/next >/dev/null
"#,
        ]
        .concat(),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();

    let output = invoke(&[bootstrap.to_str().unwrap(), "--snap-start", "-d", "{}"]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert!(err.contains("without calling `restore/next`"), "{err}");
    assert!(
        err.contains(r#"com.amazonaws.lambda.feature.snapstart="Allow""#),
        "{err}"
    );
    // No restore happened: the REPORT line has the init's duration.
    assert!(err.contains("Init Duration: "), "{err}");
}

/// lambda_runtime 1.5 calls `restore/next` under SnapStart with no hooks registered too: no
/// warning for it.
#[test]
fn a_lambda_runtime_without_hooks_restores_quietly() {
    let echo = crate::invoke::echo_zip();
    let output = invoke(&[echo.to_str().unwrap(), "--snap-start", "-d", "{}"]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert!(!err.contains("restore/next"), "{err}");
    assert!(err.contains("Restore Duration: "), "{err}");
}

#[test]
fn serve_snap_start_runs_the_hooks_before_the_first_request() {
    let served = Served::start(Path::new(snapstart_zip()), &["--snap-start"]);
    let answer = served.get("/");
    assert_eq!(answer.status, 200, "{}", served.stderr());
    let err = served.stderr_with("REPORT RequestId");
    assert!(at(&err, BEFORE) < at(&err, AFTER), "{err}");
    assert!(at(&err, AFTER) < at(&err, "START RequestId"), "{err}");
    assert!(err.contains("Restore Duration: "), "{err}");
}
