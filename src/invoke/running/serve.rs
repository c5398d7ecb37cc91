//! `cargo lambda-build serve`: the packaged function behind a local HTTP port, as a Function URL
//! or API Gateway would put it: request -> event (http) -> the `invoke` sandbox -> response;
//! and Lambda's Invoke API beside it (invoke_api), whose requests carry the event itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::console::{self, Console};
use super::front::{Arrival, Front, Reply};
use super::instance::{Instance, Job, Jobs, ResponseStream};
use super::sandbox::Sandbox;
use crate::cli::ServeArgs;
use crate::env::{Env, Ui, Verbosity};
use crate::invoke::failure::Failure;
use crate::invoke::http::{self, EventFormat, HttpRequest, METADATA_END};
use crate::invoke::invoke_api::{self, Caller, InvocationType};
use crate::invoke::record::{Outcome, Record};
use crate::invoke::{
    FunctionSettings, InvokeError, Outcomes, Result, ids, packaged_function_settings,
};
use crate::lambda::header::INVOKE_TENANT_ID;
use crate::lambda::{MAX_EVENT_BYTES, MAX_RESPONSE_BYTES};
use crate::report::Reporter;
use crate::signal::Interrupt;

/// `serve`'s settings, resolved from the command line and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub artifact: PathBuf,
    pub addr: SocketAddr,
    pub format: EventFormat,
    pub function: FunctionSettings,
}

impl ServeConfig {
    pub fn resolve(args: ServeArgs, env: &Env) -> Result<ServeConfig> {
        crate::invoke::refuse_build_flags(&args.selection, "serve")?;
        let artifact =
            crate::invoke::artifact_or_image(args.artifact, args.outdir, &args.function, env)?;
        Ok(ServeConfig {
            artifact,
            addr: SocketAddr::new(
                args.bind.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                args.port,
            ),
            format: args.event_format.into(),
            function: packaged_function_settings(args.function, env)?,
        })
    }
}

/// `cargo lambda-build serve`: listens, then serves until Ctrl-C.
pub fn run(args: ServeArgs, env: &Env, ui: Ui) -> Result<()> {
    let interrupt = Interrupt::register()
        .map_err(|e| InvokeError::Other(anyhow::anyhow!("cannot install a signal handler: {e}")))?;
    let bind = args.bind;
    let config = ServeConfig::resolve(args, env)?;
    // Listening first: a port in use is refused before anything is extracted or started.
    let front = Front::bind(bind, config.addr.port())?;
    announce(&front)?;
    serve_until_stopped(
        &front,
        &config,
        &Reporter::plain(ui),
        ui.verbosity,
        &interrupt,
    )
}

/// `config`'s artifact behind `front` until Ctrl-C: `serve`, and `serve --native` once built.
pub fn serve_until_stopped(
    front: &Front,
    config: &ServeConfig,
    reporter: &Reporter,
    verbosity: Verbosity,
    interrupt: &Interrupt,
) -> Result<()> {
    serve_function(
        front,
        &config.artifact,
        config,
        reporter,
        verbosity,
        interrupt,
        &|| false,
    )
}

/// Prints where `front` listens. The address is the result (with `--port 0`, the only way to
/// learn it): on stdout, even with `-q`.
pub fn announce(front: &Front) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "http://{}/", front.addr)
        .and_then(|()| stdout.flush())
        .map_err(|e| InvokeError::Other(anyhow::anyhow!("cannot write to stdout: {e}")))
}

