//! Why `invoke` could not run the function, or why the function failed, with the fix.

use std::path::PathBuf;

use super::container::ContainerError;
use super::failure::FailureKind;
use crate::arch::Arch;
use crate::lambda::{BOOTSTRAP, OPT, ZIP_NAME};
use crate::signal::Interrupted;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Interrupted(#[from] Interrupted),

    /// Container mode could not start (see `container`).
    #[error(transparent)]
    Container(ContainerError),

    /// A failure of the machinery around the function (a pipe, stdout), not of the function.
    #[error(transparent)]
    Other(#[from] anyhow::Error),

    #[error("no `{ZIP_NAME}` or `{BOOTSTRAP}` in `{}`", .0.display())]
    NoArtifact(PathBuf),

    #[error("no `{ZIP_NAME}` or `{BOOTSTRAP}` in `{}`, but {} below it, one per function", .dir.display(), .found.len())]
    ArtifactsBelow { dir: PathBuf, found: Vec<PathBuf> },

    #[error("cannot read `{}`: {source}", .path.display())]
    ReadArtifact {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("`{}` is not a readable zip: {reason}", .path.display())]
    BadZip { path: PathBuf, reason: String },

    #[error("the zip has an entry that would land outside the task root: `{0}`")]
    UnsafeEntry(String),

    #[error("cannot read the layer `{}`: {source}", .path.display())]
    ReadLayer {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Lambda extracts a layer into `/opt`.
    #[error("the layer `{}` has an entry that would land outside {OPT}: `{name}`", .layer.display())]
    UnsafeLayerEntry { layer: PathBuf, name: String },

    /// A zip built with `--extension`: Lambda runs it beside a function, never by itself.
    #[error("`{}` is an extension layer ({}), not a function: it has no `bootstrap` to run", .path.display(), .extensions.join(", "))]
    ExtensionLayer {
        path: PathBuf,
        extensions: Vec<String>,
    },

    /// Lambda's `InvalidParameterValueException` at upload.
    #[error("Unzipped size must be smaller than {limit} bytes (the zip holds {0} bytes)", limit = crate::lambda::UNZIPPED_LIMIT)]
    TooLargeUnzipped(u64),

    #[error("cannot prepare the task root: {0}")]
    TaskRoot(std::io::Error),

    #[error("{source_name} holds no event")]
    NoEvent { source_name: String },

    #[error("no event: stdin is a terminal")]
    StdinIsTerminal,

    #[error("`{source_name}` is not a sequence of JSON values: {reason}")]
    InvalidEvent { source_name: String, reason: String },

    /// Lambda's `RequestTooLargeException`.
    #[error(
        "{size} byte payload is too large for the RequestResponse invocation type (limit {limit} bytes)",
        limit = crate::lambda::MAX_EVENT_BYTES
    )]
    EventTooLarge { size: usize },

    #[error("cannot read the events from `{}`: {}", .path.display(), crate::package::describe(.source))]
    ReadEvents {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Lambda's `ValidationException` for a `Handler` outside its pattern.
    #[error(
        "`--handler {0:?}` is not a handler Lambda accepts: 1 to 128 characters, no whitespace"
    )]
    InvalidHandler(String),

    #[error("`--env {0}` is not KEY=VALUE")]
    InvalidEnv(String),

    #[error("`--env {0}` is not a number of concurrent invocations (1 or more)")]
    InvalidConcurrency(String),
    #[error("cannot read the env file `{}`: {}", .path.display(), crate::package::describe(.source))]
    ReadEnvFile {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A line of an `--env-file` that `docker run --env-file` would refuse too.
    #[error("{}:{line}: {reason}", .path.display())]
    InvalidEnvFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// Lambda accepts an application log level only with the JSON log format.
    #[error("`--log-level {0}` needs the JSON log format, and `--log-format text` was given")]
    LogLevelNeedsJson(&'static str),

    #[error("`--data-example {0}` is not a sample event of this tool")]
    UnknownExample(String),

    #[error("the client context {source_name} is not one Lambda takes: {reason}")]
    InvalidClientContext { source_name: String, reason: String },

    #[error("cannot read the client context `{}`: {}", .path.display(), crate::package::describe(.source))]
    ReadClientContext {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Lambda's wording when a function's configuration sets a reserved variable.
    #[error(
        "Lambda was unable to configure your environment variables because the environment \
         variables you have provided contains reserved keys that are currently not supported for \
         modification. Reserved keys used in this request: {}", .0.join(", ")
    )]
    ReservedEnv(Vec<String>),

    #[error(
        "`bootstrap` is an {arch} executable and this machine is not; running it needs \
         `{program}`, which is not installed"
    )]
    NoEmulator {
        arch: Arch,
        program: &'static str,
        package: &'static str,
    },

    #[error(
        "`bootstrap` is a dynamically linked {arch} executable; running it under qemu needs \
         {arch}'s C library in `{}`, which is missing", .sysroot.display()
    )]
    NoSysroot {
        arch: Arch,
        sysroot: PathBuf,
        package: String,
    },

    /// A library the build refuses (`inspect::Problem::MissingLibraries`), in an artifact built
    /// without the check (`--no-verify`, or elsewhere): said in the build's words.
    #[error("`{executable}` would not run on provided.al2023: {}", .problem.message())]
    NotOnLambda {
        executable: String,
        problem: crate::inspect::Problem,
    },

    /// Libraries provided.al2023 has that this run cannot find (see `libraries`).
    #[error(
        "`{executable}` needs {}, which provided.al2023 has but {} lacks",
        .libraries.iter().map(|(library, _)| library.as_str()).collect::<Vec<_>>().join(", "),
        searched(*.arch, .sysroot.as_deref())
    )]
    NotHere {
        executable: String,
        arch: Arch,
        /// Each library, with the Debian and Ubuntu package that has it here, if one does.
        libraries: Vec<(String, Option<String>)>,
        sysroot: Option<PathBuf>,
    },

    /// `-p`, `--bin`, `--arch`... given to a command that builds nothing.
    #[error("`{flag}` says what to build, and `{command}` builds nothing without {}", build_flags(.command))]
    NothingToBuild {
        flag: &'static str,
        command: &'static str,
    },

    #[error(
        "`--native` runs the function as a process of this machine: Linux and macOS can, a {os} host cannot"
    )]
    NativeHost {
        command: &'static str,
        os: &'static str,
    },

    #[error("`{command}` runs one function, and {} are selected: {}", .functions.len(), .functions.join(", "))]
    SeveralFunctions {
        command: &'static str,
        functions: Vec<String>,
    },

    #[error("`{0}` is built as an extension, which Lambda runs beside a function, never by itself")]
    NotAFunction(String),

    #[error("cannot listen on {addr}: {}", crate::package::describe(.source))]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },

    #[error("cannot start the Runtime API on 127.0.0.1: {0}")]
    Server(String),

    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },

    #[error("{failed} of {total} invocations failed; the first with {error_type}: {message}")]
    Failed {
        failed: usize,
        total: usize,
        kind: FailureKind,
        error_type: String,
        message: String,
    },
}

