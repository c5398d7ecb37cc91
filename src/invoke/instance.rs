//! One execution environment: the `bootstrap` process through its init and its invocations,
//! driven through the Runtime API as Lambda drives it, with the external extensions of its
//! layers beside it, driven through the Extensions API.
//!
//! A single loop waits (with `poll`) on the output of the function and of its extensions, the
//! APIs' requests, the processes' ends, the deadline and Ctrl-C. Reading the output before
//! handling each request keeps its lines in order with START / END.
//!
//! Lambda's phases, as here: init starts the extensions, waits until each has registered, then
//! starts `bootstrap`; it ends when the runtime and every extension wait in `next`. An
//! invocation sends INVOKE to the extensions that asked for it with the event to the runtime,
//! and ends when all of them are back in `next`. Shutdown (after the last event, or a reset
//! after a crash or a timeout) flushes the telemetry, sends SHUTDOWN, signals the runtime, and
//! kills what still runs after 2 seconds.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdout};
use std::time::{Duration, Instant, SystemTime};

use super::error::InvokeError;
use super::lambda::{self, ExitStatus, Failure, FailureKind, INIT_TIMEOUT, SHUTDOWN_BUDGET};
pub use super::record::{Log, Outcome, Record, Status};
use super::sandbox::Launch;
use super::server::{ApiRequest, Body, Piece, Route, RuntimeApi, set_nonblocking};
use super::telemetry::{self, Stream, Telemetry};

type Result<T, E = InvokeError> = std::result::Result<T, E>;
use crate::lambda::MAX_STREAMED_BYTES;
use crate::signal::Interrupt;

/// How long a runtime that reported an init error gets to exit by itself.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Where a streamed response goes as it arrives.
pub trait ResponseStream {
    /// A streamed response begins, with the runtime's `Content-Type`.
    fn begin(&mut self, content_type: Option<&str>);
    fn data(&mut self, data: &[u8]);
    /// The stream ended; `complete` is false when an error, a timeout or a crash cut it short.
    fn end(&mut self, complete: bool);
    /// The invocation's outcome is known, before the runtime asks for the next event (which
    /// ends the invocation): Lambda answers its caller at this point.
    fn answered(&mut self, _outcome: &Outcome) {}
}

/// A streamed response being received.
struct Streaming {
    /// The runtime's POST, answered 202 once its body has ended.
    request: ApiRequest,
    pieces: std::sync::mpsc::Receiver<Piece>,
    bytes: u64,
    trailers: Vec<(String, String)>,
}

pub struct Instance<'a> {
    launch: &'a Launch,
    api: &'a RuntimeApi,
    timeout: Duration,
    arn: String,
    interrupt: &'a Interrupt,
    log: &'a dyn Log,
    process: Option<Process>,
    /// `/opt/extensions/*`, started at each init.
    extension_launches: &'a [Launch],
    /// The registered or starting extensions of the current environment.
    extensions: Vec<Extension>,
    telemetry: Telemetry,
    /// Registration is open during init only.
    initializing: bool,
    /// An extension's `POST /extension/init/error`.
    extension_init_error: Option<(Vec<u8>, Option<String>)>,
    streaming: Option<Streaming>,
    /// In container mode: whose peak memory is reported (the processes here are relays).
    container: Option<&'a super::container::Environment>,
}

/// An external extension (a process of `/opt/extensions`) or an internal one (registered from
/// the runtime's own process).
struct Extension {
    name: String,
    process: Option<Process>,
    /// `Lambda-Extension-Identifier`, once registered.
    id: Option<String>,
    invoke: bool,
    shutdown: bool,
    /// Its `GET /extension/event/next`, held until there is an event.
    next: Option<ApiRequest>,
}

impl Extension {
    fn exit(&self) -> Option<ExitStatus> {
        self.process.as_ref().and_then(|p| p.exit)
    }
}

enum Happening {
    Request(Box<ApiRequest>),
    Piece(Piece),
    Exited,
    /// An extension registered, asked for its next event, reported an error or ended.
    Extension,
    Deadline,
}

