//! Shared helpers for the integration tests (`tests/it/`).
//!
//! - [`tool`]: the one way to run `cargo-lambda-build` (a `Command` the test adds arguments,
//!   directory and environment to); [`tool_as`] the same as an unprivileged user.
//! - [`Emulator`]: cargo-lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`),
//!   started per test on a free loopback port; [`Emulator::run_bootstrap`] starts a `bootstrap`
//!   against it (optionally under a wrapper such as qemu-user) and [`Emulator::invoke`] sends it
//!   an event. Everything started is killed on drop.
//! - [`require_tool`]: skip a test when an external tool is missing, or fail it when
//!   `LAMBDA_BUILD_TEST_REQUIRE_ALL=1` (set by `.ci/run`, so CI never skips silently).
//! - Fixtures: [`copy_fixture`], [`fixture_target_dir`], [`lambda_build_fixture`].
//! - Scratch crates: [`crate_with`], [`lambda_build`], and the checks of a failed run
//!   ([`assert_refused`], [`assert_unchanged`], [`temp_files`]).
//! - [`child::stop`]: stop a long-running child (`serve`, an engine) as a user would.
//! - [`docker`]: the Docker tests' engine, user, project and leftovers checks.
//! - [`fake_engine`]: Docker engines that refuse, hang or stop mid-build, on a unix socket.
//! - [`extract_bootstrap`]: unzip a `lambda.zip` with Info-ZIP `unzip`, an implementation
//!   independent of the `zip` crate that wrote it, and check that `bootstrap` is executable.
//!
//! Every helper panics with an explanation when something it needs goes wrong: a test should
//! fail loudly, with the emulator's and the function's output, rather than hang or pass vacuously.

pub mod child;
pub mod docker;
mod emulator;
pub mod fake_engine;
mod fixtures;
mod scratch;
mod tool;
mod tools;
mod user;

pub use emulator::Emulator;
pub use fixtures::{
    assert_ran, assert_success, copy_dir, copy_fixture, extract_bootstrap, fixture_target_dir,
    lambda_build_fixture, lambda_build_fixture_command,
};
pub use scratch::{
    EM_AARCH64, EM_X86_64, MAIN, assert_fails, assert_lists_all, assert_refused, assert_unchanged,
    crate_with, elf_machine, elf_machine_of, lambda_build, lambda_build_command, output_of_written,
    read_zip, report, report_time, temp_files,
};
pub use tool::{assert_contains_all, assert_stderr_has, stderr, stdout, tool, tool_as};
pub use tools::{
    QEMU, arm64_linker, find_tool, path_with_only, path_without, require_tool, require_tools,
    skip_or_fail, zig_installed,
};
pub use user::{Unprivileged, is_root};
