//! The Runtime API (2018-06-01) that `bootstrap` talks to, on 127.0.0.1 and an ephemeral port,
//! with the Extensions API (2020-01-01) and the Telemetry API (2022-07-01) beside it on the same
//! address, as Lambda serves all three at `AWS_LAMBDA_RUNTIME_API`.
//!
//! One thread accepts requests, reads their bodies (bounded by Lambda's payload limit) and hands
//! them over a channel to the invocation loop, which answers them: `next` is held until there
//! is an event, as Lambda holds it. A byte on a pipe wakes the loop, so it can `poll` the
//! function's output and the API together.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Response, Server};

use super::lambda::MAX_RESPONSE_BYTES;

const PREFIX: &str = "/2018-06-01/runtime/";
const EXTENSION_PREFIX: &str = "/2020-01-01/extension/";
const TELEMETRY_PATH: &str = "/2022-07-01/telemetry";

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
    if path == TELEMETRY_PATH {
        return match method {
            "PUT" => Route::TelemetrySubscribe,
            _ => Route::Unknown,
        };
    }
    if let Some(rest) = path.strip_prefix(EXTENSION_PREFIX) {
        return match (method, rest) {
            ("POST", "register") => Route::ExtensionRegister,
            ("GET", "event/next") => Route::ExtensionNext,
            ("POST", "init/error") => Route::ExtensionInitError,
            ("POST", "exit/error") => Route::ExtensionExitError,
            _ => Route::Unknown,
        };
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Route::Unknown;
    };
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Complete(Vec<u8>),
    /// Over [`MAX_RESPONSE_BYTES`]; only its size is kept.
    TooLarge(u64),
}

/// A request from the runtime, to be answered exactly once (dropping it answers 500).
pub struct ApiRequest {
    pub route: Route,
    pub body: Body,
    request: tiny_http::Request,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn json_response(status: u16, body: String) -> Response<io::Cursor<Vec<u8>>> {
    let mut response = Response::from_string(body).with_status_code(status);
    if let Some(h) = header("Content-Type", "application/json") {
        response.add_header(h);
    }
    response
}

impl ApiRequest {
    /// A header's value, names compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Answers `next` with an event and its `Lambda-Runtime-*` headers. An error means the
    /// runtime is gone; the caller sees it through the process ending.
    pub fn send_event(self, headers: &[(&str, String)], event: &[u8]) {
        self.respond(200, headers, event);
    }

    /// Any answer: a status, headers and a body.
    pub fn respond(self, status: u16, headers: &[(&str, String)], body: &[u8]) {
        let mut response = Response::from_data(body.to_vec()).with_status_code(status);
        for (name, value) in headers {
            if let Some(h) = header(name, value) {
                response.add_header(h);
            }
        }
        let _ = self.request.respond(response);
    }

