//! Other hosts than Linux, checked from here: the macOS and Windows builds of the tool pass
//! `cargo clippy --all-targets -D warnings` (which is `cargo check` and more), and the Windows
//! build runs under wine: its unit tests, `package` of a Linux `bootstrap` built here, whose
//! zip must be byte for byte the one the Linux build writes, and `invoke` and `serve` choosing
//! container mode.
//!
//! These builds use their own target dir, `target/hosts`, beside the one every other test
//! shares, so they never invalidate it; after the first run they are incremental. What cannot be
//! tried here: a real macOS run (no macOS SDK or machine; zig's C compiler stands in for ring's
//! build script, which is all a check needs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::support::{self, MAIN, assert_ran, assert_success, report, report_time, skip_or_fail};

const WINDOWS: &str = "x86_64-pc-windows-gnu";
const MACOS: [&str; 2] = ["x86_64-apple-darwin", "aarch64-apple-darwin"];
/// Debian's wine64 loader (package `wine64`), which runs a 64-bit `.exe` without a desktop.
const WINE: &str = "/usr/lib/wine/wine64";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// `target/hosts`: the other hosts' builds, apart from the shared target dir.
fn hosts_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp")
        .join("hosts")
}

/// cargo on this repository, for `target` in `target/hosts`.
fn cargo(args: &[&str], target: &str) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(args)
        .args(["--locked", "--target", target, "--target-dir"])
        .arg(hosts_target_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS");
    command
}

/// Whether rustup has the standard library of `target`; skips (or fails in CI) when not.
fn rust_target_installed(target: &str) -> bool {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == target)
        });
    if !installed {
        skip_or_fail(&format!(
            "the Rust target {target} is not installed (`rustup target add {target}`)"
        ));
    }
    installed
}

