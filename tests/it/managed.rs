//! Lambda Managed Instances and tenant isolation through `invoke` and `serve`: the `managed`
//! fixture (lambda_runtime's `run_concurrent`) sleeps a second per invocation and answers its
//! `AWS_LAMBDA_MAX_CONCURRENCY`, request id, tenant id and process id. Concurrent invocations
//! take about a second together; one at a time, a second each.

use crate::invoke::{build_zip, invoke, payloads};
use crate::serve::{Answer, Served, read_streamed, stream_zip};
use crate::support;
use crate::support::stderr;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn managed_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("managed", "x86_64"))
}

/// The arm64 build, run under qemu; `None` (the test skips, a failure in CI) without qemu-user
/// or an arm64 linker.
fn managed_arm64_zip() -> Option<&'static Path> {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    if !support::require_tools(&[support::QEMU[0]]) || !support::arm64_linker() {
        return None;
    }
    Some(ZIP.get_or_init(|| build_zip("managed", "arm64")))
}

/// `count` requests sent at once, with `headers`: their answers, and how long all took.
fn at_once(served: &Served, count: usize, headers: &[(&str, &str)]) -> (Vec<Answer>, Duration) {
    let started = Instant::now();
    let answers = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..count)
            .map(|n| {
                let target = format!("/?n={n}");
                scope.spawn(move || served.request("GET", &target, headers, b""))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    (answers, started.elapsed())
}

/// Eight requests to `serve --concurrency 8` run together in one process; without the flag,
/// one after the other.
fn eight_requests_at_once(zip: &Path) {
    let served = Served::start(zip, &["--concurrency", "8", "--event-format", "http-api"]);
    // The cold start first: under qemu on a loaded machine it alone can take a second.
    assert_eq!(served.get("/").status, 200, "{}", served.stderr());
    let (answers, took) = at_once(&served, 8, &[]);
    let err = served.stderr();
    let mut ids = HashSet::new();
    let mut pids = HashSet::new();
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}\n{err}");
        let body = answer.json();
        assert_eq!(body["concurrency"], "8", "{body}");
        ids.insert(body["request_id"].as_str().unwrap().to_owned());
        pids.insert(body["pid"].as_u64().unwrap());
    }
    assert_eq!(ids.len(), 8, "each answer its own request id: {ids:?}");
    assert_eq!(pids.len(), 1, "one process takes them all: {pids:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}\n{err}");
    let err = served.stderr_with("-> 200");
    assert_eq!(err.matches("START RequestId").count(), 9, "{err}");
    assert!(!err.contains("takes one invocation at a time"), "{err}");
    drop(served);

    let served = Served::start(zip, &["--event-format", "http-api"]);
    let (answers, took) = at_once(&served, 8, &[]);
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}\n{}", served.stderr());
        assert_eq!(answer.json()["concurrency"], serde_json::Value::Null);
    }
    assert!(took >= Duration::from_secs(7), "took {took:?}");
}

#[test]
fn serve_concurrency_runs_requests_together_in_one_process() {
    eight_requests_at_once(managed_zip());
}

#[test]
fn serve_concurrency_runs_requests_together_under_qemu() {
    if let Some(zip) = managed_arm64_zip() {
        eight_requests_at_once(zip);
    }
}

