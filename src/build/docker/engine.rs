//! Reaching the Docker Engine API wherever the `docker` CLI would: `DOCKER_HOST` (`unix://`,
//! `tcp://` with or without TLS, `ssh://`, `npipe://` on Windows), else the current
//! `docker context` (`DOCKER_CONTEXT`, else `currentContext` in the Docker config), else the
//! default socket. Podman's Docker-compatible socket is a `unix://` address like any other.
//!
//! Deciding is apart from doing: [`resolve`] turns the environment and the Docker config files
//! into an [`Endpoint`] without touching the network, and [`connect`] reaches it. No `docker` CLI
//! is needed here, except on the far side of an `ssh://` address, where the engine is reached
//! through `docker system dial-stdio` as the CLI itself does.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;
use sha2::Digest;

use super::DockerError;
use crate::env::Env;

type Result<T, E = DockerError> = std::result::Result<T, E>;

/// The Docker CLI's variables and the directories they default to, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineEnv {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`: the directory of `config.json` and `contexts/`.
    pub docker_config: Option<PathBuf>,
    /// `DOCKER_TLS_VERIFY` is set to anything (the CLI's test: non-empty, even `0`).
    pub tls_verify: bool,
    /// `DOCKER_TLS` is set: TLS without verifying the engine's certificate, as `docker --tls`.
    pub tls: bool,
    pub cert_path: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl EngineEnv {
    /// The docker CLI's variables among the process facts (set and non-empty, as the CLI
    /// tests them).
    pub fn from_env(env: &Env) -> EngineEnv {
        let text = |name: &str| env.var(name).map(str::to_owned);
        let path = |name: &str| env.var_os(name).map(PathBuf::from);
        EngineEnv {
            docker_host: text("DOCKER_HOST"),
            docker_context: text("DOCKER_CONTEXT"),
            docker_config: path("DOCKER_CONFIG"),
            tls_verify: env.var_os("DOCKER_TLS_VERIFY").is_some(),
            tls: env.var_os("DOCKER_TLS").is_some(),
            cert_path: path("DOCKER_CERT_PATH"),
            home: env.home(),
        }
    }

    /// `DOCKER_CONFIG`, else `~/.docker`.
    fn config_dir(&self) -> Option<PathBuf> {
        self.docker_config
            .clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(".docker")))
    }
}

/// What [`resolve`] reads: the Docker config, a context's metadata, which TLS files exist.
pub trait Files {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn exists(&self, path: &Path) -> bool;
}

/// The real file system.
pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }
}

#[cfg(windows)]
const DEFAULT_HOST: &str = "npipe:////./pipe/docker_engine";
#[cfg(not(windows))]
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// An engine's address, how to speak to it and why this one was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As the user wrote it (`DOCKER_HOST`, the context's `Host`).
    pub host: String,
    pub transport: Transport,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    DockerHost,
    Context {
        name: String,
        chosen_by: ContextChoice,
    },
    Default,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextChoice {
    DockerContext,
    /// `currentContext` in this `config.json` (what `docker context use` writes).
    Config(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Unix(PathBuf),
    NamedPipe(String),
    /// `host:port`, with TLS when there are certificates or the user asked for it.
    Tcp {
        authority: String,
        tls: Option<Tls>,
    },
    Ssh(SshTarget),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Where the certificates were looked for, and what named that directory.
    pub dir: PathBuf,
    pub dir_from: &'static str,
    /// The CA that signed the engine's certificate; the system's roots without it.
    pub ca: Option<PathBuf>,
    /// The client certificate and its key, which an engine started with `--tlsverify` requires.
    pub client: Option<(PathBuf, PathBuf)>,
    /// False for `DOCKER_TLS` without `DOCKER_TLS_VERIFY` and for a context's `SkipTLSVerify`.
    pub verify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// The command that reaches the engine, the docker CLI's own (`cli/connhelper`): the remote
    /// `docker` relays one connection to its engine. BatchMode: a password prompt would hang a
    /// tool that has no terminal to ask on.
    pub fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=20",
            "-T",
        ]
        .map(String::from)
        .to_vec();
        if let Some(user) = &self.user {
            argv.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            argv.extend(["-p".into(), port.to_string()]);
        }
        argv.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(String::from));
        argv
    }

    /// `ssh [-p PORT] [USER@]HOST`, for a help line.
    fn login(&self) -> String {
        let port = self.port.map(|p| format!("-p {p} ")).unwrap_or_default();
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!("ssh {port}{user}{}", self.host)
    }
}

impl Endpoint {
    /// "`tcp://host:2376` (DOCKER_HOST) over TLS": the address, why it was chosen and how it is
    /// spoken to.
    pub fn describe(&self) -> String {
        let source = match &self.source {
            Source::DockerHost => "DOCKER_HOST".to_string(),
            Source::Context {
                name,
                chosen_by: ContextChoice::DockerContext,
            } => format!("docker context `{name}` from DOCKER_CONTEXT"),
            Source::Context {
                name,
                chosen_by: ContextChoice::Config(path),
            } => format!(
                "docker context `{name}`, the current one in `{}`",
                path.display()
            ),
            Source::Default => "the default; DOCKER_HOST is not set".to_string(),
        };
        let transport = match &self.transport {
            Transport::Unix(_) => "a unix socket",
            Transport::NamedPipe(_) => "a named pipe",
            Transport::Tcp { tls: None, .. } => "tcp without TLS",
            Transport::Tcp { tls: Some(tls), .. } if tls.verify => "TLS",
            Transport::Tcp { tls: Some(_), .. } => "TLS without verifying the engine",
            Transport::Ssh(_) => "ssh",
        };
        format!("`{}` ({source}) over {transport}", self.host)
    }
}