/// Starts the function of `artifact` in a fresh sandbox and answers `front`'s requests with it
/// until Ctrl-C (`Err(Interrupted)`) or until `restart()` says to stop (`Ok`); the function's
/// processes and task roots are gone when it returns. `serve --watch` calls it once per build,
/// on the same front, so clients keep their address.
///
/// Each tenant (a request's `X-Amz-Tenant-Id`) gets an execution environment of its own, as
/// tenant isolation keeps them apart on Lambda: its own sandbox and process, in a thread of its
/// own, so that one tenant's invocation never waits for another's. Requests without the header
/// share the first environment.
pub fn serve_function(
    front: &Front,
    artifact: &Path,
    config: &ServeConfig,
    reporter: &Reporter,
    verbosity: Verbosity,
    interrupt: &Interrupt,
    restart: &dyn Fn() -> bool,
) -> Result<()> {
    let sandbox = Sandbox::prepare_for(artifact, &config.function, reporter, interrupt)?;
    reporter.status("Serving", serving(artifact, &sandbox, config, front));
    sandbox.report_extensions(reporter);
    if verbosity.verbose() {
        reporter.status("Running", format!("`{}`", sandbox.launch));
    }
    let emulated = sandbox.emulated();
    let (result, records) = std::thread::scope(|scope| {
        let start = |sandbox: Sandbox, tenant: Option<String>| {
            let (sender, arrivals) = mpsc::channel();
            let thread = scope.spawn(move || {
                let run = (config, reporter, verbosity, interrupt);
                serve_environment(&sandbox, tenant, &arrivals, run)
            });
            (sender, thread)
        };
        let mut environments = vec![(None, start(sandbox, None))];
        let result = loop {
            if let Err(stop) = interrupt.check() {
                break Err(stop.into());
            }
            if restart() {
                break Ok(());
            }
            let (request, reply, arrived) = match front.next(Duration::from_millis(50)) {
                None => continue,
                Some(Arrival::Refused {
                    method,
                    path,
                    reason,
                }) => {
                    reporter.warn(format!("refused {method} {path}: {reason}"));
                    continue;
                }
                Some(Arrival::Request {
                    request,
                    reply,
                    arrived,
                }) => (request, reply, arrived),
            };
            let tenant = tenant_of(&request);
            let at = match environments.iter().position(|(t, _)| *t == tenant) {
                Some(at) => at,
                None => match Sandbox::prepare_for(artifact, &config.function, reporter, interrupt)
                {
                    Ok(sandbox) => {
                        reporter.status(
                            "Starting",
                            format!(
                                "an execution environment of its own for tenant `{}`",
                                tenant.as_deref().unwrap_or_default()
                            ),
                        );
                        environments.push((tenant.clone(), start(sandbox, tenant)));
                        environments.len() - 1
                    }
                    Err(error) => {
                        reporter.warn(format!(
                            "refused {} {}: no execution environment for its tenant: {error}",
                            request.method, request.path
                        ));
                        reply.send(http::failure_response(config.format));
                        continue;
                    }
                },
            };
            let (sender, _) = &environments[at].1;
            let arrival = Arrival::Request {
                request,
                reply,
                arrived,
            };
            if sender.send(arrival).is_err() {
                // The environment stopped on an error of its own, told below.
                break Ok(());
            }
        };
        join(
            environments.into_iter().map(|(_, environment)| environment),
            result,
        )
    });
    let outcomes = Outcomes {
        records,
        memory_mb: config.function.memory_mb,
    };
    console::report_summary(&outcomes, reporter, emulated);
    result
}

/// `ARTIFACT (ARCH) as FORMAT at http://ADDR/ : timeout..., memory...; Ctrl-C stops`.
fn serving(artifact: &Path, sandbox: &Sandbox, config: &ServeConfig, front: &Front) -> String {
    let concurrency = match config.function.concurrency {
        Some(n) => format!(", up to {n} invocations at once"),
        None => String::new(),
    };
    format!(
        "{} ({}) as {} at http://{}/{} : timeout {} s, memory {} MB{concurrency}; Ctrl-C stops",
        artifact.display(),
        sandbox.arch,
        config.format.describe(),
        front.addr,
        front
            .also
            .map(|also| format!(" and http://{also}/"))
            .unwrap_or_default(),
        config.function.timeout_secs,
        config.function.memory_mb
    )
}

/// Ends the environments (closing its channel ends one once its invocations are over): their
/// records, and the first error, the serving loop's before theirs.
fn join<'s>(
    environments: impl Iterator<
        Item = (
            mpsc::Sender<Arrival>,
            std::thread::ScopedJoinHandle<'s, (Result<()>, Vec<Record>)>,
        ),
    >,
    mut result: Result<()>,
) -> (Result<()>, Vec<Record>) {
    let mut records = Vec::new();
    for (sender, thread) in environments {
        drop(sender);
        let (ended, kept) = thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        records.extend(kept);
        if result.is_ok() {
            result = ended;
        }
    }
    (result, records)
}

/// The request's tenant (`X-Amz-Tenant-Id`), when it names one.
fn tenant_of(request: &HttpRequest) -> Option<String> {
    request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(INVOKE_TENANT_ID))
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// What every environment of a `serve` shares.
type Run<'r> = (&'r ServeConfig, &'r Reporter, Verbosity, &'r Interrupt);

