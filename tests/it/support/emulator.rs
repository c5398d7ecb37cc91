//! cargo-lambda's Runtime API emulator, and `bootstrap` processes served by it.
//!
//! The emulator is `cargo lambda watch --only-lambda-apis`: it serves the Runtime API that a
//! `bootstrap` polls, and the Invoke API that a test calls. Its quirks, seen with cargo-lambda
//! 1.9.2, and what this module does about them:
//!
//! - It runs `cargo metadata` at start, so its working directory must hold a valid crate: each
//!   emulator gets a temporary one-file crate (its own workspace root).
//! - The Runtime API lives under a `/.rt` prefix: `AWS_LAMBDA_RUNTIME_API` must then carry the
//!   scheme, `http://127.0.0.1:PORT/.rt` (lambda_runtime panics with `InvalidUri` on
//!   `127.0.0.1:PORT/.rt`, while a bare `host:port` is accepted).
//! - Any request to an unknown path (`GET /` included) is taken as a function-URL invocation of
//!   the default function and queued until a runtime polls: never probe it over HTTP. Readiness is
//!   a TCP connect, while the emulator process is still alive.
//! - The default function is `_`; invocations for another name queue forever. An invocation whose
//!   caller gave up stays queued and is handed to the next bootstrap: use one emulator per test.
//! - Invoke answers 200 for a success (not 202), 500 for a handler error with the body
//!   `{"errorType":..,"errorMessage":..}` (real Lambda answers 200 + `X-Amz-Function-Error`).
//!   The runtime's own `POST .../error` also gets a 500, which lambda_runtime logs as
//!   "Lambda Runtime API returned non-200 response" before serving the next event.
//! - `lambda-runtime-deadline-ms` is a constant (600000), not an epoch time: a handler that reads
//!   `context.deadline` sees it in 1970.
//! - The bootstrap does not retry its first connection, so it must start after the emulator
//!   listens: [`Emulator::start`] returns only then.
//!
//! Processes are started in their own process group and killed with it on drop; on Linux they
//! also get `PR_SET_PDEATHSIG`, so they die with the thread that started them even when the test
//! binary is killed. Hence: create an emulator, its functions and invoke them from the test's own
//! thread (not from a helper thread that ends first), and never share one across tests.

use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long [`Emulator::invoke`] waits for an answer before failing the test.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the emulator may take to listen (it runs `cargo metadata` first).
const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;
/// How much of a log a failure message quotes (its end).
const LOG_TAIL: u64 = 8 * 1024;

/// A running Runtime API emulator on a free loopback port. Dropping it kills it and every
/// bootstrap started through it.
pub struct Emulator {
    process: Arc<Proc>,
    port: u16,
    functions: Mutex<Vec<Arc<Proc>>>,
    agent: ureq::Agent,
    /// The emulator's crate and every log; deleted last (fields drop in declaration order).
    dir: tempfile::TempDir,
}

/// A bootstrap process polling an [`Emulator`]. Dropping it kills it (and its process group).
pub struct Function {
    process: Arc<Proc>,
}

