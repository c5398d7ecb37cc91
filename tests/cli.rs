//! The real binary on small throwaway crates (no dependencies, so they build in a second or two):
//! what a user sees on bad input, and what a good build leaves on disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-lambda-build");

/// One target dir for every crate of this file, so the std-only builds stay quick.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-target")
}

fn lambda_build(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("lambda-build")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("runs cargo-lambda-build")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code and that stderr carries the message and a `help:` line, and no panic.
fn assert_fails(output: &Output, code: i32, message: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{err}");
    assert!(err.contains(message), "expected `{message}` in:\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

fn assert_unchanged(zip: &Path, before: &[u8]) {
    assert!(
        fs::read(zip).unwrap() == before,
        "the previous lambda.zip changed"
    );
}

fn assert_has_help(output: &Output) {
    assert!(
        stderr(output).contains("\nhelp: "),
        "no help line in:\n{}",
        stderr(output)
    );
}

/// A crate named `name` with the given files (path, content) and Cargo.toml extra lines.
fn crate_with(name: &str, files: &[(&str, &str)], manifest_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("lambda build ü ")
        .tempdir()
        .unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{manifest_extra}\n[workspace]\n"
        ),
    )
    .unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

const MAIN: &str = "fn main() { println!(\"hello from bootstrap\"); }\n";

fn read_zip(path: &Path) -> zip::ZipArchive<fs::File> {
    zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap()
}

#[test]
fn builds_a_zip_with_an_executable_bootstrap_at_its_root() {
    let project = crate_with("hello", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));

    let zip_path = project.path().join("lambda.zip");
    let mut zip = read_zip(&zip_path);
    assert_eq!(zip.len(), 1);
    let entry = zip.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "bootstrap");
    assert_eq!(entry.unix_mode(), Some(0o100755));

    // The summary names the artifact and Lambda's CodeSha256 of the file on disk.
    use base64::Engine;
    use sha2::Digest;
    let code_sha256 = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(fs::read(&zip_path).unwrap()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("CodeSha256    {code_sha256}")),
        "{stdout}"
    );
    assert!(stdout.contains("architecture  x86_64"), "{stdout}");
    // Status lines go to stderr, not stdout.
    assert!(stderr(&output).contains("Packaged"), "{}", stderr(&output));
    assert!(!stdout.contains("Packaged") && !stdout.contains("Compiling"));

    // The bootstrap that was zipped is the program that was built.
    let extracted = project.path().join("extracted");
    read_zip(&zip_path).extract(&extracted).unwrap();
    let ran = Command::new(extracted.join("bootstrap")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello from bootstrap\n"
    );
}

