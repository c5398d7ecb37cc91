//! `ssh://` engines: one `ssh HOST docker system dial-stdio` per connection, as the docker CLI
//! does, and what ssh said sorted into what to check.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{SshProblem, SshTarget};

pub(super) fn ssh_help(problem: SshProblem, target: &SshTarget) -> String {
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

/// What ssh said, sorted into what the user should check.
pub(super) fn classify_ssh(stderr: &str, transport_error: &str) -> (SshProblem, String) {
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
pub(super) struct SshLog {
    stderr: String,
    running: usize,
}

impl SshLog {
    /// ssh exits with its message on stderr just as the connection closes: give the reader a
    /// moment to finish.
    pub(super) async fn wait_for_stderr(log: &Mutex<SshLog>) -> String {
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
pub(super) struct SshConnector {
    argv: Arc<Vec<String>>,
    log: Arc<Mutex<SshLog>>,
}

impl SshConnector {
    /// A connector to `target`, whose ssh processes write their stderr to `log`.
    pub(super) fn new(target: &SshTarget, log: Arc<Mutex<SshLog>>) -> SshConnector {
        SshConnector {
            argv: Arc::new(target.argv()),
            log,
        }
    }
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

pub(super) struct SshStream {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
