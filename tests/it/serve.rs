//! `cargo lambda-build serve` over real HTTP: the function `new --http` creates, built once per
//! architecture into the shared fixture target dir, served as a Function URL, an HTTP API and a
//! REST API; the echo fixture for arm64 under qemu and for the latency measurement.

use crate::invoke::{build_zip, echo_zip};
use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `new --http` crate built for `arch` with the tool, once per test run.
fn http_zip(arch: &str) -> PathBuf {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-http-{arch}"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let new = support::tool()
        .args(["new", "--http", "hello-http"])
        .current_dir(&scratch)
        .output()
        .unwrap();
    support::assert_success(&new);
    let dir = scratch.join("hello-http");
    let built = support::lambda_build_fixture(&dir, &["--zip", "--arch", arch]);
    support::assert_success(&built);
    dir.join("lambda.zip")
}

pub(crate) fn http_x86_64_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| http_zip("x86_64"))
}

/// `serve` running in the background; killed (and its output kept) on drop.
pub(crate) struct Served {
    child: Child,
    pub(crate) addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `serve ZIP --port 0 ARGS` and waits for the address it prints.
    pub(crate) fn start(zip: &Path, args: &[&str]) -> Served {
        Served::start_in(Path::new(env!("CARGO_MANIFEST_DIR")), zip, args)
    }

    /// [`Served::start`] in `dir`.
    pub(crate) fn start_in(dir: &Path, zip: &Path, args: &[&str]) -> Served {
        let mut all = vec![zip.as_os_str()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        Served::start_with(dir, &all)
    }

    /// `serve ARGS --port 0` in `dir`, ARGS naming the function (an artifact, or `--image`).
    pub(crate) fn start_with(dir: &Path, args: &[&std::ffi::OsStr]) -> Served {
        let mut child = support::tool()
            .current_dir(dir)
            .arg("serve")
            .args(args)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cargo-lambda-build serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        // stdout's one line: the address, `http://127.0.0.1:PORT/`.
        let (found, addr) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let addr = line
                .trim()
                .strip_prefix("http://")
                .and_then(|rest| rest.strip_suffix('/'))
                .and_then(|addr| addr.parse::<SocketAddr>().ok());
            let _ = found.send(addr);
        });
        let addr = addr.recv_timeout(Duration::from_secs(60)).ok().flatten();
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("serve did not start:\n{}", stderr.lock().unwrap());
        };
        Served {
            child,
            addr,
            stderr,
        }
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// stderr once it holds `text` (a streamed answer reaches the client before the line that
    /// logs it is written), or after 10 s.
    pub(crate) fn stderr_with(&self, text: &str) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let err = self.stderr();
            if err.contains(text) || Instant::now() > until {
                return err;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one request (`Connection: close`) and reads the whole response.
    pub(crate) fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        self.request_at(self.addr, method, target, headers, body)
    }

    /// [`Served::request`] to `addr` (the same port on another address).
    pub(crate) fn request_at(
        &self,
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        // A refused body may be cut short by the server: what matters is its answer.
        let _ = stream.write_all(body);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Answer::parse(&raw).unwrap_or_else(|| {
            panic!(
                "not an HTTP response: {:?}\nserve's stderr:\n{}",
                String::from_utf8_lossy(&raw),
                self.stderr()
            )
        })
    }

    pub(crate) fn get(&self, target: &str) -> Answer {
        self.request("GET", target, &[], b"")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Ctrl-C, as a user stops it; then make sure.
        support::child::stop(&mut self.child, libc::SIGINT, Duration::from_secs(10));
    }
}

