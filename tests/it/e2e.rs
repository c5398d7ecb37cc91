//! End to end: the tool builds a real `lambda_runtime` function, and the `bootstrap` taken out of
//! the zip it wrote answers invocations under cargo-lambda's Runtime API emulator, for x86_64
//! natively and for arm64 under qemu-user.

use crate::support;

use std::path::{Path, PathBuf};

use support::{EM_AARCH64, EM_X86_64, elf_machine};

/// Unzips `zip` and returns its `bootstrap` (checked executable by the helper).
fn bootstrap_of(zip: &Path, scratch: &Path) -> PathBuf {
    support::extract_bootstrap(zip, &scratch.join(format!("unzipped-{}", zip_label(zip))))
}

fn zip_label(zip: &Path) -> String {
    zip.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn wrapper(arch: &str) -> Option<&'static [&'static str]> {
    (arch == "arm64").then_some(&support::QEMU[..])
}

/// One successful invocation and one handler error, both checked on the body.
fn assert_echo_answers(bootstrap: &Path, arch: &str) {
    let Some(emulator) = support::Emulator::start() else {
        return;
    };
    let function = emulator.run_bootstrap(bootstrap, wrapper(arch));
    let (status, body) = emulator.invoke(r#"{"name": "Ferris"}"#);
    assert_eq!(status, 200, "{body}\n{}", function.output());
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer, serde_json::json!({"message": "hello, Ferris"}));

    let (status, body) = emulator.invoke(r#"{"fail": true}"#);
    assert_eq!(
        status, 500,
        "the emulator reports a handler error as 500: {body}"
    );
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "EchoError", "{body}");
    assert_eq!(error["errorMessage"], "echo was asked to fail", "{body}");
}

#[test]
fn x86_64_zip_answers_invocations_and_rebuilds_identically() {
    if !support::require_tools(&["cargo-lambda", "unzip"]) {
        return;
    }
    let project = support::copy_fixture("echo");
    let output = support::lambda_build_fixture(project.path(), &["--zip"]);
    support::assert_success(&output);
    let zip = project.path().join("lambda.zip");
    let first = std::fs::read(&zip).unwrap();

    let bootstrap = bootstrap_of(&zip, project.path());
    assert_eq!(elf_machine(&bootstrap), EM_X86_64);
    assert_echo_answers(&bootstrap, "x86_64");

    // A second run with nothing changed writes the same bytes.
    support::assert_success(&support::lambda_build_fixture(project.path(), &["--zip"]));
    assert!(
        std::fs::read(&zip).unwrap() == first,
        "the rebuilt zip differs"
    );
}

#[test]
fn arm64_zip_answers_invocations_under_qemu() {
    if !support::require_tools(&["cargo-lambda", "unzip", "qemu-aarch64-static"]) {
        return;
    }
    let project = support::copy_fixture("echo");
    let output =
        support::lambda_build_fixture(project.path(), &["--zip", "--arch", "arm64", "-o", "arm64"]);
    support::assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("architecture  arm64"), "{stdout}");

    let bootstrap = bootstrap_of(&project.path().join("arm64/lambda.zip"), project.path());
    assert_eq!(elf_machine(&bootstrap), EM_AARCH64);
    assert_echo_answers(&bootstrap, "arm64");
}

#[test]
fn c_dependencies_cross_compile_for_both_architectures() {
    if !support::require_tools(&["cargo-lambda", "unzip", "qemu-aarch64-static"]) {
        return;
    }
    let project = support::copy_fixture("digest");
    for arch in ["x86_64", "arm64"] {
        let output =
            support::lambda_build_fixture(project.path(), &["--zip", "--arch", arch, "-o", arch]);
        support::assert_success(&output);
        let bootstrap = bootstrap_of(
            &project.path().join(arch).join("lambda.zip"),
            project.path(),
        );

        let Some(emulator) = support::Emulator::start() else {
            return;
        };
        let function = emulator.run_bootstrap(&bootstrap, wrapper(arch));
        let (status, body) = emulator.invoke(r#"{"text": "abc"}"#);
        assert_eq!(status, 200, "{arch}: {body}\n{}", function.output());
        // SHA-256("abc") from FIPS 180-2, computed by ring's C/assembly code for this arch.
        assert_eq!(
            body,
            r#"{"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#,
            "{arch}"
        );
    }
}

#[test]
fn both_architectures_built_at_the_same_time_stay_apart() {
    if !support::require_tools(&["unzip"]) {
        return;
    }
    let project = support::copy_fixture("echo");
    let spawn = |arch: &str| {
        support::tool()
            .args([
                "--zip",
                "--locked",
                "--arch",
                arch,
                "-o",
                arch,
                "--target-dir",
            ])
            .arg(support::fixture_target_dir())
            .current_dir(project.path())
            .env_remove("CARGO_TARGET_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x86, arm) = (spawn("x86_64"), spawn("arm64"));
    support::assert_success(&x86.wait_with_output().unwrap());
    support::assert_success(&arm.wait_with_output().unwrap());

    for (arch, machine) in [("x86_64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let bootstrap = bootstrap_of(
            &project.path().join(arch).join("lambda.zip"),
            project.path(),
        );
        assert_eq!(elf_machine(&bootstrap), machine, "{arch}");
        // Staging is per architecture too.
        let staged = support::fixture_target_dir()
            .join("lambda-build")
            .join(arch)
            .join("echo/bootstrap");
        assert_eq!(elf_machine(&staged), machine, "{}", staged.display());
    }
}

#[test]
fn no_cross_linker_fails_before_compiling() {
    let project = support::copy_fixture("echo");
    // cargo and rustc only: no zig, no python3, no cross gcc.
    let scratch = tempfile::tempdir().unwrap();
    let path = support::path_with_only(scratch.path(), &["cargo", "rustc"]);
    let output = support::tool()
        .args(["--zip", "--arch", "arm64"])
        .current_dir(project.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: no linker for arm64 is installed"),
        "{stderr}"
    );
    for way in [
        "pip install ziglang",
        "apt-get install gcc-aarch64-linux-gnu",
        "--docker",
    ] {
        assert!(stderr.contains(way), "`{way}` missing from:\n{stderr}");
    }
    assert!(
        !stderr.contains("Compiling"),
        "it compiled before failing:\n{stderr}"
    );
    assert!(!project.path().join("lambda.zip").exists());
}

/// A package with a local server (its `default-run`) and the Lambda entry named `bootstrap`, as
/// axum templates lay it out: the entry is what gets packaged, never the server.
#[test]
fn a_binary_named_bootstrap_is_the_function_whatever_default_run_says() {
    let project = support::crate_with(
        "axumish",
        &[
            (
                "src/bin/server.rs",
                "fn main() { println!(\"a local server\"); }\n",
            ),
            ("src/bin/bootstrap.rs", support::MAIN),
        ],
        "default-run = \"server\"\n",
    );
    let output = support::lambda_build(project.path(), &["--zip", "--message-format", "json"]);
    support::assert_success(&output);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["function"], "bootstrap", "{report}");
    let zip = project.path().join("lambda.zip");
    let scratch = tempfile::tempdir().unwrap();
    let bootstrap = bootstrap_of(&zip, scratch.path());
    let ran = std::process::Command::new(&bootstrap).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello from bootstrap\n"
    );
}