/// One execution environment: `sandbox`'s function, for `tenant`, answering the requests that
/// arrive until the channel closes; its records, and why it stopped early.
fn serve_environment(
    sandbox: &Sandbox,
    tenant: Option<String>,
    arrivals: &Receiver<Arrival>,
    (config, reporter, verbosity, interrupt): Run<'_>,
) -> (Result<()>, Vec<Record>) {
    let console = Console::new(reporter, verbosity, sandbox.launch.emulator.is_some())
        .json(config.function.json_logs());
    let mut instance =
        Instance::new(sandbox, &config.function, interrupt, &console).for_tenant(tenant);
    let mut records = Vec::new();
    let result = if instance.concurrent() {
        let mut jobs = Requests {
            arrivals,
            closed: false,
            config,
            reporter,
            console: &console,
            verbosity,
            records: Vec::new(),
        };
        let result = instance.run_jobs(&mut jobs);
        records = jobs.records;
        result
    } else {
        serve_one_at_a_time(
            arrivals,
            config,
            &mut instance,
            (reporter, &console, verbosity),
            &mut records,
            interrupt,
        )
    };
    instance.stop();
    (result, records)
}

/// Requests one after the other, each answered before the next is taken: Lambda's default
/// model, one invocation at a time per execution environment.
fn serve_one_at_a_time(
    arrivals: &Receiver<Arrival>,
    config: &ServeConfig,
    instance: &mut Instance<'_>,
    (reporter, console, verbosity): (&Reporter, &Console<'_>, Verbosity),
    records: &mut Vec<Record>,
    interrupt: &Interrupt,
) -> Result<()> {
    loop {
        interrupt.check()?;
        match arrivals.recv_timeout(Duration::from_millis(50)) {
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
            Ok(Arrival::Refused {
                method,
                path,
                reason,
            }) => reporter.warn(format!("refused {method} {path}: {reason}")),
            Ok(Arrival::Request {
                request,
                reply,
                arrived,
            }) => {
                let started = Instant::now();
                let (status, record) = if invoke_api::is_invoke_api(&request) {
                    answer_invoke(instance, config, console, &request, reply, reporter)?
                } else {
                    answer(instance, config, &request, reply, reporter)?
                };
                if let Some(record) = record {
                    console.end(&record, config.function.memory_mb);
                    records.push(record);
                }
                log_request(console, verbosity, &request, status, (arrived, started));
            }
        }
    }
}

/// The request's line (see [`request_line`]), unless `-q`; `(arrived, started)`: when it
/// reached the front and when its turn came.
fn log_request(
    console: &Console<'_>,
    verbosity: Verbosity,
    request: &HttpRequest,
    status: u16,
    (arrived, started): (Instant, Instant),
) {
    if verbosity != Verbosity::Quiet {
        let line = request_line(request, status, started - arrived, started.elapsed());
        console.line(line.as_bytes());
    }
}

/// `serve`'s requests with `--concurrency`: each handed to the function as it arrives, up to
/// the limit at once.
struct Requests<'r, 'c> {
    arrivals: &'r Receiver<Arrival>,
    /// The serving loop closed the channel: no request will come any more.
    closed: bool,
    config: &'r ServeConfig,
    reporter: &'r Reporter,
    console: &'r Console<'c>,
    verbosity: Verbosity,
    records: Vec<Record>,
}

/// Where a request's answer goes: the HTTP client of the front's event format, streamed as it
/// comes; or an Invoke API caller, answered with the whole payload at the invocation's end
/// (`reply` none for an `Event` invocation, answered 202 when it arrived).
enum Answer<'a> {
    Http(HttpStream<'a>),
    Invoke {
        reply: Option<Reply>,
        buffered: Buffered,
    },
    InvokeStream(InvokeStream),
}

/// A request's answer under way, with what its log line needs.
struct Pending<'a> {
    answer: Answer<'a>,
    request: HttpRequest,
    /// When it reached the front and when its turn came.
    times: (Instant, Instant),
}

