//! `cargo lambda-build doctor` on this machine and on machines made to lack something: zig
//! hidden, qemu hidden, no Rust, no engine, an engine that cannot see this machine's files. Each
//! answer is one line per check, every line that is not `ok` names the fix, the JSON of the same
//! run parses into the same checks, and the exit code is 1 exactly when a plain build cannot run.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{self, stderr, stdout};

/// One line of the human report: `status  label: message[; help: fix]`.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    status: String,
    label: String,
    message: String,
    help: Option<String>,
}

fn parse_line(line: &str) -> Line {
    let (status, rest) = line
        .trim_start()
        .split_once("  ")
        .unwrap_or_else(|| panic!("no status in `{line}`"));
    let (label, rest) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("no label in `{line}`"));
    let (message, help) = match rest.split_once("; help: ") {
        Some((message, help)) => (message, Some(help.to_string())),
        None => (rest, None),
    };
    Line {
        status: status.to_string(),
        label: label.to_string(),
        message: message.to_string(),
        help,
    }
}

/// Both reports of one machine: the human one and the JSON one.
struct Report {
    lines: Vec<Line>,
    json: Vec<serde_json::Value>,
    code: i32,
    human: Output,
}

impl Report {
    fn line(&self, label: &str) -> &Line {
        self.lines
            .iter()
            .find(|l| l.label == label)
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{}", stdout(&self.human)))
    }
}

/// Runs `doctor` and `doctor --message-format json` as `command` sets them up, and checks what
/// every answer must hold: one line per check, a fix on every line that is not `ok`, the same
/// checks in JSON, exit 1 exactly when there is an error.
fn doctor(command: impl Fn() -> Command) -> Report {
    let human = command().arg("doctor").output().unwrap();
    let json = command()
        .args(["doctor", "--message-format", "json"])
        .output()
        .unwrap();
    let text = stdout(&human);
    let lines: Vec<Line> = text.lines().map(parse_line).collect();
    let code = human.status.code().expect("an exit code");
    for line in &lines {
        assert!(
            ["ok", "warning", "error"].contains(&line.status.as_str()),
            "{line:?}"
        );
        if line.status != "ok" {
            assert!(
                line.help.as_ref().is_some_and(|h| !h.is_empty()),
                "no fix named for `{}`:\n{text}",
                line.label
            );
        }
    }
    let errors: Vec<&str> = lines
        .iter()
        .filter(|l| l.status == "error")
        .map(|l| l.label.as_str())
        .collect();
    assert_eq!(
        code,
        i32::from(!errors.is_empty()),
        "{text}{}",
        stderr(&human)
    );
    if errors.is_empty() {
        assert_eq!(stderr(&human), "");
    } else {
        support::assert_stderr_has(&human, "a plain `cargo lambda-build` cannot build here");
        for label in &errors {
            support::assert_stderr_has(&human, label);
        }
    }

    let objects: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert_eq!(json.status.code(), Some(code));
    assert_eq!(objects.len(), lines.len(), "{}", stdout(&json));
    for (object, line) in objects.iter().zip(&lines) {
        assert_eq!(object["reason"], "doctor-check");
        let label = match object["arch"].as_str() {
            Some(arch) => format!("{} {arch}", object["check"].as_str().unwrap()),
            None => object["check"].as_str().unwrap().to_string(),
        };
        assert_eq!(label.replace('-', " "), line.label);
        assert_eq!(object["status"], line.status.as_str(), "{object}");
        assert_eq!(object["help"].as_str(), line.help.as_deref(), "{object}");
    }
    Report {
        lines,
        json: objects,
        code,
        human,
    }
}

/// The tool in `dir`, with the engine at `docker_host`, and PATH as given.
fn tool_in(dir: &Path, docker_host: Option<&str>, path: Option<&std::ffi::OsStr>) -> Command {
    let mut command = support::tool();
    command.current_dir(dir).env_remove("CARGO_TARGET_DIR");
    if let Some(host) = docker_host {
        command.env("DOCKER_HOST", host);
    }
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command
}

