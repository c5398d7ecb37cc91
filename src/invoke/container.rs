//! Container mode: the function runs in a Linux container on the engine `--docker` reaches,
//! made from the build image (the bundled Amazon Linux 2023 one, or the project's
//! `lambda.Dockerfile`) or `--docker-image`. This tool keeps serving the Runtime, Extensions and
//! Telemetry APIs; the function reaches them back on this machine.
//!
//! One container per execution environment (one [`Sandbox`](super::Sandbox)): the zip's files
//! and the merged layers are copied in through the Engine API at `/var/task` and `/opt` (no bind
//! mount, so any engine on this machine or its VM works), its memory limit is `--memory`, and
//! its main process only waits. The runtime and each extension run in it as Lambda's user
//! (`exec`, through the relay of `build::docker::exec`), so they share `/tmp` as on Lambda. A
//! reset (a crash, a timeout) kills their processes and keeps the container, as Lambda's reset
//! keeps `/tmp`; the container goes when the environment does, Ctrl-C included, and with the
//! tool itself even when it is killed: its main process ends when the tool's attach connection
//! does, and the engine removes it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::container::AttachContainerResults;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptions, CreateContainerOptions};
use futures_util::StreamExt;

use crate::arch::Arch;
use crate::build::BuildError;
use crate::build::docker::engine::{self, EngineEnv};
use crate::build::docker::exec::ExecSpec;
use crate::build::docker::image::LABEL;
use crate::build::docker::{self as docker_backend, DockerError, ImagePlan, files, image};
use crate::config::DockerConfig;
use crate::env::Env;
use crate::lambda::{BOOTSTRAP, IMAGE_RUNTIME_DIR, OPT, SANDBOX_USER, TASK_ROOT};
use crate::plan::Cmd;
use crate::report::Reporter;
use crate::signal::{Interrupt, Interrupted};

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// The name a container of Docker Desktop, Podman machine, colima or OrbStack reaches the host
/// by; each of them forwards it to the host's loopback, where the Runtime API listens.
pub const HOST_GATEWAY: &str = "host.docker.internal";

/// Why the function runs in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// `--docker` or `--docker-image` (or a `--docker` build, for `--invoke-with`).
    Asked,
    /// The default of a host that cannot run a Linux executable itself (macOS, Windows).
    HostDefault(&'static str),
}

/// Which way `invoke`, `serve` and `--invoke-with` run the function on a host of `os`
/// (`std::env::consts::OS`): `None` as a process of this machine (Linux only), else in a
/// container, asked for or as this host's default.
pub fn container_mode(os: &'static str, asked: bool) -> Option<Chosen> {
    match (asked, os) {
        (true, _) => Some(Chosen::Asked),
        (false, "linux") => None,
        (false, os) => Some(Chosen::HostDefault(os)),
    }
}

/// Container mode, decided before anything runs: the image's settings, where a
/// `lambda.Dockerfile` is looked for, the engine as the docker CLI reaches it, and this tool's
/// binary, which relays each process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    pub chosen: Chosen,
    /// `--docker-image`, or the build's `--dockerfile` and `--docker-build-arg`s.
    pub docker: DockerConfig,
    /// `--image`: `docker.image` is a Lambda image run as it ships, its own `/var/task` and
    /// `/var/runtime/bootstrap`; only `/opt` (the layers) is copied in, and the engine runs it
    /// for the image's own platform.
    pub shipped: bool,
    /// The package and workspace roots, where a `lambda.Dockerfile` is found as a build finds it;
    /// `None`: the project around `cwd`.
    pub roots: Option<(PathBuf, PathBuf)>,
    pub cargo: OsString,
    pub cwd: PathBuf,
    pub engine: EngineEnv,
    pub relay: PathBuf,
    /// What the relay needs of this machine's environment to run here (see
    /// [`RELAY_ONLY`]), beside the function's variables.
    pub relay_env: Vec<(String, String)>,
}

/// The variables a relay process needs on its host and the function does not get: Windows
/// opens no socket without `SystemRoot`, and every launch starts from an empty environment.
pub const RELAY_ONLY: [&str; 1] = ["SystemRoot"];

impl ContainerPlan {
    pub fn new(chosen: Chosen, docker: DockerConfig, env: &Env) -> Result<ContainerPlan> {
        let relay = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find this program's own path: {e}"))?;
        Ok(ContainerPlan {
            chosen,
            docker,
            shipped: false,
            roots: None,
            cargo: env.cargo.clone(),
            cwd: env.cwd.clone(),
            engine: EngineEnv::from_env(env),
            relay,
            relay_env: RELAY_ONLY
                .iter()
                .filter_map(|key| Some((key.to_string(), env.var(key)?.to_owned())))
                .collect(),
        })
    }

    /// The image to run in, for a function of `arch` on an engine of `engine_arch`: the other
    /// architecture's is built for its platform, under its own tag.
    fn image(
        &self,
        arch: Option<Arch>,
        engine_arch: Option<Arch>,
    ) -> Result<(ImagePlan, Option<String>)> {
        let (package, workspace) = match &self.roots {
            Some(roots) => roots.clone(),
            None => project_roots(&self.cwd, Path::is_file, |p| {
                std::fs::read_to_string(p).ok()
            }),
        };
        let mut plan = docker_backend::image_plan_in(
            &self.docker,
            (&package, &workspace),
            (&self.cargo, &self.cwd),
        )
        .map_err(ContainerError::from)?;
        let platform = match (arch, engine_arch) {
            _ if self.shipped => None,
            (Some(arch), Some(engine)) if arch != engine => Some(platform(arch)),
            _ => None,
        };
        if let Some(platform) = &platform {
            plan.recipe = plan.recipe.map(|recipe| recipe.for_platform(platform));
        }
        Ok((plan, platform))
    }
}

