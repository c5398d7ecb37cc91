//! `cargo lambda-build serve`: the packaged function behind a local HTTP port, as a Function URL
//! or API Gateway would put it: request -> event (http) -> the `invoke` sandbox -> response.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::front::{Arrival, Front};
use super::http::{self, EventFormat, HttpRequest};
use super::instance::{Instance, Outcome};
use super::{
    Console, FunctionSettings, InvokeError, Result, Sandbox, function_settings, lambda,
    last_artifact, report_summary,
};
use crate::cli::ServeArgs;
use crate::env::{Env, Ui, Verbosity};
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
        let lookup = |key: &str| env.var(key).map(str::to_owned);
        let artifact = match args.artifact {
            Some(path) => env.cwd.join(path),
            None => last_artifact(&env.cwd.join(args.outdir.unwrap_or_default()), &env.cwd)?,
        };
        Ok(ServeConfig {
            artifact,
            addr: SocketAddr::new(args.bind, args.port),
            format: args.event_format,
            function: function_settings(args.function, &lookup, &env.cwd)?,
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
    let reporter = Reporter::plain(ui);
    serve_function(
        &front,
        &config.artifact,
        &config,
        &reporter,
        ui.verbosity,
        &interrupt,
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
    let sandbox = Sandbox::prepare(artifact, &config.function)?;
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
    let console = Console {
        reporter,
        lambda_lines: verbosity != Verbosity::Quiet,
    };
    let mut instance = sandbox.instance(&config.function, interrupt, &console);
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
                let (response, record) = match answer(&mut instance, config, &request, reporter) {
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
                            "{} {}{} -> {} ({:.1} ms)",
                            request.method,
                            request.path,
                            if request.query.is_empty() {
                                String::new()
                            } else {
                                format!("?{}", request.query)
                            },
                            response.status,
                            started.elapsed().as_secs_f64() * 1000.0
                        )
                        .as_bytes(),
                    );
                }
                reply.send(response);
            }
        }
    };
    instance.stop();
    drop(instance);
    let outcomes = super::Outcomes {
        records,
        memory_mb: config.function.memory_mb,
    };
    report_summary(&outcomes, reporter, sandbox.launch.emulator.is_some());
    result
}

/// Runs one request through the function; the record is `None` when the request never became
/// an invocation (too large an event).
fn answer(
    instance: &mut Instance<'_>,
    config: &ServeConfig,
    request: &HttpRequest,
    reporter: &Reporter,
) -> Result<(http::HttpResponse, Option<super::instance::Record>)> {
    let event = http::event(
        config.format,
        request,
        &config.function.region,
        &lambda::request_id(),
        SystemTime::now(),
    );
    if event.len() > MAX_EVENT_BYTES {
        reporter.warn(format!(
            "refused {} {}: its event is {} bytes, over Lambda's {MAX_EVENT_BYTES}",
            request.method,
            request.path,
            event.len()
        ));
        return Ok((http::too_large_response(MAX_EVENT_BYTES), None));
    }
    let record = instance.invoke(&event)?;
    let response = match &record.outcome {
        Outcome::Response(payload) => {
            http::response(config.format, payload).unwrap_or_else(|why| {
                reporter.warn(format!(
                    "{} answers {} here: {why}",
                    config.format.describe(),
                    http::failure_response(config.format).status
                ));
                http::failure_response(config.format)
            })
        }
        Outcome::Failed(failure) => {
            reporter.warn(format!(
                "the invocation failed with {}: {}",
                failure.error_type,
                failure.message.trim_end()
            ));
            http::failure_response(config.format)
        }
    };
    Ok((response, Some(record)))
}
