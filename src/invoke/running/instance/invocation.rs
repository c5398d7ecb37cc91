//! An invocation, from the event handed to the runtime to its next `next`: one method per
//! Runtime API request the runtime may make meanwhile (`next`, a response, streamed or not, an
//! error), and per other thing that can happen (an extension's end, the runtime's end, the
//! timeout). Its state is an [`Invocation`], apart from the environment's, so that an
//! environment could one day hold several (Managed Instances' concurrency).

use std::ops::ControlFlow;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use super::extensions::send_extension_event;
use super::process::Process;
use super::{Happening, Instance, ResponseStream};
use crate::invoke::failure::{ExitStatus, Failure, FailureKind};
use crate::invoke::ids;
use crate::invoke::invoke_api::Caller;
use crate::invoke::record::{Outcome, Record, Status};
use crate::invoke::running::server::{ApiRequest, Body, Piece, Route};
use crate::lambda::{MAX_STREAMED_BYTES, header};

/// One invocation in flight: what the runtime and the extensions did with it so far.
pub(super) struct Invocation {
    pub(super) request_id: String,
    /// When the event was handed over, and when Lambda stops waiting.
    started: Instant,
    pub(super) deadline: Instant,
    pub(super) outcome: Option<Outcome>,
    status: Option<Status>,
    /// The runtime asked for its next event after answering: the invocation ends once the
    /// extensions are back in `next` too.
    runtime_done: bool,
    /// An extension ended during the invocation: Lambda resets the environment after it.
    extension_crashed: bool,
    /// The caller was told the outcome.
    told: bool,
}

impl Invocation {
    /// Tells the caller the outcome as soon as it is known: it can answer its client then,
    /// though the invocation lasts until the runtime's next `next`.
    pub(super) fn tell(&mut self, stream: &mut dyn ResponseStream) {
        if let (Some(outcome), false) = (&self.outcome, self.told) {
            stream.answered(outcome);
            self.told = true;
        }
    }

    /// A failure Lambda reports on the REPORT line too (`Status: error`).
    fn fail(&mut self, failure: Failure) {
        self.status = Some(Status::Error(failure.error_type.clone()));
        self.outcome = Some(Outcome::Failed(failure));
    }
}

/// A streamed response being received.
pub(super) struct Streaming {
    /// The runtime's POST, answered 202 once its body has ended.
    request: ApiRequest,
    pub(super) pieces: Receiver<Piece>,
    bytes: u64,
    trailers: Vec<(String, String)>,
}

