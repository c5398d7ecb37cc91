//! Why a build failed, with the fix: the host backend's, cargo's and the Docker backend's
//! failures ([`DockerError`]).

use std::path::PathBuf;
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

    #[error("zig {version} (`{}`) cannot create an archive, which C dependencies (ring, \
             aws-lc-sys) need: `zig ar rcs` said \"{said}\"", .zig.display())]
    BrokenZigAr {
        zig: PathBuf,
        version: String,
        said: String,
    },

    #[error("`cargo build` failed ({status})")]
    Cargo {
        status: ExitStatus,
        code: Option<i32>,
        /// A failure the tool recognised in cargo's output, with its own fixes.
        known: Option<KnownFailure>,
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
            // Debian's package names have no `_`: x86_64's cross gcc is `gcc-x86-64-linux-gnu`.
            BuildError::NoCrossLinker { target } => format!(
                "install zig with `pip install ziglang`, or your distribution's cross gcc \
                 (Debian: `apt-get install gcc-{}`), or build in a container with `--docker`",
                target.gnu_prefix().trim_end_matches('-').replace('_', "-")
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
            BuildError::BrokenZigAr { zig, .. } => format!(
                "take `{}` off PATH (`brew unlink zig` for Homebrew's) and install a zig whose \
                 `ar` works: `pip install ziglang` (the official build, found without PATH), or \
                 zig 0.15.2 (`brew install zig@0.15`) first on PATH; or build with `--docker`",
                zig.display()
            ),
            BuildError::Spawn { fix, .. } => return fix.map(str::to_owned),
            BuildError::Cargo {
                known: Some(KnownFailure::OpenSsl),
                ..
            } => "openssl-sys needs OpenSSL's headers and libraries for the target, which a \
                cross build rarely has: build with `--docker` (its image has them), enable \
                openssl's `vendored` feature (`openssl = { version = \"0.10\", features = \
                [\"vendored\"] }`), or use rustls instead (for reqwest: `default-features = \
                false, features = [\"rustls-tls\"]`)"
                .into(),
            BuildError::Cargo {
                known: Some(KnownFailure::PkgConfigCross { package }),
                ..
            } => format!(
                "{package} asks pkg-config for a system library of the target, which a cross \
                 build does not have: build with `--docker` (add the library to a \
                 `lambda.Dockerfile`), or use the crate's bundled or vendored feature if it has one"
            ),
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

/// Build failures common enough on cross builds to be recognised in cargo's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownFailure {
    /// openssl-sys's build script found no OpenSSL for the target.
    OpenSsl,
    /// A build script asked pkg-config, which refuses cross builds unless configured.
    PkgConfigCross { package: String },
}

/// Reads cargo's stderr line by line for a [`KnownFailure`]; OpenSSL's wins, being the more
/// specific (its build script also reports pkg-config's refusal).
#[derive(Debug, Default)]
pub struct FailureScan {
    /// The package of the last "failed to run custom build command for `NAME VERSION`".
    failing: Option<String>,
    openssl: bool,
    pkg_config: Option<String>,
}

impl FailureScan {
    pub fn line(&mut self, line: &str) {
        if let Some(rest) = line
            .split("failed to run custom build command for `")
            .nth(1)
        {
            let package = rest.split([' ', '`']).next().unwrap_or_default();
            self.openssl |= package == "openssl-sys";
            self.failing = Some(package.to_string());
        }
        if line.contains("Could not find directory of OpenSSL installation") {
            self.openssl = true;
        }
        if line.contains("pkg-config has not been configured to support cross-compilation") {
            let package = self
                .failing
                .clone()
                .unwrap_or_else(|| "a build script".into());
            self.pkg_config.get_or_insert(package);
        }
    }

    pub fn finish(self) -> Option<KnownFailure> {
        if self.openssl {
            Some(KnownFailure::OpenSsl)
        } else {
            self.pkg_config
                .map(|package| KnownFailure::PkgConfigCross { package })
        }
    }
}
