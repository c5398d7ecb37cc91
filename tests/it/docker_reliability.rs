//! `--docker` when things go wrong, against the real engine (and fake ones): an engine that
//! refuses or stops mid-build, a missing image, a container killed for memory, SIGINT and
//! SIGTERM during the image build and the container run, two builds at once, and a project that
//! looks for secrets or the Docker socket from inside the container. Each failure must exit
//! non-zero with one `error:` line and a `help:` line, leave no container, and leave the previous
//! `lambda.zip` as it was.
//!
//! Same setup as docker.rs (`. .ci/docker.sh`); the fake engines need no real one.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::docker::{
    PreviousZip, Setup, Watched, assert_refused, containers_from, containers_of, elf_machine,
    project, remove_built_images, report_time, run_with_pid, setup, stderr, wait_until,
};
use support::fake_engine::{DyingEngine, FakeEngine, Misbehaviour};
use support::{EM_AARCH64, EM_X86_64};

/// The real engine's socket, for the proxy that plays a dying engine.
fn real_socket() -> PathBuf {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    match host.strip_prefix("unix://") {
        Some(path) => path.into(),
        None if host.is_empty() => "/var/run/docker.sock".into(),
        None => panic!("the dying-engine proxy needs a unix socket, not DOCKER_HOST={host}"),
    }
}

/// A tag no earlier run built: the image build really runs.
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// Needs no real engine: each fake one answers the first request wrongly, and the tool must say
/// that the engine at that address cannot be used, within seconds.
#[test]
fn an_engine_that_refuses_is_a_clear_error_within_seconds() {
    let project = support::copy_fixture("echo");
    let previous = PreviousZip::plant(project.path());
    for how in [
        Misbehaviour::Closes,
        Misbehaviour::Fails,
        Misbehaviour::Garbage,
        Misbehaviour::Silent,
    ] {
        let engine = FakeEngine::start(how);
        let started = Instant::now();
        let output = support::tool()
            .args(["--docker", "--zip"])
            .current_dir(project.path())
            .env("DOCKER_HOST", engine.host())
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let err = assert_refused(
            &output,
            1,
            &format!("cannot use the Docker engine at `{}`", engine.host()),
            "start the engine",
        );
        assert!(!err.contains("Compiling"), "{how:?}:\n{err}");
        assert!(
            elapsed < Duration::from_secs(30),
            "{how:?}: took {elapsed:?}"
        );
        previous.assert_intact();
    }
}

/// `--docker --zip` through an engine that dies 3 s after a request starting with `trigger`
/// (which must come): the output, and the run's pid (its containers' names hold it).
fn build_until_the_engine_dies(
    setup: &Setup,
    dir: &Path,
    trigger: &'static [u8],
) -> (std::process::Output, u32) {
    let engine = DyingEngine::start(&real_socket(), trigger, Duration::from_secs(3));
    let child = setup
        .runner
        .command(dir, &["--docker", "--zip"])
        .env("DOCKER_HOST", engine.host())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let trigger = String::from_utf8_lossy(trigger);
    assert!(
        engine.died(),
        "no `{trigger}` reached the engine:\n{}",
        stderr(&output)
    );
    (output, pid)
}

/// The engine goes away while it builds the image (a slow `RUN` step): the tool says the engine
/// stopped answering, and the engine, seeing its client gone, cancels the build.
#[test]
fn an_engine_that_stops_during_the_image_build_is_a_clear_error() {
    let Some(setup) = setup() else { return };
    let project = project(&setup, &format!("RUN echo {} && sleep 30\n", nonce()));
    let previous = PreviousZip::plant(project.path());
    let (output, _) = build_until_the_engine_dies(&setup, project.path(), b"/build?");
    assert_refused(
        &output,
        1,
        "the Docker engine stopped answering",
        "docker info",
    );
    previous.assert_intact();
    support::docker::assert_containers_from_go(&setup.base_image, "the cancelled build");
}

/// The engine goes away while the container builds: the tool says so, and since it cannot remove
/// the container any more, names it and says how to.
#[test]
fn an_engine_that_stops_during_the_container_run_is_a_clear_error() {
    let Some(setup) = setup() else { return };
    let project = slow_build_script(&setup);
    let previous = PreviousZip::plant(project.path());
    let (output, pid) = build_until_the_engine_dies(&setup, project.path(), b"/start ");
    let left = containers_of(pid);
    for name in &left {
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
    }
    let err = assert_refused(
        &output,
        1,
        "the Docker engine stopped answering",
        "docker info",
    );
    assert_eq!(left.len(), 1, "{err}");
    assert!(
        err.contains(&format!("docker rm -f {}", left[0])),
        "the container that could not be removed is not named:\n{err}"
    );
    previous.assert_intact();
}

