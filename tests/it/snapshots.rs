//! Snapshots of what users read: the help of every command, and representative refusals (the
//! exit code and stderr, with the project's path redacted). A changed text fails here, in CI too
//! (insta writes no snapshot when `CI` is set). After reading the diff, regenerate them with:
//!
//! ```text
//! INSTA_UPDATE=always cargo test --locked --test it snapshots::
//! ```

use std::path::Path;
use std::process::Output;

use crate::support::{self, MAIN, crate_with, stderr, stdout};

/// The exit code, then `text` with each of `dirs` (as given and canonical) replaced by `[DIR]`.
fn shown(output: &Output, text: String, dirs: &[&Path]) -> String {
    let mut text = text;
    for dir in dirs {
        let canonical = dir.canonicalize().unwrap();
        for form in [canonical.as_path(), dir] {
            text = text.replace(form.to_str().unwrap(), "[DIR]");
        }
    }
    let code = output
        .status
        .code()
        .map_or("none (a signal)".into(), |c| c.to_string());
    format!("exit: {code}\n{text}")
}

/// `cargo lambda-build ARGS`: exit 0, help on stdout and nothing on stderr.
fn help(args: &[&str]) -> String {
    // clap shows a set variable's value in the help: the snapshot is of the help unset.
    let output = support::tool()
        .args(args)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert_eq!(stderr(&output), "", "stderr of {args:?}");
    shown(&output, stdout(&output), &[])
}

/// `cargo lambda-build ARGS` in `dir`: nothing on stdout; the exit code and stderr.
fn refusal(dir: &Path, args: &[&str], path: Option<&std::ffi::OsStr>) -> String {
    let mut command = support::tool();
    command.args(args).current_dir(dir);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    assert_eq!(stdout(&output), "", "stdout of {args:?}");
    shown(&output, stderr(&output), &[dir])
}

/// [`refusal`] in a new scratch crate with these Cargo.toml lines.
fn refused(manifest_extra: &str, args: &[&str]) -> String {
    let project = crate_with("snap", &[("src/main.rs", MAIN)], manifest_extra);
    refusal(project.path(), args, None)
}

/// The help of every command, long and short.
#[test]
fn help_of_every_command() {
    let helps: [(&str, &[&str]); 7] = [
        ("help", &["--help"]),
        ("help_short", &["-h"]),
        ("new_help", &["new", "--help"]),
        ("invoke_help", &["invoke", "--help"]),
        ("serve_help", &["serve", "--help"]),
        ("package_help", &["package", "--help"]),
        ("doctor_help", &["doctor", "--help"]),
    ];
    for (name, args) in helps {
        insta::assert_snapshot!(name, help(args));
    }
}

/// Refusals in a scratch crate: of flags, and of Cargo.toml settings.
#[test]
fn refusals_of_flags_and_settings() {
    let refusals: [(&str, &str, &[&str]); 4] = [
        ("unknown_package", "", &["--zip", "-p", "unknown"]),
        ("bad_arch_argument", "", &["--zip", "--arch", "sparc"]),
        (
            "include_outside",
            "",
            &["--zip", "--include", "../secret.pem"],
        ),
        (
            "bad_config_value",
            "[package.metadata.lambda-build]\narch = \"sparc\"\n",
            &["--zip"],
        ),
    ];
    for (name, manifest_extra, args) in refusals {
        insta::assert_snapshot!(name, refused(manifest_extra, args));
    }
}

#[test]
fn no_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!("no_cargo_toml", refusal(dir.path(), &["--zip"], None));
}

#[test]
fn no_cross_linker() {
    let project = crate_with("snap", &[("src/main.rs", MAIN)], "");
    // cargo and rustc only: no zig, no python3, no cross gcc.
    let path = support::path_with_only(project.path(), &["cargo", "rustc"]);
    let shown = refusal(
        project.path(),
        &["--zip", "--arch", "arm64"],
        Some(path.as_os_str()),
    );
    insta::assert_snapshot!("no_cross_linker", shown);
}
