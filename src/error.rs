//! The failures a user can meet, each with its exit code and, where there is one, the fix.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::arch::Arch;
use crate::inspect::{InspectError, Problem};
use crate::invoke::InvokeError;
use crate::package::PackageError;

/// Exit codes, as documented in the README.
pub mod exit {
    /// The tool refused or failed: bad input, a failed check, a missing tool.
    pub const FAILURE: i32 = 1;
    /// The compiler failed; cargo uses 101 too.
    pub const COMPILE: i32 = 101;
    /// Interrupted by SIGINT (128 + 2), as shells report it.
    pub const SIGINT: i32 = 130;
    /// Terminated by SIGTERM (128 + 15).
    pub const SIGTERM: i32 = 143;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not find `Cargo.toml` in `{}` or any parent directory", .0.display())]
    NoManifest(PathBuf),

    #[error("`--manifest-path` `{}` does not exist", .0.display())]
    ManifestMissing(PathBuf),

    #[error("`--manifest-path` `{}` is a directory; it must name a Cargo.toml file", .0.display())]
    ManifestIsDir(PathBuf),

    #[error("`{}` is a directory, and the new artifact would have to replace it", .0.display())]
    OutputIsDir(PathBuf),

    #[error("cargo could not read the project: {0}")]
    Metadata(String),

    #[error("package `{0}` has no binary target to deploy")]
    NoBinary(String),

    #[error("package `{package}` has several binaries ({}); choose one with `--bin`", .names.join(", "))]
    SeveralBinaries { package: String, names: Vec<String> },

    #[error("package `{package}` has no binary named `{name}`; it has: {}", .names.join(", "))]
    UnknownBinary {
        package: String,
        name: String,
        names: Vec<String>,
    },

    #[error("package `{name}` is not in the workspace; it has: {}", .names.join(", "))]
    UnknownPackage { name: String, names: Vec<String> },

    #[error("no selected package has a binary named `{name}`; the packages are: {}", .packages.join(", "))]
    NoSuchBinary { name: String, packages: Vec<String> },

    #[error("two selected binaries are named `{name}`: one in package `{}`, one in package `{}`", .packages[0], .packages[1])]
    DuplicateBinary { name: String, packages: [String; 2] },

    #[error("the workspace has several packages with binaries ({}); choose one with `-p`", .0.join(", "))]
    SeveralPackages(Vec<String>),

    #[error("{origin}: {message}")]
    InvalidConfig { origin: String, message: String },

