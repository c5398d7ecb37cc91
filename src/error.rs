//! The one error `main` sees: each stage's error, wrapped, with its exit code and its help.
//! Every stage's error lives with its stage and knows its own fix; this module only chooses
//! the exit code and asks the stage for the help.

use std::path::PathBuf;

use crate::build::BuildError;
use crate::config::ConfigError;
use crate::inspect::CheckError;
use crate::invoke::InvokeError;
use crate::native_cpu::NativeCpuError;
use crate::new::NewError;
use crate::package::PackageError;
use crate::package::include::IncludeError;
use crate::project::ProjectError;
use crate::signal::{Interrupted, SIGINT_EXIT, SIGTERM_EXIT};

/// Exit codes, as documented in docs/usage.md.
pub mod exit {
    /// The tool refused or failed: bad input, a failed check, a missing tool.
    pub const FAILURE: i32 = 1;
    /// The compiler failed; cargo uses 101 too.
    pub const COMPILE: i32 = 101;
    /// Interrupted by SIGINT (128 + 2), as shells report it.
    pub const SIGINT: i32 = super::SIGINT_EXIT;
    /// Terminated by SIGTERM (128 + 15).
    pub const SIGTERM: i32 = super::SIGTERM_EXIT;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Project(#[from] ProjectError),

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Include(#[from] IncludeError),

    #[error(transparent)]
    New(#[from] NewError),

    #[error(transparent)]
    NativeCpu(#[from] NativeCpuError),

    #[error(transparent)]
    Build(BuildError),

    /// cargo failed on a build that settings (not the command line) gave features or a profile:
    /// the help names where each was set, as the user may never have typed them.
    /// Boxed: a build error and a list, larger than every other variant (over clippy's
    /// `result_large_err` limit where paths are larger, on Windows).
    #[error(transparent)]
    CargoGivenSettings(Box<CargoGivenSettings>),

    #[error(transparent)]
    Check(#[from] CheckError),

    #[error(transparent)]
    Package(PackageError),

    #[error(transparent)]
    Invoke(InvokeError),

    #[error(transparent)]
    Image(#[from] crate::image::ImageError),

    #[error(transparent)]
    Interrupted(#[from] Interrupted),

    #[error("`{}` does not exist", .0.display())]
    BinaryNotFound(PathBuf),

    #[error("`{}` is a directory, not an executable", .0.display())]
    BinaryIsDir(PathBuf),

    #[error("`--outdir` `{}` is a file, not a directory", .0.display())]
    OutdirIsFile(PathBuf),

    #[error("`{}` is a directory, and the new artifact would have to replace it", .0.display())]
    OutputIsDir(PathBuf),

    #[error("cannot write to `--outdir` `{}`: {}", .path.display(), crate::package::describe(.source))]
    CreateOutdir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A layer declared for the build (`--layer`, `layers`) that is not a readable zip.
    #[error("cannot read the layer `{}`: {reason}", .path.display())]
    Layer { path: PathBuf, reason: String },

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// An interruption is said once, as [`Error::Interrupted`], whichever stage noticed it.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct CargoGivenSettings {
    pub source: BuildError,
    pub settings: Vec<String>,
}

impl Error {
    /// A failed cargo run, told what settings files and variables asked of it.
    pub fn with_settings_given_to_cargo(self, settings: &[String]) -> Error {
        match self {
            Error::Build(source @ BuildError::Cargo { .. }) if !settings.is_empty() => {
                Error::CargoGivenSettings(Box::new(CargoGivenSettings {
                    source,
                    settings: settings.to_vec(),
                }))
            }
            error => error,
        }
    }
}

impl From<BuildError> for Error {
    fn from(error: BuildError) -> Error {
        match error {
            BuildError::Interrupted(stop) => Error::Interrupted(stop),
            BuildError::Check(check) => Error::Check(check),
            error => Error::Build(error),
        }
    }
}

impl From<PackageError> for Error {
    fn from(error: PackageError) -> Error {
        match error {
            PackageError::Interrupted { code, .. } => {
                Error::Interrupted(Interrupted { exit_code: code })
            }
            error => Error::Package(error),
        }
    }
}

impl From<InvokeError> for Error {
    fn from(error: InvokeError) -> Error {
        match error {
            InvokeError::Interrupted(stop) => Error::Interrupted(stop),
            error => Error::Invoke(error),
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        use crate::build::docker::DockerError;
        match self {
            // cargo's own exit code, 101 for a compile error.
            Error::Build(BuildError::Cargo { code, .. }) => code.unwrap_or(exit::COMPILE),
            Error::CargoGivenSettings(given) => match &given.source {
                BuildError::Cargo { code, .. } => code.unwrap_or(exit::COMPILE),
                _ => exit::FAILURE,
            },
            Error::Build(BuildError::Docker(DockerError::Fetch { code })) => {
                code.unwrap_or(exit::COMPILE)
            }
            // cargo's 101 is a compile error; anything else is the container's or the image's.
            Error::Build(BuildError::Docker(DockerError::ContainerBuild { code, .. }))
                if *code == i64::from(exit::COMPILE) =>
            {
                exit::COMPILE
            }
            Error::Interrupted(stop) => stop.exit_code,
            _ => exit::FAILURE,
        }
    }

    /// `error: ...` and its `help: ...` on stderr, as the run ends with them.
    pub fn print(&self, color: bool) {
        let help = self.help();
        let _ =
            crate::report::print_error(&mut std::io::stderr().lock(), self, help.as_deref(), color);
    }

    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Project(e) => e.help(),
            Error::Config(e) => e.help(),
            Error::Include(e) => e.help(),
            Error::New(e) => e.help(),
            Error::NativeCpu(e) => e.help(),
            Error::Build(e) => e.help(),
            Error::CargoGivenSettings(given) => {
                let mut help: Vec<String> = given.source.help().into_iter().collect();
                help.extend(given.settings.iter().map(|setting| {
                    format!("cargo was given {setting}, not on the command line: change it there if cargo refused it")
                }));
                Some(help.join("\n"))
            }
            Error::Check(e) => e.help(),
            Error::Package(e) => e.help(),
            Error::Invoke(e) => e.help(),
            Error::Image(e) => e.help(),
            Error::BinaryNotFound(_) => Some(
                "pass the path of the Linux executable to package, for example \
                 `target/x86_64-unknown-linux-gnu/release/my-function`"
                    .into(),
            ),
            Error::BinaryIsDir(path) => Some(format!(
                "pass the executable inside it, for example `{}`",
                path.join("bootstrap").display()
            )),
            Error::OutdirIsFile(_) => {
                Some("pass a directory to `--outdir`, or remove the file".into())
            }
            Error::OutputIsDir(_) => {
                Some("move that directory away, or choose another directory with `--outdir`".into())
            }
            Error::CreateOutdir { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                Some("free some disk space and run again".into())
            }
            Error::CreateOutdir { path, source } => {
                let existing = crate::package::nearest_existing(path).display();
                Some(if source.raw_os_error() == Some(libc::ENOTDIR) {
                    format!("`{existing}` is a file: choose another directory with `--outdir`")
                } else {
                    format!(
                        "choose a directory you can write with `--outdir`, or make `{existing}` \
                         writable"
                    )
                })
            }
            Error::Layer { .. } => Some(
                "pass the zip of a layer to `--layer` (or `layers` in \
                 `[package.metadata.lambda-build]`), with paths relative to the package"
                    .into(),
            ),
            Error::Interrupted(_) | Error::Other(_) => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
