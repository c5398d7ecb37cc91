//! Why a build failed, with the fix: the host backend's, cargo's and the Docker backend's
//! failures ([`DockerError`]).

use std::process::ExitStatus;

use crate::arch::Arch;
use crate::build::docker::DockerError;
use crate::inspect::CheckError;
use crate::signal::Interrupted;

pub use crate::project::INSTALL_RUST;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no linker for {target} is installed: a cross build needs zig or a GNU cross gcc")]
    NoCrossLinker { target: Arch },

    #[error("the Rust standard library for `{}` is not installed{}", .target.triple(),
        if *.rustup { " and `rustup target add` failed" } else { "" })]
    MissingRustTarget { target: Arch, rustup: bool },

    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
        /// How to get the program, when the tool knows.
        fix: Option<&'static str>,
    },

    #[error("`cargo build` failed ({status})")]
    Cargo {
        status: ExitStatus,
        code: Option<i32>,
    },

    #[error("cargo reported no executable for binary `{0}`")]
    NoArtifact(String),

    #[error(transparent)]
    Docker(#[from] DockerError),

    #[error(transparent)]
    Check(#[from] CheckError),

    #[error(transparent)]
    Interrupted(#[from] Interrupted),

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl BuildError {
    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            BuildError::NoCrossLinker { target } => format!(
                "install zig with `pip install ziglang`, or your distribution's cross gcc \
                 (Debian: `apt-get install gcc-{}`), or build in a container with `--docker`",
                target.gnu_prefix().trim_end_matches('-')
            ),
            BuildError::MissingRustTarget {
                target,
                rustup: true,
            } => {
                format!(
                    "run `rustup target add {}` and look at what it says",
                    target.triple()
                )
            }
            BuildError::MissingRustTarget {
                target,
                rustup: false,
            } => format!(
                "install the `{}` standard library with your Rust distribution, or install Rust \
                 with rustup (https://rustup.rs)",
                target.triple()
            ),
            BuildError::Spawn { fix, .. } => return fix.map(str::to_owned),
            BuildError::Cargo { .. } => "cargo says above what failed: fix it and run again".into(),
            BuildError::Docker(e) => return e.help(),
            BuildError::Check(e) => return e.help(),
            BuildError::NoArtifact(_) | BuildError::Interrupted(_) | BuildError::Other(_) => {
                return None;
            }
        })
    }
}

impl BuildError {
    /// For `map_err` on starting `program`: "could not run `program`: ...".
    pub fn spawn(
        program: impl AsRef<std::ffi::OsStr>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        Self::spawn_with(program, None)
    }

    /// As [`BuildError::spawn`], for cargo or rustc: the help says how to install Rust.
    pub fn spawn_rust(
        program: impl AsRef<std::ffi::OsStr>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        Self::spawn_with(program, Some(INSTALL_RUST))
    }

    fn spawn_with(
        program: impl AsRef<std::ffi::OsStr>,
        fix: Option<&'static str>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let program = program.as_ref().to_string_lossy().into_owned();
        move |source| BuildError::Spawn {
            program,
            source,
            fix,
        }
    }
}