/// The architecture an engine says it runs (`/info`): Docker says `x86_64` and `aarch64`,
/// Podman `amd64` and `arm64`.
pub fn engine_arch(name: &str) -> Option<Arch> {
    match name {
        "x86_64" | "amd64" => Some(Arch::X86_64),
        "aarch64" | "arm64" => Some(Arch::Arm64),
        _ => None,
    }
}

/// The platform name of a Lambda architecture, as engines and registries spell it.
pub fn platform(arch: Arch) -> String {
    match arch {
        Arch::X86_64 => "linux/amd64".into(),
        Arch::Arm64 => "linux/arm64".into(),
    }
}

/// The package root (the nearest directory with a `Cargo.toml`, from `cwd` up) and the
/// workspace root (the nearest one from there up whose `Cargo.toml` has `[workspace]`), where a
/// build looks for `lambda.Dockerfile`; `cwd` for both outside a project.
pub fn project_roots(
    cwd: &Path,
    is_file: impl Fn(&Path) -> bool,
    read: impl Fn(&Path) -> Option<String>,
) -> (PathBuf, PathBuf) {
    let Some(package) = cwd.ancestors().find(|dir| is_file(&dir.join("Cargo.toml"))) else {
        return (cwd.to_path_buf(), cwd.to_path_buf());
    };
    let workspace = package
        .ancestors()
        .find(|dir| {
            read(&dir.join("Cargo.toml"))
                .is_some_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(package);
    (package.to_path_buf(), workspace.to_path_buf())
}

/// What the engine says about itself, and whether it sees this machine's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFacts {
    /// The bind-mount probe read the artifact back: the engine is on this machine (or in its
    /// VM, sharing its files).
    pub sees_files: bool,
    /// `OperatingSystem` of `/info` (`Docker Desktop`, `Ubuntu 24.04 LTS`, ...).
    pub operating_system: String,
    /// Docker rootless (`name=rootless`): its host network is a namespace of its own.
    pub docker_rootless: bool,
}

/// How the function in the container reaches the Runtime API, which listens on this machine's
/// 127.0.0.1 only, never on all interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// An engine of this Linux machine: the container shares its network, 127.0.0.1 included.
    HostNetwork,
    /// An engine in a VM (Docker Desktop, Podman machine, colima): [`HOST_GATEWAY`], which the VM
    /// forwards to this machine's loopback.
    Gateway,
}

impl Reach {
    /// `AWS_LAMBDA_RUNTIME_API` as the container sees the API listening at `api`.
    pub fn runtime_api(self, api: SocketAddr) -> String {
        match self {
            Reach::HostNetwork => api.to_string(),
            Reach::Gateway => format!("{HOST_GATEWAY}:{}", api.port()),
        }
    }

    fn network_mode(self) -> &'static str {
        match self {
            Reach::HostNetwork => "host",
            Reach::Gateway => "bridge",
        }
    }
}

/// Decides how the container reaches back to this host of `os`, or why it cannot.
pub fn reach(os: &str, facts: &EngineFacts) -> Result<Reach, Unreachable> {
    if !facts.sees_files {
        return Err(Unreachable::Remote);
    }
    if os != "linux" || facts.operating_system.contains("Docker Desktop") {
        return Ok(Reach::Gateway);
    }
    if facts.docker_rootless {
        return Err(Unreachable::RootlessDocker);
    }
    Ok(Reach::HostNetwork)
}

/// Why a container of this engine cannot reach the Runtime API on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// The engine does not see this machine's files: it is on another machine.
    Remote,
    /// Docker rootless: its containers' host network is RootlessKit's, not this machine's.
    RootlessDocker,
}

/// Why container mode could not start, with what to use instead.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Interrupted(#[from] Interrupted),

    /// A failure of the machinery on this side (a file, a runtime), not of the engine.
    #[error(transparent)]
    Other(#[from] anyhow::Error),

    #[error(
        "container mode needs a Docker engine, the default on {os} (a {os} host cannot run a Linux `bootstrap` itself): {source}"
    )]
    NoEngine {
        os: &'static str,
        source: Box<DockerError>,
    },

    #[error(transparent)]
    Docker(#[from] DockerError),

    #[error(transparent)]
    Build(Box<BuildError>),

    #[error(
        "the Docker engine at {engine} cannot see this machine's files: it runs elsewhere, and its \
         containers cannot reach the Runtime API this tool serves on 127.0.0.1"
    )]
    Remote { engine: String },

    #[error(
        "the Docker engine at {engine} is Docker rootless: its containers' host network is not \
         this machine's, and the Runtime API listens on 127.0.0.1 only"
    )]
    RootlessDocker { engine: String },

    #[error("the image `{image}` cannot run the function's processes: {message}")]
    NoShell { image: String, message: String },

    #[error("the image `{0}` is not in the Docker engine")]
    NoImage(String),

    #[error("the image `{image}` is not in the Docker engine, and pulling it failed: {reason}")]
    Pull { image: String, reason: String },

    #[error("the engine cannot start a {platform} container of `{image}`: {message}")]
    Platform {
        platform: String,
        image: String,
        message: String,
    },
}