/// A parsed HTTP/1.1 response (Content-Length or chunked).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn parse(raw: &[u8]) -> Option<Answer> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let rest = &raw[end + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(rest)?
        } else {
            rest.to_vec()
        };
        Some(Answer {
            status,
            headers,
            body,
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// The same requests and answers whatever the service in front: lambda_http reads each event
/// into one `http::Request`.
pub(crate) fn assert_the_http_function_answers(served: &Served) {
    // A query string, and the cookie it sets.
    let hello = served.get("/?name=Ferris&x=1");
    assert_eq!(hello.status, 200, "{hello:?}\n{}", served.stderr());
    assert_eq!(hello.json()["message"], "hello, Ferris");
    assert_eq!(hello.header("content-type"), Some("application/json"));
    let cookie = hello.header("set-cookie").unwrap_or_default();
    assert!(cookie.starts_with("name=Ferris"), "{hello:?}");

    // The cookie sent back.
    let again = served.request("GET", "/", &[("Cookie", "other=1; name=Ferris")], b"");
    assert_eq!(again.json()["message"], "hello, Ferris", "{again:?}");
    assert_eq!(served.get("/").json()["message"], "hello, world");

    // A JSON body, and a binary one that travels as base64 both ways.
    let json = served.request(
        "POST",
        "/echo",
        &[("Content-Type", "application/json")],
        br#"{"k":[1,2]}"#,
    );
    assert_eq!(json.status, 200);
    assert_eq!(json.body, br#"{"k":[1,2]}"#);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let bytes: Vec<u8> = (0..=255).collect();
    let binary = served.request(
        "POST",
        "/echo",
        &[("Content-Type", "application/octet-stream")],
        &bytes,
    );
    assert_eq!(binary.status, 200, "{binary:?}");
    assert_eq!(binary.body, bytes);
    assert_eq!(
        binary.header("content-type"),
        Some("application/octet-stream")
    );

    // The function's own 404.
    let missing = served.get("/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no route for GET /nope");
}

#[test]
fn the_http_template_served_as_a_function_url() {
    let served = Served::start(http_x86_64_zip(), &[]);
    assert_the_http_function_answers(&served);
    let err = served.stderr_with("GET /nope -> 404");
    assert!(
        err.contains("(x86_64) as a Function URL at http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("GET /nope -> 404"), "{err}");
    // One warm process: one cold start for all the requests.
    assert_eq!(err.matches("Init Duration").count(), 1, "{err}");
    assert_eq!(err.matches("START RequestId").count(), 6, "{err}");
}

#[test]
fn the_http_template_behind_api_gateway_payload_2_0_and_1_0() {
    let served = Served::start(http_x86_64_zip(), &["--event-format", "http-api"]);
    assert_the_http_function_answers(&served);
    drop(served);

    // A REST API's events carry the stage, which lambda_http puts before the path unless told
    // not to, as on API Gateway.
    let served = Served::start(http_x86_64_zip(), &["--event-format", "rest-api"]);
    let staged = served.get("/");
    assert_eq!(staged.status, 404);
    assert_eq!(staged.json()["error"], "no route for GET /Prod/");
    drop(served);
    let served = Served::start(
        http_x86_64_zip(),
        &[
            "--event-format",
            "rest-api",
            "-e",
            "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true",
        ],
    );
    assert_the_http_function_answers(&served);
}

#[test]
fn a_request_over_6_mb_is_refused_with_413_before_the_function() {
    let served = Served::start(http_x86_64_zip(), &[]);
    let body = vec![b'x'; 6 * 1024 * 1024 + 1];
    let refused = served.request("POST", "/echo", &[("Content-Type", "text/plain")], &body);
    assert_eq!(refused.status, 413);
    assert_eq!(
        refused.json()["message"],
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );
    // Still serving.
    assert_eq!(served.get("/").status, 200);
    let err = served.stderr_with("GET / -> 200");
    assert!(
        err.contains("warning: refused POST /echo: its body is over Lambda's 6291456 bytes"),
        "{err}"
    );
    assert_eq!(err.matches("START RequestId").count(), 1, "{err}");
}

#[test]
fn a_port_in_use_is_refused_with_the_fix() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = support::tool()
        .arg("serve")
        .arg(echo_zip())
        .args(["--port", &port])
        .output()
        .unwrap();
    let err = support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: cannot listen on 127.0.0.1:{port}: address already in use"
        )),
        "{err}"
    );
    assert!(
        err.contains("\nhelp: another program listens on port"),
        "{err}"
    );
    assert!(err.contains("`--port 0` takes a free one"), "{err}");
}

#[test]
fn an_arm64_function_is_served_under_qemu() {
    if !support::require_tools(&[support::QEMU[0]]) || !support::arm64_linker() {
        return;
    }
    let zip = arm64_echo_zip();
    let served = Served::start(zip, &["--event-format", "http-api"]);
    // echo is no HTTP function: its plain JSON answer is read as payload 2.0 infers it.
    let answer = served.get("/?name=x");
    assert_eq!(answer.status, 200, "{answer:?}\n{}", served.stderr());
    assert_eq!(answer.json()["message"], "hello, ");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let err = served.stderr();
    assert!(err.contains("(arm64 under qemu-aarch64"), "{err}");
}

pub(crate) fn arm64_echo_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("echo", "arm64"))
}

