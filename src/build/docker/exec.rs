//! A process in a running container, run as if it were a local one: the relay.
//!
//! `invoke --docker` drives the function and its extensions as it drives local processes
//! (pipes, `poll`, `waitpid`, a kill of the process group). Each of them is started as this
//! tool's own binary in [`RELAY_MODE`]: it runs the command in the container through the Engine
//! API (`exec`), copies the command's stdout and stderr to its own, passes SIGTERM and SIGINT on
//! (on Windows, told by lines on its stdin: [`relay_line`]) and ends with the command's exit
//! status, a signal as a signal.
//!
//! The engine has no call that kills one exec'd process. The command is therefore started by a
//! small `sh` guard ([`GUARD`]) that holds the exec's stdin: a line on it is a signal to pass
//! on, and its end (the relay ended, even by SIGKILL, which closes the connection) kills the
//! command's process group. That is how a timeout's kill reaches into the container.

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::engine::{self, EngineEnv};
use crate::env::Env;
use crate::signal::Interrupt;

/// The hidden first argument that makes this binary a relay (`cargo-lambda-build
/// __container-exec SPEC`, SPEC being an [`ExecSpec`] as JSON).
pub const RELAY_MODE: &str = "__container-exec";

/// The `sh` script that starts the command (`"$@"`) in its own session when `setsid` is there,
/// with stdin from /dev/null as on Lambda, and a guard that reads the exec's stdin: each line a
/// signal name for the command's process group, or `SYNC`, which the guard answers with
/// [`SYNC_MARK`] on stdout and stderr, after whatever the command wrote there before; its end
/// a SIGKILL. A non-interactive shell gives `&` commands /dev/null as stdin, hence fd 3 (and 4
/// for stderr); once both run, the shell's own stderr goes to /dev/null, so that its job
/// messages ("Terminated") are not taken for the function's output. POSIX `sh`: dash, bash and
/// BusyBox run it.
pub const GUARD: &str = r#"exec 3<&0 4>&2
if command -v setsid >/dev/null 2>&1; then setsid "$@" </dev/null 3<&- 4>&- & else "$@" </dev/null 3<&- 4>&- & fi
pid=$!
{ while read -r line; do case $line in SYNC) printf '\001cargo-lambda-build sync\n'; printf '\001cargo-lambda-build sync\n' >&4;; *) kill -s "$line" -- "-$pid" 2>/dev/null || kill -s "$line" "$pid";; esac; done; kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid"; } <&3 2>/dev/null &
guard=$!
exec 3<&- 4>&- 2>/dev/null
wait "$pid"
status=$?
kill -s KILL "$guard" 2>/dev/null
exit "$status"
"#;

/// The line [`GUARD`] writes on the command's stdout and stderr when the relay gets SIGUSR1:
/// once read, everything the command wrote before it has been read too (a pipe keeps its
/// order), however long the way through the engine. Not the function's output.
pub const SYNC_MARK: &[u8] = b"\x01cargo-lambda-build sync";

/// The signal that asks a relay for [`SYNC_MARK`]s.
#[cfg(unix)]
pub const SYNC_SIGNAL: libc::c_int = libc::SIGUSR1;

/// Where there are no signals to send a process (Windows), the relay is told by lines on its
/// stdin, which it passes on to [`GUARD`] as they are.
pub mod relay_line {
    /// SIGTERM for the command, as Lambda's shutdown sends the runtime.
    pub const TERMINATE: &[u8] = b"TERM\n";
    /// [`super::SYNC_MARK`]s asked for.
    pub const SYNC: &[u8] = b"SYNC\n";
}

/// What the relay runs: in which container, as whom, where, and reaching the engine as the
/// tool did (the relay's own environment is the function's, so the docker CLI's variables come
/// here). The command's environment is the relay's whole environment, and nothing else: the
/// image's `ENV` does not reach it, as nothing but Lambda's variables reaches a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub engine: EngineEnv,
    pub container: String,
    /// `uid:gid`.
    pub user: String,
    pub workdir: String,
    /// The program inside the container and its arguments.
    pub command: Vec<String>,
    /// Variables of the relay's environment that the relay itself needs on this host and the
    /// command does not get (Windows' `SystemRoot`, without which no socket opens).
    #[serde(default)]
    pub relay_only: Vec<String>,
}

impl ExecSpec {
    /// The relay's arguments, after the program: `[RELAY_MODE, SPEC]`.
    pub fn relay_args(&self) -> Vec<OsString> {
        let spec = serde_json::to_string(self).expect("an ExecSpec is plain data");
        vec![RELAY_MODE.into(), spec.into()]
    }

    /// The exec's command: the environment set by `env -i` (the image's variables dropped), then
    /// [`GUARD`] around the command.
    pub fn exec_command(&self, env: &[(String, String)]) -> Vec<String> {
        let mut command = vec!["/usr/bin/env".to_owned(), "-i".to_owned()];
        command.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        command.extend(["/bin/sh", "-c", GUARD, "sh"].map(String::from));
        command.extend(self.command.iter().cloned());
        command
    }
}

