//! `--docker` on an engine that shares no file system with the tool, as GitLab's docker:dind,
//! CircleCI's remote docker or a build host: `.ci/remote-docker.sh` starts a second dockerd in
//! its own mount namespace, with an empty tmpfs over every directory these tests use, and
//! exports its address as `LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST`. The first test proves that it
//! cannot see the host's files; the others build through it: the project, the crates and the
//! target directory live in volumes there, synced by content.
//!
//! One test builds the echo project cold on each architecture and runs every other check that
//! needs its dependencies compiled (no-op, edit, deletion, Ctrl-C, concurrent runs) on the same
//! volumes, so the suite pays for one cold build per architecture.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::docker::{
    PreviousZip, Runner, Setup, Watched, assert_echo_answers, assert_refused, elf_machine,
    report_time, setup, stderr, wait_until,
};

const REMOTE_ENV: &str = "LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST";

/// The remote engine's address and the Docker tests' setup (base image, user), or a skip.
fn remote() -> Option<(String, Setup)> {
    let setup = setup()?;
    match std::env::var(REMOTE_ENV) {
        Ok(host) if !host.is_empty() => Some((host, setup)),
        _ => {
            support::skip_or_fail(&format!(
                "{REMOTE_ENV} is not set; `. .ci/remote-docker.sh` starts an engine that \
                 cannot see this machine's files"
            ));
            None
        }
    }
}

fn docker(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .expect("runs docker")
}

/// `command` in a throwaway container of `image` with `mount` (a `--mount` value), offline.
fn run_mounted(host: &str, mount: &str, image: &str, command: &[&str]) -> Output {
    let run = ["run", "--rm", "--network", "none", "--mount", mount, image];
    docker(host, &[&run[..], command].concat())
}

