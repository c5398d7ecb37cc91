//! The runtime's and the extensions' processes, as Unix runs them: started in their own process
//! group, their output read without blocking and split into lines, reaped with `waitpid`, their
//! peak memory read from `/proc`.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout};

use crate::build::docker::exec::{SYNC_MARK, SYNC_SIGNAL};
use crate::invoke::error::InvokeError;
use crate::invoke::failure::ExitStatus;
use crate::invoke::record::Log;
use crate::invoke::running::server::set_nonblocking;

/// Whether `exec` would run the file: a regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A pipe from the function, read without blocking and split into lines.
struct OutputPipe<R> {
    pipe: Option<R>,
    partial: Vec<u8>,
    /// A container's relay sent its [`SYNC_MARK`] (not the function's output) since asked.
    synced: bool,
}

impl<R: Read + AsRawFd> OutputPipe<R> {
    fn new(pipe: Option<R>) -> io::Result<OutputPipe<R>> {
        if let Some(pipe) = &pipe {
            set_nonblocking(pipe.as_raw_fd())?;
        }
        Ok(OutputPipe {
            pipe,
            partial: Vec::new(),
            synced: false,
        })
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
    pid: libc::pid_t,
    /// Kept for its pipes; never waited on through `std`, which would race with `waitpid`.
    _child: Child,
    stdout: OutputPipe<ChildStdout>,
    stderr: OutputPipe<ChildStderr>,
    /// Set once reaped.
    exit: Option<ExitStatus>,
    /// The highest VmHWM read while it ran (KiB). Not wait4's ru_maxrss: that counts the
    /// memory of this tool, which the child shared between fork and exec.
    peak_kib: Option<u64>,
}

impl Process {
    pub fn new(mut child: Child) -> Result<Process, InvokeError> {
        let pid = child.id() as libc::pid_t;
        let pipes = OutputPipe::new(child.stdout.take())
            .and_then(|out| Ok((out, OutputPipe::new(child.stderr.take())?)));
        let (stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow::anyhow!("cannot read the function's output: {e}").into());
            }
        };
        Ok(Process {
            pid,
            _child: child,
            stdout,
            stderr,
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
            // SAFETY: our own unreaped child: its pid cannot have been reused.
            unsafe {
                libc::kill(self.pid, SYNC_SIGNAL);
            }
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
    pub fn terminate(&self) {
        if self.exit.is_none() {
            // SAFETY: our own unreaped child: its pid cannot have been reused.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
        }
    }

    pub fn output_fds(&self) -> Vec<libc::c_int> {
        let mut fds = Vec::new();
        if let Some(pipe) = &self.stdout.pipe {
            fds.push(pipe.as_raw_fd());
        }
        if let Some(pipe) = &self.stderr.pipe {
            fds.push(pipe.as_raw_fd());
        }
        fds
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
        self.waitpid(libc::WNOHANG)
    }

    fn waitpid(&mut self, options: libc::c_int) -> bool {
        // Last look before the process (and its /proc entry) is gone.
        self.sample_memory();
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: a valid pointer to a local; `pid` is our own unreaped child.
            let reaped = unsafe { libc::waitpid(self.pid, &mut status, options) };
            if reaped == self.pid {
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

    /// SIGKILL to the whole process group, then reaps.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            // SAFETY: the group was created for this unreaped child (process_group(0)), so its
            // id cannot have been reused.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
            self.waitpid(0);
        }
    }

    /// Reads the kernel's high-water mark of the process's resident memory.
    pub fn sample_memory(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let hwm = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
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

    pub fn peak_memory_kib(&mut self) -> Option<u64> {
        self.sample_memory();
        self.peak_kib
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
