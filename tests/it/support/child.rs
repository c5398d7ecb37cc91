use std::process::Child;
use std::time::{Duration, Instant};

/// Stops a long-running child as a user would (`signal`: SIGINT for Ctrl-C, SIGTERM for a service
/// manager), gives it `grace` to exit on its own, then kills it; a child left running would hold
/// its port and the shared target dir for the next test.
pub fn stop(child: &mut Child, signal: libc::c_int, grace: Duration) {
    // SAFETY: the pid is our child's, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