impl ContainerError {
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ContainerError::NoEngine { source, .. } => {
                // The engine's own help, but for building without Docker, which runs nothing.
                let mut lines: Vec<String> = source
                    .help()
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.is_empty() && !l.contains("leave out `--docker`"))
                    .map(str::to_owned)
                    .collect();
                lines.push(
                    "or get an engine: Docker Desktop, Podman (`podman machine init && podman \
                     machine start`) or colima (`colima start`)"
                        .into(),
                );
                lines.join("\n")
            }
            ContainerError::Interrupted(_) | ContainerError::Other(_) => return None,
            ContainerError::Docker(e) => return e.help(),
            ContainerError::Build(e) => return e.help(),
            ContainerError::Remote { .. } => {
                "use an engine on this machine (unset DOCKER_HOST, or `docker context use \
                 default`); on Linux, leave out `--docker` to run the function as a process of \
                 this machine"
                    .into()
            }
            ContainerError::RootlessDocker { .. } => {
                "use a rootful engine or rootless Podman (`systemctl --user start \
                 podman.socket`, DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock), or \
                 leave out `--docker` to run the function as a process of this machine"
                    .into()
            }
            ContainerError::NoShell { .. } => {
                "each process starts through `/bin/sh` and `/usr/bin/env` in the container: use \
                 an image that has them (Amazon Linux 2023, Debian, Lambda's base images), with \
                 `--docker-image` or in `lambda.Dockerfile`"
                    .into()
            }
            ContainerError::Pull { image, .. } => format!(
                "check the name and that the registry has it (`docker pull {image}` says the \
                 same); log in to a private registry first (`docker login`, or for ECR `aws ecr \
                 get-login-password | docker login --username AWS --password-stdin REGISTRY`); \
                 an image for another architecture needs `--arch`"
            ),
            ContainerError::NoImage(name) => format!(
                "build it into the engine with `cargo lambda-build --image {name}` (without \
                 `--push` it is loaded there), or pull it (`docker pull {name}`)"
            ),
            ContainerError::Platform { platform, .. } => format!(
                "the engine runs another architecture's containers under emulation once qemu is \
                 registered with binfmt_misc (Docker Desktop and Podman machine do it; on Linux: \
                 `apt-get install qemu-user-static binfmt-support`, or `docker run --privileged \
                 --rm tonistiigi/binfmt --install all`); an image of your own must exist for \
                 {platform} (`docker pull --platform {platform} IMAGE`)"
            ),
        })
    }
}

/// A stage below failed: an interrupt stays one, the rest is the container's failure.
impl From<BuildError> for ContainerError {
    fn from(error: BuildError) -> ContainerError {
        match error {
            BuildError::Interrupted(stop) => ContainerError::Interrupted(stop),
            BuildError::Docker(e) => ContainerError::Docker(e),
            other => ContainerError::Build(Box::new(other)),
        }
    }
}

/// The container of one execution environment, as data: printable as the `docker run` it
/// equals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSpec {
    pub name: String,
    pub image: String,
    /// `linux/arm64` for a function of the other architecture than the engine's.
    pub platform: Option<String>,
    /// `--memory`: the container's limit, swap included (none on top, as on Lambda).
    pub memory_mb: u32,
    pub reach: Reach,
}

/// The main process: it waits for its stdin, which is the tool's attach connection, to end.
const IDLE: &str = "read -r _; exit 0";

impl EnvironmentSpec {
    fn memory_bytes(&self) -> i64 {
        i64::from(self.memory_mb) * 1024 * 1024
    }