/// The tool's containers on the engine (any that a run left behind).
fn containers(host: &str) -> Vec<String> {
    let output = docker(
        host,
        &[
            "ps",
            "--all",
            "--format",
            "{{.Names}}",
            "--filter",
            "label=cargo-lambda-build",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// No build container of the tool is left on the engine.
fn assert_no_containers(host: &str) {
    let left = containers(host);
    assert!(left.is_empty(), "left on {host}: {left:?}");
}

/// `cargo-lambda-build lambda-build ARGS` as the runner, against the remote engine.
fn run(runner: &Runner, host: &str, dir: &Path, args: &[&str]) -> Output {
    runner
        .command(dir, args)
        .env("DOCKER_HOST", host)
        .env_remove("CARGO_LAMBDA_BUILD_DOCKER_FILES")
        .output()
        .expect("runs cargo-lambda-build")
}

/// A build that must succeed, its time reported under `what`: its stderr.
fn timed_build(what: &str, runner: &Runner, host: &str, dir: &Path, args: &[&str]) -> String {
    let started = Instant::now();
    let output = run(runner, host, dir, args);
    support::assert_success(&output);
    report_time(what, started.elapsed());
    stderr(&output)
}

/// The bytes a run sent to the engine's volumes, from its `Uploading` line.
fn uploaded(err: &str) -> u64 {
    let line = err
        .lines()
        .find(|line| line.contains("Uploading") && line.contains(" bytes to volumes "))
        .unwrap_or_else(|| panic!("no `Uploading` line:\n{err}"));
    let before = line.split(" bytes to volumes ").next().unwrap();
    before
        .rsplit([' ', ':'])
        .find(|word| !word.is_empty())
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in `{line}`"))
}

/// The volumes' common prefix (`cargo-lambda-build-<key>-<arch>-`), from the `Uploading` line.
fn volumes_of(err: &str) -> String {
    let (_, rest) = err
        .split_once(" bytes to volumes ")
        .unwrap_or_else(|| panic!("no volumes named:\n{err}"));
    rest.split('*').next().unwrap().to_string()
}

/// The key in the names of a project's volumes (of its workspace root) and of a source root's
/// volume: the start of the SHA-256 of the path.
fn key(path: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `text` to `path`, its directories created.
fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A project made for a test: its lock file, offline, and the tests' `lambda.Dockerfile`.
fn lock_for_docker(ws: &Path, setup: &Setup) {
    let lock = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(ws)
        .output()
        .unwrap();
    assert!(lock.status.success(), "{}", stderr(&lock));
    write_file(
        &ws.join("lambda.Dockerfile"),
        &format!("FROM {}\n", setup.base_image),
    );
}

/// Rewrites the echo function to answer `<word>, <name>` instead of `hello, <name>`.
fn greet(dir: &Path, word: &str) {
    let pristine = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo/src/main.rs"),
    )
    .unwrap();
    assert!(pristine.contains("\"hello, {}\""), "the fixture changed");
    let main = dir.join("src/main.rs");
    std::fs::write(
        &main,
        pristine.replace("\"hello, {}\"", &format!("\"{word}, {{}}\"")),
    )
    .unwrap();
}

/// Removes the volumes a project's earlier runs left on the engine, so the next build is cold.
fn remove_volumes(host: &str, workspace_root: &Path) {
    let key = key(workspace_root);
    let listed = docker(
        host,
        &["volume", "ls", "-q", "--filter", "label=cargo-lambda-build"],
    );
    let names = String::from_utf8_lossy(&listed.stdout).into_owned();
    for name in names
        .lines()
        .filter(|name| name.starts_with(&format!("cargo-lambda-build-{key}-")))
    {
        let removed = docker(host, &["volume", "rm", "-f", name]);
        assert!(removed.status.success(), "{}", stderr(&removed));
    }
}

/// The echo fixture with the tests' `lambda.Dockerfile`, always at the same path (so its
/// volumes on the engine are reused), freshly copied, owned by the runner.
fn stable_project(setup: &Setup, name: &str) -> PathBuf {
    let fresh = support::docker::project(setup, "");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("remote-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(fresh.path())
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    setup.runner.give(&dir);
    dir
}

#[test]
fn the_remote_engine_cannot_see_this_machines_files() {
    let Some((host, setup)) = remote() else {
        return;
    };
    let marker = format!("marker-{}-{:?}", std::process::id(), Instant::now());
    // Where the tests' files live: a temporary directory and the target dir in the checkout.
    let temp = tempfile::tempdir().unwrap();
    let in_target = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for dir in [temp.path(), in_target.path()] {
        std::fs::write(dir.join("marker"), &marker).unwrap();
        let mount = format!("type=bind,source={},target=/seen", dir.display());
        let look =
            |engine: &str| run_mounted(engine, &mount, &setup.base_image, &["cat", "/seen/marker"]);
        // The local engine sees it: the check below can tell.
        let local = look(&std::env::var("DOCKER_HOST").unwrap_or_default());
        assert_eq!(
            String::from_utf8_lossy(&local.stdout),
            marker,
            "{}",
            stderr(&local)
        );
        let far = look(&host);
        assert!(
            !String::from_utf8_lossy(&far.stdout).contains(&marker),
            "the engine at {host} sees {}: it is not a remote engine",
            dir.display()
        );
    }
}

#[test]
fn remote_builds_answer_invocations_sync_only_changes_and_rebuild_incrementally() {
    if !support::require_tools(&["cargo-lambda", "unzip", "qemu-aarch64-static"]) {
        return;
    }
    let Some((host, setup)) = remote() else {
        return;
    };
    let runner = &setup.runner;
    let dir = stable_project(&setup, "echo");
    let scratch = tempfile::tempdir().unwrap();
    remove_volumes(&host, &dir);

    // Cold: a new set of volumes, everything uploaded and compiled on the engine. `auto` finds
    // out that the engine cannot see the files.
    let err = timed_build(
        "remote x86_64 cold --docker build",
        runner,
        &host,
        &dir,
        &["--docker", "--zip", "-v"],
    );
    assert!(err.contains("the project copied to the engine"), "{err}");
    assert!(
        uploaded(&err) > 100_000,
        "the crates were not uploaded:\n{err}"
    );
    assert_no_containers(&host);
    let bootstrap =
        support::extract_bootstrap(&dir.join("lambda.zip"), &scratch.path().join("cold"));
    assert_eq!(elf_machine(&bootstrap), support::EM_X86_64);
    assert_echo_answers(&bootstrap, None, "hello");
    let cold_zip = std::fs::read(dir.join("lambda.zip")).unwrap();

    // The same source from another checkout, built on the local engine (bind mounts, other
    // paths for cargo's home, the target directory and the project): the same bytes, so a
    // laptop and a CI agree on CodeSha256.
    let elsewhere = support::docker::project(&setup, "");
    let local = runner.run(elsewhere.path(), &["--docker", "--zip"]);
    support::assert_success(&local);
    assert!(
        !stderr(&local).contains("copied to the engine"),
        "{}",
        stderr(&local)
    );
    let code_sha256 = |output: &Output| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("CodeSha256")
                    .map(str::trim)
                    .map(String::from)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no CodeSha256:\n{}",
                    String::from_utf8_lossy(&output.stdout)
                )
            })
    };
    let remote_again = run(runner, &host, &dir, &["--docker", "--zip"]);
    support::assert_success(&remote_again);
    assert_eq!(code_sha256(&local), code_sha256(&remote_again));
    assert!(
        std::fs::read(elsewhere.path().join("lambda.zip")).unwrap() == cold_zip,
        "the local engine's zip differs from the remote engine's"
    );

    // Nothing changed: nothing uploaded, nothing compiled.
    let err = timed_build(
        "remote x86_64 no-op --docker build",
        runner,
        &host,
        &dir,
        &["--docker", "--zip"],
    );
    assert_eq!(uploaded(&err), 0, "{err}");
    assert!(!err.contains("Compiling"), "{err}");
    assert_eq!(std::fs::read(dir.join("lambda.zip")).unwrap(), cold_zip);

    // An edit: only that file goes over, only the function recompiles.
    greet(&dir, "hi");
    let err = timed_build(
        "remote x86_64 edit-rebuild-zip --docker build",
        runner,
        &host,
        &dir,
        &["--docker", "--zip"],
    );
    let sent = uploaded(&err);
    assert!(
        sent > 0 && sent < 64 * 1024,
        "an edit sent {sent} bytes:\n{err}"
    );
    assert!(err.contains("Compiling echo"), "{err}");
    assert!(!err.contains("Compiling tokio"), "not incremental:\n{err}");
    eprintln!("remote: the edit uploaded {sent} bytes");
    let bootstrap =
        support::extract_bootstrap(&dir.join("lambda.zip"), &scratch.path().join("edit"));
    assert_echo_answers(&bootstrap, None, "hi");

    // A file removed on the host is removed on the engine (a stale `src/bin/*.rs` there would
    // be a target of the package).
    let extra = dir.join("notes.txt");
    std::fs::write(&extra, "kept until removed\n").unwrap();
    setup.runner.give(&extra);
    let output = run(runner, &host, &dir, &["--docker", "--zip"]);
    support::assert_success(&output);
    let volume = format!("{}src-{}", volumes_of(&stderr(&output)), key(&dir));
    let on_engine = || {
        let inside = format!("/v/{}", extra.strip_prefix(&dir).unwrap().display());
        let mount = format!("type=volume,source={volume},target=/v");
        run_mounted(&host, &mount, &setup.base_image, &["test", "-e", &inside])
            .status
            .success()
    };
    assert!(
        on_engine(),
        "{} was not uploaded to {volume}",
        extra.display()
    );
    std::fs::remove_file(&extra).unwrap();
    let output = run(runner, &host, &dir, &["--docker", "--zip"]);
    support::assert_success(&output);
    assert!(!on_engine(), "{} is still in {volume}", extra.display());

    ctrl_c_during_upload_build_and_download_leaves_nothing_behind(&host, &setup, &dir);
    two_concurrent_runs_of_one_project_both_succeed(&host, &setup, &dir);

    // arm64: its own volumes, cross-compiled on the engine, run under qemu.
    let arm64 = ["--docker", "--arch", "arm64", "--zip", "-o", "arm64"];
    timed_build(
        "remote arm64 cold --docker build",
        runner,
        &host,
        &dir,
        &arm64,
    );
    let bootstrap =
        support::extract_bootstrap(&dir.join("arm64/lambda.zip"), &scratch.path().join("arm64"));
    assert_eq!(elf_machine(&bootstrap), support::EM_AARCH64);
    assert_echo_answers(&bootstrap, Some(&support::QEMU), "both");
    let err = timed_build(
        "remote arm64 no-op --docker build",
        runner,
        &host,
        &dir,
        &arm64,
    );
    assert_eq!(uploaded(&err), 0, "{err}");
    assert_no_containers(&host);
}

