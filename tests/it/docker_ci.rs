//! `--docker` on fresh CI runners, against the CI's engine: the bundled Dockerfile printed as it
//! is embedded, the base image as a build argument, the image named before the build
//! (`--print-image-tag`) and after it (`docker_image` in JSON), the recipe that saves the image
//! into a CI cache and loads it on the next runner, `docker ls` / `docker clean`, and sccache in
//! the container.
//!
//! Needs what tests/docker.rs needs (`. .ci/docker.sh`), and `sccache` on the host (Debian's
//! package; `.ci/run` installs it) for the sccache test.

use crate::support;
use crate::support::assert_stderr_has;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::docker::{
    PreviousZip, Setup, assert_refused, project_with_dockerfile, remove_built_images, report_time,
    setup, stderr,
};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn docker(args: &[&str]) -> std::process::Output {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        stderr(&output)
    );
    output
}

fn image_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// A project whose Dockerfile takes its base image as a build argument, with a default that
/// does not exist: a build succeeds only when the argument reaches the engine. Its flags are
/// those of the other Docker tests' image, so their compiled dependencies are reused.
fn mirrored_project(setup: &Setup) -> tempfile::TempDir {
    project_with_dockerfile(
        setup,
        &format!(
            "# The base image comes from --docker-build-arg, as a registry mirror would.\n\
             ARG BASE_IMAGE=lambda-build-test-base:no-such-mirror\n\
             FROM ${{BASE_IMAGE}}\n\
             ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=\"-C link-arg=-Wl,--build-id=0x{}\"\n",
            support::docker::hex(support::docker::OVERRIDE_MARK)
        ),
    )
}

#[test]
fn dockerfile_prints_the_bundled_file_byte_for_byte() {
    let output = support::tool().arg("dockerfile").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let bundled =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("lambda.Dockerfile")).unwrap();
    assert!(output.stdout == bundled, "the printed file differs");
    let text = stdout(&output);
    assert!(
        text.contains(
            "ARG BASE_IMAGE=public.ecr.aws/amazonlinux/amazonlinux:2023\nFROM ${BASE_IMAGE}"
        ),
        "{text}"
    );
}

/// The CI recipe of docs/docker-ci.md: name the image before building, build, save it under that
/// name, then on a "fresh runner" (the image removed) load it and build without rebuilding it.
#[test]
fn the_image_is_named_before_the_build_saved_and_loaded_by_a_ci_cache() {
    let Some(setup) = setup() else { return };
    let runner = &setup.runner;
    let project = mirrored_project(&setup);
    let dir = project.path();
    let base = format!("BASE_IMAGE={}", setup.base_image);
    let arg: [&str; 2] = ["--docker-build-arg", &base];

    // Named before anything is built, in well under a second of the engine's time (none).
    let started = Instant::now();
    let output = runner.run(dir, &[&arg[..], &["--print-image-tag"]].concat());
    support::assert_success(&output);
    report_time("--print-image-tag", started.elapsed());
    let tag = stdout(&output).trim().to_string();
    assert!(tag.starts_with("cargo-lambda-build:"), "{tag}");
    assert!(!dir.join("lambda.zip").exists());
    // A different base image is a different image.
    let other = runner.run(
        dir,
        &[
            "--docker-build-arg",
            "BASE_IMAGE=elsewhere/al:2023",
            "--print-image-tag",
        ],
    );
    support::assert_success(&other);
    assert_ne!(stdout(&other).trim(), tag);
    let _ = Command::new("docker").args(["rmi", &tag]).output();

    // The build uses that image and says so in its JSON.
    let output = runner.run(
        dir,
        &[&arg[..], &["--docker", "--zip", "--message-format", "json"]].concat(),
    );
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(err.contains(&format!("Building image {tag}")), "{err}");
    let json: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(json["docker_image"], tag.as_str(), "{json}");
    let first_zip = std::fs::read(dir.join("lambda.zip")).unwrap();

    // The CI cache: `docker save` under the name, then a fresh runner without the image.
    let cache = tempfile::tempdir().unwrap();
    let tar = cache.path().join("lambda-builder.tar");
    let tar_text = tar.to_str().unwrap();
    docker(&["save", "--output", tar_text, &tag]);
    docker(&["rmi", &tag]);
    assert!(!image_exists(&tag));
    let started = Instant::now();
    docker(&["load", "--input", tar_text]);
    report_time("docker load of the builder image", started.elapsed());
    std::fs::remove_file(dir.join("lambda.zip")).unwrap();
    let output = runner.run(dir, &[&arg[..], &["--docker", "--zip"]].concat());
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(err.contains(&format!("Reusing image {tag}")), "{err}");
    assert!(!err.contains("Building image"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("lambda.zip")).unwrap(),
        first_zip,
        "the loaded image builds the same zip"
    );

    // Or under a registry's name, passed as --docker-image (after `docker pull`).
    docker(&["tag", &tag, "registry.example/team/lambda-builder:1"]);
    let output = runner.run(
        dir,
        &[
            "--docker-image",
            "registry.example/team/lambda-builder:1",
            "--zip",
            "--message-format",
            "json",
        ],
    );
    support::assert_success(&output);
    let json: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(
        json["docker_image"],
        "registry.example/team/lambda-builder:1"
    );
    docker(&["rmi", "registry.example/team/lambda-builder:1"]);
    remove_built_images(&format!("Building image {tag}\n"));
}