    pub fn as_docker_run(&self) -> Cmd {
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--rm".into(),
            "--interactive".into(),
            "--name".into(),
            self.name.clone().into(),
            "--label".into(),
            format!("{LABEL}=invoke").into(),
            "--network".into(),
            self.reach.network_mode().into(),
            "--memory".into(),
            format!("{}m", self.memory_mb).into(),
            "--memory-swap".into(),
            format!("{}m", self.memory_mb).into(),
        ];
        if let Some(platform) = &self.platform {
            args.extend(["--platform".into(), platform.into()]);
        }
        args.extend([
            "--entrypoint".into(),
            "/bin/sh".into(),
            self.image.clone().into(),
            "-c".into(),
            IDLE.into(),
        ]);
        Cmd {
            program: "docker".into(),
            args,
            env: Vec::new(),
            cwd: PathBuf::from("/"),
        }
    }

    fn create_body(&self) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: Some(vec!["-c".into(), IDLE.into()]),
            // No variable of the image's reaches the function: each process gets Lambda's only.
            labels: Some([(LABEL.to_string(), "invoke".to_string())].into()),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            tty: Some(false),
            host_config: Some(HostConfig {
                network_mode: Some(self.reach.network_mode().into()),
                memory: Some(self.memory_bytes()),
                memory_swap: Some(self.memory_bytes()),
                auto_remove: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The running container of one execution environment; removed on drop.
pub struct Environment {
    runtime: tokio::runtime::Runtime,
    docker: Docker,
    pub name: String,
    /// The main process's stdin: when it closes (this tool ends, however), the container ends.
    lifeline: Option<AttachContainerResults>,
    /// The container's memory high-water mark as a file of this machine's cgroup tree, when the
    /// engine runs here (read in microseconds; else each reading is an `exec`).
    peak_file: Option<PathBuf>,
}

impl Environment {
    /// Creates the container: from here on, dropping this removes it.
    fn create(
        runtime: tokio::runtime::Runtime,
        docker: Docker,
        spec: &EnvironmentSpec,
    ) -> Result<Environment> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            platform: spec.platform.clone().unwrap_or_default(),
        };
        let created = runtime.block_on(docker.create_container(Some(options), spec.create_body()));
        if let Err(e) = created {
            return Err(match (&spec.platform, e) {
                (
                    Some(platform),
                    bollard::errors::Error::DockerResponseServerError { message, .. },
                ) => ContainerError::Platform {
                    platform: platform.clone(),
                    image: spec.image.clone(),
                    message,
                },
                (_, e) => ContainerError::Docker(engine::failure(
                    format!(
                        "create the function's container from image `{}`",
                        spec.image
                    ),
                    e,
                )),
            });
        }
        Ok(Environment {
            runtime,
            docker,
            name: spec.name.clone(),
            lifeline: None,
            peak_file: None,
        })
    }

    /// Copies `/var/task` and `/opt` in, then starts the container with this tool attached to
    /// its main process.
    fn start(
        &mut self,
        spec: &EnvironmentSpec,
        files: Vec<u8>,
        interrupt: &Interrupt,
    ) -> Result<()> {
        let failed = |action: &str| {
            let action = action.to_owned();
            move |e| ContainerError::Docker(engine::failure(action, e))
        };
        let upload = bollard::query_parameters::UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        };
        self.runtime
            .block_on(self.docker.upload_to_container(
                &self.name,
                Some(upload),
                bollard::body_full(files.into()),
            ))
            .map_err(failed(&format!(
                "copy {TASK_ROOT} and {OPT} into the function's container"
            )))?;
        interrupt.check()?;
        let attach = AttachContainerOptions {
            stdin: true,
            stream: true,
            ..Default::default()
        };
        let lifeline = self
            .runtime
            .block_on(self.docker.attach_container(&self.name, Some(attach)))
            .map_err(failed("attach to the function's container"))?;
        self.lifeline = Some(lifeline);
        let started = self
            .runtime
            .block_on(self.docker.start_container(&self.name, None));
        let started = match started {
            // Started is not running: a main process the engine cannot execute dies at once.
            Ok(()) => self.runtime.block_on(self.run_shell()),
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => Ok(()),
            // "exec format error": the engine cannot run the platform's programs; else the
            // image has no shell.
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                Err(match &spec.platform {
                    Some(platform) => ContainerError::Platform {
                        platform: platform.clone(),
                        image: spec.image.clone(),
                        message,
                    },
                    None => ContainerError::NoShell {
                        image: spec.image.clone(),
                        message,
                    },
                })
            }
            Err(e) => Err(failed("start the function's container")(e)),
        }
    }

    /// Copies the image's `/var/runtime/bootstrap` out into `dir`; an image without one leaves
    /// none there, which the init phase reports as Lambda does.
    fn copy_out_bootstrap(&self, dir: &Path) -> Result<()> {
        let path = format!("{IMAGE_RUNTIME_DIR}/{BOOTSTRAP}");
        let Ok(tar) = self.runtime.block_on(crate::build::docker::sync::download(
            &self.docker,
            &self.name,
            &path,
        )) else {
            return Ok(());
        };
        tar::Archive::new(tar.as_slice())
            .unpack(dir)
            .map_err(|e| anyhow::anyhow!("cannot copy `{path}` out of the image: {e}"))?;
        Ok(())
    }

    /// Runs `/bin/sh -c :` in the container, which every process of the function needs: an
    /// error when the container is not running or `sh` cannot run.
    async fn run_shell(&self) -> Result<(), bollard::errors::Error> {
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(vec!["/bin/sh", "-c", ":"]),
            ..Default::default()
        };
        let exec = self.docker.create_exec(&self.name, options).await?;
        let mut said = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await?
        {
            while let Some(chunk) = output.next().await {
                said.extend_from_slice(&chunk?.into_bytes());
            }
        }
        let code = self.docker.inspect_exec(&exec.id).await?.exit_code;
        if code == Some(0) {
            return Ok(());
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: format!(
                "`/bin/sh` exited with {}: {}",
                code.map_or_else(|| "no status".to_owned(), |c| c.to_string()),
                String::from_utf8_lossy(&said).trim()
            ),
        })
    }

    /// The container's peak memory (its cgroup's high-water mark: the runtime, the extensions
    /// and their processes together, as Lambda's "Max Memory Used"), in KiB.
    pub fn peak_memory_kib(&self) -> Option<u64> {
        let bytes = match &self.peak_file {
            Some(file) => std::fs::read_to_string(file).ok()?.trim().parse().ok()?,
            None => self.runtime.block_on(self.read_peak()).ok()??,
        };
        Some(bytes.div_ceil(1024))
    }

    /// Finds the container's memory cgroup in this machine's `/sys/fs/cgroup`, through its main
    /// process's `/proc/PID/cgroup`: only for an engine of this Linux machine (a VM's pids are
    /// not this machine's), and only a path that names the container's id.
    fn find_peak_file(&mut self) {
        let Ok(inspect) = self
            .runtime
            .block_on(self.docker.inspect_container(&self.name, None))
        else {
            return;
        };
        let (Some(id), Some(pid)) = (inspect.id, inspect.state.and_then(|s| s.pid)) else {
            return;
        };
        let Ok(cgroups) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return;
        };
        self.peak_file = peak_file_in(&cgroups, &id).filter(|file| file.is_file());
    }

    async fn read_peak(&self) -> Result<Option<u64>, bollard::errors::Error> {
        // cgroup v2, then v1.
        let script = "cat /sys/fs/cgroup/memory.peak 2>/dev/null || \
                      cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes";
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            cmd: Some(vec!["/bin/sh", "-c", script]),
            user: Some("0:0"),
            ..Default::default()
        };
        let exec = self.docker.create_exec(&self.name, options).await?;
        let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await?
        else {
            return Ok(None);
        };
        let mut text = Vec::new();
        while let Some(chunk) = output.next().await {
            if let bollard::container::LogOutput::StdOut { message } = chunk? {
                text.extend_from_slice(&message);
            }
        }
        Ok(String::from_utf8_lossy(&text).trim().parse().ok())
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let removed = self
            .runtime
            .block_on(docker_backend::container::remove(&self.docker, &self.name));
        let _enter = self.runtime.enter();
        self.lifeline = None;
        if let Err(e) = removed {
            let _ = io::Write::write_all(
                &mut io::stderr(),
                format!(
                    "warning: {e}; once the engine answers, remove it with `docker rm -f {}`\n",
                    self.name
                )
                .as_bytes(),
            );
        }
    }
}

