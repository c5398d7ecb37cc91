//! SIGINT and SIGTERM become a flag that the stages check, so an interrupted run unwinds:
//! temporary files are removed, the child cargo is stopped, and the previous artifact stays.
//! A leaf: it imports nothing of the crate; its [`Interrupted`] is wrapped by each stage's error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Exit code after SIGINT (128 + 2), as shells report it.
pub const SIGINT_EXIT: i32 = 130;
/// Exit code after SIGTERM (128 + 15).
pub const SIGTERM_EXIT: i32 = 143;

/// A run stopped by a signal: its exit code is 130 or 143.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", if self.exit_code == SIGTERM_EXIT { "SIGTERM" } else { "SIGINT" })]
pub struct Interrupted {
    pub exit_code: i32,
}

#[derive(Debug, Clone)]
pub struct Interrupt {
    /// The exit code the signal asks for (130 or 143), 0 while none came.
    code: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Installs the handlers. A second signal of the same kind still only sets the flag; the
    /// child processes get their own signals from the terminal or from `forward_to`.
    pub fn register() -> std::io::Result<Interrupt> {
        let code = Arc::new(AtomicUsize::new(0));
        for (signal, exit_code) in [(libc::SIGINT, SIGINT_EXIT), (libc::SIGTERM, SIGTERM_EXIT)] {
            signal_hook::flag::register_usize(signal, Arc::clone(&code), exit_code as usize)?;
        }
        Ok(Interrupt { code })
    }

    /// A flag that no signal sets, for tests.
    pub fn none() -> Interrupt {
        Interrupt {
            code: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The exit code of the signal that came, if one did.
    pub fn received(&self) -> Option<i32> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code as i32),
        }
    }

    pub fn check(&self) -> Result<(), Interrupted> {
        match self.received() {
            Some(exit_code) => Err(Interrupted { exit_code }),
            None => Ok(()),
        }
    }

    /// The signal to pass on to a child, matching the one received.
    pub fn signal(&self) -> Option<libc::c_int> {
        self.received().map(|code| {
            if code == SIGTERM_EXIT {
                libc::SIGTERM
            } else {
                libc::SIGINT
            }
        })
    }

    #[cfg(test)]
    pub fn raise(&self, code: i32) {
        self.code.store(code as usize, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_maps_to_exit_codes() {
        let interrupt = Interrupt::none();
        assert!(interrupt.check().is_ok());
        interrupt.raise(SIGTERM_EXIT);
        assert_eq!(interrupt.signal(), Some(libc::SIGTERM));
        let stopped = interrupt.check().unwrap_err();
        assert_eq!(stopped.exit_code, 143);
        assert_eq!(stopped.to_string(), "interrupted by SIGTERM");
    }
}
