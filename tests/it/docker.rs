//! `--docker` against a real engine: the fixture is built in a container of the project's own
//! `lambda.Dockerfile` (it starts `FROM` the test base image that `.ci/docker.sh` builds, since
//! nothing can be pulled here), as a non-root user, and the zips answer invocations under the
//! Runtime API emulator (arm64 under qemu-user). Also: cleanup after a failure, the
//! no-op rebuild time, and the errors for a missing engine and a broken Dockerfile. Signals, OOM,
//! concurrency and hostile projects: docker_reliability.rs.
//!
//! Needs `DOCKER_HOST` (or the default socket) and `LAMBDA_BUILD_TEST_BASE_IMAGE`; when run as
//! root, `LAMBDA_BUILD_TEST_USER` too (`. .ci/docker.sh` sets all three). Without them the tests
//! say `skipped`, unless `LAMBDA_BUILD_TEST_REQUIRE_ALL=1`, which makes that a failure.

use crate::support;

use std::time::{Duration, Instant};

use support::docker::{
    OVERRIDE_MARK, PreviousZip, assert_echo_answers, assert_refused, containers_from,
    containers_of, elf_machine, not_owned_by, project, project_with_dockerfile, report_time,
    run_with_pid, setup, stderr, target_dir,
};

#[test]
fn docker_builds_answer_invocations_belong_to_the_user_and_rebuild_in_seconds() {
    if !support::require_tools(&["cargo-lambda", "unzip", "qemu-aarch64-static"]) {
        return;
    }
    let Some(setup) = setup() else { return };
    let runner = &setup.runner;
    let project = project(&setup, "");
    let dir = project.path();

    // x86_64, in the project's image.
    let started = Instant::now();
    let (output, pid) = run_with_pid(runner, dir, &["--docker", "--zip"]);
    support::assert_success(&output);
    report_time("x86_64 --docker build", started.elapsed());
    let err = stderr(&output);
    let dockerfile = dir.join("lambda.Dockerfile");
    assert!(
        err.contains(&format!("({})", dockerfile.display()))
            || err.contains(&format!("from {}", dockerfile.display())),
        "the project's lambda.Dockerfile is not named:\n{err}"
    );
    assert!(
        containers_of(pid).is_empty(),
        "left: {:?}",
        containers_of(pid)
    );
    // Unzipped by this test (as root in CI), so outside the project whose ownership is checked.
    let scratch = tempfile::tempdir().unwrap();
    let bootstrap =
        support::extract_bootstrap(&dir.join("lambda.zip"), &scratch.path().join("x86_64"));
    assert_eq!(elf_machine(&bootstrap), support::EM_X86_64);
    let bytes = std::fs::read(&bootstrap).unwrap();
    assert!(
        bytes
            .windows(OVERRIDE_MARK.len())
            .any(|w| w == OVERRIDE_MARK),
        "bootstrap lacks the build-id set by the project's lambda.Dockerfile"
    );
    assert_echo_answers(&bootstrap, None, "hello");

    // Nothing changed: no image build, no compilation, seconds.
    let started = Instant::now();
    let output = runner.run(dir, &["--docker", "--zip"]);
    let elapsed = started.elapsed();
    support::assert_success(&output);
    report_time("no-op --docker rebuild", elapsed);
    let err = stderr(&output);
    assert!(err.contains("Reusing image"), "{err}");
    assert!(!err.contains("Building image"), "{err}");
    assert!(!err.contains("Compiling echo"), "{err}");
    assert!(
        elapsed < Duration::from_secs(15),
        "a no-op rebuild took {elapsed:?}"
    );

    // arm64, cross-compiled inside the container (no emulation), run under qemu.
    let started = Instant::now();
    let (output, pid) = run_with_pid(
        runner,
        dir,
        &["--docker", "--arch", "arm64", "--zip", "-o", "arm64"],
    );
    support::assert_success(&output);
    report_time("arm64 --docker build", started.elapsed());
    assert!(
        containers_of(pid).is_empty(),
        "left: {:?}",
        containers_of(pid)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("architecture  arm64"), "{stdout}");
    let bootstrap =
        support::extract_bootstrap(&dir.join("arm64/lambda.zip"), &scratch.path().join("arm64"));
    assert_eq!(elf_machine(&bootstrap), support::EM_AARCH64);
    assert_echo_answers(&bootstrap, Some(&support::QEMU), "hello");

    // Everything the builds left belongs to the user: the zips, the container's target dirs, the
    // crates cargo unpacked in the container.
    let docker_target = target_dir(runner).join("lambda-build/docker");
    assert!(docker_target.join("x86_64").is_dir() && docker_target.join("arm64").is_dir());
    let mut foreign = not_owned_by(dir, runner.uid);
    foreign.extend(not_owned_by(&target_dir(runner), runner.uid));
    if let Some(home) = runner.home() {
        foreign.extend(not_owned_by(&home.join(".cargo"), runner.uid));
    }
    assert!(
        foreign.is_empty(),
        "{} paths are not owned by uid {}, e.g. {:?}",
        foreign.len(),
        runner.uid,
        &foreign[..foreign.len().min(5)]
    );
}