#[test]
fn without_zip_outdir_receives_bootstrap() {
    use std::os::unix::fs::PermissionsExt;
    let project = crate_with("plain", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["--outdir", "out/nested"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let bootstrap = project.path().join("out/nested/bootstrap");
    let mode = fs::metadata(&bootstrap).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(!project.path().join("lambda.zip").exists());
}

#[test]
fn clean_rebuilds_give_byte_identical_zips() {
    let project = crate_with("same", &[("src/main.rs", MAIN)], "");
    let mut zips = Vec::new();
    for round in ["a", "b"] {
        // A fresh target dir each time: a clean rebuild, not a reused artifact.
        let target = tempfile::tempdir().unwrap();
        let out = format!("out-{round}");
        let output = Command::new(BIN)
            .args(["lambda-build", "--zip", "--outdir", &out])
            .current_dir(project.path())
            .env("CARGO_TARGET_DIR", target.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        zips.push(fs::read(project.path().join(out).join("lambda.zip")).unwrap());
    }
    assert!(zips[0] == zips[1], "two clean builds gave different zips");
}

#[test]
fn not_in_a_cargo_project() {
    let dir = tempfile::tempdir().unwrap();
    let output = lambda_build(dir.path(), &["--zip"]);
    assert_fails(&output, 1, "could not find `Cargo.toml`");
    assert_has_help(&output);
}

#[test]
fn manifest_path_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = lambda_build(dir.path(), &["--manifest-path", "nope/Cargo.toml"]);
    assert_fails(&output, 1, "does not exist");
}

#[test]
fn malformed_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Cargo.toml"), "[package\nname = ").unwrap();
    let output = lambda_build(dir.path(), &[]);
    assert_fails(&output, 1, "cargo could not read the project");
    assert!(
        stderr(&output).contains("Cargo.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn library_only_package() {
    let project = crate_with("util", &[("src/lib.rs", "pub fn f() {}\n")], "");
    let output = lambda_build(project.path(), &["--zip"]);
    assert_fails(&output, 1, "package `util` has no binary target to deploy");
    assert_has_help(&output);
}

#[test]
fn several_binaries_without_bin() {
    let project = crate_with(
        "multi",
        &[("src/bin/first.rs", MAIN), ("src/bin/second.rs", MAIN)],
        "",
    );
    let output = lambda_build(project.path(), &["--zip"]);
    assert_fails(&output, 1, "several binaries (first, second)");
    assert!(stderr(&output).contains("help: for example `--bin first`"));

    let output = lambda_build(project.path(), &["--zip", "--bin", "third"]);
    assert_fails(&output, 1, "no binary named `third`; it has: first, second");
}

#[test]
fn unknown_package() {
    let project = crate_with("known", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["-p", "unknown"]);
    assert_fails(
        &output,
        1,
        "package `unknown` is not in the workspace; it has: known",
    );
}

#[test]
fn outdir_that_is_a_file() {
    let project = crate_with("outfile", &[("src/main.rs", MAIN)], "");
    fs::write(project.path().join("dist"), "not a dir").unwrap();
    let output = lambda_build(project.path(), &["--zip", "--outdir", "dist"]);
    assert_fails(&output, 1, "is a file, not a directory");
    assert_has_help(&output);
    assert_eq!(fs::read(project.path().join("dist")).unwrap(), b"not a dir");
}

#[test]
fn compile_error_keeps_the_previous_zip() {
    let project = crate_with("broken", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let zip = project.path().join("lambda.zip");
    let before = fs::read(&zip).unwrap();

    fs::write(
        project.path().join("src/main.rs"),
        "fn main() { let x: u32 = \"no\"; }\n",
    )
    .unwrap();
    let output = lambda_build(project.path(), &["--zip"]);
    assert_fails(&output, 101, "`cargo build` failed");
    // cargo's own diagnostic reaches the user.
    assert!(
        stderr(&output).contains("mismatched types"),
        "{}",
        stderr(&output)
    );
    assert_unchanged(&zip, &before);
    let leftovers: Vec<_> = fs::read_dir(project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name != ".")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = lambda_build(dir.path(), &["--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_lists_the_flags_users_need() {
    let output = Command::new(BIN)
        .args(["lambda-build", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--zip",
        "--outdir",
        "--no-verify",
        "--manifest-path",
        "--bin",
        "--features",
        "--profile",
        "--locked",
        "--invoke-with",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(
        help.contains("x86_64"),
        "the default architecture is stated:\n{help}"
    );
    assert!(
        help.contains("\n  invoke  Run a packaged"),
        "the invoke subcommand is listed:\n{help}"
    );
}

/// A program that calls `arc4random`, which glibc added in 2.36 (this test's host has 2.36 or
/// newer; provided.al2023 has 2.34).
const NEEDS_GLIBC_2_36: &str = "unsafe extern \"C\" { fn arc4random() -> u32; }\n\
    fn main() { println!(\"{}\", unsafe { arc4random() } % 2); }\n";

/// PATH with cargo's directory and a C compiler for linking, but no zig (nor python3).
fn path_without_zig(scratch: &Path) -> std::ffi::OsString {
    let cc = which::which("cc").expect("a C compiler (cc) links host builds");
    let bin = scratch.join("only-cc");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(cc, bin.join("cc")).unwrap();
    let cargo = which::which("cargo").expect("cargo on PATH");
    std::env::join_paths([cargo.parent().unwrap(), &bin]).unwrap()
}

#[test]
fn too_new_glibc_is_refused_unless_no_verify() {
    let project = crate_with("newglibc", &[("src/main.rs", NEEDS_GLIBC_2_36)], "");
    let scratch = tempfile::tempdir().unwrap();
    let path = path_without_zig(scratch.path());
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("lambda-build")
            .args(args)
            .current_dir(project.path())
            .env("CARGO_TARGET_DIR", target_dir())
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let output = run(&["--zip"]);
    assert_fails(
        &output,
        1,
        "requires glibc 2.36, but provided.al2023 has glibc 2.34",
    );
    assert!(
        stderr(&output).contains("pip install ziglang"),
        "{}",
        stderr(&output)
    );
    assert!(!project.path().join("lambda.zip").exists());

    let output = run(&["--zip", "--no-verify"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("warning: "), "{}", stderr(&output));
    assert!(project.path().join("lambda.zip").exists());
}

#[test]
fn too_new_glibc_is_relinked_with_zig_which_names_the_missing_symbol() {
    if cargo_lambda_build::build::zig::find().is_none() {
        assert!(
            std::env::var("LAMBDA_BUILD_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
            "zig is required: .ci/run installs it with `python3 -m pip install ziglang`"
        );
        eprintln!("skipped: zig not installed");
        return;
    }
    let project = crate_with("relink", &[("src/main.rs", NEEDS_GLIBC_2_36)], "");
    let output = lambda_build(project.path(), &["--zip"]);
    // zig links against glibc 2.34, where arc4random does not exist: the build fails at the
    // link, naming the symbol, instead of shipping a binary that fails at start-up.
    assert_fails(&output, 101, "`cargo build` failed");
    let err = stderr(&output);
    assert!(err.contains("Relinking `relink` with zig"), "{err}");
    assert!(err.contains("undefined symbol: arc4random"), "{err}");
    assert!(!project.path().join("lambda.zip").exists());
}

/// A build script that takes long enough for a signal to arrive mid-compile.
const SLOW_BUILD_RS: &str =
    "fn main() { std::thread::sleep(std::time::Duration::from_secs(20)); }\n";

#[test]
fn interrupted_build_exits_130_or_143_and_keeps_the_previous_zip() {
    let project = crate_with("slow", &[("src/main.rs", MAIN)], "");
    let output = lambda_build(project.path(), &["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let zip = project.path().join("lambda.zip");
    let before = fs::read(&zip).unwrap();

    fs::write(project.path().join("build.rs"), SLOW_BUILD_RS).unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = Command::new(BIN)
            .args(["lambda-build", "--zip"])
            .current_dir(project.path())
            .env("CARGO_TARGET_DIR", target_dir())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Give cargo time to start the build script, then signal this tool only (a CI runner's
        // SIGTERM does not reach cargo by itself).
        std::thread::sleep(std::time::Duration::from_secs(3));
        let started = std::time::Instant::now();
        // SAFETY: kill(2) on the child this test spawned and has not waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let output = child.wait_with_output().unwrap();
        assert!(
            started.elapsed().as_secs() < 15,
            "took {:?} to stop",
            started.elapsed()
        );
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("error: interrupted"),
            "{}",
            stderr(&output)
        );
        assert_unchanged(&zip, &before);
    }
}

#[test]
fn includes_outside_the_package_are_refused_before_compiling() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.pem"), "secret").unwrap();
    let project = crate_with("escape", &[("src/main.rs", MAIN), ("ok.txt", "ok")], "");
    std::os::unix::fs::symlink(
        outside.path().join("secret.pem"),
        project.path().join("cert.pem"),
    )
    .unwrap();

    let escape = lambda_build(project.path(), &["--zip", "--include", "../secret.pem"]);
    assert_fails(
        &escape,
        1,
        "include `../secret.pem` is outside the package root",
    );
    assert_has_help(&escape);
    let link = lambda_build(
        project.path(),
        &["--zip", "--include", "ok.txt", "--include", "*.pem"],
    );
    assert_fails(&link, 1, "is a symbolic link to");
    assert!(
        stderr(&link).contains("outside the package root"),
        "{}",
        stderr(&link)
    );
    let missing = lambda_build(project.path(), &["--zip", "--include", "missing/*.json"]);
    assert_fails(&missing, 1, "include `missing/*.json` matches nothing");
    for output in [&escape, &link, &missing] {
        assert!(!stderr(output).contains("Compiling"), "{}", stderr(output));
    }
    assert!(!project.path().join("lambda.zip").exists());
}

#[test]
fn config_in_cargo_toml_applies_and_unknown_keys_warn_by_name() {
    let project = crate_with(
        "configured",
        &[("src/main.rs", MAIN), ("data/v.txt", "1")],
        "[package.metadata.lambda-build]\nzip = true\noutdir = \"dist\"\ninclude = [\"data\"]\nzipp = false\n",
    );
    let output = lambda_build(project.path(), &["--message-format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unknown key `zipp` (ignored)"),
        "{}",
        stderr(&output)
    );
    let names: Vec<String> = {
        let mut zip = read_zip(&project.path().join("dist/lambda.zip"));
        (0..zip.len())
            .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
            .collect()
    };
    assert_eq!(names, ["bootstrap", "data/", "data/v.txt"]);
    // Only JSON on stdout.
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(line["function"], "configured");

    // The command line over Cargo.toml.
    let output = lambda_build(project.path(), &["-o", "cli"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(project.path().join("cli/lambda.zip").is_file());
}

#[test]
fn unchanged_rerun_keeps_the_zip_and_a_damaged_zip_is_rewritten() {
    let project = crate_with("fresh", &[("src/main.rs", MAIN)], "");
    assert!(lambda_build(project.path(), &["--zip"]).status.success());
    let zip = project.path().join("lambda.zip");
    let good = fs::read(&zip).unwrap();
    let modified = fs::metadata(&zip).unwrap().modified().unwrap();

    let output = lambda_build(project.path(), &["--zip"]);
    assert!(stderr(&output).contains("Fresh"), "{}", stderr(&output));
    assert_eq!(
        fs::metadata(&zip).unwrap().modified().unwrap(),
        modified,
        "rewritten"
    );

    // Same size, other bytes: the check is on content, not only on size.
    let mut damaged = good.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    fs::write(&zip, &damaged).unwrap();
    let output = lambda_build(project.path(), &["--zip"]);
    assert!(stderr(&output).contains("Packaged"), "{}", stderr(&output));
    assert_eq!(fs::read(&zip).unwrap(), good);

    fs::remove_file(&zip).unwrap();
    assert!(lambda_build(project.path(), &["--zip"]).status.success());
    assert_eq!(fs::read(&zip).unwrap(), good);

    // A changed program is packaged again.
    fs::write(
        project.path().join("src/main.rs"),
        "fn main() { println!(\"v2\"); }\n",
    )
    .unwrap();
    let output = lambda_build(project.path(), &["--zip"]);
    assert!(stderr(&output).contains("Packaged"), "{}", stderr(&output));
    assert_ne!(fs::read(&zip).unwrap(), good);
}

#[test]
fn small_mode_gives_a_smaller_zip() {
    let project = crate_with("tiny", &[("src/main.rs", MAIN)], "");
    assert!(
        lambda_build(project.path(), &["--zip", "-o", "default"])
            .status
            .success()
    );
    let output = lambda_build(project.path(), &["--zip", "--small", "-o", "small"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let size = |dir: &str| {
        fs::metadata(project.path().join(dir).join("lambda.zip"))
            .unwrap()
            .len()
    };
    assert!(
        size("small") < size("default"),
        "{} >= {}",
        size("small"),
        size("default")
    );
}
