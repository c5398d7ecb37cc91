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

use crate::env::Env;
use crate::inspect::{self, Checked};
use crate::plan::{Backend, BuildPlan, Cmd};
use crate::report::Reporter;
use crate::signal::Interrupt;

type Result<T, E = BuildError> = std::result::Result<T, E>;

/// What cargo built for the selected binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub executable: PathBuf,
}

/// Builds every function of the plan with its backend; one checked executable per function, in
/// the plan's order. A check that fails is not an error here: the caller decides
/// (`--no-verify`).
pub fn build(
    plan: &BuildPlan,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome> {
    let plans = plan.per_package_plans();
    if plans.len() == 1 {
        return build_one(plan, env, reporter, interrupt);
    }
    let mut done = Vec::new();
    for part in &plans {
        let outcome = build_one(part, env, reporter, interrupt)?;
        done.extend(
            part.functions
                .iter()
                .map(|f| (f.manifest_path.clone(), f.bin.clone()))
                .zip(outcome.checked.into_iter().zip(outcome.docker_images)),
        );
    }
    // Back in the plan's order, which the later stages follow.
    let (checked, docker_images) = plan
        .functions
        .iter()
        .map(|f| {
            let at = done
                .iter()
                .position(|((manifest, bin), _)| *manifest == f.manifest_path && *bin == f.bin)
                .expect("every function is in one package's plan");
            done.swap_remove(at).1
        })
        .unzip();
    Ok(Outcome {
        checked,
        docker_images,
    })
}

fn build_one(
    plan: &BuildPlan,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome> {
    match &plan.backend {
        Backend::Host => {
            let checked = local::build(plan, env, reporter, interrupt)?;
            Ok(Outcome {
                docker_images: vec![None; checked.len()],
                checked,
            })
        }
        Backend::Docker(config) => {
            let build = docker::build(plan, config, env, reporter, interrupt)?;
            Ok(Outcome {
                docker_images: vec![Some(build.image); build.built.len()],
                checked: check_all(&build.built, plan)?,
            })
        }
    }
}

/// What a build produced, per function in the plan's order: its executable, checked, and the
/// image of a `--docker` build (reported in JSON, for a CI cache keyed by it; packages with their
/// own `lambda.Dockerfile` build in their own images).
pub struct Outcome {
    pub checked: Vec<Checked>,
    pub docker_images: Vec<Option<String>>,
}

/// Reads and checks what cargo built, each against the plan's architecture.
pub fn check_all(built: &[Built], plan: &BuildPlan) -> Result<Vec<Checked>> {
    built
        .iter()
        .map(|b| inspect::check_executable(&b.executable, plan.arch).map_err(BuildError::from))
        .collect()
}

/// Picks the executable of `bin` in the package at `manifest` from cargo's messages. Paths are
/// never guessed: cargo knows where `--target`, `--profile` and `build.target-dir` put them.
pub fn find_executable(
    messages: impl IntoIterator<Item = Message>,
    manifest: &Path,
    bin: &str,
) -> Option<Built> {
    messages.into_iter().find_map(|message| match message {
        Message::CompilerArtifact(artifact)
            if (artifact.target.is_bin() || artifact.target.is_example())
                && artifact.target.name == bin
                && artifact.manifest_path.as_std_path() == manifest =>
        {
            artifact.executable.map(|exe| Built {
                executable: exe.into(),
            })
        }
        _ => None,
    })
}

/// Runs `cargo build --message-format=json-render-diagnostics`: stdout (JSON) is parsed here,
/// stderr (status lines, rendered diagnostics) is passed to the user line by line on its own
/// thread, so neither pipe can fill up and stall cargo.
///
/// `wanted` lists each binary as (package manifest, binary name); the result has the executable
/// of each, in the same order, taken from this run's messages only: a binary cargo did not
/// report (say, one left by an earlier build) is never picked up.
pub fn run_cargo(
    invocation: &Cmd,
    wanted: &[(&Path, &str)],
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Built>> {
    let mut watched = Watched::spawn(invocation, Stdio::piped(), reporter, interrupt)?;
    let stdout = watched.child_stdout()?;
    let stderr = watched.child_stderr()?;

    reporter.start_progress();
    let (built, known) = std::thread::scope(|scope| {
        let forwarding = scope.spawn(|| forward_lines(stderr, reporter));
        let mut built: Vec<Option<Built>> = vec![None; wanted.len()];
        for message in Message::parse_stream(BufReader::new(stdout)).flatten() {
            let Message::CompilerArtifact(artifact) = &message else {
                continue;
            };
            reporter.progress_crate(&artifact.target.name);
            for (slot, (manifest, bin)) in built.iter_mut().zip(wanted) {
                if slot.is_none() {
                    *slot = find_executable([message.clone()], manifest, bin);
                }
            }
        }
        // A panic while forwarding lost lines, not the build: no diagnosis then.
        (built, forwarding.join().ok().flatten())
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
    built
        .into_iter()
        .zip(wanted)
        .map(|(built, (_, bin))| built.ok_or_else(|| BuildError::NoArtifact(bin.to_string())))
        .collect()
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
            find_executable(parse(&stream), Path::new("/ws/api/Cargo.toml"), "api").unwrap();
        assert_eq!(
            built.executable,
            Path::new("/t/x86_64-unknown-linux-gnu/release/api")
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
            find_executable(parse(&stream), Path::new("/ws/api/Cargo.toml"), "api"),
            None
        );
    }
}
