//! The integration tests: one binary, so the tool and the support code compile once and every
//! helper that no test uses is reported dead. The fuzz pass (`tests/fuzz.rs`) is its own binary.
//!
//! Every test runs the real `cargo-lambda-build` ([`support::tool`]) on a fixture or a scratch
//! crate and checks what a user would: exit code, stderr, the files left on disk.
//!
//! Linux only: the tests run Linux `bootstrap`s, Docker engines, qemu and Unix signals, and CI
//! is a Linux machine. Other hosts are covered by `hosts.rs` (check and clippy of the macOS and
//! Windows builds) and by the Windows build's run under wine.
#![cfg(target_os = "linux")]

mod support;

mod architecture;
mod bad_input;
mod bench;
mod cli;
mod completions;
mod concurrent;
mod docker;
mod docker_ci;
mod docker_engines;
mod docker_reliability;
mod docker_remote;
mod docs_truth;
mod doctor;
mod e2e;
mod examples;
mod function_env;
mod habits;
mod hostile;
mod hosts;
mod image;
mod interrupt;
mod invoke;
mod invoke_docker;
mod layers;
mod managed;
mod new;
mod package;
mod readers;
mod release;
mod serve;
mod snapshots;
mod snapstart;
mod templates;
mod watch;
mod workspace;
