//! The Docker tests' setup: the engine and the test base image (`.ci/docker.sh` provides both),
//! the user who runs the tool (a non-root one through `setpriv` when the tests run as root), the
//! echo fixture with a `lambda.Dockerfile` that starts from the base image, one shared target
//! dir, and what a build left behind (containers, the previous zip).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

pub use super::{assert_refused, elf_machine, report_time, stderr};

/// The Docker tests share one engine and one target dir, and a 2-core machine: one at a time.
/// [`setup`] takes it, and [`Setup`] holds it, so no Docker test can forget it.
static ENGINE: Mutex<()> = Mutex::new(());

/// `lambda.Dockerfile` as bytes of the GNU build-id the tests' image asks the linker for: finding
/// them in `bootstrap` proves that the project's Dockerfile, not the bundled one, made the build.
pub const OVERRIDE_MARK: &[u8] = b"lambda.Dockerfile";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who runs the tool: the invoking user, or the test user when the tests run as root.
pub struct Runner(pub super::Unprivileged);

impl std::ops::Deref for Runner {
    type Target = super::Unprivileged;

    fn deref(&self) -> &super::Unprivileged {
        &self.0
    }
}

pub struct Setup {
    pub base_image: String,
    pub runner: Runner,
    /// The engine is this test's until the setup is dropped.
    _engine: std::sync::MutexGuard<'static, ()>,
}

/// The engine to this test alone, for a test that may reach an engine without needing one
/// (`doctor` probes whichever engine `DOCKER_HOST` names).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}

fn skip_without_engine(reason: &str) -> Option<Setup> {
    super::skip_or_fail(&format!(
        "{reason}; `. .ci/docker.sh` starts an engine, builds the base image and creates the \
         test user"
    ));
    None
}

/// The engine, for this test alone (it waits for the other Docker tests), or a skip.
pub fn setup() -> Option<Setup> {
    let engine = exclusive();
    if !super::require_tool("docker") {
        return None;
    }
    let Ok(base_image) = std::env::var("LAMBDA_BUILD_TEST_BASE_IMAGE") else {
        return skip_without_engine("LAMBDA_BUILD_TEST_BASE_IMAGE is not set");
    };
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &base_image])
        .output()
        .expect("runs docker");
    if !inspect.status.success() {
        return skip_without_engine(&format!(
            "no Docker engine with the image `{base_image}`: {}",
            String::from_utf8_lossy(&inspect.stderr).trim()
        ));
    }
    let runner = Runner(super::Unprivileged::find()?);
    Some(Setup {
        base_image,
        runner,
        _engine: engine,
    })
}

impl Runner {
    /// `cargo-lambda-build lambda-build ARGS` in `dir`, as the runner's user, with the Docker
    /// tests' target dir.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = super::tool_as(&self.0);
        command
            .args(args)
            .args(["--locked", "--target-dir"])
            .arg(target_dir(self))
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        command
    }

    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args)
            .output()
            .expect("runs cargo-lambda-build")
    }
}

/// One target dir for every Docker test (per user), so dependencies are compiled once.
pub fn target_dir(runner: &Runner) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("docker-target-{}", runner.uid))
}

