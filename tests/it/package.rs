//! `package BINARY`: a binary built elsewhere gets the build's checks and the build's zip, byte
//! for byte. The bad inputs are rows of the table in `bad_input.rs`.

use std::fs;
use std::path::Path;

use crate::support::{
    self, assert_success, copy_fixture, lambda_build_fixture_command, stderr, stdout, tool,
};

/// A fixed clock for every run, so the zips can only differ by what they hold.
const EPOCH: &str = "1700000000";

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(stdout(output).trim())
        .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}):\n{}", stdout(output)))
}

#[test]
fn a_packaged_binary_is_the_zip_a_build_writes() {
    let project = copy_fixture("echo");
    let dir = project.path();
    fs::create_dir_all(dir.join("config")).unwrap();
    fs::write(dir.join("config/app.json"), "{\"stage\": \"prod\"}\n").unwrap();
    let build = |args: &[&str]| {
        let output = lambda_build_fixture_command(dir, args)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .unwrap();
        assert_success(&output);
        output
    };
    let built_zip = build(&[
        "--zip",
        "--include",
        "config",
        "-o",
        "built",
        "--message-format",
        "json",
    ]);
    build(&["-o", "bin"]);
    let built = fs::read(dir.join("built/lambda.zip")).unwrap();

    let package = |args: &[&str]| {
        let output = tool()
            .arg("package")
            .args(args)
            .current_dir(dir)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .unwrap();
        assert_success(&output);
        output
    };
    let packaged = package(&[
        "bin/bootstrap",
        "--zip",
        "--include",
        "config",
        "-o",
        "packaged",
        "--message-format",
        "json",
    ]);
    assert_eq!(
        fs::read(dir.join("packaged/lambda.zip")).unwrap(),
        built,
        "package wrote other bytes than the build"
    );
    let (from_build, from_package) = (json(&built_zip), json(&packaged));
    for key in ["sha256", "code_sha256", "arch", "glibc", "size"] {
        assert_eq!(from_package[key], from_build[key], "{key}");
    }
    assert_eq!(from_package["function"], "bootstrap");
    assert_eq!(from_package["package"], serde_json::Value::Null);
    assert!(
        stderr(&packaged).contains("Checked `bootstrap`: x86_64, glibc"),
        "{}",
        stderr(&packaged)
    );
    assert!(!stderr(&packaged).contains("Compiling"));

    // Without --zip: the executable itself, mode 755.
    package(&["bin/bootstrap", "-o", "exe"]);
    assert_eq!(
        fs::read(dir.join("exe/bootstrap")).unwrap(),
        fs::read(dir.join("bin/bootstrap")).unwrap()
    );
    assert_eq!(mode(&dir.join("exe/bootstrap")), 0o755);
    assert_eq!(
        support::temp_files(&dir.join("packaged")),
        Vec::<String>::new()
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_architecture_is_read_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elf/hello-aarch64");
    let output = tool()
        .arg("package")
        .arg(&binary)
        .args(["--zip", "--message-format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(json(&output)["arch"], "arm64");
    let mut zip = support::read_zip(&dir.path().join("lambda.zip"));
    let entry = zip.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "bootstrap");
    assert_eq!(entry.unix_mode(), Some(0o100_755));
    drop(entry);

    // `--arch` is a check only: the matching one passes. `--extension` names the entry after
    // the file.
    let output = tool()
        .arg("package")
        .arg(&binary)
        .args(["--zip", "--arch", "arm64", "--extension", "-o", "ext"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_success(&output);
    let zip = support::read_zip(&dir.path().join("ext/lambda.zip"));
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert_eq!(names, ["extensions/", "extensions/hello-aarch64"]);
}

/// The refusal of a missing library says to ship it under lib/: doing so is then enough, as for
/// a build (and only into a zip, where lib/ reaches LD_LIBRARY_PATH).
#[test]
fn a_library_shipped_under_lib_is_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/elf");
    fs::copy(data.join("needs-libfoo"), dir.path().join("handler")).unwrap();
    fs::create_dir(dir.path().join("lib")).unwrap();
    fs::copy(data.join("libfoo.so.1"), dir.path().join("lib/libfoo.so.1")).unwrap();
    let package = |args: &[&str]| {
        tool()
            .args(["package", "handler"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };

    let refused = package(&["--zip"]);
    assert!(!refused.status.success(), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("libfoo.so.1"),
        "{}",
        stderr(&refused)
    );

    let output = package(&["--zip", "--include", "lib"]);
    assert_success(&output);
    let zip = support::read_zip(&dir.path().join("lambda.zip"));
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert_eq!(names, ["bootstrap", "lib/", "lib/libfoo.so.1"]);
}

/// provided.al2023 runs a `#!/bin/sh` bootstrap (AWS's custom-runtime tutorial ships one):
/// `package` takes it, says that no ELF check applies, and zips it executable, with the
/// function's architecture. A script for an interpreter provided.al2023 lacks stays refused.
#[test]
fn a_shell_script_bootstrap_is_packaged_and_a_python_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = "#!/bin/sh\nset -euo pipefail\necho started\n";
    fs::write(dir.path().join("bootstrap"), script).unwrap();
    let output = tool()
        .args([
            "package",
            "bootstrap",
            "--zip",
            "--arch",
            "arm64",
            "--message-format",
            "json",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_success(&output);
    let err = stderr(&output);
    assert!(err.contains("is a `#!/bin/sh` script"), "{err}");
    let report = json(&output);
    assert_eq!(report["arch"], "arm64", "{report}");
    let mut zip = support::read_zip(&dir.path().join("lambda.zip"));
    let mut entry = zip.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "bootstrap");
    assert_eq!(entry.unix_mode(), Some(0o100_755));
    let mut content = String::new();
    std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
    assert_eq!(content, script);
    drop(entry);

    let before = fs::read(dir.path().join("lambda.zip")).unwrap();
    fs::write(
        dir.path().join("handler.py"),
        "#!/usr/bin/env python3\nprint('x')\n",
    )
    .unwrap();
    let output = tool()
        .args(["package", "handler.py", "--zip"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("script (`#!/usr/bin/env python3`)")
            && err.contains("provided.al2023 has no other interpreter"),
        "{err}"
    );
    assert_eq!(fs::read(dir.path().join("lambda.zip")).unwrap(), before);
}
