//! What differs between the operating systems the tool runs on (Linux, macOS, Windows), in one
//! place: file modes, process ids, user ids. A leaf: it imports nothing of the crate.
//!
//! What Lambda sees never depends on the host: zip entries get their modes from the plan
//! (`bootstrap` 755), not from the file system, so a Windows run writes the zip a Linux run does.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

/// Sets a file's permission bits where the file system has them; elsewhere (Windows) there is
/// nothing to set, and the modes that matter to Lambda are written into the zip instead.
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// [`set_mode`] by path.
pub fn set_path_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// The file's permission bits (`0o755`), where file systems have them (`None` on Windows).
pub fn mode_bits(metadata: &Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(metadata.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// The file's execute bit, where file systems have one (`None` on Windows).
pub fn execute_bit(metadata: &Metadata) -> Option<bool> {
    mode_bits(metadata).map(|mode| mode & 0o111 != 0)
}

/// Whether the process `pid` still runs. When the host cannot tell, it says yes: the caller
/// then keeps what might belong to a live process.
pub fn process_is_running(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: kill(2) with signal 0 sends nothing; it only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        // EPERM: it exists, owned by someone else.
        alive || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{CloseHandle, ERROR_INVALID_PARAMETER, GetLastError};
        use windows_sys::Win32::System::Threading::{
            GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        };
        /// What GetExitCodeProcess reports for a process that has not exited.
        const STILL_ACTIVE: u32 = 259;
        // SAFETY: OpenProcess takes any pid; the handle is closed below.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            // An unknown pid is an invalid parameter; access denied means it exists.
            // SAFETY: reads this thread's last error.
            return unsafe { GetLastError() } != ERROR_INVALID_PARAMETER;
        }
        let mut code = 0u32;
        // SAFETY: `handle` is a process handle opened above, `code` a valid out pointer.
        let asked = unsafe { GetExitCodeProcess(handle, &mut code) } != 0;
        // SAFETY: closes the handle opened above, once.
        unsafe { CloseHandle(handle) };
        !asked || code == STILL_ACTIVE
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = pid;
        true
    }
}

/// Ends this process by `signal` with its default action, as the process it stands for ended
/// (the container relay); where there are no signals, or the signal does not end it, returns
/// the shell's status for it, 128 + the signal, to exit with.
pub fn die_of(signal: i32) -> i32 {
    #[cfg(unix)]
    // SAFETY: resetting a signal to its default action and raising it in this process.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
    128 + signal
}

/// This user's uid and gid, for a container that must write files the user owns; `None` where
/// the engine runs in a VM that maps ownership itself (Docker Desktop on Windows).
pub fn user_ids() -> Option<(u32, u32)> {
    #[cfg(unix)]
    {
        // SAFETY: getuid and getgid cannot fail.
        Some(unsafe { (libc::getuid(), libc::getgid()) })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The id of a process that has exited (not reused this soon): this test binary, asked to run
/// no test, which exits at once on every host.
#[cfg(test)]
pub(crate) fn exited_process_id() -> u32 {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no-such-test"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.wait().unwrap();
    child.id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_an_exited_one_does_not() {
        assert!(process_is_running(std::process::id()));
        assert!(!process_is_running(exited_process_id()));
    }

    #[test]
    fn modes_are_set_where_the_file_system_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "x").unwrap();
        set_path_mode(&path, 0o755).unwrap();
        let bit = execute_bit(&std::fs::metadata(&path).unwrap());
        assert_eq!(bit, cfg!(unix).then_some(true));
        set_mode(&File::open(&path).unwrap(), 0o644).unwrap();
        let bit = execute_bit(&std::fs::metadata(&path).unwrap());
        assert_eq!(bit, cfg!(unix).then_some(false));
    }
}