impl From<ContainerError> for InvokeError {
    fn from(error: ContainerError) -> InvokeError {
        match error {
            ContainerError::Interrupted(stop) => InvokeError::Interrupted(stop),
            error => InvokeError::Container(error),
        }
    }
}

impl InvokeError {
    pub fn help(&self) -> Option<String> {
        Some(match self {
            InvokeError::Container(e) => return e.help(),
            InvokeError::NoArtifact(_) => {
                "build one with `cargo lambda-build --zip`, or pass the artifact's path".into()
            }
            InvokeError::ArtifactsBelow { found, .. } => format!(
                "pass the one to run: `cargo lambda-build invoke {}`{}",
                found[0].display(),
                if found.len() > 1 {
                    format!(
                        " (the others: {})",
                        found[1..]
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    String::new()
                }
            ),
            InvokeError::ExtensionLayer { path, .. } => format!(
                "an extension runs beside a function, from a layer: publish it with `aws lambda \
                 publish-layer-version --layer-name NAME --zip-file fileb://{}` and add it to a \
                 function; `invoke` runs a function's zip (built without `--extension`)",
                path.display()
            ),
            InvokeError::UnsafeLayerEntry { .. } => format!(
                "Lambda extracts a layer into {OPT}: rebuild the zip with names relative to its \
                 root (`lib/...`, `bin/...`, `extensions/...`) and links that stay inside it"
            ),
            InvokeError::ReadLayer { .. } => {
                "pass the zip of a layer to `--layer` (for example one built with `cargo \
                 lambda-build --zip --extension`)"
                    .into()
            }
            InvokeError::TooLargeUnzipped(_) => {
                "Lambda refuses such a function at upload: strip the binary (`strip = true` in \
                 the cargo profile) or move data to S3 or a layer"
                    .into()
            }
            InvokeError::NoEvent { .. } | InvokeError::StdinIsTerminal => {
                "pass `--data '{\"key\": \"value\"}'`, `--data-file events.json`, or pipe events \
                 on stdin"
                    .into()
            }
            InvokeError::EventTooLarge { .. } => {
                "Lambda takes at most 6 MB in a synchronous invocation: put large inputs in S3 \
                 and pass a reference"
                    .into()
            }
            InvokeError::InvalidEnv(_) => "for example `--env TABLE_NAME=orders`".into(),
            InvokeError::InvalidConcurrency(_) => {
                "use `--concurrency N`, which sets the variable and serves N invocations at once"
                    .into()
            }
            InvokeError::ReadEnvFile { .. } => {
                "pass a readable file of KEY=VALUE lines to `--env-file`".into()
            }
            InvokeError::InvalidEnvFile { .. } => {
                "write one variable per line, `KEY=VALUE` (or `KEY` alone to pass this \
                 machine's value); a line starting with `#` is a comment"
                    .into()
            }
            InvokeError::LogLevelNeedsJson(_) => {
                "drop `--log-format text` (`--log-level` implies `--log-format json`), or drop \
                 `--log-level`"
                    .into()
            }
            InvokeError::UnknownExample(_) => format!(
                "the samples are: {} (`--data-example list` describes them)",
                super::examples::EXAMPLES
                    .iter()
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            InvokeError::InvalidClientContext { .. } | InvokeError::ReadClientContext { .. } => {
                "give a JSON object, as the SDKs' `ClientContext` carries, for example \
                 `{\"custom\":{\"tier\":\"gold\"}}` (lambda_runtime reads `client`, `custom` and \
                 `environment`)"
                    .into()
            }
            InvokeError::InvalidHandler(_) => {
                "for example `--handler orders.list`; without it, `_HANDLER` is `bootstrap`".into()
            }
            InvokeError::ReadEvents { .. } => {
                "pass a readable file of one JSON event, or of several, one per line".into()
            }
            InvokeError::ReservedEnv(_) => {
                "Lambda sets these itself; a function cannot configure them".into()
            }
            InvokeError::NoEmulator {
                program, package, ..
            } => format!(
                "install `{program}` (Debian and Ubuntu: `apt-get install {package}`), or run \
                 the function on a machine of its architecture"
            ),
            InvokeError::NoSysroot { package, .. } => {
                format!("install it (Debian and Ubuntu: `apt-get install {package}`)")
            }
            InvokeError::NotOnLambda { problem, .. } => problem.help(),
            InvokeError::NotHere { libraries, .. } => not_here_help(libraries),
            InvokeError::Listen { addr, source } => match source.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "another program listens on port {port} (another `serve`, or `cargo lambda \
                     watch`?): stop it, or pass `--port {other}` (`--port 0` takes a free one)",
                    port = addr.port(),
                    other = addr.port().wrapping_add(1).max(1024)
                ),
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need privileges: pass `--port 9000`".into()
                }
                std::io::ErrorKind::AddrNotAvailable => format!(
                    "{} is not an address of this machine: pass `--bind 127.0.0.1`",
                    addr.ip()
                ),
                _ => return None,
            },
            InvokeError::Failed { kind, .. } => return Some(failure_help(*kind).into()),
            InvokeError::NothingToBuild { command, .. } => format!(
                "add {} to build it, or build first (`cargo lambda-build --zip ...`) and pass \
                 the artifact",
                build_flags(command)
            ),
            InvokeError::NativeHost { command, .. } => {
                format!("run `cargo lambda-build {command} --native` in WSL, or on Linux or macOS")
            }
            InvokeError::SeveralFunctions { .. } => {
                "choose one with `-p` (and `--bin` when its package has several)".into()
            }
            InvokeError::NotAFunction(_) => {
                "choose a function's binary with `-p` or `--bin`; an extension runs through \
                 `--layer`"
                    .into()
            }
            _ => return None,
        })
    }
}

