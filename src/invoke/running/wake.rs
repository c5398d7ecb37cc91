//! What wakes the invocation loop: a request of the APIs, a piece of a streamed response, and
//! (on Windows) the output of a process. On Unix, a pipe that `poll` watches beside the
//! processes' own output pipes; Windows cannot `poll` a pipe, so there it is a flag and a
//! condition variable, which the threads that read the processes' output set too.

use std::io;

#[cfg(unix)]
pub use unix::{Wake, Waker, set_nonblocking};
#[cfg(not(unix))]
pub use with_condvar::{Wake, Waker};

/// Both ends, made together.
pub fn wake() -> io::Result<(Wake, Waker)> {
    Wake::new()
}

#[cfg(unix)]
mod unix {
    use std::io::{self, Read};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::Arc;

    /// The end the loop waits on.
    pub struct Wake {
        reader: io::PipeReader,
    }

    /// The end that wakes it, shared by the server's tasks.
    #[derive(Clone)]
    pub struct Waker {
        writer: Arc<io::PipeWriter>,
    }

    impl Wake {
        pub(super) fn new() -> io::Result<(Wake, Waker)> {
            let (reader, writer) = io::pipe()?;
            set_nonblocking(reader.as_raw_fd())?;
            set_nonblocking(writer.as_raw_fd())?;
            Ok((
                Wake { reader },
                Waker {
                    writer: Arc::new(writer),
                },
            ))
        }

        /// The fd that becomes readable once woken, for `poll`.
        pub fn fd(&self) -> RawFd {
            self.reader.as_raw_fd()
        }

        /// Forgets the wakes so far: what woke the loop is then looked at.
        pub fn drain(&self) {
            let mut sink = [0u8; 64];
            while matches!((&self.reader).read(&mut sink), Ok(n) if n > 0) {}
        }
    }

    impl Waker {
        /// A full pipe already wakes the loop, so nothing is lost by not writing.
        pub fn wake(&self) {
            let _ = io::Write::write(&mut &*self.writer, &[1]);
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
}

#[cfg(not(unix))]
mod with_condvar {
    use std::io;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    type Flag = Arc<(Mutex<bool>, Condvar)>;

    /// The end the loop waits on.
    pub struct Wake {
        flag: Flag,
    }

    /// The end that wakes it, shared by the server's tasks and the output's readers.
    #[derive(Clone)]
    pub struct Waker {
        flag: Flag,
    }

    impl Wake {
        pub(super) fn new() -> io::Result<(Wake, Waker)> {
            let flag: Flag = Arc::default();
            Ok((
                Wake {
                    flag: Arc::clone(&flag),
                },
                Waker { flag },
            ))
        }

        /// A waker for another source (a process's output).
        pub fn waker(&self) -> Waker {
            Waker {
                flag: Arc::clone(&self.flag),
            }
        }

        /// Forgets the wakes so far: what woke the loop is then looked at.
        pub fn drain(&self) {
            *lock(&self.flag.0) = false;
        }

        /// Sleeps until woken (since the last [`Wake::drain`]), `wait` at most.
        pub fn wait(&self, wait: Duration) {
            let (flag, woken) = &*self.flag;
            let guard = lock(flag);
            let _ = woken.wait_timeout_while(guard, wait, |woke| !*woke);
        }
    }

    impl Waker {
        pub fn wake(&self) {
            let (flag, woken) = &*self.flag;
            *lock(flag) = true;
            woken.notify_all();
        }
    }

    /// A reader that panicked cannot leave the flag in a state that matters.
    fn lock(flag: &Mutex<bool>) -> std::sync::MutexGuard<'_, bool> {
        flag.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
