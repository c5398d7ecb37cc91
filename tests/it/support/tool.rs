//! The tool under test and the one way the tests run it.

use std::process::{Command, Output};

use super::Unprivileged;

const BIN: &str = env!("CARGO_BIN_EXE_cargo-lambda-build");

/// `cargo-lambda-build lambda-build`, the argv `cargo lambda-build` gives it; the caller adds the
/// arguments, the directory and the environment. A `SOURCE_DATE_EPOCH` in the test run's own
/// environment would change the zips' bytes, so it is removed (a test sets its own).
pub fn tool() -> Command {
    for_tests(Command::new(BIN))
}

/// [`tool`] run as `user` (through `setpriv` when the tests run as root).
pub fn tool_as(user: &Unprivileged) -> Command {
    for_tests(user.command(BIN))
}

fn for_tests(mut command: Command) -> Command {
    command.arg("lambda-build").env_remove("SOURCE_DATE_EPOCH");
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// That the tool's stderr says `text`, showing all of it when it does not.
#[track_caller]
pub fn assert_stderr_has(output: &Output, text: &str) {
    let err = stderr(output);
    assert!(err.contains(text), "no `{text}` in stderr:\n{err}");
}

/// Every one of `needed` is in `text` (a help page, a log, a CI file); the failure names all
/// that are missing at once, not the first.
pub fn assert_contains_all(text: &str, needed: &[&str]) {
    let missing: Vec<&&str> = needed.iter().filter(|n| !text.contains(*n)).collect();
    assert!(missing.is_empty(), "{missing:?} missing from:\n{text}");
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
