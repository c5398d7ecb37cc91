//! Why the Docker backend failed, with the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine could not be reached: the address, the transport and what to check.
    #[error(transparent)]
    Reach(#[from] super::engine::EngineError),

    #[error("the Docker engine could not {action}: {message}")]
    Engine { action: String, message: String },

    /// The connection broke or the socket went away after the engine had answered.
    #[error("the Docker engine stopped answering when asked to {action}: {reason}")]
    Lost { action: String, reason: String },

    #[error("cannot read the Dockerfile `{}`: {source}", .path.display())]
    DockerfileRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("building the image from {source_name} failed: {message}")]
    ImageBuild {
        source_name: String,
        message: String,
        /// From the bundled Dockerfile (not the project's own).
        bundled: bool,
    },

    #[error("the Docker image `{0}` does not exist on this engine")]
    ImageMissing(String),

    #[error("the Docker engine at `{engine}` cannot see this machine's files, and git dependencies ({}) cannot be copied to it yet", .packages.join(", "))]
    GitDependencyRemote {
        engine: String,
        packages: Vec<String>,
    },

    /// `docker-files = bind` was asked for, and the engine does not see the host's files.
    #[error("{origin} asks to bind-mount the project, but the Docker engine at `{engine}` cannot see this machine's files (`{}` is not there)", .path.display())]
    FilesUnseen {
        origin: String,
        engine: String,
        path: PathBuf,
    },

    /// Copy mode keeps every source directory at its host path in the container; this one would
    /// cover a directory the image needs (or the tool's own).
    #[error("`{}` cannot be copied to the Docker engine: at its path in the build container it would cover the image's `{covered}`", .path.display())]
    SourcesCollide { path: PathBuf, covered: String },

    /// `docker-files = bind` on Windows, where the project is always copied into volumes.
    #[error(
        "{origin} asks to bind-mount the project, but on Windows `--docker` copies it into the engine's volumes"
    )]
    BindOnWindows { origin: String },

    #[error("the build argument `{name}` (`--docker-build-arg`) is not declared in {dockerfile}")]
    UndeclaredBuildArg {
        name: String,
        dockerfile: String,
        declared: Vec<String>,
    },

    #[error("`cargo fetch` failed on the host{}", .code.map(|c| format!(" (exit code {c})")).unwrap_or_default())]
    Fetch { code: Option<i32> },

    #[error("`cargo build` failed in the container (exit code {code})")]
    ContainerBuild { code: i64, image: String },

    /// The engine killed a process of the build container for memory (`State.OOMKilled`).
    #[error("the build container ran out of memory (OOM-killed){}",
        .limit.map(|b| format!(" at its limit of {} MiB (`--docker-memory`)", b >> 20)).unwrap_or_default())]
    OutOfMemory { limit: Option<u64> },

    #[error("cargo could not read the project: {0}")]
    Metadata(String),
}

impl DockerError {
    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            DockerError::Reach(e) => return e.help(),
            DockerError::Engine { .. } => {
                "that is the engine's own message: check the engine with `docker info`, then run \
                 again"
                    .into()
            }
            DockerError::Lost { .. } => {
                "check that the engine still runs (`docker info`), restart it if it does not \
                 (Docker Desktop, or `sudo systemctl restart docker`), then run again"
                    .into()
            }
            DockerError::DockerfileRead { .. } => {
                "point `--dockerfile` at a readable file, or leave it out to use the project's \
                 `lambda.Dockerfile` or the bundled one"
                    .into()
            }
            DockerError::ImageBuild { bundled: true, .. } => {
                "the bundled image downloads Amazon Linux 2023 and rustup: check that the engine \
                 reaches the internet, or bring your own `lambda.Dockerfile` (docs/docker.md: \
                 \"The image contract\")"
                    .into()
            }
            DockerError::ImageBuild { .. } => {
                "Docker's output is above: fix the Dockerfile and run again".into()
            }
            DockerError::FilesUnseen { origin, .. } => format!(
                "the engine runs elsewhere (CI's docker:dind, a remote host): use \
                 `--docker-files copy`, or `auto` to let the tool choose ({origin} set `bind`)"
            ),
            DockerError::BindOnWindows { origin } => format!(
                "Docker Desktop's Linux containers cannot name this machine's `C:\\` paths: \
                 leave out {origin}, or set `--docker-files copy`"
            ),
            DockerError::SourcesCollide { .. } => {
                "the engine cannot see this machine's files, so the project and its path \
                 dependencies go into volumes at their own paths in the container: keep them in \
                 a directory of their own (not `/`, nor a system directory such as `/usr` or \
                 `/var`, nor under `/lambda-build`), or build on an engine that sees \
                 this machine's files"
                    .into()
            }
            DockerError::GitDependencyRemote { .. } => {
                "vendor them (`cargo vendor`, with the `[source]` table it prints in \
                 `.cargo/config.toml` of the project), or build with an engine on this machine"
                    .into()
            }
            DockerError::ImageMissing(name) => format!(
                "pull or build it first (`docker pull {name}`), or leave out `--docker-image` to \
                 build the image from `lambda.Dockerfile` or the bundled one"
            ),
            DockerError::UndeclaredBuildArg { name, declared, .. } => format!(
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
            DockerError::Fetch { .. } => {
                "the container builds offline, so dependencies are fetched on the host first: \
                 fix what cargo says above (network, registry access), then run again"
                    .into()
            }
            DockerError::ContainerBuild {
                code: 126 | 127, ..
            } => "the image has no runnable `cargo` on PATH: see \"The image contract\" in \
                 docs/docker.md"
                .into(),
            DockerError::ContainerBuild { code: 137, .. } => {
                "the container was killed, perhaps out of memory: give the engine more memory, \
                 or set `CARGO_BUILD_JOBS=1`"
                    .into()
            }
            DockerError::OutOfMemory { limit } => format!(
                "give Docker more memory{}, or compile fewer crates at once: \
                 `CARGO_BUILD_JOBS=1 cargo lambda-build --docker`",
                if limit.is_some() {
                    " (a larger `--docker-memory`)"
                } else {
                    " (Docker Desktop: Settings > Resources)"
                }
            ),
            DockerError::ContainerBuild { .. } | DockerError::Metadata(_) => return None,
        })
    }
}