impl ResponseStream for Pending<'_> {
    fn begin(&mut self, content_type: Option<&str>) {
        match &mut self.answer {
            Answer::Http(http) => http.begin(content_type),
            Answer::Invoke { buffered, .. } => buffered.begin(content_type),
            Answer::InvokeStream(stream) => stream.begin(content_type),
        }
    }
    fn data(&mut self, data: &[u8]) {
        match &mut self.answer {
            Answer::Http(http) => http.data(data),
            Answer::Invoke { buffered, .. } => buffered.data(data),
            Answer::InvokeStream(stream) => stream.data(data),
        }
    }
    fn end(&mut self, complete: bool) {
        match &mut self.answer {
            Answer::Http(http) => http.end(complete),
            Answer::Invoke { buffered, .. } => buffered.end(complete),
            Answer::InvokeStream(stream) => stream.end(complete),
        }
    }
    fn answered(&mut self, outcome: &Outcome) {
        if let Answer::Http(http) = &mut self.answer {
            http.answered(outcome);
        }
    }
}

impl<'r> Requests<'r, '_> {
    /// The job of an arrived request, or `None` when it was answered without one (too large an
    /// event, a refused or `DryRun` Invoke API call), its line logged.
    fn job(
        &self,
        request: HttpRequest,
        reply: Reply,
        arrived: Instant,
    ) -> Option<Job<Pending<'r>>> {
        let times = (arrived, Instant::now());
        let (event, caller, answer) = if invoke_api::is_invoke_api(&request) {
            let (call, reply) = match invoke_call(self.config, &request, reply, self.reporter) {
                Ok(taken) => taken,
                Err(status) => {
                    log_request(self.console, self.verbosity, &request, status, times);
                    return None;
                }
            };
            // With invocations running side by side, the log's tail would mix theirs: none is
            // returned (`X-Amz-Log-Type: Tail` is answered without `X-Amz-Log-Result`).
            let answer = match reply {
                Some(reply) if call.streaming => Answer::InvokeStream(InvokeStream::new(reply)),
                reply => Answer::Invoke {
                    reply,
                    buffered: Buffered::default(),
                },
            };
            (call.payload, call.caller, answer)
        } else {
            let Some((event, reply)) = event_of(self.config, &request, reply, self.reporter) else {
                log_request(self.console, self.verbosity, &request, 413, times);
                return None;
            };
            let http = HttpStream::new(reply, self.config.format, self.reporter);
            (event, Caller::default(), Answer::Http(http))
        };
        Some(Job {
            event,
            caller,
            stream: Pending {
                answer,
                request,
                times,
            },
        })
    }
}

impl<'r> Jobs for Requests<'r, '_> {
    type Stream = Pending<'r>;

    fn take(&mut self) -> Option<Job<Pending<'r>>> {
        loop {
            let arrival = match self.arrivals.try_recv() {
                Ok(arrival) => arrival,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    return None;
                }
            };
            match arrival {
                Arrival::Refused {
                    method,
                    path,
                    reason,
                } => self
                    .reporter
                    .warn(format!("refused {method} {path}: {reason}")),
                Arrival::Request {
                    request,
                    reply,
                    arrived,
                } => {
                    if let Some(job) = self.job(request, reply, arrived) {
                        return Some(job);
                    }
                }
            }
        }
    }

    fn finished(&mut self) -> bool {
        self.closed
    }

    fn ended(&mut self, record: Record, pending: Pending<'r>) {
        let status = match pending.answer {
            Answer::Http(mut http) => {
                if http.reply.is_some() {
                    // A failed init ends the invocation before the instance tells.
                    http.answered(&record.outcome);
                }
                http.status
            }
            Answer::Invoke {
                reply: Some(reply),
                buffered,
            } => {
                let response = invoke_response(&record, &buffered, None, self.reporter);
                let status = response.status;
                reply.send(response);
                status
            }
            Answer::Invoke { reply: None, .. } => 202,
            Answer::InvokeStream(mut stream) => {
                stream.complete(&record.outcome, None, self.reporter);
                200
            }
        };
        self.console.end(&record, self.config.function.memory_mb);
        self.records.push(record);
        log_request(
            self.console,
            self.verbosity,
            &pending.request,
            status,
            pending.times,
        );
    }
}