/// Request latency through the HTTP front, for the record (`cargo test --test it -- --ignored
/// serve::latency --nocapture`): not a pass/fail check, machines differ too much.
#[test]
#[ignore]
fn latency() {
    for (arch, zip) in [("x86_64", echo_zip()), ("arm64 (qemu)", arm64_echo_zip())] {
        let served = Served::start(zip, &["-q"]);
        let _ = served.get("/"); // the cold start
        let times = (0..200)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(served.get("/?name=x").status, 200);
                started.elapsed()
            })
            .collect();
        print_latencies(arch, times);
    }
    // Time to the first streamed byte: from sending the request to reading `first`.
    let served = Served::start(stream_zip(), &["-q", "-e", "STREAM_PAUSE_MS=0"]);
    let _ = read_streamed(served.addr, "/"); // the cold start
    let firsts = (0..50).map(|_| read_streamed(served.addr, "/").1).collect();
    print_latencies("first streamed byte", firsts);
}

fn print_latencies(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |at: usize| times[at].as_secs_f64() * 1000.0;
    println!(
        "{what}: median {:.2} ms, p99 {:.2} ms over {} requests",
        ms(times.len() / 2),
        ms(times.len() * 99 / 100),
        times.len()
    );
}

pub(crate) fn stream_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| build_zip("stream", "x86_64"))
}

/// Reads a streamed response from `addr`, noting when the first body chunk and the end came.
pub(crate) fn read_streamed(addr: SocketAddr, target: &str) -> (Vec<u8>, Duration, Duration, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut first = None;
    let mut buffer = [0u8; 4096];
    let clean = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break raw.ends_with(b"0\r\n\r\n"),
            Ok(n) => {
                raw.extend_from_slice(&buffer[..n]);
                if first.is_none() && raw.windows(6).any(|w| w == b"first\n") {
                    first = Some(started.elapsed());
                }
            }
            Err(_) => break false,
        }
    };
    (raw, first.unwrap_or_default(), started.elapsed(), clean)
}

/// The stream fixture's answer to `GET /` (served with `STREAM_PAUSE_MS=1500`), read as it
/// arrives: the prelude's status, headers and cookie, the body without it, `first` before the
/// function's pause was over and `last` after it. The raw response, as text.
fn assert_the_stream_arrives_as_it_is_sent(served: &Served) -> String {
    let (raw, first, end, clean) = read_streamed(served.addr, "/");
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(clean, "{text}");
    let answer = Answer::parse(&raw).unwrap();
    assert_eq!(answer.status, 201, "{text}");
    assert_eq!(answer.header("x-stream"), Some("yes"));
    assert_eq!(answer.header("set-cookie"), Some("streamed=1"));
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
    assert_eq!(answer.body, b"first\nlast\n");
    assert!(
        end - first >= Duration::from_millis(1000),
        "first chunk at {first:?}, end at {end:?}"
    );
    text
}

#[test]
fn a_streamed_response_reaches_the_client_while_the_function_still_runs() {
    let served = Served::start(stream_zip(), &["-e", "STREAM_PAUSE_MS=1500"]);
    assert_the_stream_arrives_as_it_is_sent(&served);
    let err = served.stderr_with("GET / -> 201");
    assert!(err.contains("GET / -> 201"), "{err}");
}

