//! The build stage: the plan's backend compiles every function, and each executable is read
//! and checked against provided.al2023. Running cargo and reading what it built from its JSON
//! messages is shared by every backend.

pub mod docker;
pub mod error;
pub mod local;
pub mod zig;

pub use error::{BuildError, INSTALL_RUST, KnownFailure};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cargo_metadata::Message;

use crate::arch::Arch;
use crate::env::Env;
use crate::inspect::{self, Checked};
use crate::plan::{Backend, BuildPlan, Cmd, FunctionPlan};
use crate::report::Reporter;
use crate::signal::Interrupt;

type Result<T, E = BuildError> = std::result::Result<T, E>;

/// What the build made of one function: its record from the plan, extended with its executable
/// (read and checked against provided.al2023) and the image of a `--docker` build (reported in
/// JSON, for a CI cache keyed by it; packages with their own `lambda.Dockerfile` build in their
/// own images).
#[derive(Debug, Clone)]
pub struct Built {
    pub plan: FunctionPlan,
    pub checked: Checked,
    pub docker_image: Option<String>,
}

/// The executable cargo reported for one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    pub function: FunctionPlan,
    pub path: PathBuf,
}

/// Builds every function of the plan with its backend: what was built for each, in the plan's
/// order. A check that fails is not an error here: the caller decides (`--no-verify`).
pub fn build(
    plan: &BuildPlan,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Built>> {
    let mut built = Vec::with_capacity(plan.functions.len());
    for part in plan.per_package_plans() {
        built.extend(build_one(&part, env, reporter, interrupt)?);
    }
    // One run per package groups the functions by package: back in the plan's order, which the
    // report follows.
    built.sort_by_key(|b| {
        plan.functions
            .iter()
            .position(|f| f.manifest_path == b.plan.manifest_path && f.bin == b.plan.bin)
    });
    Ok(built)
}

fn build_one(
    plan: &BuildPlan,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Built>> {
    match &plan.backend {
        Backend::Host => local::build(plan, env, reporter, interrupt),
        Backend::Docker(config) => {
            let build = docker::build(plan, config, env, reporter, interrupt)?;
            check_all(build.executables, plan.arch, Some(&build.image))
        }
    }
}

/// Reads and checks what cargo built, each against the plan's architecture.
pub fn check_all(
    executables: Vec<Executable>,
    arch: Arch,
    docker_image: Option<&str>,
) -> Result<Vec<Built>> {
    executables
        .into_iter()
        .map(|executable| {
            Ok(Built {
                checked: inspect::check_executable(&executable.path, arch)?,
                plan: executable.function,
                docker_image: docker_image.map(str::to_owned),
            })
        })
        .collect()
}

/// Reads what cargo built from its JSON messages, for every backend (cargo's stdout on the
/// host, a container's output lines): the executable of each function, taken from this run's
/// messages only. Paths are never guessed: cargo knows where `--target`, `--profile` and
/// `build.target-dir` put them, and a binary cargo did not report (say, one left by an earlier
/// build) is never picked up.
pub struct Collector<'a> {
    waiting: Vec<Waiting>,
    reporter: &'a Reporter,
}

/// A function, the manifest cargo names its package by, and its executable once reported.
struct Waiting {
    function: FunctionPlan,
    manifest: PathBuf,
    executable: Option<PathBuf>,
}

impl<'a> Collector<'a> {
    /// Waits for each function's binary; `manifest` says how cargo names the package's
    /// manifest (the host's path, or its copy in a container).
    pub fn new(
        functions: &[FunctionPlan],
        manifest: impl Fn(&Path) -> PathBuf,
        reporter: &'a Reporter,
    ) -> Collector<'a> {
        let waiting = functions
            .iter()
            .map(|function| Waiting {
                manifest: manifest(&function.manifest_path),
                function: function.clone(),
                executable: None,
            })
            .collect();
        Collector { waiting, reporter }
    }

    /// Reads cargo's messages: its whole stdout, or one line of it. Each artifact moves the
    /// progress display on.
    pub fn read(&mut self, stream: impl BufRead) {
        for message in Message::parse_stream(stream).flatten() {
            let Message::CompilerArtifact(artifact) = &message else {
                continue;
            };
            self.reporter.progress_crate(&artifact.target.name);
            for waiting in self.waiting.iter_mut().filter(|w| w.executable.is_none()) {
                waiting.executable =
                    find_executable([&message], &waiting.manifest, &waiting.function.bin);
            }
        }
    }

    /// Each function's executable, once cargo succeeded; a binary it did not report is an error.
    pub fn finish(self) -> Result<Vec<Executable>> {
        self.waiting
            .into_iter()
            .map(|waiting| match waiting.executable {
                Some(path) => Ok(Executable {
                    function: waiting.function,
                    path,
                }),
                None => Err(BuildError::NoArtifact(waiting.function.bin)),
            })
            .collect()
    }
}

