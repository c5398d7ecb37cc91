//! The running function: the Runtime API (server), the execution environment that drives
//! `bootstrap` through it (instance), in a sandbox; `invoke`'s events in order, and `serve`'s
//! HTTP requests. On every host; what differs is how a process is driven
//! (`instance/process.rs`) and what wakes the loop (`wake.rs`): on Windows, the only processes
//! are a container's relays (`invoke::container`).

pub mod console;
pub mod front;
pub mod instance;
pub mod sandbox;
pub mod serve;
pub mod server;
pub mod telemetry;
pub mod wake;

use std::io::Write;
use std::path::Path;

use console::Console;
use instance::{Instance, Job, Jobs, ResponseStream};
use sandbox::Sandbox;

use super::function::FunctionSettings;
use super::record::{Outcome, Record};
use super::{InvokeError, Outcomes, Payloads};
use crate::env::Verbosity;
use crate::report::Reporter;
use crate::signal::Interrupt;

/// Runs `events` in order against the artifact on one warm process (a new one after a crash or
/// a timeout, as Lambda resets the environment), printing each payload on `stdout`.
pub fn invoke(
    artifact: &Path,
    events: &[Vec<u8>],
    function: &FunctionSettings,
    payloads: Payloads,
    reporter: &Reporter,
    verbosity: Verbosity,
    interrupt: &Interrupt,
) -> Result<Outcomes, InvokeError> {
    let sandbox = Sandbox::prepare_for(artifact, function, reporter, interrupt)?;
    reporter.status(
        "Invoking",
        format!(
            "{} ({}): {} event{}, timeout {} s, memory {} MB{}{}",
            artifact.display(),
            sandbox.arch,
            events.len(),
            if events.len() == 1 { "" } else { "s" },
            function.timeout_secs,
            function.memory_mb,
            match function.concurrency {
                Some(n) => format!(", up to {n} at once"),
                None => String::new(),
            },
            match &function.tenant_id {
                Some(tenant) => format!(", tenant `{tenant}`"),
                None => String::new(),
            }
        ),
    );
    sandbox.report_extensions(reporter);
    if verbosity.verbose() {
        reporter.status("Running", format!("`{}`", sandbox.launch));
    }

    let console = Console::new(reporter, verbosity, sandbox.launch.emulator.is_some())
        .json(function.json_logs());
    let mut instance = Instance::new(&sandbox, function, interrupt, &console);
    let mut printer = Printer {
        payloads,
        function,
        console: &console,
        records: Vec::new(),
        failed_to_print: None,
    };
    if instance.concurrent() {
        let mut jobs = EventList {
            events: events.iter(),
            printer,
        };
        instance.run_jobs(&mut jobs)?;
        printer = jobs.printer;
    } else {
        for event in events {
            let mut stream = StdoutStream::new(payloads);
            let record = instance.invoke(event, &function.caller, &mut stream)?;
            printer.print(record, &stream);
            if printer.failed_to_print.is_some() {
                break;
            }
        }
    }
    if let Some(error) = printer.failed_to_print.take() {
        return Err(error);
    }
    let records = printer.records;
    instance.stop();
    drop(instance);

    let outcomes = Outcomes {
        records,
        memory_mb: function.memory_mb,
    };
    console::report_summary(&outcomes, reporter, sandbox.emulated());
    interrupt.check()?;
    Ok(outcomes)
}

/// Prints each invocation's payload on stdout and its END / REPORT on stderr, keeping its
/// record.
struct Printer<'p> {
    payloads: Payloads,
    function: &'p FunctionSettings,
    console: &'p Console<'p>,
    records: Vec<Record>,
    /// stdout could not be written: the run stops.
    failed_to_print: Option<InvokeError>,
}

impl Printer<'_> {
    fn print(&mut self, record: Record, stream: &StdoutStream) {
        let payload = match &record.outcome {
            Outcome::Response(body) => Some((body, false)),
            // Written as it came.
            Outcome::Streamed(_) if self.payloads == Payloads::Raw => None,
            Outcome::Streamed(_) => Some((&stream.kept, false)),
            Outcome::Failed(failure) => Some((&failure.payload, true)),
        };
        if let Some((payload, failed)) = payload
            && let Err(error) = print_payload(self.payloads, &self.function.name, failed, payload)
        {
            self.failed_to_print.get_or_insert(error);
        }
        self.console.end(&record, self.function.memory_mb);
        self.records.push(record);
    }
}

/// `invoke`'s events with `--concurrency`: all of them at once, up to the limit.
struct EventList<'e, 'p> {
    events: std::slice::Iter<'e, Vec<u8>>,
    printer: Printer<'p>,
}

impl Jobs for EventList<'_, '_> {
    type Stream = StdoutStream;

    fn take(&mut self) -> Option<Job<StdoutStream>> {
        if self.printer.failed_to_print.is_some() {
            return None;
        }
        let event = self.events.next()?;
        Some(Job {
            event: event.clone(),
            caller: self.printer.function.caller.clone(),
            stream: StdoutStream::new(self.printer.payloads),
        })
    }

    fn finished(&mut self) -> bool {
        self.events.len() == 0 || self.printer.failed_to_print.is_some()
    }

    fn ended(&mut self, record: Record, stream: StdoutStream) {
        self.printer.print(record, &stream);
    }
}

/// One payload on stdout: as it is on a line, or as a JSON object among a build's messages.
fn print_payload(
    payloads: Payloads,
    function: &str,
    failed: bool,
    payload: &[u8],
) -> Result<(), InvokeError> {
    let mut stdout = std::io::stdout().lock();
    match payloads {
        Payloads::Raw => stdout
            .write_all(payload)
            .and_then(|()| stdout.write_all(b"\n")),
        Payloads::Json => {
            crate::report::print_invocation_json(&mut stdout, function, failed, payload)
        }
    }
    .and_then(|()| stdout.flush())
    .map_err(|e| InvokeError::Other(anyhow::anyhow!("cannot write to stdout: {e}")))
}

/// A streamed response on stdout as it arrives (`invoke`), or kept for its JSON line.
struct StdoutStream {
    payloads: Payloads,
    kept: Vec<u8>,
}

impl StdoutStream {
    fn new(payloads: Payloads) -> StdoutStream {
        StdoutStream {
            payloads,
            kept: Vec::new(),
        }
    }
}

impl ResponseStream for StdoutStream {
    fn begin(&mut self, _content_type: Option<&str>) {
        self.kept.clear();
    }

    fn data(&mut self, data: &[u8]) {
        match self.payloads {
            Payloads::Raw => {
                let mut stdout = std::io::stdout().lock();
                // A reader that went away is not the function's failure.
                let _ = stdout.write_all(data).and_then(|()| stdout.flush());
            }
            Payloads::Json => self.kept.extend_from_slice(data),
        }
    }

    fn end(&mut self, _complete: bool) {
        if self.payloads == Payloads::Raw {
            let _ = std::io::stdout().lock().write_all(b"\n");
        }
    }
}
