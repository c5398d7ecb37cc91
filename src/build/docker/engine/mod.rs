//! Reaching the Docker Engine API wherever the `docker` CLI would: `DOCKER_HOST` (`unix://`,
//! `tcp://` with or without TLS, `ssh://`, `npipe://` on Windows), else the current
//! `docker context` (`DOCKER_CONTEXT`, else `currentContext` in the Docker config), else the
//! default socket. Podman's Docker-compatible socket is a `unix://` address like any other.
//!
//! Deciding is apart from doing: [`resolve`] turns the environment and the Docker config files
//! into an [`Endpoint`] without touching the network, and [`connect`] reaches it. No `docker` CLI
//! is needed here, except on the far side of an `ssh://` address, where the engine is reached
//! through `docker system dial-stdio` as the CLI itself does.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;

use super::DockerError;
use crate::env::Env;

mod resolve;
mod ssh;
mod tls;

pub use resolve::resolve;
use ssh::{SshConnector, SshLog, classify_ssh, ssh_help};
use tls::{classify_tls, tls_cause, tls_config, tls_help, tls_reason};

type Result<T, E = DockerError> = std::result::Result<T, E>;

/// The Docker CLI's variables and the directories they default to, read once. Plain data, so
/// the container relay (`exec`) reaches the engine the tool reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    pub fn config_dir(&self) -> Option<PathBuf> {
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
        #[cfg(unix)]
        Transport::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT_SECS, version)
        }
        #[cfg(not(unix))]
        Transport::Unix(_) => unreachable!("resolve refuses unix:// on Windows"),
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
            let connector = SshConnector::new(target, log);
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
        #[cfg(unix)]
        Transport::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|e| text(&e))?;
            send(hyper_util::rt::TokioIo::new(stream), request).await?
        }
        #[cfg(not(unix))]
        Transport::Unix(_) => unreachable!("resolve refuses unix:// on Windows"),
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
            let mut connector = SshConnector::new(target, Arc::new(Mutex::new(SshLog::default())));
            let stream = connector
                .call(hyper::Uri::from_static("http://docker"))
                .await
                .map_err(|e| text(&e))?;
            send(stream, request).await?
        }
        // Docker Desktop's `//./pipe/docker_engine` is `\\.\pipe\docker_engine` to Windows.
        #[cfg(windows)]
        Transport::NamedPipe(path) => {
            let pipe = tokio::net::windows::named_pipe::ClientOptions::new()
                .open(path.replace('/', "\\"))
                .map_err(|e| text(&e))?;
            send(hyper_util::rt::TokioIo::new(pipe), request).await?
        }
        #[cfg(not(windows))]
        Transport::NamedPipe(_) => unreachable!("resolve refuses npipe:// off Windows"),
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
        let env = EngineEnv {
            docker_host: Some(host.into()),
            home: Some("/home/me".into()),
            ..EngineEnv::default()
        };
        resolve(&env, &Disk).unwrap()
    }

    // a unix socket: a Windows host uses its named pipe
    #[cfg(unix)]
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