/// The output of one process: to the console, and to the telemetry subscribers of its stream.
struct Tee<'l> {
    log: &'l dyn Log,
    telemetry: &'l Telemetry,
    stream: Stream,
}

impl<'l> Tee<'l> {
    fn new(log: &'l dyn Log, telemetry: &'l Telemetry, stream: Stream) -> Tee<'l> {
        Tee {
            log,
            telemetry,
            stream,
        }
    }
}

impl Log for Tee<'_> {
    fn start(&self, request_id: &str) {
        self.log.start(request_id);
    }

    fn output(&self, line: &[u8]) {
        self.log.output(line);
        self.telemetry.record(self.stream, line);
    }

    fn warn(&self, message: &str) {
        self.log.warn(message);
    }
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
            extension_launches: &[],
            extensions: Vec::new(),
            telemetry: Telemetry::default(),
            initializing: false,
            extension_init_error: None,
            streaming: None,
            container: None,
        }
    }

    /// The function runs in this container: its memory is the container's.
    pub fn with_container(
        mut self,
        container: Option<&'a super::container::Environment>,
    ) -> Instance<'a> {
        self.container = container;
        self
    }

    /// The external extensions to start with each init, from the layers' `/opt/extensions`.
    pub fn with_extensions(mut self, launches: &'a [Launch]) -> Instance<'a> {
        self.extension_launches = launches;
        self
    }

    /// Runs one event: starts the process first when there is none (a cold start, or after a
    /// crash or a timeout reset the environment, as on Lambda). `Err` only for the tool's own
    /// failures and Ctrl-C; whatever the function does is in the [`Record`].
    pub fn invoke(&mut self, event: &[u8], stream: &mut dyn ResponseStream) -> Result<Record> {
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
        let invoke_event = serde_json::json!({
            "eventType": "INVOKE",
            "deadlineMs": lambda::epoch_millis(deadline_at) as u64,
            "requestId": request_id,
            "invokedFunctionArn": self.arn,
            "tracing": { "type": "X-Amzn-Trace-Id", "value": headers[3].1 },
        });
        next.send_event(&headers, event);
        for extension in self.extensions.iter_mut().filter(|e| e.invoke) {
            if let Some(next) = extension.next.take() {
                send_extension_event(next, &invoke_event);
            }
        }

        let mut outcome: Option<Outcome> = None;
        let mut status = None;
        // The runtime asked for its next event after answering: the invocation ends once the
        // extensions are back in `next` too.
        let mut runtime_done = false;
        let mut crashed: Option<String> = None;
        let mut told = false;
        loop {
            if let (Some(outcome), false) = (&outcome, told) {
                // The caller can answer its client now; the invocation lasts until `next`.
                stream.answered(outcome);
                told = true;
            }
            match self.wait(deadline)? {
                Happening::Request(request) => match (&request.route, &outcome) {
                    (Route::Next, None) => {
                        // A runtime that asks for more before answering: Lambda holds the call
                        // and the invocation runs into its timeout.
                        self.hold_next(*request);
                    }
                    (Route::Next, Some(_)) => {
                        self.hold_next(*request);
                        runtime_done = true;
                        if self.extensions_ready() {
                            break;
                        }
                    }
                    (Route::Response(id) | Route::Error(id), Some(_)) if *id == request_id => {
                        // Already answered: rapid's ErrResponseSent.
                        request.invalid_request_id();
                    }
                    (Route::Response(_), None) if self.streaming.is_some() => {
                        // A second response while the first still streams.
                        request.invalid_request_id();
                    }
                    (Route::Response(id), None) if *id == request_id => {
                        outcome = Some(match request.body {
                            Body::Streaming(_) => {
                                let mut request = *request;
                                let Body::Streaming(pieces) =
                                    std::mem::replace(&mut request.body, Body::TooLarge(0))
                                else {
                                    unreachable!("matched as streaming")
                                };
                                stream.begin(request.header("Content-Type"));
                                self.streaming = Some(Streaming {
                                    request,
                                    pieces,
                                    bytes: 0,
                                    trailers: Vec::new(),
                                });
                                continue;
                            }
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
                            Body::Streaming(_) => {
                                request.reject(
                                    400,
                                    "InvalidRequest",
                                    "an error cannot be streamed; stream the response instead",
                                );
                                continue;
                            }
                        }));
                    }
                    (Route::Response(_) | Route::Error(_), _) => request.invalid_request_id(),
                    (Route::InitError, _) => request.invalid_state("Running", "InitError"),
                    (_, _) => request.not_found(),
                },
                Happening::Extension => {
                    if let Some(extension) = self.extensions.iter().find(|e| e.exit().is_some()) {
                        let exit = extension.exit().unwrap_or(ExitStatus::Code(0));
                        let failure = Failure::extension_crash(&request_id, &extension.name, exit);
                        crashed = Some(extension.name.clone());
                        status = Some(Status::Error(failure.error_type.clone()));
                        if outcome.is_none() {
                            outcome = Some(Outcome::Failed(failure));
                        } else {
                            self.log.warn(&format!(
                                "the extension `{}` exited ({exit}) during the invocation; \
                                 Lambda reports Extension.Crash and resets the environment",
                                extension.name
                            ));
                        }
                        break;
                    }
                    if runtime_done && self.extensions_ready() {
                        break;
                    }
                }
                Happening::Piece(piece) => {
                    let Some(streaming) = self.streaming.as_mut() else {
                        continue;
                    };
                    match piece {
                        Piece::Data(data) => {
                            streaming.bytes += data.len() as u64;
                            if streaming.bytes <= MAX_STREAMED_BYTES {
                                stream.data(&data);
                            }
                        }
                        Piece::Trailers(trailers) => streaming.trailers = trailers,
                        Piece::End | Piece::Broken(_) => {
                            let broken = match piece {
                                Piece::Broken(reason) => Some(reason),
                                _ => None,
                            };
                            let Some(streaming) = self.streaming.take() else {
                                continue;
                            };
                            let (ended, failed_with) = finish_stream(&streaming, broken);
                            if let Some(error_type) = failed_with {
                                status = Some(Status::Error(error_type));
                            }
                            stream.end(!matches!(ended, Outcome::Failed(_)));
                            streaming.request.accepted();
                            outcome = Some(ended);
                        }
                    }
                }
                Happening::Exited => {
                    if self.streaming.take().is_some() {
                        stream.end(false);
                    }
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
                    if self.streaming.take().is_some() {
                        stream.end(false);
                    }
                    match &outcome {
                        None => {
                            outcome =
                                Some(Outcome::Failed(Failure::timeout(&request_id, self.timeout)))
                        }
                        Some(_) if runtime_done => self.log.warn(&format!(
                            "the extension {} did not ask for the next event before the \
                             timeout; Lambda reports the invocation as timed out",
                            self.extensions
                                .iter()
                                .filter(|e| e.next.is_none())
                                .map(|e| format!("`{}`", e.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
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
        if let (Some(outcome), false) = (&outcome, told) {
            stream.answered(outcome);
        }
        let duration = started.elapsed();
        let max_memory_kib = self.peak_memory();
        if crashed.is_some() || self.process.as_ref().is_some_and(|p| p.exit.is_some()) {
            // Lambda resets the environment: the extensions are told why.
            let reason = if status == Some(Status::Timeout) {
                "timeout"
            } else {
                "failure"
            };
            self.shutdown(reason);
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
        self.shutdown("spindown");
    }

    /// The shutdown phase: the extensions that asked for SHUTDOWN get it (after the telemetry
    /// they subscribed to is delivered) and the runtime SIGTERM; whatever still runs after
    /// Lambda's 2 s is killed. Without extensions, the runtime is killed at once, as Lambda
    /// gives it no shutdown phase then.
    fn shutdown(&mut self, reason: &str) {
        if !self.extensions.is_empty() {
            self.forward(false);
            self.telemetry.flush();
            let deadline_at = SystemTime::now() + SHUTDOWN_BUDGET;
            let until = Instant::now() + SHUTDOWN_BUDGET;
            let event = serde_json::json!({
                "eventType": "SHUTDOWN",
                "shutdownReason": reason,
                "deadlineMs": lambda::epoch_millis(deadline_at) as u64,
            });
            let mut told = false;
            for extension in self.extensions.iter_mut().filter(|e| e.shutdown) {
                if let Some(next) = extension.next.take() {
                    send_extension_event(next, &event);
                    told = true;
                }
            }
            if let Some(process) = self.process.as_mut().filter(|p| p.exit.is_none()) {
                // SAFETY: our own unreaped child: its pid cannot have been reused.
                unsafe {
                    libc::kill(process.pid, libc::SIGTERM);
                }
            }
            while told
                && self
                    .extensions
                    .iter()
                    .any(|e| e.shutdown && e.process.as_ref().is_some_and(|p| p.exit.is_none()))
            {
                match self.wait(until) {
                    Ok(Happening::Deadline) | Err(_) => break,
                    // The runtime's end, and whatever it asks now, change nothing.
                    Ok(Happening::Exited) => drop(self.process.take()),
                    Ok(Happening::Request(_) | Happening::Extension | Happening::Piece(_)) => {}
                }
            }
        }
        self.kill();
        self.process = None;
        for mut extension in self.extensions.drain(..) {
            if let Some(process) = extension.process.as_mut() {
                process.kill();
                let tee = Tee::new(self.log, &self.telemetry, Stream::Extension);
                process.forward_output(&tee, true);
            }
        }
        self.telemetry.flush();
    }

    /// Whether every registered extension waits in `next`.
    fn extensions_ready(&self) -> bool {
        self.extensions
            .iter()
            .all(|e| e.id.is_some() && e.next.is_some())
    }

    /// Kills the process but keeps its record (exit status, peak memory) for the REPORT line.
    fn kill(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.kill();
            let tee = Tee::new(self.log, &self.telemetry, Stream::Function);
            process.forward_output(&tee, true);
        }
    }

    fn hold_next(&mut self, request: ApiRequest) {
        if let Some(process) = self.process.as_mut() {
            // A second pending `next` replaces the first, which is answered 500 as it drops.
            process.next = Some(request);
        }
    }

    fn peak_memory(&mut self) -> Option<u64> {
        if let Some(container) = self.container {
            return container.peak_memory_kib();
        }
        self.process.as_mut().and_then(Process::peak_memory_kib)
    }

    fn init(&mut self, request_id: &str) -> Result<Init> {
        let started = Instant::now();
        let until = started + INIT_TIMEOUT;
        self.initializing = true;
        let extensions = self.start_extensions(request_id, until);
        self.initializing = !matches!(extensions, Ok(Some(_)));
        if let Some(failure) = extensions? {
            return Ok(Init::Failed(
                self.init_failure(request_id, failure, started),
            ));
        }
        let init = self.init_runtime(request_id, started, until);
        self.initializing = false;
        init
    }

    /// Starts `/opt/extensions/*` and waits until each has registered. `Some` when one could
    /// not start, ended, reported an init error, or did not register in time.
    fn start_extensions(&mut self, request_id: &str, until: Instant) -> Result<Option<Failure>> {
        for launch in self.extension_launches {
            let name = launch
                .bootstrap
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if launch.wraps() && !is_executable(&launch.bootstrap) {
                return Ok(Some(Failure::extension_launch(
                    request_id,
                    &name,
                    libc::EACCES,
                )));
            }
            let child = match launch.command().spawn() {
                Ok(child) => child,
                Err(error) => {
                    return Ok(Some(Failure::extension_launch(
                        request_id,
                        &name,
                        error.raw_os_error().unwrap_or(libc::EACCES),
                    )));
                }
            };
            self.extensions.push(Extension {
                name,
                process: Some(Process::new(child)?),
                id: None,
                invoke: false,
                shutdown: false,
                next: None,
            });
        }
        loop {
            if let Some(failure) = self.extension_failure(request_id) {
                return Ok(Some(failure));
            }
            if self.extensions.iter().all(|e| e.id.is_some()) {
                return Ok(None);
            }
            match self.wait(until)? {
                Happening::Request(request) => request.not_found(),
                Happening::Exited | Happening::Extension | Happening::Piece(_) => {}
                Happening::Deadline => {
                    let waiting: Vec<String> = self
                        .extensions
                        .iter()
                        .filter(|e| e.id.is_none())
                        .map(|e| format!("`{}`", e.name))
                        .collect();
                    self.log.warn(&format!(
                        "the extension {} did not register within Lambda's {} s init phase",
                        waiting.join(", "),
                        INIT_TIMEOUT.as_secs()
                    ));
                    return Ok(Some(Failure::timeout(request_id, self.timeout)));
                }
            }
        }
    }

    /// An extension's failure during init: its own init error, or its end.
    fn extension_failure(&mut self, request_id: &str) -> Option<Failure> {
        if let Some((body, error_type)) = self.extension_init_error.take() {
            let mut failure = Failure::posted(FailureKind::Extension, body, error_type.as_deref());
            failure.kind = FailureKind::Extension;
            return Some(failure);
        }
        self.extensions.iter().find_map(|e| {
            e.exit()
                .map(|exit| Failure::extension_crash(request_id, &e.name, exit))
        })
    }

    fn init_runtime(&mut self, request_id: &str, started: Instant, until: Instant) -> Result<Init> {
        if self.launch.wraps() && self.launch.emulator.is_none() && !self.launch.bootstrap.exists()
        {
            // The container's relay would start and report the shell's "not found".
            let failure = Failure::no_bootstrap(request_id);
            return Ok(Init::Failed(
                self.init_failure(request_id, failure, started),
            ));
        }
        if self.launch.wraps() && !is_executable(&self.launch.bootstrap) {
            // qemu, or the container's relay, would run it anyway; Lambda's exec would not.
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
        loop {
            match self.wait(until)? {
                Happening::Extension => {
                    if let Some(failure) = self.extension_failure(request_id) {
                        return Ok(Init::Failed(
                            self.init_failure(request_id, failure, started),
                        ));
                    }
                    if self.process.as_ref().is_some_and(|p| p.next.is_some())
                        && self.extensions_ready()
                    {
                        return Ok(Init::Ready(started.elapsed()));
                    }
                }
                Happening::Request(request) => match request.route {
                    Route::Next => {
                        self.hold_next(*request);
                        if self.extensions_ready() {
                            return Ok(Init::Ready(started.elapsed()));
                        }
                    }
                    Route::InitError => {
                        let failure = match request.body {
                            Body::Complete(ref body) => Failure::posted(
                                FailureKind::InitError,
                                body.clone(),
                                request.header("Lambda-Runtime-Function-Error-Type"),
                            ),
                            Body::TooLarge(size) => Failure::response_too_large(size),
                            Body::Streaming(_) => {
                                Failure::posted(FailureKind::InitError, Vec::new(), None)
                            }
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
                    _ => request.not_found(),
                },
                Happening::Piece(_) => {}
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
        self.initializing = false;
        self.shutdown("failure");
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
                Happening::Extension => {}
                Happening::Piece(_) => {}
                Happening::Exited | Happening::Deadline => return Ok(()),
            }
        }
    }

    /// Forwards the output of the runtime and of the extensions.
    fn forward(&mut self, eof: bool) {
        let function = Tee::new(self.log, &self.telemetry, Stream::Function);
        if let Some(process) = self.process.as_mut() {
            process.forward_output(&function, eof);
            process.sample_memory();
        }
        let extension = Tee {
            stream: Stream::Extension,
            ..function
        };
        for process in self
            .extensions
            .iter_mut()
            .filter_map(|e| e.process.as_mut())
        {
            process.forward_output(&extension, eof);
        }
    }

    /// Waits for the next thing to happen, forwarding the output meanwhile. The Extensions and
    /// Telemetry APIs are answered here; what they change is reported as
    /// [`Happening::Extension`].
    fn wait(&mut self, until: Instant) -> Result<Happening> {
        loop {
            self.forward(false);
            if let Some(streaming) = &self.streaming {
                match streaming.pieces.try_recv() {
                    Ok(piece) => return Ok(Happening::Piece(piece)),
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        return Ok(Happening::Piece(Piece::Broken(
                            "the stream's reader stopped".to_owned(),
                        )));
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => {}
                }
            }
            if let Some(request) = self.api.try_recv() {
                if request.route.is_extensions_api() {
                    self.extensions_api(request);
                    return Ok(Happening::Extension);
                }
                return Ok(Happening::Request(Box::new(request)));
            }
            if let Some(process) = self.process.as_mut()
                && process.exit.is_none()
                && process.reap()
            {
                self.forward(true);
                return Ok(Happening::Exited);
            }
            let ended = self.extensions.iter_mut().position(|e| {
                e.process
                    .as_mut()
                    .is_some_and(|p| p.exit.is_none() && p.reap())
            });
            if ended.is_some() {
                self.forward(true);
                return Ok(Happening::Extension);
            }
            self.interrupt.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(Happening::Deadline);
            }
            // Output and requests wake the poll at once; the process's end and Ctrl-C are seen
            // within 50 ms.
            let wait = (until - now).min(Duration::from_millis(50));
            let mut fds: Vec<libc::pollfd> = self
                .process
                .iter()
                .chain(self.extensions.iter().filter_map(|e| e.process.as_ref()))
                .flat_map(Process::output_fds)
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

impl Instance<'_> {
    /// Answers a request of the Extensions or Telemetry API.
    fn extensions_api(&mut self, request: ApiRequest) {
        let id = request
            .header("Lambda-Extension-Identifier")
            .map(str::to_owned);
        let known = id.as_deref().and_then(|id| {
            self.extensions
                .iter()
                .position(|e| e.id.as_deref() == Some(id))
        });
        let body = match &request.body {
            Body::Complete(body) => body.clone(),
            Body::TooLarge(_) => return request.too_large(),
            // Only a runtime's response streams.
            Body::Streaming(_) => return request.not_found(),
        };
        match (&request.route, known) {
            (Route::ExtensionRegister, _) => self.register(request, &body),
            (_, None) => request.reject(
                403,
                "Extension.UnknownExtensionIdentifier",
                "unknown or missing Lambda-Extension-Identifier header: register first",
            ),
            (Route::ExtensionNext, Some(at)) => {
                // A second pending `next` replaces the first, which is answered 500 as it drops.
                self.extensions[at].next = Some(request);
            }
            (Route::ExtensionInitError, Some(_)) if self.initializing => {
                let error_type = request
                    .header("Lambda-Extension-Function-Error-Type")
                    .map(str::to_owned);
                request.accepted();
                self.extension_init_error = Some((body, error_type));
            }
            (Route::ExtensionInitError, Some(_)) => {
                request.invalid_state("Running", "InitError");
            }
            (Route::ExtensionExitError, Some(at)) => {
                self.log.warn(&format!(
                    "the extension `{}` reported an exit error: {}",
                    self.extensions[at].name,
                    String::from_utf8_lossy(&body)
                ));
                request.accepted();
            }
            (Route::TelemetrySubscribe, Some(_)) => match telemetry::parse_subscription(&body) {
                Ok(subscription) => {
                    self.telemetry
                        .subscribe(id.as_deref().unwrap_or_default(), subscription);
                    request.respond(200, &[], b"OK");
                }
                Err(message) => request.reject(400, "ValidationError", &message),
            },
            _ => request.not_found(),
        }
    }

    /// `POST /extension/register`: an extension of `/opt/extensions` by its file name, or an
    /// internal one (the runtime's process registering a name of its own), during init only.
    fn register(&mut self, request: ApiRequest, body: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Events {
            #[serde(default)]
            events: Vec<String>,
        }
        let Some(name) = request
            .header("Lambda-Extension-Name")
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
        else {
            return request.reject(
                400,
                "InvalidRequest",
                "the Lambda-Extension-Name header is missing",
            );
        };
        if !self.initializing {
            return request.reject(
                403,
                "Extension.InvalidState",
                "extensions register during the init phase only",
            );
        }
        let events = match serde_json::from_slice::<Events>(body) {
            Ok(events) => events.events,
            Err(e) => return request.reject(400, "InvalidRequest", &e.to_string()),
        };
        if let Some(bad) = events
            .iter()
            .find(|e| !matches!(e.as_str(), "INVOKE" | "SHUTDOWN"))
        {
            return request.reject(
                400,
                "InvalidEventType",
                &format!("unknown event type `{bad}`: the types are INVOKE and SHUTDOWN"),
            );
        }
        let at = match self.extensions.iter().position(|e| e.name == name) {
            Some(at) if self.extensions[at].id.is_some() => {
                return request.reject(
                    403,
                    "Extension.AlreadyRegistered",
                    &format!("the extension `{name}` is already registered"),
                );
            }
            Some(at) => at,
            None if events.iter().any(|e| e == "SHUTDOWN") => {
                return request.reject(
                    403,
                    "ShutdownEventNotSupportedForInternalExtension",
                    &format!(
                        "`{name}` is not in /opt/extensions: an internal extension cannot \
                         register for SHUTDOWN"
                    ),
                );
            }
            None => {
                self.extensions.push(Extension {
                    name: name.clone(),
                    process: None,
                    id: None,
                    invoke: false,
                    shutdown: false,
                    next: None,
                });
                self.extensions.len() - 1
            }
        };
        let id = lambda::request_id();
        let extension = &mut self.extensions[at];
        extension.id = Some(id.clone());
        extension.invoke = events.iter().any(|e| e == "INVOKE");
        extension.shutdown = events.iter().any(|e| e == "SHUTDOWN");
        let variable = |key: &str| {
            self.launch
                .env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let answer = serde_json::json!({
            "functionName": variable("AWS_LAMBDA_FUNCTION_NAME"),
            "functionVersion": variable("AWS_LAMBDA_FUNCTION_VERSION"),
            "handler": variable("_HANDLER"),
        });
        request.respond(
            200,
            &[
                ("Lambda-Extension-Identifier", id),
                ("Content-Type", "application/json".to_owned()),
            ],
            answer.to_string().as_bytes(),
        );
    }
}

/// An event of the Extensions API, with its `Lambda-Extension-Event-Identifier`.
fn send_extension_event(next: ApiRequest, event: &serde_json::Value) {
    next.send_event(
        &[
            ("Lambda-Extension-Event-Identifier", lambda::request_id()),
            ("Content-Type", "application/json".to_owned()),
        ],
        event.to_string().as_bytes(),
    );
}

/// How a streamed response ended: its outcome, and the error type for the REPORT line when
/// Lambda reports one. An error in the trailers is the handler's (its payload is the decoded
/// `Lambda-Runtime-Function-Error-Body`).
fn finish_stream(streaming: &Streaming, broken: Option<String>) -> (Outcome, Option<String>) {
    let trailer = |name: &str| {
        streaming
            .trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(error_type) = trailer("Lambda-Runtime-Function-Error-Type") {
        use base64::Engine as _;
        let body = trailer("Lambda-Runtime-Function-Error-Body").unwrap_or_default();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .unwrap_or_else(|_| body.as_bytes().to_vec());
        let failure = Failure::posted(FailureKind::Handler, payload, Some(error_type));
        return (Outcome::Failed(failure), None);
    }
    if streaming.bytes > MAX_STREAMED_BYTES {
        let failure = Failure::response_too_large_streamed(streaming.bytes);
        let error_type = failure.error_type.clone();
        return (Outcome::Failed(failure), Some(error_type));
    }
    if let Some(reason) = broken {
        let failure = Failure::lambda(
            FailureKind::Exit,
            "Runtime.TruncatedResponse",
            format!("the runtime's streamed response broke off: {reason}"),
        );
        let error_type = failure.error_type.clone();
        return (Outcome::Failed(failure), Some(error_type));
    }
    (Outcome::Streamed(streaming.bytes), None)
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
