//! The Telemetry API (2022-07-01): an extension subscribes with the address of its own HTTP
//! listener, and the log lines of the function (and of the extensions) are POSTed to it in
//! batches, JSON arrays of `{"time", "type", "record"}`, as Lambda delivers them.
//!
//! Each subscriber has its own thread, so a slow listener never holds up the invocation loop;
//! the batch goes when it holds `maxItems` records or `maxBytes` bytes, or `timeoutMs` after its
//! first record, whichever comes first.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

/// How long one delivery may take before it is given up (the listener is the extension's).
const POST_TIMEOUT: Duration = Duration::from_secs(1);

/// A record's `type`: the telemetry stream it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The function's stdout and stderr.
    Function,
    /// The extensions' stdout and stderr.
    Extension,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Function => "function",
            Stream::Extension => "extension",
        }
    }
}

/// A subscription as Lambda validates it: types among `platform`, `function` and `extension`,
/// buffering within Lambda's bounds (timeoutMs 25 to 30000, default 1000; maxBytes 262144 to
/// 1048576, default 262144; maxItems 1000 to 10000, default 10000), an HTTP destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub types: Vec<String>,
    pub max_items: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
    /// Where the batches go, `sandbox.localdomain` (Lambda's name for the sandbox) read as
    /// 127.0.0.1, which is where the extension listens here.
    pub uri: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    types: Vec<String>,
    #[serde(default)]
    buffering: Buffering,
    destination: Destination,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Buffering {
    max_items: Option<usize>,
    max_bytes: Option<usize>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Destination {
    #[serde(rename = "protocol")]
    protocol: String,
    uri: String,
}

/// Parses a `PUT /2022-07-01/telemetry` body; the error is the `errorMessage` of Lambda's 400
/// `ValidationError`.
pub fn parse_subscription(body: &[u8]) -> Result<Subscription, String> {
    let request: Request = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Some(bad) = request
        .types
        .iter()
        .find(|t| !matches!(t.as_str(), "platform" | "function" | "extension"))
    {
        return Err(format!(
            "unknown telemetry type `{bad}`: the types are platform, function, extension"
        ));
    }
    if request.destination.protocol != "HTTP" {
        return Err(format!(
            "destination protocol `{}` is not supported here: subscribe with `HTTP`",
            request.destination.protocol
        ));
    }
    let bounded = |value: Option<usize>, default, min, max, name: &str| match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(format!(
            "buffering.{name} {v} is not within {min} and {max}"
        )),
    };
    let max_items = bounded(
        request.buffering.max_items,
        10_000,
        1_000,
        10_000,
        "maxItems",
    )?;
    let max_bytes = bounded(
        request.buffering.max_bytes,
        262_144,
        262_144,
        1_048_576,
        "maxBytes",
    )?;
    let timeout_ms = bounded(
        request.buffering.timeout_ms.map(|t| t as usize),
        1_000,
        25,
        30_000,
        "timeoutMs",
    )?;
    Ok(Subscription {
        types: request.types,
        max_items,
        max_bytes,
        timeout: Duration::from_millis(timeout_ms as u64),
        uri: local_uri(&request.destination.uri),
    })
}

/// Lambda's listeners bind `sandbox.localdomain` (or `sandbox`), a name that exists only in the
/// sandbox; here they listen on loopback.
fn local_uri(uri: &str) -> String {
    for host in ["sandbox.localdomain", "sandbox"] {
        for scheme in ["http://", "HTTP://"] {
            if let Some(rest) = uri.strip_prefix(&format!("{scheme}{host}"))
                && (rest.is_empty() || rest.starts_with([':', '/']))
            {
                return format!("http://127.0.0.1{rest}");
            }
        }
    }
    uri.to_owned()
}

/// One subscriber's delivery thread.
struct Subscriber {
    extension_id: String,
    streams: Vec<Stream>,
    sender: Option<Sender<String>>,
    thread: Option<JoinHandle<()>>,
}

/// The subscriptions of one execution environment.
#[derive(Default)]
pub struct Telemetry {
    subscribers: Vec<Subscriber>,
}

impl Telemetry {
    /// Starts delivering to `subscription`; a second subscription of the same extension
    /// replaces its first, as on Lambda.
    pub fn subscribe(&mut self, extension_id: &str, subscription: Subscription) {
        self.unsubscribe(extension_id);
        let streams = [Stream::Function, Stream::Extension]
            .into_iter()
            .filter(|s| subscription.types.iter().any(|t| t == s.name()))
            .collect();
        let (sender, receiver) = channel();
        let thread = std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || deliver(receiver, &subscription))
            .ok();
        self.subscribers.push(Subscriber {
            extension_id: extension_id.to_owned(),
            streams,
            sender: Some(sender),
            thread,
        });
    }

    fn unsubscribe(&mut self, extension_id: &str) {
        if let Some(at) = self
            .subscribers
            .iter()
            .position(|s| s.extension_id == extension_id)
        {
            let subscriber = self.subscribers.remove(at);
            finish(subscriber);
        }
    }

    /// A log line of `stream`, to each subscriber of it.
    pub fn record(&self, stream: Stream, line: &[u8]) {
        if !self.subscribers.iter().any(|s| s.streams.contains(&stream)) {
            return;
        }
        let record = serde_json::json!({
            "time": rfc3339_millis(SystemTime::now()),
            "type": stream.name(),
            "record": String::from_utf8_lossy(line),
        })
        .to_string();
        for subscriber in self
            .subscribers
            .iter()
            .filter(|s| s.streams.contains(&stream))
        {
            if let Some(sender) = &subscriber.sender {
                let _ = sender.send(record.clone());
            }
        }
    }

    /// Delivers what is buffered and ends every subscription: before SHUTDOWN, so that an
    /// extension has every line when it is told to stop.
    pub fn flush(&mut self) {
        for subscriber in self.subscribers.drain(..) {
            finish(subscriber);
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.flush();
    }
}

