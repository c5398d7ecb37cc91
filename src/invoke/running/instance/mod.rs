//! One execution environment: the `bootstrap` process through its init and its invocations,
//! driven through the Runtime API as Lambda drives it, with the external extensions of its
//! layers beside it, driven through the Extensions API.
//!
//! A single loop ([`Instance::wait`]) waits (with `poll`) on the output of the function and of
//! its extensions, the APIs' requests, the processes' ends, the deadline and Ctrl-C, and hands
//! what happened to the phase that waits: init (`init.rs`), an invocation (`invocation.rs`,
//! one method per Runtime API request) or shutdown. Reading the output before handling each
//! request keeps its lines in order with START / END.
//!
//! Lambda's phases, as here: init starts the extensions, waits until each has registered, then
//! starts `bootstrap`; it ends when the runtime and every extension wait in `next`. An
//! invocation sends INVOKE to the extensions that asked for it with the event to the runtime,
//! and ends when all of them are back in `next`. Shutdown (after the last event, or a reset
//! after a crash or a timeout) flushes the telemetry, sends SHUTDOWN, signals the runtime, and
//! kills what still runs after Lambda's 500 ms (internal extensions only) or 2 s (external ones).

mod concurrent;
mod extensions;
mod init;
mod invocation;
mod process;

use std::time::{Duration, Instant, SystemTime};

pub use concurrent::{Job, Jobs};
use extensions::{Extension, send_extension_event};
use init::Init;
use invocation::Streaming;
use process::Process;

use super::sandbox::Sandbox;
use super::sandbox::launch::Launch;
use super::server::{ApiRequest, Piece, RuntimeApi};
use super::telemetry::{Stream, Telemetry};
use crate::invoke::error::InvokeError;
use crate::invoke::function::FunctionSettings;
use crate::invoke::ids;
use crate::invoke::invoke_api::Caller;
use crate::invoke::record::{Log, Outcome, Record};
use crate::lambda::shutdown_budget;
use crate::signal::Interrupt;

type Result<T, E = InvokeError> = std::result::Result<T, E>;

/// In a container, the output travels through the engine and the relay, and may trail the API
/// requests the function made after writing it: before an invocation ends and before SHUTDOWN,
/// it is read up to the relays' sync marks, waiting this long at most.
const OUTPUT_SETTLE_LIMIT: Duration = Duration::from_secs(1);

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

/// An execution environment of a [`Sandbox`]: its processes come and go (a crash or a timeout
/// resets it, as on Lambda), its Runtime API stays. One invocation at a time, as Lambda's
/// default concurrency model runs them.
pub struct Instance<'a> {
    launch: &'a Launch,
    api: &'a RuntimeApi,
    timeout: Duration,
    arn: String,
    interrupt: &'a Interrupt,
    log: &'a dyn Log,
    process: Option<Process>,
    /// The runtime's `GET next`, held until there is an event for it.
    next: Option<ApiRequest>,
    /// `/opt/extensions/*`, started at each init.
    extension_launches: &'a [Launch],
    /// The registered or starting extensions of the current environment.
    extensions: Vec<Extension>,
    telemetry: Telemetry,
    /// Registration is open during init only.
    initializing: bool,
    /// An extension's `POST /extension/init/error`.
    extension_init_error: Option<(Vec<u8>, Option<String>)>,
    /// The response being streamed, between its POST and its end.
    streaming: Option<Streaming>,
    /// In the shutdown phase, which Ctrl-C does not cut short.
    draining: bool,
    /// In container mode: whose peak memory is reported (the processes here are relays).
    container: Option<&'a crate::invoke::container::Environment>,
    /// Lambda Managed Instances' `AWS_LAMBDA_MAX_CONCURRENCY` (1: Lambda's default model).
    concurrency: u32,
    /// The tenant this environment serves, sent with each event.
    tenant_id: Option<String>,
    /// With concurrency: the responses being streamed, each with its invocation's request id.
    streams: Vec<(String, Streaming)>,
    /// With concurrency: the runtime's other `GET next`s, held until there is work for them.
    held: Vec<ApiRequest>,
    /// `--snap-start`: the init ends in `restore/next`, answered after a pause.
    snap_start: bool,
    /// SnapStart: when the current init's `restore/next` was answered (the restore began).
    restored: Option<Instant>,
}

