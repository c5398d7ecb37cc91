//! `cargo lambda-build serve`: the packaged function behind a local HTTP port, as a Function URL
//! or API Gateway would put it: request -> event (http) -> the `invoke` sandbox -> response.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::console::{self, Console};
use super::front::{Arrival, Front, Reply};
use super::instance::{Instance, ResponseStream};
use super::sandbox::Sandbox;
use crate::cli::ServeArgs;
use crate::env::{Env, Ui, Verbosity};
use crate::invoke::http::{self, EventFormat, HttpRequest};
use crate::invoke::record::{Outcome, Record};
use crate::invoke::{
    FunctionSettings, InvokeError, Outcomes, Result, ids, last_artifact, packaged_function_settings,
};
use crate::lambda::MAX_EVENT_BYTES;
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
        let artifact = match args.artifact {
            Some(path) => env.cwd.join(path),
            None => last_artifact(&env.cwd.join(args.outdir.unwrap_or_default()), &env.cwd)?,
        };
        Ok(ServeConfig {
            artifact,
            addr: SocketAddr::new(args.bind, args.port),
            format: args.event_format.into(),
            function: packaged_function_settings(args.function, env)?,
        })
    }
}

/// `cargo lambda-build serve`: listens, then serves until Ctrl-C.
pub fn run(args: ServeArgs, env: &Env, ui: Ui) -> Result<()> {
    let interrupt = Interrupt::register()
        .map_err(|e| InvokeError::Other(anyhow::anyhow!("cannot install a signal handler: {e}")))?;
    let config = ServeConfig::resolve(args, env)?;
    // Listening first: a port in use is refused before anything is extracted or started.
    let front = Front::bind(config.addr)?;
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

/// Starts the function of `artifact` in a fresh sandbox and answers `front`'s requests with it,
/// one at a time, until Ctrl-C (`Err(Interrupted)`) or until `restart()` says to stop (`Ok`);
/// the function's process and task root are gone when it returns. `serve --watch` calls it once
/// per build, on the same front, so clients keep their address.
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
    reporter.status(
        "Serving",
        format!(
            "{} ({}) as {} at http://{}/ : timeout {} s, memory {} MB; Ctrl-C stops",
            artifact.display(),
            sandbox.arch,
            config.format.describe(),
            front.addr,
            config.function.timeout_secs,
            config.function.memory_mb
        ),
    );
    sandbox.report_extensions(reporter);
    if verbosity.verbose() {
        reporter.status("Running", format!("`{}`", sandbox.launch));
    }
    let console = Console::new(reporter, verbosity, sandbox.launch.emulator.is_some());
    let mut instance = Instance::new(&sandbox, &config.function, interrupt, &console);
    let mut records = Vec::new();
    let result = loop {
        if let Err(stop) = interrupt.check() {
            break Err(stop.into());
        }
        if restart() {
            break Ok(());
        }
        match front.next(Duration::from_millis(50)) {
            None => {}
            Some(Arrival::Refused {
                method,
                path,
                reason,
            }) => reporter.warn(format!("refused {method} {path}: {reason}")),
            Some(Arrival::Request { request, reply }) => {
                let started = Instant::now();
                let (status, record) =
                    match answer(&mut instance, config, &request, reply, reporter) {
                        Ok(answered) => answered,
                        Err(error) => break Err(error),
                    };
                if let Some(record) = record {
                    console.end(&record, config.function.memory_mb);
                    records.push(record);
                }
                if verbosity != Verbosity::Quiet {
                    console.line(
                        format!(
                            "{} {}{} -> {status} ({:.1} ms)",
                            request.method,
                            request.path,
                            if request.query.is_empty() {
                                String::new()
                            } else {
                                format!("?{}", request.query)
                            },
                            started.elapsed().as_secs_f64() * 1000.0
                        )
                        .as_bytes(),
                    );
                }
            }
        }
    };
    instance.stop();
    drop(instance);
    let outcomes = Outcomes {
        records,
        memory_mb: config.function.memory_mb,
    };
    console::report_summary(&outcomes, reporter, sandbox.emulated());
    result
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
        return Ok((413, None));
    }
    let mut stream = HttpStream::new(reply, config.format, reporter);
    let record = instance.invoke(&event, &mut stream)?;
    if stream.reply.is_some() {
        // A failed init ends the invocation before the instance tells.
        stream.answered(&record.outcome);
    }
    Ok((stream.status, Some(record)))
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
        Outcome::Failed(failure) => (
            http::failure_response(format),
            Some(format!(
                "the invocation failed with {}: {}",
                failure.error_type,
                failure.message.trim_end()
            )),
        ),
        Outcome::Streamed(_) => (http::failure_response(format), None),
    }
}

/// The `Content-Type` of a streamed response that starts with a prelude: JSON with the status,
/// headers and cookies, then 8 NUL bytes, then the body (lambda_runtime's `StreamResponse`,
/// which lambda_http streams with). A Function URL reads it so.
const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
const PRELUDE_END: &[u8] = &[0; 8];
/// A prelude longer than this never ends: the body is sent as it is.
const MAX_PRELUDE: usize = 64 * 1024;

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

/// The prelude's status and headers; cookies become `set-cookie` headers.
fn read_prelude(prelude: &[u8]) -> (u16, Vec<(String, String)>) {
    let value: serde_json::Value = serde_json::from_slice(prelude).unwrap_or_default();
    let status = value["statusCode"]
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .unwrap_or(200) as u16;
    let mut headers = Vec::new();
    if let Some(map) = value["headers"].as_object() {
        for (name, values) in map {
            let values = match values {
                serde_json::Value::Array(values) => values.clone(),
                one => vec![one.clone()],
            };
            headers.extend(
                values
                    .iter()
                    .filter_map(|v| v.as_str())
                    .map(|v| (name.to_ascii_lowercase(), v.to_owned())),
            );
        }
    }
    if let Some(cookies) = value["cookies"].as_array() {
        headers.extend(
            cookies
                .iter()
                .filter_map(|c| c.as_str())
                .map(|c| ("set-cookie".to_owned(), c.to_owned())),
        );
    }
    (status, headers)
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
        let integration = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(HTTP_INTEGRATION))
        });
        if integration {
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
        let found = prelude
            .windows(PRELUDE_END.len())
            .position(|w| w == PRELUDE_END);
        if found.is_none() && prelude.len() <= MAX_PRELUDE {
            return;
        }
        let buffered = self.prelude.take().unwrap_or_default();
        match found {
            Some(at) => {
                let (status, headers) = read_prelude(&buffered[..at]);
                self.start(status, &headers);
                self.send(&buffered[at + PRELUDE_END.len()..]);
            }
            None => {
                self.start(200, &[]);
                self.send(&buffered);
            }
        }
    }

    fn end(&mut self, complete: bool) {
        if let Some(buffered) = self.prelude.take() {
            // The stream ended inside its prelude.
            if complete {
                self.start(200, &[]);
                self.send(&buffered);
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
