//! `--docker` against a real engine: the fixture is built in a container of the project's own
//! `lambda.Dockerfile` (it starts `FROM` the test base image that `.ci/docker.sh` builds, since
//! nothing can be pulled here), as a non-root user, and the zips answer invocations under the
//! Runtime API emulator (arm64 under qemu-user). Also: cleanup after failures and Ctrl-C, the
//! no-op rebuild time, and the errors for a missing engine and a broken Dockerfile.
//!
//! Needs `DOCKER_HOST` (or the default socket) and `LAMBDA_BUILD_TEST_BASE_IMAGE`; when run as
//! root, `LAMBDA_BUILD_TEST_USER` too (`. .ci/docker.sh` sets all three). Without them the tests
//! say `skipped`, unless `LAMBDA_BUILD_TEST_REQUIRE_ALL=1`, which makes that a failure.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-lambda-build");
const QEMU: [&str; 3] = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];

/// The Docker tests share one engine and one target dir, and a 2-core machine: one at a time.
static ENGINE: Mutex<()> = Mutex::new(());

/// `lambda.Dockerfile` as bytes of the GNU build-id the tests' image asks the linker for: finding
/// them in `bootstrap` proves that the project's Dockerfile, not the bundled one, made the build.
const OVERRIDE_MARK: &[u8] = b"lambda.Dockerfile";

/// A measurement for the CI log: written to the real stderr, which the test harness does not
/// capture (`eprintln!` output is shown only for failing tests).
fn report_time(what: &str, elapsed: Duration) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "timing: {what}: {elapsed:.1?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who runs the tool: the invoking user, or the test user when the tests run as root.
struct Runner {
    uid: u32,
    gid: u32,
    /// `Some` when the tool runs as another user through `setpriv`.
    switch: Option<SwitchTo>,
}

struct SwitchTo {
    home: PathBuf,
    sysroot: PathBuf,
}

struct Setup {
    base_image: String,
    runner: Runner,
}

fn skip_or_fail(reason: &str) -> Option<Setup> {
    if std::env::var(common::REQUIRE_ALL_ENV).as_deref() == Ok("1") {
        panic!(
            "{reason} ({}=1 forbids skipping); `. .ci/docker.sh` starts an engine, builds the \
             base image and creates the test user",
            common::REQUIRE_ALL_ENV
        );
    }
    eprintln!("skipped: {reason}");
    None
}

fn setup() -> Option<Setup> {
    if !common::require_tool("docker") {
        return None;
    }
    let Ok(base_image) = std::env::var("LAMBDA_BUILD_TEST_BASE_IMAGE") else {
        return skip_or_fail("LAMBDA_BUILD_TEST_BASE_IMAGE is not set");
    };
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &base_image])
        .output()
        .expect("runs docker");
    if !inspect.status.success() {
        return skip_or_fail(&format!(
            "no Docker engine with the image `{base_image}`: {}",
            String::from_utf8_lossy(&inspect.stderr).trim()
        ));
    }
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let runner = if euid != 0 {
        // SAFETY: getgid cannot fail.
        Runner {
            uid: euid,
            gid: unsafe { libc::getgid() },
            switch: None,
        }
    } else {
        let Ok(name) = std::env::var("LAMBDA_BUILD_TEST_USER") else {
            return skip_or_fail("running as root and LAMBDA_BUILD_TEST_USER is not set");
        };
        let passwd = Command::new("getent")
            .args(["passwd", &name])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&passwd.stdout).into_owned();
        let fields: Vec<&str> = line.trim().split(':').collect();
        assert!(fields.len() >= 6, "no user `{name}`: {line}");
        let sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .unwrap();
        Runner {
            uid: fields[2].parse().unwrap(),
            gid: fields[3].parse().unwrap(),
            switch: Some(SwitchTo {
                home: fields[5].into(),
                sysroot: String::from_utf8_lossy(&sysroot.stdout).trim().into(),
            }),
        }
    };
    Some(Setup { base_image, runner })
}

