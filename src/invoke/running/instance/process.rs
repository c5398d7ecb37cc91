//! The runtime's and the extensions' processes: their output read without blocking and split
//! into lines. On Unix they are started in their own process group, reaped with `waitpid`, their
//! peak memory read from `/proc`. On Windows each is a container's relay (container mode is the
//! only way to run there, see `build::docker::exec`): its output is read by a thread each, and
//! what Unix says with a signal (SIGTERM, a sync) it is told as a line on its stdin.

use std::io;
use std::process::Child;

use crate::build::docker::exec::SYNC_MARK;
use crate::invoke::error::InvokeError;
use crate::invoke::failure::ExitStatus;
use crate::invoke::record::Log;
use crate::invoke::running::wake::Wake;

#[cfg(unix)]
pub use unix::{Pipe, is_executable};
#[cfg(not(unix))]
pub use with_threads::{Pipe, is_executable};

/// A pipe from the function, read without blocking and split into lines.
struct OutputPipe {
    pipe: Option<Pipe>,
    partial: Vec<u8>,
    /// A container's relay sent its [`SYNC_MARK`] (not the function's output) since asked.
    synced: bool,
}

impl OutputPipe {
    fn new(pipe: Option<Pipe>) -> OutputPipe {
        OutputPipe {
            pipe,
            partial: Vec::new(),
            synced: false,
        }
    }

    /// Forwards each complete line; at the end (`eof`), the unterminated rest too.
    fn forward(&mut self, log: &dyn Log, eof: bool) {
        let mut buffer = [0u8; 8192];
        while let Some(pipe) = self.pipe.as_mut() {
            match pipe.read(&mut buffer) {
                Ok(0) => {
                    self.pipe = None;
                }
                Ok(n) => {
                    self.partial.extend_from_slice(&buffer[..n]);
                    while let Some(at) = self.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=at).collect();
                        match &line[..line.len() - 1] {
                            SYNC_MARK => self.synced = true,
                            line => log.output(line),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.pipe = None,
            }
        }
        if (eof || self.pipe.is_none()) && !self.partial.is_empty() {
            log.output(&std::mem::take(&mut self.partial));
        }
    }
}

pub struct Process {
    /// Kept for its pipes (and on Windows, to be waited on); on Unix never waited on through
    /// `std`, which would race with `waitpid`.
    child: Child,
    stdout: OutputPipe,
    stderr: OutputPipe,
    /// Set once reaped.
    exit: Option<ExitStatus>,
    /// The highest VmHWM read while it ran (KiB). Not wait4's ru_maxrss: that counts the
    /// memory of this tool, which the child shared between fork and exec.
    peak_kib: Option<u64>,
}

impl Process {
    /// Takes over a started child; its output wakes `wake` where `poll` cannot watch it.
    pub fn new(mut child: Child, wake: &Wake) -> Result<Process, InvokeError> {
        let pipes = Pipe::new(child.stdout.take(), wake)
            .and_then(|out| Ok((out, Pipe::new(child.stderr.take(), wake)?)));
        let (stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow::anyhow!("cannot read the function's output: {e}").into());
            }
        };
        Ok(Process {
            child,
            stdout: OutputPipe::new(stdout),
            stderr: OutputPipe::new(stderr),
            exit: None,
            peak_kib: None,
        })
    }

    /// How it ended, once reaped.
    pub fn exit(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// Asks a container's relay to mark where its output is (see [`SYNC_MARK`]).
    pub fn request_sync(&mut self) {
        if self.exit.is_none() {
            self.stdout.synced = false;
            self.stderr.synced = false;
            self.tell(Tell::Sync);
        }
    }

    /// Whether all it wrote before [`Process::request_sync`] has been read: its marks came, or
    /// its output ended.
    pub fn synced(&self) -> bool {
        let done = |synced: bool, open: bool| synced || !open;
        self.exit.is_some()
            || (done(self.stdout.synced, self.stdout.pipe.is_some())
                && done(self.stderr.synced, self.stderr.pipe.is_some()))
    }

    /// SIGTERM, as Lambda's shutdown phase sends the runtime, to a process still running.
    pub fn terminate(&mut self) {
        if self.exit.is_none() {
            self.tell(Tell::Terminate);
        }
    }

    /// The fds `poll` watches for its output.
    #[cfg(unix)]
    pub fn output_fds(&self) -> Vec<libc::c_int> {
        [&self.stdout, &self.stderr]
            .into_iter()
            .filter_map(|out| out.pipe.as_ref().map(Pipe::fd))
            .collect()
    }

    pub fn forward_output(&mut self, log: &dyn Log, eof: bool) {
        self.stdout.forward(log, eof);
        self.stderr.forward(log, eof);
    }

    /// Whether the process has ended; reaps it without blocking, keeping its rusage.
    pub fn reap(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        self.wait(false)
    }

    /// Kills it, with what it started (its process group; in a container, the relay's end
    /// kills the command's), then reaps.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            self.kill_all();
            self.wait(true);
        }
    }

    pub fn peak_memory_kib(&mut self) -> Option<u64> {
        self.sample_memory();
        self.peak_kib
    }
}

