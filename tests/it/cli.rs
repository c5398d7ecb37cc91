//! The real binary on small throwaway crates (no dependencies, so they build in a second or two):
//! what a good build leaves on disk. Bad input is in `bad_input.rs`, signals in
//! `interrupt.rs`.

use crate::support;

use std::fs;

use support::{MAIN, assert_stderr_has, crate_with, lambda_build, read_zip, stderr};

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
    let ran = support::output_of_written(&extracted.join("bootstrap"));
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
        let output = support::tool()
            .args(["--zip", "--outdir", &out])
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
fn help_lists_the_flags_users_need() {
    let output = support::tool().args(["--help"]).output().unwrap();
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
    for (command, about) in [
        ("invoke", "Run a packaged"),
        ("dockerfile", "Print the bundled lambda.Dockerfile"),
        ("docker", "List or remove what --docker keeps"),
        ("doctor", "Check what a build and a local run need"),
    ] {
        assert!(
            help.lines().any(|line| line
                .strip_prefix(&format!("  {command} "))
                .is_some_and(|rest| rest.trim_start().starts_with(about))),
            "the {command} subcommand is listed:\n{help}"
        );
    }
}

/// cargo-lambda's `watch`, `build` and `deploy` are usage errors (exit 2) that say what to run
/// instead, and build nothing.
#[test]
fn cargo_lambdas_other_subcommands_say_what_to_run_instead() {
    let project = crate_with("other", &[("src/main.rs", MAIN)], "");
    for (args, instead) in [
        (&["watch"][..], "run `cargo lambda-build serve --watch`"),
        (&["build", "--release"], "run `cargo lambda-build`"),
        (&["--zip", "deploy"], "aws lambda update-function-code"),
    ] {
        let output = support::tool()
            .args(args)
            .current_dir(project.path())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(support::stdout(&output), "");
        assert_stderr_has(&output, "is not a command of cargo lambda-build");
        assert_stderr_has(&output, instead);
        assert!(!project.path().join("bootstrap").exists());
        assert!(!project.path().join("target").exists(), "{args:?} built");
    }
    let help = support::stdout(&support::tool().arg("--help").output().unwrap());
    for word in ["watch ", "build ", "deploy "] {
        assert!(
            !help.lines().any(|l| l.starts_with(&format!("  {word}"))),
            "{word}listed:\n{help}"
        );
    }
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
    assert_stderr_has(&output, "unknown key `zipp` (ignored)");
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
