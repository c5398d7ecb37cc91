//! The build container: what it mounts, which environment and user it gets, and the cargo
//! command it runs, decided as data ([`ContainerSpec`]); then creating it, streaming its output,
//! and removing it whatever happens.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountTmpfsOptions, MountType, MountVolumeOptions,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, RemoveContainerOptions, WaitContainerOptions,
};
use futures_util::{Stream, StreamExt};

use crate::build::{BuildError, Collector, Executable};
use crate::plan::{CargoArgs, Cmd};
use crate::report::Reporter;
use crate::signal::Interrupt;

use super::DockerError;

type Result<T, E = BuildError> = std::result::Result<T, E>;

use super::engine::failure;
use super::image::LABEL;
use super::sccache::{self, Sccache};

/// `HOME` inside: a tmpfs anyone may write to, since the build runs as the host user's uid, which
/// has no home in the image.
pub const CONTAINER_HOME: &str = "/lambda-build/home";
/// `CARGO_HOME` inside: a writable tmpfs (cargo takes its package-cache lock there) with the
/// host's registry and git caches mounted in it.
pub const CONTAINER_CARGO_HOME: &str = "/lambda-build/cargo";

/// The lock files in `CARGO_HOME` that guard the registry caches (`.package-cache-mutate` since
/// cargo 1.74).
pub const PACKAGE_CACHE_LOCKS: [&str; 2] = [".package-cache", ".package-cache-mutate"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host directory at the same path inside, so that the paths in Cargo.lock, in cargo's
    /// messages and in the binary's panic locations are the host's.
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    /// An empty directory in memory that anyone may write to.
    Tmpfs { target: PathBuf },
    /// A named volume on the engine, created with the tool's label when it does not exist.
    Volume { name: String, target: PathBuf },
}

/// Everything about the build container, decided before it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `uid:gid`, or `None` to keep the image's user (root, which a rootless engine maps to the
    /// host user).
    pub user: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    /// `cargo build ...`, offline.
    pub command: Vec<String>,
    /// The memory limit in bytes, swap included, when the user set one (`--docker-memory`).
    pub memory: Option<u64>,
    /// `none` (offline), or `default` when a remote sccache needs to reach its cache.
    pub network: String,
}

/// What the spec is made from: the plan's facts plus what was found on the host.
#[derive(Debug, Clone)]
pub struct ContainerInputs<'a> {
    pub name: String,
    pub image: String,
    pub workspace_root: &'a Path,
    /// `<target-dir>/lambda-build/docker/<arch>`.
    pub target_dir: &'a Path,
    /// The host's `CARGO_HOME`.
    pub cargo_home: &'a Path,
    /// Directories outside the workspace that the build reads (path dependencies).
    pub read_only: &'a [PathBuf],
    /// The host's uid and gid, when the container should run as them.
    pub user: Option<(u32, u32)>,
    /// The host process's environment, filtered by [`passthrough_env`].
    pub host_env: &'a [(String, String)],
    /// The host's current directory.
    pub cwd: &'a Path,
    /// The plan's cargo command (`build --message-format ... --target ...`).
    pub cargo: &'a CargoArgs,
    pub memory: Option<u64>,
    /// sccache's settings, when the host's `RUSTC_WRAPPER` names it.
    pub sccache: Option<&'a Sccache>,
}