/// The echo fixture with a `lambda.Dockerfile` that starts from the test base image, owned by
/// the runner's user.
pub fn project(setup: &Setup, dockerfile_extra: &str) -> tempfile::TempDir {
    let project = super::copy_fixture("echo");
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

/// The echo function in `bootstrap` answers `{"message": "<greeting>, Docker"}` under the
/// Runtime API emulator (with `wrapper`, such as qemu-user, in front).
pub fn assert_echo_answers(bootstrap: &Path, wrapper: Option<&[&str]>, greeting: &str) {
    let Some(emulator) = super::Emulator::start() else {
        return;
    };
    let function = emulator.run_bootstrap(bootstrap, wrapper);
    let (status, body) = emulator.invoke(r#"{"name": "Docker"}"#);
    assert_eq!(status, 200, "{body}\n{}", function.output());
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({ "message": format!("{greeting}, Docker") })
    );
}

/// The build containers a tool process left behind (they are named after its pid).
pub fn containers_of(pid: u32) -> Vec<String> {
    try_containers_of(pid).unwrap_or_else(|err| panic!("{err}"))
}

/// The run's containers that are running now: one that is only created has not begun to build.
pub fn running_containers_of(pid: u32) -> Vec<String> {
    containers_with(pid, &["--filter", "status=running"]).unwrap_or_else(|err| panic!("{err}"))
}

fn try_containers_of(pid: u32) -> Result<Vec<String>, String> {
    containers_with(pid, &[])
}

fn containers_with(pid: u32, filter: &[&str]) -> Result<Vec<String>, String> {
    let prefix = format!("cargo-lambda-build-{pid}-");
    let mut filters = vec!["--filter", "label=cargo-lambda-build"];
    filters.extend_from_slice(filter);
    let names = try_docker_ps(&filters)?;
    Ok(names
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect())
}

/// Runs the tool and returns its output and pid, to look for its containers afterwards.
pub fn run_with_pid(runner: &Runner, dir: &Path, args: &[&str]) -> (Output, u32) {
    let child = runner
        .command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

pub fn project_with_dockerfile(setup: &Setup, dockerfile: &str) -> tempfile::TempDir {
    let project = project(setup, "");
    std::fs::write(project.path().join("lambda.Dockerfile"), dockerfile).unwrap();
    project
}

/// Containers made from the base image or an image built on it: the image builds' intermediate
/// containers (which carry no label) as well as the build containers.
pub fn containers_from(image: &str) -> Vec<String> {
    docker_ps(&["--filter", &format!("ancestor={image}")])
}

/// That the engine removes, within a minute, every container from `image` (it does so after
/// a cancelled image build), else a failure saying what `after` left.
pub fn assert_containers_from_go(image: &str, after: &str) {
    let gone = wait_until(Duration::from_secs(60), || {
        containers_from(image).is_empty()
    });
    assert!(gone, "{after} left {:?}", containers_from(image));
}

fn docker_ps(filter: &[&str]) -> Vec<String> {
    try_docker_ps(filter).unwrap_or_else(|err| panic!("{err}"))
}

/// [`docker_ps`] for where a panic would abort the test binary (a `Drop` while unwinding).
fn try_docker_ps(filter: &[&str]) -> Result<Vec<String>, String> {
    let output = Command::new("docker")
        .args(["ps", "--all", "--format", "{{.Names}}"])
        .args(filter)
        .output()
        .map_err(|e| format!("docker ps: {e}"))?;
    if !output.status.success() {
        return Err(stderr(&output));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Polls `done` every 200 ms until it holds or `limit` passes; whether it held. For what the
/// engine does after the tool exits, or what a running build reaches: the bounds are generous,
/// a failure is a state that never came, never a slow machine.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A `lambda.zip` left by an earlier run, which a failed or interrupted run must leave as it was.
pub struct PreviousZip {
    pub path: PathBuf,
    bytes: Vec<u8>,
}

impl PreviousZip {
    /// Writes `<outdir>/lambda.zip` (an existing directory) with bytes no build would produce;
    /// anyone may replace it, so a failure to is the tool's.
    pub fn plant(outdir: &Path) -> PreviousZip {
        use std::os::unix::fs::PermissionsExt;
        let path = outdir.join("lambda.zip");
        let bytes = format!("the previous lambda.zip of {}\n", outdir.display()).into_bytes();
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        PreviousZip { path, bytes }
    }

    /// The zip has the same bytes and nothing else appeared beside it (no temporary file).
    pub fn assert_intact(&self) {
        let now = std::fs::read(&self.path)
            .unwrap_or_else(|e| panic!("the previous {} is gone: {e}", self.path.display()));
        assert!(
            now == self.bytes,
            "the previous {} was changed",
            self.path.display()
        );
        let dir = self.path.parent().unwrap();
        let mut beside: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "lambda.zip")
            .collect();
        beside.sort();
        // The fixture's own files are there when the outdir is the project.
        beside.retain(|name| {
            ![
                "Cargo.toml",
                "Cargo.lock",
                "src",
                "build.rs",
                "lambda.Dockerfile",
            ]
            .contains(&name.as_str())
        });
        assert!(
            beside.is_empty(),
            "left beside {}: {beside:?}",
            self.path.display()
        );
    }
}

/// A run of the tool whose stderr is watched line by line while it runs, to act (send a signal)
/// when it reaches a given point.
pub struct Watched {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    pub fn spawn(runner: &Runner, dir: &Path, args: &[&str]) -> Watched {
        Watched::spawn_command(runner.command(dir, args))
    }

    /// [`Watched::spawn`] of a command the test made (another engine, another environment).
    pub fn spawn_command(mut command: Command) -> Watched {
        use std::io::BufRead;
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let seen = std::sync::Arc::<std::sync::Mutex<String>>::default();
        let reader = std::io::BufReader::new(child.stderr.take().unwrap());
        let all = std::sync::Arc::clone(&seen);
        let reader = std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
        });
        Watched {
            child,
            lines,
            seen,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to `limit`) for a line of stderr containing `text`; panics with what was seen.
    pub fn wait_for_line(&self, text: &str, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line with `{text}` within {limit:?}:\n{}",
                    self.seen.lock().unwrap()
                ),
            }
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the child this test spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Waits for the exit; the status and all of stderr.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let err = self.seen.lock().unwrap().clone();
        (status, err)
    }
}

/// A run a failed assertion abandoned is stopped the way a user would (SIGINT, so it removes its
/// container), then killed, and what it left on the engine removed: otherwise it would go on
/// holding the shared target dir's lock and its container would fail the next tests' checks.
/// Nothing in it may panic: it runs while a failed test unwinds.
impl Drop for Watched {
    fn drop(&mut self) {
        let ended = |child: &mut std::process::Child| !matches!(child.try_wait(), Ok(None));
        if ended(&mut self.child) {
            return;
        }
        self.signal(libc::SIGINT);
        if !wait_until(Duration::from_secs(30), || ended(&mut self.child)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for name in try_containers_of(self.child.id()).unwrap_or_default() {
            let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        }
    }
}

/// Removes the images a run built (named in its `Building image TAG` line) and the tool's untagged
/// ones: tests that build a new image each time would otherwise leave some per CI run.
pub fn remove_built_images(stderr: &str) {
    for line in stderr.lines() {
        let Some((_, rest)) = line.split_once("Building image ") else {
            continue;
        };
        if let Some(tag) = rest.split_whitespace().next() {
            let _ = Command::new("docker").args(["rmi", tag]).output();
        }
    }
    // Two runs that built one tag at once leave the first image untagged.
    let _ = Command::new("docker")
        .args([
            "image",
            "prune",
            "--force",
            "--filter",
            "label=cargo-lambda-build=image",
        ])
        .output();
}

/// Files under `dir` that the user does not own.
pub fn not_owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    let mut foreign = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if std::os::unix::fs::MetadataExt::uid(&meta) != uid {
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
