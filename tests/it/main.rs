//! The integration tests: one binary, so the tool and the support code compile once and every
//! helper that no test uses is reported dead. The fuzz pass (`tests/fuzz.rs`) is its own binary.
//!
//! Every test runs the real `cargo-lambda-build` ([`support::tool`]) on a fixture or a scratch
//! crate and checks what a user would: exit code, stderr, the files left on disk.

mod support;

mod architecture;
mod bad_input;
mod cli;
mod concurrent;
mod docker;
mod docker_ci;
mod docker_engines;
mod docker_reliability;
mod docker_remote;
mod e2e;
mod habits;
mod hostile;
mod interrupt;
mod invoke;
mod new;
mod package;
mod readers;
mod snapshots;
mod templates;
mod workspace;