impl Emulator {
    /// Starts the emulator and returns once it listens. `None` when `cargo-lambda` is not
    /// installed and `LAMBDA_BUILD_TEST_REQUIRE_ALL` is not `1` (the test should return: it is
    /// skipped, and a line says so). Panics, with the emulator's output, when it cannot start.
    pub fn start() -> Option<Emulator> {
        if !super::require_tool("cargo-lambda") {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("lambda-emulator-")
            .tempdir()
            .expect("create the emulator's temporary directory");
        let krate = dir.path().join("crate");
        fs::create_dir_all(krate.join("src")).expect("create the emulator's crate");
        fs::write(
            krate.join("Cargo.toml"),
            "# Placeholder: `cargo lambda watch` runs `cargo metadata` in its directory.\n\
             [package]\nname = \"emulator\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .expect("write the emulator's Cargo.toml");
        fs::write(krate.join("src/main.rs"), "fn main() {}\n")
            .expect("write the emulator's main.rs");

        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.path().join(format!("emulator-{attempt}.log"));
            let mut cmd = Command::new("cargo-lambda");
            cmd.args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
                .args([
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                    &port.to_string(),
                ])
                .current_dir(&krate)
                .env("NO_COLOR", "1");
            let process = Proc::spawn(cmd, log, format!("emulator (port {port})"));
            match wait_listening(&process, port) {
                Ok(()) => {
                    let agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .proxy(None) // never send loopback traffic through an HTTP(S)_PROXY
                        .build()
                        .into();
                    return Some(Emulator {
                        process,
                        port,
                        functions: Mutex::new(Vec::new()),
                        agent,
                        dir,
                    });
                }
                Err(why) => {
                    process.kill();
                    failures.push(format!("attempt {attempt}: {why}\n{}", process.describe()));
                }
            }
        }
        panic!(
            "the Runtime API emulator did not start:\n{}",
            failures.join("\n")
        );
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API` (with scheme and the emulator's `/.rt` prefix).
    pub fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }

    /// The URL that invokes the default function `_`.
    pub fn invoke_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        )
    }

    /// Starts `bootstrap` as Lambda would, against this emulator, optionally under `wrapper`
    /// (program and arguments placed before the bootstrap's path, e.g.
    /// `["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]`). Its working directory and
    /// `LAMBDA_TASK_ROOT` are the bootstrap's directory; stdout and stderr go to a log that
    /// [`Function::output`] reads and failure messages quote.
    pub fn run_bootstrap(&self, bootstrap: &Path, wrapper: Option<&[&str]>) -> Function {
        let bootstrap = bootstrap
            .canonicalize()
            .unwrap_or_else(|e| panic!("bootstrap {}: {e}", bootstrap.display()));
        let task_root = bootstrap
            .parent()
            .expect("the bootstrap has a directory")
            .to_path_buf();
        let mut cmd = match wrapper {
            Some([program, args @ ..]) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bootstrap);
                c
            }
            Some([]) | None => Command::new(&bootstrap),
        };
        cmd.current_dir(&task_root)
            .env("AWS_LAMBDA_RUNTIME_API", self.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/_")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("LAMBDA_TASK_ROOT", &task_root)
            .env("_HANDLER", "bootstrap")
            .env("RUST_BACKTRACE", "1");
        let mut functions = self.functions.lock().unwrap();
        let n = functions.len() + 1;
        let label = match wrapper {
            Some(w) if !w.is_empty() => {
                format!("bootstrap #{n} ({} {})", w.join(" "), bootstrap.display())
            }
            _ => format!("bootstrap #{n} ({})", bootstrap.display()),
        };
        let process = Proc::spawn(
            cmd,
            self.dir.path().join(format!("function-{n}.log")),
            label,
        );
        functions.push(process.clone());
        Function { process }
    }

    /// Invokes the default function with `payload` (JSON) and returns the HTTP status and body.
    /// Panics (quoting the emulator's and the bootstraps' output) after [`INVOKE_TIMEOUT`], or as
    /// soon as every bootstrap started through this emulator has exited.
    pub fn invoke(&self, payload: &str) -> (u16, String) {
        self.try_invoke(payload, INVOKE_TIMEOUT)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// [`Emulator::invoke`] with a chosen timeout, returning the failure instead of panicking.
    pub fn try_invoke(&self, payload: &str, timeout: Duration) -> Result<(u16, String), String> {
        let (tx, rx) = mpsc::channel();
        let request = self
            .agent
            .post(self.invoke_url())
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", "application/json");
        let payload = payload.to_owned();
        // The request runs on its own thread so that a bootstrap that dies is noticed at once.
        // If we give up first, the thread ends by itself at its timeout.
        std::thread::spawn(move || {
            let result = request.send(payload.as_str()).and_then(|mut response| {
                let status = response.status().as_u16();
                Ok((status, response.body_mut().read_to_string()?))
            });
            let _ = tx.send(result);
        });
        let started = Instant::now();
        let mut all_exited_since: Option<Instant> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => {
                    return Err(self.failure(&format!(
                        "invocation failed after {:.1?}: {e}",
                        started.elapsed()
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.failure("the invocation thread died"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let functions = self.functions.lock().unwrap().clone();
            if !functions.is_empty() && functions.iter().all(|f| f.try_wait().is_some()) {
                // Leave a moment for an answer that raced with the exit.
                let since = *all_exited_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    return Err(
                        self.failure("every bootstrap exited before the invocation was answered")
                    );
                }
            }
            if started.elapsed() > timeout + Duration::from_secs(5) {
                return Err(
                    self.failure(&format!("no answer to the invocation within {timeout:?}"))
                );
            }
        }
    }

    fn failure(&self, what: &str) -> String {
        let mut msg = format!("{what}\n{}", self.process.describe());
        for f in self.functions.lock().unwrap().iter() {
            msg.push('\n');
            msg.push_str(&f.describe());
        }
        msg
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for f in self
            .functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            f.kill();
        }
        self.process.kill();
    }
}

impl Function {
    /// Everything the bootstrap printed so far (stdout and stderr interleaved).
    pub fn output(&self) -> String {
        read_tail(&self.process.log, u64::MAX)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// A child process in its own process group, with its output in a log file.
struct Proc {
    pid: u32,
    label: String,
    log: PathBuf,
    state: Mutex<ProcState>,
}

struct ProcState {
    child: Child,
    /// Set once the child has been reaped: its pid may then belong to someone else.
    status: Option<ExitStatus>,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf, label: String) -> Arc<Proc> {
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("duplicate the log file handle");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                sys::prctl(sys::PR_SET_PDEATHSIG, sys::SIGKILL as std::ffi::c_ulong);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {label}: {cmd:?}: {e}"));
        Arc::new(Proc {
            pid: child.id(),
            label,
            log,
            state: Mutex::new(ProcState {
                child,
                status: None,
            }),
        })
    }

    fn try_wait(&self) -> Option<ExitStatus> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.status.is_none() {
            state.status = state.child.try_wait().ok().flatten();
        }
        state.status
    }

    /// Kills the whole process group (a wrapper's children included) and reaps the child.
    fn kill(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.status.is_some() {
            return;
        }
        // SAFETY: plain syscall. Not yet reaped, so the pid (= pgid) is still ours.
        unsafe {
            sys::kill(-(self.pid as i32), sys::SIGKILL);
        }
        let _ = state.child.kill();
        state.status = state.child.wait().ok();
    }

    fn describe(&self) -> String {
        let status = match self.try_wait() {
            Some(s) => format!("exited: {s}"),
            None => "running".to_string(),
        };
        format!(
            "--- {} [pid {}, {status}], end of {}:\n{}",
            self.label,
            self.pid,
            self.log.display(),
            read_tail(&self.log, LOG_TAIL)
        )
    }
}

mod sys {
    pub const SIGKILL: i32 = 9;
    #[cfg(target_os = "linux")]
    pub const PR_SET_PDEATHSIG: i32 = 1;
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        #[cfg(target_os = "linux")]
        pub fn prctl(option: i32, ...) -> i32;
    }
}

/// A port that was free a moment ago (bound to port 0 by the kernel, then released), and not
/// handed to another emulator of this test process: tests start emulators in parallel, and one
/// that is still starting does not hold its port yet.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let port = listener
            .local_addr()
            .expect("local address of the port probe")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until `port` accepts TCP connections while `process` is alive (no HTTP: any request
/// would be queued as an invocation).
fn wait_listening(process: &Proc, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if let Some(status) = process.try_wait() {
            return Err(format!(
                "it exited ({status}) before listening on port {port}"
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Still ours? (Someone else could have taken the port in between.)
            std::thread::sleep(Duration::from_millis(50));
            return match process.try_wait() {
                None => Ok(()),
                Some(status) => Err(format!(
                    "port {port} answered but the emulator exited ({status})"
                )),
            };
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!(
        "it did not listen on port {port} within {START_TIMEOUT:?}"
    ))
}

/// The last `max` bytes of a log file (lossy UTF-8), or a note when it cannot be read.
fn read_tail(path: &Path, max: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let skip = len.saturating_sub(max);
        file.seek(SeekFrom::Start(skip))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(if skip > 0 {
            format!("[... {skip} bytes cut ...]\n{text}")
        } else {
            text
        })
    };
    read().unwrap_or_else(|e| format!("[cannot read {}: {e}]", path.display()))
}