/// What the tool tells a running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tell {
    Terminate,
    Sync,
}

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::io::{self, Read};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::path::Path;

    use super::{Process, Tell};
    use crate::build::docker::exec::SYNC_SIGNAL;
    use crate::invoke::failure::ExitStatus;
    use crate::invoke::running::wake::{Wake, set_nonblocking};

    /// Whether `exec` would run the file: a regular file with an execute bit.
    pub fn is_executable(path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    /// A child's output pipe, non-blocking: `poll` says when to read it.
    pub struct Pipe(File);

    impl Pipe {
        pub(super) fn new(pipe: Option<impl Into<OwnedFd>>, _: &Wake) -> io::Result<Option<Pipe>> {
            let Some(pipe) = pipe.map(Into::into) else {
                return Ok(None);
            };
            set_nonblocking(pipe.as_raw_fd())?;
            Ok(Some(Pipe(File::from(pipe))))
        }

        pub(super) fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            self.0.read(buffer)
        }

        pub(super) fn fd(&self) -> libc::c_int {
            self.0.as_raw_fd()
        }
    }

    impl Process {
        fn pid(&self) -> libc::pid_t {
            self.child.id() as libc::pid_t
        }

        pub(super) fn tell(&self, what: Tell) {
            let signal = match what {
                Tell::Terminate => libc::SIGTERM,
                Tell::Sync => SYNC_SIGNAL,
            };
            // SAFETY: our own unreaped child: its pid cannot have been reused.
            unsafe {
                libc::kill(self.pid(), signal);
            }
        }

        /// SIGKILL to the whole process group.
        pub(super) fn kill_all(&self) {
            // SAFETY: the group was created for this unreaped child (process_group(0)), so its
            // id cannot have been reused.
            unsafe {
                libc::kill(-self.pid(), libc::SIGKILL);
            }
        }

        pub(super) fn wait(&mut self, block: bool) -> bool {
            // Last look before the process (and its /proc entry) is gone.
            self.sample_memory();
            let options = if block { 0 } else { libc::WNOHANG };
            let pid = self.pid();
            let mut status: libc::c_int = 0;
            loop {
                // SAFETY: a valid pointer to a local; `pid` is our own unreaped child.
                let reaped = unsafe { libc::waitpid(pid, &mut status, options) };
                if reaped == pid {
                    self.exit = Some(if libc::WIFSIGNALED(status) {
                        ExitStatus::Signal(libc::WTERMSIG(status))
                    } else {
                        ExitStatus::Code(libc::WEXITSTATUS(status))
                    });
                    return true;
                }
                if reaped < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return false;
            }
        }

        /// Reads the kernel's high-water mark of the process's resident memory.
        pub fn sample_memory(&mut self) {
            if self.exit.is_some() {
                return;
            }
            let hwm = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|line| line.strip_prefix("VmHWM:"))
                        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                });
            if let Some(hwm) = hwm {
                self.peak_kib = Some(self.peak_kib.map_or(hwm, |peak: u64| peak.max(hwm)));
            }
        }
    }
}

#[cfg(not(unix))]
mod with_threads {
    use std::io::{self, Read, Write};
    use std::path::Path;
    use std::sync::mpsc::{Receiver, TryRecvError, channel};

    use super::{Process, Tell};
    use crate::build::docker::exec::{RelayEnd, relay_line};
    use crate::invoke::failure::ExitStatus;
    use crate::invoke::running::wake::Wake;

    /// A file system without execute bits cannot tell: the container's `exec` decides, with
    /// the mode the zip gave the file (see `container::files_tar`).
    pub fn is_executable(path: &Path) -> bool {
        path.is_file()
    }

