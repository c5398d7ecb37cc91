//! Running the tool as a user without root's powers: permission errors only show for them.
//! When the tests run as root (CI does), that is `LAMBDA_BUILD_TEST_USER` (created by
//! `.ci/docker.sh`), reached through `setpriv`; otherwise it is the invoking user.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tools::skip_or_fail;

pub struct Unprivileged {
    pub uid: u32,
    pub gid: u32,
    /// `Some` when the tool runs as another user through `setpriv`.
    switch: Option<Switch>,
}

struct Switch {
    home: PathBuf,
    sysroot: PathBuf,
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Unprivileged {
    /// The user, or `None` (after `skip_or_fail`) when running as root without a test user.
    pub fn find() -> Option<Unprivileged> {
        if !is_root() {
            // SAFETY: getuid and getgid cannot fail.
            return Some(Unprivileged {
                uid: unsafe { libc::getuid() },
                gid: unsafe { libc::getgid() },
                switch: None,
            });
        }
        let Ok(name) = std::env::var("LAMBDA_BUILD_TEST_USER") else {
            skip_or_fail("running as root and LAMBDA_BUILD_TEST_USER is not set");
            return None;
        };
        let passwd = Command::new("getent")
            .args(["passwd", &name])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&passwd.stdout).into_owned();
        let fields: Vec<&str> = line.trim().split(':').collect();
        assert!(fields.len() >= 6, "no user `{name}`: {line}");
        let sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .unwrap();
        Some(Unprivileged {
            uid: fields[2].parse().unwrap(),
            gid: fields[3].parse().unwrap(),
            switch: Some(Switch {
                home: fields[5].into(),
                sysroot: String::from_utf8_lossy(&sysroot.stdout).trim().into(),
            }),
        })
    }

    /// `program` as this user. The user gets the host toolchain directly (rustup's proxies would
    /// look in the user's own ~/.rustup) and its own `CARGO_HOME`, as a real user has.
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let Some(switch) = &self.switch else {
            return Command::new(program.as_ref());
        };
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid",
                &self.uid.to_string(),
                "--regid",
                &self.gid.to_string(),
                "--init-groups",
            ])
            .arg(program.as_ref());
        let bin = switch.sysroot.join("bin");
        command
            .env("HOME", &switch.home)
            .env("CARGO", bin.join("cargo"))
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            )
            .env_remove("CARGO_HOME")
            .env_remove("RUSTUP_HOME")
            .env_remove("RUSTUP_TOOLCHAIN");
        command
    }

    /// The user's home, when it is another user than the one running the tests.
    pub fn home(&self) -> Option<&Path> {
        self.switch.as_ref().map(|s| s.home.as_path())
    }

    /// Makes `path` (recursively) this user's.
    pub fn give(&self, path: &Path) {
        if self.switch.is_some() {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", self.uid, self.gid))
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success(), "chown {}", path.display());
        }
    }
}