/// Where [`InvokeError::NotHere`]'s libraries were looked for besides the function's own.
fn searched(arch: Arch, sysroot: Option<&std::path::Path>) -> String {
    match sysroot {
        Some(sysroot) => format!(
            "the {arch} sysroot qemu runs it with (`{}`)",
            sysroot.display()
        ),
        None => "this machine".to_owned(),
    }
}

/// Install what has a package here; the build image has them all.
fn not_here_help(libraries: &[(String, Option<String>)]) -> String {
    let them = if libraries.len() == 1 { "it" } else { "them" };
    let mut packages: Vec<&str> = Vec::new();
    for package in libraries
        .iter()
        .filter_map(|(_, package)| package.as_deref())
    {
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    let without_package: Vec<&str> = libraries
        .iter()
        .filter(|(_, package)| package.is_none())
        .map(|(library, _)| library.as_str())
        .collect();
    let docker = format!(
        "add `--docker` to run the function in a container of the build image, which has {them}"
    );
    let ways = if packages.is_empty() {
        docker
    } else {
        format!(
            "install {} (Debian and Ubuntu: `apt-get install {}`), or {docker}",
            if without_package.is_empty() {
                them
            } else {
                "the others"
            },
            packages.join(" ")
        )
    };
    if without_package.is_empty() {
        ways
    } else {
        format!(
            "Debian and Ubuntu have no package that puts {} there: {ways}",
            without_package.join(", ")
        )
    }
}

/// The flags that make `command` build.
fn build_flags(command: &str) -> &'static str {
    if command == "serve" {
        "`--watch` or `--native`"
    } else {
        "`--native`"
    }
}

