//! `invoke --layer`: layers in /opt, an external extension driven through the Extensions API and
//! fed the function's logs through the Telemetry API. The extension is the `extension` fixture
//! (`logwatch`, std only), packaged by the tool with `--zip --extension` as Lambda wants a layer;
//! the functions are the `echo` and `misbehave` fixtures that the invoke tests build.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

use crate::invoke::{
    assert_exit, build_zip_with, echo_zip, invoke, invoke_with_stdin, misbehave_zip, payloads,
    reports, zip_arg,
};
use crate::support::stderr;

pub(crate) fn logwatch_layer() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip_with("extension", "x86_64", &["--extension"]))
}

/// What `logwatch` printed after `logwatch: <what> `, in order.
pub(crate) fn logwatch(stderr: &str, what: &str) -> Vec<String> {
    let prefix = format!("logwatch: {what} ");
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// A successful invoke of the function `zip` with the logwatch extension as its layer, and its
/// stderr, where logwatch prints what it was sent.
fn invoke_with_logwatch(zip: &Path, args: &[&str], events: &[u8]) -> (Output, String) {
    let mut all = vec![zip_arg(zip), "--layer", zip_arg(logwatch_layer())];
    all.extend_from_slice(args);
    let output = invoke_with_stdin(&all, events);
    assert_exit(&output, 0);
    let err = stderr(&output);
    (output, err)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn an_extension_in_a_layer_registers_and_gets_invoke_then_shutdown() {
    let events = br#"{"name":"a"} {"name":"b"}"#;
    let (output, err) = invoke_with_logwatch(echo_zip(), &["--function-name", "echo"], events);
    assert_eq!(payloads(&output).len(), 2, "{err}");
    assert!(
        err.contains("Starting extension logwatch from /opt/extensions"),
        "{err}"
    );

    let registered = logwatch(&err, "registered");
    assert_eq!(registered.len(), 1, "{err}");
    let (id, answer) = registered[0].split_once(' ').unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(json(answer)["functionName"], "echo");
    assert_eq!(json(answer)["handler"], "bootstrap");
    // Init ends only once the extension registered and waits for its next event.
    let first_start = err.find("START RequestId:").unwrap();
    assert!(
        err.find("logwatch: registered").unwrap() < first_start,
        "{err}"
    );

    let events: Vec<Value> = logwatch(&err, "event").iter().map(|e| json(e)).collect();
    assert_eq!(events.len(), 3, "{err}");
    let ids: Vec<String> = reports(&output)
        .iter()
        .map(|r| r[0].trim_start_matches("REPORT RequestId: ").to_owned())
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (event, id) in events.iter().zip(&ids) {
        assert_eq!(event["eventType"], "INVOKE", "{event}");
        assert_eq!(event["requestId"], id.as_str(), "{event}");
        assert_eq!(
            event["invokedFunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:echo"
        );
        // Lambda's 3 s from the invocation's start, so within the last minute's reach.
        let deadline = event["deadlineMs"].as_u64().unwrap();
        assert!(
            deadline > now_ms - 60_000 && deadline < now_ms + 3_000,
            "{event}"
        );
    }
    let shutdown = &events[2];
    assert_eq!(shutdown["eventType"], "SHUTDOWN", "{shutdown}");
    assert_eq!(shutdown["shutdownReason"], "spindown");
    assert!(shutdown["deadlineMs"].as_u64().unwrap() >= now_ms - 60_000);
    // SHUTDOWN comes after the last invocation.
    let last_end = err.rfind("END RequestId:").unwrap();
    assert!(
        err.find(r#""eventType":"SHUTDOWN""#).unwrap() > last_end,
        "{err}"
    );
}

#[test]
fn the_functions_logs_reach_the_extension_and_the_layer_is_on_its_paths() {
    let events = br#"{"action":"log"} {"action":"context"}"#;
    let (output, err) = invoke_with_logwatch(misbehave_zip(), &["-e", "GREETING=hi"], events);
    // The function's own lines are on stderr as always...
    assert!(err.contains("misbehave says hello on stdout"), "{err}");
    // ...and in the batches POSTed to the extension's listener, delivered before SHUTDOWN.
    let records: Vec<Value> = logwatch(&err, "telemetry")
        .iter()
        .flat_map(|batch| json(batch).as_array().cloned().unwrap_or_default())
        .collect();
    let lines: Vec<&str> = records
        .iter()
        .map(|r| {
            assert_eq!(r["type"], "function", "{r}");
            assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
            r["record"].as_str().unwrap()
        })
        .collect();
    assert!(lines.contains(&"misbehave says hello on stdout"), "{err}");
    assert!(lines.contains(&"misbehave says hello on stderr"), "{err}");
    // The extension's own lines are not function records.
    assert!(
        !lines.iter().any(|l| l.starts_with("logwatch:")),
        "{lines:?}"
    );

    let context = &payloads(&output)[1];
    let env = &context["env"];
    let library_path = env["LD_LIBRARY_PATH"].as_str().unwrap();
    let (before, opt_lib) = library_path.rsplit_once(':').unwrap();
    assert!(
        before.starts_with("/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"),
        "{library_path}"
    );
    assert!(before.ends_with(&format!("{}/lib", context["cwd"].as_str().unwrap())));
    assert!(
        opt_lib.ends_with("/lib") && opt_lib.contains("lambda-opt-"),
        "{library_path}"
    );
    let opt = opt_lib.trim_end_matches("/lib");
    let path = env["PATH"].as_str().unwrap();
    assert!(path.ends_with(&format!(":{opt}/bin")), "{env}");
    assert!(
        !Path::new(opt).exists(),
        "the stand-in /opt is removed afterwards"
    );
}

fn layer_zip(dir: &Path, entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> PathBuf {
    let path = dir.join("layer.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    for (name, data) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    if let Some((name, target)) = link {
        zip.add_symlink(name, target, options).unwrap();
    }
    zip.finish().unwrap();
    path
}

#[test]
fn a_layer_escaping_opt_is_refused_before_the_function_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (entries, link, entry) in [
        (
            &[("../../etc/cron.d/x", &b"x"[..])][..],
            None,
            "../../etc/cron.d/x",
        ),
        (
            &[][..],
            Some(("lib/libc.so.6", "/usr/lib/libc.so.6")),
            "lib/libc.so.6",
        ),
    ] {
        let layer = layer_zip(dir.path(), entries, link);
        let output = invoke(&[zip_arg(echo_zip()), "--layer", zip_arg(&layer), "-d", "{}"]);
        assert_exit(&output, 1);
        let err = stderr(&output);
        assert!(
            err.contains(&format!(
                "error: the layer `{}` has an entry that would land outside /opt: `{entry}`",
                layer.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("help: Lambda extracts a layer into /opt"),
            "{err}"
        );
        assert!(!err.contains("START RequestId"), "{err}");
    }
    let missing = dir.path().join("missing.zip");
    let output = invoke(&[
        zip_arg(echo_zip()),
        "--layer",
        zip_arg(&missing),
        "-d",
        "{}",
    ]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot read the layer"),
        "{}",
        stderr(&output)
    );
}

/// An extension that ends before registering fails the init as Lambda reports it, the function's
/// own answer never given.
#[test]
fn an_extension_that_crashes_at_start_fails_the_init_with_extension_crash() {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("crash.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&layer).unwrap());
    zip.start_file(
        "extensions/crash",
        zip::write::SimpleFileOptions::default().unix_permissions(0o755),
    )
    .unwrap();
    zip.write_all(b"#!/bin/sh\necho crash is starting\nexit 3\n")
        .unwrap();
    zip.finish().unwrap();
    let output = invoke(&[zip_arg(echo_zip()), "--layer", zip_arg(&layer), "-d", "{}"]);
    assert_exit(&output, 1);
    let payload = &payloads(&output)[0];
    assert_eq!(payload["errorType"], "Extension.Crash", "{payload}");
    assert!(
        payload["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Error: extension crash exited: exit status 3"),
        "{payload}"
    );
    let err = stderr(&output);
    assert!(err.contains("crash is starting"), "{err}");
    assert!(
        err.contains("help: an extension from a layer failed"),
        "{err}"
    );
}
