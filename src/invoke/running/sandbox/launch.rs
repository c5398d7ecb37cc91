//! How `bootstrap` (or an extension) starts, decided before anything runs: whether qemu-user
//! is needed for the architecture, Lambda's environment variables, and the command itself.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::invoke::function::FunctionSettings;
use crate::lambda::{
    BOOTSTRAP, INITIALIZATION_TYPE_VARIABLE, LATEST_VERSION, MAX_CONCURRENCY_VARIABLE, ON_DEMAND,
    SNAP_START,
};

pub use crate::invoke::emulation::{Emulator, emulation};

/// Lambda's environment for `provided.al2023`, with the task root, `/opt` and Runtime API of
/// this run. The function's variables come last and may override the non-reserved defaults
/// (`TZ`, `PATH`, `LD_LIBRARY_PATH`, `LANG`), as on Lambda.
pub fn environment(
    config: &FunctionSettings,
    task_root: &Path,
    opt: &Path,
    api: SocketAddr,
    log_stream: &str,
) -> Vec<(String, String)> {
    let root = task_root.display().to_string();
    let opt = opt.display().to_string();
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", config.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            config.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", LATEST_VERSION.to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_owned()),
        (
            INITIALIZATION_TYPE_VARIABLE,
            if config.snap_start {
                SNAP_START
            } else {
                ON_DEMAND
            }
            .to_owned(),
        ),
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        ("LAMBDA_TASK_ROOT", root.clone()),
        ("_HANDLER", config.handler.clone()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        // Lambda's, `/var/task` and `/opt` being where they are here.
        ("PATH", format!("/usr/local/bin:/usr/bin/:/bin:{opt}/bin")),
        (
            "LD_LIBRARY_PATH",
            format!(
                "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:{root}:{root}/lib:\
                 {opt}/lib"
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(config.credentials.iter().cloned());
    env.extend(
        config
            .log_format
            .iter()
            .flat_map(|format| format.variables()),
    );
    for (key, value) in &config.variables {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    // What the Runtime API serves: `--concurrency` over an `--env` of the same variable.
    if let Some(n) = config.concurrency {
        env.retain(|(k, _)| k != MAX_CONCURRENCY_VARIABLE);
        env.push((MAX_CONCURRENCY_VARIABLE.to_owned(), n.to_string()));
    }
    env
}

/// The command that starts `bootstrap`, as data: printed at `-v`, checked by tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// `bootstrap` in the task root, or an extension in `/opt/extensions`.
    pub bootstrap: PathBuf,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The whole environment: nothing is inherited, as nothing is on Lambda.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub emulator: Option<Emulator>,
}

pub fn launch(task_root: &Path, emulator: Option<Emulator>, env: Vec<(String, String)>) -> Launch {
    launch_executable(task_root.join(BOOTSTRAP), task_root, emulator, env)
}

/// The command that starts `executable` (`bootstrap`, or an extension) in `cwd`.
pub fn launch_executable(
    bootstrap: PathBuf,
    cwd: &Path,
    emulator: Option<Emulator>,
    env: Vec<(String, String)>,
) -> Launch {
    let (program, args) = match &emulator {
        None => (bootstrap.clone(), Vec::new()),
        Some(emulator) => {
            let mut args: Vec<OsString> = Vec::new();
            if let Some(sysroot) = &emulator.sysroot {
                args.push("-L".into());
                args.push(sysroot.into());
            }
            args.push(bootstrap.clone().into());
            (emulator.program.clone(), args)
        }
    };
    Launch {
        bootstrap,
        program,
        args,
        env,
        cwd: cwd.to_path_buf(),
        emulator,
    }
}

impl Launch {
    /// Whether another program (qemu-user, the container's relay) starts `bootstrap`: then
    /// Lambda's own checks of the file are made here.
    pub fn wraps(&self) -> bool {
        self.program != self.bootstrap
    }

    /// In its own process group, so that killing it takes whatever it started along, as
    /// Lambda's sandbox reset does. On Windows (a container's relay, the only launch there)
    /// its stdin is the pipe that tells it what Unix says with signals, and it is kept from
    /// the console's Ctrl-C, which this tool handles.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        #[cfg(windows)]
        {
            use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;
            std::os::windows::process::CommandExt::creation_flags(
                &mut command,
                CREATE_NEW_PROCESS_GROUP,
            );
            command.stdin(Stdio::piped());
        }
        command
    }
}

/// As shell words, secrets masked: what `-v` prints.
impl fmt::Display for Launch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact::command_line(
            self.env
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into())),
            self.program.as_os_str(),
            self.args.iter().map(OsString::as_os_str),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::inspect::ElfReport;

    fn config() -> FunctionSettings {
        FunctionSettings {
            name: "orders".into(),
            memory_mb: 256,
            timeout_secs: 3,
            handler: "orders.list".into(),
            region: "eu-west-1".into(),
            variables: vec![
                ("TABLE".into(), "t".into()),
                ("TZ".into(), "Europe/Paris".into()),
            ],
            log_format: Some(crate::invoke::function::LogFormat::Json { level: "DEBUG" }),
            credentials: vec![("AWS_ACCESS_KEY_ID".into(), "AKIA".into())],
            layers: Vec::new(),
            container: None,
            check_libraries: true,
            qemu_sysroot: None,
            concurrency: None,
            snap_start: false,
            tenant_id: None,
            caller: Default::default(),
        }
    }

    fn value<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn managed_instances_get_their_concurrency() {
        let env = |config: &FunctionSettings| {
            environment(
                config,
                Path::new("/t"),
                Path::new("/o"),
                ([127, 0, 0, 1], 9001).into(),
                "s",
            )
        };
        let plain = env(&config());
        assert!(!plain.iter().any(|(k, _)| k == MAX_CONCURRENCY_VARIABLE));
        let managed = env(&FunctionSettings {
            concurrency: Some(8),
            ..config()
        });
        assert!(managed.contains(&(MAX_CONCURRENCY_VARIABLE.to_owned(), "8".to_owned())));
        let overridden = env(&FunctionSettings {
            concurrency: Some(2),
            variables: vec![(MAX_CONCURRENCY_VARIABLE.to_owned(), "4".to_owned())],
            ..config()
        });
        let values: Vec<&str> = overridden
            .iter()
            .filter(|(k, _)| k == MAX_CONCURRENCY_VARIABLE)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, ["2"]);
    }

    #[test]
    fn environment_is_lambdas_with_this_task_root_and_api() {
        let api: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let env = environment(
            &config(),
            Path::new("/tmp/root"),
            Path::new("/tmp/opt"),
            api,
            "2024/01/01/[$LATEST]ab",
        );
        for (key, expected) in [
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/orders"),
            ("AWS_REGION", "eu-west-1"),
            ("LAMBDA_TASK_ROOT", "/tmp/root"),
            ("_HANDLER", "orders.list"),
            (
                "LD_LIBRARY_PATH",
                "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/tmp/root:\
                 /tmp/root/lib:/tmp/opt/lib",
            ),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin:/tmp/opt/bin"),
            ("TABLE", "t"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ] {
            assert_eq!(value(&env, key), Some(expected), "{key}");
        }
        // A function may set TZ; it replaces Lambda's `:UTC` instead of adding a second one.
        assert_eq!(value(&env, "TZ"), Some("Europe/Paris"));
        assert_eq!(env.iter().filter(|(k, _)| k == "TZ").count(), 1);
    }

    fn elf(arch: Arch, static_linked: bool) -> ElfReport {
        ElfReport {
            arch,
            static_linked,
            interpreter: None,
            glibc: None,
            needed: Vec::new(),
        }
    }

    // qemu-user and its Unix paths are Linux's way to run the other architecture.
    #[cfg(unix)]
    #[test]
    fn qemu_only_for_the_other_architecture() {
        let found = |name: &str| Some(PathBuf::from(format!("/usr/bin/{name}")));
        let yes = |_: &Path| true;
        assert_eq!(
            emulation(
                Some(&elf(Arch::X86_64, false)),
                Some(Arch::X86_64),
                None,
                found,
                yes
            )
            .unwrap(),
            None
        );
        assert_eq!(
            emulation(None, Some(Arch::X86_64), None, found, yes).unwrap(),
            None
        );
        let arm = emulation(
            Some(&elf(Arch::Arm64, false)),
            Some(Arch::X86_64),
            None,
            found,
            yes,
        )
        .unwrap()
        .unwrap();
        assert_eq!(arm.program, Path::new("/usr/bin/qemu-aarch64-static"));
        assert_eq!(
            arm.sysroot.as_deref(),
            Some(Path::new("/usr/aarch64-linux-gnu"))
        );
        let static_arm = emulation(
            Some(&elf(Arch::Arm64, true)),
            Some(Arch::X86_64),
            None,
            found,
            |_| false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(static_arm.sysroot, None);
        // `QEMU_LD_PREFIX` chooses the sysroot in place of the cross packages'.
        let chosen = Path::new("/srv/arm64-root");
        let exists = |dir: &Path| dir == chosen;
        let in_chosen = emulation(
            Some(&elf(Arch::Arm64, false)),
            Some(Arch::X86_64),
            Some(chosen),
            found,
            exists,
        )
        .unwrap()
        .unwrap();
        assert_eq!(in_chosen.sysroot.as_deref(), Some(chosen));

        let env = vec![
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "s3cr3t".to_owned()),
            ("A".to_owned(), "x y".to_owned()),
        ];
        let launch = launch(Path::new("/t"), Some(arm), env);
        assert_eq!(
            launch.to_string(),
            "AWS_SECRET_ACCESS_KEY='***' A='x y' /usr/bin/qemu-aarch64-static \
             -L /usr/aarch64-linux-gnu /t/bootstrap"
        );
    }

    #[test]
    fn missing_qemu_or_sysroot_names_the_package() {
        // An arm64 function on an x86_64 host, with or without qemu, with or without the sysroot:
        // the help line of the refusal.
        let help = |qemu_installed: bool, sysroot: bool| {
            let err = emulation(
                Some(&elf(Arch::Arm64, false)),
                Some(Arch::X86_64),
                None,
                |name: &str| qemu_installed.then(|| PathBuf::from(name)),
                |_| sysroot,
            )
            .unwrap_err();
            if !qemu_installed {
                assert!(err.to_string().contains("`qemu-aarch64-static`"), "{err}");
            }
            err.help().unwrap()
        };
        let no_qemu = help(false, true);
        assert!(
            no_qemu.contains("apt-get install qemu-user-static"),
            "{no_qemu}"
        );
        let no_sysroot = help(true, false);
        assert!(
            no_sysroot.contains("apt-get install libc6-arm64-cross"),
            "{no_sysroot}"
        );
    }
}
