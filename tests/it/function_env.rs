//! The function's environment as `invoke` and `serve` give it (issue 24, item 4): `--env-file`
//! as `docker run --env-file` reads it, the settings' `env` table, their order under `--env`,
//! and Lambda's logging configuration (`--log-format`, `--log-level`) with the platform's own
//! lines as JSON.

use crate::invoke::{assert_exit, echo_zip, misbehave_zip, payloads, zip_arg};
use crate::support::{self, stderr, stdout};

use std::fs;
use std::process::Output;

use serde_json::Value;

/// `invoke ARGS` with `PASSED=from-this-machine` in the tool's environment.
fn invoke_here(args: &[&str]) -> Output {
    support::tool()
        .arg("invoke")
        .args(args)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("PASSED", "from-this-machine")
        .env_remove("NOT_HERE")
        .output()
        .expect("run cargo-lambda-build invoke")
}

#[test]
fn an_env_file_is_read_as_docker_reads_it_under_the_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("function.env");
    fs::write(
        &file,
        "# the function's settings\n\
         \n\
         \x20 FROM_FILE=a value with \"quotes\" = and # kept\n\
         SHARED=from the file\n\
         PASSED\n\
         NOT_HERE\n\
         GREETING=hi\n",
    )
    .unwrap();
    let output = invoke_here(&[
        zip_arg(misbehave_zip()),
        "-d",
        r#"{"action":"context"}"#,
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "SHARED=from the flag",
    ]);
    assert_exit(&output, 0);
    let context = &payloads(&output)[0];
    let var = |key: &str| context["env"][key].as_str().map(str::to_owned);
    assert_eq!(
        var("FROM_FILE").as_deref(),
        Some("a value with \"quotes\" = and # kept")
    );
    // `--env` wins over the file.
    assert_eq!(var("SHARED").as_deref(), Some("from the flag"));
    // `KEY` alone passes this machine's value, and nothing when it has none.
    assert_eq!(var("PASSED").as_deref(), Some("from-this-machine"));
    assert_eq!(var("NOT_HERE"), None);

    // A line docker refuses is refused with its file and line, before anything runs.
    let refused = |text: &str| {
        fs::write(&file, text).unwrap();
        let args = ["-d", "{}", "--env-file", file.to_str().unwrap()];
        let output = invoke_here(&[&[zip_arg(misbehave_zip())][..], &args].concat());
        assert_exit(&output, 1);
        output
    };
    let output = refused("GREETING=hi\n# fine\nTABLE NAME=orders\n");
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "error: {}:3: the variable name `TABLE NAME` contains whitespace",
            file.display()
        )) && err.contains("\nhelp: write one variable per line, `KEY=VALUE`"),
        "{err}"
    );
    assert!(!err.contains("Invoking"), "{err}");

    // Lambda's reserved keys are refused from a file as from `--env`.
    let output = refused("AWS_REGION=eu-west-1\n");
    assert!(
        stderr(&output).contains("Reserved keys used in this request: AWS_REGION"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_env_table_of_the_settings_reaches_the_function_built_with_invoke_with() {
    let project = support::copy_fixture("misbehave");
    let manifest = project.path().join("Cargo.toml");
    let mut toml = fs::read_to_string(&manifest).unwrap();
    toml.push_str(
        "\n[package.metadata.lambda-build.env]\n\
         GREETING = \"hi\"\n\
         FROM_TABLE = \"package\"\n\
         SHARED = \"package\"\n\
         \n[package.metadata.lambda-build.bin.misbehave.env]\n\
         SHARED = \"bin\"\n",
    );
    fs::write(&manifest, toml).unwrap();
    let events = project.path().join("events.json");
    fs::write(&events, r#"{"action":"context"}"#).unwrap();
    let output = support::tool()
        .args(["--zip", "--locked", "--invoke-with"])
        .arg(&events)
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let out = stdout(&output);
    let context: Value =
        serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let var = |key: &str| context["env"][key].as_str().map(str::to_owned);
    // misbehave refuses to start without GREETING: the table gave it.
    assert_eq!(var("GREETING").as_deref(), Some("hi"));
    assert_eq!(var("FROM_TABLE").as_deref(), Some("package"));
    // The binary's table wins over the package's, variable by variable.
    assert_eq!(var("SHARED").as_deref(), Some("bin"));
}

/// The lines of stderr that are JSON objects.
fn json_lines(output: &Output) -> Vec<Value> {
    stderr(output)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn with_the_json_log_format_the_functions_and_the_platforms_lines_are_json() {
    let output = invoke_here(&[
        zip_arg(echo_zip()),
        "-d",
        r#"{"name":"json","log":true}"#,
        "--log-format",
        "json",
    ]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "{\"message\":\"hello, json\"}\n");
    let err = stderr(&output);
    assert!(
        !err.contains("START RequestId") && !err.contains("REPORT RequestId"),
        "{err}"
    );
    let lines = json_lines(&output);
    let of_type = |kind: &str| {
        lines
            .iter()
            .find(|line| line["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} line:\n{err}"))
    };
    let start = of_type("platform.start");
    let id = start["record"]["requestId"].as_str().unwrap();
    assert_eq!(start["record"]["version"], "$LATEST");
    assert!(start["time"].as_str().unwrap().ends_with('Z'), "{start}");
    let report = of_type("platform.report");
    assert_eq!(report["record"]["requestId"], id);
    assert_eq!(report["record"]["status"], "success");
    let metrics = &report["record"]["metrics"];
    assert_eq!(metrics["memorySizeMB"], 128);
    assert!(metrics["durationMs"].as_f64().is_some(), "{report}");
    assert!(metrics["initDurationMs"].as_f64().is_some(), "{report}");
    assert!(metrics["maxMemoryUsedMB"].as_u64().is_some(), "{report}");
    // lambda_runtime's subscriber read AWS_LAMBDA_LOG_FORMAT=JSON.
    let logged = lines
        .iter()
        .find(|line| line["fields"]["message"] == "echo was asked to log")
        .unwrap_or_else(|| panic!("the function's line is not JSON:\n{err}"));
    assert_eq!(logged["level"], "INFO");
    assert_eq!(logged["fields"]["name"], "json");

    // The level reaches the function as AWS_LAMBDA_LOG_LEVEL: its INFO line is filtered out.
    let output = invoke_here(&[
        zip_arg(echo_zip()),
        "-d",
        r#"{"name":"quiet","log":true}"#,
        "--log-level",
        "error",
    ]);
    assert_exit(&output, 0);
    assert!(
        !stderr(&output).contains("echo was asked to log"),
        "{}",
        stderr(&output)
    );
    assert!(
        json_lines(&output)
            .iter()
            .any(|line| line["type"] == "platform.report"),
        "{}",
        stderr(&output)
    );

    // Lambda takes a level only with the JSON format.
    let output = invoke_here(&[
        zip_arg(echo_zip()),
        "-d",
        "{}",
        "--log-format",
        "text",
        "--log-level",
        "debug",
    ]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("`--log-level DEBUG` needs the JSON log format"),
        "{}",
        stderr(&output)
    );
}