/// The event of `request`; `None` when it is over Lambda's limit, which is answered 413 here.
fn event_of(
    config: &ServeConfig,
    request: &HttpRequest,
    reply: Reply,
    reporter: &Reporter,
) -> Option<(Vec<u8>, Reply)> {
    let event = http::event(
        config.format,
        request,
        &config.function.region,
        &ids::request_id(),
        SystemTime::now(),
    );
    if event.len() > MAX_EVENT_BYTES {
        reporter.warn(format!(
            "refused {} {}: its event is {} bytes, over Lambda's {MAX_EVENT_BYTES}",
            request.method,
            request.path,
            event.len()
        ));
        reply.send(http::too_large_response(MAX_EVENT_BYTES));
        return None;
    }
    Some((event, reply))
}

/// `GET /path?query -> 200 (1.9 ms, queued 0.1 ms)`: the request, its answer, how long it took
/// from its turn on, and how long it waited for its turn (behind the requests before it).
fn request_line(request: &HttpRequest, status: u16, queued: Duration, took: Duration) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{} {}{} -> {status} ({:.1} ms, queued {:.1} ms)",
        request.method,
        request.path,
        if request.query.is_empty() {
            String::new()
        } else {
            format!("?{}", request.query)
        },
        ms(took),
        ms(queued)
    )
}

/// Runs an Invoke API request (`POST /2015-03-31/functions/NAME/invocations`) as Lambda's
/// Invoke does: the event is the request's body, the answer the payload, buffered (Invoke does
/// not stream) and the end of the log with `X-Amz-Log-Type: Tail`; `Event` is answered 202
/// before it runs, `DryRun` 204 without running.
fn answer_invoke(
    instance: &mut Instance<'_>,
    config: &ServeConfig,
    console: &Console<'_>,
    request: &HttpRequest,
    reply: Reply,
    reporter: &Reporter,
) -> Result<(u16, Option<Record>)> {
    let function = &config.function;
    let (call, reply) = match invoke_call(config, request, reply, reporter) {
        Ok(taken) => taken,
        Err(status) => return Ok((status, None)),
    };
    let mut buffered = Buffered::default();
    let Some(reply) = reply else {
        // An `Event` invocation, answered 202 already.
        let record = instance.invoke(&call.payload, &call.caller, &mut buffered)?;
        return Ok((202, Some(record)));
    };
    if call.tail {
        console.capture();
    }
    if call.streaming {
        let mut stream = InvokeStream::new(reply);
        let record = instance.invoke(&call.payload, &call.caller, &mut stream)?;
        let log = call
            .tail
            .then(|| console.captured(&record, function.memory_mb));
        stream.complete(&record.outcome, log.as_deref(), reporter);
        return Ok((200, Some(record)));
    }
    let record = instance.invoke(&call.payload, &call.caller, &mut buffered)?;
    let log = call
        .tail
        .then(|| console.captured(&record, function.memory_mb));
    let response = invoke_response(&record, &buffered, log.as_deref(), reporter);
    let status = response.status;
    reply.send(response);
    Ok((status, Some(record)))
}

/// An Invoke API request read: the call to run, with the reply that waits for its payload
/// (`None` for an `Event` invocation, answered 202 here); or the status of the answer already
/// sent (a refused request, warned of; `DryRun`'s 204).
fn invoke_call(
    config: &ServeConfig,
    request: &HttpRequest,
    reply: Reply,
    reporter: &Reporter,
) -> std::result::Result<(invoke_api::InvokeCall, Option<Reply>), u16> {
    let function = &config.function;
    let answer = match invoke_api::read(request, &function.name, &function.region) {
        Ok(call) => match call.invocation_type {
            InvocationType::DryRun => invoke_api::dry_run(),
            InvocationType::Event => {
                reply.send(invoke_api::accepted());
                return Ok((call, None));
            }
            InvocationType::RequestResponse => return Ok((call, Some(reply))),
        },
        Err(refusal) => {
            reporter.warn(format!(
                "refused {} {}: {}",
                request.method,
                request.path,
                String::from_utf8_lossy(&refusal.body)
            ));
            refusal
        }
    };
    let status = answer.status;
    reply.send(answer);
    Err(status)
}

/// The Invoke API's answer to an invocation: its payload (a streamed one over what Invoke
/// returns is its failure), or its error, warned of here; the log's tail with `Tail`.
fn invoke_response(
    record: &Record,
    buffered: &Buffered,
    log: Option<&[u8]>,
    reporter: &Reporter,
) -> http::HttpResponse {
    let outcome = match &record.outcome {
        Outcome::Streamed(size) if *size > MAX_RESPONSE_BYTES as u64 => {
            Outcome::Failed(Failure::response_too_large(*size))
        }
        outcome => outcome.clone(),
    };
    if let Outcome::Failed(failure) = &outcome {
        reporter.warn(failed_line(failure));
    }
    invoke_api::answer(&record.request_id, &outcome, &buffered.data, log)
}

