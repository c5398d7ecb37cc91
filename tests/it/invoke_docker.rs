//! Container mode: `invoke --docker`, `serve --docker` and `--invoke-with` after a `--docker`
//! build run the packaged `bootstrap` (and its layers' extensions) in a container on the engine
//! of the Docker tests (`.ci/docker.sh`), while the tool serves the Runtime, Extensions and
//! Telemetry APIs on this machine. The zips are the ones the invoke and serve tests build on the
//! host; the image is the Docker tests' base image (`--docker-image`), or the fixture's
//! `lambda.Dockerfile` built from it, as a build finds it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::invoke::{
    assert_exit, echo_zip, graceful_zip, invoke_with_pid, misbehave_zip, payloads, reports,
    zip_arg, zip_with_bootstrap,
};
use crate::layers::{logwatch, logwatch_layer};
use crate::serve::{
    Served, arm64_echo_zip, assert_the_http_function_answers, http_x86_64_zip, read_streamed,
    stream_zip,
};
use crate::support::docker::{self, Setup, containers_of, wait_until};
use crate::support::{self, stderr};

/// `cargo lambda-build invoke ZIP --docker-image BASE ARGS` with `stdin`; its output and pid.
fn invoke_in_container(setup: &Setup, zip: &Path, args: &[&str], stdin: &[u8]) -> (Output, u32) {
    let mut all = vec![zip_arg(zip), "--docker-image", &setup.base_image];
    all.extend_from_slice(args);
    invoke_with_pid(&all, stdin)
}

/// No container of the tool's run `pid` is left on the engine.
fn assert_no_container_of(pid: u32, after: &str) {
    let left = containers_of(pid);
    assert!(left.is_empty(), "{after} left {left:?}");
}