#[test]
fn a_build_argument_the_dockerfile_does_not_declare_is_refused_before_building() {
    let Some(setup) = setup() else { return };
    let project = mirrored_project(&setup);
    let previous = PreviousZip::plant(project.path());
    let output = setup.runner.run(
        project.path(),
        &["--docker", "--zip", "--docker-build-arg", "BASE_IMGE=x"],
    );
    let err = assert_refused(
        &output,
        1,
        "the build argument `BASE_IMGE` (`--docker-build-arg`) is not declared in",
        "declare it with `ARG BASE_IMGE` in the Dockerfile, or leave it out; the Dockerfile \
         declares `BASE_IMAGE`",
    );
    assert!(!err.contains("Building image"), "{err}");
    previous.assert_intact();
}

/// `cargo-lambda-build lambda-build ARGS` as the runner, in `dir`, without the build flags that
/// [`support::docker::Runner::command`] adds: for the commands that build nothing.
fn tool(runner: &support::docker::Runner, dir: &Path, args: &[&str]) -> std::process::Output {
    support::tool_as(&runner.0)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ls_json(runner: &support::docker::Runner, dir: &Path) -> Vec<serde_json::Value> {
    let output = tool(runner, dir, &["docker", "ls", "--message-format", "json"]);
    support::assert_success(&output);
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What a killed run leaves (its container, running on), an image, and a labelled volume are
/// listed with their sizes and removed by `docker clean`, which says what it removed.
#[test]
fn docker_ls_and_clean_show_and_remove_what_the_tool_keeps() {
    let Some(setup) = setup() else { return };
    let runner = &setup.runner;
    // `docker ls` runs in any directory: it needs no project.
    let anywhere = tempfile::tempdir().unwrap();
    runner.give(anywhere.path());
    let ls_command = |args: &[&str]| tool(runner, anywhere.path(), args);

    // A run killed with SIGKILL mid-build leaves its container running. The container is
    // waited for until it runs: killed between create and start, it would be left only created.
    let project = mirrored_project(&setup);
    let base = format!("BASE_IMAGE={}", setup.base_image);
    std::fs::write(
        project.path().join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }\n",
    )
    .unwrap();
    setup.runner.give(project.path());
    let watched = support::docker::Watched::spawn(
        runner,
        project.path(),
        &["--docker", "--docker-build-arg", &base, "-v"],
    );
    watched.wait_for_line("cargo build", Duration::from_secs(300));
    let pid = watched.pid();
    assert!(
        support::docker::wait_until(Duration::from_secs(60), || {
            !support::docker::running_containers_of(pid).is_empty()
        }),
        "no running container for the run"
    );
    watched.signal(libc::SIGKILL);
    let (status, _) = watched.finish();
    assert!(!status.success());
    let left = support::docker::containers_of(pid);
    assert_eq!(left.len(), 1, "{left:?}");
    // Whatever fails below, the container (which holds the shared target dir's lock) goes.
    let _left_guard = RemoveOnDrop(left[0].clone());
    let volume = "cargo-lambda-build-test-volume";
    docker(&[
        "volume",
        "create",
        "--label",
        "cargo-lambda-build=test",
        volume,
    ]);

    let output = ls_command(&["docker", "ls"]);
    support::assert_success(&output);
    let table = stdout(&output);
    assert!(table.starts_with("KIND"), "{table}");
    let items = ls_json(runner, anywhere.path());
    let find = |kind: &str, name: &str| {
        items
            .iter()
            .find(|i| i["kind"] == kind && i["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {items:?}"))
            .clone()
    };
    let container = find("container", &left[0]);
    assert_eq!(container["running"], true, "{container}");
    let tag = stdout(&runner.run(
        project.path(),
        &["--docker-build-arg", &base, "--print-image-tag"],
    ))
    .trim()
    .to_string();
    let image = find("image", &tag);
    assert!(
        image["size"].as_u64().unwrap() > 10 << 20,
        "the image's size: {image}"
    );
    assert!(table.contains(&tag), "{table}");
    // This engine's `system df` is older than the client's: the size is measured with du.
    let volume_item = find("volume", volume);
    assert!(volume_item["size"].is_u64(), "{volume_item}");
    // Nothing that is not the tool's.
    assert!(
        !items.iter().any(|i| i["name"]
            .as_str()
            .unwrap()
            .contains("lambda-build-test-base")),
        "{items:?}"
    );

    // Without --force, the running container stays (it could be a build in progress).
    let output = ls_command(&["docker", "clean"]);
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(err.contains(&format!("Removed volume {volume}")), "{err}");
    assert!(
        err.contains(&format!("kept container {}", left[0])),
        "{err}"
    );
    assert!(
        err.contains(&format!("kept image {tag}: a running container uses it")),
        "{err}"
    );
    assert!(image_exists(&tag));

    let output = ls_command(&["docker", "clean", "--force"]);
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("Removed container {}", left[0])),
        "{err}"
    );
    assert!(err.contains(&format!("Removed image {tag}")), "{err}");
    assert!(support::docker::containers_of(pid).is_empty());
    assert!(!image_exists(&tag));
    let output = ls_command(&["docker", "ls"]);
    support::assert_success(&output);
    assert_eq!(stdout(&output), "");
    assert_stderr_has(&output, "nothing of cargo-lambda-build");
}

struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// An image with sccache, made from the test base image and the host's sccache (Debian's
/// package: the same bookworm libraries as the base image).
fn sccache_image(setup: &Setup) -> String {
    let sccache = support::find_tool("sccache").unwrap();
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(&sccache).unwrap());
    let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let name = format!(
        "lambda-build-test-sccache:{}-{id}",
        setup.base_image.rsplit(':').next().unwrap()
    );
    if image_exists(&name) {
        return name;
    }
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(&sccache, context.path().join("sccache")).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {}\nCOPY sccache /usr/local/bin/sccache\n",
            setup.base_image
        ),
    )
    .unwrap();
    docker(&[
        "build",
        "--quiet",
        "-t",
        &name,
        context.path().to_str().unwrap(),
    ]);
    name
}

fn sccache_stats(err: &str) -> (u64, u64) {
    let line = err
        .lines()
        .find(|l| l.contains("Sccache") && l.contains("cache hits"))
        .unwrap_or_else(|| panic!("no sccache statistics:\n{err}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// `RUSTC_WRAPPER=sccache` with a local cache: the container compiles through sccache into the
/// host's `SCCACHE_DIR`, offline, and after `cargo clean` the next build is served from it.
#[test]
fn sccache_in_the_container_fills_and_reuses_a_local_cache() {
    if !support::require_tool("sccache") {
        return;
    }
    let Some(setup) = setup() else { return };
    let runner = &setup.runner;
    let image = sccache_image(&setup);
    let project = project_with_dockerfile(&setup, &format!("FROM {image}\n"));
    let dir = project.path();
    // Its own target dir and cache: `cargo clean` must not cost the other tests their builds.
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("target");
    let cache = scratch.path().join("sccache");
    std::fs::create_dir_all(&target).unwrap();
    runner.give(scratch.path());
    let build = |label: &str| {
        let mut command = support::tool_as(&runner.0);
        command
            .args(["--docker", "--zip", "--locked", "-v"])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env("RUSTC_WRAPPER", "sccache")
            .env("SCCACHE_DIR", &cache);
        let started = Instant::now();
        let output = command.output().unwrap();
        support::assert_success(&output);
        report_time(label, started.elapsed());
        stderr(&output)
    };

    let err = build("--docker build through sccache, cold cache");
    // The settings reach the container, their values masked at -v.
    assert!(err.contains("--env SCCACHE_DIR='***'"), "{err}");
    assert!(
        !err.contains(&format!("SCCACHE_DIR={}", cache.display())),
        "{err}"
    );
    assert!(err.contains("--network none"), "{err}");
    let (hits, misses) = sccache_stats(&err);
    assert!(
        misses > 10,
        "a cold cache misses: {hits} hits, {misses} misses"
    );
    let entries = walk_files(&cache);
    assert!(entries > 10, "SCCACHE_DIR has {entries} files");

    // `cargo clean` of the container's target dir, then the same build: from the cache.
    std::fs::remove_dir_all(target.join("lambda-build/docker")).unwrap();
    let err = build("--docker build through sccache, after cargo clean");
    let (hits, misses_again) = sccache_stats(&err);
    assert!(
        hits >= misses && misses_again < hits,
        "after cargo clean: {hits} hits, {misses_again} misses (cold: {misses} misses)"
    );
    assert!(dir.join("lambda.zip").is_file());
}

fn walk_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count
}

/// Without sccache in the image, `RUSTC_WRAPPER=sccache` on the host builds without it and
/// says so, rather than failing in the container.
#[test]
fn an_image_without_sccache_builds_without_it_and_warns() {
    // The host's cargo runs the wrapper too (for rustc's target information).
    if !support::require_tool("sccache") {
        return;
    }
    let Some(setup) = setup() else { return };
    let project = support::docker::project(&setup, "");
    let output = setup
        .runner
        .command(project.path(), &["--docker", "--zip"])
        .env("RUSTC_WRAPPER", "sccache")
        .output()
        .unwrap();
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(
        err.contains("the image has no `sccache` on PATH: building without it"),
        "{err}"
    );
}