#[test]
fn a_forced_bind_mount_on_the_remote_engine_is_refused_by_name() {
    let Some((host, setup)) = remote() else {
        return;
    };
    let project = support::docker::project(&setup, "");
    let previous = PreviousZip::plant(project.path());
    let from_flag = setup
        .runner
        .command(project.path(), &["--docker-files", "bind", "--zip"]);
    // The same from the environment, named as such.
    let mut from_env = setup.runner.command(project.path(), &["--docker", "--zip"]);
    from_env.env("CARGO_LAMBDA_BUILD_DOCKER_FILES", "bind");
    for (mut command, origin) in [
        (from_flag, "`--docker-files`"),
        (from_env, "`CARGO_LAMBDA_BUILD_DOCKER_FILES`"),
    ] {
        let output = command.env("DOCKER_HOST", &host).output().unwrap();
        let err = assert_refused(
            &output,
            1,
            &format!("{origin} asks to bind-mount the project, but the Docker engine at"),
            "use `--docker-files copy`",
        );
        assert!(err.contains(&host), "{err}");
        assert!(!err.contains("Compiling"), "{err}");
        previous.assert_intact();
    }
    assert_no_containers(&host);
}

#[test]
fn a_workspace_of_two_functions_with_a_path_dependency_outside_it() {
    let Some((host, setup)) = remote() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| write_file(&root.path().join(path), text);
    write(
        "shared/Cargo.toml",
        "[package]\nname = \"shared\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "shared/src/lib.rs",
        "pub fn greeting() -> &'static str { \"from outside the workspace\" }\n",
    );
    write(
        "ws/Cargo.toml",
        "[workspace]\nmembers = [\"one\", \"two\"]\nresolver = \"2\"\n",
    );
    for name in ["one", "two"] {
        write(
            &format!("ws/{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nshared = {{ path = \"../../shared\" }}\n"
            ),
        );
        write(
            &format!("ws/{name}/src/main.rs"),
            &format!("fn main() {{ println!(\"{name} {{}}\", shared::greeting()); }}\n"),
        );
    }
    let ws = root.path().join("ws");
    lock_for_docker(&ws, &setup);
    setup.runner.give(root.path());

    // Both functions built, each running with the outside crate's greeting.
    let scratch = tempfile::tempdir().unwrap();
    let build_and_run = |greeting: &str| {
        let output = run(
            &setup.runner,
            &host,
            &ws,
            &["--docker", "--workspace", "--zip", "-o", "out"],
        );
        support::assert_success(&output);
        for name in ["one", "two"] {
            let zip = ws.join("out").join(name).join("lambda.zip");
            let unpacked = scratch.path().join(format!("{name}-{greeting}"));
            let ran = Command::new(support::extract_bootstrap(&zip, &unpacked))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ran.stdout),
                format!("{name} {greeting}\n")
            );
        }
    };
    build_and_run("from outside the workspace");

    // An edit of the outside dependency reaches both functions.
    write(
        "shared/src/lib.rs",
        "pub fn greeting() -> &'static str { \"edited outside\" }\n",
    );
    build_and_run("edited outside");
    assert_no_containers(&host);
}

