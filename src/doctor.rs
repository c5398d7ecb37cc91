//! `cargo lambda-build doctor`: what a build and a local run need on this machine, each checked,
//! with the fix when something is missing.
//!
//! Gathering is apart from judging. [`Facts::gather`] runs the tools (rustc, cargo, zig,
//! getconf), looks programs up on PATH, asks the Docker engine and reads the project; [`checks`]
//! turns those facts into one [`Check`] each, pure functions that unit tests feed by hand. The
//! decisions are the build's and `invoke`'s own, not copies of them: the linker is
//! [`local::choose`] over the build's [`HostFacts`], a local run's emulator is
//! [`emulation::emulation`] over the programs and directories found, the engine is reached by
//! [`engine::connect`] and asked by [`files::decide`]'s probe whether it sees this machine's
//! files, and the settings are read by [`config`].
//!
//! An error is something a plain `cargo lambda-build` (x86_64, no `--docker`) needs; what only
//! `--arch arm64`, `--docker` or a local run needs is a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::arch::Arch;
use crate::build::docker::engine::{self, Endpoint, Transport};
use crate::build::docker::files::{self, Files};
use crate::build::docker::image::{LABEL, REPOSITORY};
use crate::build::local::{self, HostFacts, Linker};
use crate::build::{BuildError, INSTALL_RUST, zig};
use crate::cli::{Cli, DoctorArgs};
use crate::config::{self, BuildConfig, Layer};
use crate::config::{DockerFiles, MessageFormat};
use crate::env::{Env, Ui};
use crate::error::{Error, Result};
use crate::inspect::{AL2023_GLIBC, ElfReport, GlibcVersion};
use crate::invoke::{self, emulation};
use crate::project::{self, ProjectError, Selection};

/// The `reason` of a check's JSON object, as the build's objects carry theirs.
pub const REASON: &str = "doctor-check";

/// `cargo lambda-build doctor`: gathers, checks, prints one line (or JSON object) per check on
/// stdout; an error when something a plain build needs is missing, so `main` exits with 1.
pub fn run(args: &DoctorArgs, env: &Env, ui: Ui) -> Result<()> {
    let facts = Facts::gather(env, ui);
    let checks = checks(&facts);
    let out = &mut std::io::stdout().lock();
    for check in &checks {
        let line = match args.message_format {
            MessageFormat::Human => check.line(),
            MessageFormat::Json => check.json().to_string(),
        };
        writeln!(out, "{line}").map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.status == Status::Error)
        .map(Check::label)
        .collect();
    match failed.as_slice() {
        [] => Ok(()),
        _ => Err(MissingForBuild(failed).into()),
    }
}

/// Something a plain build needs is missing: the labels of the checks that say what.
#[derive(Debug, thiserror::Error)]
#[error("a plain `cargo lambda-build` cannot build here: {} failed (each line above says what to do)", .0.join(", "))]
pub struct MissingForBuild(pub Vec<String>);

impl From<MissingForBuild> for Error {
    fn from(missing: MissingForBuild) -> Error {
        Error::Other(missing.into())
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    /// Missing for `--arch arm64`, `--docker` or a local run, or worth knowing before a build.
    Warning,
    /// Missing for a plain build (x86_64, no `--docker`).
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `rust`, `target`, `linker`, `local-run`, `docker`, `settings`,
    /// `functions`.
    pub name: &'static str,
    /// The architecture the check is about, for the per-architecture ones.
    pub arch: Option<Arch>,
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do, when there is something to do.
    pub help: Option<String>,
}

impl Check {
    fn new(name: &'static str, arch: Option<Arch>, status: Status, message: String) -> Check {
        Check {
            name,
            arch,
            status,
            message: one_line(&message),
            help: None,
        }
    }

    fn help(mut self, help: Option<String>) -> Check {
        self.help = help.map(|h| one_line(&h));
        self
    }

    /// `linker arm64`, `docker`.
    pub fn label(&self) -> String {
        let name = self.name.replace('-', " ");
        match self.arch {
            Some(arch) => format!("{name} {arch}"),
            None => name,
        }
    }

    /// `     ok  linker arm64: zig ...`, with `; help: ...` when there is something to do.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{:>7}  {}: {}",
            self.status.name(),
            self.label(),
            self.message
        );
        if let Some(help) = &self.help {
            line.push_str("; help: ");
            line.push_str(help);
        }
        line
    }

    /// One JSON object, for `--message-format json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "reason": REASON,
            "check": self.name,
            "arch": self.arch.map(Arch::lambda_name),
            "status": self.status.name(),
            "message": self.message,
            "help": self.help,
        })
    }
}

/// A help of several lines (one per fix) as one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A failure as the tool reports it elsewhere: its message and its help.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    fn new(error: &impl std::fmt::Display, help: Option<String>) -> Problem {
        Problem {
            message: error.to_string(),
            help,
        }
    }
}

/// Everything the checks look at, gathered once.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// This machine's architecture, when it is one of Lambda's.
    pub host: Option<Arch>,
    /// Why `invoke` and `serve` do not run `bootstrap` as a process of this host (not Linux):
    /// they run it in a container.
    pub local_run_refused: Option<Problem>,
    pub rust: RustFacts,
    /// zig as a build finds it, and what `zig version` says.
    pub zig: Option<Tool>,
    /// Why that zig cannot link a Lambda build (its `ar` cannot make an archive), when it cannot.
    pub zig_broken: Option<Problem>,
    /// The GNU cross gcc of each architecture that has one installed.
    pub cross_gcc: Vec<(Arch, PathBuf)>,
    /// This machine's glibc: a native build links against it.
    pub host_glibc: Option<GlibcVersion>,
    /// The programs and directories a local run looked for, and what it found.
    pub lookups: Lookups,
    pub engine: EngineFacts,
    pub project: ProjectFacts,
    /// The `CARGO_LAMBDA_BUILD_*` variables that are set.
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustFacts {
    /// `rustc --version`, or why it did not answer.
    pub rustc: std::result::Result<String, Problem>,
    /// `cargo --version`, or why it did not answer.
    pub cargo: std::result::Result<String, Problem>,
    pub rustup: bool,
    /// The architectures whose Rust standard library is installed.
    pub targets: Vec<Arch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub path: PathBuf,
    pub version: Option<String>,
}