/// The file of a process's memory high-water mark, from its `/proc/PID/cgroup`: cgroup v1's
/// `memory` controller (`memory.max_usage_in_bytes`), else v2's one hierarchy (`memory.peak`);
/// `None` unless the path names the container `id`.
pub fn peak_file_in(cgroups: &str, id: &str) -> Option<PathBuf> {
    // `ID:CONTROLLERS:PATH`, one line per hierarchy; v2's has no controllers.
    let entries: Vec<(&str, &str)> = cgroups
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':').skip(1);
            Some((fields.next()?, fields.next()?))
        })
        .collect();
    let v1 = entries
        .iter()
        .find(|(controllers, _)| controllers.split(',').any(|c| c == "memory"));
    let (hierarchy, path, file) = match v1 {
        Some((_, path)) => ("memory", *path, "memory.max_usage_in_bytes"),
        None => {
            let (_, path) = entries
                .iter()
                .find(|(controllers, _)| controllers.is_empty())?;
            ("", *path, "memory.peak")
        }
    };
    path.contains(id).then(|| {
        Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(path.trim_start_matches('/'))
            .join(file)
    })
}

/// What a file system without Unix modes and links (Windows) does not keep of the extracted
/// zips, by path below the task root or `/opt` (`/`-separated): each entry's mode, and the
/// symlinks, which are not created there. The container gets them from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnixEntries {
    pub modes: BTreeMap<String, u32>,
    /// Link to target.
    pub links: BTreeMap<String, String>,
}

/// `/var/task` and `/opt` as the tar the engine extracts at `/`: the extracted zip and layers
/// with their modes and links (from the file system where it has them, else from what the
/// extraction recorded), owned by root as on Lambda.
pub fn files_tar(
    task_root: (&Path, &UnixEntries),
    opt: (&Path, &UnixEntries),
) -> io::Result<Vec<u8>> {
    trees_tar(&[(task_root, TASK_ROOT), (opt, OPT)])
}

/// Each `(tree, inside)` of `trees` as the tar the engine extracts at `/`: [`files_tar`], or
/// `/opt` alone for an image that brings its own `/var/task`.
fn trees_tar(trees: &[((&Path, &UnixEntries), &str)]) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    for &((dir, entries), inside) in trees {
        let inside = inside.trim_start_matches('/');
        append_tree(&mut tar, dir, (inside, ""), entries)?;
        for (link, target) in &entries.links {
            // Created on this machine's file system, it is in the tree already.
            if std::fs::symlink_metadata(dir.join(link)).is_err() {
                let mut header = root_header();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, format!("{inside}/{link}"), target)?;
            }
        }
    }
    tar.into_inner()
}

fn root_header() -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// `path` in the tar as `name`, `relative` being its key in `entries`.
fn append_tree(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    (name, relative): (&str, &str),
    entries: &UnixEntries,
) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    if crate::host::mode_bits(&meta).is_none()
        && let Some(mode) = entries.modes.get(relative)
    {
        header.set_mode(*mode);
    }
    if meta.is_dir() {
        header.set_size(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/"), io::empty())?;
        let mut children: Vec<_> = std::fs::read_dir(path)?.collect::<io::Result<_>>()?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let file_name = child.file_name();
            let file_name = file_name.to_string_lossy();
            let child_relative = match relative {
                "" => file_name.to_string(),
                _ => format!("{relative}/{file_name}"),
            };
            let child_name = format!("{name}/{file_name}");
            append_tree(tar, &child.path(), (&child_name, &child_relative), entries)?;
        }
    } else if meta.file_type().is_symlink() {
        header.set_size(0);
        tar.append_link(&mut header, name, std::fs::read_link(path)?)?;
    } else {
        header.set_cksum();
        tar.append_data(&mut header, name, std::fs::File::open(path)?)?;
    }
    Ok(())
}

/// The container of an execution environment, started with the function's files in it.
pub struct Started {
    pub environment: Environment,
    pub reach: Reach,
    pub image: String,
    /// Set when the function's architecture is not the engine's.
    pub platform: Option<String>,
}

impl Started {
    /// The program and arguments that run `inside` (a path in the container) in it as Lambda's
    /// user, through this tool's relay.
    pub fn relay(&self, plan: &ContainerPlan, inside: String) -> (PathBuf, Vec<OsString>) {
        let spec = ExecSpec {
            engine: plan.engine.clone(),
            container: self.environment.name.clone(),
            user: format!("{}:{}", SANDBOX_USER.0, SANDBOX_USER.1),
            workdir: TASK_ROOT.into(),
            command: vec![inside],
            relay_only: plan.relay_env.iter().map(|(k, _)| k.clone()).collect(),
        };
        (plan.relay.clone(), spec.relay_args())
    }

