//! The HTTP front of `serve`: hyper (HTTP/1.1) on a current-thread tokio runtime in its own
//! thread. Each request's body is read (up to Lambda's 6 MB) and handed over a channel to the
//! serving loop, which runs the function and answers through the request's [`Reply`].

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use crate::invoke::error::InvokeError;
use crate::invoke::http::{HttpRequest, HttpResponse, too_large_response};
use crate::lambda::MAX_EVENT_BYTES;

/// What the front hands to the serving loop.
pub enum Arrival {
    /// A request for the function, to be answered through `reply`; `arrived` is when its
    /// body had been read, so that the time it waited for its turn can be told.
    Request {
        request: HttpRequest,
        reply: Reply,
        arrived: Instant,
    },
    /// A request the front refused itself, for the log.
    Refused {
        method: String,
        path: String,
        reason: String,
    },
}

/// A response body: whole, or chunks as the function streams them.
pub enum FrontBody {
    Full(Option<Bytes>),
    /// An `Err` aborts the connection: the client sees the body cut short, not a clean end.
    Stream {
        chunks: tokio_mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>,
        /// The error, held back until hyper has written every chunk before it, and the count
        /// of the connection's flushes when it came.
        failing: Option<(std::io::Error, u64)>,
        flushes: Arc<Flushes>,
    },
}

/// The flushes of one connection. hyper flushes its socket only once its own buffer is
/// written out, and drops that buffer when a body fails: a failing stream waits for a flush
/// after its last chunk, so that the client gets every byte before the cut (under load, the
/// buffer held a third of a megabyte when the connection was cut at once).
#[derive(Default)]
pub struct Flushes {
    count: AtomicU64,
    waiting: AtomicWaker,
}

/// The connection's socket, counting its flushes.
struct Watched {
    stream: tokio::net::TcpStream,
    flushes: Arc<Flushes>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.stream).poll_flush(cx);
        if flushed.is_ready() {
            this.flushes.count.fetch_add(1, Ordering::AcqRel);
            this.flushes.waiting.wake();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl hyper::body::Body for FrontBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            FrontBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            FrontBody::Stream {
                chunks,
                failing,
                flushes,
            } => {
                if let Some((_, since)) = failing {
                    flushes.waiting.register(cx.waker());
                    if flushes.count.load(Ordering::Acquire) == *since {
                        return Poll::Pending;
                    }
                    return Poll::Ready(failing.take().map(|(error, _)| Err(error)));
                }
                match chunks.poll_recv(cx) {
                    Poll::Ready(Some(Err(error))) => {
                        // hyper drops what it has not written yet when a body fails: wait
                        // for its next flush, which writes out the chunks before the cut.
                        flushes.waiting.register(cx.waker());
                        *failing = Some((error, flushes.count.load(Ordering::Acquire)));
                        Poll::Pending
                    }
                    other => other.map(|c| c.map(|chunk| chunk.map(Frame::data))),
                }
            }
        }
    }

    /// A whole body's length, so that hyper sends `Content-Length` rather than chunks.
    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            FrontBody::Full(bytes) => {
                hyper::body::SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            FrontBody::Stream { .. } => hyper::body::SizeHint::default(),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, FrontBody::Full(None))
    }
}

fn build(response: HttpResponse) -> Response<FrontBody> {
    let body = FrontBody::Full(Some(Bytes::from(response.body)));
    build_with(response.status, &response.headers, body)
}

fn build_with(status: u16, headers: &[(String, String)], body: FrontBody) -> Response<FrontBody> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(body).unwrap_or_else(|e| {
        let mut bad = Response::new(FrontBody::Full(Some(Bytes::from(format!(
            "the function's response is not valid HTTP: {e}"
        )))));
        *bad.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        bad
    })
}

/// The way back to one waiting HTTP client.
pub struct Reply(oneshot::Sender<Response<FrontBody>>, Arc<Flushes>);

impl Reply {
    /// Answers with a whole response. A client that went away is not an error.
    pub fn send(self, response: HttpResponse) {
        let _ = self.0.send(build(response));
    }

    /// Starts a streamed response: each chunk sent goes out as it comes; dropping the sender
    /// ends the body, sending an `Err` cuts it short.
    pub fn stream(
        self,
        status: u16,
        headers: &[(String, String)],
    ) -> tokio_mpsc::UnboundedSender<Result<Bytes, std::io::Error>> {
        let (chunks, receiver) = tokio_mpsc::unbounded_channel();
        let _ = self.0.send(build_with(
            status,
            headers,
            FrontBody::Stream {
                chunks: receiver,
                failing: None,
                flushes: self.1,
            },
        ));
        chunks
    }
}