pub fn spec(inputs: &ContainerInputs) -> ContainerSpec {
    let bind = |source: &Path, target: &Path, read_only| MountSpec::Bind {
        source: source.to_path_buf(),
        target: target.to_path_buf(),
        read_only,
    };
    let cargo_home = Path::new(CONTAINER_CARGO_HOME);
    let mut mounts = vec![
        bind(inputs.workspace_root, inputs.workspace_root, false),
        bind(inputs.target_dir, inputs.target_dir, false),
        MountSpec::Tmpfs {
            target: CONTAINER_HOME.into(),
        },
        MountSpec::Tmpfs {
            target: cargo_home.into(),
        },
        // Writable: cargo unpacks `.crate` files into registry/src during the build.
        bind(
            &inputs.cargo_home.join("registry"),
            &cargo_home.join("registry"),
            false,
        ),
        bind(
            &inputs.cargo_home.join("git"),
            &cargo_home.join("git"),
            false,
        ),
    ];
    // cargo's package-cache locks (flock), shared with the host's cargo and other containers,
    // so two builds never unpack the same crate at once.
    mounts.extend(
        PACKAGE_CACHE_LOCKS
            .iter()
            .map(|lock| bind(&inputs.cargo_home.join(lock), &cargo_home.join(lock), false)),
    );
    mounts.extend(
        inputs
            .read_only
            .iter()
            .filter(|dir| !dir.starts_with(inputs.workspace_root))
            .map(|dir| bind(dir, dir, true)),
    );
    if let Some(sccache) = inputs.sccache {
        mounts.extend(sccache.dir.iter().map(|dir| bind(dir, dir, false)));
        mounts.extend(sccache.files.iter().map(|file| bind(file, file, true)));
    }

    let mut env = vec![
        ("HOME".to_string(), CONTAINER_HOME.to_string()),
        ("CARGO_HOME".to_string(), CONTAINER_CARGO_HOME.to_string()),
    ];
    env.extend(passthrough_env(inputs.host_env.iter().cloned()));
    if let Some(sccache) = inputs.sccache {
        env.extend(sccache.env.iter().cloned());
    }
    env.extend(inputs.cargo.env.iter().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    }));

    // cargo reads `.cargo/config.toml` from the current directory upwards: keep the host's when
    // the container has it.
    let workdir = if inputs.cwd.starts_with(inputs.workspace_root) {
        inputs.cwd.to_path_buf()
    } else {
        inputs.workspace_root.to_path_buf()
    };

    let command: Vec<String> = std::iter::once("cargo".to_string())
        .chain(
            inputs
                .cargo
                .in_container(inputs.target_dir)
                .build_args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    ContainerSpec {
        name: inputs.name.clone(),
        image: inputs.image.clone(),
        user: inputs.user.map(|(uid, gid)| format!("{uid}:{gid}")),
        mounts,
        env,
        workdir,
        command: match inputs.sccache {
            Some(_) => sccache::wrap(command),
            None => command,
        },
        memory: inputs.memory,
        network: match inputs.sccache.and_then(|s| s.remote) {
            Some(_) => "default".into(),
            None => "none".into(),
        },
    }
}