/// The endpoint the docker CLI would use: `DOCKER_HOST` wins over `DOCKER_CONTEXT`, which wins
/// over `currentContext` in the config; the context `default` is `DOCKER_HOST` or the default
/// socket, with `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH` for TLS.
pub fn resolve(env: &EngineEnv, files: &dyn Files) -> std::result::Result<Endpoint, EngineError> {
    let config_dir = env.config_dir();
    if let Some(host) = &env.docker_host {
        return default_context(host, Source::DockerHost, env, config_dir.as_deref(), files);
    }
    let chosen = match &env.docker_context {
        Some(name) => Some((name.clone(), ContextChoice::DockerContext)),
        None => match &config_dir {
            Some(dir) => current_context(&dir.join("config.json"), files)?,
            None => None,
        },
    };
    match chosen {
        Some((name, chosen_by)) if name != "default" => {
            named_context(name, chosen_by, config_dir.as_deref(), files)
        }
        _ => default_context(
            DEFAULT_HOST,
            Source::Default,
            env,
            config_dir.as_deref(),
            files,
        ),
    }
}

fn default_context(
    host: &str,
    source: Source,
    env: &EngineEnv,
    config_dir: Option<&Path>,
    files: &dyn Files,
) -> std::result::Result<Endpoint, EngineError> {
    let tls = if env.tls_verify || env.tls {
        // The CLI's default: the config directory, which is `~/.docker` unless DOCKER_CONFIG
        // moves it.
        let (dir, dir_from) = match (&env.cert_path, config_dir) {
            (Some(dir), _) => (dir.clone(), "DOCKER_CERT_PATH"),
            (None, Some(dir)) => (
                dir.to_path_buf(),
                "the default, DOCKER_CERT_PATH is not set",
            ),
            (None, None) => (
                PathBuf::from(".docker"),
                "neither DOCKER_CERT_PATH nor HOME is set",
            ),
        };
        Some(tls_files(
            dir,
            dir_from,
            env.tls_verify,
            files,
            &source,
            host,
        )?)
    } else {
        None
    };
    endpoint(host, source, tls)
}

/// The certificates in `dir` that exist: the CLI leaves out a default file that is missing.
fn tls_files(
    dir: PathBuf,
    dir_from: &'static str,
    verify: bool,
    files: &dyn Files,
    source: &Source,
    host: &str,
) -> std::result::Result<Tls, EngineError> {
    let existing = |name: &str| Some(dir.join(name)).filter(|p| files.exists(p));
    let client = match (existing("cert.pem"), existing("key.pem")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (cert, _) => {
            let (has, lacks) = if cert.is_some() {
                ("cert.pem", "key.pem")
            } else {
                ("key.pem", "cert.pem")
            };
            return Err(EngineError::TlsFiles {
                at: format!("`{host}` ({})", short_source(source)),
                dir: dir.clone(),
                reason: format!("`{}` has {has} but no {lacks}", dir.display()),
            });
        }
    };
    Ok(Tls {
        ca: existing("ca.pem"),
        client,
        verify,
        dir,
        dir_from,
    })
}

fn short_source(source: &Source) -> String {
    match source {
        Source::DockerHost => "DOCKER_HOST".into(),
        Source::Context { name, .. } => format!("docker context `{name}`"),
        Source::Default => "the default".into(),
    }
}

/// `currentContext` of the config, when the file exists and names one.
fn current_context(
    config: &Path,
    files: &dyn Files,
) -> std::result::Result<Option<(String, ContextChoice)>, EngineError> {
    let bytes = match files.read(config) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Config {
                path: config.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
            path: config.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(value
        .get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(|name| {
            (
                name.to_string(),
                ContextChoice::Config(config.to_path_buf()),
            )
        }))
}

#[derive(serde::Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, ContextEndpoint>,
}

#[derive(serde::Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The docker CLI's context store: `contexts/meta/<sha256 of the name>/meta.json`, the TLS
/// material in `contexts/tls/<sha256>/docker/`.
fn named_context(
    name: String,
    chosen_by: ContextChoice,
    config_dir: Option<&Path>,
    files: &dyn Files,
) -> std::result::Result<Endpoint, EngineError> {
    let failed = |path: PathBuf, reason: String| EngineError::Context {
        name: name.clone(),
        chosen_by: chosen_by.clone(),
        path,
        reason,
    };
    let Some(config_dir) = config_dir else {
        return Err(failed(
            PathBuf::from(".docker/contexts"),
            "neither DOCKER_CONFIG nor HOME is set, so the contexts cannot be found".into(),
        ));
    };
    let id: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let bytes = files.read(&meta_path).map_err(|e| {
        let reason = if e.kind() == io::ErrorKind::NotFound {
            "it does not exist".to_string()
        } else {
            e.to_string()
        };
        failed(meta_path.clone(), reason)
    })?;
    let meta: ContextMeta = serde_json::from_slice(&bytes)
        .map_err(|e| failed(meta_path.clone(), format!("its metadata is invalid: {e}")))?;
    let Some(docker) = meta.endpoints.get("docker") else {
        return Err(failed(meta_path, "it has no docker endpoint".into()));
    };
    let Some(host) = docker.host.clone().filter(|h| !h.is_empty()) else {
        return Err(failed(meta_path, "its docker endpoint has no host".into()));
    };
    let source = Source::Context {
        name: name.clone(),
        chosen_by: chosen_by.clone(),
    };
    let tls_dir = config_dir
        .join("contexts")
        .join("tls")
        .join(&id)
        .join("docker");
    let has_tls_files = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|f| files.exists(&tls_dir.join(f)));
    let tls = if has_tls_files || docker.skip_tls_verify {
        Some(tls_files(
            tls_dir,
            "the context's TLS directory",
            !docker.skip_tls_verify,
            files,
            &source,
            &host,
        )?)
    } else {
        None
    };
    endpoint(&host, source, tls)
}