impl Runner {
    /// `cargo-lambda-build lambda-build ARGS` in `dir`, as the runner's user. The user gets the
    /// host toolchain directly (rustup's proxies would look in the user's own ~/.rustup) and its
    /// own `CARGO_HOME`, as a real user has.
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = match &self.switch {
            None => Command::new(BIN),
            Some(_) => {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid",
                    &self.uid.to_string(),
                    "--regid",
                    &self.gid.to_string(),
                    "--init-groups",
                    BIN,
                ]);
                c
            }
        };
        command
            .arg("lambda-build")
            .args(args)
            .args(["--locked", "--target-dir"])
            .arg(target_dir(self))
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("SOURCE_DATE_EPOCH");
        if let Some(switch) = &self.switch {
            let bin = switch.sysroot.join("bin");
            command
                .env("HOME", &switch.home)
                .env("CARGO", bin.join("cargo"))
                .env(
                    "PATH",
                    format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
                )
                .env_remove("CARGO_HOME")
                .env_remove("RUSTUP_HOME")
                .env_remove("RUSTUP_TOOLCHAIN");
        }
        command
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args)
            .output()
            .expect("runs cargo-lambda-build")
    }

    fn give(&self, path: &Path) {
        if self.switch.is_some() {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", self.uid, self.gid))
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success(), "chown {}", path.display());
        }
    }
}

/// One target dir for every Docker test (per user), so dependencies are compiled once.
fn target_dir(runner: &Runner) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("docker-target-{}", runner.uid))
}

/// The echo fixture with a `lambda.Dockerfile` that starts from the test base image, owned by
/// the runner's user.
fn project(setup: &Setup, dockerfile_extra: &str) -> tempfile::TempDir {
    let project = common::copy_fixture("echo");
    let dockerfile = format!(
        "# The Docker tests' image: the base image from .ci/docker.sh, and a build-id that\n\
         # shows in the binary that this file was used.\n\
         FROM {}\n\
         ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=\"-C link-arg=-Wl,--build-id=0x{}\"\n\
         {dockerfile_extra}",
        setup.base_image,
        hex(OVERRIDE_MARK)
    );
    std::fs::write(project.path().join("lambda.Dockerfile"), dockerfile).unwrap();
    setup.runner.give(project.path());
    let target = target_dir(&setup.runner);
    if !target.exists() {
        std::fs::create_dir_all(&target).unwrap();
        setup.runner.give(&target);
    }
    project
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The build containers a tool process left behind (they are named after its pid).
fn containers_of(pid: u32) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--filter",
            "label=cargo-lambda-build",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|name| name.starts_with(&format!("cargo-lambda-build-{pid}-")))
        .map(str::to_string)
        .collect()
}

/// Runs the tool and returns its output and pid, to look for its containers afterwards.
fn run_with_pid(runner: &Runner, dir: &Path, args: &[&str]) -> (Output, u32) {
    let child = runner
        .command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    u16::from_le_bytes([bytes[18], bytes[19]])
}

fn assert_echo_answers(bootstrap: &Path, wrapper: Option<&[&str]>) {
    let Some(emulator) = common::Emulator::start() else {
        return;
    };
    let function = emulator.run_bootstrap(bootstrap, wrapper);
    let (status, body) = emulator.invoke(r#"{"name": "Docker"}"#);
    assert_eq!(status, 200, "{body}\n{}", function.output());
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer, serde_json::json!({"message": "hello, Docker"}));
}

/// Files under `dir` that the user does not own.
fn not_owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    let mut foreign = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != uid {
            foreign.push(path.clone());
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap().flatten() {
                stack.push(entry.path());
            }
        }
    }
    foreign
}