    /// `x86_64 in a container of IMAGE`, for the status line.
    pub fn describe(&self, arch: Option<Arch>) -> String {
        format!(
            "{}{} in a container of {}",
            arch.map_or_else(|| "not an ELF executable".to_owned(), |a| a.to_string()),
            match &self.platform {
                Some(platform) => format!(", {platform} under the engine's emulation,"),
                None => String::new(),
            },
            self.image
        )
    }
}

/// Makes sure of the image (the build image, built when missing, for the platform of `arch`),
/// checks that the engine can reach back to this machine (by a bind mount of `probe`'s
/// directory), and starts the container with `/var/task` and `/opt` (the extracted zip and
/// layers at `files`) in it. An image run as it ships (`--image`) gets `/opt` only, and its
/// `bootstrap` is copied out into the task root here, for the checks Lambda's exec makes.
pub fn start(
    plan: &ContainerPlan,
    probe: &Path,
    arch: Option<Arch>,
    memory_mb: u32,
    (task_root, opt): ((&Path, &UnixEntries), (&Path, &UnixEntries)),
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Started> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start an async runtime for Docker: {e}"))?;
    let no_engine = |e: DockerError| match plan.chosen {
        Chosen::HostDefault(os) => ContainerError::NoEngine {
            os,
            source: Box::new(e),
        },
        Chosen::Asked => ContainerError::Docker(e),
    };
    let endpoint = engine::resolve(&plan.engine, &engine::Disk)
        .map_err(|e| no_engine(DockerError::from(e)))?;
    let docker = runtime
        .block_on(engine::connect(&endpoint))
        .map_err(no_engine)?;
    reporter.detail("Docker", format!("engine at {}", endpoint.describe()));
    let info = runtime
        .block_on(docker.info())
        .map_err(|e| ContainerError::Docker(engine::failure("read the engine's information", e)))?;
    let engine_arch = info.architecture.as_deref().and_then(engine_arch);

    let (image_plan, platform) = plan.image(arch, engine_arch)?;
    let image = image_plan.name().to_owned();
    runtime.block_on(ensure_image(
        &docker,
        plan,
        &image_plan,
        arch.map(self::platform),
        reporter,
        interrupt,
    ))?;
    interrupt.check()?;

    let name = docker_backend::container_name();
    let sees_files = runtime.block_on(files::sees(
        &docker,
        &image,
        probe,
        &format!("{name}-probe"),
    ))?;
    let facts = EngineFacts {
        sees_files,
        operating_system: info.operating_system.clone().unwrap_or_default(),
        docker_rootless: info
            .security_options
            .iter()
            .flatten()
            .any(|o| o.split(',').any(|part| part == "name=rootless")),
    };
    let reach = reach(std::env::consts::OS, &facts).map_err(|why| match why {
        Unreachable::Remote => ContainerError::Remote {
            engine: endpoint.describe(),
        },
        Unreachable::RootlessDocker => ContainerError::RootlessDocker {
            engine: endpoint.describe(),
        },
    })?;

    let spec = EnvironmentSpec {
        name,
        image: image.clone(),
        platform: platform.clone(),
        memory_mb,
        reach,
    };
    reporter.command(&spec.as_docker_run());
    let files = match plan.shipped {
        true => trees_tar(&[(opt, OPT)]),
        false => files_tar(task_root, opt),
    }
    .map_err(|e| anyhow::anyhow!("cannot pack {TASK_ROOT} and {OPT} for the container: {e}"))?;
    let mut environment = Environment::create(runtime, docker, &spec)?;
    environment.start(&spec, files, interrupt)?;
    if plan.shipped {
        environment.copy_out_bootstrap(task_root.0)?;
    }
    if reach == Reach::HostNetwork {
        environment.find_peak_file();
    }
    Ok(Started {
        environment,
        reach,
        image,
        platform,
    })
}