/// Parses an address as the CLI does: no scheme means tcp; tcp's default port is 2375, 2376
/// with TLS.
fn endpoint(
    host: &str,
    source: Source,
    tls: Option<Tls>,
) -> std::result::Result<Endpoint, EngineError> {
    let bad = |reason: &str| EngineError::Address {
        at: format!("`{host}` ({})", short_source(&source)),
        reason: reason.to_string(),
    };
    let (scheme, rest) = host.split_once("://").unwrap_or(("tcp", host));
    let transport = match scheme {
        "unix" if !rest.is_empty() => Transport::Unix(PathBuf::from(rest)),
        "unix" => return Err(bad("it names no socket")),
        "npipe" if cfg!(windows) => Transport::NamedPipe(rest.to_string()),
        "npipe" => return Err(bad("named pipes (`npipe://`) exist only on Windows")),
        "tcp" | "http" | "https" => {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad("a tcp address is `tcp://HOST:PORT`"));
            }
            let has_port = match authority.rsplit_once(':') {
                Some((_, port)) => !port.contains(']'),
                None => false,
            };
            let authority = if has_port {
                authority.to_string()
            } else {
                let port = if tls.is_some() { 2376 } else { 2375 };
                format!("{authority}:{port}")
            };
            Transport::Tcp { authority, tls }
        }
        "ssh" => Transport::Ssh(ssh_target(rest).map_err(|reason| bad(&reason))?),
        _ => {
            return Err(bad(&format!(
                "the scheme `{scheme}://` is not one the docker CLI knows (unix://, tcp://, \
                 ssh://{})",
                if cfg!(windows) { ", npipe://" } else { "" }
            )));
        }
    };
    Ok(Endpoint {
        host: host.to_string(),
        transport,
        source,
    })
}

/// `[user@]host[:port][/]`, as `ssh://` addresses are written.
fn ssh_target(rest: &str) -> std::result::Result<SshTarget, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("an ssh address is `ssh://[USER@]HOST[:PORT]`, without a path".into());
    }
    let (user, host_port) = match rest.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err("a password in an ssh address is not supported: use an ssh key".into());
        }
        Some((user, host_port)) => (Some(user.to_string()), host_port),
        None => (None, rest),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an unclosed `[` in the ssh address")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("the ssh address names no host".into());
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port number"))
        })
        .transpose()?;
    Ok(SshTarget {
        user: user.filter(|u| !u.is_empty()),
        host: host.to_string(),
        port,
    })
}