fn failure_help(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Handler => {
            "the handler returned an error: its payload is on stdout, the function's output above"
        }
        FailureKind::InitError => {
            "the function reported that it could not start: its payload is on stdout, the \
             function's output above"
        }
        FailureKind::RestoreError => {
            "an after-restore hook failed (SnapStart): the function's output above says why; on \
             Lambda the invoke fails the same way"
        }
        FailureKind::Exit => {
            "the process ended before answering: the function's output above says why (a \
             panic with `panic = \"abort\"`, a missing setting, `std::process::exit`)"
        }
        FailureKind::Timeout => {
            "the function needs longer than `--timeout`: raise it (and the function's timeout \
             on Lambda, at most 900 s), or find what blocks"
        }
        FailureKind::NeverAsked => {
            "is it a Lambda function? A program that never calls the Runtime API (an axum or \
             actix-web server, a command-line tool) waits until Lambda stops it: serve it \
             through `lambda_http::run` or `lambda_runtime::run` (`cargo lambda-build new --http` \
             shows how)"
        }
        FailureKind::ResponseTooLarge => {
            "Lambda returns at most 6 MB from a synchronous invocation: put large results in S3 \
             and return a reference"
        }
        FailureKind::StreamTooLarge => {
            "Lambda cuts a streamed response at its limit for streams (the message above): put \
             larger results in S3 and return a reference"
        }
        FailureKind::Extension => {
            "an extension from a layer failed: its output above says why; run without that \
             `--layer` to tell the function's failures from the extension's"
        }
        FailureKind::InvalidEntrypoint => {
            "Lambda execs `bootstrap` at the zip's root, with mode 755, built for the \
             function's architecture: `cargo lambda-build --zip` packages it so"
        }
    }
}