/// The listening front. Dropping it stops the server thread and closes its connections.
pub struct Front {
    /// Where it listens (on localhost, the IPv4 address).
    pub addr: SocketAddr,
    /// On localhost, the same port on `::1` too, when the machine has IPv6.
    pub also: Option<SocketAddr>,
    arrivals: Receiver<Arrival>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// How often a free port (`--port 0`) taken on 127.0.0.1 is tried again when another program
/// holds the same one on `::1`.
const FREE_PORT_TRIES: usize = 8;

impl Front {
    /// Listens at once, so that a port in use is an error before anything starts: on `bind`,
    /// or without it on localhost, both 127.0.0.1 and `::1` (what `localhost` resolves to;
    /// `cargo lambda invoke` dials `[::1]`), never on every interface.
    pub fn bind(bind: Option<IpAddr>, port: u16) -> Result<Front, InvokeError> {
        let listeners = match bind {
            Some(ip) => vec![listen(SocketAddr::new(ip, port))?],
            None => listen_on_localhost(port)?,
        };
        let addr = listeners[0]
            .local_addr()
            .map_err(|source| InvokeError::Listen {
                addr: SocketAddr::new(bind.unwrap_or(Ipv4Addr::LOCALHOST.into()), port),
                source,
            })?;
        let also = listeners.get(1).and_then(|l| l.local_addr().ok());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|source| InvokeError::Listen { addr, source })?;
        let (sender, arrivals) = mpsc::channel();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("http-front".into())
            .spawn(move || {
                for listener in listeners {
                    runtime.spawn(accept(listener, sender.clone()));
                }
                let _ = runtime.block_on(stopped);
                // Dropping the runtime here ends every connection's task.
            })
            .map_err(|source| InvokeError::Listen { addr, source })?;
        Ok(Front {
            addr,
            also,
            arrivals,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The next arrival, waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> Option<Arrival> {
        self.arrivals.recv_timeout(wait).ok()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A non-blocking listener on `addr`.
fn listen(addr: SocketAddr) -> Result<TcpListener, InvokeError> {
    let listener =
        TcpListener::bind(addr).map_err(|source| InvokeError::Listen { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| InvokeError::Listen { addr, source })?;
    Ok(listener)
}

/// Listeners on 127.0.0.1 and `::1` at one port; 127.0.0.1 alone on a machine without IPv6.
fn listen_on_localhost(port: u16) -> Result<Vec<TcpListener>, InvokeError> {
    for _ in 0..FREE_PORT_TRIES {
        let v4 = listen(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))?;
        let taken = v4
            .local_addr()
            .map(|a| a.port())
            .map_err(|source| InvokeError::Listen {
                addr: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                source,
            })?;
        match listen(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), taken)) {
            Ok(v6) => return Ok(vec![v4, v6]),
            Err(InvokeError::Listen { source, .. }) if !has_ipv6(&source) => return Ok(vec![v4]),
            // The free port on 127.0.0.1 is another program's on `::1`: take another.
            Err(InvokeError::Listen { source, .. })
                if port == 0 && source.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(error) => return Err(error),
        }
    }
    Err(InvokeError::Listen {
        addr: SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        source: std::io::ErrorKind::AddrInUse.into(),
    })
}

/// Whether a failure to listen on `::1` still means the machine has IPv6: without it (no IPv6
/// loopback, or no IPv6 at all) the kernel answers EADDRNOTAVAIL or EAFNOSUPPORT.
fn has_ipv6(error: &std::io::Error) -> bool {
    !matches!(
        error.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
    )
}

async fn accept(listener: TcpListener, sender: Sender<Arrival>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let sender = sender.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let flushes = Arc::new(Flushes::default());
            let stream = Watched {
                stream,
                flushes: flushes.clone(),
            };
            let service = hyper::service::service_fn(move |request| {
                let sender = sender.clone();
                let flushes = flushes.clone();
                async move { Ok::<_, Infallible>(handle(request, peer, sender, flushes).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    sender: Sender<Arrival>,
    flushes: Arc<Flushes>,
) -> Response<FrontBody> {
    let (parts, body) = request.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let body = match http_body_util::Limited::new(body, MAX_EVENT_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            let too_large = error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let reason = if too_large {
                format!("its body is over Lambda's {MAX_EVENT_BYTES} bytes")
            } else {
                format!("its body could not be read: {error}")
            };
            let _ = sender.send(Arrival::Refused {
                method,
                path,
                reason,
            });
            return build(if too_large {
                too_large_response(MAX_EVENT_BYTES)
            } else {
                HttpResponse {
                    status: 400,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            });
        }
    };
    let request = HttpRequest {
        method,
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        peer,
    };
    let (reply, answer) = oneshot::channel();
    if sender
        .send(Arrival::Request {
            request,
            reply: Reply(reply, flushes),
            arrived: Instant::now(),
        })
        .is_err()
    {
        return build(HttpResponse {
            status: 503,
            headers: Vec::new(),
            body: b"the function is not being served\n".to_vec(),
        });
    }
    answer.await.unwrap_or_else(|_| {
        build(HttpResponse {
            status: 503,
            headers: Vec::new(),
            body: b"the function stopped before answering\n".to_vec(),
        })
    })
}
