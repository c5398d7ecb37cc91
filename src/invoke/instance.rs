//! One execution environment: the `bootstrap` process through its init and its invocations,
//! driven through the Runtime API as Lambda drives it.
//!
//! A single loop waits (with `poll`) on the function's stdout and stderr, the Runtime API's
//! requests, the process's end, the deadline and Ctrl-C. Reading the function's output before
//! handling each request keeps its lines in order with START / END.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdout};
use std::time::{Duration, Instant, SystemTime};

use super::error::InvokeError;
use super::lambda::{self, ExitStatus, Failure, FailureKind, INIT_TIMEOUT};
pub use super::record::{Log, Outcome, Record, Status};
use super::sandbox::Launch;
use super::server::{ApiRequest, Body, Route, RuntimeApi, set_nonblocking};

type Result<T, E = InvokeError> = std::result::Result<T, E>;
use crate::signal::Interrupt;

/// How long a runtime that reported an init error gets to exit by itself.
const EXIT_GRACE: Duration = Duration::from_millis(500);

pub struct Instance<'a> {
    launch: &'a Launch,
    api: &'a RuntimeApi,
    timeout: Duration,
    arn: String,
    interrupt: &'a Interrupt,
    log: &'a dyn Log,
    process: Option<Process>,
}

enum Happening {
    Request(Box<ApiRequest>),
    Exited,
    Deadline,
}

enum Init {
    Ready(Duration),
    Failed(Record),
}