impl Instance<'_> {
    /// Hands the event to the runtime waiting in `next`, and INVOKE to the extensions that
    /// registered for it.
    pub(super) fn deliver(
        &mut self,
        request_id: String,
        event: &[u8],
        caller: &Caller,
    ) -> Invocation {
        let Some(next) = self.next.take() else {
            unreachable!("init leaves a process waiting in `next`");
        };
        self.deliver_to(next, request_id, event, caller)
    }

    /// [`Instance::deliver`] to this `next` (one of several with concurrency).
    pub(super) fn deliver_to(
        &mut self,
        next: ApiRequest,
        request_id: String,
        event: &[u8],
        caller: &Caller,
    ) -> Invocation {
        self.log.start(&request_id);
        let deadline_at = SystemTime::now() + self.timeout;
        let trace_id = ids::trace_id(SystemTime::now());
        let headers = [
            (header::REQUEST_ID, request_id.clone()),
            (
                header::DEADLINE_MS,
                ids::epoch_millis(deadline_at).to_string(),
            ),
            (header::FUNCTION_ARN, self.arn.clone()),
            (header::TRACE_ID, trace_id.clone()),
            ("Content-Type", "application/json".to_owned()),
        ];
        let tenant = self
            .tenant_id
            .clone()
            .map(|tenant| (header::TENANT_ID, tenant));
        let headers: Vec<(&str, String)> = (headers.into_iter().chain(tenant))
            .chain(caller.headers())
            .collect();
        let started = Instant::now();
        let invoke_event = serde_json::json!({
            "eventType": "INVOKE",
            "deadlineMs": ids::epoch_millis(deadline_at) as u64,
            "requestId": request_id,
            "invokedFunctionArn": self.arn,
            "tracing": { "type": "X-Amzn-Trace-Id", "value": trace_id },
        });
        next.send_event(&headers, event);
        for extension in self.extensions.iter_mut().filter(|e| e.invoke) {
            if let Some(next) = extension.next.take() {
                send_extension_event(next, &invoke_event);
            }
        }
        Invocation {
            request_id,
            started,
            deadline: started + self.timeout,
            outcome: None,
            status: None,
            runtime_done: false,
            extension_crashed: false,
            told: false,
        }
    }

    /// What happened during the invocation; `Break` once it is over.
    pub(super) fn handle(
        &mut self,
        invocation: &mut Invocation,
        happening: Happening,
        stream: &mut dyn ResponseStream,
    ) -> ControlFlow<()> {
        match happening {
            Happening::Request(request) => return self.request(invocation, *request, stream),
            Happening::Extension => return self.extensions_changed(invocation),
            Happening::Piece(piece) => self.piece(invocation, piece, stream),
            Happening::StreamPiece(..) => {}
            Happening::Exited => {
                self.runtime_exited(invocation, stream);
                return ControlFlow::Break(());
            }
            Happening::Deadline => {
                self.timed_out(invocation, stream);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// A request of the Runtime API, to its method.
    fn request(
        &mut self,
        invocation: &mut Invocation,
        request: ApiRequest,
        stream: &mut dyn ResponseStream,
    ) -> ControlFlow<()> {
        let current = match &request.route {
            Route::Response(id) | Route::Error(id) => *id == invocation.request_id,
            _ => false,
        };
        match request.route {
            Route::Next => return self.next(invocation, request),
            Route::Response(_) => self.response(invocation, current, request, stream),
            Route::Error(_) => self.error(invocation, current, request),
            Route::InitError => request.invalid_state("Running", "InitError"),
            _ => request.not_found(),
        }
        ControlFlow::Continue(())
    }

    /// `GET /runtime/invocation/next`: held until there is an event. After the runtime
    /// answered, it ends the invocation (once the extensions are back in `next` too); before,
    /// Lambda holds it all the same, and the invocation runs into its timeout.
    fn next(&mut self, invocation: &mut Invocation, request: ApiRequest) -> ControlFlow<()> {
        self.hold_next(request);
        if invocation.outcome.is_none() {
            return ControlFlow::Continue(());
        }
        invocation.runtime_done = true;
        if self.extensions_ready() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// `POST /runtime/invocation/{id}/response`: the response, whole, too large, or the
    /// beginning of a stream. For another invocation, for one that has its answer already
    /// (rapid's ErrResponseSent), or while a response still streams: 400.
    pub(super) fn response(
        &mut self,
        invocation: &mut Invocation,
        current: bool,
        mut request: ApiRequest,
        stream: &mut dyn ResponseStream,
    ) {
        if !current || invocation.outcome.is_some() || self.streaming.is_some() {
            return request.invalid_request_id();
        }
        match std::mem::replace(&mut request.body, Body::TooLarge(0)) {
            Body::Streaming(pieces) => {
                stream.begin(request.header("Content-Type"));
                self.streaming = Some(Streaming {
                    request,
                    pieces,
                    bytes: 0,
                    trailers: Vec::new(),
                });
            }
            Body::Complete(body) => {
                request.accepted();
                invocation.outcome = Some(Outcome::Response(body));
            }
            Body::TooLarge(size) => {
                request.too_large();
                invocation.fail(Failure::response_too_large(size));
            }
        }
    }

    /// `POST /runtime/invocation/{id}/error`: the handler's error, its payload passed through
    /// as Lambda passes it. For another invocation, or one that has its answer already: 400.
    pub(super) fn error(
        &mut self,
        invocation: &mut Invocation,
        current: bool,
        request: ApiRequest,
    ) {
        if !current || invocation.outcome.is_some() {
            return request.invalid_request_id();
        }
        let failure = match request.body {
            Body::Complete(ref body) => {
                let failure = Failure::posted(
                    FailureKind::Handler,
                    body.clone(),
                    request.header(header::FUNCTION_ERROR_TYPE),
                );
                request.accepted();
                failure
            }
            Body::TooLarge(size) => {
                request.too_large();
                Failure::response_too_large(size)
            }
            Body::Streaming(_) => {
                return request.reject(
                    400,
                    "InvalidRequest",
                    "an error cannot be streamed; stream the response instead",
                );
            }
        };
        invocation.outcome = Some(Outcome::Failed(failure));
    }

    /// A piece of the streamed response: passed on up to Lambda's limit, where the stream is
    /// cut; at its end (or its break), the outcome, and the runtime's POST answered.
    pub(super) fn piece(
        &mut self,
        invocation: &mut Invocation,
        piece: Piece,
        stream: &mut dyn ResponseStream,
    ) {
        let Some(streaming) = self.streaming.as_mut() else {
            return;
        };
        let broken = match piece {
            Piece::Data(data) => {
                let room = MAX_STREAMED_BYTES - streaming.bytes;
                streaming.bytes += data.len() as u64;
                if data.len() as u64 <= room {
                    stream.data(&data);
                } else {
                    stream.data(&data[..room as usize]);
                    self.cut_stream(invocation, stream);
                }
                return;
            }
            Piece::Trailers(trailers) => {
                streaming.trailers = trailers;
                return;
            }
            Piece::End => None,
            Piece::Broken(reason) => Some(reason),
        };
        let Some(streaming) = self.streaming.take() else {
            return;
        };
        let (ended, failed_with) = finish_stream(&streaming, broken);
        if let Some(error_type) = failed_with {
            invocation.status = Some(Status::Error(error_type));
        }
        stream.end(!matches!(ended, Outcome::Failed(_)));
        streaming.request.accepted();
        invocation.outcome = Some(ended);
    }

    /// The stream went past Lambda's limit: the client gets what fit and then a broken
    /// stream, the invocation fails, and the runtime's POST is refused at once, so that it
    /// stops sending.
    fn cut_stream(&mut self, invocation: &mut Invocation, stream: &mut dyn ResponseStream) {
        let Some(streaming) = self.streaming.take() else {
            return;
        };
        stream.end(false);
        let failure = Failure::response_too_large_streamed();
        streaming
            .request
            .reject(413, &failure.error_type, &failure.message);
        invocation.fail(failure);
    }

    /// An extension registered, asked for its next event, or ended. An end fails the
    /// invocation with `Extension.Crash` (after an answer, only the REPORT line says so); the
    /// last one back in `next` after the runtime ends the invocation.
    fn extensions_changed(&mut self, invocation: &mut Invocation) -> ControlFlow<()> {
        if let Some(extension) = self.extensions.iter().find(|e| e.exit().is_some()) {
            let exit = extension.exit().unwrap_or(ExitStatus::Code(0));
            let failure = Failure::extension_crash(&invocation.request_id, &extension.name, exit);
            invocation.extension_crashed = true;
            invocation.status = Some(Status::Error(failure.error_type.clone()));
            if invocation.outcome.is_none() {
                invocation.outcome = Some(Outcome::Failed(failure));
            } else {
                self.log.warn(&format!(
                    "the extension `{}` exited ({exit}) during the invocation; Lambda reports \
                     Extension.Crash and resets the environment",
                    extension.name
                ));
            }
            return ControlFlow::Break(());
        }
        if invocation.runtime_done && self.extensions_ready() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// The runtime's process ended: `Runtime.ExitError`, also after an answer, which Lambda
    /// reports so since the runtime never asked for the next event.
    pub(super) fn runtime_exited(
        &mut self,
        invocation: &mut Invocation,
        stream: &mut dyn ResponseStream,
    ) {
        if self.streaming.take().is_some() {
            stream.end(false);
        }
        let exit = self
            .process
            .as_ref()
            .and_then(Process::exit)
            .unwrap_or(ExitStatus::Code(0));
        if invocation.outcome.is_none() {
            invocation.fail(Failure::exit(&invocation.request_id, exit));
        } else {
            self.log.warn(&format!(
                "the runtime exited ({exit}) after answering, instead of asking for the next \
                 event; Lambda reports that as Runtime.ExitError"
            ));
        }
    }

    /// The invocation's timeout: `Sandbox.Timedout` unless the runtime had answered, and the
    /// environment reset either way.
    pub(super) fn timed_out(
        &mut self,
        invocation: &mut Invocation,
        stream: &mut dyn ResponseStream,
    ) {
        if self.streaming.take().is_some() {
            stream.end(false);
        }
        match &invocation.outcome {
            None => {
                let failure = Failure::timeout(&invocation.request_id, self.timeout);
                invocation.outcome = Some(Outcome::Failed(failure));
            }
            Some(_) if invocation.runtime_done => self.log.warn(&format!(
                "the extension {} did not ask for the next event before the timeout; Lambda \
                 reports the invocation as timed out",
                self.extensions
                    .iter()
                    .filter(|e| e.next.is_none())
                    .map(|e| format!("`{}`", e.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(_) => self.log.warn(
                "the runtime answered but did not ask for the next event before the timeout; \
                 Lambda reports the invocation as timed out",
            ),
        }
        invocation.status = Some(Status::Timeout);
        self.kill();
    }

    /// The record of the invocation that ended. After a crash or a timeout, Lambda resets the
    /// environment, telling the extensions why.
    pub(super) fn finish(
        &mut self,
        mut invocation: Invocation,
        init_duration: Option<Duration>,
        stream: &mut dyn ResponseStream,
    ) -> Record {
        invocation.tell(stream);
        let duration = invocation.started.elapsed();
        self.settle_output();
        let max_memory_kib = self.peak_memory();
        let exited = self.process.as_ref().is_some_and(|p| p.exit().is_some());
        if invocation.extension_crashed || exited {
            let reason = if invocation.status == Some(Status::Timeout) {
                "timeout"
            } else {
                "failure"
            };
            self.shutdown(reason);
        }
        Record {
            request_id: invocation.request_id,
            outcome: invocation
                .outcome
                .unwrap_or_else(|| unreachable!("every way out of the loop sets it")),
            duration,
            init_duration,
            restore_duration: None,
            max_memory_kib,
            status: invocation.status,
            started: true,
        }
    }
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
    if let Some(error_type) = trailer(header::FUNCTION_ERROR_TYPE) {
        use base64::Engine as _;
        let body = trailer(header::FUNCTION_ERROR_BODY).unwrap_or_default();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .unwrap_or_else(|_| body.as_bytes().to_vec());
        let failure = Failure::posted(FailureKind::Handler, payload, Some(error_type));
        return (Outcome::Failed(failure), None);
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