/// The container for an engine that cannot see the host's files: the project, the crates and
/// the target directory are the volumes `[src, registry, target]` (see `sync`), the host's
/// paths live under `sync::SRC_ROOT`, and the deletions the last upload asked for happen before
/// cargo starts.
pub fn copy_spec(inputs: &ContainerInputs, volumes: &[String; 3]) -> ContainerSpec {
    use super::sync::{PRELUDE, REGISTRY_ROOT, SRC_ROOT, TARGET_ROOT, container_src};
    let mut spec = spec(inputs);
    let [src, registry, target] = volumes;
    let volume = |name: &String, target: &str| MountSpec::Volume {
        name: name.clone(),
        target: target.into(),
    };
    spec.mounts = vec![
        volume(src, SRC_ROOT),
        volume(target, TARGET_ROOT),
        MountSpec::Tmpfs {
            target: CONTAINER_HOME.into(),
        },
        MountSpec::Tmpfs {
            target: CONTAINER_CARGO_HOME.into(),
        },
        volume(registry, REGISTRY_ROOT),
    ];
    spec.workdir = container_src(&spec.workdir).into();
    let cargo = CargoArgs {
        manifest_path: container_src(&inputs.cargo.manifest_path).into(),
        ..inputs.cargo.in_container(Path::new(TARGET_ROOT))
    };
    spec.command = ["sh", "-c", PRELUDE, "sh", "cargo"]
        .into_iter()
        .map(String::from)
        .chain(
            cargo
                .build_args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    spec
}

/// The host variables the build needs: compiler flags and the `CARGO_*` settings the user made.
/// Not passed: host paths (`CARGO_HOME`, `CARGO_TARGET_DIR`, `RUSTC`, wrappers), linkers (the
/// image provides its own), registry credentials and network settings (the build is offline),
/// and the variables cargo sets for the programs it runs (`CARGO_PKG_*`, ...).
pub fn passthrough_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    const FLAGS: &[&str] = &[
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_BOOTSTRAP",
        "RUST_BACKTRACE",
        "SOURCE_DATE_EPOCH",
    ];
    const HOST_ONLY: &[&str] = &[
        "CARGO",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTC",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTDOC",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_MAKEFLAGS",
    ];
    const HOST_ONLY_PREFIXES: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_REGISTRY_",
        "CARGO_REGISTRIES_",
        "CARGO_HTTP_",
        "CARGO_NET_",
        "CARGO_SOURCE_",
        "CARGO_INSTALL_",
        "CARGO_ALIAS_",
    ];
    let secret = crate::redact::is_secret_name;
    // `CARGO_TARGET_<TRIPLE>_LINKER` / `_RUNNER` / `_AR` name host programs.
    let host_tool = |name: &str| {
        name.starts_with("CARGO_TARGET_")
            && ["_LINKER", "_RUNNER", "_AR"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
    };
    let mut kept: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| {
            if secret(name) {
                return false;
            }
            FLAGS.contains(&name.as_str())
                || (name.starts_with("CARGO_")
                    && !HOST_ONLY.contains(&name.as_str())
                    && !HOST_ONLY_PREFIXES.iter().any(|p| name.starts_with(p))
                    && !host_tool(name))
        })
        .collect();
    kept.sort();
    kept
}