    /// 202 `{"status":"OK"}`, Lambda's answer to a posted response or error.
    pub fn accepted(self) {
        let _ = self
            .request
            .respond(json_response(202, r#"{"status":"OK"}"#.to_owned()));
    }

    /// An error in the Runtime API's `{"errorMessage", "errorType"}` shape.
    pub fn reject(self, status: u16, error_type: &str, message: &str) {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        let _ = self
            .request
            .respond(json_response(status, body.to_string()));
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
        let _ = self
            .request
            .respond(Response::from_string("404 page not found\n").with_status_code(404));
    }
}

/// Reads a body up to the limit; past it, counts the rest without keeping it.
fn read_body(reader: &mut dyn Read) -> Body {
    let mut body = Vec::new();
    let limit = MAX_RESPONSE_BYTES as u64;
    if reader.take(limit + 1).read_to_end(&mut body).is_err() {
        return Body::Complete(body);
    }
    if body.len() as u64 <= limit {
        return Body::Complete(body);
    }
    let rest = io::copy(reader, &mut io::sink()).unwrap_or(0);
    Body::TooLarge(body.len() as u64 + rest)
}

/// The running server. Dropping it stops the accepting thread.
pub struct RuntimeApi {
    server: Arc<Server>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    requests: Receiver<ApiRequest>,
    wake: io::PipeReader,
    pub addr: SocketAddr,
}

impl RuntimeApi {
    /// Listens on 127.0.0.1 on a port the kernel picks: never another interface, never a
    /// fixed port that a second run would collide with.
    pub fn start() -> Result<RuntimeApi, String> {
        let server = Arc::new(Server::http("127.0.0.1:0").map_err(|e| e.to_string())?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| "the server has no IP address".to_owned())?;
        let (wake, mut wake_writer) = io::pipe().map_err(|e| e.to_string())?;
        set_nonblocking(wake.as_raw_fd()).map_err(|e| e.to_string())?;
        set_nonblocking(wake_writer.as_raw_fd()).map_err(|e| e.to_string())?;
        let (sender, requests) = channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let server = Arc::clone(&server);
            let stopping = Arc::clone(&stopping);
            std::thread::Builder::new()
                .name("runtime-api".into())
                .spawn(move || {
                    loop {
                        let mut request = match server.recv() {
                            Ok(request) => request,
                            Err(_) if stopping.load(Ordering::SeqCst) => break,
                            Err(_) => continue,
                        };
                        let route = route(request.method().as_str(), request.url());
                        let body = if matches!(request.method(), Method::Post | Method::Put) {
                            read_body(request.as_reader())
                        } else {
                            Body::Complete(Vec::new())
                        };
                        let message = ApiRequest {
                            route,
                            body,
                            request,
                        };
                        if sender.send(message).is_err() {
                            break;
                        }
                        // A full pipe already wakes the loop; nothing is lost by not writing.
                        let _ = io::Write::write(&mut wake_writer, &[1]);
                    }
                })
                .map_err(|e| e.to_string())?
        };
        Ok(RuntimeApi {
            server,
            stopping,
            thread: Some(thread),
            requests,
            wake,
            addr,
        })
    }

    /// The fd that becomes readable when a request arrives, for `poll`.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// The next request that arrived, if any.
    pub fn try_recv(&self) -> Option<ApiRequest> {
        let mut sink = [0u8; 64];
        while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        self.requests.try_recv().ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Requests still queued are answered 500 as they drop, while the server still lives.
        while self.requests.try_recv().is_ok() {}
    }
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd this process owns; F_GETFL/F_SETFL do not touch memory.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    #[test]
    fn routes_are_the_2018_06_01_api() {
        let p = |m, u| route(m, u);
        assert_eq!(p("GET", "/2018-06-01/runtime/invocation/next"), Route::Next);
        assert_eq!(
            p("POST", "/2018-06-01/runtime/invocation/abc-1/response"),
            Route::Response("abc-1".into())
        );
        assert_eq!(
            p("POST", "/2018-06-01/runtime/invocation/abc-1/error"),
            Route::Error("abc-1".into())
        );
        assert_eq!(
            p("POST", "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
        assert_eq!(
            p("POST", "/2018-06-01/runtime/invocation/next"),
            Route::Unknown
        );
        assert_eq!(p("GET", "/2018-06-01/runtime/init/error"), Route::Unknown);
        assert_eq!(p("GET", "/runtime/invocation/next"), Route::Unknown);
        assert_eq!(
            p("POST", "/2018-06-01/runtime/invocation//response"),
            Route::Unknown
        );
    }

    #[test]
    fn extensions_and_telemetry_share_the_address() {
        let p = |m, u| route(m, u);
        assert_eq!(
            p("POST", "/2020-01-01/extension/register"),
            Route::ExtensionRegister
        );
        assert_eq!(
            p("GET", "/2020-01-01/extension/event/next"),
            Route::ExtensionNext
        );
        assert_eq!(
            p("POST", "/2020-01-01/extension/init/error"),
            Route::ExtensionInitError
        );
        assert_eq!(
            p("POST", "/2020-01-01/extension/exit/error"),
            Route::ExtensionExitError
        );
        assert_eq!(p("PUT", "/2022-07-01/telemetry"), Route::TelemetrySubscribe);
        assert_eq!(p("POST", "/2022-07-01/telemetry"), Route::Unknown);
        assert_eq!(p("GET", "/2020-01-01/extension/register"), Route::Unknown);
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
