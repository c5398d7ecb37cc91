//! The Runtime API (2018-06-01) that `bootstrap` talks to, on 127.0.0.1 and an ephemeral port,
//! with the Extensions API (2020-01-01) and the Telemetry API (2022-07-01) beside it on the same
//! address, as Lambda serves all three at `AWS_LAMBDA_RUNTIME_API`.
//!
//! hyper (HTTP/1.1) on a current-thread tokio runtime in its own thread reads each request's
//! body (bounded by Lambda's payload limit) and hands the request over a channel to the
//! invocation loop, which answers it: `next` is held until there is an event, as Lambda holds
//! it. A streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`) is handed over
//! at once, its chunks and trailers following on a channel of their own. Each wakes the loop
//! (see `wake`), so it can wait on the function's output and the API together.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use tokio::sync::oneshot;

use super::wake::{self, Wake, Waker};
use crate::lambda::header::RESPONSE_MODE;
use crate::lambda::{
    EXTENSIONS_API_PREFIX, MAX_RESPONSE_BYTES, RESTORE_ERROR_PATH, RESTORE_NEXT_PATH,
    RUNTIME_API_PREFIX, TELEMETRY_API_PATH,
};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /runtime/invocation/next`
    Next,
    /// `POST /runtime/invocation/{id}/response`
    Response(String),
    /// `POST /runtime/invocation/{id}/error`
    Error(String),
    /// `POST /runtime/init/error`
    InitError,
    /// `GET /runtime/restore/next` (SnapStart: the init is over, wait for the restore)
    RestoreNext,
    /// `POST /runtime/restore/error` (SnapStart: an after-restore hook failed)
    RestoreError,
    /// `POST /2020-01-01/extension/register`
    ExtensionRegister,
    /// `GET /2020-01-01/extension/event/next`
    ExtensionNext,
    /// `POST /2020-01-01/extension/init/error`
    ExtensionInitError,
    /// `POST /2020-01-01/extension/exit/error`
    ExtensionExitError,
    /// `PUT /2022-07-01/telemetry`
    TelemetrySubscribe,
    /// Anything else: 404, as Lambda's router answers.
    Unknown,
}

impl Route {
    /// Whether an extension asks it (the Extensions or Telemetry API), not the runtime.
    pub fn is_extensions_api(&self) -> bool {
        matches!(
            self,
            Route::ExtensionRegister
                | Route::ExtensionNext
                | Route::ExtensionInitError
                | Route::ExtensionExitError
                | Route::TelemetrySubscribe
        )
    }
}

pub fn route(method: &str, url: &str) -> Route {
    let path = url.split('?').next().unwrap_or(url);
    if path == TELEMETRY_API_PATH {
        return match method {
            "PUT" => Route::TelemetrySubscribe,
            _ => Route::Unknown,
        };
    }
    if let Some(rest) = path.strip_prefix(EXTENSIONS_API_PREFIX) {
        return match (method, rest) {
            ("POST", "register") => Route::ExtensionRegister,
            ("GET", "event/next") => Route::ExtensionNext,
            ("POST", "init/error") => Route::ExtensionInitError,
            ("POST", "exit/error") => Route::ExtensionExitError,
            _ => Route::Unknown,
        };
    }
    let Some(rest) = path.strip_prefix(RUNTIME_API_PREFIX) else {
        return Route::Unknown;
    };
    match (method, rest) {
        ("GET", RESTORE_NEXT_PATH) => return Route::RestoreNext,
        ("POST", RESTORE_ERROR_PATH) => return Route::RestoreError,
        _ => {}
    }
    let segments: Vec<&str> = rest.split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["invocation", "next"]) => Route::Next,
        ("POST", ["invocation", id, "response"]) if !id.is_empty() => {
            Route::Response((*id).to_owned())
        }
        ("POST", ["invocation", id, "error"]) if !id.is_empty() => Route::Error((*id).to_owned()),
        ("POST", ["init", "error"]) => Route::InitError,
        _ => Route::Unknown,
    }
}

/// A request body, read up to Lambda's limit.
#[derive(Debug)]
pub enum Body {
    Complete(Vec<u8>),
    /// Over [`MAX_RESPONSE_BYTES`]; only its size is kept.
    TooLarge(u64),
    /// A streamed response, arriving piece by piece.
    Streaming(Receiver<Piece>),
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        match (self, other) {
            (Body::Complete(a), Body::Complete(b)) => a == b,
            (Body::TooLarge(a), Body::TooLarge(b)) => a == b,
            _ => false,
        }
    }
}

/// A piece of a streamed response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Data(Bytes),
    /// The trailers, names lower-case: a runtime reports an error after the stream started in
    /// `Lambda-Runtime-Function-Error-Type` and `-Body`.
    Trailers(Vec<(String, String)>),
    /// The connection broke before the body ended.
    Broken(String),
    End,
}

/// A request from the runtime, to be answered exactly once (dropping it answers 500).
pub struct ApiRequest {
    pub route: Route,
    pub body: Body,
    headers: HeaderMap,
    reply: oneshot::Sender<Response<Full<Bytes>>>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

fn respond(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

impl ApiRequest {
    /// A header's value, names compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn answer(self, response: Response<Full<Bytes>>) {
        // The runtime may be gone; the caller sees that through the process ending.
        let _ = self.reply.send(response);
    }

    /// Answers `next` with an event and its `Lambda-Runtime-*` headers.
    pub fn send_event(self, headers: &[(&str, String)], event: &[u8]) {
        self.respond(200, headers, event);
    }

    /// Any answer: a status, headers and a body.
    pub fn respond(self, status: u16, headers: &[(&str, String)], body: &[u8]) {
        self.answer(respond(status, headers, body.to_vec()));
    }

    /// 202 `{"status":"OK"}`, Lambda's answer to a posted response or error.
    pub fn accepted(self) {
        self.answer(respond(
            202,
            &[("Content-Type", "application/json".to_owned())],
            br#"{"status":"OK"}"#.to_vec(),
        ));
    }

    /// An error in the Runtime API's `{"errorMessage", "errorType"}` shape.
    pub fn reject(self, status: u16, error_type: &str, message: &str) {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        self.answer(respond(
            status,
            &[("Content-Type", "application/json".to_owned())],
            body.to_string().into_bytes(),
        ));
    }

    /// 400, for a response or error to an invocation that is not the current one.
    pub fn invalid_request_id(self) {
        self.reject(400, "InvalidRequestID", "Invalid request ID");
    }

    /// 403, for a call the runtime's state does not allow (rapid's wording).
    pub fn invalid_state(self, from: &str, to: &str) {
        self.reject(
            403,
            "InvalidStateTransition",
            &format!(
                "State transition from {from} to {to} failed for runtime. Error: State \
                 transition is not allowed"
            ),
        );
    }

    /// 413, for a body over [`MAX_RESPONSE_BYTES`].
    pub fn too_large(self) {
        self.reject(
            413,
            "RequestEntityTooLarge",
            &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
        );
    }

    pub fn not_found(self) {
        self.answer(respond(404, &[], b"404 page not found\n".to_vec()));
    }
}

/// Reads a body up to the limit; past it, counts the rest without keeping it.
async fn read_body(mut body: Incoming) -> Body {
    let mut kept = Vec::new();
    let mut size: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size <= MAX_RESPONSE_BYTES as u64 {
                kept.extend_from_slice(&data);
            }
        }
    }
    if size > MAX_RESPONSE_BYTES as u64 {
        Body::TooLarge(size)
    } else {
        Body::Complete(kept)
    }
}

/// Forwards a streamed body piece by piece, waking the loop for each.
async fn stream_body(mut body: Incoming, pieces: Sender<Piece>, waker: Waker) {
    let end = loop {
        match body.frame().await {
            None => break Piece::End,
            Some(Err(error)) => break Piece::Broken(error.to_string()),
            Some(Ok(frame)) => {
                let piece = match frame.into_data() {
                    Ok(data) => Piece::Data(data),
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => Piece::Trailers(
                            trailers
                                .iter()
                                .map(|(name, value)| {
                                    (
                                        name.as_str().to_owned(),
                                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                                    )
                                })
                                .collect(),
                        ),
                        Err(_) => continue,
                    },
                };
                if pieces.send(piece).is_err() {
                    return;
                }
                waker.wake();
            }
        }
    };
    let _ = pieces.send(end);
    waker.wake();
}

async fn handle(
    request: Request<Incoming>,
    requests: Sender<ApiRequest>,
    waker: Waker,
) -> Response<Full<Bytes>> {
    let (parts, incoming) = request.into_parts();
    let route = route(parts.method.as_str(), parts.uri.path());
    let streaming = matches!(route, Route::Response(_))
        && parts
            .headers
            .get(RESPONSE_MODE)
            .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    let body = if streaming {
        let (pieces, receiver) = channel();
        tokio::spawn(stream_body(incoming, pieces, waker.clone()));
        Body::Streaming(receiver)
    } else if matches!(parts.method, hyper::Method::POST | hyper::Method::PUT) {
        read_body(incoming).await
    } else {
        Body::Complete(Vec::new())
    };
    let (reply, answer) = oneshot::channel();
    let request = ApiRequest {
        route,
        body,
        headers: parts.headers,
        reply,
    };
    if requests.send(request).is_err() {
        return respond(500, &[], Vec::new());
    }
    waker.wake();
    answer
        .await
        .unwrap_or_else(|_| respond(500, &[], Vec::new()))
}

async fn accept(listener: TcpListener, requests: Sender<ApiRequest>, waker: Waker) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Small responses must not wait for an ACK (Nagle's algorithm against the client's
        // delayed ACK costs 40 ms a request).
        let _ = stream.set_nodelay(true);
        let requests = requests.clone();
        let waker = waker.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (requests, waker) = (requests.clone(), waker.clone());
                async move { Ok::<_, Infallible>(handle(request, requests, waker).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The running server. Dropping it stops the server thread.
pub struct RuntimeApi {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    requests: Receiver<ApiRequest>,
    wake: Wake,
    pub addr: SocketAddr,
}

impl RuntimeApi {
    /// Listens on 127.0.0.1 on a port the kernel picks: never another interface, never a
    /// fixed port that a second run would collide with.
    pub fn start() -> Result<RuntimeApi, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (wake, waker) = wake::wake().map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| e.to_string())?;
        let (sender, requests) = channel();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || {
                runtime.spawn(accept(listener, sender, waker));
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| e.to_string())?;
        Ok(RuntimeApi {
            shutdown: Some(shutdown),
            thread: Some(thread),
            requests,
            wake,
            addr,
        })
    }

    /// What a request or a piece of a stream wakes when it arrives.
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// The next request that arrived, if any.
    pub fn try_recv(&self) -> Option<ApiRequest> {
        self.wake.drain();
        self.requests.try_recv().ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        // Requests still queued are answered 500 as they drop.
        while self.requests.try_recv().is_ok() {}
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    #[test]
    fn routes_are_the_2018_06_01_api() {
        for (method, path, expected) in [
            ("GET", "/2018-06-01/runtime/invocation/next", Route::Next),
            (
                "POST",
                "/2018-06-01/runtime/invocation/abc-1/response",
                Route::Response("abc-1".into()),
            ),
            (
                "POST",
                "/2018-06-01/runtime/invocation/abc-1/error",
                Route::Error("abc-1".into()),
            ),
            ("POST", "/2018-06-01/runtime/init/error", Route::InitError),
            (
                "GET",
                "/2018-06-01/runtime/restore/next",
                Route::RestoreNext,
            ),
            (
                "POST",
                "/2018-06-01/runtime/restore/error",
                Route::RestoreError,
            ),
            ("POST", "/2018-06-01/runtime/restore/next", Route::Unknown),
            (
                "POST",
                "/2018-06-01/runtime/invocation/next",
                Route::Unknown,
            ),
            ("GET", "/2018-06-01/runtime/init/error", Route::Unknown),
            ("GET", "/runtime/invocation/next", Route::Unknown),
            (
                "POST",
                "/2018-06-01/runtime/invocation//response",
                Route::Unknown,
            ),
        ] {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn extensions_and_telemetry_share_the_address() {
        for (method, path, expected) in [
            (
                "POST",
                "/2020-01-01/extension/register",
                Route::ExtensionRegister,
            ),
            (
                "GET",
                "/2020-01-01/extension/event/next",
                Route::ExtensionNext,
            ),
            (
                "POST",
                "/2020-01-01/extension/init/error",
                Route::ExtensionInitError,
            ),
            (
                "POST",
                "/2020-01-01/extension/exit/error",
                Route::ExtensionExitError,
            ),
            ("PUT", "/2022-07-01/telemetry", Route::TelemetrySubscribe),
            ("POST", "/2022-07-01/telemetry", Route::Unknown),
            ("GET", "/2020-01-01/extension/register", Route::Unknown),
        ] {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
        assert!(Route::ExtensionNext.is_extensions_api());
        assert!(!Route::Next.is_extensions_api());
    }

    fn wait_for(api: &RuntimeApi) -> ApiRequest {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(request) = api.try_recv() {
                return request;
            }
            assert!(Instant::now() < until, "no request arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn exchange(addr: SocketAddr, request: &[u8]) -> std::thread::JoinHandle<String> {
        let request = request.to_vec();
        std::thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(&request).unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            answer
        })
    }

    #[test]
    fn listens_on_loopback_and_answers_as_lambda() {
        let api = RuntimeApi::start().unwrap();
        assert!(api.addr.ip().is_loopback());
        assert_ne!(api.addr.port(), 0);

        let client = exchange(
            api.addr,
            b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n\
              Content-Length: 2\r\nConnection: close\r\n\r\n{}",
        );
        let request = wait_for(&api);
        assert_eq!(request.route, Route::Response("r1".into()));
        assert_eq!(request.body, Body::Complete(b"{}".to_vec()));
        request.accepted();
        let answer = client.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        assert!(answer.ends_with(r#"{"status":"OK"}"#), "{answer}");
    }

    #[test]
    fn bodies_over_the_limit_are_measured_not_kept() {
        let api = RuntimeApi::start().unwrap();
        let size = MAX_RESPONSE_BYTES + 10;
        let mut request = format!(
            "POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n\
             Content-Length: {size}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        request.extend(std::iter::repeat_n(b'x', size));
        let client = exchange(api.addr, &request);
        let request = wait_for(&api);
        assert_eq!(request.body, Body::TooLarge(size as u64));
        request.too_large();
        let answer = client.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains(
                r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#
            ),
            "{answer}"
        );
    }
}