#[test]
fn absolute_paths_patch_and_compile_errors_keep_the_host_paths() {
    let Some((host, setup)) = remote() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let write = write_file;
    let package = |name: &str, version: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n")
    };
    // A path dependency named by its absolute path, which reads a file by its absolute path.
    let rshared = root.path().join("srv/libs/rshared");
    let greeting = rshared.join("greeting.txt");
    write(&rshared.join("Cargo.toml"), &package("rshared", "0.1.0"));
    write(&greeting, "absolute");
    let lib = rshared.join("src/lib.rs");
    write(
        &lib,
        &format!("pub fn greeting() -> &'static str {{ include_str!({greeting:?}) }}\n"),
    );
    // A crates.io package replaced through `[patch]` by an absolute path.
    let itoa = root.path().join("srv/libs/itoa");
    write(&itoa.join("Cargo.toml"), &package("itoa", "1.0.99"));
    write(
        &itoa.join("src/lib.rs"),
        "pub fn patched() -> &'static str { \"patched\" }\n",
    );
    let ws = root.path().join("ws");
    write(
        &ws.join("Cargo.toml"),
        &format!(
            "{}\n[dependencies]\nrshared = {{ path = {:?} }}\nitoa = \"1\"\n\n\
             [patch.crates-io]\nitoa = {{ path = {:?} }}\n",
            package("fc", "0.1.0"),
            rshared.display().to_string(),
            itoa.display().to_string(),
        ),
    );
    write(
        &ws.join("src/main.rs"),
        "fn main() { println!(\"{} {}\", rshared::greeting(), itoa::patched()); }\n",
    );
    lock_for_docker(&ws, &setup);
    setup.runner.give(root.path());

    let output = run(&setup.runner, &host, &ws, &["--docker", "--zip"]);
    support::assert_success(&output);
    let err = stderr(&output);
    assert!(err.contains("the project copied to the engine"), "{err}");
    // cargo's messages name the dependencies where they are on this machine.
    assert!(
        err.contains(&format!("Compiling rshared v0.1.0 ({})", rshared.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("Compiling itoa v1.0.99 ({})", itoa.display())),
        "{err}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let bootstrap = support::extract_bootstrap(&ws.join("lambda.zip"), scratch.path());
    let ran = Command::new(&bootstrap).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "absolute patched\n");

    // A compile error in the dependency names its file on this machine, which the editor opens.
    write(&lib, "pub fn greeting() -> &'static str { 42 }\n");
    let output = run(&setup.runner, &host, &ws, &["--docker", "--zip"]);
    assert_eq!(output.status.code(), Some(101), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains(&format!("--> {}:1:", lib.display())), "{err}");
    assert!(!err.contains("/lambda-build/"), "{err}");
    assert_no_containers(&host);
}