/// A unix socket nobody listens on: an engine that is down.
fn dead_socket(dir: &Path) -> String {
    let socket = dir.join("dead-docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    format!("unix://{}", socket.display())
}

#[test]
fn doctor_on_this_machine() {
    // It may probe the engine of DOCKER_HOST, which the Docker tests watch for containers.
    let _engine = support::docker::exclusive();
    let project = support::copy_fixture("echo");
    let report = doctor(|| tool_in(project.path(), None, None));
    // One line per check, the per-architecture ones for both.
    let mut expected = vec!["rust".to_string()];
    for check in ["target", "linker", "local run"] {
        expected.extend(["x86_64", "arm64"].map(|arch| format!("{check} {arch}")));
    }
    expected.extend(["docker", "settings", "functions"].map(String::from));
    let labels: Vec<&str> = report.lines.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, expected);
    // The tests run here: Rust is installed, and a plain build of echo works.
    for label in ["rust", "target x86_64", "linker x86_64", "functions"] {
        assert_eq!(report.line(label).status, "ok", "{:?}", report.line(label));
    }
    assert_eq!(report.code, 0, "{}", stdout(&report.human));
    assert!(
        report
            .line("functions")
            .message
            .contains("`echo` (package `echo`)")
    );
    assert!(
        report
            .line("settings")
            .message
            .contains("x86_64, profile release")
    );
    if support::zig_installed() {
        let arm = report.line("linker arm64");
        assert_eq!(arm.status, "ok");
        assert!(arm.message.starts_with("zig "), "{arm:?}");
    }
    if support::find_tool("qemu-aarch64-static").is_some()
        && Path::new("/usr/aarch64-linux-gnu").is_dir()
    {
        let run = report.line("local run arm64");
        assert!(run.message.contains("qemu-aarch64-static"), "{run:?}");
    }
}

#[test]
fn doctor_with_zig_hidden() {
    let project = support::copy_fixture("echo");
    let scratch = tempfile::tempdir().unwrap();
    // zig on PATH, Python's ziglang, and the GNU cross gcc: no arm64 linker at all.
    let path = support::path_without(
        scratch.path(),
        &["zig", "python3", "python", "aarch64-linux-gnu-gcc"],
    );
    let engine = dead_socket(scratch.path());
    let report = doctor(|| tool_in(project.path(), Some(&engine), Some(&path)));
    let arm = report.line("linker arm64");
    assert_eq!(arm.status, "warning", "{arm:?}");
    assert!(arm.message.contains("no linker for arm64"), "{arm:?}");
    let help = arm.help.as_deref().unwrap();
    for fix in ["pip install ziglang", "gcc-aarch64-linux-gnu", "--docker"] {
        assert!(help.contains(fix), "{fix}: {help}");
    }
    // The plain build (x86_64, on this x86_64 machine) needs no cross linker.
    assert_ne!(report.line("linker x86_64").status, "error");
    assert_eq!(report.code, 0, "{}", stdout(&report.human));
}

#[test]
fn doctor_with_qemu_hidden() {
    let project = support::copy_fixture("echo");
    let scratch = tempfile::tempdir().unwrap();
    let path = support::path_without(scratch.path(), &["qemu-aarch64-static", "qemu-aarch64"]);
    let engine = dead_socket(scratch.path());
    let report = doctor(|| tool_in(project.path(), Some(&engine), Some(&path)));
    let run = report.line("local run arm64");
    assert_eq!(run.status, "warning", "{run:?}");
    assert!(run.message.contains("`qemu-aarch64-static`"), "{run:?}");
    assert!(
        run.help
            .as_deref()
            .unwrap()
            .contains("apt-get install qemu-user-static")
    );
    assert_eq!(report.line("local run x86_64").status, "ok");
    assert_eq!(report.code, 0, "a local run is not a build");
}