    /// A child's output pipe, read by a thread of its own, which wakes the loop for each chunk.
    pub struct Pipe {
        chunks: Receiver<Vec<u8>>,
        pending: Vec<u8>,
    }

    impl Pipe {
        pub(super) fn new(
            pipe: Option<impl Read + Send + 'static>,
            wake: &Wake,
        ) -> io::Result<Option<Pipe>> {
            let Some(mut pipe) = pipe else {
                return Ok(None);
            };
            let (sender, chunks) = channel();
            let waker = wake.waker();
            std::thread::Builder::new()
                .name("function-output".into())
                .spawn(move || {
                    let mut buffer = [0u8; 8192];
                    while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                        if sender.send(buffer[..n].to_vec()).is_err() {
                            break;
                        }
                        waker.wake();
                    }
                    drop(sender);
                    waker.wake();
                })?;
            Ok(Some(Pipe {
                chunks,
                pending: Vec::new(),
            }))
        }

        /// What the thread read so far; `WouldBlock` when nothing, 0 at the end.
        pub(super) fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            if self.pending.is_empty() {
                match self.chunks.try_recv() {
                    Ok(chunk) => self.pending = chunk,
                    Err(TryRecvError::Empty) => return Err(io::ErrorKind::WouldBlock.into()),
                    Err(TryRecvError::Disconnected) => return Ok(0),
                }
            }
            let n = buffer.len().min(self.pending.len());
            buffer[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    impl Process {
        /// A line on the relay's stdin, which it passes on to the command in the container.
        pub(super) fn tell(&mut self, what: Tell) {
            let line = match what {
                Tell::Terminate => relay_line::TERMINATE,
                Tell::Sync => relay_line::SYNC,
            };
            if let Some(stdin) = self.child.stdin.as_mut() {
                // A relay that is gone has nothing left to tell.
                let _ = stdin.write_all(line).and_then(|()| stdin.flush());
            }
        }

        /// Ends the relay: its connection to the engine closes, and the guard in the container
        /// kills the command's process group (see `build::docker::exec`).
        pub(super) fn kill_all(&mut self) {
            let _ = self.child.kill();
        }

        pub(super) fn wait(&mut self, block: bool) -> bool {
            let status = if block {
                self.child.wait().ok()
            } else {
                self.child.try_wait().ok().flatten()
            };
            let Some(status) = status else { return false };
            // The relay ends with the command's status, a signal as 128 + N (`host::die_of`).
            self.exit = Some(
                match status.code().map(i64::from).map(RelayEnd::from_status) {
                    Some(RelayEnd::Signal(signal)) => ExitStatus::Signal(signal),
                    Some(RelayEnd::Code(code)) => ExitStatus::Code(code),
                    None => ExitStatus::Code(1),
                },
            );
            true
        }

        /// The container's memory is read instead (see `container::Environment`).
        pub fn sample_memory(&mut self) {}
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl Log for Lines {
        fn start(&self, _: &str) {}
        fn output(&self, line: &[u8]) {
            self.0
                .borrow_mut()
                .push(String::from_utf8_lossy(line).into_owned());
        }
        fn warn(&self, _: &str) {}
    }

    /// A child's output comes line by line without blocking (on Windows, through the reader
    /// threads, which wake the loop), and its end is reaped with its status: this test binary,
    /// asked to run no test, says so and exits 0 on every host.
    #[test]
    fn the_output_comes_in_lines_and_the_end_is_reaped() {
        let (wake, _waker) = crate::invoke::running::wake::wake().unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "no-such-test"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut process = Process::new(child, &wake).unwrap();
        let lines = Lines::default();
        let until = Instant::now() + Duration::from_secs(60);
        while !process.reap() {
            assert!(Instant::now() < until, "the child did not end");
            process.forward_output(&lines, false);
            std::thread::sleep(Duration::from_millis(10));
        }
        let until = Instant::now() + Duration::from_secs(10);
        while process.stdout.pipe.is_some() && Instant::now() < until {
            process.forward_output(&lines, false);
            std::thread::sleep(Duration::from_millis(10));
        }
        process.forward_output(&lines, true);
        assert_eq!(process.exit(), Some(ExitStatus::Code(0)));
        let lines = lines.0.into_inner();
        assert!(lines.iter().any(|l| l == "running 0 tests"), "{lines:?}");
    }
}