/// Ctrl-C while the project goes over, while cargo compiles, and while the executable comes
/// back: the run stops with 130, removes its container and leaves the previous zip as it was;
/// the next run builds normally.
fn ctrl_c_during_upload_build_and_download_leaves_nothing_behind(
    host: &str,
    setup: &Setup,
    dir: &Path,
) {
    let runner = &setup.runner;
    let previous = PreviousZip::plant(dir);
    // Each stage waits on a line it prints: `Uploading`, `Compiling echo`, `Downloading`.
    // A big file to upload gives the signal time to land during the upload.
    let big = dir.join("src/big.bin");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..64 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    std::fs::write(&big, noise).unwrap();
    setup.runner.give(&big);
    for (stage, line, edit) in [
        ("upload", "Uploading", "upload"),
        ("build", "Compiling echo", "build"),
        ("download", "Downloading", "download"),
    ] {
        greet(dir, edit);
        if stage != "upload" {
            // The big file stays out of the later stages.
            let _ = std::fs::remove_file(&big);
        }
        let mut command = runner.command(dir, &["--docker", "--zip", "-v"]);
        command.env("DOCKER_HOST", host);
        let watched = Watched::spawn_command(command);
        watched.wait_for_line(line, Duration::from_secs(600));
        watched.signal(libc::SIGINT);
        let (status, err) = watched.finish();
        assert_eq!(status.code(), Some(130), "{stage}:\n{err}");
        previous.assert_intact();
        assert!(
            wait_until(Duration::from_secs(10), || containers(host).is_empty()),
            "{stage}: left {:?}",
            containers(host)
        );
    }
    std::fs::remove_file(&previous.path).unwrap();
    greet(dir, "after");
    let output = run(runner, host, dir, &["--docker", "--zip"]);
    support::assert_success(&output);
    let scratch = tempfile::tempdir().unwrap();
    let bootstrap = support::extract_bootstrap(&dir.join("lambda.zip"), scratch.path());
    assert_echo_answers(&bootstrap, None, "after");
}

/// Two runs of one project at once: they take turns on its volumes, and both zips hold this
/// source.
fn two_concurrent_runs_of_one_project_both_succeed(host: &str, setup: &Setup, dir: &Path) {
    greet(dir, "both");
    let spawn = |out: &str| {
        setup
            .runner
            .command(dir, &["--docker", "--zip", "-o", out])
            .env("DOCKER_HOST", host)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    setup.runner.give(dir);
    let (a, b) = (spawn("a"), spawn("b"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    support::assert_success(&a);
    support::assert_success(&b);
    let scratch = tempfile::tempdir().unwrap();
    for out in ["a", "b"] {
        let bootstrap = support::extract_bootstrap(
            &dir.join(out).join("lambda.zip"),
            &scratch.path().join(out),
        );
        let bytes = std::fs::read(&bootstrap).unwrap();
        assert!(
            bytes.windows(4).any(|w| w == b"both"),
            "{out}: not this source"
        );
    }
    assert_no_containers(host);
}