impl<'a> Instance<'a> {
    pub fn new(
        launch: &'a Launch,
        api: &'a RuntimeApi,
        timeout: Duration,
        arn: String,
        interrupt: &'a Interrupt,
        log: &'a dyn Log,
    ) -> Instance<'a> {
        Instance {
            launch,
            api,
            timeout,
            arn,
            interrupt,
            log,
            process: None,
        }
    }

    /// Runs one event: starts the process first when there is none (a cold start, or after a
    /// crash or a timeout reset the environment, as on Lambda). `Err` only for the tool's own
    /// failures and Ctrl-C; whatever the function does is in the [`Record`].
    pub fn invoke(&mut self, event: &[u8]) -> Result<Record> {
        let request_id = lambda::request_id();
        let mut init_duration = None;
        if self.process.is_none() {
            match self.init(&request_id)? {
                Init::Ready(duration) => init_duration = Some(duration),
                Init::Failed(record) => return Ok(record),
            }
        }
        let Some(next) = self.process.as_mut().and_then(|p| p.next.take()) else {
            unreachable!("init leaves a process waiting in `next`");
        };

        self.log.start(&request_id);
        let deadline_at = SystemTime::now() + self.timeout;
        let headers = [
            ("Lambda-Runtime-Aws-Request-Id", request_id.clone()),
            (
                "Lambda-Runtime-Deadline-Ms",
                lambda::epoch_millis(deadline_at).to_string(),
            ),
            ("Lambda-Runtime-Invoked-Function-Arn", self.arn.clone()),
            (
                "Lambda-Runtime-Trace-Id",
                lambda::trace_id(SystemTime::now()),
            ),
            ("Content-Type", "application/json".to_owned()),
        ];
        let started = Instant::now();
        let deadline = started + self.timeout;
        next.send_event(&headers, event);

        let mut outcome: Option<Outcome> = None;
        let mut status = None;
        loop {
            match self.wait(deadline)? {
                Happening::Request(request) => match (&request.route, &outcome) {
                    (Route::Next, None) => {
                        // A runtime that asks for more before answering: Lambda holds the call
                        // and the invocation runs into its timeout.
                        self.hold_next(*request);
                    }
                    (Route::Next, Some(_)) => {
                        self.hold_next(*request);
                        break;
                    }
                    (Route::Response(id) | Route::Error(id), Some(_)) if *id == request_id => {
                        // Already answered: rapid's ErrResponseSent.
                        request.invalid_request_id();
                    }
                    (Route::Response(id), None) if *id == request_id => {
                        outcome = Some(match request.body {
                            Body::Complete(ref body) => {
                                let body = body.clone();
                                request.accepted();
                                Outcome::Response(body)
                            }
                            Body::TooLarge(size) => {
                                request.too_large();
                                status =
                                    Some(Status::Error("Function.ResponseSizeTooLarge".to_owned()));
                                Outcome::Failed(Failure::response_too_large(size))
                            }
                        });
                    }
                    (Route::Error(id), None) if *id == request_id => {
                        outcome = Some(Outcome::Failed(match request.body {
                            Body::Complete(ref body) => {
                                let failure = Failure::posted(
                                    FailureKind::Handler,
                                    body.clone(),
                                    request.header("Lambda-Runtime-Function-Error-Type"),
                                );
                                request.accepted();
                                failure
                            }
                            Body::TooLarge(size) => {
                                request.too_large();
                                Failure::response_too_large(size)
                            }
                        }));
                    }
                    (Route::Response(_) | Route::Error(_), _) => request.invalid_request_id(),
                    (Route::InitError, _) => request.invalid_state("Running", "InitError"),
                    (Route::Unknown, _) => request.not_found(),
                },
                Happening::Exited => {
                    let exit = self.process.as_ref().and_then(|p| p.exit);
                    match &outcome {
                        None => {
                            let failure =
                                Failure::exit(&request_id, exit.unwrap_or(ExitStatus::Code(0)));
                            status = Some(Status::Error(failure.error_type.clone()));
                            outcome = Some(Outcome::Failed(failure));
                        }
                        Some(_) => self.log.warn(&format!(
                            "the runtime exited ({}) after answering, instead of asking for the \
                             next event; Lambda reports that as Runtime.ExitError",
                            exit.unwrap_or(ExitStatus::Code(0))
                        )),
                    }
                    break;
                }
                Happening::Deadline => {
                    match &outcome {
                        None => {
                            outcome =
                                Some(Outcome::Failed(Failure::timeout(&request_id, self.timeout)))
                        }
                        Some(_) => self.log.warn(
                            "the runtime answered but did not ask for the next event before the \
                             timeout; Lambda reports the invocation as timed out",
                        ),
                    }
                    status = Some(Status::Timeout);
                    self.kill();
                    break;
                }
            }
        }
        let duration = started.elapsed();
        let max_memory_kib = self.peak_memory();
        if self.process.as_ref().is_some_and(|p| p.exit.is_some()) {
            self.process = None;
        }
        Ok(Record {
            request_id,
            outcome: outcome.unwrap_or_else(|| unreachable!("every way out of the loop sets it")),
            duration,
            init_duration,
            max_memory_kib,
            status,
            started: true,
        })
    }

    /// Ends the process, as Lambda ends the environment after the last event.
    pub fn stop(&mut self) {
        self.kill();
        self.process = None;
    }

    /// Kills the process but keeps its record (exit status, peak memory) for the REPORT line.
    fn kill(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.kill();
            process.forward_output(self.log, true);
        }
    }

    fn hold_next(&mut self, request: ApiRequest) {
        if let Some(process) = self.process.as_mut() {
            // A second pending `next` replaces the first, which is answered 500 as it drops.
            process.next = Some(request);
        }
    }

    fn peak_memory(&mut self) -> Option<u64> {
        self.process.as_mut().and_then(Process::peak_memory_kib)
    }

    fn init(&mut self, request_id: &str) -> Result<Init> {
        let started = Instant::now();
        if self.launch.emulator.is_some() && !is_executable(&self.launch.bootstrap) {
            // qemu would run it anyway; Lambda's exec would not.
            let failure = Failure::exec_failed(request_id, libc::EACCES);
            return Ok(Init::Failed(
                self.init_failure(request_id, failure, started),
            ));
        }
        let mut command = self.launch.command();
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let failure = match error.raw_os_error() {
                    _ if self.launch.emulator.is_some() => {
                        return Err(InvokeError::Spawn {
                            program: self.launch.program.display().to_string(),
                            source: error,
                        });
                    }
                    Some(libc::ENOENT) if !self.launch.bootstrap.exists() => {
                        Failure::no_bootstrap(request_id)
                    }
                    Some(errno) => Failure::exec_failed(request_id, errno),
                    None => Failure::exec_failed(request_id, libc::EACCES),
                };
                return Ok(Init::Failed(
                    self.init_failure(request_id, failure, started),
                ));
            }
        };
        self.process = Some(Process::new(child)?);
        let until = started + INIT_TIMEOUT;
        loop {
            match self.wait(until)? {
                Happening::Request(request) => match request.route {
                    Route::Next => {
                        self.hold_next(*request);
                        return Ok(Init::Ready(started.elapsed()));
                    }
                    Route::InitError => {
                        let failure = match request.body {
                            Body::Complete(ref body) => Failure::posted(
                                FailureKind::InitError,
                                body.clone(),
                                request.header("Lambda-Runtime-Function-Error-Type"),
                            ),
                            Body::TooLarge(size) => Failure::response_too_large(size),
                        };
                        request.accepted();
                        // Runtimes exit after reporting an init error; a moment to do so keeps
                        // their last words, then Lambda resets the environment.
                        self.wait_for_exit(Instant::now() + EXIT_GRACE)?;
                        self.kill();
                        return Ok(Init::Failed(
                            self.init_failure(request_id, failure, started),
                        ));
                    }
                    Route::Response(_) | Route::Error(_) => {
                        request.invalid_state("Started", "InvocationResponse")
                    }
                    Route::Unknown => request.not_found(),
                },
                Happening::Exited => {
                    let exit = self
                        .process
                        .as_ref()
                        .and_then(|p| p.exit)
                        .unwrap_or(ExitStatus::Code(0));
                    let failure = Failure::exit(request_id, exit);
                    return Ok(Init::Failed(
                        self.init_failure(request_id, failure, started),
                    ));
                }
                Happening::Deadline => {
                    self.kill();
                    let failure = Failure::timeout(request_id, self.timeout);
                    self.log.warn(&format!(
                        "the function did not ask for an event within Lambda's {} s init phase",
                        INIT_TIMEOUT.as_secs()
                    ));
                    let mut record = self.init_failure(request_id, failure, started);
                    record.status = Some(Status::Timeout);
                    return Ok(Init::Failed(record));
                }
            }
        }
    }

    fn init_failure(&mut self, request_id: &str, failure: Failure, started: Instant) -> Record {
        let max_memory_kib = self.peak_memory();
        self.process = None;
        Record {
            request_id: request_id.to_owned(),
            status: Some(Status::Error(failure.error_type.clone())),
            outcome: Outcome::Failed(failure),
            duration: started.elapsed(),
            init_duration: None,
            max_memory_kib,
            started: false,
        }
    }

    /// Waits for the process to end by itself, answering what it still asks as Lambda would
    /// after an init error.
    fn wait_for_exit(&mut self, until: Instant) -> Result<()> {
        loop {
            match self.wait(until)? {
                Happening::Request(request) => match request.route {
                    Route::Next => self.hold_next(*request),
                    Route::Unknown => request.not_found(),
                    _ => request.invalid_state("InitError", "InitError"),
                },
                Happening::Exited | Happening::Deadline => return Ok(()),
            }
        }
    }

    /// Waits for the next thing to happen, forwarding the function's output meanwhile.
    fn wait(&mut self, until: Instant) -> Result<Happening> {
        loop {
            let process = self
                .process
                .as_mut()
                .expect("waiting needs a running process");
            process.forward_output(self.log, false);
            process.sample_memory();
            if let Some(request) = self.api.try_recv() {
                return Ok(Happening::Request(Box::new(request)));
            }
            if process.reap() {
                process.forward_output(self.log, true);
                return Ok(Happening::Exited);
            }
            self.interrupt.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(Happening::Deadline);
            }
            // Output and requests wake the poll at once; the process's end and Ctrl-C are seen
            // within 50 ms.
            let wait = (until - now).min(Duration::from_millis(50));
            let mut fds: Vec<libc::pollfd> = process
                .output_fds()
                .into_iter()
                .chain(std::iter::once(self.api.wake_fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
            unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    wait.as_millis().max(1) as libc::c_int,
                );
            }
        }
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A pipe from the function, read without blocking and split into lines.
struct OutputPipe<R> {
    pipe: Option<R>,
    partial: Vec<u8>,
}