/// Picks the executable of `bin` in the package at `manifest` from cargo's messages.
pub fn find_executable<'m>(
    messages: impl IntoIterator<Item = &'m Message>,
    manifest: &Path,
    bin: &str,
) -> Option<PathBuf> {
    messages.into_iter().find_map(|message| match message {
        Message::CompilerArtifact(artifact)
            if (artifact.target.is_bin() || artifact.target.is_example())
                && artifact.target.name == bin
                && artifact.manifest_path.as_std_path() == manifest =>
        {
            artifact.executable.clone().map(PathBuf::from)
        }
        _ => None,
    })
}

/// Runs `cargo build --message-format=json-render-diagnostics`: stdout (JSON) is read by the
/// [`Collector`], stderr (status lines, rendered diagnostics) is passed to the user line by line
/// on its own thread, so neither pipe can fill up and stall cargo. The result has the executable
/// of each of `functions`, in their order.
pub fn run_cargo(
    invocation: &Cmd,
    functions: &[FunctionPlan],
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Executable>> {
    let mut watched = Watched::spawn(invocation, Stdio::piped(), reporter, interrupt)?;
    let stdout = watched.child_stdout()?;
    let stderr = watched.child_stderr()?;

    let mut collector = Collector::new(functions, Path::to_path_buf, reporter);
    reporter.start_progress();
    let known = std::thread::scope(|scope| {
        let forwarding = scope.spawn(|| forward_lines(stderr, reporter));
        collector.read(BufReader::new(stdout));
        // A panic while forwarding lost lines, not the build: no diagnosis then.
        forwarding.join().ok().flatten()
    });
    reporter.finish_progress();
    let status = watched.wait(interrupt)?;
    if !status.success() {
        return Err(BuildError::Cargo {
            status,
            code: status.code(),
            known,
        });
    }
    collector.finish()
}

/// A child cargo with its stderr piped, and this process's SIGINT/SIGTERM passed on to it.
pub(crate) struct Watched {
    child: Arc<Mutex<Child>>,
    done: Arc<AtomicBool>,
}

impl Watched {
    /// Prints the command at `-v`, starts it, and starts the thread that forwards signals.
    pub(crate) fn spawn(
        invocation: &Cmd,
        stdout: Stdio,
        reporter: &Reporter,
        interrupt: &Interrupt,
    ) -> Result<Watched> {
        reporter.command(invocation);
        let child = invocation
            .command()
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BuildError::spawn_rust(&invocation.program))?;
        let child = Arc::new(Mutex::new(child));
        let done = Arc::new(AtomicBool::new(false));
        watch_for_interrupt(Arc::clone(&child), Arc::clone(&done), interrupt.clone());
        Ok(Watched { child, done })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Child>> {
        Ok(self
            .child
            .lock()
            .map_err(|_| anyhow::anyhow!("cargo's process handle was poisoned"))?)
    }

    pub(crate) fn child_stdout(&mut self) -> Result<std::process::ChildStdout> {
        Ok(self.lock()?.stdout.take().expect("stdout is piped"))
    }

    pub(crate) fn child_stderr(&mut self) -> Result<std::process::ChildStderr> {
        Ok(self.lock()?.stderr.take().expect("stderr is piped"))
    }

    /// Waits for the child; an interruption is reported as such, whatever cargo's status.
    pub(crate) fn wait(self, interrupt: &Interrupt) -> Result<std::process::ExitStatus> {
        self.done.store(true, Ordering::SeqCst);
        let status = self
            .lock()?
            .wait()
            .map_err(|e| anyhow::anyhow!("cannot wait for cargo: {e}"))?;
        interrupt.check()?;
        Ok(status)
    }
}

/// Passes cargo's stderr on, and says what it recognised in it.
pub(crate) fn forward_lines(stream: impl Read, reporter: &Reporter) -> Option<KnownFailure> {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut scan = error::FailureScan::default();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        scan.line(text);
        reporter.cargo_line(text);
        line.clear();
    }
    scan.finish()
}