/// The image to run: the build image is built when missing; a Lambda image (`--image`) is
/// pulled from its registry when the engine lacks it, as `docker run` pulls (for `--arch`'s
/// platform when given); a `--docker-image` must be in the engine.
async fn ensure_image(
    docker: &Docker,
    plan: &ContainerPlan,
    image_plan: &ImagePlan,
    platform: Option<String>,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<()> {
    let name = image_plan.name();
    match &image_plan.recipe {
        Some(recipe) => Ok(image::ensure(docker, recipe, reporter, interrupt).await?),
        None if image::exists(docker, name).await? => Ok(()),
        None if plan.shipped => {
            let config_dir = plan.engine.config_dir();
            pull(docker, name, platform, config_dir.as_deref(), reporter).await
        }
        None => Err(DockerError::ImageMissing(name.to_owned()).into()),
    }
}

/// Pulls `name` into the engine with the docker CLI's credentials for its registry. A name
/// without a registry is not pulled (Docker Hub's images are no Lambda images).
async fn pull(
    docker: &Docker,
    name: &str,
    platform: Option<String>,
    config_dir: Option<&Path>,
    reporter: &Reporter,
) -> Result<()> {
    let Ok(reference) = crate::image::registry::parse(name) else {
        return Err(ContainerError::NoImage(name.to_owned()));
    };
    let failed = |reason: String| ContainerError::Pull {
        image: name.to_owned(),
        reason,
    };
    let registry = reference.resolve_registry().to_owned();
    let credentials =
        match crate::image::registry::credentials(&registry, config_dir).map_err(failed)? {
            oci_client::secrets::RegistryAuth::Basic(username, password) => {
                Some(bollard::auth::DockerCredentials {
                    username: Some(username),
                    password: Some(password),
                    serveraddress: Some(registry),
                    ..Default::default()
                })
            }
            oci_client::secrets::RegistryAuth::Bearer(token) => {
                Some(bollard::auth::DockerCredentials {
                    identitytoken: Some(token),
                    serveraddress: Some(registry),
                    ..Default::default()
                })
            }
            _ => None,
        };
    reporter.status(
        "Pulling",
        match &platform {
            Some(platform) => format!("{name} ({platform}), not in the engine"),
            None => format!("{name}, not in the engine"),
        },
    );
    // Without a tag or digest the engine would pull every tag.
    let mut options = bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(name);
    if reference.tag().is_none() && reference.digest().is_none() {
        options = options.tag("latest");
    }
    if let Some(platform) = &platform {
        options = options.platform(platform);
    }
    let mut progress = docker.create_image(Some(options.build()), None, credentials);
    while let Some(step) = futures_util::StreamExt::next(&mut progress).await {
        step.map_err(|e| failed(crate::image::registry::describe(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_runs_the_function_itself_unless_asked_and_other_hosts_use_a_container() {
        assert_eq!(container_mode("linux", false), None);
        assert_eq!(container_mode("linux", true), Some(Chosen::Asked));
        assert_eq!(
            container_mode("macos", false),
            Some(Chosen::HostDefault("macos"))
        );
        assert_eq!(
            container_mode("windows", false),
            Some(Chosen::HostDefault("windows"))
        );
        assert_eq!(container_mode("macos", true), Some(Chosen::Asked));
    }

    fn facts(sees_files: bool, os: &str, rootless: bool) -> EngineFacts {
        EngineFacts {
            sees_files,
            operating_system: os.into(),
            docker_rootless: rootless,
        }
    }

    #[test]
    fn the_way_back_is_the_host_network_on_linux_and_the_gateway_from_a_vm() {
        let linux = facts(true, "Ubuntu 24.04 LTS", false);
        assert_eq!(reach("linux", &linux), Ok(Reach::HostNetwork));
        assert_eq!(
            reach("macos", &facts(true, "Docker Desktop", false)),
            Ok(Reach::Gateway)
        );
        assert_eq!(
            reach("macos", &facts(true, "fedora", false)),
            Ok(Reach::Gateway)
        );
        assert_eq!(
            reach("windows", &facts(true, "Docker Desktop", false)),
            Ok(Reach::Gateway)
        );
        // Docker Desktop for Linux runs its engine in a VM too.
        assert_eq!(
            reach("linux", &facts(true, "Docker Desktop", false)),
            Ok(Reach::Gateway)
        );
        assert_eq!(
            reach(
                "linux",
                &facts(false, "Debian GNU/Linux 12 (bookworm)", false)
            ),
            Err(Unreachable::Remote)
        );
        assert_eq!(
            reach("macos", &facts(false, "Docker Desktop", false)),
            Err(Unreachable::Remote)
        );
        assert_eq!(
            reach("linux", &facts(true, "Ubuntu", true)),
            Err(Unreachable::RootlessDocker)
        );

        let api: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        assert_eq!(Reach::HostNetwork.runtime_api(api), "127.0.0.1:41234");
        assert_eq!(
            Reach::Gateway.runtime_api(api),
            "host.docker.internal:41234"
        );
    }

    #[test]
    fn the_dockerfile_is_looked_for_in_the_package_and_workspace_roots() {
        let files = [
            ("/w/Cargo.toml", "[workspace]\nmembers = [\"f\"]\n"),
            ("/w/f/Cargo.toml", "[package]\nname = \"f\"\n"),
        ];
        let is_file = |p: &Path| files.iter().any(|(f, _)| Path::new(f) == p);
        let read = |p: &Path| {
            files
                .iter()
                .find(|(f, _)| Path::new(f) == p)
                .map(|(_, t)| t.to_string())
        };
        assert_eq!(
            project_roots(Path::new("/w/f/src"), is_file, read),
            (PathBuf::from("/w/f"), PathBuf::from("/w"))
        );
        assert_eq!(
            project_roots(Path::new("/w"), is_file, read),
            (PathBuf::from("/w"), PathBuf::from("/w"))
        );
        assert_eq!(
            project_roots(Path::new("/elsewhere"), is_file, read),
            (PathBuf::from("/elsewhere"), PathBuf::from("/elsewhere"))
        );
    }

    #[test]
    fn without_an_engine_a_mac_is_told_how_to_get_one() {
        let unreachable = DockerError::Lost {
            action: "connect".into(),
            reason: "no socket".into(),
        };
        let error = ContainerError::NoEngine {
            os: "macos",
            source: Box::new(unreachable),
        };
        assert!(
            error.to_string().starts_with(
                "container mode needs a Docker engine, the default on macos (a macos host cannot \
                 run a Linux `bootstrap` itself)"
            ),
            "{error}"
        );
        let help = error.help().unwrap();
        // The engine's own help first, how to get one last.
        assert!(help.lines().all(|line| !line.is_empty()), "{help}");
        let last = help.lines().last().unwrap();
        assert!(
            last.starts_with("or get an engine: Docker Desktop"),
            "{help}"
        );
        assert!(
            help.contains("podman machine init && podman machine start"),
            "{help}"
        );
        assert!(help.contains("colima start"), "{help}");
        assert!(!help.contains("leave out `--docker`"), "{help}");
    }

    #[test]
    fn the_peak_is_read_from_the_containers_cgroup_on_this_machine() {
        let id = "4f2a9c";
        let v1 = "12:pids:/docker/4f2a9c\n4:memory:/docker/4f2a9c\n0::/docker/4f2a9c\n";
        assert_eq!(
            peak_file_in(v1, id).unwrap(),
            Path::new("/sys/fs/cgroup/memory/docker/4f2a9c/memory.max_usage_in_bytes")
        );
        let v2 = "0::/system.slice/docker-4f2a9c.scope\n";
        assert_eq!(
            peak_file_in(v2, id).unwrap(),
            Path::new("/sys/fs/cgroup/system.slice/docker-4f2a9c.scope/memory.peak")
        );
        // Another process's cgroup (a pid of a VM's engine, here a process of this machine).
        assert_eq!(peak_file_in("0::/user.slice/session-1.scope\n", id), None);
        assert_eq!(peak_file_in("", id), None);
    }

    #[test]
    fn the_container_is_data_printed_as_the_docker_run_it_equals() {
        let spec = EnvironmentSpec {
            name: "cargo-lambda-build-1-a".into(),
            image: "cargo-lambda-build:0123".into(),
            platform: Some("linux/arm64".into()),
            memory_mb: 256,
            reach: Reach::HostNetwork,
        };
        assert_eq!(
            spec.as_docker_run().to_string(),
            "docker run --rm --interactive --name cargo-lambda-build-1-a \
             --label 'cargo-lambda-build=invoke' --network host --memory 256m --memory-swap 256m \
             --platform linux/arm64 --entrypoint /bin/sh cargo-lambda-build:0123 -c \
             'read -r _; exit 0'"
        );
        let body = spec.create_body();
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(256 << 20));
        assert_eq!(host.memory_swap, Some(256 << 20));
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(host.auto_remove, Some(true));
        assert!(
            host.mounts.is_none() && host.binds.is_none(),
            "no bind mount"
        );
        assert_eq!(body.labels.unwrap()["cargo-lambda-build"], "invoke");
    }

    // Unix modes and links in the task root.
    #[cfg(unix)]
    #[test]
    fn the_files_go_in_at_var_task_and_opt_with_their_modes_owned_by_root() {
        use std::os::unix::fs::PermissionsExt;
        let task = tempfile::tempdir().unwrap();
        let opt = tempfile::tempdir().unwrap();
        std::fs::write(task.path().join("bootstrap"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            task.path().join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(task.path().join("lib")).unwrap();
        std::fs::write(task.path().join("lib/libx.so.1"), b"x").unwrap();
        std::os::unix::fs::symlink("libx.so.1", task.path().join("lib/libx.so")).unwrap();
        std::fs::create_dir(opt.path().join("extensions")).unwrap();
        std::fs::write(opt.path().join("extensions/logwatch"), b"e").unwrap();

        let none = UnixEntries::default();
        let tar = files_tar((task.path(), &none), (opt.path(), &none)).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, u64, Option<PathBuf>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap() & 0o7777,
                    h.size().unwrap(),
                    e.link_name().unwrap().map(|l| l.into_owned()),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "var/task/",
                "var/task/bootstrap",
                "var/task/lib/",
                "var/task/lib/libx.so",
                "var/task/lib/libx.so.1",
                "opt/",
                "opt/extensions/",
                "opt/extensions/logwatch",
            ]
        );
        assert_eq!(entries[1].1, 0o755);
        assert_eq!(entries[1].2, 10);
        assert_eq!(entries[3].3.as_deref(), Some(Path::new("libx.so.1")));
    }

    /// Where the file system keeps no modes and no links (Windows), the extraction's record
    /// gives them; where it does, it wins, and a link it holds is not added twice.
    #[test]
    fn recorded_modes_and_links_reach_the_container() {
        let task = tempfile::tempdir().unwrap();
        let opt = tempfile::tempdir().unwrap();
        std::fs::write(task.path().join("bootstrap"), b"#!/bin/sh\n").unwrap();
        crate::host::set_path_mode(&task.path().join("bootstrap"), 0o755).unwrap();
        std::fs::create_dir(task.path().join("lib")).unwrap();
        std::fs::write(task.path().join("lib/libx.so.1"), b"x").unwrap();
        crate::host::set_path_mode(&task.path().join("lib/libx.so.1"), 0o644).unwrap();
        let recorded = UnixEntries {
            modes: [("bootstrap".into(), 0o755), ("lib/libx.so.1".into(), 0o644)].into(),
            links: [("lib/libx.so".into(), "libx.so.1".into())].into(),
        };
        let tar = files_tar(
            (task.path(), &recorded),
            (opt.path(), &UnixEntries::default()),
        )
        .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap() & 0o777,
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let find = |name: &str| entries.iter().find(|e| e.0 == name).unwrap().clone();
        assert_eq!(find("var/task/bootstrap").1, 0o755);
        assert_eq!(find("var/task/lib/libx.so.1").1, 0o644);
        assert_eq!(find("var/task/lib/libx.so").2.as_deref(), Some("libx.so.1"));
        assert_eq!(
            entries.iter().filter(|e| e.0.ends_with("libx.so")).count(),
            1
        );
    }
}