/// What [`Instance::wait`] saw.
enum Happening {
    /// A request of the Runtime API (the Extensions and Telemetry APIs' are answered in `wait`).
    Request(Box<ApiRequest>),
    Piece(Piece),
    /// A piece of one of the concurrent streams, with its invocation's request id.
    StreamPiece(String, Piece),
    /// The runtime's process ended.
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

impl<'a> Instance<'a> {
    /// The environment that runs `sandbox`'s function with `function`'s timeout; nothing
    /// starts until the first invocation.
    pub fn new(
        sandbox: &'a Sandbox,
        function: &FunctionSettings,
        interrupt: &'a Interrupt,
        log: &'a dyn Log,
    ) -> Instance<'a> {
        Instance {
            launch: &sandbox.launch,
            api: &sandbox.api,
            timeout: Duration::from_secs(u64::from(function.timeout_secs)),
            arn: function.arn(),
            interrupt,
            log,
            process: None,
            next: None,
            extension_launches: &sandbox.extensions,
            extensions: Vec::new(),
            telemetry: Telemetry::default(),
            initializing: false,
            extension_init_error: None,
            streaming: None,
            draining: false,
            container: sandbox.container.as_ref(),
            concurrency: function.max_concurrency(),
            tenant_id: function.tenant_id.clone(),
            streams: Vec::new(),
            held: Vec::new(),
            snap_start: function.snap_start,
            restored: None,
        }
    }

    /// The environment of one tenant (tenant isolation: Lambda never shares one between
    /// tenants).
    pub fn for_tenant(mut self, tenant_id: Option<String>) -> Self {
        self.tenant_id = tenant_id;
        self
    }

    /// Whether it takes several invocations at once (`--concurrency` above 1).
    pub fn concurrent(&self) -> bool {
        self.concurrency > 1
    }

    /// Runs one event: starts the process first when there is none (a cold start, or after a
    /// crash or a timeout reset the environment, as on Lambda). `Err` only for the tool's own
    /// failures and Ctrl-C; whatever the function does is in the [`Record`].
    pub fn invoke(
        &mut self,
        event: &[u8],
        caller: &Caller,
        stream: &mut dyn ResponseStream,
    ) -> Result<Record> {
        let request_id = ids::request_id();
        let init_duration = match self.process {
            Some(_) => None,
            None => match self.init(&request_id)? {
                Init::Ready(duration) => Some(duration),
                Init::Failed(record) => return Ok(record),
            },
        };
        let (init_duration, restore_duration) = self.cold_durations(init_duration);
        let mut invocation = self.deliver(request_id, event, caller);
        loop {
            invocation.tell(stream);
            let happening = self.wait(invocation.deadline)?;
            if self.handle(&mut invocation, happening, stream).is_break() {
                break;
            }
        }
        let mut record = self.finish(invocation, init_duration, stream);
        record.restore_duration = restore_duration;
        Ok(record)
    }

    /// Ends the process, as Lambda ends the environment after the last event.
    pub fn stop(&mut self) {
        self.shutdown("spindown");
    }

    /// The shutdown phase, as long as Lambda's for the extensions registered
    /// ([`shutdown_budget`]): the external extensions that asked for SHUTDOWN get it (after the
    /// telemetry they subscribed to is delivered) and the runtime SIGTERM; whatever still runs
    /// when the runtime and those extensions have ended, or when the phase is over, is killed.
    /// Without extensions the runtime is killed at once, as Lambda gives it no shutdown phase
    /// then. Ctrl-C does not cut the phase short: it is the environment's end too.
    fn shutdown(&mut self, reason: &str) {
        let external = self.extensions.iter().any(|e| e.process.is_some());
        let internal = self
            .extensions
            .iter()
            .any(|e| e.process.is_none() && e.id.is_some());
        let budget = shutdown_budget(internal, external);
        if !budget.is_zero() {
            self.settle_output();
            self.forward(false);
            self.telemetry.flush();
            self.shutdown_phase(reason, budget);
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

    /// SHUTDOWN and SIGTERM, then waits until the runtime and the extensions told have ended,
    /// `budget` at most.
    fn shutdown_phase(&mut self, reason: &str, budget: Duration) {
        let deadline_at = SystemTime::now() + budget;
        let until = Instant::now() + budget;
        let event = serde_json::json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": reason,
            "deadlineMs": ids::epoch_millis(deadline_at) as u64,
        });
        for extension in self.extensions.iter_mut().filter(|e| e.shutdown) {
            if let Some(next) = extension.next.take() {
                send_extension_event(next, &event);
            }
        }
        if let Some(process) = self.process.as_mut() {
            process.terminate();
        }
        self.draining = true;
        while self.process.as_ref().is_some_and(|p| p.exit().is_none())
            || self.extensions.iter().any(|e| {
                e.shutdown
                    && e.next.is_none()
                    && e.process.as_ref().is_some_and(|p| p.exit().is_none())
            })
        {
            match self.wait(until) {
                Ok(Happening::Deadline) | Err(_) => break,
                // The runtime's end, and whatever it asks now, change nothing.
                Ok(Happening::Exited) => {
                    drop(self.process.take());
                    self.next = None;
                }
                Ok(
                    Happening::Request(_)
                    | Happening::Extension
                    | Happening::Piece(_)
                    | Happening::StreamPiece(..),
                ) => {}
            }
        }
        self.draining = false;
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
        self.next = None;
        self.held.clear();
        self.streams.clear();
    }