#[test]
fn doctor_without_rust_exits_1_naming_rustup() {
    let project = support::copy_fixture("echo");
    let scratch = tempfile::tempdir().unwrap();
    let path = support::path_with_only(scratch.path(), &[]);
    let engine = dead_socket(scratch.path());
    let report = doctor(|| {
        let mut command = tool_in(project.path(), Some(&engine), Some(&path));
        command.env_remove("CARGO").env_remove("RUSTC");
        command
    });
    assert_eq!(report.code, 1);
    let rust = report.line("rust");
    assert_eq!(rust.status, "error");
    assert!(rust.message.contains("could not run `rustc`"), "{rust:?}");
    assert!(rust.help.as_deref().unwrap().contains("https://rustup.rs"));
    assert_eq!(report.line("functions").status, "error");
    let failed: Vec<&str> = report
        .json
        .iter()
        .filter(|o| o["status"] == "error")
        .map(|o| o["check"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"rust") && failed.contains(&"functions"),
        "{failed:?}"
    );
}

#[test]
fn doctor_with_no_engine() {
    let project = support::copy_fixture("echo");
    let scratch = tempfile::tempdir().unwrap();
    let engine = dead_socket(scratch.path());
    let report = doctor(|| tool_in(project.path(), Some(&engine), None));
    let docker = report.line("docker");
    assert_eq!(docker.status, "warning", "{docker:?}");
    assert!(docker.message.contains(&engine), "{docker:?}");
    let help = docker.help.as_deref().unwrap();
    assert!(help.contains("start the engine"), "{help}");
    assert!(help.contains("leave out `--docker`"), "{help}");
    // A plain build needs no engine.
    assert_eq!(report.code, 0, "{}", stdout(&report.human));
}

#[test]
fn doctor_outside_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let engine = dead_socket(dir.path());
    let report = doctor(|| tool_in(dir.path(), Some(&engine), None));
    let functions = report.line("functions");
    assert_eq!(functions.status, "warning");
    assert!(
        functions
            .help
            .as_deref()
            .unwrap()
            .contains("cargo lambda-build new")
    );
    assert_eq!(report.code, 0);
}

#[test]
fn doctor_names_cargo_lambdas_settings() {
    let project = support::copy_fixture("echo");
    std::fs::write(
        project.path().join("CargoLambda.toml"),
        "[build]\nfeatures = [\"test\"]\ncompiler = \"cargo\"\n",
    )
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let engine = dead_socket(scratch.path());
    let report = doctor(|| tool_in(project.path(), Some(&engine), None));
    let settings = report.line("settings");
    assert_eq!(settings.status, "warning", "{settings:?}");
    for part in [
        "cargo-lambda's `[build]` in `",
        "CargoLambda.toml` (read as features test)",
        "cargo-lambda's `compiler` has no equivalent here",
    ] {
        assert!(settings.message.contains(part), "{part}: {settings:?}");
    }
}

#[test]
fn doctor_with_the_local_engine() {
    let Some(setup) = support::docker::setup() else {
        return;
    };
    let project = support::docker::project(&setup, "");
    let report = doctor(|| {
        let mut command = support::tool_as(&setup.runner);
        command.current_dir(project.path());
        command
    });
    let docker = report.line("docker");
    assert_eq!(docker.status, "ok", "{docker:?}");
    assert!(
        docker.message.contains("it sees this machine's files"),
        "{docker:?}"
    );
}

#[test]
fn doctor_with_an_engine_that_cannot_see_the_files() {
    const REMOTE_ENV: &str = "LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST";
    let Some(setup) = support::docker::setup() else {
        return;
    };
    let Some(host) = std::env::var(REMOTE_ENV).ok().filter(|h| !h.is_empty()) else {
        support::skip_or_fail(&format!(
            "{REMOTE_ENV} is not set; `. .ci/remote-docker.sh` starts an engine that cannot see \
             this machine's files"
        ));
        return;
    };
    let project = support::docker::project(&setup, "");
    let report = doctor(|| {
        let mut command = support::tool_as(&setup.runner);
        command
            .current_dir(project.path())
            .env("DOCKER_HOST", &host);
        command
    });
    let docker = report.line("docker");
    assert_eq!(docker.status, "ok", "{docker:?}");
    assert!(
        docker
            .message
            .contains("it does not see this machine's files"),
        "{docker:?}"
    );
    assert!(docker.message.contains(&host), "{docker:?}");
    assert!(
        docker
            .help
            .as_deref()
            .unwrap()
            .contains("--docker-files copy"),
        "{docker:?}"
    );
}