/// How the command in the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    Code(i32),
    /// Killed by this signal (the shell's status 128 + N): the relay dies of it too, so that its
    /// parent sees what it would have seen of a local process.
    Signal(i32),
}

impl RelayEnd {
    /// The shell's status of the guard: above 128 a signal, as `sh` reports one.
    pub fn from_status(status: i64) -> RelayEnd {
        match status {
            129..=192 => RelayEnd::Signal((status - 128) as i32),
            0..=255 => RelayEnd::Code(status as i32),
            _ => RelayEnd::Code(1),
        }
    }
}

/// The relay: `args` are what follows [`RELAY_MODE`]. A failure of the relay itself (the engine
/// went away, the container is gone) is said on stderr, where the function's output goes, and
/// ends it with status 1, as a runtime that cannot start does.
pub fn relay(args: &[OsString], env: &Env) -> RelayEnd {
    match try_relay(args, env) {
        Ok(end) => end,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "cargo-lambda-build: {message}");
            RelayEnd::Code(1)
        }
    }
}

fn try_relay(args: &[OsString], env: &Env) -> Result<RelayEnd, String> {
    let [spec] = args else {
        return Err(format!("usage: cargo-lambda-build {RELAY_MODE} SPEC"));
    };
    let spec: ExecSpec = serde_json::from_str(&spec.to_string_lossy())
        .map_err(|e| format!("{RELAY_MODE}: not an exec spec: {e}"))?;
    let vars: Vec<(String, String)> = env
        .vars()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .filter(|(k, _)| !spec.relay_only.iter().any(|o| o.eq_ignore_ascii_case(k)))
        .collect();
    let interrupt = Interrupt::register().map_err(|e| format!("cannot handle signals: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an async runtime: {e}"))?;
    runtime.block_on(run(&spec, &vars, &interrupt))
}

async fn run(
    spec: &ExecSpec,
    vars: &[(String, String)],
    interrupt: &Interrupt,
) -> Result<RelayEnd, String> {
    let what = format!(
        "`{}` in the container `{}`",
        spec.command.join(" "),
        spec.container
    );
    let endpoint = engine::resolve(&spec.engine, &engine::Disk).map_err(|e| e.to_string())?;
    let docker = engine::connect(&endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let failed = |doing: &str| {
        let doing = format!("{doing} {what}");
        move |e: bollard::errors::Error| format!("{doing}: {}", engine::engine_message(&e))
    };
    let options = CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        cmd: Some(spec.exec_command(vars)),
        user: Some(spec.user.clone()),
        working_dir: Some(spec.workdir.clone()),
        ..Default::default()
    };
    let exec = docker
        .create_exec(&spec.container, options)
        .await
        .map_err(failed("cannot start"))?;
    let start = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: None,
    };
    let StartExecResults::Attached { output, input } = docker
        .start_exec(&exec.id, Some(start))
        .await
        .map_err(failed("cannot start"))?
    else {
        return Err(format!("the engine started {what} detached"));
    };
    let asks = Asks::listen().map_err(|e| format!("cannot handle signals: {e}"))?;
    if !relay_output(output, input, interrupt, asks)
        .await
        .map_err(failed("lost the output of"))?
    {
        // Whoever read us is gone: the input dropped, the guard ends the command.
        return Ok(RelayEnd::Code(1));
    }
    // The output ends as the command does; the engine may need a moment to say how.
    for _ in 0..100 {
        let inspect = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(failed("cannot learn how ended"))?;
        if inspect.running != Some(true)
            && let Some(code) = inspect.exit_code
        {
            return Ok(RelayEnd::from_status(code));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("the engine did not say how {what} ended"))
}

/// What the tool asks of the relay besides Ctrl-C, as it comes, each as the line for
/// [`GUARD`]: a sync at [`SYNC_SIGNAL`] on Unix; elsewhere the [`relay_line`]s of its stdin.
struct Asks {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    lines: tokio::sync::mpsc::UnboundedReceiver<&'static [u8]>,
}

impl Asks {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Asks> {
        Ok(Asks {
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(
                SYNC_SIGNAL,
            ))?,
        })
    }

    /// A thread reads the lines, as a console's stdin cannot be read asynchronously.
    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Asks> {
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("relay-stdin".into())
            .spawn(move || {
                for line in std::io::stdin().lines() {
                    let Ok(line) = line else { break };
                    let known = [relay_line::TERMINATE, relay_line::SYNC]
                        .into_iter()
                        .find(|known| known.trim_ascii() == line.trim().as_bytes());
                    if let Some(known) = known
                        && sender.send(known).is_err()
                    {
                        break;
                    }
                }
            })?;
        Ok(Asks { lines })
    }

    async fn next(&mut self) -> &'static [u8] {
        #[cfg(unix)]
        {
            self.signal.recv().await;
            relay_line::SYNC
        }
        #[cfg(not(unix))]
        match self.lines.recv().await {
            Some(line) => line,
            None => futures_util::future::pending().await,
        }
    }
}