/// Passes a signal this process received on to cargo (a terminal's Ctrl-C reaches cargo by
/// itself; a `kill` or a CI runner's SIGTERM reaches only this process).
fn watch_for_interrupt(
    child: Arc<Mutex<Child>>,
    done: Arc<AtomicBool>,
    interrupt: Interrupt,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            if let Some(signal) = interrupt.signal() {
                if let Ok(child) = child.try_lock() {
                    forward(child, signal);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[cfg(unix)]
fn forward(child: std::sync::MutexGuard<'_, Child>, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid this process spawned and has not reaped yet (the lock is
    // held, so `wait` has not run).
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// Windows has no signals to pass on: Ctrl-C reaches every process of the console, cargo
/// included, by itself; anything else stops cargo outright.
#[cfg(not(unix))]
fn forward(mut child: std::sync::MutexGuard<'_, Child>, signal: libc::c_int) {
    if signal != libc::SIGINT {
        let _ = child.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &str) -> Vec<Message> {
        Message::parse_stream(lines.as_bytes()).flatten().collect()
    }

    fn artifact(name: &str, kind: &str, manifest: &str, exe: Option<&str>) -> String {
        serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": "path+file:///p#0.1.0",
            "manifest_path": manifest,
            "target": { "name": name, "kind": [kind], "crate_types": [kind], "src_path": "/p/src/main.rs",
                        "edition": "2021", "doctest": false, "test": true, "doc": true },
            "profile": { "opt_level": "3", "debuginfo": 0, "debug_assertions": false,
                         "overflow_checks": false, "test": false },
            "features": [],
            "filenames": [exe.unwrap_or("/t/libx.rlib")],
            "executable": exe,
            "fresh": true,
        })
        .to_string()
    }

    #[test]
    fn the_executable_comes_from_cargo_messages() {
        let stream = [
            artifact("serde", "lib", "/reg/serde/Cargo.toml", None),
            // Same binary name in another package of the workspace.
            artifact("api", "bin", "/ws/other/Cargo.toml", Some("/t/other-api")),
            artifact(
                "api",
                "bin",
                "/ws/api/Cargo.toml",
                Some("/t/x86_64-unknown-linux-gnu/release/api"),
            ),
            r#"{"reason":"build-finished","success":true}"#.to_string(),
        ]
        .join("\n");
        let built =
            find_executable(&parse(&stream), Path::new("/ws/api/Cargo.toml"), "api").unwrap();
        assert_eq!(built, Path::new("/t/x86_64-unknown-linux-gnu/release/api"));
    }

    fn function(manifest: &str, bin: &str) -> FunctionPlan {
        FunctionPlan {
            package: bin.into(),
            bin: bin.into(),
            manifest_path: manifest.into(),
            staging_dir: PathBuf::new(),
            output: crate::plan::Output::Zip("/out/lambda.zip".into()),
            entry_name: "bootstrap".into(),
            extension: false,
            include: Vec::new(),
            package_root: PathBuf::new(),
            outdir: "/out".into(),
            layers: Vec::new(),
            env: Vec::new(),
            brought: Default::default(),
        }
    }

    #[test]
    fn the_collector_takes_each_functions_executable_as_cargo_names_its_package() {
        let stream = [
            artifact("api", "bin", "/c/ws/api/Cargo.toml", Some("/t/api")),
            // The host's manifest: not what cargo names it in this container.
            artifact("jobs", "bin", "/ws/jobs/Cargo.toml", Some("/host/jobs")),
            artifact("jobs", "bin", "/c/ws/jobs/Cargo.toml", Some("/t/jobs")),
        ];
        let reporter = Reporter::plain(crate::env::Ui::default());
        let functions = [
            function("/ws/api/Cargo.toml", "api"),
            function("/ws/jobs/Cargo.toml", "jobs"),
        ];
        let inside = |manifest: &Path| PathBuf::from(format!("/c{}", manifest.display()));
        let mut collector = Collector::new(&functions, inside, &reporter);
        for line in &stream {
            collector.read(line.as_bytes());
        }
        let found = collector.finish().unwrap();
        let found: Vec<_> = found
            .iter()
            .map(|e| (e.function.bin.as_str(), e.path.as_path()))
            .collect();
        assert_eq!(
            found,
            [("api", Path::new("/t/api")), ("jobs", Path::new("/t/jobs"))]
        );

        // On the host, only `jobs` was reported: `api` is missing, never guessed.
        let mut collector = Collector::new(&functions, Path::to_path_buf, &reporter);
        collector.read(stream.join("\n").as_bytes());
        let err = collector.finish().unwrap_err();
        assert!(
            matches!(&err, BuildError::NoArtifact(bin) if bin == "api"),
            "{err}"
        );
    }

    #[cfg(unix)]
    /// A fake cargo that fails as cargo does when openssl-sys's build script cannot find
    /// OpenSSL for the target (issue 17, item 13).
    fn failing_cargo(dir: &Path, stderr: &str) -> Cmd {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("cargo");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ncat >&2 <<'EOF'\n{stderr}\nEOF\nexit 101\n"),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Cmd {
            program: script.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: dir.to_path_buf(),
        }
    }

    #[cfg(unix)]
    const OPENSSL_FAILURE: &str = "\
   Compiling openssl-sys v0.9.109
error: failed to run custom build command for `openssl-sys v0.9.109`

Caused by:
  process didn't exit successfully: `/t/release/build/openssl-sys-1/build-script-main` (exit status: 101)
  --- stdout
  cargo:rerun-if-env-changed=AARCH64_UNKNOWN_LINUX_GNU_OPENSSL_NO_VENDOR
  run pkg_config fail: pkg-config has not been configured to support cross-compilation.

  Install a sysroot for the target platform and configure it via
  PKG_CONFIG_SYSROOT_DIR and PKG_CONFIG_PATH, or install a
  cross-compiling wrapper for pkg-config and set it via
  PKG_CONFIG environment variable.

  --- stderr
  thread 'main' panicked at openssl-sys-0.9.109/build/find_normal.rs:190:5:


  Could not find directory of OpenSSL installation, and this `-sys` crate cannot
  proceed without this knowledge.";

    #[cfg(unix)]
    #[test]
    fn openssl_and_pkg_config_failures_name_the_three_fixes() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Reporter::plain(crate::env::Ui::default());
        let run = |stderr: &str| {
            run_cargo(
                &failing_cargo(dir.path(), stderr),
                &[],
                &reporter,
                &Interrupt::none(),
            )
            .unwrap_err()
        };
        let err = run(OPENSSL_FAILURE);
        assert!(
            matches!(
                err,
                BuildError::Cargo {
                    code: Some(101),
                    ..
                }
            ),
            "{err}"
        );
        let help = err.help().unwrap();
        for fix in ["--docker", "vendored", "rustls"] {
            assert!(help.contains(fix), "{fix} missing: {help}");
        }
        assert!(help.contains("openssl-sys"), "{help}");

        // Another `-sys` crate that asks pkg-config on a cross build: named, with --docker.
        let err = run(
            "error: failed to run custom build command for `libpq-sys v0.8.0`\n\
            run pkg_config fail: pkg-config has not been configured to support cross-compilation.",
        );
        let help = err.help().unwrap();
        assert!(
            help.contains("libpq-sys") && help.contains("--docker"),
            "{help}"
        );

        let err = run("error[E0308]: mismatched types");
        assert!(
            err.help().unwrap().starts_with("cargo says above"),
            "{err:?}"
        );
    }

    #[test]
    fn no_artifact_for_the_binary_is_none() {
        let stream = artifact("serde", "lib", "/reg/serde/Cargo.toml", None);
        assert_eq!(
            find_executable(&parse(&stream), Path::new("/ws/api/Cargo.toml"), "api"),
            None
        );
    }
}