impl ContainerSpec {
    /// The same container as a `docker run` command, for `-v` (and to reproduce a build by hand).
    pub fn as_docker_run(&self) -> Cmd {
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--rm".into(),
            "--name".into(),
            self.name.clone().into(),
            "--label".into(),
            format!("{LABEL}=build").into(),
            "--network".into(),
            self.network.clone().into(),
        ];
        if let Some(user) = &self.user {
            args.extend(["--user".into(), user.clone().into()]);
        }
        if let Some(bytes) = self.memory {
            let bytes = bytes.to_string();
            args.extend([
                "--memory".into(),
                bytes.clone().into(),
                "--memory-swap".into(),
                bytes.into(),
            ]);
        }
        for mount in &self.mounts {
            let text = match mount {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => format!(
                    "type=bind,source={},target={}{}",
                    source.display(),
                    target.display(),
                    if *read_only { ",readonly" } else { "" }
                ),
                MountSpec::Tmpfs { target } => {
                    format!("type=tmpfs,target={},tmpfs-mode=1777", target.display())
                }
                MountSpec::Volume { name, target } => format!(
                    "type=volume,source={name},target={},volume-label={LABEL}=volume",
                    target.display()
                ),
            };
            args.extend(["--mount".into(), text.into()]);
        }
        for (name, value) in &self.env {
            args.extend(["--env".into(), format!("{name}={value}").into()]);
        }
        args.extend(["--workdir".into(), self.workdir.clone().into()]);
        args.push(self.image.clone().into());
        args.extend(self.command.iter().map(OsString::from));
        Cmd {
            program: "docker".into(),
            args,
            env: Vec::new(),
            cwd: self.workdir.clone(),
        }
    }

    fn create_body(&self) -> ContainerCreateBody {
        let mounts = self
            .mounts
            .iter()
            .map(|mount| match mount {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => Mount {
                    typ: Some(MountType::BIND),
                    source: Some(source.to_string_lossy().into_owned()),
                    target: Some(target.to_string_lossy().into_owned()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                MountSpec::Tmpfs { target } => Mount {
                    typ: Some(MountType::TMPFS),
                    target: Some(target.to_string_lossy().into_owned()),
                    tmpfs_options: Some(MountTmpfsOptions {
                        mode: Some(0o1777),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                MountSpec::Volume { name, target } => Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(name.clone()),
                    target: Some(target.to_string_lossy().into_owned()),
                    volume_options: Some(MountVolumeOptions {
                        labels: Some(HashMap::from([(LABEL.to_string(), "volume".to_string())])),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            })
            .collect();
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(self.command.clone()),
            // The image's entrypoint (if any) would wrap cargo in something else.
            entrypoint: Some(Vec::new()),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            user: self.user.clone(),
            working_dir: Some(self.workdir.to_string_lossy().into_owned()),
            labels: Some(HashMap::from([(LABEL.to_string(), "build".to_string())])),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: Some(self.network.clone()),
                // Swap equal to the limit: none on top, so the limit is what the build gets.
                memory: self.memory.map(saturating_i64),
                memory_swap: self.memory.map(saturating_i64),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn saturating_i64(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Creates the container, streams its output, waits for it, and removes it: after success,
/// failure or an interrupt alike.
pub async fn run(
    docker: &Docker,
    spec: &ContainerSpec,
    watch: Watch<'_>,
) -> Result<Vec<Executable>> {
    create(docker, spec).await?;
    let reporter = watch.reporter;
    let result = attach_start_and_wait(docker, spec, watch).await;
    finish(docker, spec, result, reporter).await
}

/// What a build container's run is watched for: the executables (the collector knows how cargo
/// names the packages inside), its output for the reporter, and an interrupt.
pub struct Watch<'a> {
    pub collector: Collector<'a>,
    pub reporter: &'a Reporter,
    pub interrupt: &'a Interrupt,
}

pub async fn create(docker: &Docker, spec: &ContainerSpec) -> Result<()> {
    let options = CreateContainerOptions {
        name: Some(spec.name.clone()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), spec.create_body())
        .await
        .map(|_| ())
        .map_err(|e| {
            failure(
                format!("create the build container from image `{}`", spec.image),
                e,
            )
            .into()
        })
}

/// Removes the container after `result`, whatever it is; a container that stays is reported.
pub async fn finish<T>(
    docker: &Docker,
    spec: &ContainerSpec,
    result: Result<T>,
    reporter: &Reporter,
) -> Result<T> {
    reporter.finish_progress();
    let removed = remove(docker, &spec.name).await;
    match (result, removed) {
        (Err(e), Err(left)) => {
            // The error says what went wrong; the user must still learn what stayed behind.
            reporter.warn(format!(
                "{left}; once the engine answers, remove it with `docker rm -f {}`",
                spec.name
            ));
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(built), Ok(())) => Ok(built),
    }
}

/// Force-removes (kills first when it runs). A container that is already gone is fine.
pub async fn remove(docker: &Docker, name: &str) -> Result<()> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    // Retried briefly: an engine can answer 409 while the container is still being stopped.
    let mut last = None;
    for _ in 0..20 {
        match docker.remove_container(name, Some(options.clone())).await {
            Ok(()) => return Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let action = format!("remove the build container `{name}`");
    Err(match last {
        Some(e) => failure(action, e),
        None => DockerError::Engine {
            action,
            message: String::new(),
        },
    }
    .into())
}

/// Starts the created container, passes its output on (cargo's messages to the collector),
/// waits for it to stop, and says why it failed when it did.
pub async fn attach_start_and_wait(
    docker: &Docker,
    spec: &ContainerSpec,
    watch: Watch<'_>,
) -> Result<Vec<Executable>> {
    let Watch {
        mut collector,
        reporter,
        interrupt,
    } = watch;
    // Attached before the start, so no line of output is missed.
    let attach = AttachContainerOptions {
        stream: true,
        stdout: true,
        stderr: true,
        logs: true,
        ..Default::default()
    };
    let output = docker
        .attach_container(&spec.name, Some(attach))
        .await
        .map_err(engine_error("attach to the build container"))?
        .output;
    interrupt.check()?;
    docker
        .start_container(&spec.name, None)
        .await
        .map_err(engine_error("start the build container"))?;

    reporter.start_progress();
    let sigkill = pass_output(output, &mut collector, reporter, interrupt).await?;
    reporter.finish_progress();

    let code = wait_for_exit(docker, &spec.name, interrupt).await?;
    interrupt.check()?;
    if code != 0 {
        // cargo may survive its build script or rustc being killed, and exit 101 as for a
        // compile error: only the engine knows that memory ran out.
        if oom_killed(docker, &spec.name, sigkill).await {
            return Err(DockerError::OutOfMemory { limit: spec.memory }.into());
        }
        return Err(DockerError::ContainerBuild {
            code,
            image: spec.image.clone(),
        }
        .into());
    }
    collector.finish()
}

fn engine_error(action: &str) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let action = action.to_string();
    move |e| failure(action, e)
}

/// The container's output until it closes: stderr to the user, stdout (cargo's JSON messages,
/// and sccache's statistics) to the collector. Says whether cargo saw a process die of SIGKILL:
/// it names the signal when a build script or rustc is killed, the OOM killer's mark.
async fn pass_output(
    mut output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    collector: &mut Collector<'_>,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<bool> {
    let mut stdout = Lines::default();
    let mut stderr = Lines::default();
    let mut sigkill = false;
    let mut on_stderr = |line: &str| {
        sigkill |= line.contains("SIGKILL");
        reporter.cargo_line(line);
    };
    let mut on_stdout = |line: &str| match sccache::stats_summary(line) {
        Some((hits, misses)) => {
            reporter.status("Sccache", format!("{hits} cache hits, {misses} misses"))
        }
        None => collector.read(line.as_bytes()),
    };
    loop {
        interrupt.check()?;
        let chunk = match tokio::time::timeout(Duration::from_millis(100), output.next()).await {
            Err(_elapsed) => continue,
            Ok(None) => break,
            Ok(Some(chunk)) => chunk.map_err(engine_error("read the build container's output"))?,
        };
        match chunk {
            LogOutput::StdOut { message } => stdout.push(&message, &mut on_stdout),
            LogOutput::StdErr { message } | LogOutput::Console { message } => {
                stderr.push(&message, &mut on_stderr)
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    stdout.finish(&mut on_stdout);
    stderr.finish(&mut on_stderr);
    Ok(sigkill)
}

/// The container's exit code, once it stopped.
async fn wait_for_exit(docker: &Docker, name: &str, interrupt: &Interrupt) -> Result<i64> {
    let wait = WaitContainerOptions {
        condition: "not-running".into(),
    };
    let mut waiting = docker.wait_container(name, Some(wait));
    loop {
        interrupt.check()?;
        match tokio::time::timeout(Duration::from_millis(100), waiting.next()).await {
            Err(_elapsed) => continue,
            Ok(Some(Ok(response))) => return Ok(response.status_code),
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
                return Ok(code);
            }
            Ok(Some(Err(e))) => return Err(engine_error("wait for the build container")(e).into()),
            Ok(None) => {
                return Err(DockerError::Lost {
                    action: "wait for the build container".into(),
                    reason: "the engine closed the connection".into(),
                }
                .into());
            }
        }
    }
}

/// Whether the engine killed a process of the container for memory. An engine that does not say
/// counts as no. The engine learns of the OOM kill from an event that can arrive after the one for
/// the container's exit (moby#18510): when cargo saw a process die of SIGKILL, it is asked again
/// for up to a second. Other failures (a compile error) are not slowed down.
async fn oom_killed(docker: &Docker, name: &str, sigkill: bool) -> bool {
    let asks = if sigkill { 10 } else { 1 };
    for ask in 0..asks {
        if ask > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let flagged = docker
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|container| container.state)
            .and_then(|state| state.oom_killed)
            .unwrap_or(false);
        if flagged {
            return true;
        }
    }
    false
}

/// Splits a byte stream into lines; the engine's chunks do not end on line boundaries.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8], each: &mut impl FnMut(&str)) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            each(text.trim_end_matches(['\n', '\r']));
        }
    }

    fn finish(&mut self, each: &mut impl FnMut(&str)) {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            each(text.trim_end_matches('\r'));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cargo() -> CargoArgs {
        CargoArgs {
            program: "/home/me/.cargo/bin/cargo".into(),
            cwd: "/home/me/fn".into(),
            manifest_path: "/home/me/fn/Cargo.toml".into(),
            target: crate::arch::Arch::Arm64,
            profile: "release".into(),
            packages: vec!["fn".into()],
            bins: vec!["fn".into()],
            examples: Vec::new(),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            locked: false,
            offline: false,
            frozen: false,
            target_dir: Some("/home/me/fn/t".into()),
            verbosity: crate::env::Verbosity::Normal,
            color: false,
            env: Vec::new(),
        }
    }

    fn inputs<'a>(
        cargo: &'a CargoArgs,
        read_only: &'a [PathBuf],
        host_env: &'a [(String, String)],
    ) -> ContainerInputs<'a> {
        ContainerInputs {
            name: "cargo-lambda-build-1-abc".into(),
            image: "cargo-lambda-build:0123456789abcdef".into(),
            workspace_root: Path::new("/home/me/fn"),
            target_dir: Path::new("/home/me/fn/t/lambda-build/docker/arm64"),
            cargo_home: Path::new("/home/me/.cargo"),
            read_only,
            user: Some((1000, 1000)),
            host_env,
            cwd: Path::new("/home/me/fn/src"),
            cargo,
            memory: None,
            sccache: None,
        }
    }

    #[test]
    fn a_remote_build_reads_volumes_at_container_paths_and_deletes_first() {
        let cargo = cargo();
        let outside = [PathBuf::from("/home/me/shared/util")];
        let volumes = ["v-src".to_string(), "v-registry".into(), "v-target".into()];
        let spec = copy_spec(&inputs(&cargo, &outside, &[]), &volumes);
        // No bind mount at all: the engine sees none of the host's paths.
        assert!(
            spec.mounts
                .iter()
                .all(|m| !matches!(m, MountSpec::Bind { .. })),
            "{:?}",
            spec.mounts
        );
        let volume = |name: &str, target: &str| MountSpec::Volume {
            name: name.into(),
            target: target.into(),
        };
        assert!(spec.mounts.contains(&volume("v-src", "/lambda-build/src")));
        assert!(
            spec.mounts
                .contains(&volume("v-target", "/lambda-build/target"))
        );
        assert!(
            spec.mounts
                .contains(&volume("v-registry", "/lambda-build/cargo/registry"))
        );
        assert_eq!(spec.workdir, Path::new("/lambda-build/src/home/me/fn/src"));
        assert_eq!(spec.user.as_deref(), Some("1000:1000"));
        assert_eq!(spec.command[..2], ["sh", "-c"]);
        assert_eq!(spec.command[2], super::super::sync::PRELUDE);
        assert_eq!(
            spec.command[3..].join(" "),
            "sh cargo build --message-format json-render-diagnostics \
             --target aarch64-unknown-linux-gnu --profile release \
             --manifest-path /lambda-build/src/home/me/fn/Cargo.toml -p fn --bin fn --offline \
             --target-dir /lambda-build/target --color never"
        );
        let shown = spec.as_docker_run().to_string();
        assert!(
            shown.contains(
                "--mount 'type=volume,source=v-src,target=/lambda-build/src,\
                 volume-label=cargo-lambda-build=volume'"
            ),
            "{shown}"
        );
        let body = spec.create_body();
        let mounts = body.host_config.unwrap().mounts.unwrap();
        let labels = mounts[0].volume_options.as_ref().unwrap().labels.as_ref();
        assert_eq!(
            labels.unwrap().get(LABEL).map(String::as_str),
            Some("volume")
        );
    }

    #[test]
    fn the_container_mounts_the_project_caches_and_outside_path_dependencies() {
        let cargo = cargo();
        let outside = [
            PathBuf::from("/home/me/shared/util"),
            "/home/me/fn/inner".into(),
        ];
        let spec = spec(&inputs(&cargo, &outside, &[]));
        let bind = |s: &str, t: &str, ro| MountSpec::Bind {
            source: s.into(),
            target: t.into(),
            read_only: ro,
        };
        assert_eq!(
            spec.mounts,
            [
                bind("/home/me/fn", "/home/me/fn", false),
                bind(
                    "/home/me/fn/t/lambda-build/docker/arm64",
                    "/home/me/fn/t/lambda-build/docker/arm64",
                    false
                ),
                MountSpec::Tmpfs {
                    target: "/lambda-build/home".into()
                },
                MountSpec::Tmpfs {
                    target: "/lambda-build/cargo".into()
                },
                bind(
                    "/home/me/.cargo/registry",
                    "/lambda-build/cargo/registry",
                    false
                ),
                bind("/home/me/.cargo/git", "/lambda-build/cargo/git", false),
                bind(
                    "/home/me/.cargo/.package-cache",
                    "/lambda-build/cargo/.package-cache",
                    false
                ),
                bind(
                    "/home/me/.cargo/.package-cache-mutate",
                    "/lambda-build/cargo/.package-cache-mutate",
                    false
                ),
                // Inside the workspace already: not mounted twice.
                bind("/home/me/shared/util", "/home/me/shared/util", true),
            ]
        );
        assert_eq!(spec.user.as_deref(), Some("1000:1000"));
        assert_eq!(spec.workdir, Path::new("/home/me/fn/src"));
    }

    #[test]
    fn cargo_builds_offline_into_the_container_target_dir() {
        let cargo = cargo();
        let spec = spec(&inputs(&cargo, &[], &[]));
        assert_eq!(
            spec.command.join(" "),
            "cargo build --message-format json-render-diagnostics \
             --target aarch64-unknown-linux-gnu --profile release \
             --manifest-path /home/me/fn/Cargo.toml -p fn --bin fn --offline \
             --target-dir /home/me/fn/t/lambda-build/docker/arm64 --color never"
        );
    }

    #[test]
    fn only_build_settings_reach_the_container() {
        let host: Vec<(String, String)> = [
            ("RUSTFLAGS", "-C debuginfo=1"),
            ("CARGO_PROFILE_RELEASE_LTO", "true"),
            ("CARGO_BUILD_JOBS", "2"),
            ("CARGO_INCREMENTAL", "0"),
            ("PATH", "/usr/bin"),
            ("HOME", "/home/me"),
            ("CARGO", "/home/me/.cargo/bin/cargo"),
            ("CARGO_HOME", "/home/me/.cargo"),
            ("CARGO_TARGET_DIR", "/home/me/t"),
            ("CARGO_REGISTRY_TOKEN", "secret"),
            ("CARGO_REGISTRIES_CORP_TOKEN", "secret"),
            (
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
                "/usr/bin/zig-cc",
            ),
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C x"),
            ("CARGO_PKG_NAME", "cargo-lambda-build"),
            ("CARGO_MANIFEST_DIR", "/src"),
            ("RUSTC_WRAPPER", "sccache"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let names: Vec<String> = passthrough_env(host).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "CARGO_BUILD_JOBS",
                "CARGO_INCREMENTAL",
                "CARGO_PROFILE_RELEASE_LTO",
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                "RUSTFLAGS"
            ]
        );
        let cargo = cargo();
        let host = [("RUSTFLAGS".to_string(), "-C debuginfo=1".to_string())];
        let spec = spec(&inputs(&cargo, &[], &host));
        assert_eq!(
            spec.env,
            [
                ("HOME".to_string(), "/lambda-build/home".to_string()),
                ("CARGO_HOME".to_string(), "/lambda-build/cargo".to_string()),
                ("RUSTFLAGS".to_string(), "-C debuginfo=1".to_string()),
            ]
        );
    }

    #[test]
    fn verbose_output_shows_an_equivalent_docker_run() {
        let cargo = cargo();
        let mut inputs = inputs(&cargo, &[], &[]);
        inputs.user = None;
        let shown = spec(&inputs).as_docker_run().to_string();
        assert!(
            shown.starts_with(
                "docker run --rm --name cargo-lambda-build-1-abc --label 'cargo-lambda-build=build' \
                 --network none --mount 'type=bind,source=/home/me/fn,target=/home/me/fn' "
            ),
            "{shown}"
        );
        assert!(!shown.contains("--user"), "{shown}");
        assert!(
            shown.contains("--mount 'type=tmpfs,target=/lambda-build/cargo,tmpfs-mode=1777'"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "--workdir /home/me/fn/src cargo-lambda-build:0123456789abcdef cargo build "
            ),
            "{shown}"
        );
    }

    #[test]
    fn sccache_gets_its_cache_its_settings_and_the_network_only_for_a_remote_cache() {
        let cargo = cargo();
        let local = Sccache {
            env: vec![("SCCACHE_DIR".into(), "/home/me/.cache/sccache".into())],
            dir: Some("/home/me/.cache/sccache".into()),
            files: Vec::new(),
            remote: None,
        };
        let mut inputs = inputs(&cargo, &[], &[]);
        let plain = spec(&inputs);
        assert_eq!(plain.command[0], "cargo");
        inputs.sccache = Some(&local);
        let spec = spec(&inputs);
        assert!(spec.mounts.contains(&MountSpec::Bind {
            source: "/home/me/.cache/sccache".into(),
            target: "/home/me/.cache/sccache".into(),
            read_only: false,
        }));
        assert!(spec.env.contains(&(
            "SCCACHE_DIR".to_string(),
            "/home/me/.cache/sccache".to_string()
        )));
        assert_eq!(&spec.command[..2], ["sh", "-c"]);
        assert_eq!(spec.command[4..], plain.command[..]);
        assert_eq!(spec.network, "none");
        let body = spec.create_body();
        assert_eq!(
            body.host_config.unwrap().network_mode.as_deref(),
            Some("none")
        );
        // `-v` shows the command without sccache's values.
        let shown = spec.as_docker_run().to_string();
        assert!(shown.contains("--env SCCACHE_DIR='***'"), "{shown}");
        assert!(!shown.contains("SCCACHE_DIR=/home"), "{shown}");

        let remote = Sccache {
            env: vec![("SCCACHE_BUCKET".into(), "b".into())],
            dir: None,
            files: vec!["/etc/sccache.toml".into()],
            remote: Some("S3"),
        };
        inputs.sccache = Some(&remote);
        let spec = super::spec(&inputs);
        assert_eq!(spec.network, "default");
        assert!(spec.mounts.contains(&MountSpec::Bind {
            source: "/etc/sccache.toml".into(),
            target: "/etc/sccache.toml".into(),
            read_only: true,
        }));
    }

    #[test]
    fn a_memory_limit_leaves_no_swap_on_top() {
        let cargo = cargo();
        let mut inputs = inputs(&cargo, &[], &[]);
        assert_eq!(
            spec(&inputs).create_body().host_config.unwrap().memory,
            None
        );
        inputs.memory = Some(512 << 20);
        let spec = spec(&inputs);
        let host = spec.create_body().host_config.unwrap();
        assert_eq!(host.memory, Some(536_870_912));
        assert_eq!(host.memory_swap, Some(536_870_912));
        let shown = spec.as_docker_run().to_string();
        assert!(
            shown.contains("--memory 536870912 --memory-swap 536870912"),
            "{shown}"
        );
    }

    #[test]
    fn output_is_split_into_whole_lines() {
        let mut lines = Lines::default();
        let mut seen = Vec::new();
        lines.push(b"one\ntw", &mut |l| seen.push(l.to_string()));
        lines.push(b"o\r\nthree", &mut |l| seen.push(l.to_string()));
        lines.finish(&mut |l| seen.push(l.to_string()));
        assert_eq!(seen, ["one", "two", "three"]);
    }
}