/// The processes running `/var/task/bootstrap` in `container`.
fn bootstraps_in(container: &str) -> usize {
    // `docker top` wants the pid column.
    let output = Command::new("docker")
        .args(["top", container, "-o", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim_start().split_once(char::is_whitespace))
        .filter(|(_, args)| args.trim_start().starts_with("/var/task/bootstrap"))
        .count()
}

#[test]
fn echo_answers_from_a_container_with_lambdas_environment_user_and_files() {
    let Some(setup) = docker::setup() else { return };
    let (output, pid) =
        invoke_in_container(&setup, echo_zip(), &["-d", r#"{"name": "Docker"}"#], b"");
    assert_exit(&output, 0);
    assert_eq!(
        payloads(&output),
        [serde_json::json!({"message": "hello, Docker"})]
    );
    let err = stderr(&output);
    assert!(
        err.contains(&format!("(x86_64 in a container of {})", setup.base_image)),
        "{err}"
    );
    let report = &reports(&output)[0];
    assert!(
        report.iter().any(|f| f.starts_with("Init Duration: ")),
        "{report:?}"
    );
    // The container's peak, from its cgroup.
    let used = report
        .iter()
        .find_map(|f| f.strip_prefix("Max Memory Used: "))
        .and_then(|mb| mb.trim_end_matches(" MB").parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no memory in {report:?}"));
    assert!((1..128).contains(&used), "{report:?}");
    assert_no_container_of(pid, "a run");

    // What the function sees: Lambda's variables with the container's paths and the way back
    // to the Runtime API, nothing of this machine's nor of the image's, Lambda's user, and
    // /var/task read-only to it.
    let (output, _) = invoke_in_container(
        &setup,
        misbehave_zip(),
        &["-e", "GREETING=hi", "-d", r#"{"action":"context"}"#],
        b"",
    );
    assert_exit(&output, 0);
    let context = &payloads(&output)[0];
    assert_eq!(context["cwd"], "/var/task");
    let env = context["env"].as_object().unwrap();
    let var = |key: &str| env.get(key).and_then(Value::as_str).unwrap_or("<unset>");
    assert_eq!(var("LAMBDA_TASK_ROOT"), "/var/task");
    assert_eq!(var("GREETING"), "hi");
    assert_eq!(
        var("LD_LIBRARY_PATH"),
        "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:\
         /var/task/lib:/opt/lib"
    );
    assert_eq!(var("PATH"), "/usr/local/bin:/usr/bin/:/bin:/opt/bin");
    // An engine of this Linux machine shares its network: the API stays on 127.0.0.1.
    assert!(
        var("AWS_LAMBDA_RUNTIME_API").starts_with("127.0.0.1:"),
        "{env:?}"
    );
    assert_eq!(var("INVOKE_TEST_SENTINEL"), "<unset>");
    // The base image sets the cross linkers' variables (lambda.Dockerfile's ENV).
    assert!(
        !env.keys()
            .any(|k| k.starts_with("CARGO_") || k.starts_with("CC_")),
        "{env:?}"
    );

    // Lambda's user, to whom /var/task is read-only and /tmp writable; a script is started as
    // any executable is.
    let dir = tempfile::tempdir().unwrap();
    let script = b"#!/bin/sh\necho \"user $(id -u):$(id -g)\"\n\
        touch /var/task/x 2>/dev/null && echo task-writable\n\
        touch /tmp/x && echo tmp-writable\nexit 3\n";
    let zip = zip_with_bootstrap(dir.path(), "script.zip", script, 0o755);
    let (output, _) = invoke_in_container(&setup, &zip, &["-d", "{}"], b"");
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(err.contains("\nuser 993:990\n"), "{err}");
    assert!(
        err.contains("\ntmp-writable\n") && !err.contains("task-writable"),
        "{err}"
    );
    assert!(err.contains("exit status 3"), "{err}");
}

#[test]
fn the_memory_limit_is_the_functions_and_its_peak_is_reported() {
    let Some(setup) = docker::setup() else { return };
    let events = br#"{"action":"alloc","mb":48} {"action":"alloc","mb":200}"#;
    let (output, pid) = invoke_in_container(
        &setup,
        misbehave_zip(),
        &["-e", "GREETING=hi", "--memory", "128"],
        events,
    );
    // 48 MiB fit in 128 MB; 200 do not: the kernel kills the runtime, as on Lambda.
    assert_exit(&output, 1);
    let answers = payloads(&output);
    assert_eq!(answers[0]["allocated_mb"], 48, "{}", stderr(&output));
    assert_eq!(answers[1]["errorType"], "Runtime.ExitError", "{answers:?}");
    assert!(
        answers[1]["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("signal: killed"),
        "{answers:?}"
    );
    let reports = reports(&output);
    let used = |report: &[String]| -> u64 {
        report
            .iter()
            .find_map(|f| f.strip_prefix("Max Memory Used: "))
            .and_then(|mb| mb.trim_end_matches(" MB").parse().ok())
            .unwrap()
    };
    assert!(used(&reports[0]) >= 48, "{reports:?}");
    assert!(used(&reports[1]) <= 128 + 1, "{reports:?}");
    assert_no_container_of(pid, "an out-of-memory run");
}

#[test]
fn a_timeout_kills_the_runtime_in_the_container_and_the_next_event_starts_cold() {
    let Some(setup) = docker::setup() else { return };
    let mut child = support::tool()
        .arg("invoke")
        .arg(misbehave_zip())
        .args(["--docker-image", &setup.base_image])
        .args(["-e", "GREETING=hi", "--timeout", "2", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events =
        br#"{"action":"sleep","ms":60000} {"action":"sleep","ms":1500} {"action":"count"}"#;
    child.stdin.take().unwrap().write_all(events).unwrap();
    let pid = child.id();
    // Throughout the run, and so while the second event runs after the first one's timeout:
    // one runtime in the container at most. Two would be the killed one still sleeping beside
    // its successor, its relay here killed but not the process in the container.
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Some(container) = containers_of(pid).into_iter().next() {
            let count = bootstraps_in(&container);
            seen.push(count);
            assert!(count <= 1, "{count} runtimes in {container}: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        seen.iter().filter(|n| **n == 1).count() > 5,
        "the runtimes were hardly seen: {seen:?}\n{}",
        stderr(&output)
    );
    assert_exit(&output, 1);
    let answers = payloads(&output);
    assert_eq!(answers[0]["errorType"], "Sandbox.Timedout", "{answers:?}");
    assert_eq!(answers[1]["slept_ms"], 1500, "{answers:?}");
    // A new process after the reset: its own count.
    assert_eq!(answers[2]["count"], 2, "{answers:?}");
    let reports = reports(&output);
    assert_eq!(reports[0].last().unwrap(), "Status: timeout");
    assert!(reports[1].iter().any(|f| f.starts_with("Init Duration: ")));
    assert_no_container_of(pid, "a run with a timeout");
}

#[test]
fn ctrl_c_and_even_sigkill_leave_no_container() {
    let Some(setup) = docker::setup() else { return };
    for (signal, code) in [(libc::SIGINT, Some(130)), (libc::SIGKILL, None)] {
        let watched = docker::Watched::spawn_command({
            let mut command = support::tool();
            command
                .arg("invoke")
                .arg(misbehave_zip())
                .args(["--docker-image", &setup.base_image])
                .args(["-e", "GREETING=hi", "--timeout", "60"])
                .args(["-d", r#"{"action":"sleep","ms":30000}"#]);
            command
        });
        watched.wait_for_line("START RequestId", Duration::from_secs(60));
        let pid = watched.pid();
        assert_eq!(containers_of(pid).len(), 1, "the function's container runs");
        let started = Instant::now();
        watched.signal(signal);
        let (status, err) = watched.finish();
        assert_eq!(status.code(), code, "{err}");
        if signal == libc::SIGINT {
            assert!(started.elapsed() < Duration::from_secs(10), "{err}");
            assert!(err.contains("interrupted by SIGINT"), "{err}");
            assert_no_container_of(pid, "Ctrl-C");
        } else {
            // Killed, the tool removes nothing: its attach connection closes, the container's
            // main process ends, and the engine removes the container.
            let gone = wait_until(Duration::from_secs(30), || containers_of(pid).is_empty());
            assert!(gone, "SIGKILL left {:?}", containers_of(pid));
        }
    }
}

#[test]
fn a_layers_extension_registers_gets_the_logs_and_shutdown_in_the_container() {
    let Some(setup) = docker::setup() else { return };
    let layer = zip_arg(logwatch_layer());
    let (output, pid) = invoke_in_container(
        &setup,
        misbehave_zip(),
        &["-e", "GREETING=hi", "--layer", layer],
        br#"{"action":"log"}"#,
    );
    assert_exit(&output, 0);
    let err = stderr(&output);
    assert!(
        err.contains("Starting extension logwatch from /opt/extensions"),
        "{err}"
    );
    assert_eq!(logwatch(&err, "registered").len(), 1, "{err}");
    let events = logwatch(&err, "event");
    assert_eq!(events.len(), 2, "{err}");
    assert!(events[0].contains(r#""eventType":"INVOKE""#), "{err}");
    assert!(events[1].contains(r#""eventType":"SHUTDOWN""#), "{err}");
    assert!(
        events[1].contains(r#""shutdownReason":"spindown""#),
        "{err}"
    );
    // The output comes through the engine and the relay, yet before END, as it was written.
    let said = err.find("misbehave says hello on stderr").unwrap();
    assert!(said < err.find("END RequestId").unwrap(), "{err}");
    // The Telemetry API reached the extension's listener in the container.
    let telemetry = logwatch(&err, "telemetry").join("\n");
    assert!(
        telemetry.contains("misbehave says hello on stderr"),
        "{err}"
    );
    // The shell around each process never speaks for it.
    assert!(
        !err.contains("Terminated") && !err.contains("Killed"),
        "{err}"
    );
    assert_no_container_of(pid, "a run with an extension");
}

/// lambda_runtime's graceful-shutdown hook runs in a container too: the relay passes SIGTERM
/// on, and Lambda's 500 ms follow.
#[test]
fn a_graceful_shutdown_hook_runs_in_the_container() {
    let Some(setup) = docker::setup() else { return };
    let (output, pid) = invoke_in_container(&setup, graceful_zip(), &["-d", "[1]"], b"");
    assert_exit(&output, 0);
    assert_eq!(payloads(&output), [serde_json::json!([1])]);
    let err = stderr(&output);
    assert!(err.contains("graceful: shutdown hook ran"), "{err}");
    assert_no_container_of(pid, "a graceful shutdown");
}

#[test]
fn serve_answers_from_a_container_built_from_the_projects_dockerfile() {
    let Some(setup) = docker::setup() else { return };
    // The fixture's lambda.Dockerfile starts from the base image: `--docker` finds it in the
    // current directory, as a build would, and builds (or reuses) its image.
    let project = docker::project(&setup, "");
    let served = Served::start_in(project.path(), echo_zip(), &["--docker", "-v"]);
    let answer = served.get("/?name=x");
    // echo is no HTTP function: its plain JSON answer is read as payload 2.0 infers it.
    assert_eq!(answer.status, 200, "{answer:?}\n{}", served.stderr());
    assert_eq!(answer.json()["message"], "hello, ");
    let err = served.stderr_with("GET /?name=x -> 200");
    let image = err
        .lines()
        .find_map(|l| l.split_once("in a container of ").map(|(_, rest)| rest))
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{err}"))
        .to_owned();
    assert!(image.starts_with("cargo-lambda-build:"), "{err}");
    assert!(
        err.contains("--label 'cargo-lambda-build=invoke' --network host --memory 128m"),
        "{err}"
    );
    drop(served);
    docker::remove_built_images(&format!("Building image {image}"));
}

#[test]
fn serve_answers_http_requests_from_a_container_as_a_function_url_and_a_rest_api() {
    let Some(setup) = docker::setup() else { return };
    let image = ["--docker-image", setup.base_image.as_str()];
    let served = Served::start(http_x86_64_zip(), &image);
    assert_the_http_function_answers(&served);
    let err = served.stderr_with("GET /nope -> 404");
    // One warm process: one cold start for all the requests.
    assert_eq!(err.matches("Init Duration").count(), 1, "{err}");
    drop(served);

    let mut args = image.to_vec();
    args.extend([
        "--event-format",
        "rest-api",
        "-e",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true",
    ]);
    let served = Served::start(http_x86_64_zip(), &args);
    assert_the_http_function_answers(&served);
}

#[test]
fn a_streamed_response_streams_out_of_the_container() {
    let Some(setup) = docker::setup() else { return };
    let served = Served::start(
        stream_zip(),
        &[
            "--docker-image",
            &setup.base_image,
            "-e",
            "STREAM_PAUSE_MS=1500",
        ],
    );
    let (raw, first, end, clean) = read_streamed(served.addr, "/");
    let text = String::from_utf8_lossy(&raw);
    assert!(clean, "{text}\n{}", served.stderr());
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert!(
        text.contains("first\n") && text.contains("last\n"),
        "{text}"
    );
    assert!(
        end - first >= Duration::from_millis(1000),
        "first chunk at {first:?}, end at {end:?}"
    );
}

#[test]
fn invoke_with_after_a_docker_build_runs_in_the_builds_image() {
    let Some(setup) = docker::setup() else { return };
    let project = docker::project(&setup, "");
    let events = project.path().join("events.json");
    std::fs::write(&events, r#"{"name": "smoke"}"#).unwrap();
    setup.runner.give(&events);
    let output = setup.runner.run(
        project.path(),
        &["--docker", "--zip", "--invoke-with", "events.json"],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        support::stdout(&output).contains(r#"{"message":"hello, smoke"}"#),
        "{err}"
    );
    assert!(
        err.contains("in a container of cargo-lambda-build:"),
        "{err}"
    );
}

/// arm64 on this amd64 engine: `.ci/docker.sh` registers qemu-user-static's `qemu-aarch64` with
/// binfmt_misc (flag F, so that the kernel runs arm64 programs through it inside containers too)
/// and loads an arm64 Debian image (`docker/test-arm64-image.sh`); the container is created for
/// linux/arm64 from it.
#[test]
fn an_arm64_function_runs_in_an_arm64_container_where_the_engine_emulates_it() {
    let Some(_setup) = docker::setup() else {
        return;
    };
    if !support::require_tools(&[support::QEMU[0]]) || !support::arm64_linker() {
        return;
    }
    let Ok(image) = std::env::var("LAMBDA_BUILD_TEST_ARM64_IMAGE") else {
        support::skip_or_fail(
            "LAMBDA_BUILD_TEST_ARM64_IMAGE is not set; `. .ci/docker.sh` registers qemu with \
             binfmt_misc and loads an arm64 image",
        );
        return;
    };
    let args = [zip_arg(arm64_echo_zip()), "--docker-image", &image];
    let (output, pid) = invoke_with_pid(&args, br#"{"name": "Graviton"}"#);
    assert_exit(&output, 0);
    assert_eq!(
        payloads(&output),
        [serde_json::json!({"message": "hello, Graviton"})]
    );
    let err = stderr(&output);
    assert!(
        err.contains("(arm64, linux/arm64 under the engine's emulation, in a container of"),
        "{err}"
    );
    assert_no_container_of(pid, "an arm64 run");
}

/// An engine that cannot see this machine's files is elsewhere, and cannot reach the Runtime
/// API on 127.0.0.1: refused, with what to use instead (`.ci/remote-docker.sh` starts one).
#[test]
fn an_engine_that_cannot_reach_this_machine_is_refused_with_what_to_use() {
    let Some(setup) = docker::setup() else { return };
    let Ok(remote) = std::env::var("LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST") else {
        support::skip_or_fail(
            "LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST is not set; `. .ci/remote-docker.sh` starts \
             an engine that cannot see this machine's files",
        );
        return;
    };
    let output = support::tool()
        .arg("invoke")
        .arg(echo_zip())
        .args(["--docker-image", &setup.base_image, "-d", "{}"])
        .env("DOCKER_HOST", &remote)
        .output()
        .unwrap();
    support::assert_refused(
        &output,
        1,
        "cannot see this machine's files: it runs elsewhere",
        "use an engine on this machine",
    );
    let err = stderr(&output);
    assert!(err.contains("leave out `--docker`"), "{err}");
    assert!(!err.contains("START RequestId"), "{err}");
}