#[test]
fn a_compile_error_in_the_container_exits_101_and_leaves_no_container() {
    let Some(setup) = setup() else { return };
    let project = project(&setup, "");
    std::fs::write(
        project.path().join("src/main.rs"),
        "fn main() { let x: u32 = \"not a number\"; }\n",
    )
    .unwrap();
    let (output, pid) = run_with_pid(&setup.runner, project.path(), &["--docker", "--zip"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(101), "{err}");
    assert!(
        err.contains("mismatched types"),
        "rustc's error is not shown:\n{err}"
    );
    assert!(
        err.contains("error: `cargo build` failed in the container"),
        "{err}"
    );
    assert!(
        containers_of(pid).is_empty(),
        "left: {:?}",
        containers_of(pid)
    );
    assert!(!project.path().join("lambda.zip").exists());
}

#[test]
fn a_broken_dockerfile_shows_dockers_message() {
    let Some(setup) = setup() else { return };
    // A failing step: Docker's message names the command and its exit code.
    let project = project(&setup, "RUN echo checking the toolchain && exit 3\n");
    let previous = PreviousZip::plant(project.path());
    let output = setup.runner.run(project.path(), &["--docker", "--zip"]);
    let err = assert_refused(&output, 1, "building the image from", "fix the Dockerfile");
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    // The step's own output is shown too.
    assert!(err.contains("checking the toolchain"), "{err}");
    previous.assert_intact();
    assert!(
        containers_from(&setup.base_image).is_empty(),
        "the failed step's container is left: {:?}",
        containers_from(&setup.base_image)
    );

    // An instruction Docker does not know.
    let project = project_with_dockerfile(&setup, "FROM scratch\nCOPYY a b\n");
    let output = setup.runner.run(project.path(), &["--docker"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.to_lowercase().contains("unknown instruction"),
        "Docker's parse error is not shown:\n{err}"
    );
}

#[test]
fn a_missing_docker_image_is_refused() {
    let Some(setup) = setup() else { return };
    let project = project(&setup, "");
    let previous = PreviousZip::plant(project.path());
    let output = setup.runner.run(
        project.path(),
        &[
            "--docker-image",
            "cargo-lambda-build-test:does-not-exist",
            "--zip",
        ],
    );
    assert_refused(
        &output,
        1,
        "the Docker image `cargo-lambda-build-test:does-not-exist` does not exist",
        "pull or build it first",
    );
    previous.assert_intact();
}

/// Needs no engine: the point is that there is none.
#[test]
fn no_engine_is_a_clear_error_within_seconds() {
    let project = support::copy_fixture("echo");
    let previous = PreviousZip::plant(project.path());
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (host, named) in [
        (
            "unix:///nonexistent/docker.sock".to_string(),
            "`unix:///nonexistent/docker.sock` (DOCKER_HOST)",
        ),
        (format!("tcp://127.0.0.1:{free_port}"), "(DOCKER_HOST)"),
    ] {
        let started = Instant::now();
        let output = support::tool()
            .args(["--docker", "--zip"])
            .current_dir(project.path())
            .env("DOCKER_HOST", &host)
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let err = assert_refused(
            &output,
            1,
            "cannot use the Docker engine at",
            "start the engine",
        );
        assert!(err.contains(named) && err.contains(&host), "{err}");
        assert!(!err.contains("Compiling"), "{err}");
        assert!(elapsed < Duration::from_secs(8), "{host}: took {elapsed:?}");
        previous.assert_intact();
    }
}

/// Needs no engine: the Dockerfile is read before the engine is contacted.
#[test]
fn a_missing_dockerfile_is_named() {
    let project = support::copy_fixture("echo");
    let output = support::tool()
        .args(["--dockerfile", "ci/none.Dockerfile"])
        .current_dir(project.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let path = project.path().join("ci/none.Dockerfile");
    assert!(
        err.contains(&format!("cannot read the Dockerfile `{}`", path.display())),
        "{err}"
    );
    assert!(
        err.contains("help: point `--dockerfile` at a readable file"),
        "{err}"
    );
}