#[test]
fn docker_builds_answer_invocations_belong_to_the_user_and_rebuild_in_seconds() {
    if !common::require_tools(&["cargo-lambda", "unzip", "qemu-aarch64-static"]) {
        return;
    }
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(setup) = setup() else { return };
    let runner = &setup.runner;
    let project = project(&setup, "");
    let dir = project.path();

    // x86_64, in the project's image.
    let started = Instant::now();
    let (output, pid) = run_with_pid(runner, dir, &["--docker", "--zip"]);
    common::assert_success(&output);
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
        common::extract_bootstrap(&dir.join("lambda.zip"), &scratch.path().join("x86_64"));
    assert_eq!(elf_machine(&bootstrap), 62);
    let bytes = std::fs::read(&bootstrap).unwrap();
    assert!(
        bytes
            .windows(OVERRIDE_MARK.len())
            .any(|w| w == OVERRIDE_MARK),
        "bootstrap lacks the build-id set by the project's lambda.Dockerfile"
    );
    assert_echo_answers(&bootstrap, None);

    // Nothing changed: no image build, no compilation, seconds.
    let started = Instant::now();
    let output = runner.run(dir, &["--docker", "--zip"]);
    let elapsed = started.elapsed();
    common::assert_success(&output);
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
    common::assert_success(&output);
    report_time("arm64 --docker build", started.elapsed());
    assert!(
        containers_of(pid).is_empty(),
        "left: {:?}",
        containers_of(pid)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("architecture  arm64"), "{stdout}");
    let bootstrap =
        common::extract_bootstrap(&dir.join("arm64/lambda.zip"), &scratch.path().join("arm64"));
    assert_eq!(elf_machine(&bootstrap), 183);
    assert_echo_answers(&bootstrap, Some(&QEMU));

    // Everything the builds left belongs to the user: the zips, the container's target dirs, the
    // crates cargo unpacked in the container.
    let docker_target = target_dir(runner).join("lambda-build/docker");
    assert!(docker_target.join("x86_64").is_dir() && docker_target.join("arm64").is_dir());
    let mut foreign = not_owned_by(dir, runner.uid);
    foreign.extend(not_owned_by(&target_dir(runner), runner.uid));
    if let Some(switch) = &runner.switch {
        foreign.extend(not_owned_by(&switch.home.join(".cargo"), runner.uid));
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
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
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
fn sigint_during_the_container_build_exits_130_and_removes_the_container() {
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(setup) = setup() else { return };
    let project = project(&setup, "");
    // A build script that outlasts the test: the container is surely running when SIGINT comes.
    std::fs::write(
        project.path().join("build.rs"),
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }\n",
    )
    .unwrap();
    let mut child = setup
        .runner
        .command(project.path(), &["--docker", "--zip"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let forward = std::thread::spawn(move || {
        let mut all = String::new();
        for line in reader.lines().map_while(Result::ok) {
            if line.contains("Container `echo`") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(600))
        .expect("the container build did not start within 10 minutes");
    // Until the container exists and the build script runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while containers_of(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !containers_of(pid).is_empty(),
        "no build container appeared"
    );
    std::thread::sleep(Duration::from_secs(3));

    let signalled = Instant::now();
    // SAFETY: kill(2) on the child this test spawned and has not reaped.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    let err = forward.join().unwrap();
    report_time("exit after SIGINT", signalled.elapsed());
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "took {:?}",
        signalled.elapsed()
    );
    assert!(
        containers_of(pid).is_empty(),
        "left: {:?}",
        containers_of(pid)
    );
}

#[test]
fn a_broken_dockerfile_shows_dockers_message() {
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(setup) = setup() else { return };
    // A failing step: Docker's message names the command and its exit code.
    let project = project(&setup, "RUN echo checking the toolchain && exit 3\n");
    let output = setup.runner.run(project.path(), &["--docker"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("error: building the image from"), "{err}");
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    // The step's own output is shown too.
    assert!(err.contains("checking the toolchain"), "{err}");
    assert!(err.contains("help: "), "{err}");

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

fn project_with_dockerfile(setup: &Setup, dockerfile: &str) -> tempfile::TempDir {
    let project = project(setup, "");
    std::fs::write(project.path().join("lambda.Dockerfile"), dockerfile).unwrap();
    project
}

#[test]
fn a_missing_docker_image_is_refused() {
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(setup) = setup() else { return };
    let project = project(&setup, "");
    let output = setup.runner.run(
        project.path(),
        &["--docker-image", "cargo-lambda-build-test:does-not-exist"],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the Docker image `cargo-lambda-build-test:does-not-exist` does not exist"),
        "{err}"
    );
    assert!(err.contains("help: pull or build it first"), "{err}");
}

/// Needs no engine: the point is that there is none.
#[test]
fn no_engine_is_a_clear_error_within_seconds() {
    let project = common::copy_fixture("echo");
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
        let output = Command::new(BIN)
            .args(["lambda-build", "--docker", "--zip"])
            .current_dir(project.path())
            .env("DOCKER_HOST", &host)
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(
            err.contains("error: cannot reach the Docker engine at"),
            "{err}"
        );
        assert!(err.contains(named) && err.contains(&host), "{err}");
        assert!(err.contains("help: start the engine"), "{err}");
        assert!(!err.contains("Compiling"), "{err}");
        assert!(elapsed < Duration::from_secs(8), "{host}: took {elapsed:?}");
        assert!(!project.path().join("lambda.zip").exists());
    }
}

/// Needs no engine: the Dockerfile is read before the engine is contacted.
#[test]
fn a_missing_dockerfile_is_named() {
    let project = common::copy_fixture("echo");
    let output = Command::new(BIN)
        .args(["lambda-build", "--dockerfile", "ci/none.Dockerfile"])
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
