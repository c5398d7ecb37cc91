//! Fixture crates under tests/fixtures/: copies, a shared target dir, plain cargo builds, and
//! extraction of a produced lambda.zip.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/fixtures/<name>` in the source tree (never build in it: use [`copy_fixture`]).
fn fixture_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    assert!(
        dir.join("Cargo.toml").is_file(),
        "no fixture crate at {}",
        dir.display()
    );
    dir
}

/// One target dir shared by every fixture build of the test run, so the lambda_runtime
/// dependency tree compiles once (cargo's build-directory lock serialises concurrent builds).
/// Pass it as `--target-dir` (or `CARGO_TARGET_DIR`).
pub fn fixture_target_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/fixtures"))
}

/// What a build leaves in a fixture directory (the entries `.gitignore` lists for
/// `tests/fixtures/*`): a copy leaves them out, so a fixture someone built by hand (the README's
/// try-command builds `echo` in place) gives the tests the same clean crate as a fresh clone.
const BUILD_OUTPUTS: [&str; 3] = ["target", "lambda.zip", "bootstrap"];

/// A fresh copy of `tests/fixtures/<name>` (without its build outputs) in a temporary directory
/// outside the repository, deleted when the returned value is dropped. The fixture is its own
/// workspace root (empty `[workspace]` table) and keeps its Cargo.lock, so `--locked` works.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = fixture_dir(name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!("fixture-{name}-"))
        .tempdir()
        .expect("create a temporary directory for the fixture");
    copy_tree(&src, tmp.path(), true);
    tmp
}

/// A copy of the directory `src` at `dst` (created), symlinks followed.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    copy_tree(src, dst, false);
}

fn copy_tree(src: &Path, dst: &Path, top: bool) {
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let entry = entry.expect("read a fixture directory entry");
        let name = entry.file_name();
        if top && BUILD_OUTPUTS.iter().any(|output| name == *output) {
            continue;
        }
        let (from, to) = (entry.path(), dst.join(&name));
        let kind = entry.file_type().expect("file type of a fixture entry");
        if kind.is_dir() {
            fs::create_dir(&to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
            copy_tree(&from, &to, false);
        } else {
            // fs::copy follows symlinks and keeps permissions.
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
        }
    }
}

/// Runs `cargo-lambda-build lambda-build ARGS --locked --target-dir <shared>` in the fixture copy
/// at `dir`, with no `CARGO_TARGET_DIR` or `SOURCE_DATE_EPOCH` leaking in from the test run.
pub fn lambda_build_fixture(dir: &Path, args: &[&str]) -> std::process::Output {
    lambda_build_fixture_command(dir, args)
        .output()
        .expect("runs cargo-lambda-build")
}

/// The command [`lambda_build_fixture`] runs, to add to.
pub fn lambda_build_fixture_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = super::tool();
    command
        .args(args)
        .args(["--locked", "--target-dir"])
        .arg(fixture_target_dir())
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR");
    command
}

/// Asserts that a run of the tool succeeded, quoting its stderr when not.
pub fn assert_success(output: &std::process::Output) {
    assert_ran("cargo-lambda-build", output);
}

/// Asserts that a run of `what` (a command, or what it was doing) succeeded, quoting its output
/// when not (stdout too: a test harness, under wine for one, reports its failures there).
pub fn assert_ran(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Extract `zip` (a produced lambda.zip) into the directory `into` with Info-ZIP `unzip`, which
/// restores Unix modes as Lambda does, and return the path of `bootstrap` at its root after
/// checking that it is an executable regular file. Requires `unzip`: check it first with
/// `require_tool("unzip")`.
pub fn extract_bootstrap(zip: &Path, into: &Path) -> PathBuf {
    assert!(
        super::find_tool("unzip").is_some(),
        "extract_bootstrap needs `unzip` on PATH (call require_tool(\"unzip\") first)"
    );
    fs::create_dir_all(into).unwrap_or_else(|e| panic!("mkdir {}: {e}", into.display()));
    let out = Command::new("unzip")
        .args(["-o", "-q"])
        .arg(zip)
        .arg("-d")
        .arg(into)
        .output()
        .expect("run unzip");
    assert!(
        out.status.success(),
        "unzip {} failed ({}): {}{}",
        zip.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bootstrap = into.join("bootstrap");
    let meta = fs::symlink_metadata(&bootstrap)
        .unwrap_or_else(|e| panic!("{} has no `bootstrap` at its root: {e}", zip.display()));
    assert!(
        meta.is_file(),
        "`bootstrap` in {} is not a regular file",
        zip.display()
    );
    let mode = meta.permissions().mode() & 0o7777;
    assert!(
        mode & 0o111 == 0o111,
        "`bootstrap` in {} has mode {mode:o}, not executable",
        zip.display()
    );
    bootstrap
}