/// The echo fixture with a build script that outlasts any test: the container is surely
/// running when the test acts.
fn slow_build_script(setup: &Setup) -> tempfile::TempDir {
    let project = project(setup, "");
    write_build_script(
        project.path(),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }\n",
    );
    project
}

fn write_build_script(dir: &Path, text: &str) {
    std::fs::write(dir.join("build.rs"), text).unwrap();
}

/// A build script that takes more memory than `--docker-memory` gives: the engine kills it, and
/// the tool says that memory ran out (cargo alone would report a failed build script, exit 101).
#[test]
fn a_container_killed_for_memory_says_so() {
    let Some(setup) = setup() else { return };
    let project = project(&setup, "");
    // 4 GiB, every page written, against a 512 MiB limit.
    write_build_script(
        project.path(),
        "fn main() {\n\
         \x20   let mut kept = Vec::new();\n\
         \x20   for _ in 0..64 {\n\
         \x20       kept.push(vec![1u8; 64 << 20]);\n\
         \x20   }\n\
         \x20   println!(\"cargo:warning=allocated {} chunks\", kept.len());\n\
         }\n",
    );
    let previous = PreviousZip::plant(project.path());
    let (output, pid) = run_with_pid(
        &setup.runner,
        project.path(),
        &["--docker", "--docker-memory", "512m", "--zip"],
    );
    let err = assert_refused(
        &output,
        1,
        "the build container ran out of memory (OOM-killed) at its limit of 512 MiB",
        "give Docker more memory",
    );
    assert!(err.contains("CARGO_BUILD_JOBS=1"), "{err}");
    assert!(!err.contains("allocated 64 chunks"), "{err}");
    previous.assert_intact();
    assert!(
        containers_of(pid).is_empty(),
        "left: {:?}",
        containers_of(pid)
    );
}

/// SIGINT and SIGTERM, each during the image build (a slow `RUN` step) and during the container
/// run (a build script that sleeps): exit 130 / 143 within seconds, no container left (the image
/// build's own included), the previous lambda.zip intact with nothing beside it.
#[test]
fn sigint_and_sigterm_during_the_image_build_and_the_container_run_leave_nothing() {
    let Some(setup) = setup() else { return };
    for (signal, code, name) in [
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        // A new tag each time, so the image is really built.
        let project = project(&setup, &format!("RUN echo {} && sleep 60\n", nonce()));
        let previous = PreviousZip::plant(project.path());
        let run = Watched::spawn(&setup.runner, project.path(), &["--docker", "--zip", "-v"]);
        run.wait_for_line("&& sleep 60", Duration::from_secs(300));
        assert!(
            wait_until(Duration::from_secs(120), || !containers_from(
                &setup.base_image
            )
            .is_empty()),
            "the slow step's container never appeared"
        );
        let pid = run.pid();
        assert_interrupted(run, signal, code, name, "the image build");
        previous.assert_intact();
        assert!(containers_of(pid).is_empty());
        // The engine cancels the build when its client goes, and removes the step's container.
        let during = format!("{name} during the image build");
        support::docker::assert_containers_from_go(&setup.base_image, &during);

        let project = slow_build_script(&setup);
        let previous = PreviousZip::plant(project.path());
        let run = Watched::spawn(&setup.runner, project.path(), &["--docker", "--zip"]);
        let pid = run.pid();
        run.wait_for_line("Container `echo`", Duration::from_secs(300));
        run.wait_for_line("Compiling echo", Duration::from_secs(300));
        assert!(!containers_of(pid).is_empty(), "no build container");
        assert_interrupted(run, signal, code, name, "the container run");
        previous.assert_intact();
        // Removed before the tool exits, not eventually.
        assert!(
            containers_of(pid).is_empty(),
            "{name} during the container run left {:?}",
            containers_of(pid)
        );
    }
}