/// `invoke --concurrency 4` with eight events: two rounds of four, one START / END / REPORT
/// each, one process.
fn four_at_a_time(zip: &Path) {
    let events = (0..8).map(|n| format!("{{\"n\":{n}}}")).collect::<String>();
    let started = Instant::now();
    let output = invoke(&[zip.to_str().unwrap(), "--concurrency", "4", "-d", &events]);
    let took = started.elapsed();
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let answers = payloads(&output);
    assert_eq!(answers.len(), 8, "{err}");
    let mut seen: Vec<u64> = answers
        .iter()
        .map(|a| a["event"]["n"].as_u64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..8).collect::<Vec<u64>>());
    assert!(
        answers.iter().all(|a| a["concurrency"] == "4"),
        "{answers:?}"
    );
    let pids: HashSet<u64> = answers.iter().map(|a| a["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 1, "{answers:?}");
    for line in ["START RequestId", "END RequestId", "REPORT RequestId"] {
        assert_eq!(err.matches(line).count(), 8, "{line}: {err}");
    }
    assert!(err.contains("Max Memory Used"), "{err}");
    // Two rounds of a second (and a start): not eight, not one.
    assert!(took < Duration::from_secs(6), "took {took:?}\n{err}");
    assert!(took >= Duration::from_secs(2), "took {took:?}\n{err}");
}

#[test]
fn invoke_concurrency_sends_the_events_together() {
    four_at_a_time(managed_zip());
}

#[test]
fn invoke_concurrency_sends_the_events_together_under_qemu() {
    if let Some(zip) = managed_arm64_zip() {
        four_at_a_time(zip);
    }
}

/// A function that polls with one `next` (lambda_runtime's `run`) although told to take
/// several: the output says so, and how to fix it.
#[test]
fn a_function_that_runs_sequentially_is_pointed_at() {
    let events = "{}{}{}";
    let zip = managed_zip().to_str().unwrap();
    let output = invoke(&[
        zip,
        "--concurrency",
        "4",
        "-e",
        "SEQUENTIAL=1",
        "-d",
        events,
    ]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert_eq!(payloads(&output).len(), 3, "{err}");
    assert!(err.contains("running sequentially"), "{err}");
    assert!(
        err.contains("takes one invocation at a time although AWS_LAMBDA_MAX_CONCURRENCY=4"),
        "{err}"
    );
    assert!(err.contains("`concurrency-tokio`"), "{err}");
    assert!(err.contains("`lambda_runtime::run_concurrent`"), "{err}");
}

/// A runtime that polls with more `next` calls than AWS_LAMBDA_MAX_CONCURRENCY allows: the one
/// past it is refused with 400 TooManyConcurrentRequests (the held ones keep waiting for work),
/// and the tool's log says which call it refused and why.
#[test]
fn a_next_past_the_concurrency_is_refused() {
    let zip = managed_zip().to_str().unwrap();
    let output = invoke(&[
        zip,
        "--concurrency",
        "2",
        "-e",
        "OVERPOLL=1",
        "--timeout",
        "30",
        "-d",
        "{}",
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let refused = err
        .lines()
        .find(|l| l.contains("overpoll refused:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(refused.contains("HTTP/1.1 400"), "{refused}");
    assert!(
        refused.contains(r#""errorType":"TooManyConcurrentRequests""#),
        "{refused}"
    );
    assert!(
        err.contains("refused a `next` of the runtime: 2 `next` calls wait already"),
        "{err}"
    );
    // The process exited in the middle of the invocation it was given.
    assert!(err.contains("Runtime.ExitError"), "{err}");
}

#[test]
fn invoke_tenant_id_reaches_the_context() {
    let zip = managed_zip().to_str().unwrap();
    let output = invoke(&[zip, "--tenant-id", "tenant-7", "-d", "{}"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(payloads(&output)[0]["tenant_id"], "tenant-7");
    let output = invoke(&[zip, "-d", "{}"]);
    assert_eq!(payloads(&output)[0]["tenant_id"], serde_json::Value::Null);
}

/// Each tenant its own process, kept for its next requests; no tenant shares one.
#[test]
fn serve_keeps_a_process_per_tenant() {
    let served = Served::start(managed_zip(), &["--event-format", "http-api"]);
    let ask = |tenant: Option<&str>| {
        let headers: Vec<(&str, &str)> =
            tenant.map(|t| ("X-Amz-Tenant-Id", t)).into_iter().collect();
        let answer = served.request("GET", "/", &headers, b"");
        assert_eq!(answer.status, 200, "{answer:?}\n{}", served.stderr());
        answer.json()
    };
    let a = ask(Some("a"));
    let b = ask(Some("b"));
    let none = ask(None);
    let a_again = ask(Some("a"));
    assert_eq!(a["tenant_id"], "a");
    assert_eq!(b["tenant_id"], "b");
    assert_eq!(none["tenant_id"], serde_json::Value::Null);
    let pid = |v: &serde_json::Value| v["pid"].as_u64().unwrap();
    assert_ne!(pid(&a), pid(&b));
    assert_ne!(pid(&a), pid(&none));
    assert_ne!(pid(&b), pid(&none));
    assert_eq!(pid(&a), pid(&a_again), "a tenant's environment stays warm");
    // Tenants run side by side: two of them at once take a second, not two.
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| ask(Some("a")));
        scope.spawn(|| ask(Some("b")));
    });
    assert!(started.elapsed() < Duration::from_millis(1900));
}

/// A streamed response through the concurrent Runtime API: it arrives whole, as it is
/// streamed, and a stream failing in its trailers cuts only its own response short.
#[test]
fn serve_concurrency_streams_responses() {
    let served = Served::start(
        stream_zip(),
        &["--concurrency", "2", "-e", "STREAM_PAUSE_MS=500"],
    );
    let (raw, first, end, clean) = read_streamed(served.addr, "/");
    let text = String::from_utf8_lossy(&raw);
    assert!(clean, "{text}\n{}", served.stderr());
    let answer = Answer::parse(&raw).unwrap();
    assert_eq!(answer.status, 201, "{text}");
    assert_eq!(answer.body, b"first\nlast\n");
    assert!(
        end - first >= Duration::from_millis(300),
        "{first:?} {end:?}"
    );
    let (raw, _, _, clean) = read_streamed(served.addr, "/fail");
    assert!(!clean, "{}", String::from_utf8_lossy(&raw));
    let (raw, _, _, clean) = read_streamed(served.addr, "/");
    assert!(
        clean,
        "{}\n{}",
        String::from_utf8_lossy(&raw),
        served.stderr()
    );
}