    /// Settings that apply to the one cargo invocation, set differently by two packages.
    #[error("packages `{}` and `{}` set `{key}` differently (`{}` and `{}`), but one build has one {key}",
        .packages[0], .packages[1], .values[0], .values[1])]
    ConfigConflict {
        key: &'static str,
        packages: [String; 2],
        values: [String; 2],
    },

    #[error(transparent)]
    Include(#[from] crate::include::IncludeError),

    #[error("`{}` already exists", .0.display())]
    NewExists(PathBuf),

    #[error("`{name}` cannot name a crate: {reason}")]
    InvalidCrateName { name: String, reason: &'static str },

    #[error("`--outdir` `{}` is a file, not a directory", .0.display())]
    OutdirIsFile(PathBuf),

    #[error("cannot write to `--outdir` `{}`: {}", .path.display(), crate::package::describe(.source))]
    CreateOutdir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("no linker for {target} is installed: a cross build needs zig or a GNU cross gcc")]
    NoCrossLinker { target: Arch },

    #[error("the Rust standard library for `{}` is not installed{}", .target.triple(),
        if *.rustup { " and `rustup target add` failed" } else { "" })]
    MissingRustTarget { target: Arch, rustup: bool },

    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },

    #[error("`cargo build` failed ({status})")]
    Cargo {
        status: ExitStatus,
        code: Option<i32>,
    },

    #[error("cannot use the Docker engine at {tried}: {reason}")]
    DockerUnavailable { tried: String, reason: String },

    #[error("the Docker engine could not {action}: {message}")]
    Docker { action: String, message: String },

    /// The connection broke or the socket went away after the engine had answered.
    #[error("the Docker engine stopped answering when asked to {action}: {reason}")]
    DockerLost { action: String, reason: String },

    #[error("cannot read the Dockerfile `{}`: {source}", .path.display())]
    DockerfileRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("building the image from {source_name} failed: {message}")]
    ImageBuild {
        source_name: String,
        message: String,
    },

    #[error("the build argument `{name}` (`--docker-build-arg`) is not declared in {dockerfile}")]
    UndeclaredBuildArg {
        name: String,
        dockerfile: String,
        declared: Vec<String>,
    },

    #[error("the Docker image `{0}` does not exist on this engine")]
    DockerImageMissing(String),

    #[error("`cargo fetch` failed on the host{}", .code.map(|c| format!(" (exit code {c})")).unwrap_or_default())]
    Fetch { code: Option<i32> },

    #[error("`cargo build` failed in the container (exit code {code})")]
    ContainerBuild { code: i64, image: String },

    /// The engine killed a process of the build container for memory (`State.OOMKilled`).
    #[error("the build container ran out of memory (OOM-killed){}",
        .limit.map(|b| format!(" at its limit of {} MiB (`--docker-memory`)", b >> 20)).unwrap_or_default())]
    ContainerOutOfMemory { limit: Option<u64> },

    #[error("cargo reported no executable for binary `{0}`")]
    NoArtifact(String),

    #[error("cannot use `{}` as `bootstrap`: {source}", .path.display())]
    Inspect { path: PathBuf, source: InspectError },

    /// Every check that failed, so that one run shows all of them.
    #[error("`{}` would not run on provided.al2023: {}", .path.display(),
        .problems.iter().map(Problem::message).collect::<Vec<_>>().join("; "))]
    Incompatible {
        path: PathBuf,
        problems: Vec<Problem>,
    },

    #[error(transparent)]
    Package(#[from] PackageError),

    #[error(transparent)]
    Invoke(#[from] InvokeError),

    #[error("interrupted by {}", if *.0 == exit::SIGTERM { "SIGTERM" } else { "SIGINT" })]
    Interrupted(i32),

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// For `map_err` on starting `program`: "could not run `program`: ...".
    pub fn spawn(program: impl AsRef<std::ffi::OsStr>) -> impl FnOnce(std::io::Error) -> Error {
        let program = program.as_ref().to_string_lossy().into_owned();
        move |source| Error::Spawn { program, source }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            // cargo's own exit code, 101 for a compile error.
            Error::Cargo { code, .. } => code.unwrap_or(exit::COMPILE),
            Error::Interrupted(code) => *code,
            Error::Package(PackageError::Interrupted { code, .. }) => *code,
            Error::Fetch { code } => code.unwrap_or(exit::COMPILE),
            // cargo's 101 is a compile error; anything else is the container's or the image's.
            Error::ContainerBuild { code, .. } if *code == i64::from(exit::COMPILE) => {
                exit::COMPILE
            }
            _ => exit::FAILURE,
        }
    }

    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            Error::NoManifest(_) => {
                "run in your function's crate, or pass `--manifest-path path/to/Cargo.toml`".into()
            }
            Error::ManifestMissing(_) => "point `--manifest-path` at an existing Cargo.toml".into(),
            Error::Metadata(_) => {
                "fix what cargo says, then run again (`cargo metadata --no-deps` shows it in full)"
                    .into()
            }
            Error::ManifestIsDir(dir) => {
                format!("use `--manifest-path {}`", dir.join("Cargo.toml").display())
            }
            Error::OutputIsDir(_) => {
                "move that directory away, or choose another directory with `--outdir`".into()
            }
            Error::Cargo { .. } => "cargo says above what failed: fix it and run again".into(),
            Error::NoBinary(_) => {
                "a Lambda function is a binary: add `src/main.rs` or a `[[bin]]` target".into()
            }
            Error::SeveralBinaries { names, .. } => format!("for example `--bin {}`", names[0]),
            Error::UnknownBinary { names, .. } => format!("for example `--bin {}`", names[0]),
            Error::UnknownPackage { names, .. } => format!("for example `-p {}`", names[0]),
            Error::SeveralPackages(names) => format!(
                "for example `-p {}`, or `--workspace` to build every function",
                names[0]
            ),
            Error::NoSuchBinary { .. } => {
                "list the package that has it with `-p`, or leave `--bin` out".into()
            }
            Error::DuplicateBinary { packages, .. } => format!(
                "each function is named after its binary: select one of them with `-p {}`, or \
                 leave one out with `--exclude {}`",
                packages[0], packages[1]
            ),
            Error::InvalidConfig { .. } => {
                "fix the value, or remove it (the README's \"Configuration\" lists every key)"
                    .into()
            }
            Error::ConfigConflict { key, .. } => format!(
                "set `{key}` once for the build: on the command line, in \
                 `CARGO_LAMBDA_BUILD_{}`, or in `[workspace.metadata.lambda-build]`",
                key.to_uppercase()
            ),
            Error::Include(e) => return e.help(),
            Error::NewExists(_) => "choose another name, or remove it first".into(),
            Error::InvalidCrateName { .. } => {
                "use letters, digits, `-` and `_`, starting with a letter".into()
            }
            Error::NoCrossLinker { target } => format!(
                "install zig with `pip install ziglang`, or your distribution's cross gcc \
                 (Debian: `apt-get install gcc-{}`), or build in a container with `--docker`",
                target.gnu_prefix().trim_end_matches('-')
            ),
            Error::MissingRustTarget {
                target,
                rustup: true,
            } => {
                format!(
                    "run `rustup target add {}` and look at what it says",
                    target.triple()
                )
            }
            Error::MissingRustTarget {
                target,
                rustup: false,
            } => format!(
                "install the `{}` standard library with your Rust distribution, or install Rust \
                 with rustup (https://rustup.rs)",
                target.triple()
            ),
            Error::OutdirIsFile(_) => "pass a directory to `--outdir`, or remove the file".into(),
            Error::CreateOutdir { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                "free some disk space and run again".into()
            }
            Error::CreateOutdir { path, source } => {
                let existing = crate::package::nearest_existing(path).display();
                if source.raw_os_error() == Some(libc::ENOTDIR) {
                    format!("`{existing}` is a file: choose another directory with `--outdir`")
                } else {
                    format!(
                        "choose a directory you can write with `--outdir`, or make `{existing}` \
                         writable"
                    )
                }
            }
            Error::Spawn { program, .. } if program.contains("cargo") => {
                "install Rust with rustup (https://rustup.rs), or set `CARGO` to cargo's path"
                    .into()
            }
            Error::DockerUnavailable { reason, .. } => {
                let mut lines = Vec::new();
                if reason.contains("ermission denied") {
                    lines.push(
                        "your user may not use the engine's socket: add it to the `docker` group \
                         (`sudo usermod -aG docker $USER`, then log in again)"
                            .to_string(),
                    );
                }
                lines.push(
                    "start the engine (Docker Desktop, or `sudo systemctl start docker`), or point \
                     `DOCKER_HOST` at a running one: `unix:///path/to/docker.sock` or \
                     `tcp://host:2375`"
                        .into(),
                );
                lines.push(
                    "with a `docker context`, use its address: \
                     `export DOCKER_HOST=$(docker context inspect --format '{{.Endpoints.docker.Host}}')`"
                        .into(),
                );
                lines.push("or build on the host: leave out `--docker`".into());
                lines.join("\n")
            }
            Error::Docker { .. } => {
                "that is the engine's own message: check the engine with `docker info`, then run \
                 again"
                    .into()
            }
            Error::DockerLost { .. } => {
                "check that the engine still runs (`docker info`), restart it if it does not \
                 (Docker Desktop, or `sudo systemctl restart docker`), then run again"
                    .into()
            }
            Error::ImageBuild { source_name, .. } if source_name.starts_with("the bundled") => {
                "the bundled image downloads Amazon Linux 2023 and rustup: check that the engine \
                 reaches the internet, or bring your own `lambda.Dockerfile` (README: \
                 \"The image contract\")"
                    .into()
            }
            Error::ImageBuild { .. } => {
                "Docker's output is above: fix the Dockerfile and run again".into()
            }
            Error::DockerfileRead { .. } => {
                "point `--dockerfile` at a readable file, or leave it out to use the project's \
                 `lambda.Dockerfile` or the bundled one"
                    .into()
            }
            Error::UndeclaredBuildArg { name, declared, .. } => format!(
                "declare it with `ARG {name}` in the Dockerfile, or leave it out{}",
                if declared.is_empty() {
                    " (the Dockerfile declares no argument)".to_string()
                } else {
                    format!(
                        "; the Dockerfile declares {}",
                        declared
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
            Error::DockerImageMissing(name) => format!(
                "pull or build it first (`docker pull {name}`), or leave out `--docker-image` to \
                 build the image from `lambda.Dockerfile` or the bundled one"
            ),
            Error::Fetch { .. } => {
                "the container builds offline, so dependencies are fetched on the host first: \
                 fix what cargo says above (network, registry access), then run again"
                    .into()
            }
            Error::ContainerBuild {
                code: 126 | 127, ..
            } => "the image has no runnable `cargo` on PATH: see \"The image contract\" in the \
                 README"
                .into(),
            Error::ContainerOutOfMemory { limit } => format!(
                "give Docker more memory{}, or compile fewer crates at once: \
                 `CARGO_BUILD_JOBS=1 cargo lambda-build --docker`",
                if limit.is_some() {
                    " (a larger `--docker-memory`)"
                } else {
                    " (Docker Desktop: Settings > Resources)"
                }
            ),
            Error::ContainerBuild { code: 137, .. } => {
                "the container was killed, perhaps out of memory: give the engine more memory, \
                 or set `CARGO_BUILD_JOBS=1`"
                    .into()
            }
            Error::Incompatible { problems, .. } => {
                let mut lines: Vec<String> = problems.iter().map(Problem::help).collect();
                lines.push("to package it anyway, pass `--no-verify`".into());
                lines.join("\n")
            }
            Error::Inspect { source, .. } => return source.help(),
            Error::Package(e) => return e.help(),
            Error::Invoke(e) => return e.help(),
            _ => return None,
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