/// Why the engine could not be reached, each with what to check.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot use the Docker engine at {at}: {reason}")]
    Unreachable {
        at: String,
        endpoint: Box<Endpoint>,
        reason: String,
        /// The socket exists but this user may not open it.
        permission_denied: bool,
    },

    #[error("cannot connect to the Docker engine at {at}: {reason}")]
    TlsRefused {
        at: String,
        problem: TlsProblem,
        tls: Option<Box<Tls>>,
        reason: String,
    },

    #[error("cannot reach the Docker engine at {at}: {reason}")]
    Ssh {
        at: String,
        problem: SshProblem,
        target: Box<SshTarget>,
        reason: String,
    },

    #[error("cannot use the Docker address {at}: {reason}")]
    Address { at: String, reason: String },

    #[error("cannot use the TLS certificates for {at}: {reason}")]
    TlsFiles {
        at: String,
        dir: PathBuf,
        reason: String,
    },

    #[error("cannot use the docker context `{name}` ({}): `{}`: {reason}",
        match .chosen_by {
            ContextChoice::DockerContext => "DOCKER_CONTEXT".to_string(),
            ContextChoice::Config(path) => format!("the current one in `{}`", path.display()),
        },
        .path.display())]
    Context {
        name: String,
        chosen_by: ContextChoice,
        path: PathBuf,
        reason: String,
    },

    #[error("cannot read the Docker config `{}`: {reason}", .path.display())]
    Config { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// The engine's certificate is not signed by a CA we trust, or not for this host.
    EngineNotTrusted,
    /// The engine wants a client certificate signed by its CA.
    ClientCertificate,
    /// The port speaks plain HTTP.
    NotTls,
    /// The port wants TLS and was spoken to in plain HTTP.
    WantsTls,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshProblem {
    NoClient,
    Login,
    HostKey,
    Unreachable,
    NoRemoteDocker,
    Other,
}

impl EngineError {
    pub fn help(&self) -> Option<String> {
        Some(match self {
            EngineError::Unreachable {
                endpoint,
                permission_denied,
                ..
            } => unreachable_help(endpoint, *permission_denied),
            EngineError::TlsRefused { problem, tls, .. } => tls_help(*problem, tls.as_deref()),
            EngineError::Ssh {
                problem, target, ..
            } => ssh_help(*problem, target),
            EngineError::Address { .. } => {
                "set `DOCKER_HOST` to `unix:///path/to/docker.sock`, `tcp://HOST:PORT` or \
                 `ssh://[USER@]HOST[:PORT]`, or unset it to use the current docker context"
                    .into()
            }
            EngineError::TlsFiles { dir, .. } => format!(
                "put both the client certificate `cert.pem` and its key `key.pem` in `{}` (with \
                 the engine's CA as `ca.pem`), or neither",
                dir.display()
            ),
            EngineError::Context { .. } => {
                "list the contexts with `docker context ls`, then `docker context use NAME` (or \
                 `default`), or set DOCKER_HOST to the engine's address"
                    .into()
            }
            EngineError::Config { .. } => {
                "fix the file's JSON, or point DOCKER_CONFIG at another directory".into()
            }
        })
    }
}

fn unreachable_help(endpoint: &Endpoint, permission_denied: bool) -> String {
    let mut lines = Vec::new();
    if permission_denied {
        lines.push(
            "your user may not use the engine's socket: add it to the `docker` group \
             (`sudo usermod -aG docker $USER`, then log in again)"
                .to_string(),
        );
    }
    match (&endpoint.source, &endpoint.transport) {
        (Source::Context { name, .. }, _) => lines.push(format!(
            "start the engine that the docker context `{name}` points at, or choose another \
             one: `docker context ls`, `docker context use default`"
        )),
        (_, Transport::Tcp { authority, .. }) => lines.push(format!(
            "start the engine that should listen on `{authority}` (check with `docker -H \
             tcp://{authority} info`; a firewall may be in the way), or point DOCKER_HOST at a \
             running one"
        )),
        _ => lines.push(
            "start the engine (Docker Desktop, `sudo systemctl start docker`, or Podman's \
             `systemctl --user start podman.socket`), or point `DOCKER_HOST` at a running one: \
             `unix:///path/to/docker.sock`, `tcp://HOST:2376` or `ssh://USER@HOST`"
                .into(),
        ),
    }
    lines.push("or build on the host: leave out `--docker`".into());
    lines.join("\n")
}

fn tls_help(problem: TlsProblem, tls: Option<&Tls>) -> String {
    let place = |tls: &Tls| format!("`{}` ({})", tls.dir.display(), tls.dir_from);
    match (problem, tls) {
        (TlsProblem::EngineNotTrusted, Some(tls)) => match &tls.ca {
            Some(ca) => format!(
                "the engine's certificate is not signed by `{}` or not issued for this host: put \
                 the CA that signed it as `ca.pem` in {}, or point DOCKER_CERT_PATH at the \
                 directory that holds the engine's CA and your client certificate",
                ca.display(),
                place(tls)
            ),
            None => format!(
                "there is no `ca.pem` in {}, so only the system's CAs were trusted: put the CA \
                 that signed the engine's certificate there",
                place(tls)
            ),
        },
        (TlsProblem::ClientCertificate, Some(tls)) => match &tls.client {
            None => format!(
                "the engine requires a client certificate and there is none: put `cert.pem` and \
                 `key.pem`, signed by the CA the engine trusts (`dockerd --tlscacert`), in {}",
                place(tls)
            ),
            Some((cert, _)) => format!(
                "the engine did not accept the client certificate `{}`: it must be signed by the \
                 CA the engine trusts (`dockerd --tlscacert`) and still be valid",
                cert.display()
            ),
        },
        (TlsProblem::NotTls, _) => {
            "that port answers without TLS: unset DOCKER_TLS_VERIFY and DOCKER_TLS, or use the \
             engine's TLS port (2376 by convention)"
                .into()
        }
        (TlsProblem::WantsTls, _) => {
            "that port wants TLS: set `DOCKER_TLS_VERIFY=1` and point `DOCKER_CERT_PATH` at the \
             directory with `ca.pem`, `cert.pem` and `key.pem`"
                .into()
        }
        _ => "check the certificates with `docker --tlsverify info` using the same \
              DOCKER_HOST and DOCKER_CERT_PATH"
            .into(),
    }
}

fn ssh_help(problem: SshProblem, target: &SshTarget) -> String {
    let login = target.login();
    match problem {
        SshProblem::NoClient => {
            "install an OpenSSH client (`apt-get install openssh-client`): `ssh://` addresses are \
             reached through `ssh`, as the docker CLI does"
                .into()
        }
        SshProblem::Login => format!(
            "the login was refused: `{login}` must work without a password prompt (a key in \
             ssh-agent or `~/.ssh`, its public key in the remote `~/.ssh/authorized_keys`)"
        ),
        SshProblem::HostKey => format!(
            "ssh does not trust the host key: connect once with `{login}` to check and accept \
             it (it is then kept in `~/.ssh/known_hosts`)"
        ),
        SshProblem::Unreachable => format!(
            "check that `{}` runs an ssh server on port {} and is reachable from here",
            target.host,
            target.port.unwrap_or(22)
        ),
        SshProblem::NoRemoteDocker => format!(
            "the remote side needs the `docker` CLI on the PATH of a non-interactive login: \
             check with `{login} docker system dial-stdio`"
        ),
        SshProblem::Other => format!("check with `{login} docker version`"),
    }
}

/// How long the first contact may take: a stopped engine refuses at once, an unreachable tcp
/// host would otherwise hang for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ssh logs in first (the CLI allows it 30 s).
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(25);

/// Requests after the first one can take as long as a build: an image build or a container wait
/// answers when it is done.
const REQUEST_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// Connects and agrees on an API version (so older engines work), or says what failed and
/// where.
pub async fn connect(endpoint: &Endpoint) -> Result<Docker> {
    Ok(connect_endpoint(endpoint).await?)
}

async fn connect_endpoint(endpoint: &Endpoint) -> std::result::Result<Docker, EngineError> {
    let version = bollard::API_DEFAULT_VERSION;
    let mut ssh_log = None;
    let docker = match &endpoint.transport {
        Transport::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT_SECS, version)
        }
        #[cfg(windows)]
        Transport::NamedPipe(path) => {
            Docker::connect_with_named_pipe(path, REQUEST_TIMEOUT_SECS, version)
        }
        #[cfg(not(windows))]
        Transport::NamedPipe(_) => unreachable!("resolve refuses npipe:// off Windows"),
        Transport::Tcp {
            authority,
            tls: None,
        } => Docker::connect_with_http(
            &format!("http://{authority}"),
            REQUEST_TIMEOUT_SECS,
            version,
        ),
        Transport::Tcp {
            authority,
            tls: Some(tls),
        } => {
            let config = tls_config(tls).map_err(|(path, reason)| EngineError::TlsFiles {
                at: endpoint.describe(),
                dir: tls.dir.clone(),
                reason: format!("`{}`: {reason}", path.display()),
            })?;
            let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(CONNECT_TIMEOUT));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            through(https, format!("https://{authority}"))
        }
        Transport::Ssh(target) => {
            let log = Arc::new(Mutex::new(SshLog::default()));
            ssh_log = Some(log.clone());
            let connector = SshConnector {
                argv: Arc::new(target.argv()),
                log,
            };
            through(connector, "http://docker-over-ssh".into())
        }
    };
    let limit = match endpoint.transport {
        Transport::Ssh(_) => SSH_CONNECT_TIMEOUT,
        _ => CONNECT_TIMEOUT,
    };
    let failed = |reason: String, permission_denied: bool| EngineError::Unreachable {
        at: endpoint.describe(),
        endpoint: Box::new(endpoint.clone()),
        reason,
        permission_denied,
    };
    let docker = docker.map_err(|e| failed(reason(&e), permission_denied(&e)))?;
    let error = match tokio::time::timeout(limit, docker.negotiate_version()).await {
        Ok(Ok(docker)) => return Ok(docker),
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(failed(
                format!("no answer within {} seconds", limit.as_secs()),
                false,
            ));
        }
    };
    let text = reason(&error);
    match (&endpoint.transport, ssh_log) {
        (Transport::Ssh(target), Some(log)) => {
            let stderr = SshLog::wait_for_stderr(&log).await;
            let (problem, reason) = classify_ssh(&stderr, &text);
            Err(EngineError::Ssh {
                at: endpoint.describe(),
                problem,
                target: Box::new(target.clone()),
                reason,
            })
        }
        (Transport::Tcp { tls, .. }, _) => match classify_tls(&error, &text, tls.is_some()) {
            Some(problem) => Err(EngineError::TlsRefused {
                at: endpoint.describe(),
                problem,
                reason: tls_reason(problem, tls.as_ref(), &tls_cause(&error)),
                tls: tls.clone().map(Box::new),
            }),
            None => Err(failed(text, permission_denied(&error))),
        },
        _ => Err(failed(text, permission_denied(&error))),
    }
}

