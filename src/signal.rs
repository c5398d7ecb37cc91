//! SIGINT and SIGTERM become a flag that the stages check, so an interrupted run unwinds:
//! temporary files are removed, the child cargo is stopped, and the previous artifact stays.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result, exit};

#[derive(Debug, Clone)]
pub struct Interrupt {
    /// The exit code the signal asks for (130 or 143), 0 while none came.
    code: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Installs the handlers. A second signal of the same kind still only sets the flag; the
    /// child processes get their own signals from the terminal or from `forward_to`.
    pub fn register() -> Result<Interrupt> {
        let code = Arc::new(AtomicUsize::new(0));
        for (signal, exit_code) in [(libc::SIGINT, exit::SIGINT), (libc::SIGTERM, exit::SIGTERM)] {
            signal_hook::flag::register_usize(signal, Arc::clone(&code), exit_code as usize)
                .map_err(|e| anyhow::anyhow!("cannot install a signal handler: {e}"))?;
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

    pub fn check(&self) -> Result<()> {
        match self.received() {
            Some(code) => Err(Error::Interrupted(code)),
            None => Ok(()),
        }
    }

    /// The signal to pass on to a child, matching the one received.
    pub fn signal(&self) -> Option<libc::c_int> {
        self.received().map(|code| {
            if code == exit::SIGTERM {
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
        interrupt.raise(exit::SIGTERM);
        assert_eq!(interrupt.signal(), Some(libc::SIGTERM));
        assert_eq!(interrupt.check().unwrap_err().exit_code(), 143);
    }
}