fn finish(mut subscriber: Subscriber) {
    drop(subscriber.sender.take());
    if let Some(thread) = subscriber.thread.take() {
        let _ = thread.join();
    }
}

fn deliver(records: Receiver<String>, subscription: &Subscription) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(POST_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut batch: Vec<String> = Vec::new();
    let mut bytes = 0;
    let mut first_at = Instant::now();
    loop {
        let wait = if batch.is_empty() {
            Duration::from_secs(3600)
        } else {
            subscription.timeout.saturating_sub(first_at.elapsed())
        };
        let closed = match records.recv_timeout(wait) {
            Ok(record) => {
                if batch.is_empty() {
                    first_at = Instant::now();
                }
                bytes += record.len();
                batch.push(record);
                if batch.len() < subscription.max_items && bytes < subscription.max_bytes {
                    continue;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !batch.is_empty() {
            let body = format!("[{}]", batch.join(","));
            // A listener that is gone or refuses loses the batch, as on Lambda.
            let _ = agent
                .post(&subscription.uri)
                .content_type("application/json")
                .send(body.as_bytes());
            batch.clear();
            bytes = 0;
        }
        if closed {
            return;
        }
    }
}

/// `2022-10-12T00:00:00.123Z`, the records' `time`.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let t = time::OffsetDateTime::from(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::UNIX_EPOCH;

    #[test]
    fn subscriptions_are_validated_with_lambdas_bounds() {
        let s = parse_subscription(
            br#"{"schemaVersion":"2022-12-13","types":["function","platform"],
                "buffering":{"timeoutMs":25},
                "destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/logs"}}"#,
        )
        .unwrap();
        assert_eq!(s.types, ["function", "platform"]);
        assert_eq!(s.timeout, Duration::from_millis(25));
        assert_eq!((s.max_items, s.max_bytes), (10_000, 262_144));
        assert_eq!(s.uri, "http://127.0.0.1:4243/logs");

        let err = parse_subscription(
            br#"{"types":["function"],"buffering":{"timeoutMs":10},
                "destination":{"protocol":"HTTP","URI":"http://sandbox:1"}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("timeoutMs 10 is not within 25 and 30000"),
            "{err}"
        );
        let err = parse_subscription(
            br#"{"types":["logs"],"destination":{"protocol":"HTTP","URI":"http://sandbox:1"}}"#,
        )
        .unwrap_err();
        assert!(err.contains("`logs`"), "{err}");
        let err = parse_subscription(
            br#"{"types":["function"],"destination":{"protocol":"TCP","URI":"sandbox:1"}}"#,
        )
        .unwrap_err();
        assert!(err.contains("`TCP`"), "{err}");
        assert_eq!(
            local_uri("http://example.com:1/x"),
            "http://example.com:1/x"
        );
        assert_eq!(local_uri("http://sandboxes:1"), "http://sandboxes:1");
    }

    #[test]
    fn times_are_rfc3339_in_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_665_532_800_123);
        assert_eq!(rfc3339_millis(t), "2022-10-12T00:00:00.123Z");
    }

    #[test]
    fn records_reach_the_listener_in_batches_and_the_rest_on_flush() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            while bodies.len() < 2 {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .unwrap();
                bodies.push(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
            }
            bodies
        });
        let mut telemetry = Telemetry::default();
        let mut subscription = parse_subscription(
            format!(
                r#"{{"types":["function"],"buffering":{{"maxItems":1000}},
                    "destination":{{"protocol":"HTTP","URI":"http://sandbox.localdomain:{port}"}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        subscription.max_items = 2;
        telemetry.subscribe("ext-1", subscription);
        telemetry.record(Stream::Function, b"one");
        telemetry.record(Stream::Extension, b"not subscribed");
        telemetry.record(Stream::Function, b"two");
        telemetry.record(Stream::Function, b"three");
        telemetry.flush();
        let bodies = server.join().unwrap();
        let records = |i: usize| -> Vec<String> {
            bodies[i]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    assert_eq!(r["type"], "function");
                    assert!(r["time"].as_str().unwrap().ends_with('Z'));
                    r["record"].as_str().unwrap().to_owned()
                })
                .collect()
        };
        assert_eq!(records(0), ["one", "two"]);
        assert_eq!(records(1), ["three"]);
    }
}