/// Sends `signal` and checks the exit: `code`, said in one line, within seconds.
fn assert_interrupted(run: Watched, signal: libc::c_int, code: i32, name: &str, during: &str) {
    run.signal(signal);
    let signalled = Instant::now();
    let (status, err) = run.finish();
    report_time(
        &format!("exit after {name} during {during}"),
        signalled.elapsed(),
    );
    assert_eq!(status.code(), Some(code), "{name} during {during}:\n{err}");
    assert!(
        err.lines()
            .any(|l| l == format!("error: interrupted by {name}")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "{name} during {during}: exit took {:?}",
        signalled.elapsed()
    );
}

/// Two builds of one project at once, twice: both x86_64 into the same outdir, then x86_64 and
/// arm64. Each pair also builds the same new image at the same time. Both runs of each pair
/// succeed, and each zip holds a `bootstrap` of the right architecture.
#[test]
fn two_docker_builds_at_once_both_succeed() {
    if !support::require_tool("unzip") {
        return;
    }
    let Some(setup) = setup() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let pairs: [[(&str, &str, u16); 2]; 2] = [
        [("x86_64", "out", EM_X86_64), ("x86_64", "out", EM_X86_64)],
        [
            ("x86_64", "x86_64", EM_X86_64),
            ("arm64", "arm64", EM_AARCH64),
        ],
    ];
    for (round, pair) in pairs.iter().enumerate() {
        let project = project(&setup, &format!("RUN echo {}\n", nonce()));
        let started = Instant::now();
        let children: Vec<_> = pair
            .iter()
            .map(|(arch, outdir, _)| {
                setup
                    .runner
                    .command(
                        project.path(),
                        &["--docker", "--zip", "--arch", arch, "-o", outdir],
                    )
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        report_time(
            &format!(
                "two concurrent --docker builds ({} + {})",
                pair[0].0, pair[1].0
            ),
            started.elapsed(),
        );
        for ((output, pid), (arch, outdir, machine)) in outputs.iter().zip(&pids).zip(pair) {
            support::assert_success(output);
            assert!(
                containers_of(*pid).is_empty(),
                "{arch}: a container is left"
            );
            let zip = project.path().join(outdir).join("lambda.zip");
            let into = scratch.path().join(format!("{round}-{pid}"));
            let bootstrap = support::extract_bootstrap(&zip, &into);
            assert_eq!(
                elf_machine(&bootstrap),
                *machine,
                "{arch}: {}",
                zip.display()
            );
        }
        for output in &outputs {
            remove_built_images(&stderr(output));
        }
        let left: Vec<_> = std::fs::read_dir(project.path().join(pair[0].1))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["lambda.zip"], "beside the zip");
    }
}

/// The host's secrets, each with a value that shows where it came from if it leaks.
const SECRETS: [&str; 8] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "CARGO_REGISTRY_TOKEN",
    "CARGO_REGISTRIES_CORP_TOKEN",
    "MY_PASSWORD",
    "NPM_AUTH_SECRET",
];

fn secret_value(name: &str) -> String {
    format!("leaked-{name}-5ec7e7")
}

/// A project whose build script, in the container, fails on any of the host's secrets or on a
/// Docker socket (the default ones and the one `DOCKER_HOST` names): the build succeeds, and
/// the script's all-clear shows it ran. At `-v`, the printed commands (the `docker run` one
/// with its `--env` list included) show no secret's value either.
#[test]
fn the_container_sees_no_host_secret_and_no_docker_socket() {
    let Some(setup) = setup() else { return };
    let project = project(&setup, "");
    let docker_host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let sockets = [
        "/var/run/docker.sock",
        "/run/docker.sock",
        docker_host.trim_start_matches("unix://"),
    ];
    write_build_script(
        project.path(),
        &format!(
            "use std::path::Path;\n\
             fn main() {{\n\
             \x20   assert!(Path::new(\"/.dockerenv\").exists(), \"not in a container\");\n\
             \x20   let mut found = Vec::new();\n\
             \x20   for (name, value) in std::env::vars() {{\n\
             \x20       if {names:?}.contains(&name.as_str()) || value.contains(\"5ec7e7\") {{\n\
             \x20           found.push(format!(\"variable {{name}}\"));\n\
             \x20       }}\n\
             \x20   }}\n\
             \x20   for socket in {sockets:?} {{\n\
             \x20       if !socket.is_empty() && Path::new(socket).exists() {{\n\
             \x20           found.push(format!(\"socket {{socket}}\"));\n\
             \x20       }}\n\
             \x20   }}\n\
             \x20   assert!(found.is_empty(), \"visible in the container: {{found:?}}\");\n\
             \x20   println!(\"cargo:warning=no host secret and no Docker socket in the container\");\n\
             }}\n",
            names = [&SECRETS[..], &["DOCKER_HOST"]].concat(),
        ),
    );
    let mut command = setup
        .runner
        .command(project.path(), &["--docker", "--zip", "-v"]);
    for name in SECRETS {
        command.env(name, secret_value(name));
    }
    // A build setting that does reach the container, so the `--env` list is not empty.
    command.env("CARGO_BUILD_JOBS", "2");
    let output = command.output().unwrap();
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(
        err.contains("no host secret and no Docker socket in the container"),
        "the build script's all-clear is missing:\n{err}"
    );
    let run_line = err
        .lines()
        .find(|l| l.contains("`docker run "))
        .unwrap_or_else(|| panic!("`-v` printed no `docker run`:\n{err}"));
    assert!(
        run_line.contains("--env 'CARGO_BUILD_JOBS=2'"),
        "{run_line}"
    );
    let everything = format!("{}{err}", String::from_utf8_lossy(&output.stdout));
    for name in SECRETS {
        assert!(
            !everything.contains(&secret_value(name)),
            "the value of {name} is printed:\n{everything}"
        );
    }
}