#[test]
fn an_error_mid_stream_cuts_the_body_short_and_fails_the_invocation() {
    let served = Served::start(stream_zip(), &[]);
    let (raw, _, _, clean) = read_streamed(served.addr, "/fail");
    let text = String::from_utf8_lossy(&raw);
    assert!(!clean, "the body ended cleanly: {text}");
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert!(text.contains("partial\n"), "{text}");
    let failed = "the invocation failed with StreamFailed: stream was asked to fail";
    let err = served.stderr_with(failed);
    assert!(err.contains(failed), "{err}");
    // Still serving, on the same process.
    let (_, _, _, clean) = read_streamed(served.addr, "/");
    assert!(clean);
    let err = served.stderr_with("GET / -> 201");
    assert_eq!(err.matches("Init Duration").count(), 1, "{err}");
}

#[test]
fn invoke_prints_a_stream_as_it_arrives_and_fails_on_an_error_in_its_trailers() {
    let mut child = support::tool()
        .arg("invoke")
        .arg(stream_zip())
        .args(["-d", r#"{"rawPath":"/"}"#, "-e", "STREAM_PAUSE_MS=1500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut printed = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut first = None;
    loop {
        let n = stdout.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        printed.extend_from_slice(&buffer[..n]);
        if first.is_none() && printed.windows(6).any(|w| w == b"first\n") {
            first = Some(started.elapsed());
        }
    }
    let end = started.elapsed();
    let status = child.wait().unwrap();
    assert!(status.success());
    // invoke prints what the function streamed, the prelude included, as Lambda returns it.
    assert!(
        printed.ends_with(b"\0\0\0\0\0\0\0\0first\nlast\n\n"),
        "{printed:?}"
    );
    let first = first.expect("`first` was printed");
    assert!(
        end - first >= Duration::from_millis(1000),
        "{first:?} {end:?}"
    );

    let output = support::tool()
        .arg("invoke")
        .arg(stream_zip())
        .args(["-d", r#"{"rawPath":"/fail"}"#])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = support::stdout(&output);
    assert!(out.contains("partial\n\n"), "{out}");
    assert!(
        out.ends_with(
            "{\"errorType\":\"StreamFailed\",\"errorMessage\":\"stream was asked to fail\"}\n"
        ),
        "{out}"
    );
    assert!(
        support::stderr(&output)
            .contains("error: 1 of 1 invocations failed; the first with StreamFailed"),
        "{}",
        support::stderr(&output)
    );
}

/// Lambda's limit for a streamed response: 200 MiB since July 2025.
const STREAM_LIMIT: usize = 200 * 1024 * 1024;

/// Reads a whole response from `addr` into memory: its bytes and whether the chunked body ended
/// cleanly.
fn read_all(addr: SocketAddr, target: &str) -> (Vec<u8>, bool) {
    read_paced(addr, target, None)
}

/// The whole answer to a GET, read as it comes or, with `slow_after`, a slow client's way past
/// that many bytes: 64 KiB at a time with a pause between reads, so that the server's buffers
/// are full when it cuts.
fn read_paced(addr: SocketAddr, target: &str, slow_after: Option<usize>) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    match slow_after {
        None => {
            let _ = stream.read_to_end(&mut raw);
        }
        Some(slow_after) => {
            let mut piece = vec![0; 256 * 1024];
            loop {
                let slow = raw.len() > slow_after;
                let want = if slow { 64 * 1024 } else { piece.len() };
                let Ok(read @ 1..) = stream.read(&mut piece[..want]) else {
                    break;
                };
                raw.extend_from_slice(&piece[..read]);
                if slow {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    let clean = raw.ends_with(b"0\r\n\r\n");
    (raw, clean)
}

/// The body bytes of a chunked response that arrived, whether or not it ended.
fn chunked_bytes(raw: &[u8]) -> usize {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let mut rest = &raw[end + 4..];
    let mut total = 0;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
        else {
            break;
        };
        rest = &rest[line_end + 2..];
        total += size.min(rest.len());
        if size == 0 || rest.len() < size + 2 {
            break;
        }
        rest = &rest[size + 2..];
    }
    total
}

#[test]
fn a_30_mb_stream_arrives_whole_and_one_past_200_mb_is_cut_at_lambdas_limit() {
    // 200 MB take seconds here (Lambda's own pace would be 100 s), over the 3 s default.
    let served = Served::start(stream_zip(), &["--timeout", "60"]);
    let size = 30 * 1024 * 1024;
    let (raw, clean) = read_all(served.addr, &format!("/big?bytes={size}"));
    assert!(clean, "{}", served.stderr());
    let answer = Answer::parse(&raw).unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body.len(), size);
    assert!(answer.body.iter().all(|b| *b == b'x'));

    // One byte too many: the client gets what fit (the limit less the metadata) and a broken
    // body, the runtime's POST a 413, and the function keeps serving. A slow client gets every
    // byte that fit too (the cut came while serve's buffers were full).
    let started = Instant::now();
    let (raw, clean) = read_paced(
        served.addr,
        &format!("/big?bytes={}", STREAM_LIMIT + 1),
        Some(STREAM_LIMIT - 32 * 1024 * 1024),
    );
    let took = started.elapsed();
    assert!(!clean, "the body ended cleanly");
    assert!(raw.starts_with(b"HTTP/1.1 201"));
    let body = chunked_bytes(&raw);
    assert!(
        (STREAM_LIMIT - 1024..STREAM_LIMIT).contains(&body),
        "{body} bytes"
    );
    let failed = "the invocation failed with Function.ResponseSizeTooLarge: Response payload size \
                  exceeded maximum allowed payload size (209715200 bytes) for a streamed response.";
    let err = served.stderr_with(failed);
    assert!(err.contains(failed), "{err}");
    let (_, clean) = read_all(served.addr, "/big?bytes=10");
    assert!(clean);
    let err = served.stderr_with("GET /big?bytes=10 -> 201");
    assert_eq!(err.matches("Init Duration").count(), 1, "{err}");
    eprintln!("streaming just over 200 MB through serve took {took:?}");
}

#[test]
fn invoke_prints_30_mb_whole_and_cuts_a_stream_at_200_mb() {
    let size = 30 * 1024 * 1024;
    let event = format!(r#"{{"rawPath":"/big","rawQueryString":"bytes={size}"}}"#);
    let output = support::tool()
        .arg("invoke")
        .arg(stream_zip())
        .args(["-d", &event])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", support::stderr(&output));
    let body = output
        .stdout
        .windows(8)
        .position(|w| w == [0; 8])
        .map(|at| &output.stdout[at + 8..])
        .unwrap();
    assert_eq!(body.len(), size + 1, "the bytes and a newline");

    let started = Instant::now();
    let event = format!(
        r#"{{"rawPath":"/big","rawQueryString":"bytes={}"}}"#,
        STREAM_LIMIT + 1
    );
    let output = support::tool()
        .arg("invoke")
        .arg(stream_zip())
        .args(["-d", &event, "--timeout", "60"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    // Exactly the limit (the metadata included: invoke prints the stream as it is), then the
    // error payload on its own line.
    let error = br#"{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (209715200 bytes) for a streamed response."}"#;
    let out = &output.stdout;
    assert!(
        out.ends_with(&[&b"\n"[..], error, b"\n"].concat()),
        "{:?}",
        &out[out.len().saturating_sub(300)..]
    );
    assert_eq!(out.len(), STREAM_LIMIT + 1 + error.len() + 1);
    let err = support::stderr(&output);
    assert!(
        err.contains("help: Lambda cuts a streamed response at its limit"),
        "{err}"
    );
    eprintln!("streaming just over 200 MB through invoke took {took:?}");
}

#[test]
fn a_rest_api_streams_with_its_metadatas_headers_and_multi_value_headers() {
    let served = Served::start(
        stream_zip(),
        &["--event-format", "rest-api", "-e", "STREAM_PAUSE_MS=1500"],
    );
    let text = assert_the_stream_arrives_as_it_is_sent(&served);
    assert!(text.contains("x-multi: a\r\nx-multi: b\r\n"), "{text}");
}

/// Whether this machine has an IPv6 loopback (`::1`), which `serve` then listens on too.
fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Lambda's Invoke API, as `aws lambda invoke --endpoint-url`, the SDKs and `cargo lambda invoke`
/// send it, on both of localhost's addresses.
#[test]
fn serve_answers_lambdas_invoke_api_on_127_0_0_1_and_ipv6_localhost() {
    let served = Served::start(echo_zip(), &["--function-name", "orders"]);
    let invocations = "/2015-03-31/functions/orders/invocations";
    let ok = served.request(
        "POST",
        invocations,
        &[("X-Amz-Log-Type", "Tail")],
        br#"{"name":"Ferris"}"#,
    );
    assert_eq!(ok.status, 200, "{ok:?}\n{}", served.stderr());
    assert_eq!(ok.json()["message"], "hello, Ferris");
    assert_eq!(ok.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(ok.header("x-amz-function-error"), None);
    use base64::Engine as _;
    let log = base64::engine::general_purpose::STANDARD
        .decode(ok.header("x-amz-log-result").expect("the log's tail"))
        .unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.starts_with("START RequestId: "), "{log}");
    assert!(log.contains("\nREPORT RequestId: "), "{log}");

    let failed = served.request("POST", invocations, &[], br#"{"fail":true}"#);
    assert_eq!(failed.status, 200);
    assert_eq!(failed.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(failed.json()["errorType"], "EchoError");

    let missing = served.request(
        "POST",
        "/2015-03-31/functions/other/invocations",
        &[],
        b"{}",
    );
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    let dry = served.request(
        "POST",
        invocations,
        &[("X-Amz-Invocation-Type", "DryRun")],
        b"{}",
    );
    assert_eq!(dry.status, 204);
    let event = served.request(
        "POST",
        invocations,
        &[("X-Amz-Invocation-Type", "Event")],
        b"{}",
    );
    assert_eq!(event.status, 202);

    // `cargo lambda invoke` dials [::1] and names the function `_` unless told.
    if has_ipv6_loopback() {
        let v6 = SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), served.addr.port());
        let answer = served.request_at(
            v6,
            "POST",
            "/2015-03-31/functions/_/invocations",
            &[],
            br#"{"name":"v6"}"#,
        );
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["message"], "hello, v6");
        // The HTTP front too.
        assert_eq!(
            served.request_at(v6, "GET", "/?name=x", &[], b"").status,
            200
        );
    } else {
        eprintln!("skipped the ::1 requests: this machine has no IPv6 loopback");
    }
    let err = served.stderr_with("GET /?name=x -> ");
    assert!(
        err.contains(&format!("POST {invocations} -> 200 (")) && err.contains(" ms, queued "),
        "{err}"
    );
    // One environment for all: the Event invocation ran too.
    assert_eq!(
        err.matches("START RequestId").count(),
        if has_ipv6_loopback() { 5 } else { 3 },
        "{err}"
    );
}

/// The Invoke API's client context (`X-Amz-Client-Context`, base64, as the SDKs and `aws
/// lambda invoke --client-context` send it) and the Cognito identity `cargo lambda invoke`
/// sends reach lambda_runtime's context; a context that is not base64 JSON is refused as Lambda
/// refuses it, and the function keeps serving.
#[test]
fn the_invoke_apis_client_context_and_identity_reach_the_function() {
    use base64::Engine as _;
    let served = Served::start(
        crate::invoke::misbehave_zip(),
        &["-e", "GREETING=hi", "--function-name", "orders"],
    );
    let invocations = "/2015-03-31/functions/orders/invocations";
    let context = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"tier":"gold"}}"#);
    let answer = served.request(
        "POST",
        invocations,
        &[
            ("X-Amz-Client-Context", &context),
            (
                "lambda-runtime-cognito-identity",
                r#"{"identityId":"eu-west-1:abc","identityPoolId":"eu-west-1:pool"}"#,
            ),
        ],
        br#"{"action":"context"}"#,
    );
    assert_eq!(answer.status, 200, "{answer:?}\n{}", served.stderr());
    let seen = answer.json();
    assert_eq!(seen["client_context"]["custom"]["tier"], "gold", "{seen}");
    assert_eq!(seen["identity"]["identityId"], "eu-west-1:abc", "{seen}");
    assert_eq!(
        seen["identity"]["identityPoolId"], "eu-west-1:pool",
        "{seen}"
    );

    let refused = served.request(
        "POST",
        invocations,
        &[("X-Amz-Client-Context", "not base64!")],
        br#"{"action":"context"}"#,
    );
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.header("x-amzn-errortype"),
        Some("InvalidRequestContentException")
    );
    // The next invocation, without a context, has none: it was the invoke's, not the process's.
    let plain = served.request("POST", invocations, &[], br#"{"action":"context"}"#);
    assert_eq!(plain.json()["client_context"], serde_json::Value::Null);
}

/// The AWS SDK (boto3, a client this project did not write) invokes `serve` as it invokes
/// Lambda: its parser reads our answers, payloads, `FunctionError`, `LogResult` and refusals
/// (`X-Amzn-ErrorType`), and its `ClientContext` reaches the function.
#[test]
fn the_aws_sdk_invokes_serve_as_it_invokes_lambda() {
    if !has_boto3() {
        return;
    }
    let served = Served::start(
        crate::invoke::misbehave_zip(),
        &["-e", "GREETING=hi", "--function-name", "orders"],
    );
    let script = r#"
context = base64.b64encode(json.dumps({"custom": {"tier": "gold"}}).encode()).decode()
ok = client.invoke(FunctionName="orders", Payload=b'{"action":"context"}', LogType="Tail",
    ClientContext=context)
failed = client.invoke(FunctionName="arn:aws:lambda:eu-west-1:123456789012:function:orders",
    Payload=b'{"action":"fail"}')
try:
    client.invoke(FunctionName="other", Payload=b"{}")
    missing = None
except client.exceptions.ResourceNotFoundException as e:
    missing = e.response["Error"]["Message"]
event = client.invoke(FunctionName="orders", InvocationType="Event", Payload=b"{}")
print(json.dumps({
    "status": ok["StatusCode"], "version": ok["ExecutedVersion"],
    "error": ok.get("FunctionError"), "payload": json.loads(ok["Payload"].read()),
    "log": base64.b64decode(ok["LogResult"]).decode(),
    "failed_error": failed.get("FunctionError"),
    "failed_payload": json.loads(failed["Payload"].read()),
    "missing": missing, "event_status": event["StatusCode"],
}))
"#;
    let seen = with_boto3(&served, script);
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(seen["version"], "$LATEST");
    assert_eq!(seen["error"], serde_json::Value::Null);
    assert_eq!(
        seen["payload"]["client_context"]["custom"]["tier"], "gold",
        "{seen}"
    );
    let log = seen["log"].as_str().unwrap();
    assert!(
        log.starts_with("START RequestId: ") && log.contains("\nREPORT RequestId: "),
        "{log}"
    );
    assert_eq!(seen["failed_error"], "Unhandled");
    assert_eq!(
        seen["failed_payload"]["errorType"], "MisbehaveError",
        "{seen}"
    );
    let missing = seen["missing"].as_str().unwrap_or_default();
    assert!(
        missing.starts_with("Function not found: arn:aws:lambda:"),
        "{seen}"
    );
    assert_eq!(seen["event_status"], 202);
}

/// Whether python3 has boto3; when not, the test skips (a failure in CI, where .ci/run
/// installs it).
fn has_boto3() -> bool {
    let has = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        support::skip_or_fail("boto3 is not installed (`python3 -m pip install boto3`)");
    }
    has
}

/// Runs `script` with `client`, boto3's Lambda client for `served`, and reads the JSON it
/// prints.
fn with_boto3(served: &Served, script: &str) -> serde_json::Value {
    let prelude = r#"
import base64, json, sys, time
import boto3
from botocore.config import Config
client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="eu-west-1",
    aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
    config=Config(retries={"max_attempts": 0}))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", &format!("{prelude}{script}")])
        .arg(format!("http://{}", served.addr))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        served.stderr()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// InvokeWithResponseStream through the AWS SDK: the function's stream arrives as `PayloadChunk`
/// events while it runs (its HTTP prelude included, as Lambda passes it on), `InvokeComplete`
/// ends it, with the error of a stream that failed; a buffered function's answer is one chunk.
#[test]
fn the_aws_sdk_streams_a_response_through_invoke_with_response_stream() {
    if !has_boto3() {
        return;
    }
    let served = Served::start(stream_zip(), &["-e", "STREAM_PAUSE_MS=1500"]);
    let script = r#"
def stream(event, **extra):
    started = time.time()
    answer = client.invoke_with_response_stream(FunctionName="_", Payload=event, **extra)
    chunks, first, complete, ended = [], None, None, None
    for message in answer["EventStream"]:
        if "PayloadChunk" in message:
            chunks.append(message["PayloadChunk"]["Payload"])
            first = first or time.time() - started
        if "InvokeComplete" in message:
            complete, ended = message["InvokeComplete"], time.time() - started
    return {"status": answer["StatusCode"], "type": answer["ResponseStreamContentType"],
        "version": answer["ExecutedVersion"], "body": b"".join(chunks).decode("latin-1"),
        "first": first, "ended": ended, "complete": complete}
ok = stream(b'{"rawPath":"/"}', LogType="Tail")
ok["log"] = base64.b64decode(ok["complete"].get("LogResult", "")).decode()
failed = stream(b'{"rawPath":"/fail"}')
try:
    client.invoke_with_response_stream(FunctionName="_", Payload=b"{}", InvocationType="Event")
    refused = None
except client.exceptions.ClientError as e:
    refused = e.response["Error"]["Code"]
print(json.dumps({"ok": ok, "failed": failed, "refused": refused}))
"#;
    let seen = with_boto3(&served, script);
    let ok = &seen["ok"];
    assert_eq!(ok["status"], 200, "{seen}");
    assert_eq!(ok["type"], "application/vnd.amazon.eventstream");
    assert_eq!(ok["version"], "$LATEST");
    let body = ok["body"].as_str().unwrap();
    assert!(body.contains("\0\0\0\0\0\0\0\0first\nlast\n"), "{body:?}");
    let (first, ended) = (ok["first"].as_f64().unwrap(), ok["ended"].as_f64().unwrap());
    assert!(
        ended - first >= 1.0,
        "first chunk at {first} s, the end at {ended} s"
    );
    assert_eq!(ok["complete"].get("ErrorCode"), None, "{seen}");
    assert!(
        ok["log"].as_str().unwrap().starts_with("START RequestId: "),
        "{seen}"
    );
    let failed = &seen["failed"];
    assert!(
        failed["body"].as_str().unwrap().ends_with("partial\n"),
        "{seen}"
    );
    assert_eq!(failed["complete"]["ErrorCode"], "StreamFailed", "{seen}");
    assert_eq!(
        failed["complete"]["ErrorDetails"],
        "stream was asked to fail"
    );
    assert_eq!(seen["refused"], "ValidationException");

    // A function that does not stream: its whole answer in one chunk.
    drop(served);
    let served = Served::start(crate::invoke::echo_zip(), &[]);
    let script = r#"
answer = client.invoke_with_response_stream(FunctionName="_", Payload=b'{"name":"x"}')
events = [(list(m)[0], m.get("PayloadChunk", {}).get("Payload", b"").decode()) for m in answer["EventStream"]]
print(json.dumps(events))
"#;
    let events = with_boto3(&served, script);
    assert_eq!(
        events,
        serde_json::json!([
            ["PayloadChunk", r#"{"message":"hello, x"}"#],
            ["InvokeComplete", ""]
        ])
    );
}

/// Ctrl-C ends `serve`'s execution environment as Lambda ends one: a graceful-shutdown hook runs.
#[test]
fn stopping_serve_runs_the_graceful_shutdown_hook() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hook-lines");
    let env = format!("GRACEFUL_HOOK_FILE={}", file.display());
    let served = Served::start(crate::invoke::graceful_zip(), &["-e", &env]);
    let answer = served.request("POST", "/2015-03-31/functions/_/invocations", &[], b"[1]");
    assert_eq!(answer.body, b"[1]", "{}", served.stderr());
    drop(served);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        "shutdown hook ran\n"
    );
}
