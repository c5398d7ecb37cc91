//! Docker engines that misbehave, on a unix socket, for the `--docker` error tests: one that
//! answers every connection the same wrong way ([`FakeEngine`]), and a proxy to the real engine
//! that stops answering, as a crashed engine does, once a given request went through
//! ([`DyingEngine`]).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a [`FakeEngine`] treats each connection.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Accepts, then closes without reading or answering.
    Closes,
    /// Answers every request with HTTP 500.
    Fails,
    /// Answers with bytes that are not HTTP.
    Garbage,
    /// Reads the request and never answers (a hung engine).
    Silent,
}

/// A socket in a directory of its own that anyone may use (the tool may run as another user).
fn open_socket() -> (tempfile::TempDir, PathBuf, UnixListener) {
    let dir = tempfile::Builder::new()
        .prefix("fake-engine-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    (dir, path, listener)
}

pub struct FakeEngine {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl FakeEngine {
    pub fn start(how: Misbehaviour) -> FakeEngine {
        let (dir, path, listener) = open_socket();
        std::thread::spawn(move || {
            // Held connections of a silent engine stay open until the test process ends.
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                match how {
                    Misbehaviour::Closes => drop(stream),
                    Misbehaviour::Fails => {
                        read_request(&mut stream);
                        let body = r#"{"message":"fake engine: internal failure"}"#;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: \
                             application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Misbehaviour::Garbage => {
                        read_request(&mut stream);
                        let _ = stream.write_all(b"\x00\x01SSH-2.0-not-docker\r\n\xff\xfe\r\n\r\n");
                    }
                    Misbehaviour::Silent => {
                        read_request(&mut stream);
                        held.push(stream);
                    }
                }
            }
        });
        FakeEngine { _dir: dir, path }
    }

    /// The `DOCKER_HOST` value that points at it.
    pub fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

fn read_request(stream: &mut UnixStream) {
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf);
}

/// A proxy to the real engine that, once a request containing `trigger` went through (and
/// `delay` passed), closes every connection and removes its socket: to the tool, the engine
/// stopped in the middle of what it was doing. The real engine carries on, so what the request
/// started (a container, an image build) is still there for the test to find and clean up.
pub struct DyingEngine {
    _dir: tempfile::TempDir,
    path: PathBuf,
    died: Arc<AtomicBool>,
}

impl DyingEngine {
    pub fn start(real_socket: &Path, trigger: &'static [u8], delay: Duration) -> DyingEngine {
        let (dir, path, listener) = open_socket();
        let died = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let (real, socket, flag) = (real_socket.to_path_buf(), path.clone(), Arc::clone(&died));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(upstream) = UnixStream::connect(&real) else {
                    continue;
                };
                {
                    let mut open = open.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(upstream.try_clone().unwrap());
                }
                let die = {
                    let (open, flag, socket) =
                        (Arc::clone(&open), Arc::clone(&flag), socket.clone());
                    move || {
                        std::thread::sleep(delay);
                        flag.store(true, Ordering::SeqCst);
                        let _ = std::fs::remove_file(&socket);
                        for stream in open.lock().unwrap().drain(..) {
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                        }
                        // Wakes the accept loop, which then sees the flag.
                        let _ = UnixStream::connect(&socket);
                    }
                };
                pump(
                    client.try_clone().unwrap(),
                    upstream.try_clone().unwrap(),
                    Some((trigger, Box::new(die))),
                );
                pump(upstream, client, None);
            }
        });
        DyingEngine {
            _dir: dir,
            path,
            died,
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Whether the trigger came and the proxy stopped.
    pub fn died(&self) -> bool {
        self.died.load(Ordering::SeqCst)
    }
}

type Die = Box<dyn FnOnce() + Send>;

/// Copies `from` to `to` on a thread; the first chunk holding the trigger, once forwarded, runs
/// `die` on its own thread.
fn pump(mut from: UnixStream, mut to: UnixStream, mut watch: Option<(&'static [u8], Die)>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            let seen = watch
                .as_ref()
                .is_some_and(|(trigger, _)| buf[..n].windows(trigger.len()).any(|w| w == *trigger));
            if seen && let Some((_, die)) = watch.take() {
                std::thread::spawn(die);
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