/// A bollard client over our own hyper connector (TLS we configure, ssh through `ssh`).
fn through<C>(connector: C, address: String) -> std::result::Result<Docker, bollard::errors::Error>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Client::builder(TokioExecutor::new()).build(connector);
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        Some(address),
        REQUEST_TIMEOUT_SECS,
        bollard::API_DEFAULT_VERSION,
    )
}

/// The client side of TLS as the docker CLI sets it up: the CA file (else the system's roots),
/// the client certificate when there is one, and no verification for `--tls` /
/// `SkipTLSVerify`. On error: the file and what is wrong with it.
fn tls_config(tls: &Tls) -> std::result::Result<rustls::ClientConfig, (PathBuf, String)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| (tls.dir.clone(), e.to_string()))?;
    let builder = if !tls.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(ca)
                    .and_then(|certs| certs.collect())
                    .map_err(|e| (ca.clone(), e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err((ca.clone(), "it holds no certificate".into()));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    match &tls.client {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect())
                .map_err(|e| (cert.clone(), e.to_string()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| (key.clone(), e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| (cert.clone(), e.to_string()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `DOCKER_TLS` without `DOCKER_TLS_VERIFY`, or a context's `SkipTLSVerify`: encrypted, the
/// engine unchecked, as the user asked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Which TLS failure the error chain shows, if any.
fn classify_tls(error: &bollard::errors::Error, text: &str, spoke_tls: bool) -> Option<TlsProblem> {
    if let bollard::errors::Error::DockerResponseServerError { message, .. } = error
        && message.contains("HTTP request to an HTTPS server")
    {
        return Some(TlsProblem::WantsTls);
    }
    if !spoke_tls {
        return None;
    }
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "UnknownIssuer",
        "NotValidForName",
        "invalid peer certificate",
    ]) {
        Some(TlsProblem::EngineNotTrusted)
    } else if has(&[
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "CertificateUnknown",
        "DecryptError",
    ]) {
        Some(TlsProblem::ClientCertificate)
    } else if has(&["InvalidContentType", "corrupt message", "CorruptMessage"]) {
        Some(TlsProblem::NotTls)
    } else if has(&["received fatal alert", "peer sent", "HandshakeFailure"]) {
        Some(TlsProblem::Other)
    } else {
        None
    }
}

/// The failure in words, then the TLS library's own (the last cause of the chain).
fn tls_reason(problem: TlsProblem, tls: Option<&Tls>, cause: &str) -> String {
    let words = match problem {
        TlsProblem::EngineNotTrusted => "its certificate is not signed by a trusted CA",
        TlsProblem::ClientCertificate if tls.is_some_and(|t| t.client.is_none()) => {
            "it requires a client certificate, and none was sent"
        }
        TlsProblem::ClientCertificate => "it did not accept the client certificate",
        TlsProblem::NotTls => "that port does not speak TLS",
        TlsProblem::WantsTls => "that port speaks TLS only",
        TlsProblem::Other => "the TLS handshake failed",
    };
    format!("{words} ({cause})")
}

/// The engine's answer, or the last error of the chain: hyper's wrappers say little, the TLS
/// library says what failed.
fn tls_cause(error: &bollard::errors::Error) -> String {
    if let bollard::errors::Error::DockerResponseServerError { message, .. } = error {
        return message.trim().to_string();
    }
    let mut last: &(dyn std::error::Error + 'static) = error;
    while let Some(source) = last.source() {
        last = source;
    }
    last.to_string().trim().to_string()
}

/// What ssh said, sorted into what the user should check.
fn classify_ssh(stderr: &str, transport_error: &str) -> (SshProblem, String) {
    let stderr = stderr.trim();
    let has = |needle: &str| stderr.contains(needle);
    let problem = if transport_error.contains("No such file or directory")
        && !transport_error.contains("docker")
        && stderr.is_empty()
    {
        SshProblem::NoClient
    } else if has("Permission denied") || has("Too many authentication failures") {
        SshProblem::Login
    } else if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION") {
        SshProblem::HostKey
    } else if has("Could not resolve hostname")
        || has("Connection refused")
        || has("timed out")
        || has("No route to host")
        || has("Connection closed by")
    {
        SshProblem::Unreachable
    } else if has("command not found") || has("docker: not found") || has("No such file") {
        SshProblem::NoRemoteDocker
    } else {
        SshProblem::Other
    };
    let reason = match problem {
        SshProblem::NoClient => format!("cannot run `ssh`: {transport_error}"),
        _ if !stderr.is_empty() => {
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            format!(
                "ssh said: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            )
        }
        _ => transport_error.to_string(),
    };
    (problem, reason)
}

/// What the ssh processes wrote on stderr, for the error when the first request fails.
#[derive(Default)]
struct SshLog {
    stderr: String,
    running: usize,
}

impl SshLog {
    /// ssh exits with its message on stderr just as the connection closes: give the reader a
    /// moment to finish.
    async fn wait_for_stderr(log: &Mutex<SshLog>) -> String {
        for _ in 0..100 {
            {
                let log = log.lock().unwrap_or_else(|e| e.into_inner());
                if log.running == 0 {
                    return log.stderr.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.stderr.clone()
    }
}

/// One `ssh HOST docker system dial-stdio` per connection, its stdin and stdout the stream.
#[derive(Clone)]
struct SshConnector {
    argv: Arc<Vec<String>>,
    log: Arc<Mutex<SshLog>>,
}

impl tower_service::Service<hyper::Uri> for SshConnector {
    type Response = SshStream;
    type Error = io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = io::Result<SshStream>> + Send + 'static>,
    >;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let argv = self.argv.clone();
        let log = self.log.clone();
        Box::pin(async move {
            let mut child = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).running += 1;
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.stderr.push_str(&text);
                log.running -= 1;
            });
            Ok(SshStream {
                io: hyper_util::rt::TokioIo::new(tokio::io::join(stdout, stdin)),
                _child: child,
            })
        })
    }
}

struct SshStream {
    io: hyper_util::rt::TokioIo<
        tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
    >,
    /// Killed when hyper drops the connection.
    _child: tokio::process::Child,
}

impl hyper::rt::Read for SshStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl hyper_util::client::legacy::connect::Connection for SshStream {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

fn reason(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match error {
        E::SocketNotFoundError(path) => format!("the socket `{path}` does not exist"),
        E::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => {
            // hyper's errors keep the useful part (connection refused, permission denied, the
            // TLS alert) in their source chain.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text = format!("{text}: {cause_text}");
                }
                source = cause.source();
            }
            text
        }
    }
}

/// The error for a failed request: [`DockerError::Lost`] when the engine went away (the socket
/// is gone, the connection broke or timed out), else the engine's own message.
pub fn failure(action: impl Into<String>, error: bollard::errors::Error) -> DockerError {
    use bollard::errors::Error as E;
    let action = action.into();
    match &error {
        E::SocketNotFoundError(_)
        | E::IOError { .. }
        | E::HyperResponseError { .. }
        | E::HyperLegacyError { .. }
        | E::RequestTimeoutError => DockerError::Lost {
            action,
            reason: reason(&error),
        },
        _ => DockerError::Engine {
            action,
            message: engine_message(&error),
        },
    }
}

/// The text of an engine error without bollard's own wording around it.
pub fn engine_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Whether an I/O error in the chain says this user may not open the socket.
fn permission_denied(error: &bollard::errors::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Whether the engine runs without root (Docker rootless, Podman as a user): there, root in the
/// container is the host user, and another uid would be a subordinate one.
pub async fn is_rootless(endpoint: &Endpoint) -> Result<bool> {
    let info = get_json(endpoint, "/info")
        .await
        .map_err(|reason| DockerError::Lost {
            action: "read the engine's information".into(),
            reason,
        })?;
    Ok(rootless_in(&info))
}

/// Docker rootless lists `name=rootless` among its security options; Podman 4 does not, and says
/// `"Rootless": true` instead, a field bollard's `SystemInfo` leaves out.
fn rootless_in(info: &serde_json::Value) -> bool {
    let listed = info["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|option| option.as_str())
        .any(|option| option.split(',').any(|part| part == "name=rootless"));
    listed || info["Rootless"].as_bool() == Some(true)
}

/// `GET path` as JSON on a connection of its own to the endpoint, for what bollard's types do
/// not carry.
async fn get_json(
    endpoint: &Endpoint,
    path: &str,
) -> std::result::Result<serde_json::Value, String> {
    use http_body_util::BodyExt;
    use tower_service::Service;
    let request = hyper::Request::get(path)
        .header("host", "docker")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let response = match &endpoint.transport {
        Transport::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|e| text(&e))?;
            send(hyper_util::rt::TokioIo::new(stream), request).await?
        }
        Transport::Tcp {
            authority,
            tls: None,
        } => {
            let stream = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .map_err(|e| text(&e))?;
            send(hyper_util::rt::TokioIo::new(stream), request).await?
        }
        Transport::Tcp {
            authority,
            tls: Some(tls),
        } => {
            let config =
                tls_config(tls).map_err(|(path, e)| format!("`{}`: {e}", path.display()))?;
            let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
            http.enforce_http(false);
            let mut https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            let uri: hyper::Uri = format!("https://{authority}")
                .parse()
                .map_err(|e| text(&e))?;
            let stream = https.call(uri).await.map_err(|e| e.to_string())?;
            send(stream, request).await?
        }
        Transport::Ssh(target) => {
            let mut connector = SshConnector {
                argv: Arc::new(target.argv()),
                log: Arc::new(Mutex::new(SshLog::default())),
            };
            let stream = connector
                .call(hyper::Uri::from_static("http://docker"))
                .await
                .map_err(|e| text(&e))?;
            send(stream, request).await?
        }
        Transport::NamedPipe(_) => return Ok(serde_json::Value::Null),
    };
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| text(&e))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("the answer to {path} is not JSON: {e}"))
}

async fn send<T>(
    io: T,
    request: hyper::Request<http_body_util::Empty<bytes::Bytes>>,
) -> std::result::Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system of fixtures: path to content.
    #[derive(Default)]
    struct Fixture(HashMap<PathBuf, Vec<u8>>);

    impl Fixture {
        fn with(mut self, path: &str, content: &str) -> Fixture {
            self.0
                .insert(PathBuf::from(path), content.as_bytes().to_vec());
            self
        }

        /// A context as `docker context create NAME --docker host=HOST` stores it.
        fn context(self, name: &str, host: &str, skip_tls_verify: bool) -> Fixture {
            let id = context_id(name);
            self.with(
                &format!("/home/me/.docker/contexts/meta/{id}/meta.json"),
                &format!(
                    r#"{{"Name":"{name}","Metadata":{{"Description":""}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip_tls_verify}}}}}}}"#
                ),
            )
        }
    }

    impl Files for Fixture {
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| io::ErrorKind::NotFound.into())
        }

        fn exists(&self, path: &Path) -> bool {
            self.0.contains_key(path)
        }
    }

    fn context_id(name: &str) -> String {
        sha2::Sha256::digest(name.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn env() -> EngineEnv {
        EngineEnv {
            home: Some("/home/me".into()),
            ..EngineEnv::default()
        }
    }

    #[test]
    fn the_context_id_is_the_sha256_of_its_name_as_the_cli_stores_it() {
        // `printf builder | sha256sum`
        assert_eq!(
            context_id("builder"),
            "df6b07176a9b17cc4c9afc257bd404732e7d09b76436c7890f7b7be14e579794"
        );
    }

    #[test]
    fn nothing_set_is_the_default_socket() {
        let endpoint = resolve(&env(), &Fixture::default()).unwrap();
        assert_eq!(endpoint.host, "unix:///var/run/docker.sock");
        assert_eq!(
            endpoint.transport,
            Transport::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(endpoint.source, Source::Default);
        assert!(endpoint.describe().contains("DOCKER_HOST is not set"));
    }

    #[test]
    fn docker_host_wins_over_docker_context_and_the_config() {
        let files = Fixture::default()
            .with(
                "/home/me/.docker/config.json",
                r#"{"currentContext":"remote"}"#,
            )
            .context("remote", "ssh://me@remote", false)
            .context("ci", "tcp://ci:2375", false);
        let mut env = env();
        env.docker_host = Some("unix:///run/podman.sock".into());
        env.docker_context = Some("ci".into());
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(endpoint.source, Source::DockerHost);
        assert_eq!(
            endpoint.transport,
            Transport::Unix("/run/podman.sock".into())
        );
        assert_eq!(
            endpoint.describe(),
            "`unix:///run/podman.sock` (DOCKER_HOST) over a unix socket"
        );

        env.docker_host = None;
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(endpoint.host, "tcp://ci:2375");
        assert_eq!(
            endpoint.describe(),
            "`tcp://ci:2375` (docker context `ci` from DOCKER_CONTEXT) over tcp without TLS"
        );

        env.docker_context = None;
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(
            endpoint.transport,
            Transport::Ssh(SshTarget {
                user: Some("me".into()),
                host: "remote".into(),
                port: None
            })
        );
        assert_eq!(
            endpoint.source,
            Source::Context {
                name: "remote".into(),
                chosen_by: ContextChoice::Config("/home/me/.docker/config.json".into())
            }
        );
    }

    #[test]
    fn the_default_context_is_the_default_socket() {
        let files = Fixture::default().with(
            "/home/me/.docker/config.json",
            r#"{"auths":{},"currentContext":"default"}"#,
        );
        assert_eq!(resolve(&env(), &files).unwrap().source, Source::Default);
        let mut env = env();
        env.docker_context = Some("default".into());
        assert_eq!(
            resolve(&env, &Fixture::default()).unwrap().source,
            Source::Default
        );
    }

    #[test]
    fn docker_config_moves_the_config_and_the_contexts() {
        let id = context_id("podman");
        let files = Fixture::default()
            .with("/etc/docker-cfg/config.json", r#"{"currentContext":"podman"}"#)
            .with(
                &format!("/etc/docker-cfg/contexts/meta/{id}/meta.json"),
                r#"{"Name":"podman","Endpoints":{"docker":{"Host":"unix:///run/podman/podman.sock"}}}"#,
            );
        let mut env = env();
        env.docker_config = Some("/etc/docker-cfg".into());
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(
            endpoint.transport,
            Transport::Unix("/run/podman/podman.sock".into())
        );
    }

    #[test]
    fn a_context_with_certificates_speaks_tls() {
        let id = context_id("gitlab");
        let tls = format!("/home/me/.docker/contexts/tls/{id}/docker");
        let files = Fixture::default()
            .context("gitlab", "tcp://docker:2376", false)
            .with(&format!("{tls}/ca.pem"), "ca")
            .with(&format!("{tls}/cert.pem"), "cert")
            .with(&format!("{tls}/key.pem"), "key");
        let mut env = env();
        env.docker_context = Some("gitlab".into());
        // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH belong to the default context only.
        env.cert_path = Some("/elsewhere".into());
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp {
            authority,
            tls: Some(found),
        } = endpoint.transport
        else {
            panic!("{:?}", endpoint.transport)
        };
        assert_eq!(authority, "docker:2376");
        assert!(found.verify);
        assert_eq!(found.ca, Some(PathBuf::from(format!("{tls}/ca.pem"))));
        assert_eq!(
            found.client,
            Some((
                PathBuf::from(format!("{tls}/cert.pem")),
                PathBuf::from(format!("{tls}/key.pem"))
            ))
        );
    }

    #[test]
    fn skip_tls_verify_in_a_context_is_tls_without_verification() {
        let files = Fixture::default().context("lab", "tcp://lab:2376", true);
        let mut env = env();
        env.docker_context = Some("lab".into());
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
            panic!("{:?}", endpoint.transport)
        };
        assert!(!tls.verify && tls.ca.is_none() && tls.client.is_none());
        assert!(
            endpoint
                .describe()
                .ends_with("over TLS without verifying the engine")
        );
    }

    #[test]
    fn a_missing_or_broken_context_is_named_with_its_file() {
        let mut env = env();
        env.docker_context = Some("gone".into());
        let err = resolve(&env, &Fixture::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot use the docker context `gone` (DOCKER_CONTEXT): "),
            "{text}"
        );
        assert!(text.contains(&context_id("gone")), "{text}");
        assert!(text.ends_with("it does not exist"), "{text}");
        assert!(err.help().unwrap().contains("docker context ls"));

        let files = Fixture::default().with(
            &format!(
                "/home/me/.docker/contexts/meta/{}/meta.json",
                context_id("gone")
            ),
            r#"{"Name":"gone","Endpoints":{}}"#,
        );
        let text = resolve(&env, &files).unwrap_err().to_string();
        assert!(text.ends_with("it has no docker endpoint"), "{text}");

        let files = Fixture::default().with("/home/me/.docker/config.json", "{not json");
        let text = resolve(&self::env(), &files).unwrap_err().to_string();
        assert!(
            text.starts_with("cannot read the Docker config `/home/me/.docker/config.json`"),
            "{text}"
        );
    }

    #[test]
    fn tls_verify_takes_the_certificates_from_docker_cert_path() {
        let files = Fixture::default()
            .with("/certs/ca.pem", "")
            .with("/certs/cert.pem", "")
            .with("/certs/key.pem", "");
        let mut env = env();
        env.docker_host = Some("tcp://build.example:2376".into());
        env.tls_verify = true;
        env.cert_path = Some("/certs".into());
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
            panic!("{:?}", endpoint.transport)
        };
        assert!(tls.verify);
        assert_eq!(tls.dir_from, "DOCKER_CERT_PATH");
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/certs/ca.pem")));
        assert_eq!(
            endpoint.describe(),
            "`tcp://build.example:2376` (DOCKER_HOST) over TLS"
        );
    }

    #[test]
    fn tls_certificates_default_to_the_config_directory_and_missing_ones_are_left_out() {
        let files = Fixture::default().with("/home/me/.docker/ca.pem", "");
        let mut env = env();
        env.docker_host = Some("tcp://h".into());
        env.tls_verify = true;
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp {
            authority,
            tls: Some(tls),
        } = &endpoint.transport
        else {
            panic!("{:?}", endpoint.transport)
        };
        // The CLI's default TLS port.
        assert_eq!(authority, "h:2376");
        assert_eq!(tls.dir, Path::new("/home/me/.docker"));
        assert!(tls.ca.is_some() && tls.client.is_none());

        let half = Fixture::default().with("/home/me/.docker/cert.pem", "");
        let err = resolve(&env, &half).unwrap_err();
        assert!(
            err.to_string().contains("has cert.pem but no key.pem"),
            "{err}"
        );
    }

    #[test]
    fn docker_tls_alone_does_not_verify_and_plain_tcp_defaults_to_2375() {
        let mut env = env();
        env.docker_host = Some("tcp://h".into());
        let endpoint = resolve(&env, &Fixture::default()).unwrap();
        assert_eq!(
            endpoint.transport,
            Transport::Tcp {
                authority: "h:2375".into(),
                tls: None
            }
        );
        env.tls = true;
        let endpoint = resolve(&env, &Fixture::default()).unwrap();
        let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
            panic!("{:?}", endpoint.transport)
        };
        assert!(!tls.verify);
        // No scheme is tcp, as for the CLI.
        env.docker_host = Some("localhost:1234".into());
        env.tls = false;
        assert_eq!(
            resolve(&env, &Fixture::default()).unwrap().transport,
            Transport::Tcp {
                authority: "localhost:1234".into(),
                tls: None
            }
        );
    }

    #[test]
    fn ssh_addresses_become_the_clis_ssh_command() {
        let target = ssh_target("builder@10.0.0.5:2222/").unwrap();
        assert_eq!(
            target.argv().join(" "),
            "ssh -o BatchMode=yes -o ConnectTimeout=20 -T -l builder -p 2222 -- 10.0.0.5 \
             docker system dial-stdio"
        );
        assert_eq!(
            ssh_target("host").unwrap().argv().join(" "),
            "ssh -o BatchMode=yes -o ConnectTimeout=20 -T -- host docker system dial-stdio"
        );
        let v6 = ssh_target("[::1]:22").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(22)));
        assert!(
            ssh_target("me:secret@host")
                .unwrap_err()
                .contains("password")
        );
        assert!(
            ssh_target("host/path")
                .unwrap_err()
                .contains("without a path")
        );
        assert!(ssh_target("host:ssh").unwrap_err().contains("not a port"));
        assert!(ssh_target("me@").unwrap_err().contains("no host"));
    }

    #[test]
    fn unknown_schemes_and_named_pipes_off_windows_are_refused() {
        let mut env = env();
        env.docker_host = Some("fd://3".into());
        let err = resolve(&env, &Fixture::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot use the Docker address `fd://3` (DOCKER_HOST): the scheme"),
            "{err}"
        );
        assert!(err.help().unwrap().contains("ssh://"));
        if !cfg!(windows) {
            env.docker_host = Some("npipe:////./pipe/docker_engine".into());
            let err = resolve(&env, &Fixture::default()).unwrap_err();
            assert!(err.to_string().contains("only on Windows"), "{err}");
        }
    }

    #[test]
    fn ssh_failures_are_sorted_by_what_to_check() {
        let cases = [
            ("me@h: Permission denied (publickey).", SshProblem::Login),
            ("Host key verification failed.", SshProblem::HostKey),
            (
                "ssh: connect to host h port 2222: Connection refused",
                SshProblem::Unreachable,
            ),
            (
                "bash: line 1: docker: command not found",
                SshProblem::NoRemoteDocker,
            ),
            ("something else", SshProblem::Other),
        ];
        for (stderr, expected) in cases {
            let (problem, reason) = classify_ssh(stderr, "connection closed");
            assert_eq!(problem, expected, "{stderr}");
            assert!(reason.contains(stderr.trim_end_matches('.')), "{reason}");
        }
        let (problem, _) = classify_ssh("", "client error (Connect): No such file or directory");
        assert_eq!(problem, SshProblem::NoClient);
    }

    #[test]
    fn rootless_engines_are_recognised_from_their_info() {
        // Docker rootless, Podman 4.3 rootless (the field it adds), then rootful engines.
        let docker_rootless = serde_json::json!({
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless", "name=cgroupns"]
        });
        let podman_rootless = serde_json::json!({
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Rootless": true,
            "ServerVersion": "4.3.1"
        });
        let podman_rootful = serde_json::json!({
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Rootless": false
        });
        let docker = serde_json::json!({"SecurityOptions": ["name=seccomp,profile=default"]});
        assert!(rootless_in(&docker_rootless));
        assert!(rootless_in(&podman_rootless));
        assert!(!rootless_in(&podman_rootful));
        assert!(!rootless_in(&docker));
        assert!(!rootless_in(&serde_json::Value::Null));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn from_host(host: &str) -> Endpoint {
        let mut env = env();
        env.docker_host = Some(host.into());
        resolve(&env, &Fixture::default()).unwrap()
    }

    #[test]
    fn a_missing_socket_is_named_at_once() {
        let endpoint = from_host("unix:///nonexistent/docker.sock");
        let err = runtime().block_on(connect(&endpoint)).unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "cannot use the Docker engine at `unix:///nonexistent/docker.sock` (DOCKER_HOST) \
             over a unix socket: the socket `/nonexistent/docker.sock` does not exist"
        );
        assert!(err.help().unwrap().contains("start the engine"));
        assert_eq!(
            crate::error::Error::from(crate::build::BuildError::from(err)).exit_code(),
            1
        );
    }

    #[test]
    fn a_refused_tcp_port_is_named_quickly() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = from_host(&format!("tcp://127.0.0.1:{port}"));
        let started = std::time::Instant::now();
        let err = runtime().block_on(connect(&endpoint)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(6));
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
        assert!(
            err.help()
                .unwrap()
                .contains(&format!("docker -H tcp://127.0.0.1:{port} info"))
        );
    }
}
