//! `cargo lambda-build invoke` on real zips: the fixtures `echo` and `misbehave` are built once
//! per test run (into the shared fixture target dir) and run through every way an invocation
//! can end, checked against Lambda's payloads and, for the function's own answers, against
//! cargo-lambda's independent Runtime API emulator.

use crate::support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{assert_stderr_has, stderr, stdout};

/// Where the zips of this run live: one directory per fixture and architecture.
fn zips_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("invoke-zips")
}

/// Builds `fixture` for `arch` with the tool itself (`--zip --locked --arch`), once per test
/// run, and returns its lambda.zip. Panics with the tool's output when the build fails.
pub(crate) fn build_zip(fixture: &str, arch: &str) -> PathBuf {
    build_zip_with(fixture, arch, &[])
}

/// [`build_zip`] with more flags (`--extension`).
pub(crate) fn build_zip_with(fixture: &str, arch: &str, flags: &[&str]) -> PathBuf {
    let source = support::copy_fixture(fixture);
    let outdir = zips_dir().join(format!("{fixture}-{arch}"));
    let output = support::tool()
        .args(flags)
        .args(["--zip", "--locked", "--arch", arch, "-o"])
        .arg(&outdir)
        .current_dir(source.path())
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .output()
        .expect("run cargo-lambda-build");
    support::assert_ran(&format!("building {fixture} for {arch}"), &output);
    outdir.join("lambda.zip")
}

pub(crate) fn echo_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("echo", "x86_64"))
}

pub fn misbehave_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("misbehave", "x86_64"))
}

/// misbehave for arm64, `None` (the test skips) without qemu-user or the cross gcc.
fn misbehave_arm64_zip() -> Option<&'static Path> {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    if !support::require_tools(&[support::QEMU[0], "aarch64-linux-gnu-gcc"]) {
        return None;
    }
    Some(ZIP.get_or_init(|| build_zip("misbehave", "arm64")))
}

/// `invoke` of the misbehave fixture (with `GREETING=hi`), these events on stdin.
fn misbehave_with(events: &[u8]) -> Output {
    invoke_with_stdin(&[zip_arg(misbehave_zip()), "-e", "GREETING=hi"], events)
}

/// `cargo lambda-build invoke ARGS` with `stdin` as its standard input, in a scratch directory.
pub fn invoke_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    invoke_with_pid(args, stdin).0
}

/// [`invoke_with_stdin`], and the run's pid (its containers are named after it).
pub fn invoke_with_pid(args: &[&str], stdin: &[u8]) -> (Output, u32) {
    let mut child = support::tool()
        .arg("invoke")
        .args(args)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        // Must not reach the function: nothing of this environment is inherited.
        .env("INVOKE_TEST_SENTINEL", "leaked")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargo-lambda-build invoke");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

pub fn invoke(args: &[&str]) -> Output {
    invoke_with_stdin(args, b"")
}

/// stdout, one JSON payload a line.
pub fn payloads(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", stderr(output)))
        })
        .collect()
}

pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    assert!(
        !stderr(output).contains("RUST_BACKTRACE") || stderr(output).contains("thread 'main'"),
        "the tool itself panicked:\n{}",
        stderr(output)
    );
}

