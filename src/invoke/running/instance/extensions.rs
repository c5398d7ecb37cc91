//! The Extensions API (2020-01-01) and the Telemetry API's subscriptions, as an execution
//! environment answers them: the external extensions of `/opt/extensions` started at init and
//! registered, internal ones registered from the runtime's process, and their events (INVOKE,
//! SHUTDOWN).

use std::time::Instant;

use super::process::{Process, is_executable};
use super::{Happening, Instance};
use crate::invoke::error::InvokeError;
use crate::invoke::failure::{ExitStatus, Failure, FailureKind};
use crate::invoke::ids;
use crate::invoke::running::server::{ApiRequest, Body, Route};
use crate::invoke::running::telemetry;
use crate::lambda::{EXTENSIONS_PATH, INIT_TIMEOUT, header};

/// An external extension (a process of `/opt/extensions`) or an internal one (registered from
/// the runtime's own process).
pub(super) struct Extension {
    pub(super) name: String,
    pub(super) process: Option<Process>,
    /// `Lambda-Extension-Identifier`, once registered.
    pub(super) id: Option<String>,
    /// The events it registered for.
    pub(super) invoke: bool,
    pub(super) shutdown: bool,
    /// Its `GET /extension/event/next`, held until there is an event.
    pub(super) next: Option<ApiRequest>,
}

impl Extension {
    pub(super) fn exit(&self) -> Option<ExitStatus> {
        self.process.as_ref().and_then(Process::exit)
    }
}

impl Instance<'_> {
    /// Starts `/opt/extensions/*` and waits until each has registered. `Some` when one could
    /// not start, ended, reported an init error, or did not register in time.
    pub(super) fn start_extensions(
        &mut self,
        request_id: &str,
        until: Instant,
    ) -> Result<Option<Failure>, InvokeError> {
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
                process: Some(Process::new(child, self.api.wake())?),
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
                Happening::Exited
                | Happening::Extension
                | Happening::Piece(_)
                | Happening::StreamPiece(..) => {}
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
    pub(super) fn extension_failure(&mut self, request_id: &str) -> Option<Failure> {
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

    /// Answers a request of the Extensions or Telemetry API.
    pub(super) fn extensions_api(&mut self, request: ApiRequest) {
        let id = request.header(header::EXTENSION_ID).map(str::to_owned);
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
                    .header(header::EXTENSION_ERROR_TYPE)
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
            .header(header::EXTENSION_NAME)
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
                        "`{name}` is not in {EXTENSIONS_PATH}: an internal extension cannot \
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
        let id = ids::request_id();
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
                (header::EXTENSION_ID, id),
                ("Content-Type", "application/json".to_owned()),
            ],
            answer.to_string().as_bytes(),
        );
    }
}

/// An event of the Extensions API, with its `Lambda-Extension-Event-Identifier`.
pub(super) fn send_extension_event(next: ApiRequest, event: &serde_json::Value) {
    next.send_event(
        &[
            (header::EXTENSION_EVENT_ID, ids::request_id()),
            ("Content-Type", "application/json".to_owned()),
        ],
        event.to_string().as_bytes(),
    );
}