/// InvokeWithResponseStream's answer: the event stream starts when the function's stream does
/// (or when a buffered answer is complete), each piece passed on as a `PayloadChunk` event as
/// it comes; `InvokeComplete` ends it once the invocation is over.
struct InvokeStream {
    reply: Option<Reply>,
    chunks: Option<UnboundedSender<std::result::Result<Bytes, std::io::Error>>>,
}

impl InvokeStream {
    fn new(reply: Reply) -> InvokeStream {
        InvokeStream {
            reply: Some(reply),
            chunks: None,
        }
    }

    fn start(&mut self) {
        if let Some(reply) = self.reply.take() {
            self.chunks = Some(reply.stream(200, &invoke_api::stream_head()));
        }
    }

    fn send(&self, message: Vec<u8>) {
        if let Some(chunks) = &self.chunks {
            let _ = chunks.send(Ok(Bytes::from(message)));
        }
    }

    /// The invocation is over: a buffered response as one `PayloadChunk`, then `InvokeComplete`
    /// with the failure, if any (warned of here), and the log's tail when asked for.
    fn complete(&mut self, outcome: &Outcome, log: Option<&[u8]>, reporter: &Reporter) {
        self.start();
        let failed = match outcome {
            Outcome::Response(payload) => {
                if !payload.is_empty() {
                    self.send(invoke_api::payload_chunk(payload));
                }
                None
            }
            Outcome::Streamed(_) => None,
            Outcome::Failed(failure) => {
                reporter.warn(failed_line(failure));
                Some((failure.error_type.as_str(), failure.message.trim_end()))
            }
        };
        self.send(invoke_api::invoke_complete(failed, log));
        // Dropping the sender ends the body.
        self.chunks = None;
    }
}

impl ResponseStream for InvokeStream {
    fn begin(&mut self, _content_type: Option<&str>) {
        self.start();
    }

    fn data(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.send(invoke_api::payload_chunk(data));
        }
    }

    fn end(&mut self, _complete: bool) {}
}

/// A streamed response kept for the Invoke API's answer, up to what Invoke returns.
#[derive(Default)]
struct Buffered {
    data: Vec<u8>,
}

impl ResponseStream for Buffered {
    fn begin(&mut self, _content_type: Option<&str>) {
        self.data.clear();
    }

    fn data(&mut self, data: &[u8]) {
        let room = (MAX_RESPONSE_BYTES + 1).saturating_sub(self.data.len());
        self.data.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn end(&mut self, _complete: bool) {}
}

/// Runs one request through the function and answers it; returns the status sent and the
/// invocation's record (`None` when the request never became an invocation: too large an event).
fn answer(
    instance: &mut Instance<'_>,
    config: &ServeConfig,
    request: &HttpRequest,
    reply: Reply,
    reporter: &Reporter,
) -> Result<(u16, Option<Record>)> {
    let Some((event, reply)) = event_of(config, request, reply, reporter) else {
        return Ok((413, None));
    };
    let mut stream = HttpStream::new(reply, config.format, reporter);
    let record = instance.invoke(&event, &Caller::default(), &mut stream)?;
    if stream.reply.is_some() {
        // A failed init ends the invocation before the instance tells.
        stream.answered(&record.outcome);
    }
    Ok((stream.status, Some(record)))
}

/// The warning of a failed invocation.
fn failed_line(failure: &Failure) -> String {
    format!(
        "the invocation failed with {}: {}",
        failure.error_type,
        failure.message.trim_end()
    )
}

/// The HTTP response for a buffered outcome, and why it is a failure response, if it is.
fn buffered_response(
    format: EventFormat,
    outcome: &Outcome,
) -> (http::HttpResponse, Option<String>) {
    match outcome {
        Outcome::Response(payload) => match http::response(format, payload) {
            Ok(response) => (response, None),
            Err(why) => (
                http::failure_response(format),
                Some(format!(
                    "{} answers {} here: {why}",
                    format.describe(),
                    http::failure_response(format).status
                )),
            ),
        },
        Outcome::Failed(failure) => (http::failure_response(format), Some(failed_line(failure))),
        Outcome::Streamed(_) => (http::failure_response(format), None),
    }
}

/// The answer to the HTTP client: a streamed response passed on as it arrives, or the buffered
/// one sent as soon as the function posts it.
struct HttpStream<'a> {
    format: EventFormat,
    reporter: &'a Reporter,
    reply: Option<Reply>,
    chunks: Option<UnboundedSender<std::result::Result<Bytes, std::io::Error>>>,
    /// The prelude read so far, while its end is not there yet.
    prelude: Option<Vec<u8>>,
    status: u16,
}