/// Copies the exec's output to this process's stdout and stderr until it ends, passing a
/// SIGTERM or SIGINT received meanwhile on to the guard as a line, and each sync asked for at
/// once; `false` when this process's output can no longer be written (its reader is gone).
async fn relay_output(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    interrupt: &Interrupt,
    mut asks: Asks,
) -> Result<bool, bollard::errors::Error> {
    use futures_util::future::{Either, select};
    let mut forwarded = false;
    loop {
        if !forwarded && let Some(signal) = interrupt.signal() {
            forwarded = true;
            let name: &[u8] = if signal == libc::SIGTERM {
                b"TERM\n"
            } else {
                b"INT\n"
            };
            // A guard that is gone has nothing left to signal.
            let _ = input.write_all(name).await;
            let _ = input.flush().await;
        }
        let asked = std::pin::pin!(asks.next());
        let next = select(output.next(), asked);
        let chunk = match tokio::time::timeout(Duration::from_millis(50), next).await {
            Err(_elapsed) => continue,
            Ok(Either::Right((line, _))) => {
                let _ = input.write_all(line).await;
                let _ = input.flush().await;
                continue;
            }
            Ok(Either::Left((None, _))) => return Ok(true),
            Ok(Either::Left((Some(chunk), _))) => chunk?,
        };
        let written = match chunk {
            LogOutput::StdOut { message } => write_all(&mut std::io::stdout(), &message),
            LogOutput::StdErr { message } | LogOutput::Console { message } => {
                write_all(&mut std::io::stderr(), &message)
            }
            LogOutput::StdIn { .. } => Ok(()),
        };
        if written.is_err() {
            return Ok(false);
        }
    }
}

fn write_all(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ExecSpec {
        ExecSpec {
            engine: EngineEnv {
                docker_host: Some("unix:///run/docker.sock".into()),
                ..EngineEnv::default()
            },
            container: "cargo-lambda-build-1-a".into(),
            user: "993:990".into(),
            workdir: "/var/task".into(),
            command: vec!["/var/task/bootstrap".into()],
            relay_only: Vec::new(),
        }
    }

    #[test]
    fn the_spec_travels_as_one_argument_and_comes_back_whole() {
        let spec = spec();
        let args = spec.relay_args();
        assert_eq!(args[0], RELAY_MODE);
        assert_eq!(args.len(), 2);
        let back: ExecSpec = serde_json::from_str(args[1].to_str().unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn the_command_gets_only_the_given_environment_under_the_guard() {
        let env = [
            ("A".to_owned(), "x y".to_owned()),
            ("B".to_owned(), String::new()),
        ];
        let command = spec().exec_command(&env);
        assert_eq!(
            command[..4],
            ["/usr/bin/env", "-i", "A=x y", "B="].map(String::from)
        );
        assert_eq!(command[4..7], ["/bin/sh", "-c", GUARD].map(String::from));
        assert_eq!(
            command[7..],
            ["sh", "/var/task/bootstrap"].map(String::from)
        );
    }

    #[test]
    fn a_status_above_128_is_a_signal() {
        assert_eq!(RelayEnd::from_status(0), RelayEnd::Code(0));
        assert_eq!(RelayEnd::from_status(127), RelayEnd::Code(127));
        assert_eq!(RelayEnd::from_status(137), RelayEnd::Signal(9));
        assert_eq!(RelayEnd::from_status(143), RelayEnd::Signal(15));
        assert_eq!(RelayEnd::from_status(-1), RelayEnd::Code(1));
    }

    /// A sync asked of the guard comes back on both streams, after what the command wrote.
    #[cfg(unix)]
    #[test]
    fn the_guard_answers_a_sync_after_the_commands_output() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args([
                "-c",
                GUARD,
                "sh",
                "sh",
                "-c",
                "echo out; echo err >&2; sleep 30",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"SYNC\n").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let mark = [SYNC_MARK, b"\n"].concat();
        assert_eq!(output.stdout, [b"out\n".as_slice(), &mark].concat());
        assert_eq!(output.stderr, [b"err\n".as_slice(), &mark].concat());
        assert_eq!(output.status.code(), Some(137));
    }

    /// The guard under the host's `sh`: the status comes back, and the end of its stdin kills
    /// the command (as the relay's end does in the container).
    #[cfg(unix)]
    #[test]
    fn the_guard_passes_the_status_and_kills_when_its_stdin_ends() {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", GUARD, "sh", "sh", "-c", "exit 3"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        // Held open while it runs, as the relay's connection is.
        let stdin = child.stdin.take();
        assert_eq!(child.wait().unwrap().code(), Some(3));
        drop(stdin);
        let started = std::time::Instant::now();
        let status = Command::new("sh")
            .args(["-c", GUARD, "sh", "sleep", "30"])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(137));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