impl<R: Read + AsRawFd> OutputPipe<R> {
    fn new(pipe: Option<R>) -> io::Result<OutputPipe<R>> {
        if let Some(pipe) = &pipe {
            set_nonblocking(pipe.as_raw_fd())?;
        }
        Ok(OutputPipe {
            pipe,
            partial: Vec::new(),
        })
    }

    /// Forwards each complete line; at the end (`eof`), the unterminated rest too.
    fn forward(&mut self, log: &dyn Log, eof: bool) {
        let mut buffer = [0u8; 8192];
        while let Some(pipe) = self.pipe.as_mut() {
            match pipe.read(&mut buffer) {
                Ok(0) => {
                    self.pipe = None;
                }
                Ok(n) => {
                    self.partial.extend_from_slice(&buffer[..n]);
                    while let Some(at) = self.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=at).collect();
                        log.output(&line[..line.len() - 1]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.pipe = None,
            }
        }
        if (eof || self.pipe.is_none()) && !self.partial.is_empty() {
            log.output(&std::mem::take(&mut self.partial));
        }
    }
}

struct Process {
    pid: libc::pid_t,
    /// Kept for its pipes; never waited on through `std`, which would race with `waitpid`.
    _child: Child,
    stdout: OutputPipe<ChildStdout>,
    stderr: OutputPipe<ChildStderr>,
    /// Set once reaped.
    exit: Option<ExitStatus>,
    /// The highest VmHWM read while it ran (KiB). Not wait4's ru_maxrss: that counts the
    /// memory of this tool, which the child shared between fork and exec.
    peak_kib: Option<u64>,
    /// The runtime's `GET next`, held until there is an event for it.
    next: Option<ApiRequest>,
}

impl Process {
    fn new(mut child: Child) -> Result<Process> {
        let pid = child.id() as libc::pid_t;
        let pipes = OutputPipe::new(child.stdout.take())
            .and_then(|out| Ok((out, OutputPipe::new(child.stderr.take())?)));
        let (stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow::anyhow!("cannot read the function's output: {e}").into());
            }
        };
        Ok(Process {
            pid,
            _child: child,
            stdout,
            stderr,
            exit: None,
            peak_kib: None,
            next: None,
        })
    }

    fn output_fds(&self) -> Vec<libc::c_int> {
        let mut fds = Vec::new();
        if let Some(pipe) = &self.stdout.pipe {
            fds.push(pipe.as_raw_fd());
        }
        if let Some(pipe) = &self.stderr.pipe {
            fds.push(pipe.as_raw_fd());
        }
        fds
    }

    fn forward_output(&mut self, log: &dyn Log, eof: bool) {
        self.stdout.forward(log, eof);
        self.stderr.forward(log, eof);
    }

    /// Whether the process has ended; reaps it without blocking, keeping its rusage.
    fn reap(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        self.waitpid(libc::WNOHANG)
    }

    fn waitpid(&mut self, options: libc::c_int) -> bool {
        // Last look before the process (and its /proc entry) is gone.
        self.sample_memory();
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: a valid pointer to a local; `pid` is our own unreaped child.
            let reaped = unsafe { libc::waitpid(self.pid, &mut status, options) };
            if reaped == self.pid {
                self.exit = Some(if libc::WIFSIGNALED(status) {
                    ExitStatus::Signal(libc::WTERMSIG(status))
                } else {
                    ExitStatus::Code(libc::WEXITSTATUS(status))
                });
                return true;
            }
            if reaped < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
    }

    /// SIGKILL to the whole process group, then reaps.
    fn kill(&mut self) {
        if self.exit.is_none() {
            // SAFETY: the group was created for this unreaped child (process_group(0)), so its
            // id cannot have been reused.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            self.waitpid(0);
        }
        self.next = None;
    }

    /// Reads the kernel's high-water mark of the process's resident memory.
    fn sample_memory(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let hwm = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            });
        if let Some(hwm) = hwm {
            self.peak_kib = Some(self.peak_kib.map_or(hwm, |peak: u64| peak.max(hwm)));
        }
    }

    fn peak_memory_kib(&mut self) -> Option<u64> {
        self.sample_memory();
        self.peak_kib
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