impl<'a> HttpStream<'a> {
    fn new(reply: Reply, format: EventFormat, reporter: &'a Reporter) -> HttpStream<'a> {
        HttpStream {
            format,
            reporter,
            reply: Some(reply),
            chunks: None,
            prelude: None,
            status: 200,
        }
    }

    fn start(&mut self, status: u16, headers: &[(String, String)]) {
        if let Some(reply) = self.reply.take() {
            self.status = status;
            self.chunks = Some(reply.stream(status, headers));
        }
    }

    fn send(&mut self, data: &[u8]) {
        if let Some(chunks) = &self.chunks
            && !data.is_empty()
        {
            let _ = chunks.send(Ok(Bytes::copy_from_slice(data)));
        }
    }
}

impl HttpStream<'_> {
    /// A stream whose metadata did not end in time: a Function URL sends it as the body; a
    /// REST API, which requires the metadata, answers with its error.
    fn without_metadata(&mut self, buffered: Vec<u8>) {
        if self.format != EventFormat::RestApi {
            self.start(200, &[]);
            self.send(&buffered);
            return;
        }
        self.reporter.warn(format!(
            "{} answers {} here: a streamed response must start with its metadata (JSON with \
             `statusCode` and `headers`) and 8 NUL bytes within its first {} bytes \
             (lambda_http's `run_with_streaming_response` writes them)",
            self.format.describe(),
            http::failure_response(self.format).status,
            http::metadata_limit(self.format)
        ));
        if let Some(reply) = self.reply.take() {
            let response = http::failure_response(self.format);
            self.status = response.status;
            reply.send(response);
        }
    }
}

impl ResponseStream for HttpStream<'_> {
    fn answered(&mut self, outcome: &Outcome) {
        // A stream that began has answered already; a failure after that only cut it short.
        let Some(reply) = self.reply.take() else {
            if let Outcome::Failed(_) = outcome {
                let (_, why) = buffered_response(self.format, outcome);
                if let Some(why) = why {
                    self.reporter.warn(why);
                }
            }
            return;
        };
        let (response, why) = buffered_response(self.format, outcome);
        if let Some(why) = why {
            self.reporter.warn(why);
        }
        self.status = response.status;
        reply.send(response);
    }

    fn begin(&mut self, content_type: Option<&str>) {
        if http::stream_has_metadata(self.format, content_type) {
            self.prelude = Some(Vec::new());
        } else {
            let content_type = content_type.unwrap_or("application/octet-stream");
            self.start(200, &[("content-type".to_owned(), content_type.to_owned())]);
        }
    }

    fn data(&mut self, data: &[u8]) {
        let Some(prelude) = self.prelude.as_mut() else {
            self.send(data);
            return;
        };
        prelude.extend_from_slice(data);
        let limit = http::metadata_limit(self.format);
        let found = prelude[..prelude.len().min(limit + METADATA_END.len())]
            .windows(METADATA_END.len())
            .position(|w| w == METADATA_END);
        if found.is_none() && prelude.len() <= limit {
            return;
        }
        let buffered = self.prelude.take().unwrap_or_default();
        match found {
            Some(at) => {
                let (status, headers) = http::stream_metadata(self.format, &buffered[..at]);
                self.start(status, &headers);
                self.send(&buffered[at + METADATA_END.len()..]);
            }
            None => self.without_metadata(buffered),
        }
    }

    fn end(&mut self, complete: bool) {
        if let Some(buffered) = self.prelude.take() {
            // The stream ended inside its metadata.
            if complete {
                self.without_metadata(buffered);
            }
        }
        if let Some(chunks) = self.chunks.take()
            && !complete
        {
            let _ = chunks.send(Err(std::io::Error::other(
                "the function's stream broke off",
            )));
        }
    }
}