/// The REPORT lines on stderr, each as its tab-separated fields.
pub fn reports(output: &Output) -> Vec<Vec<String>> {
    stderr(output)
        .lines()
        .filter(|line| line.starts_with("REPORT RequestId: "))
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

pub fn zip_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// An error payload in Lambda's shape: exactly `errorType` and `errorMessage`.
fn assert_lambda_error(payload: &Value, error_type: &str, message_part: &str) {
    let object = payload.as_object().expect("an object");
    assert_eq!(object.len(), 2, "{payload}");
    assert_eq!(payload["errorType"], error_type, "{payload}");
    let message = payload["errorMessage"].as_str().unwrap();
    assert!(message.contains(message_part), "{payload}");
}

/// The run failed (exit 1) and its answer to event `index` is that error; all its answers.
fn assert_failed_at(
    output: &Output,
    index: usize,
    error_type: &str,
    message_part: &str,
) -> Vec<Value> {
    assert_exit(output, 1);
    let payloads = payloads(output);
    assert_lambda_error(&payloads[index], error_type, message_part);
    payloads
}

#[test]
fn echo_answers_and_reports_init_duration_and_memory() {
    let output = invoke(&[zip_arg(echo_zip()), "--data", r#"{"name":"x"}"#]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "{\"message\":\"hello, x\"}\n");
    let err = stderr(&output);
    let reports = reports(&output);
    assert_eq!(reports.len(), 1, "{err}");
    let report = &reports[0];
    assert!(report[1].starts_with("Duration: ") && report[1].ends_with(" ms"));
    assert_eq!(report[2], "Memory Size: 128 MB");
    assert!(report[3].starts_with("Max Memory Used: "), "{report:?}");
    assert!(report[4].starts_with("Init Duration: "), "{report:?}");
    let id = report[0].trim_start_matches("REPORT RequestId: ");
    let start = err.find(&format!("START RequestId: {id} Version: $LATEST"));
    let end = err.find(&format!("END RequestId: {id}"));
    assert!(start.is_some() && start < end, "{err}");
    assert!(
        err.contains("Finished 1 invocation, 0 failed: init "),
        "{err}"
    );
}

#[test]
fn a_handler_error_is_the_functions_payload_and_exit_1() {
    let output = invoke(&[zip_arg(echo_zip()), "-d", r#"{"fail":true}"#]);
    assert_exit(&output, 1);
    assert_eq!(
        stdout(&output),
        "{\"errorType\":\"EchoError\",\"errorMessage\":\"echo was asked to fail\"}\n"
    );
    let err = stderr(&output);
    assert!(
        err.contains(
            "error: 1 of 1 invocations failed; the first with EchoError: echo was asked to fail"
        ),
        "{err}"
    );
    assert!(err.contains("\nhelp: "), "{err}");
    // A handler error is not a runtime failure: Lambda's REPORT has no Status for it.
    assert!(!reports(&output)[0].iter().any(|f| f.starts_with("Status")));
}

#[test]
fn several_events_from_a_file_run_in_order_on_one_warm_process() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    fs::write(
        &events,
        "{\"action\":\"count\"}\n{\"action\":\"greet\",\"name\":\"b\"}\n{\"action\":\"count\"}\n",
    )
    .unwrap();
    let output = invoke(&[
        zip_arg(misbehave_zip()),
        "--data-file",
        events.to_str().unwrap(),
        "-e",
        "GREETING=hello",
    ]);
    assert_exit(&output, 0);
    let payloads = payloads(&output);
    assert_eq!(payloads.len(), 3);
    assert_eq!(payloads[0]["count"], 1);
    assert_eq!(payloads[1]["message"], "hello, b");
    assert_eq!(payloads[2]["count"], 3);
    assert_eq!(payloads[0]["pid"], payloads[2]["pid"], "a new process");
    // Only the cold start has an init duration.
    let with_init: Vec<bool> = reports(&output)
        .iter()
        .map(|r| r.iter().any(|f| f.starts_with("Init Duration: ")))
        .collect();
    assert_eq!(with_init, [true, false, false]);
}

#[test]
fn events_on_stdin_and_a_panic_that_the_runtime_survives() {
    let output = misbehave_with(br#"{"action":"count"} {"action":"panic"} {"action":"count"}"#);
    assert_exit(&output, 1);
    let payloads = payloads(&output);
    assert_eq!(payloads.len(), 3);
    // lambda_runtime catches the panic and posts it as the invocation's error.
    assert_eq!(
        payloads[1]["errorMessage"],
        "Lambda panicked: misbehave was asked to panic"
    );
    assert_eq!(payloads[2]["count"], 3);
    assert_eq!(payloads[0]["pid"], payloads[2]["pid"]);
    assert_stderr_has(&output, "misbehave was asked to panic");
}

#[test]
fn a_missing_setting_fails_init_with_runtime_exit_error() {
    let output = invoke(&[zip_arg(misbehave_zip()), "-d", r#"{"action":"count"}"#]);
    let payloads = assert_failed_at(
        &output,
        0,
        "Runtime.ExitError",
        "Error: Runtime exited with error: exit status 1",
    );
    let payload = &payloads[0];
    let err = stderr(&output);
    // The function's own words, and the REPORT's status.
    assert!(err.contains("GREETING is not set"), "{err}");
    let report = &reports(&output)[0];
    assert!(
        report.ends_with(&[
            "Status: error".into(),
            "Error Type: Runtime.ExitError".into()
        ]),
        "{report:?}"
    );
    let id = report[0].trim_start_matches("REPORT RequestId: ");
    let message = payload["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("RequestId: {id} Error: ")),
        "{payload}"
    );
}

#[test]
fn an_init_error_posted_by_the_runtime_is_passed_through() {
    let output = invoke(&[
        zip_arg(misbehave_zip()),
        "-d",
        "{}",
        "-e",
        "GREETING=hi",
        "-e",
        "MISBEHAVE_INIT_ERROR=1",
    ]);
    assert_failed_at(
        &output,
        0,
        "MisbehaveInit",
        "misbehave was asked to fail its init",
    );
    // The Runtime API answered /runtime/init/error with 202, as Lambda does.
    assert_stderr_has(&output, "init/error answered: HTTP/1.1 202");
}

#[test]
fn a_timeout_kills_the_process_and_the_next_event_starts_cold() {
    let zip = misbehave_zip();
    let started = Instant::now();
    let output = invoke_with_stdin(
        &[zip_arg(zip), "-e", "GREETING=hi", "--timeout", "1"],
        br#"{"action":"count"}{"action":"sleep","ms":60000}{"action":"count"}"#,
    );
    let elapsed = started.elapsed();
    let payloads = assert_failed_at(
        &output,
        1,
        "Sandbox.Timedout",
        "Error: Task timed out after 1.00 seconds",
    );
    // Lambda resets the environment after a timeout: a new process, a new count.
    assert_eq!(payloads[2]["count"], 1);
    assert_ne!(payloads[0]["pid"], payloads[2]["pid"]);
    assert!(
        // Far from both: 1 s timeout, 60 s sleep; a loaded CI runner does not blur the two.
        elapsed < Duration::from_secs(30),
        "the sleeping function was not stopped at its timeout: {elapsed:?}"
    );
    let reports = reports(&output);
    assert_eq!(reports[1].last().unwrap(), "Status: timeout");
    assert!(reports[2].iter().any(|f| f.starts_with("Init Duration: ")));
}

/// A program that never calls the Runtime API (an HTTP server packaged by mistake) is said to
/// be that, not a slow function: no advice to raise `--timeout`. Lambda's payload is still its
/// timeout's.
#[test]
fn a_process_that_never_asks_for_an_event_is_said_to_be_no_lambda_function() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    fs::write(
        &bootstrap,
        "#!/bin/sh\necho 'listening on http://0.0.0.0:3000'\nexec sleep 60\n",
    )
    .unwrap();
    fs::set_permissions(&bootstrap, fs::Permissions::from_mode(0o755)).unwrap();
    let started = Instant::now();
    let output = invoke(&[bootstrap.to_str().unwrap(), "--data", "{}"]);
    assert_exit(&output, 1);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let text = stderr(&output);
    assert_stderr_has(&output, "the function never asked for an event");
    assert_stderr_has(&output, "is it a Lambda function?");
    assert!(!text.contains("--timeout"), "{text}");
    assert!(text.contains("listening on http://0.0.0.0:3000"), "{text}");
    assert_lambda_error(&payloads(&output)[0], "Sandbox.Timedout", "Task timed out");
    assert_eq!(reports(&output)[0].last().unwrap(), "Status: timeout");
}

#[test]
fn a_response_over_6_mb_is_function_response_size_too_large() {
    // {"data":"..."} is 11 bytes more than its data: 6291545 is just at Lambda's limit.
    let output =
        misbehave_with(br#"{"action":"big","bytes":6291546}{"action":"big","bytes":6291545}"#);
    let payloads = assert_failed_at(
        &output,
        0,
        "Function.ResponseSizeTooLarge",
        "Response payload size (6291557 bytes) exceeded maximum allowed payload size (6291556 bytes).",
    );
    assert_eq!(payloads[1]["data"].as_str().unwrap().len(), 6_291_545);
    // The runtime was told with a 413, and served the next event.
    assert_stderr_has(&output, "status=413");
}

#[test]
fn an_exit_in_the_middle_of_an_invocation_is_runtime_exit_error() {
    let output = misbehave_with(br#"{"action":"exit","code":7}{"action":"count"}"#);
    let payloads = assert_failed_at(
        &output,
        0,
        "Runtime.ExitError",
        "Error: Runtime exited with error: exit status 7",
    );
    assert_eq!(payloads[1]["count"], 1, "not restarted");
}

/// A zip with `bootstrap` (the given bytes and mode) and nothing else.
pub(crate) fn zip_with_bootstrap(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap();
    path
}

fn echo_bootstrap_bytes() -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(fs::File::open(echo_zip()).unwrap()).unwrap();
    let mut entry = zip.by_name("bootstrap").unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
    bytes
}

#[test]
fn a_non_executable_bootstrap_is_invalid_entrypoint() {
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_with_bootstrap(dir.path(), "noexec.zip", &echo_bootstrap_bytes(), 0o644);
    let output = invoke(&[zip_arg(&zip), "-d", "{}"]);
    assert_failed_at(
        &output,
        0,
        "Runtime.InvalidEntrypoint",
        "Error: fork/exec /var/task/bootstrap: permission denied",
    );
    assert!(stderr(&output).contains("mode 755"), "{}", stderr(&output));
}

#[test]
fn a_zip_without_bootstrap_is_invalid_entrypoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobootstrap.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    zip.start_file("main", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"x").unwrap();
    zip.finish().unwrap();
    let output = invoke(&[zip_arg(&path), "-d", "{}"]);
    assert_failed_at(
        &output,
        0,
        "Runtime.InvalidEntrypoint",
        "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
    );
}

/// `--client-context` (cargo lambda invoke's `--client-context-ascii` too) and
/// `--client-context-file` reach lambda_runtime's `Context::client_context`; one that is not a
/// JSON object is refused before anything runs.
#[test]
fn the_client_context_reaches_the_functions_context() {
    let context = r#"{"client":{"installationId":"i-1","appTitle":"shop","appVersionName":"1.2","appVersionCode":"12","appPackageName":"com.example.shop"},"custom":{"tier":"gold"},"environment":{"platform":"android"}}"#;
    let run = |flags: &[&str]| {
        let mut args = vec![zip_arg(misbehave_zip()), "-e", "GREETING=hi"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-d", r#"{"action":"context"}"#]);
        let output = invoke(&args);
        assert_exit(&output, 0);
        payloads(&output).remove(0)
    };
    let expected: Value = serde_json::from_str(context).unwrap();
    assert_eq!(
        run(&["--client-context", context])["client_context"],
        expected
    );
    assert_eq!(
        run(&["--client-context-ascii", r#"{"custom":{"a":"b"}}"#])["client_context"]["custom"],
        serde_json::json!({"a": "b"})
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("context.json");
    fs::write(&file, format!("{context}\n")).unwrap();
    assert_eq!(
        run(&["--client-context-file", file.to_str().unwrap()])["client_context"],
        expected
    );
    let plain = run(&[]);
    assert_eq!(plain["client_context"], Value::Null);
    assert_eq!(plain["identity"], Value::Null);

    let output = invoke(&[
        zip_arg(misbehave_zip()),
        "--client-context",
        "tier=gold",
        "-d",
        "{}",
    ]);
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains(
            "the client context of `--client-context` is not one Lambda takes: it is not JSON"
        ),
        "{err}"
    );
    assert!(err.contains("give a JSON object"), "{err}");
    assert!(!err.contains("START RequestId"), "{err}");
}

#[test]
fn the_function_sees_lambdas_environment_and_headers_and_nothing_else() {
    // misbehave's `context` action answers with what the function sees.
    let context_with = |settings: &[&str]| {
        let mut args = vec![
            zip_arg(misbehave_zip()),
            "-d",
            r#"{"action":"context"}"#,
            "-e",
            "GREETING=hi",
        ];
        args.extend_from_slice(settings);
        invoke(&args)
    };
    let output = context_with(&[
        "--function-name",
        "orders",
        "--memory",
        "512",
        "--timeout",
        "7",
    ]);
    assert_exit(&output, 0);
    let context = &payloads(&output)[0];
    let env = context["env"].as_object().unwrap();
    let var = |key: &str| env.get(key).and_then(Value::as_str).unwrap_or("<unset>");
    let task_root = var("LAMBDA_TASK_ROOT");
    assert_eq!(context["cwd"], task_root);
    assert_eq!(var("_HANDLER"), "bootstrap");
    assert_eq!(var("TZ"), ":UTC");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_NAME"), "orders");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "512");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(var("AWS_LAMBDA_LOG_GROUP_NAME"), "/aws/lambda/orders");
    assert_eq!(var("GREETING"), "hi");
    assert!(var("AWS_REGION") != "<unset>");
    assert!(
        var("LD_LIBRARY_PATH")
            .split(':')
            .any(|dir| dir == format!("{task_root}/lib")),
        "{}",
        var("LD_LIBRARY_PATH")
    );
    let api = var("AWS_LAMBDA_RUNTIME_API");
    assert!(api.starts_with("127.0.0.1:"), "{api}");
    assert_ne!(api, "127.0.0.1:0");
    assert_eq!(
        var("INVOKE_TEST_SENTINEL"),
        "<unset>",
        "the environment leaked"
    );
    assert_eq!(var("HOME"), "<unset>", "the environment leaked");

    // Lambda-Runtime-* headers, as the function's context reads them.
    let report = &reports(&output)[0];
    let id = report[0].trim_start_matches("REPORT RequestId: ");
    assert_eq!(context["request_id"], id);
    let deadline = context["deadline_ms"].as_u64().unwrap();
    let now = context["now_ms"].as_u64().unwrap();
    assert!(
        deadline > now + 5_000 && deadline <= now + 7_000,
        "deadline {deadline} is not now ({now}) + 7 s"
    );
    let arn = context["invoked_function_arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:lambda:") && arn.ends_with(":123456789012:function:orders"),
        "{arn}"
    );
    let trace = context["trace_id"].as_str().unwrap();
    assert!(trace.starts_with("Root=1-"), "{trace}");
    assert_eq!(report[2], "Memory Size: 512 MB");

    // The task root is gone once invoke returns.
    assert!(
        !Path::new(task_root).exists(),
        "{task_root} was left behind"
    );

    // `--handler` is the function's Handler setting: the runtime reads it in `_HANDLER`.
    let output = context_with(&["--handler", "orders.list"]);
    assert_exit(&output, 0);
    assert_eq!(payloads(&output)[0]["env"]["_HANDLER"], "orders.list");
    let output = invoke(&[
        zip_arg(misbehave_zip()),
        "-d",
        "{}",
        "--handler",
        "two words",
    ]);
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains("error: `--handler \"two words\"` is not a handler Lambda accepts")
            && err.contains("\nhelp: for example `--handler orders.list`"),
        "{err}"
    );
}

#[test]
fn the_functions_output_goes_to_stderr_between_start_and_end() {
    let output = invoke(&[
        zip_arg(misbehave_zip()),
        "-d",
        r#"{"action":"log"}"#,
        "-e",
        "GREETING=hi",
    ]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "{\"logged\":true}\n");
    let err = stderr(&output);
    let at = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{err}"))
    };
    let start = at("START RequestId: ");
    let out = at("misbehave says hello on stdout\n");
    let errline = at("misbehave says hello on stderr\n");
    let end = at("END RequestId: ");
    assert!(
        start < out && start < errline && out < end && errline < end,
        "{err}"
    );

    // -q keeps the function's output but drops Lambda's lines and the status lines.
    let quiet = invoke(&[
        zip_arg(misbehave_zip()),
        "-q",
        "-d",
        r#"{"action":"log"}"#,
        "-e",
        "GREETING=hi",
    ]);
    assert_exit(&quiet, 0);
    // The function's two streams are two pipes: which line is forwarded first is not defined.
    let quiet_err = stderr(&quiet);
    let mut lines: Vec<&str> = quiet_err.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "misbehave says hello on stderr",
            "misbehave says hello on stdout"
        ]
    );
}

#[test]
fn peak_memory_is_reported_against_memory() {
    let output = invoke(&[
        zip_arg(misbehave_zip()),
        "-d",
        r#"{"action":"alloc","mb":160}"#,
        "-e",
        "GREETING=hi",
    ]);
    assert_exit(&output, 0);
    let report = &reports(&output)[0];
    let used: u64 = report[3]
        .trim_start_matches("Max Memory Used: ")
        .trim_end_matches(" MB")
        .parse()
        .unwrap();
    assert!((160..400).contains(&used), "{report:?}");
    let err = stderr(&output);
    assert!(err.contains("more than its 128 MB"), "{err}");
    assert!(err.contains("Runtime.OutOfMemory"), "{err}");
}

#[test]
fn bad_input_is_refused_before_running_anything() {
    let zip = zip_arg(echo_zip());
    let output = invoke(&[zip, "-d", "{not json"]);
    assert_exit(&output, 1);
    assert_stderr_has(&output, "`--data` is not a sequence of JSON values");
    let output = invoke(&[zip]);
    assert_exit(&output, 1);
    assert_stderr_has(&output, "stdin holds no event");
    let output = invoke(&[zip, "-d", "{}", "-e", "AWS_LAMBDA_RUNTIME_API=x"]);
    assert_exit(&output, 1);
    assert_stderr_has(
        &output,
        "Reserved keys used in this request: AWS_LAMBDA_RUNTIME_API",
    );
    let dir = tempfile::tempdir().unwrap();
    let output = invoke(&["-o", dir.path().to_str().unwrap(), "-d", "{}"]);
    assert_exit(&output, 1);
    assert_stderr_has(&output, "no `lambda.zip` or `bootstrap` in");
    assert_stderr_has(&output, "help: build one with `cargo lambda-build --zip`");
    // Usage errors are clap's.
    assert_exit(&invoke(&[zip, "--timeout", "0"]), 2);
}

#[test]
fn build_then_invoke_with_events_for_a_ci_smoke_test() {
    let project = support::copy_fixture("echo");
    let events = project.path().join("smoke.json");
    fs::write(&events, r#"{"name":"ci"}"#).unwrap();
    let run = |events: &Path| {
        support::tool()
            .args(["--zip", "--locked", "--invoke-with"])
            .arg(events)
            .current_dir(project.path())
            .env("CARGO_TARGET_DIR", support::fixture_target_dir())
            .output()
            .unwrap()
    };
    let output = run(&events);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.contains("CodeSha256"), "{out}");
    assert!(out.ends_with("{\"message\":\"hello, ci\"}\n"), "{out}");
    // The function is named after the binary.
    assert!(stderr(&output).contains("Invoking "), "{}", stderr(&output));

    fs::write(&events, r#"{"name":"ok"} {"fail":true}"#).unwrap();
    let output = run(&events);
    assert_exit(&output, 1);
    assert_stderr_has(&output, "1 of 2 invocations failed");

    // Bad events are refused before anything is compiled.
    fs::write(&events, "{oops").unwrap();
    let output = run(&events);
    assert_exit(&output, 1);
    assert_stderr_has(&output, "is not a sequence of JSON values");
    assert!(
        !stderr(&output).contains("Compiling"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn ctrl_c_stops_the_function_and_exits_130() {
    let child = support::tool()
        .args(["invoke", zip_arg(misbehave_zip())])
        .args(["-e", "GREETING=hi", "--timeout", "60"])
        .args(["-d", r#"{"action":"sleep","ms":30000}"#])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it get into the invocation.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_exit(&output, 130);
    assert_stderr_has(&output, "interrupted by SIGINT");
}

#[test]
fn arm64_zips_run_under_qemu_user() {
    let Some(zip) = misbehave_arm64_zip() else {
        return;
    };
    let output = invoke_with_stdin(
        &[zip_arg(zip), "-e", "GREETING=hi"],
        br#"{"action":"greet","name":"graviton"}{"action":"count"}{"action":"fail"}"#,
    );
    let payloads = assert_failed_at(&output, 2, "MisbehaveError", "misbehave was asked to fail");
    assert_eq!(payloads[0]["message"], "hi, graviton");
    assert_eq!(payloads[1]["count"], 2);
    let err = stderr(&output);
    assert!(err.contains("(arm64 under qemu-aarch64-static)"), "{err}");
}

/// The stream fixture for arm64, linked by the GNU cross gcc (the linker the user gives cargo
/// wins over the tool's zig), which links Rust's unwinder as `libgcc_s.so.1`, as a `--docker`
/// build does. std-only, so it builds in seconds, in a target dir of its own: cargo would not
/// relink the shared one's zig-linked build for another linker.
fn gcc_linked_arm64_zip() -> PathBuf {
    let source = support::copy_fixture("stream");
    let outdir = zips_dir().join("stream-arm64-gcc");
    let output = support::tool()
        .args(["--zip", "--locked", "--arch", "arm64", "-o"])
        .arg(&outdir)
        .current_dir(source.path())
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("gcc-linked-target"),
        )
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc",
        )
        .output()
        .expect("run cargo-lambda-build");
    support::assert_ran("building stream for arm64 with gcc", &output);
    outdir.join("lambda.zip")
}

/// A copy of the cross C library's sysroot (links to its files) without `libgcc_s`, or with it.
fn sysroot_copy(cross: &Path, with_libgcc_s: bool) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    fs::create_dir(copy.path().join("lib")).unwrap();
    for entry in fs::read_dir(cross.join("lib")).unwrap() {
        let name = entry.unwrap().file_name();
        if !with_libgcc_s && name.to_string_lossy().starts_with("libgcc_s") {
            continue;
        }
        std::os::unix::fs::symlink(
            cross.join("lib").join(&name),
            copy.path().join("lib").join(&name),
        )
        .unwrap();
    }
    copy
}

/// `invoke` of `zip` under qemu with `QEMU_LD_PREFIX` (qemu's own variable for its sysroot, which
/// the tool takes in place of `/usr/aarch64-linux-gnu`).
fn invoke_with_sysroot(zip: &Path, sysroot: &Path) -> Output {
    support::tool()
        .arg("invoke")
        .arg(zip)
        .args(["-d", r#"{"rawPath":"/"}"#, "-e", "STREAM_PAUSE_MS=0"])
        .env("QEMU_LD_PREFIX", sysroot)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("run cargo-lambda-build invoke")
}

/// provided.al2023 has `libgcc_s.so.1`; a sysroot without it made the loader end the process
/// with exit 127, reported as a crash with a help about panics. `invoke` looks before it starts
/// the function, and names the package that has it here and `--docker`.
#[test]
fn an_arm64_bootstrap_needing_libgcc_s_names_its_package_when_the_sysroot_lacks_it() {
    let cross = Path::new(support::QEMU[2]);
    if !support::require_tools(&[support::QEMU[0], "aarch64-linux-gnu-gcc", "unzip"]) {
        return;
    }
    if !cross.join("lib/libgcc_s.so.1").is_file() {
        support::skip_or_fail("libgcc-s1-arm64-cross is not installed");
        return;
    }
    let zip = gcc_linked_arm64_zip();
    let unzipped = tempfile::tempdir().unwrap();
    let bootstrap = fs::read(support::extract_bootstrap(&zip, unzipped.path())).unwrap();
    assert!(
        bootstrap.windows(14).any(|w| w == b"libgcc_s.so.1\0"),
        "the gcc-linked bootstrap should need libgcc_s.so.1"
    );

    let without = sysroot_copy(cross, false);
    let refused = invoke_with_sysroot(&zip, without.path());
    assert_exit(&refused, 1);
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "`bootstrap` needs libgcc_s.so.1, which provided.al2023 has but the arm64 sysroot \
             qemu runs it with (`{}`) lacks",
            without.path().display()
        )),
        "{err}"
    );
    assert!(
        err.contains("`apt-get install libgcc-s1-arm64-cross`") && err.contains("`--docker`"),
        "{err}"
    );
    assert!(!err.contains("START RequestId"), "nothing started: {err}");
    assert!(!err.contains("panic"), "{err}");

    let with = sysroot_copy(cross, true);
    let ran = invoke_with_sysroot(&zip, with.path());
    assert_exit(&ran, 0);
    let out = stdout(&ran);
    assert!(out.contains("first\nlast\n"), "{out}\n{}", stderr(&ran));
    assert!(stderr(&ran).contains("(arm64 under qemu-aarch64-static)"));
}

/// The function's answers are the function's: the same zip and events give the same payloads
/// here and under cargo-lambda's emulator (an implementation of the Runtime API that shares no
/// code with this one).
#[test]
fn payloads_match_cargo_lambdas_emulator() {
    if !support::require_tools(&["cargo-lambda", "unzip"]) {
        return;
    }
    const MISBEHAVE_EVENTS: &[&str] = &[
        r#"{"action":"greet","name":"y"}"#,
        r#"{"action":"fail"}"#,
        r#"{"action":"panic"}"#,
        r#"{"action":"big","bytes":100000}"#,
        r#"{"action":"greet","name":"after"}"#,
    ];
    /// A zip, the function's settings, how the emulator runs its bootstrap, and the events.
    struct Case {
        zip: &'static Path,
        env: &'static [&'static str],
        emulation: &'static [&'static str],
        events: &'static [&'static str],
    }
    let mut cases = vec![
        Case {
            zip: echo_zip(),
            env: &[],
            emulation: &[],
            events: &[
                r#"{"name":"x"}"#,
                r#"{"fail":true}"#,
                r#"{"name":"ü \"quoted\""}"#,
            ],
        },
        Case {
            zip: misbehave_zip(),
            env: &["GREETING=hey"],
            emulation: &[],
            events: MISBEHAVE_EVENTS,
        },
    ];
    if let Some(zip) = misbehave_arm64_zip() {
        cases.push(Case {
            zip,
            env: &["GREETING=hey"],
            emulation: &support::QEMU,
            events: MISBEHAVE_EVENTS,
        });
    }
    for Case {
        zip,
        env,
        emulation,
        events,
    } in cases
    {
        let mut args = vec![zip_arg(zip)];
        for var in env {
            args.extend(["-e", var]);
        }
        let ours = invoke_with_stdin(&args, events.join("\n").as_bytes());
        let ours = payloads(&ours);
        assert_eq!(ours.len(), events.len());

        let dir = tempfile::tempdir().unwrap();
        let bootstrap = support::extract_bootstrap(zip, dir.path());
        let Some(emulator) = support::Emulator::start() else {
            return;
        };
        // `env VAR=... [qemu ...] bootstrap`: the function's settings, and its architecture.
        let wrapper: Vec<&str> = std::iter::once("env")
            .chain(env.iter().copied())
            .chain(emulation.iter().copied())
            .collect();
        let _function = emulator.run_bootstrap(&bootstrap, Some(&wrapper));
        for (event, our_payload) in events.iter().zip(&ours) {
            let (status, body) = emulator.invoke(event);
            let theirs: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("emulator answered {status} {body:?}: {e}"));
            assert_eq!(
                our_payload,
                &theirs,
                "{} event {event}: invoke and cargo-lambda's emulator disagree",
                zip.display()
            );
        }
    }
}

#[test]
fn help_shows_the_subcommand_and_its_flags() {
    let top = support::tool().args(["--help"]).output().unwrap();
    let top = stdout(&top);
    assert!(top.contains("invoke"), "{top}");
    assert!(top.contains("--invoke-with"), "{top}");
    let help = support::tool().args(["invoke", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = stdout(&help);
    support::assert_contains_all(
        &help,
        &[
            "[ARTIFACT]",
            "--data",
            "--data-file",
            "--timeout",
            "--memory",
            "--env",
            "--function-name",
            "--outdir",
        ],
    );
}

/// The start of a runtime written in bash: `req METHOD PATH [BODY]` asks the Runtime API over
/// /dev/tcp and prints the whole answer, headers included.
pub(crate) const BASH_RUNTIME: &str = r#"#!/bin/bash
host=${AWS_LAMBDA_RUNTIME_API%:*}
port=${AWS_LAMBDA_RUNTIME_API#*:}
req() { # METHOD PATH [BODY]: the whole answer, headers included
    exec 3<>"/dev/tcp/$host/$port"
    printf '%s %s HTTP/1.1\r\nHost: rt\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "${#3}" "$3" >&3
    cat <&3
    exec 3<&-
}
"#;

/// A runtime written in bash (over /dev/tcp) probes what a Rust runtime never does: a wrong
/// request id, an init error after init, an unknown path, a second response.
#[test]
fn the_runtime_api_answers_misuse_as_lambda_does() {
    if !support::require_tool("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    fs::write(
        &bootstrap,
        [
            BASH_RUNTIME,
            r#"base=/2018-06-01/runtime
status() { req "$@" | head -n 1 | tr -d '\r'; }
event=$(req GET $base/invocation/next)
id=$(printf '%s\n' "$event" | grep -i '^lambda-runtime-aws-request-id:' | cut -d' ' -f2 | tr -d '\r')
echo "wrong id: $(status POST $base/invocation/not-$id/response '{}')"
echo "init error: $(req POST $base/init/error '{}' | tail -n 1)"
echo "unknown: $(status GET $base/nothing)"
echo "response: $(req POST $base/invocation/$id/response '{"from":"bash"}' | tail -n 1)"
echo "again: $(status POST $base/invocation/$id/error '{}')"
req GET $base/invocation/next >/dev/null
"#,
        ]
        .concat(),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&bootstrap, fs::Permissions::from_mode(0o755)).unwrap();

    let output = invoke(&[bootstrap.to_str().unwrap(), "-d", "{}"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "{\"from\":\"bash\"}\n");
    let err = stderr(&output);
    support::assert_contains_all(
        &err,
        &[
            "wrong id: HTTP/1.1 400 Bad Request",
            r#"init error: {"errorMessage":"State transition from Running to InitError failed for runtime. Error: State transition is not allowed","errorType":"InvalidStateTransition"}"#,
            "unknown: HTTP/1.1 404 Not Found",
            r#"response: {"status":"OK"}"#,
            "again: HTTP/1.1 400 Bad Request",
            "(not an ELF executable)",
        ],
    );
}

#[test]
fn invoke_with_runs_each_function_of_a_several_function_build() {
    let project = support::copy_fixture("echo");
    // A second function: the same code under another binary name.
    let manifest = project.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let text = text.replace(
        "[dependencies]",
        "[[bin]]\nname = \"echo2\"\npath = \"src/main.rs\"\n\n[dependencies]",
    );
    fs::write(&manifest, text).unwrap();
    let events = project.path().join("smoke.json");
    fs::write(&events, r#"{"name":"both"}"#).unwrap();
    let output = support::tool()
        .args(["--zip", "--locked", "--bin", "echo", "--bin", "echo2"])
        .args(["-o", "dist", "--invoke-with"])
        .arg(&events)
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert_eq!(
        out.matches("{\"message\":\"hello, both\"}").count(),
        2,
        "{out}"
    );
    let err = stderr(&output);
    for bin in ["echo", "echo2"] {
        let zip = project.path().join("dist").join(bin).join("lambda.zip");
        assert!(
            err.contains(&format!("Invoking {}", zip.display())),
            "{bin} was not invoked:\n{err}"
        );
    }
}

/// The `graceful` fixture: lambda_runtime 1.5's `spawn_graceful_shutdown_handler`.
pub(crate) fn graceful_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("graceful", "x86_64"))
}

/// Lambda sends SIGTERM to a runtime that registered an internal extension and gives it 500 ms
/// before SIGKILL: the hook runs at every shutdown, not only when a layer's extension lengthens
/// the phase.
#[test]
fn a_graceful_shutdown_hook_runs_at_every_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hook-lines");
    let env = format!("GRACEFUL_HOOK_FILE={}", file.display());
    for run in 1..=3 {
        let output = invoke(&[zip_arg(graceful_zip()), "-d", r#"{"n":1}"#, "-e", &env]);
        assert_exit(&output, 0);
        assert_eq!(payloads(&output), [serde_json::json!({"n": 1})]);
        let err = stderr(&output);
        assert!(err.contains("graceful: shutdown hook ran"), "{err}");
        let lines = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(lines.lines().count(), run, "run {run}:\n{err}");
    }
}
