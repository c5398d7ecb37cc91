//! Reaching the Docker Engine API with bollard: `DOCKER_HOST` (unix socket or tcp), else the
//! default socket. No `docker` CLI is needed.

use std::time::Duration;

use bollard::Docker;

use super::DockerError;

type Result<T, E = DockerError> = std::result::Result<T, E>;

/// Where the engine was looked for, for the error when it does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    pub host: String,
    /// It came from `DOCKER_HOST` (else it is the default socket).
    pub from_env: bool,
}

impl EngineAddress {
    pub fn from_env(docker_host: Option<&str>) -> EngineAddress {
        match docker_host.filter(|h| !h.is_empty()) {
            Some(host) => EngineAddress {
                host: host.to_string(),
                from_env: true,
            },
            None => EngineAddress {
                host: "unix:///var/run/docker.sock".into(),
                from_env: false,
            },
        }
    }

    pub fn describe(&self) -> String {
        if self.from_env {
            format!("`{}` (DOCKER_HOST)", self.host)
        } else {
            format!("`{}` (the default; DOCKER_HOST is not set)", self.host)
        }
    }
}

/// How long the first contact may take: a stopped engine refuses at once, an unreachable tcp
/// host would otherwise hang for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests after the first one can take as long as a build: an image build or a container wait
/// answers when it is done.
const REQUEST_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// Connects and agrees on an API version (so older engines work), or says what was tried.
pub async fn connect(address: &EngineAddress) -> Result<Docker> {
    let unavailable = |reason: String| DockerError::Unavailable {
        tried: address.describe(),
        reason,
        permission_denied: false,
    };
    let refused = |error: &bollard::errors::Error| DockerError::Unavailable {
        tried: address.describe(),
        reason: reason(error),
        permission_denied: permission_denied(error),
    };
    let host = address.host.as_str();
    let docker = if host.starts_with("unix://") {
        Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        return Err(unavailable(
            "only unix:// and tcp:// addresses are supported".into(),
        ));
    };
    let docker = docker.map_err(|e| refused(&e))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(refused(&e)),
        Err(_) => Err(unavailable(format!(
            "no answer within {} seconds",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

fn reason(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match error {
        E::SocketNotFoundError(path) => format!("the socket `{path}` does not exist"),
        other => {
            // hyper's errors keep the useful part (connection refused, permission denied) in
            // their source chain.
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

/// The error for a failed request: [`DockerError::Lost`] when the engine went away (the socket is
/// gone, the connection broke or timed out), else the engine's own message.
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

/// Whether the engine runs without root (Docker rootless, Podman as a user): there, root in the
/// container is the host user, and another uid would be a subordinate one.
pub async fn is_rootless(docker: &Docker) -> Result<bool> {
    let info = docker
        .info()
        .await
        .map_err(|e| failure("read the engine's information", e))?;
    Ok(info
        .security_options
        .unwrap_or_default()
        .iter()
        .any(|option| option.split(',').any(|part| part == "name=rootless")))
}

/// The text of an engine error without bollard's own wording around it.
pub fn engine_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildError;

    #[test]
    fn docker_host_wins_over_the_default_socket() {
        let env = EngineAddress::from_env(Some("tcp://127.0.0.1:2375"));
        assert_eq!(env.host, "tcp://127.0.0.1:2375");
        assert!(env.describe().contains("(DOCKER_HOST)"));
        let default = EngineAddress::from_env(None);
        assert_eq!(default.host, "unix:///var/run/docker.sock");
        assert!(default.describe().contains("DOCKER_HOST is not set"));
        assert_eq!(EngineAddress::from_env(Some("")), default);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_missing_socket_is_named_at_once() {
        let address = EngineAddress::from_env(Some("unix:///nonexistent/docker.sock"));
        let err = runtime().block_on(connect(&address)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unix:///nonexistent/docker.sock"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        assert_eq!(
            crate::error::Error::from(BuildError::from(err)).exit_code(),
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
        let address = EngineAddress::from_env(Some(&format!("tcp://127.0.0.1:{port}")));
        let started = std::time::Instant::now();
        let err = runtime().block_on(connect(&address)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(6));
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[test]
    fn unsupported_schemes_are_refused() {
        let address = EngineAddress::from_env(Some("ssh://me@host"));
        let err = runtime().block_on(connect(&address)).unwrap_err();
        assert!(err.to_string().contains("only unix:// and tcp://"), "{err}");
    }
}
