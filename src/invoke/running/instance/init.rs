//! The init phase: the extensions start and register, then `bootstrap` starts and asks for its
//! first event, within Lambda's 10 s; or it fails, as Lambda reports each way of failing.

use std::time::{Duration, Instant};

use super::process::{Process, is_executable};
use super::{Happening, Instance, Result};
use crate::invoke::error::InvokeError;
use crate::invoke::failure::{ExitStatus, Failure, FailureKind};
use crate::invoke::record::{Outcome, Record, Status};
use crate::invoke::running::server::{ApiRequest, Body, Route};
use crate::lambda::{
    INIT_TIMEOUT, RESTORE_ERROR_MESSAGE, RESTORE_ERROR_TYPE, RESTORE_PAUSE, SNAP_START_LABEL,
    header,
};

/// How long a runtime that reported an init error gets to exit by itself.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How an init ended.
pub(super) enum Init {
    /// The runtime waits in `next`: the init took this long.
    Ready(Duration),
    /// The record of the invocation that could not run.
    Failed(Record),
}

impl Instance<'_> {
    pub(super) fn init(&mut self, request_id: &str) -> Result<Init> {
        let started = Instant::now();
        let until = started + INIT_TIMEOUT;
        self.initializing = true;
        self.restored = None;
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

    /// Starts `bootstrap` and waits until it asks for its first event.
    fn init_runtime(&mut self, request_id: &str, started: Instant, until: Instant) -> Result<Init> {
        if let Some(failure) = self.start_runtime(request_id)? {
            return Ok(Init::Failed(
                self.init_failure(request_id, failure, started),
            ));
        }
        // Whether the process called the Runtime API at all: one that never does is no runtime.
        let mut asked = false;
        loop {
            let happening = self.wait(until)?;
            asked |= matches!(happening, Happening::Request(_));
            if let Some(init) = self.init_step(request_id, started, happening, asked)? {
                return Ok(init);
            }
        }
    }

    /// Starts `bootstrap`; `Some` when Lambda could not have started it either, worded as
    /// Lambda words it.
    fn start_runtime(&mut self, request_id: &str) -> Result<Option<Failure>> {
        if self.launch.wraps() && self.launch.emulator.is_none() && !self.launch.bootstrap.exists()
        {
            // The container's relay would start and report the shell's "not found".
            return Ok(Some(Failure::no_bootstrap(request_id)));
        }
        if self.launch.wraps() && !is_executable(&self.launch.bootstrap) {
            // qemu, or the container's relay, would run it anyway; Lambda's exec would not.
            return Ok(Some(Failure::exec_failed(request_id, libc::EACCES)));
        }
        let child = match self.launch.command().spawn() {
            Ok(child) => child,
            Err(error) => {
                return match error.raw_os_error() {
                    _ if self.launch.emulator.is_some() => Err(InvokeError::Spawn {
                        program: self.launch.program.display().to_string(),
                        source: error,
                    }),
                    Some(libc::ENOENT) if !self.launch.bootstrap.exists() => {
                        Ok(Some(Failure::no_bootstrap(request_id)))
                    }
                    Some(errno) => Ok(Some(Failure::exec_failed(request_id, errno))),
                    None => Ok(Some(Failure::exec_failed(request_id, libc::EACCES))),
                };
            }
        };
        self.process = Some(Process::new(child, self.api.wake())?);
        Ok(None)
    }

    /// What happened during the runtime's init: `Some` once the init is over. `asked`: the
    /// runtime made a request of the Runtime API so far.
    fn init_step(
        &mut self,
        request_id: &str,
        started: Instant,
        happening: Happening,
        asked: bool,
    ) -> Result<Option<Init>> {
        let failure = match happening {
            Happening::Extension => match self.extension_failure(request_id) {
                Some(failure) => failure,
                None => return Ok(self.ready(started)),
            },
            Happening::Request(request) => match request.route {
                Route::Next => {
                    if self.snap_start && self.restored.is_none() {
                        self.log.warn(&format!(
                            "--snap-start: the runtime asked for an event without calling \
                             `restore/next`, so it runs no SnapStart hooks; Lambda publishes \
                             such an image with SnapStart only if it carries the label \
                             {SNAP_START_LABEL}"
                        ));
                    }
                    self.hold_next(*request);
                    return Ok(self.ready(started));
                }
                Route::InitError => self.init_error(*request)?,
                Route::RestoreNext if self.snap_start && self.restored.is_none() => {
                    self.restore(*request);
                    return Ok(None);
                }
                Route::RestoreError if self.restored.is_some() => self.restore_error(*request)?,
                Route::Response(_) | Route::Error(_) => {
                    request.invalid_state("Started", "InvocationResponse");
                    return Ok(None);
                }
                _ => {
                    request.not_found();
                    return Ok(None);
                }
            },
            Happening::Piece(_) | Happening::StreamPiece(..) => return Ok(None),
            Happening::Exited => {
                let exit = self.process.as_ref().and_then(Process::exit);
                Failure::exit(request_id, exit.unwrap_or(ExitStatus::Code(0)))
            }
            Happening::Deadline => {
                self.kill();
                let failure = if asked {
                    self.log.warn(&format!(
                        "the function did not ask for an event within Lambda's {} s init phase",
                        INIT_TIMEOUT.as_secs()
                    ));
                    Failure::timeout(request_id, self.timeout)
                } else {
                    Failure::never_asked(request_id, self.timeout)
                };
                let mut record = self.init_failure(request_id, failure, started);
                record.status = Some(Status::Timeout);
                return Ok(Some(Init::Failed(record)));
            }
        };
        Ok(Some(Init::Failed(
            self.init_failure(request_id, failure, started),
        )))
    }

    /// The init is over when the runtime and every extension wait in `next`.
    fn ready(&self, started: Instant) -> Option<Init> {
        (self.next.is_some() && self.extensions_ready()).then(|| Init::Ready(started.elapsed()))
    }

    /// SnapStart's `GET /runtime/restore/next`: the init is over (Lambda would take the
    /// snapshot now); after a pause the environment is "restored" and the call answered. No
    /// snapshot is taken: the same process goes on.
    fn restore(&mut self, request: ApiRequest) {
        std::thread::sleep(RESTORE_PAUSE);
        request.respond(200, &[], b"");
        self.restored = Some(Instant::now());
    }

    /// The durations of a cold start's REPORT line, `(init, restore)`: after a SnapStart
    /// restore Lambda reports the restore's (to the first `next`, the after-restore hooks
    /// included) and no init, which ran when the version was published.
    pub(super) fn cold_durations(
        &mut self,
        init: Option<Duration>,
    ) -> (Option<Duration>, Option<Duration>) {
        match (init, self.restored.take()) {
            (Some(_), Some(at)) => (None, Some(at.elapsed())),
            (init, _) => (init, None),
        }
    }

    /// SnapStart's `POST /runtime/restore/error`: an after-restore hook failed. The runtime
    /// exits; the invoke fails as Lambda's does, the runtime's own error in a warning.
    fn restore_error(&mut self, request: ApiRequest) -> Result<Failure> {
        let posted = posted_failure(FailureKind::RestoreError, &request);
        self.log.warn(&format!(
            "the runtime reported a restore error ({}): {}",
            posted.error_type, posted.message
        ));
        request.accepted();
        self.wait_for_exit(Instant::now() + EXIT_GRACE)?;
        self.kill();
        Ok(Failure::lambda(
            FailureKind::RestoreError,
            RESTORE_ERROR_TYPE,
            RESTORE_ERROR_MESSAGE.to_owned(),
        ))
    }

    /// `POST /runtime/init/error`: the runtime says it cannot start. Runtimes exit after
    /// reporting it; a moment to do so keeps their last words, then Lambda resets the
    /// environment.
    fn init_error(&mut self, request: ApiRequest) -> Result<Failure> {
        let failure = posted_failure(FailureKind::InitError, &request);
        request.accepted();
        self.wait_for_exit(Instant::now() + EXIT_GRACE)?;
        self.kill();
        Ok(failure)
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
                Happening::Piece(_) | Happening::StreamPiece(..) => {}
                Happening::Exited | Happening::Deadline => return Ok(()),
            }
        }
    }

    /// The record of an invocation whose init failed; the environment is reset.
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
            restore_duration: None,
            max_memory_kib,
            started: false,
        }
    }
}

/// The error a runtime posted (`init/error`, `restore/error`), read as Lambda reads it.
fn posted_failure(kind: FailureKind, request: &ApiRequest) -> Failure {
    match request.body {
        Body::Complete(ref body) => Failure::posted(
            kind,
            body.clone(),
            request.header(header::FUNCTION_ERROR_TYPE),
        ),
        Body::TooLarge(size) => Failure::response_too_large(size),
        Body::Streaming(_) => Failure::posted(kind, Vec::new(), None),
    }
}
