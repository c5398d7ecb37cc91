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
use instance::{Instance, ResponseStream};
use sandbox::Sandbox;

use super::function::FunctionSettings;
use super::record::Outcome;
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
            "{} ({}): {} event{}, timeout {} s, memory {} MB",
            artifact.display(),
            sandbox.arch,
            events.len(),
            if events.len() == 1 { "" } else { "s" },
            function.timeout_secs,
            function.memory_mb
        ),
    );
    sandbox.report_extensions(reporter);
    if verbosity.verbose() {
        reporter.status("Running", format!("`{}`", sandbox.launch));
    }

    let console = Console::new(reporter, verbosity, sandbox.launch.emulator.is_some());
    let mut instance = Instance::new(&sandbox, function, interrupt, &console);
    let mut records = Vec::new();
    let mut stream = StdoutStream {
        payloads,
        kept: Vec::new(),
    };
    for event in events {
        let record = instance.invoke(event, &mut stream)?;
        let (payload, failed) = match &record.outcome {
            Outcome::Response(body) => (body, false),
            Outcome::Streamed(_) if payloads == Payloads::Raw => {
                console.end(&record, function.memory_mb);
                records.push(record);
                continue;
            }
            Outcome::Streamed(_) => (&stream.kept, false),
            Outcome::Failed(failure) => (&failure.payload, true),
        };
        print_payload(payloads, &function.name, failed, payload)?;
        console.end(&record, function.memory_mb);
        records.push(record);
    }
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