/// What was found on PATH and on disk: a program or directory absent here was not found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    pub programs: BTreeMap<String, PathBuf>,
    pub dirs: BTreeSet<PathBuf>,
    /// The sysroot `QEMU_LD_PREFIX` chose for qemu, as `invoke` takes it.
    pub qemu_sysroot: Option<PathBuf>,
}

impl Lookups {
    fn program(&self, name: &str) -> Option<PathBuf> {
        self.programs.get(name).cloned()
    }

    fn dir(&self, path: &Path) -> bool {
        self.dirs.contains(path)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EngineFacts {
    /// No address could be worked out (a bad `DOCKER_HOST`, a missing docker context).
    Unresolved(Problem),
    /// The address did not answer. Podman's sockets found on this machine, for the help.
    Unreachable {
        problem: Problem,
        podman_sockets: Vec<PathBuf>,
    },
    Reached(Box<Engine>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    pub endpoint: Endpoint,
    /// `Docker Engine 27.3.1`, `Podman 5.2.0`.
    pub product: String,
    pub rootless: Option<bool>,
    /// Whether it sees this machine's files, as a `--docker` build finds out.
    pub files: std::result::Result<Files, Problem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjectFacts {
    /// No Cargo.toml in this directory or above.
    NotFound(PathBuf),
    /// cargo could not read it, or a plain build refuses what it would select.
    Refused(Problem),
    Found(Box<Found>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The functions a plain build builds: package, binary.
    pub functions: Vec<(String, String)>,
    /// cargo-lambda's tables and `CargoLambda.toml`, each with what it sets here.
    pub cargo_lambda: Vec<(String, Layer)>,
    /// This tool's own tables that are present, each with its keys.
    pub tables: Vec<(String, Vec<String>)>,
    /// The architecture and profile a plain build resolves to, or why it cannot.
    pub resolved: std::result::Result<(Arch, String), Problem>,
    /// What a build would warn about (unknown keys, cargo-lambda's keys that are ignored).
    pub warnings: Vec<String>,
}

/// An executable as cargo builds it for a gnu target: what a local run must be able to start.
fn dynamic_elf(arch: Arch) -> ElfReport {
    ElfReport {
        arch,
        static_linked: false,
        interpreter: None,
        glibc: None,
        needed: Vec::new(),
    }
}

/// How missing something for `arch` counts: a plain build is x86_64.
fn missing(arch: Arch) -> Status {
    match arch {
        Arch::X86_64 => Status::Error,
        Arch::Arm64 => Status::Warning,
    }
}

/// Every check, in the order a reader follows: the toolchain, each architecture's target,
/// linker and local run, the engine, then the project.
pub fn checks(facts: &Facts) -> Vec<Check> {
    let mut checks = vec![rust(facts)];
    checks.extend(Arch::ALL.map(|arch| target(facts, arch)));
    checks.extend(Arch::ALL.map(|arch| linker(facts, arch)));
    checks.extend(Arch::ALL.map(|arch| local_run(facts, arch)));
    checks.push(docker(facts));
    checks.push(settings(facts));
    checks.push(functions(facts));
    checks
}

fn rust(facts: &Facts) -> Check {
    let rust = &facts.rust;
    match (&rust.rustc, &rust.cargo) {
        (Ok(rustc), Ok(cargo)) => {
            let rustup = match rust.rustup {
                true => "through rustup",
                false => "without rustup (targets come from your Rust distribution)",
            };
            Check::new(
                "rust",
                None,
                Status::Ok,
                format!("{rustc}, {cargo}, {rustup}"),
            )
        }
        (Err(problem), _) | (_, Err(problem)) => {
            Check::new("rust", None, Status::Error, problem.message.clone())
                .help(problem.help.clone())
        }
    }
}

fn target(facts: &Facts, arch: Arch) -> Check {
    let triple = arch.triple();
    if facts.rust.rustc.is_err() {
        return Check::new(
            "target",
            Some(arch),
            missing(arch),
            format!("cannot tell whether the standard library for `{triple}` is installed"),
        )
        .help(Some(INSTALL_RUST.into()));
    }
    if facts.rust.targets.contains(&arch) {
        return Check::new(
            "target",
            Some(arch),
            Status::Ok,
            format!("the Rust standard library for `{triple}` is installed"),
        );
    }
    if facts.rust.rustup {
        // A build adds it itself, which needs the network once.
        return Check::new(
            "target",
            Some(arch),
            Status::Warning,
            format!(
                "the Rust standard library for `{triple}` is not installed; the first {arch} \
                 build adds it with rustup, online"
            ),
        )
        .help(Some(format!(
            "run `rustup target add {triple}` now to build offline"
        )));
    }
    let error = BuildError::MissingRustTarget {
        target: arch,
        rustup: false,
    };
    Check::new("target", Some(arch), missing(arch), error.to_string()).help(error.help())
}

fn linker(facts: &Facts, arch: Arch) -> Check {
    let host = HostFacts {
        arch: facts.host,
        zig: facts.zig.as_ref().map(|zig| zig.path.clone()),
        cross_gcc: facts
            .cross_gcc
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, gcc)| gcc.clone()),
    };
    let zig_version = || {
        facts
            .zig
            .as_ref()
            .and_then(|zig| zig.version.as_deref())
            .map_or_else(String::new, |version| format!(" {version}"))
    };
    let check = |status, message| Check::new("linker", Some(arch), status, message);
    match local::choose(arch, &host) {
        Ok(Linker::Host) => {
            let host_toolchain = Linker::Host.describe();
            match facts.host_glibc.filter(|glibc| *glibc > AL2023_GLIBC) {
                None => check(Status::Ok, host_toolchain),
                Some(glibc) if host.zig.is_some() => check(
                    Status::Ok,
                    format!(
                        "{host_toolchain}; this machine's glibc {glibc} is newer than \
                         provided.al2023's {AL2023_GLIBC}, so a binary that needs more is \
                         relinked with zig{}",
                        zig_version()
                    ),
                ),
                Some(glibc) => check(
                    Status::Warning,
                    format!(
                        "{host_toolchain}, with this machine's glibc {glibc}, newer than \
                         provided.al2023's {AL2023_GLIBC}: a binary that needs more fails its \
                         check, and without zig it cannot be relinked"
                    ),
                )
                .help(Some(format!(
                    "install zig with `pip install ziglang` (the build then relinks such a \
                     binary against glibc {AL2023_GLIBC}), or build with `--docker`"
                ))),
            }
        }
        Ok(Linker::Zig(_)) if facts.zig_broken.is_some() => {
            let broken = facts.zig_broken.clone().unwrap_or_default();
            check(Status::Error, broken.message).help(broken.help)
        }
        Ok(Linker::Zig(zig)) => check(
            Status::Ok,
            format!(
                "zig{} (`{}`) targeting glibc {AL2023_GLIBC}",
                zig_version(),
                zig.display()
            ),
        ),
        Ok(linker @ Linker::CrossGcc(_)) => check(
            Status::Ok,
            format!(
                "{}; its glibc may be newer than provided.al2023's {AL2023_GLIBC}, which the \
                 check after the build catches",
                linker.describe()
            ),
        ),
        Err(error) => check(missing(arch), error.to_string()).help(error.help()),
    }
}

/// On a host of `os` that runs the Linux `bootstrap` in a container by default (macOS,
/// Windows), what `invoke` and `serve` need instead of qemu and a sysroot.
fn local_run_elsewhere(os: &'static str) -> Option<Problem> {
    invoke::container::container_mode(os, false).map(|_| Problem {
        message: format!(
            "`invoke` and `serve` run the Linux `bootstrap` in a container on a {os} host, not as \
             a process of it"
        ),
        help: Some(
            "they need the Docker engine `--docker` reaches (Docker Desktop, Podman, colima): \
             see the docker check"
                .into(),
        ),
    })
}

fn local_run(facts: &Facts, arch: Arch) -> Check {
    let check = |status, message| Check::new("local-run", Some(arch), status, message);
    if let Some(refused) = &facts.local_run_refused {
        return check(Status::Warning, refused.message.clone()).help(refused.help.clone());
    }
    let lookups = &facts.lookups;
    let emulation = emulation::emulation(
        Some(&dynamic_elf(arch)),
        facts.host,
        lookups.qemu_sysroot.as_deref(),
        |name| lookups.program(name),
        |dir| lookups.dir(dir),
    );
    match emulation {
        Ok(None) if facts.host == Some(arch) => check(
            Status::Ok,
            format!("`invoke` and `serve` run an {arch} `bootstrap` natively"),
        ),
        Ok(None) => check(
            Status::Warning,
            format!(
                "this machine is neither x86_64 nor arm64: `invoke` and `serve` cannot run an \
                 {arch} `bootstrap`"
            ),
        )
        .help(Some("run them on an x86_64 or arm64 Linux machine".into())),
        Ok(Some(emulator)) => check(
            Status::Ok,
            format!(
                "`invoke` and `serve` run an {arch} `bootstrap` under `{}`{}",
                emulator.program.display(),
                emulator
                    .sysroot
                    .map(|dir| format!(", with {arch}'s C library from `{}`", dir.display()))
                    .unwrap_or_default()
            ),
        ),
        Err(error) => check(Status::Warning, error.to_string()).help(error.help()),
    }
}

fn docker(facts: &Facts) -> Check {
    let check = |status, message| Check::new("docker", None, status, message);
    let engine = match &facts.engine {
        EngineFacts::Unresolved(problem) => {
            return check(Status::Warning, problem.message.clone()).help(problem.help.clone());
        }
        EngineFacts::Unreachable {
            problem,
            podman_sockets,
        } => {
            let podman = podman_sockets.first().map(|socket| {
                format!(
                    "Podman's socket is at `{}`: `export DOCKER_HOST=unix://{}`",
                    socket.display(),
                    socket.display()
                )
            });
            let help = podman.into_iter().chain(problem.help.clone());
            return check(Status::Warning, problem.message.clone())
                .help(Some(help.collect::<Vec<_>>().join("\n")));
        }
        EngineFacts::Reached(engine) => engine,
    };
    let user = match engine.rootless {
        Some(true) => ", rootless",
        Some(false) => ", rootful",
        None => "",
    };
    let reached = format!("{} at {}{user}", engine.product, engine.endpoint.describe());
    if let Some(insecure) = insecure(&engine.endpoint) {
        return check(Status::Warning, format!("{reached}; {}", insecure.message))
            .help(insecure.help);
    }
    match &engine.files {
        Ok(Files::Bind) => check(
            Status::Ok,
            format!("{reached}; it sees this machine's files: `--docker` mounts the project"),
        ),
        Ok(Files::Copy) => check(
            Status::Ok,
            format!(
                "{reached}; it does not see this machine's files (an engine elsewhere, as CI's \
                 docker:dind, or any engine from Windows): `--docker` copies the project into \
                 volumes there"
            ),
        )
        .help(Some(format!(
            "nothing to fix: the first `--docker` build uploads the project, later ones only \
             what changed; `--docker-files {}` skips the check",
            DockerFiles::Copy.name()
        ))),
        Err(problem) => check(
            Status::Warning,
            format!(
                "{reached}; cannot tell whether it sees this machine's files: {}",
                problem.message
            ),
        )
        .help(Some(format!(
            "a `--docker` build checks again itself; `--docker-files {}` or `{}` decides without \
             checking",
            DockerFiles::Bind.name(),
            DockerFiles::Copy.name()
        ))),
    }
}

/// An engine reached without TLS over the network, or over TLS that does not verify the engine:
/// whoever reaches that port, or sits in between, runs containers as the engine's user.
fn insecure(endpoint: &Endpoint) -> Option<Problem> {
    match &endpoint.transport {
        Transport::Tcp {
            authority,
            tls: None,
        } if !is_loopback(authority) => Some(Problem {
            message: format!(
                "`{authority}` is spoken to without TLS: anyone who reaches that port controls \
                 the engine"
            ),
            help: Some(
                "serve the engine with TLS (`dockerd --tlsverify`) and set `DOCKER_TLS_VERIFY=1` \
                 and `DOCKER_CERT_PATH`, or reach it over `ssh://USER@HOST`"
                    .into(),
            ),
        }),
        Transport::Tcp { tls: Some(tls), .. } if !tls.verify => Some(Problem {
            message: "TLS does not verify the engine's certificate".into(),
            help: Some(format!(
                "set `DOCKER_TLS_VERIFY=1`, with the engine's CA as `ca.pem` in `{}`",
                tls.dir.display()
            )),
        }),
        _ => None,
    }
}

fn is_loopback(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn settings(facts: &Facts) -> Check {
    let check = |status, message| Check::new("settings", None, status, message);
    let variables = match facts.variables.as_slice() {
        [] => None,
        names => Some(format!("the variables {}", names.join(", "))),
    };
    let variables_only = |project: &str| match &variables {
        Some(variables) => format!("{project}; {variables} apply to any build"),
        None => format!("{project}; no `CARGO_LAMBDA_BUILD_*` variable is set"),
    };
    let found = match &facts.project {
        ProjectFacts::Found(found) => found,
        ProjectFacts::NotFound(_) => return check(Status::Ok, variables_only("no project here")),
        // The `functions` line says why, and what to do.
        ProjectFacts::Refused(_) => {
            let project = "the project's settings are not read (the `functions` line says why)";
            return check(Status::Ok, variables_only(project));
        }
    };
    let mut sources: Vec<String> = found
        .tables
        .iter()
        .map(|(origin, keys)| format!("{origin} ({})", keys.join(", ")))
        .collect();
    sources.extend(found.cargo_lambda.iter().map(|(origin, layer)| {
        let read = layer_keys(layer);
        format!(
            "cargo-lambda's {origin} ({})",
            match read.is_empty() {
                true => "nothing this tool reads".to_string(),
                false => format!("read as {}", read.join(", ")),
            }
        )
    }));
    sources.extend(variables);
    let sources = match sources.is_empty() {
        true => "none: no `[package.metadata.lambda-build]`, no cargo-lambda table or \
            `CargoLambda.toml`, no `CARGO_LAMBDA_BUILD_*` variable"
            .to_string(),
        false => sources.join("; "),
    };
    match &found.resolved {
        Err(problem) => check(
            Status::Error,
            format!("{sources}; a build stops on them: {}", problem.message),
        )
        .help(problem.help.clone()),
        Ok((arch, profile)) => {
            let message = format!("{sources}; a plain build here is {arch}, profile {profile}");
            match found.warnings.as_slice() {
                [] => check(Status::Ok, message),
                warnings => check(
                    Status::Warning,
                    format!("{message}; a build warns: {}", warnings.join("; ")),
                )
                .help(Some(
                    "remove or rename the keys named (docs/configuration.md lists every key)"
                        .into(),
                )),
            }
        }
    }
}

/// The keys a layer sets, as `key value`.
fn layer_keys(layer: &Layer) -> Vec<String> {
    layer
        .keys()
        .into_iter()
        .map(|(key, value)| format!("{key} {value}"))
        .collect()
}

fn functions(facts: &Facts) -> Check {
    let check = |status, message| Check::new("functions", None, status, message);
    match &facts.project {
        ProjectFacts::NotFound(dir) => check(
            Status::Warning,
            format!("no Cargo.toml in `{}` or above", dir.display()),
        )
        .help(Some(
            "run `cargo lambda-build doctor` in your function's crate to check it, or start one \
             with `cargo lambda-build new my-function`"
                .into(),
        )),
        ProjectFacts::Refused(problem) => {
            check(Status::Error, problem.message.clone()).help(problem.help.clone())
        }
        ProjectFacts::Found(found) => {
            let names: Vec<String> = found
                .functions
                .iter()
                .map(|(package, bin)| format!("`{bin}` (package `{package}`)"))
                .collect();
            check(
                Status::Ok,
                format!("a plain build builds {}", names.join(", ")),
            )
        }
    }
}

impl Facts {
    /// Runs the tools, asks the engine and reads the project in the current directory.
    pub fn gather(env: &Env, ui: Ui) -> Facts {
        let host = Arch::host();
        let rust = gather_rust(env);
        let zig = zig::find().map(|path| Tool {
            version: first_line(path.as_os_str(), &["version"], &env.cwd).ok(),
            path,
        });
        let (project, target_dir) = gather_project(env, ui);
        // Without a project, the engine's answer is cached nowhere a build would look.
        let scratch = tempfile::tempdir().ok();
        let probe_dir = target_dir.or_else(|| scratch.as_ref().map(|d| d.path().to_path_buf()));
        Facts {
            host,
            local_run_refused: local_run_elsewhere(std::env::consts::OS),
            rust,
            zig_broken: zig.as_ref().and_then(|zig| {
                zig::check_ar(&zig.path)
                    .err()
                    .map(|e| Problem::new(&e, e.help()))
            }),
            zig,
            cross_gcc: Arch::ALL
                .into_iter()
                .filter_map(|arch| Some((arch, local::cross_gcc(arch)?)))
                .collect(),
            host_glibc: first_line(OsStr::new("getconf"), &["GNU_LIBC_VERSION"], &env.cwd)
                .ok()
                .and_then(|text| GlibcVersion::parse(text.strip_prefix("glibc ")?)),
            lookups: gather_lookups(host, env.qemu_ld_prefix()),
            engine: gather_engine(env, probe_dir.as_deref()),
            project,
            variables: env
                .config_vars()
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
        }
    }
}

/// The first line `program ARGS` prints, or why it did not run or failed, with the help for
/// rustc and cargo (zig's and getconf's failures are only read as "not there").
fn first_line(program: &OsStr, args: &[&str], cwd: &Path) -> std::result::Result<String, Problem> {
    let shown = format!("{} {}", program.to_string_lossy(), args.join(" "));
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| {
            let error = BuildError::spawn_rust(program)(e);
            Problem::new(&error, error.help())
        })?;
    if !output.status.success() {
        return Err(Problem {
            message: format!(
                "`{shown}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            help: Some(INSTALL_RUST.into()),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

fn gather_rust(env: &Env) -> RustFacts {
    let rustc = first_line(&env.rustc(), &["--version"], &env.cwd);
    let targets = match (&rustc, local::rust_sysroot(env)) {
        (Ok(_), Ok(sysroot)) => Arch::ALL
            .into_iter()
            .filter(|arch| local::std_dir(&sysroot, *arch).is_dir())
            .collect(),
        _ => Vec::new(),
    };
    RustFacts {
        rustc,
        cargo: first_line(&env.cargo, &["--version"], &env.cwd),
        rustup: which::which("rustup").is_ok(),
        targets,
    }
}

/// What a local run of each architecture looks for, recorded as `invoke` looks: the same
/// decision replayed over the record in [`local_run`] gives the same answer.
fn gather_lookups(host: Option<Arch>, qemu_sysroot: Option<PathBuf>) -> Lookups {
    let lookups = std::cell::RefCell::new(Lookups {
        qemu_sysroot: qemu_sysroot.clone(),
        ..Lookups::default()
    });
    for arch in Arch::ALL {
        let _ = emulation::emulation(
            Some(&dynamic_elf(arch)),
            host,
            qemu_sysroot.as_deref(),
            |name| {
                let found = which::which(name).ok()?;
                lookups
                    .borrow_mut()
                    .programs
                    .insert(name.to_string(), found.clone());
                Some(found)
            },
            |dir| {
                let exists = dir.is_dir();
                if exists {
                    lookups.borrow_mut().dirs.insert(dir.to_path_buf());
                }
                exists
            },
        );
    }
    lookups.into_inner()
}

/// Podman's Docker-compatible sockets that exist: the user's, then the system's.
fn podman_sockets(env: &Env) -> Vec<PathBuf> {
    let user = env
        .var_os("XDG_RUNTIME_DIR")
        .map(|dir| Path::new(dir).join("podman/podman.sock"));
    user.into_iter()
        .chain([PathBuf::from("/run/podman/podman.sock")])
        .filter(|socket| socket.exists())
        .collect()
}

/// The engine `--docker` would use: reached as a build reaches it, and asked whether it sees
/// this machine's files with the build's own probe (cached under `probe_dir` as a build caches
/// it, so the next build does not ask again).
fn gather_engine(env: &Env, probe_dir: Option<&Path>) -> EngineFacts {
    let endpoint = match engine::resolve(&engine::EngineEnv::from_env(env), &engine::Disk) {
        Ok(endpoint) => endpoint,
        Err(e) => return EngineFacts::Unresolved(Problem::new(&e, e.help())),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return EngineFacts::Unresolved(Problem {
                message: format!("cannot start an async runtime for Docker: {e}"),
                help: None,
            });
        }
    };
    runtime.block_on(async {
        let docker = match engine::connect(&endpoint).await {
            Ok(docker) => docker,
            Err(e) => {
                let podman_sockets = match endpoint.transport {
                    Transport::Unix(ref socket) => podman_sockets(env)
                        .into_iter()
                        .filter(|found| found != socket)
                        .collect(),
                    _ => Vec::new(),
                };
                return EngineFacts::Unreachable {
                    problem: Problem::new(&e, e.help()),
                    podman_sockets,
                };
            }
        };
        let version = docker.version().await.ok();
        let components = version
            .as_ref()
            .and_then(|v| v.components.as_deref())
            .unwrap_or_default();
        let podman = components.iter().find(|c| c.name.contains("Podman"));
        let product = match (podman, version.as_ref().and_then(|v| v.version.as_deref())) {
            (Some(podman), _) => format!("Podman {}", podman.version),
            (None, Some(version)) => format!("Docker Engine {version}"),
            (None, None) => "a Docker engine".to_string(),
        };
        let rootless = engine::is_rootless(&endpoint).await.ok();
        let files = match probe_dir {
            Some(dir) => probe(&docker, &endpoint, dir).await,
            None => Err(Problem {
                message: "no directory to put the probe's file in".into(),
                help: None,
            }),
        };
        EngineFacts::Reached(Box::new(Engine {
            endpoint,
            product,
            rootless,
            files,
        }))
    })
}

/// [`files::decide`] with an image the engine has (the probe container is created, never
/// started, so any image does): one of the tool's when there is one.
async fn probe(
    docker: &bollard::Docker,
    endpoint: &Endpoint,
    dir: &Path,
) -> std::result::Result<Files, Problem> {
    let images = docker
        .list_images(Some(bollard::query_parameters::ListImagesOptions::default()))
        .await
        .map_err(|e| {
            let error = engine::failure("list images", e);
            Problem::new(&error, error.help())
        })?;
    let ours = |image: &&bollard::models::ImageSummary| {
        image.labels.contains_key(LABEL)
            || image
                .repo_tags
                .iter()
                .any(|tag| tag.starts_with(&format!("{REPOSITORY}:")))
    };
    let image = images
        .iter()
        .find(ours)
        .or(images.first())
        .ok_or_else(|| Problem {
            message: "the engine has no image to create the probe's container from".into(),
            help: None,
        })?;
    let name = format!("cargo-lambda-build-{}-doctor-probe", std::process::id());
    files::decide(
        docker,
        DockerFiles::Auto,
        None,
        &endpoint.host,
        &image.id,
        dir,
        &name,
    )
    .await
    .map_err(|e| Problem::new(&e, e.help()))
}

/// The project in the current directory as a plain build reads it, and its target directory.
fn gather_project(env: &Env, ui: Ui) -> (ProjectFacts, Option<PathBuf>) {
    let refused = |e: ProjectError| (ProjectFacts::Refused(Problem::new(&e, e.help())), None);
    let manifest = match project::locate_manifest(None, &env.cwd) {
        Ok(manifest) => manifest,
        Err(ProjectError::NoManifest(dir)) => return (ProjectFacts::NotFound(dir), None),
        Err(e) => return refused(e),
    };
    let project = match project::metadata(&env.cargo, &manifest, &env.cwd)
        .and_then(|metadata| project::select(&metadata, &manifest, Selection::default()))
    {
        Ok(project) => project,
        Err(e) => return refused(e),
    };
    // Warnings come from the resolution below, once; these readings only say what each sets.
    let mut ignored = Vec::new();
    let mut cargo_lambda: Vec<(String, Layer)> = project
        .cargo_lambda
        .iter()
        .filter_map(|(origin, table)| {
            let source = config::Source::Workspace(origin.clone());
            let layer =
                config::cargo_lambda_layer(table, source, &project.workspace_root, &mut ignored);
            Some((origin.clone(), layer.ok()?))
        })
        .collect();
    let mut tables = Vec::new();
    let keys = |table: &serde_json::Value| -> Vec<String> {
        table
            .as_object()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    if !project.workspace_config.is_null() {
        tables.push((
            format!(
                "`[workspace.metadata.lambda-build]` in `{}`",
                project.workspace_root.join("Cargo.toml").display()
            ),
            keys(&project.workspace_config),
        ));
    }
    let mut seen = BTreeSet::new();
    for function in &project.functions {
        if !seen.insert(&function.manifest_path) {
            continue;
        }
        let of_package = format!(
            "of package `{}` (`{}`)",
            function.package,
            function.manifest_path.display()
        );
        if !function.package_config.is_null() {
            tables.push((
                format!("`[package.metadata.lambda-build]` {of_package}"),
                keys(&function.package_config),
            ));
        }
        if !function.cargo_lambda_config.is_null() {
            let origin = format!("`[package.metadata.lambda.build]` {of_package}");
            if let Ok(layer) = config::cargo_lambda_layer(
                &function.cargo_lambda_config,
                config::Source::Package(origin.clone()),
                function.package_root(),
                &mut ignored,
            ) {
                cargo_lambda.push((origin, layer));
            }
        }
    }
    let (resolved, warnings) = match BuildConfig::resolve(plain_build(), env, ui, &project) {
        Ok(config) => (Ok((config.arch, config.profile)), config.warnings),
        Err(e) => (Err(Problem::new(&e, e.help())), Vec::new()),
    };
    let found = Found {
        functions: project
            .functions
            .iter()
            .map(|f| (f.package.clone(), f.bin.clone()))
            .collect(),
        cargo_lambda,
        tables,
        resolved,
        warnings,
    };
    (
        ProjectFacts::Found(Box::new(found)),
        Some(project.target_dir),
    )
}

/// The arguments of a plain `cargo lambda-build`: no flag at all.
fn plain_build() -> crate::cli::BuildArgs {
    let Ok(Cli::LambdaBuild(args)) = Cli::try_parse_from(["cargo", "lambda-build"]) else {
        unreachable!("no arguments always parse")
    };
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine with everything: an x86_64 Linux host with rustup and both targets, zig, qemu
    /// and the arm64 C library, a local engine that sees the files, and one function.
    fn everything() -> Facts {
        Facts {
            host: Some(Arch::X86_64),
            local_run_refused: None,
            zig_broken: None,
            rust: RustFacts {
                rustc: Ok("rustc 1.90.0 (1159e78c4 2025-09-14)".into()),
                cargo: Ok("cargo 1.90.0 (840b83a10 2025-07-30)".into()),
                rustup: true,
                targets: Arch::ALL.to_vec(),
            },
            zig: Some(Tool {
                path: "/opt/zig/zig".into(),
                version: Some("0.13.0".into()),
            }),
            cross_gcc: Vec::new(),
            host_glibc: GlibcVersion::parse("2.34"),
            lookups: Lookups {
                programs: [(
                    "qemu-aarch64-static".to_string(),
                    PathBuf::from("/usr/bin/qemu-aarch64-static"),
                )]
                .into(),
                dirs: [PathBuf::from("/usr/aarch64-linux-gnu")].into(),
                qemu_sysroot: None,
            },
            engine: EngineFacts::Reached(Box::new(Engine {
                endpoint: Endpoint {
                    host: "unix:///var/run/docker.sock".into(),
                    transport: Transport::Unix("/var/run/docker.sock".into()),
                    source: engine::Source::Default,
                },
                product: "Docker Engine 27.3.1".into(),
                rootless: Some(false),
                files: Ok(Files::Bind),
            })),
            project: ProjectFacts::Found(Box::new(Found {
                functions: vec![("echo".into(), "echo".into())],
                cargo_lambda: Vec::new(),
                tables: Vec::new(),
                resolved: Ok((Arch::X86_64, "release".into())),
                warnings: Vec::new(),
            })),
            variables: Vec::new(),
        }
    }

    fn find<'a>(checks: &'a [Check], label: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.label() == label)
            .unwrap_or_else(|| panic!("no `{label}` in {checks:#?}"))
    }

    fn errors(facts: &Facts) -> Vec<String> {
        checks(facts)
            .iter()
            .filter(|c| c.status == Status::Error)
            .map(Check::label)
            .collect()
    }

    #[test]
    fn a_machine_with_everything_is_all_ok_one_line_each() {
        let checks = checks(&everything());
        let labels: Vec<String> = checks.iter().map(Check::label).collect();
        assert_eq!(
            labels,
            [
                "rust",
                "target x86_64",
                "target arm64",
                "linker x86_64",
                "linker arm64",
                "local run x86_64",
                "local run arm64",
                "docker",
                "settings",
                "functions"
            ]
        );
        for check in &checks {
            assert_eq!(check.status, Status::Ok, "{check:?}");
            assert!(!check.line().contains('\n'), "{}", check.line());
        }
        for (label, found) in [
            (
                "linker arm64",
                "zig 0.13.0 (`/opt/zig/zig`) targeting glibc 2.34",
            ),
            ("local run arm64", "/usr/bin/qemu-aarch64-static"),
            ("functions", "`echo` (package `echo`)"),
            ("docker", "sees this machine's files"),
        ] {
            let message = &find(&checks, label).message;
            assert!(message.contains(found), "{label}: {message}");
        }
    }

    /// The check `label` of these facts, after asserting its status and that its help names
    /// `fix` (when there is one to name).
    #[track_caller]
    fn answer(facts: &Facts, label: &str, status: Status, fix: Option<&str>) -> Check {
        let check = find(&checks(facts), label).clone();
        assert_eq!(check.status, status, "{check:?}");
        if let Some(fix) = fix {
            let help = check.help.as_deref().unwrap_or_default();
            assert!(help.contains(fix), "`{fix}` not in the help of {check:?}");
        }
        check
    }

    /// A zig whose `ar` cannot make an archive (Homebrew's 0.16.0 on macOS) is named as the
    /// build names it, with what to install.
    #[test]
    fn a_zig_whose_ar_fails_is_an_error_with_the_build_s_help() {
        let mut facts = everything();
        facts.zig_broken = Some(Problem {
            message: "zig 0.16.0 at `/opt/zig/zig` cannot create an archive".into(),
            help: Some("install `pip install ziglang`".into()),
        });
        let arm = answer(
            &facts,
            "linker arm64",
            Status::Error,
            Some("pip install ziglang"),
        );
        assert!(arm.message.contains("cannot create an archive"), "{arm:?}");
    }

    #[test]
    fn no_cross_linker_is_a_warning_for_arm64_and_an_error_for_x86_64() {
        let mut facts = everything();
        facts.zig = None;
        let arm = answer(
            &facts,
            "linker arm64",
            Status::Warning,
            Some("pip install ziglang"),
        );
        assert!(arm.help.unwrap().contains("--docker"));
        assert!(errors(&facts).is_empty());

        // From an arm64 host, the plain x86_64 build is the cross build.
        facts.host = Some(Arch::Arm64);
        assert_eq!(errors(&facts), ["linker x86_64"]);
        answer(
            &facts,
            "linker x86_64",
            Status::Error,
            Some("gcc-x86-64-linux-gnu"),
        );

        // A GNU cross gcc is enough.
        facts.cross_gcc = vec![(Arch::X86_64, "/usr/bin/x86_64-linux-gnu-gcc".into())];
        let gcc = answer(&facts, "linker x86_64", Status::Ok, None);
        assert!(gcc.message.contains("GNU cross gcc"), "{gcc:?}");
    }

    #[test]
    fn a_newer_host_glibc_wants_zig_for_the_relink() {
        let mut facts = everything();
        facts.host_glibc = GlibcVersion::parse("2.39");
        let with_zig = answer(&facts, "linker x86_64", Status::Ok, None);
        assert!(
            with_zig.message.contains("relinked with zig 0.13.0"),
            "{with_zig:?}"
        );
        facts.zig = None;
        answer(
            &facts,
            "linker x86_64",
            Status::Warning,
            Some("pip install ziglang"),
        );
    }

    #[test]
    fn missing_qemu_or_arm64_libraries_name_the_package() {
        let mut facts = everything();
        facts.lookups.dirs.clear();
        answer(
            &facts,
            "local run arm64",
            Status::Warning,
            Some("libc6-arm64-cross"),
        );
        facts.lookups = Lookups::default();
        let fix = Some("apt-get install qemu-user-static");
        let no_qemu = answer(&facts, "local run arm64", Status::Warning, fix);
        assert!(
            no_qemu.message.contains("qemu-aarch64-static"),
            "{no_qemu:?}"
        );
        answer(&facts, "local run x86_64", Status::Ok, None);
        assert!(errors(&facts).is_empty());
    }

    #[test]
    fn rust_and_its_targets() {
        let mut facts = everything();
        facts.rust.targets = vec![Arch::X86_64];
        let fix = Some("rustup target add aarch64-unknown-linux-gnu");
        answer(&facts, "target arm64", Status::Warning, fix);

        facts.rust.rustup = false;
        facts.rust.targets = Vec::new();
        assert_eq!(errors(&facts), ["target x86_64"]);
        answer(&facts, "target x86_64", Status::Error, Some("rustup"));

        facts.rust.rustc = Err(Problem {
            message: "could not run `rustc`: No such file or directory".into(),
            help: Some(INSTALL_RUST.into()),
        });
        answer(&facts, "rust", Status::Error, Some("https://rustup.rs"));
    }

    #[test]
    fn the_engine_unreachable_remote_or_insecure() {
        let mut facts = everything();
        let Endpoint { host, .. } = match &facts.engine {
            EngineFacts::Reached(engine) => engine.endpoint.clone(),
            _ => unreachable!(),
        };
        facts.engine = EngineFacts::Unreachable {
            problem: Problem {
                message: format!("cannot use the Docker engine at `{host}`: connection refused"),
                help: Some("start the engine\nor build on the host: leave out `--docker`".into()),
            },
            podman_sockets: vec!["/run/user/1000/podman/podman.sock".into()],
        };
        let down = find(&checks(&facts), "docker").clone();
        assert_eq!(down.status, Status::Warning);
        let help = down.help.clone().unwrap();
        assert!(
            help.starts_with("Podman's socket is at `/run/user/1000/podman/podman.sock`"),
            "{help}"
        );
        assert!(help.contains("; or build on the host"), "{help}");
        assert!(!down.line().contains('\n'));
        assert!(errors(&facts).is_empty(), "a plain build needs no engine");

        // An engine elsewhere, as CI's docker:dind: plain tcp, and the probe's file unseen.
        let remote = |authority: &str| {
            EngineFacts::Reached(Box::new(Engine {
                endpoint: Endpoint {
                    host: format!("tcp://{authority}"),
                    transport: Transport::Tcp {
                        authority: authority.into(),
                        tls: None,
                    },
                    source: engine::Source::DockerHost,
                },
                product: "Docker Engine 27.3.1".into(),
                rootless: None,
                files: Ok(Files::Copy),
            }))
        };
        facts.engine = remote("127.0.0.1:23750");
        let copy = answer(&facts, "docker", Status::Ok, Some("--docker-files copy"));
        assert!(copy.message.contains("does not see this machine's files"));

        facts.engine = remote("builder.example:2375");
        answer(
            &facts,
            "docker",
            Status::Warning,
            Some("DOCKER_TLS_VERIFY=1"),
        );
    }

    #[test]
    fn loopback_addresses() {
        for local in [
            "127.0.0.1:2375",
            "localhost:2375",
            "[::1]:2375",
            "127.0.0.2",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["10.0.0.1:2375", "docker:2376", "[2001:db8::1]:2375"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn settings_name_cargo_lambdas_sources_and_what_they_mean_here() {
        let mut facts = everything();
        let ProjectFacts::Found(found) = &mut facts.project else {
            unreachable!()
        };
        found.cargo_lambda = vec![("`[build]` in `/p/CargoLambda.toml`".into(), {
            let mut layer = Layer::new(config::Source::Workspace("cargo-lambda's".into()));
            layer.build.arch = Some(Arch::Arm64);
            layer.build.features = Some(vec!["test".into()]);
            layer
        })];
        found.warnings = vec![
            "`[build]` in `/p/CargoLambda.toml`: cargo-lambda's `compiler` has \
                               no equivalent here (ignored)"
                .into(),
        ];
        facts.variables = vec!["CARGO_LAMBDA_BUILD_ZIP".into()];
        let settings = find(&checks(&facts), "settings").clone();
        assert_eq!(settings.status, Status::Warning);
        for part in [
            "cargo-lambda's `[build]` in `/p/CargoLambda.toml` (read as arch arm64, features test)",
            "CARGO_LAMBDA_BUILD_ZIP",
            "`compiler` has no equivalent here",
        ] {
            assert!(settings.message.contains(part), "{part}: {settings:?}");
        }

        let ProjectFacts::Found(found) = &mut facts.project else {
            unreachable!()
        };
        found.resolved = Err(Problem {
            message: "`[package.metadata.lambda-build]`: `arch`: `sparc` is not a Lambda \
                      architecture"
                .into(),
            help: Some("fix the value".into()),
        });
        assert_eq!(errors(&facts), ["settings"]);
    }

    #[test]
    fn the_project_outside_of_one_refused_or_found() {
        let mut facts = everything();
        facts.project = ProjectFacts::NotFound("/home/me".into());
        answer(
            &facts,
            "functions",
            Status::Warning,
            Some("cargo lambda-build new"),
        );
        assert!(errors(&facts).is_empty());

        facts.project = ProjectFacts::Refused(Problem {
            message: "package `two` has several binaries (a, b); choose one with `--bin`".into(),
            help: Some("for example `--bin a`".into()),
        });
        assert_eq!(errors(&facts), ["functions"]);
        let settings = answer(&facts, "settings", Status::Ok, None);
        assert!(settings.message.contains("not read"), "{settings:?}");
    }

    #[test]
    fn a_host_that_cannot_run_bootstrap_warns_for_local_runs_only() {
        let mut facts = everything();
        facts.local_run_refused = Some(Problem {
            message: "`invoke` runs the Linux `bootstrap` as a process of this machine, which a \
                      macos host cannot do"
                .into(),
            help: Some("run it on Linux".into()),
        });
        let checks = checks(&facts);
        for arch in Arch::ALL {
            assert_eq!(
                find(&checks, &format!("local run {arch}")).status,
                Status::Warning
            );
        }
        assert!(errors(&facts).is_empty());
    }

    #[test]
    fn macos_and_windows_are_told_that_local_runs_go_into_a_container() {
        assert_eq!(local_run_elsewhere("linux"), None);
        for os in ["macos", "windows"] {
            let problem = local_run_elsewhere(os).unwrap();
            assert!(problem.message.contains("in a container"), "{problem:?}");
            assert!(problem.help.unwrap().contains("Docker Desktop"));
        }
    }

    #[test]
    fn json_has_the_lines_fields() {
        let mut facts = everything();
        facts.zig = None;
        let check = find(&checks(&facts), "linker arm64").clone();
        let json = check.json();
        assert_eq!(json["reason"], REASON);
        assert_eq!(json["check"], "linker");
        assert_eq!(json["arch"], "arm64");
        assert_eq!(json["status"], "warning");
        assert_eq!(json["message"], check.message.as_str());
        assert!(json["help"].as_str().unwrap().contains("ziglang"));
        let rust = find(&checks(&facts), "rust").json();
        assert!(rust["arch"].is_null() && rust["help"].is_null());
    }
}