/// ring's build script compiles C for the target even for a check: for macOS, with no SDK here,
/// zig's `cc -target <arch>-macos` does it. The cc crate passes clang's `--target=` spelling
/// of the triple, which zig does not read, so a wrapper drops it.
fn macos_cc(target: &str) -> Option<PathBuf> {
    let zig = cargo_lambda_build::build::zig::find()?;
    let arch = target.split('-').next().unwrap_or_default();
    let dir = hosts_target_dir().join("cc");
    fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join(format!("{arch}-macos-cc"));
    let script = format!(
        "#!/bin/sh\nfor a; do shift; case \"$a\" in --target=*) ;; *) set -- \"$@\" \"$a\";; esac; done\n\
         exec '{}' cc -target {arch}-macos \"$@\"\n",
        zig.display()
    );
    if fs::read_to_string(&wrapper).ok().as_deref() != Some(script.as_str()) {
        fs::write(&wrapper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    }
    Some(wrapper)
}

#[test]
fn macos_and_windows_builds_pass_clippy() {
    let mut targets = vec![WINDOWS];
    targets.extend(MACOS);
    if !targets.iter().all(|t| rust_target_installed(t)) || !support::require_tool(MINGW_GCC) {
        return;
    }
    for target in targets {
        let start = Instant::now();
        let mut clippy = cargo(&["clippy", "--all-targets"], target);
        clippy.args(["--", "-D", "warnings"]);
        if target.contains("apple") {
            let Some(cc) = macos_cc(target) else {
                skip_or_fail("zig is not installed (`python3 -m pip install ziglang`)");
                return;
            };
            clippy.env(format!("CC_{}", target.replace('-', "_")), cc);
        }
        assert_ran(
            &format!("cargo clippy --target {target}"),
            &clippy.output().unwrap(),
        );
        report_time(
            &format!("cargo clippy --all-targets --target {target}"),
            start.elapsed(),
        );
    }
}

/// A fresh wine prefix in a temporary directory, and the environment a run under wine needs.
struct Wine {
    prefix: tempfile::TempDir,
}

impl Wine {
    fn new() -> Option<Wine> {
        if !Path::new(WINE).is_file() {
            skip_or_fail("wine is not installed (`apt-get install -y wine64`)");
            return None;
        }
        let prefix = tempfile::Builder::new().prefix("wine-").tempdir().unwrap();
        Some(Wine { prefix })
    }

    fn command(&self, exe: &Path) -> Command {
        let mut command = Command::new(WINE);
        command
            .arg(exe)
            .env("WINEPREFIX", self.prefix.path())
            .env("WINEDEBUG", "-all")
            // No desktop, no "wine is updating the prefix" window.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY");
        command
    }
}

impl Drop for Wine {
    /// The prefix's wineserver would linger a few seconds after the last program.
    fn drop(&mut self) {
        let _ = Command::new("/usr/lib/wine/wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.prefix.path())
            .status();
    }
}

/// Rust's std on Windows takes its random numbers from `ProcessPrng` in bcryptprimitives.dll,
/// which wine 8 does not have: a three-line DLL beside the `.exe`, built here, forwards it to
/// `RtlGenRandom` (advapi32's SystemFunction036). Built each run, never committed.
fn process_prng_shim_beside(exe: &Path) {
    let src = tempfile::tempdir().unwrap();
    let c = src.path().join("bcryptprimitives.c");
    fs::write(
        &c,
        "#include <windows.h>\n\
         BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);\n\
         BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) { return SystemFunction036(data, (ULONG)len); }\n",
    )
    .unwrap();
    let dll = exe.with_file_name("bcryptprimitives.dll");
    let output = Command::new(MINGW_GCC)
        .args(["-shared", "-O2", "-o"])
        .arg(&dll)
        .arg(&c)
        .arg("-ladvapi32")
        .output()
        .unwrap();
    assert_ran(MINGW_GCC, &output);
}

/// The executables a cargo run built, from its JSON messages.
fn executables(output: &Output) -> Vec<PathBuf> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

#[test]
fn the_windows_build_runs_under_wine() {
    if !rust_target_installed(WINDOWS) || !support::require_tool(MINGW_GCC) {
        return;
    }
    let Some(wine) = Wine::new() else { return };

    // (a) The unit tests, built for Windows, run under wine.
    let start = Instant::now();
    let built = cargo(
        &["test", "--lib", "--no-run", "--message-format", "json"],
        WINDOWS,
    )
    .output()
    .unwrap();
    assert_ran(
        "cargo test --lib --no-run --target x86_64-pc-windows-gnu",
        &built,
    );
    let tests = executables(&built);
    assert_eq!(tests.len(), 1, "one unit-test executable: {tests:?}");
    process_prng_shim_beside(&tests[0]);
    let output = wine.command(&tests[0]).output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or_default()
        .to_owned();
    assert_ran("the unit tests under wine", &output);
    report(&format!("wine: unit tests of the Windows build: {summary}"));
    report_time(
        "Windows unit tests: build and run under wine",
        start.elapsed(),
    );

    // (b) `package` by the Windows build of a Linux bootstrap built here: the Linux build's zip.
    let start = Instant::now();
    let built = cargo(&["build", "--message-format", "json"], WINDOWS)
        .output()
        .unwrap();
    assert_ran("cargo build --target x86_64-pc-windows-gnu", &built);
    let exe = executables(&built)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "cargo-lambda-build.exe"))
        .expect("cargo-lambda-build.exe among the artifacts");
    process_prng_shim_beside(&exe);

    let project = support::crate_with("wine", &[("src/main.rs", MAIN)], "");
    let dir = project.path();
    fs::create_dir_all(dir.join("config")).unwrap();
    fs::write(dir.join("config/app.json"), "{\"stage\": \"prod\"}\n").unwrap();
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    for args in [
        &["--zip", "--include", "config", "-o", "linux"][..],
        &["-o", "bin"],
    ] {
        let output = support::lambda_build_command(dir, args)
            .envs(epoch)
            .output()
            .unwrap();
        assert_success(&output);
    }
    let output = wine
        .command(&exe)
        .args([
            "lambda-build",
            "package",
            "bin/bootstrap",
            "--zip",
            "--include",
            "config",
            "-o",
            "windows",
        ])
        .current_dir(dir)
        .envs(epoch)
        .output()
        .unwrap();
    assert_ran("cargo-lambda-build.exe package under wine", &output);
    let (linux, windows) = (dir.join("linux/lambda.zip"), dir.join("windows/lambda.zip"));
    let (linux_sha, windows_sha) = (sha256_hex(&linux), sha256_hex(&windows));
    report(&format!(
        "wine: lambda.zip sha256: Linux build {linux_sha}, Windows package {windows_sha}"
    ));
    assert_eq!(
        fs::read(&windows).unwrap(),
        fs::read(&linux).unwrap(),
        "the Windows build's zip differs from the Linux build's"
    );
    let names: Vec<String> = support::read_zip(&windows)
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    assert_eq!(names, ["bootstrap", "config/", "config/app.json"]);
    report_time("Windows package under wine", start.elapsed());

    // (c) `invoke` and `serve` run the Linux bootstrap in a container, Windows' way: with no
    // engine answering (DOCKER_HOST at a closed port), the error says how to get one. Native
    // mode, a build for this machine, is Linux's and macOS's only.
    for args in [
        &["invoke", "bin/bootstrap", "-d", "{}"][..],
        &["serve", "bin/bootstrap", "--port", "0"],
        &["invoke", "bin/bootstrap", "--docker", "-d", "{}"],
    ] {
        let output = wine
            .command(&exe)
            .arg("lambda-build")
            .args(args)
            .current_dir(dir)
            .env("DOCKER_HOST", "tcp://127.0.0.1:1")
            .output()
            .unwrap();
        let (problem, fix) = if args.contains(&"--docker") {
            ("127.0.0.1:1", "DOCKER_HOST")
        } else {
            (
                "container mode needs a Docker engine, the default on windows",
                "Docker Desktop",
            )
        };
        let err = support::assert_refused(&output, 1, problem, fix);
        assert!(!err.contains("cannot do yet"), "{err}");
    }
    let output = wine
        .command(&exe)
        .args(["lambda-build", "invoke", "--native", "-d", "{}"])
        .current_dir(dir)
        .output()
        .unwrap();
    support::assert_refused(&output, 1, "a windows host cannot", "WSL");

    // (d) An engine over TCP (the Docker tests' remote one, `.ci/remote-docker.sh`): the Windows
    // build reaches it, finds the image, and is refused as an engine that cannot see this
    // machine's files, as a Linux engine cannot mount a `Z:` path. What cannot be tried here is
    // the run itself: only Docker Desktop (or Podman machine) maps a Windows path into its VM.
    let (Ok(remote), Ok(image)) = (
        std::env::var("LAMBDA_BUILD_TEST_REMOTE_DOCKER_HOST"),
        std::env::var("LAMBDA_BUILD_TEST_BASE_IMAGE"),
    ) else {
        skip_or_fail("no remote engine (`. .ci/docker.sh; . .ci/remote-docker.sh`)");
        return;
    };
    let output = wine
        .command(&exe)
        .args(["lambda-build", "invoke", "bin/bootstrap", "-d", "{}"])
        .args(["--docker-image", &image])
        .current_dir(dir)
        .env("DOCKER_HOST", &remote)
        .output()
        .unwrap();
    support::assert_refused(
        &output,
        1,
        "cannot see this machine's files",
        "use an engine on this machine",
    );
}