    /// Holds the runtime's `GET next` until there is an event for it.
    fn hold_next(&mut self, request: ApiRequest) {
        if self.process.is_none() {
            return;
        }
        if self.concurrency > 1 && self.next.is_some() {
            // Managed Instances: up to `concurrency` wait at once (see `concurrent`).
            self.held.push(request);
        } else {
            // A second pending `next` replaces the first, which is answered 500 as it drops.
            self.next = Some(request);
        }
    }

    /// A piece of one of the concurrent streams, if one arrived.
    fn stream_piece(&self) -> Option<Happening> {
        self.streams.iter().find_map(|(id, streaming)| {
            let piece = match streaming.pieces.try_recv() {
                Ok(piece) => piece,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    Piece::Broken("the stream's reader stopped".to_owned())
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return None,
            };
            Some(Happening::StreamPiece(id.clone(), piece))
        })
    }

    fn peak_memory(&mut self) -> Option<u64> {
        if let Some(container) = self.container {
            return container.peak_memory_kib();
        }
        self.process.as_mut().and_then(Process::peak_memory_kib)
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
            if let Some(piece) = self.stream_piece() {
                return Ok(piece);
            }
            if let Some(request) = self.api.try_recv() {
                if request.route.is_extensions_api() {
                    self.extensions_api(request);
                    return Ok(Happening::Extension);
                }
                return Ok(Happening::Request(Box::new(request)));
            }
            if let Some(process) = self.process.as_mut()
                && process.exit().is_none()
                && process.reap()
            {
                self.forward(true);
                return Ok(Happening::Exited);
            }
            let ended = self.extensions.iter_mut().position(|e| {
                e.process
                    .as_mut()
                    .is_some_and(|p| p.exit().is_none() && p.reap())
            });
            if ended.is_some() {
                self.forward(true);
                return Ok(Happening::Extension);
            }
            if !self.draining {
                self.interrupt.check()?;
            }
            let now = Instant::now();
            if now >= until {
                return Ok(Happening::Deadline);
            }
            // Output and requests wake the poll at once; the process's end and Ctrl-C are seen
            // within 50 ms.
            self.poll((until - now).min(Duration::from_millis(50)));
        }
    }

    /// Sleeps until output or a request arrives, `wait` at most.
    /// In container mode, reads the output up to the relays' sync marks (see
    /// `build::docker::exec`), so that lines written before an answer land before END and in
    /// the telemetry before SHUTDOWN.
    fn settle_output(&mut self) {
        if self.container.is_none() {
            return;
        }
        self.processes_mut().for_each(Process::request_sync);
        let until = Instant::now() + OUTPUT_SETTLE_LIMIT;
        loop {
            self.forward(false);
            if self.processes_mut().all(|p| p.synced()) || Instant::now() >= until {
                return;
            }
            // The API's requests wait for `wait`: only the output wakes this one.
            self.poll_on(false, Duration::from_millis(10));
        }
    }

    /// The runtime's process and the extensions'.
    fn processes_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.process.iter_mut().chain(
            self.extensions
                .iter_mut()
                .filter_map(|e| e.process.as_mut()),
        )
    }

    fn poll(&self, wait: Duration) {
        self.poll_on(true, wait);
    }

    /// Waits up to `wait` for the processes' output, and with `api` for the APIs' requests.
    #[cfg(unix)]
    fn poll_on(&self, api: bool, wait: Duration) {
        let wake = api.then(|| self.api.wake().fd());
        let mut fds: Vec<libc::pollfd> = self
            .process
            .iter()
            .chain(self.extensions.iter().filter_map(|e| e.process.as_ref()))
            .flat_map(Process::output_fds)
            .chain(wake)
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

    /// Waits up to `wait` for the processes' output or the APIs' requests: their reader
    /// threads and the server wake the same flag, so an API request wakes this even without
    /// `api` (the loop then looks again, and the request waits for `wait`).
    #[cfg(not(unix))]
    fn poll_on(&self, _api: bool, wait: Duration) {
        self.api.wake().wait(wait);
    }
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}
