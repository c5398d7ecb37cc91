//! The sandbox: what a function needs before it starts, decided and prepared before anything
//! runs. Its task root and `/opt` (the zip and the layers, extracted as Lambda extracts them),
//! the Runtime API it will talk to, and how `bootstrap` and the layers' extensions are started
//! (under qemu-user for the other architecture). `invoke` and `serve` run the same one.

pub mod launch;
pub mod task_root;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use launch::{Emulator, Launch};
use task_root::{OptDir, TaskRoot};

use super::server::RuntimeApi;
use crate::arch::Arch;
use crate::inspect::{self, ElfReport};
use crate::invoke::container;
use crate::invoke::error::InvokeError;
use crate::invoke::function::FunctionSettings;
use crate::invoke::ids;
use crate::invoke::libraries;
use crate::lambda::{BOOTSTRAP, EXTENSIONS_PATH, IMAGE_RUNTIME_DIR, OPT, TASK_ROOT};
use crate::report::Reporter;
use crate::signal::Interrupt;

/// A function ready to start. Dropping it removes the task root and `/opt`.
pub struct Sandbox {
    /// How `bootstrap` starts: printed at `-v`.
    pub launch: Launch,
    /// `x86_64`, or `arm64 under qemu-aarch64-static`, for the status line.
    pub arch: String,
    /// `/opt/extensions/*` of the layers, started beside the function.
    pub(super) extensions: Vec<Launch>,
    pub(super) api: RuntimeApi,
    /// The container the function runs in, in container mode; removed on drop.
    pub(super) container: Option<container::Environment>,
    _task_root: TaskRoot,
    _opt: OptDir,
}

impl Sandbox {
    /// Extracts the artifact and the function's layers, starts the Runtime API, and decides
    /// how each executable starts; nothing of the function runs yet.
    pub fn prepare(artifact: &Path, function: &FunctionSettings) -> Result<Sandbox, InvokeError> {
        let task_root = task_root::prepare(artifact)?;
        let opt = task_root::prepare_opt(&function.layers, task_root.unzipped_size)?;
        // How each executable starts, and whether what it needs is here, before anything runs.
        let start = |path: &Path, name: &str| {
            let elf = inspect::inspect(path).ok();
            let emulator = emulator(elf.as_ref(), function.qemu_sysroot.as_deref())?;
            if function.check_libraries
                && let Some(elf) = &elf
            {
                check_libraries(name, elf, emulator.as_ref(), (task_root.path(), opt.path()))?;
            }
            Ok::<_, InvokeError>((elf, emulator))
        };
        let (elf, bootstrap_emulator) = start(&task_root.bootstrap(), BOOTSTRAP)?;
        let extensions = opt
            .extensions()
            .into_iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let (_, emulator) = start(&path, &format!("{EXTENSIONS_PATH}/{name}"))?;
                Ok((path, emulator))
            })
            .collect::<Result<Vec<_>, InvokeError>>()?;
        let api = RuntimeApi::start().map_err(InvokeError::Server)?;
        let env = launch::environment(
            function,
            task_root.path(),
            opt.path(),
            api.addr,
            &ids::log_stream_name(SystemTime::now()),
        );
        let extensions = extensions
            .into_iter()
            .map(|(path, emulator)| {
                launch::launch_executable(path, task_root.path(), emulator, env.clone())
            })
            .collect();
        let launch = launch::launch(task_root.path(), bootstrap_emulator, env);
        let arch = describe_arch(elf.as_ref(), launch.emulator.as_ref());
        Ok(Sandbox {
            launch,
            arch,
            extensions,
            api,
            container: None,
            _task_root: task_root,
            _opt: opt,
        })
    }

    /// [`Sandbox::prepare`], or its container-mode twin when the function runs in a container:
    /// the same task root and `/opt`, copied into a container of the build image, the runtime
    /// and the extensions started in it through this tool's relay, the Runtime API reached back.
    pub fn prepare_for(
        artifact: &Path,
        function: &FunctionSettings,
        reporter: &Reporter,
        interrupt: &Interrupt,
    ) -> Result<Sandbox, InvokeError> {
        let Some(plan) = &function.container else {
            return Sandbox::prepare(artifact, function);
        };
        // An image run as it ships (`--image`) has no artifact: its `bootstrap` is copied out
        // into an empty task root once the container runs, and a file of its own probes the
        // engine.
        let (task_root, probe) = match plan.shipped {
            true => {
                let task_root = task_root::empty()?;
                let probe = task_root.path().join("probe");
                std::fs::write(&probe, ids::request_id()).map_err(InvokeError::TaskRoot)?;
                (task_root, probe)
            }
            false => (task_root::prepare(artifact)?, artifact.to_path_buf()),
        };
        let opt = task_root::prepare_opt(&function.layers, task_root.unzipped_size)?;
        let arch = inspect::inspect(&task_root.bootstrap())
            .ok()
            .map(|elf| elf.arch);
        let started = container::start(
            plan,
            &probe,
            arch,
            function.memory_mb,
            ((task_root.path(), &task_root.unix), (opt.path(), &opt.unix)),
            reporter,
            interrupt,
        )?;
        let api = RuntimeApi::start().map_err(InvokeError::Server)?;
        let mut env = launch::environment(
            function,
            Path::new(TASK_ROOT),
            Path::new(OPT),
            api.addr,
            &ids::log_stream_name(SystemTime::now()),
        );
        for (key, value) in &mut env {
            if key == "AWS_LAMBDA_RUNTIME_API" {
                *value = started.reach.runtime_api(api.addr);
            }
        }
        // `bootstrap` is the extracted file here, for the checks Lambda's exec makes.
        let relayed = |bootstrap: PathBuf, inside: String| {
            let (program, args) = started.relay(plan, inside);
            Launch {
                bootstrap,
                program,
                args,
                env: env.iter().chain(&plan.relay_env).cloned().collect(),
                cwd: task_root.path().to_path_buf(),
                emulator: None,
            }
        };
        let extensions = opt
            .extensions()
            .into_iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let inside = format!("{EXTENSIONS_PATH}/{name}");
                relayed(path.clone(), inside)
            })
            .collect();
        let (inside, arch) = match plan.shipped {
            true => (
                format!("{IMAGE_RUNTIME_DIR}/{BOOTSTRAP}"),
                inspect::inspect(&task_root.bootstrap())
                    .ok()
                    .map(|elf| elf.arch),
            ),
            false => (format!("{TASK_ROOT}/{BOOTSTRAP}"), arch),
        };
        let launch = relayed(task_root.bootstrap(), inside);
        Ok(Sandbox {
            launch,
            arch: started.describe(arch),
            extensions,
            api,
            container: Some(started.environment),
            _task_root: task_root,
            _opt: opt,
        })
    }

    /// Whether `bootstrap` runs under qemu-user (its peak memory then counts the emulator's).
    pub fn emulated(&self) -> bool {
        self.launch.emulator.is_some()
    }

    /// `Starting extension NAME from /opt/extensions`, when the layers have any.
    pub fn report_extensions(&self, reporter: &Reporter) {
        if self.extensions.is_empty() {
            return;
        }
        reporter.status(
            "Starting",
            format!(
                "extension{} {} from {EXTENSIONS_PATH}",
                if self.extensions.len() == 1 { "" } else { "s" },
                self.extensions
                    .iter()
                    .map(|e| e
                        .bootstrap
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// How an executable of this ELF runs on this machine: directly, or under qemu-user (with the
/// sysroot `QEMU_LD_PREFIX` chose, if any).
fn emulator(
    elf: Option<&ElfReport>,
    sysroot: Option<&Path>,
) -> Result<Option<Emulator>, InvokeError> {
    launch::emulation(
        elf,
        Arch::host(),
        sysroot,
        |name| which::which(name).ok(),
        Path::is_dir,
    )
}

/// Refuses an executable that needs a library its run does not provide: looked for in the task
/// root and `/opt` (`roots`), and in qemu's sysroot or this machine's directories. An ELF this
/// machine cannot run at all is left to fail as it would.
fn check_libraries(
    name: &str,
    elf: &ElfReport,
    emulator: Option<&Emulator>,
    (task_root, opt): (&Path, &Path),
) -> Result<(), InvokeError> {
    if emulator.is_none() && Arch::host() != Some(elf.arch) {
        return Ok(());
    }
    let sysroot = emulator.and_then(|emulator| emulator.sysroot.as_deref());
    let search = libraries::SearchPath::new(task_root, opt, elf.arch, sysroot);
    libraries::check(name, elf, &search, inspect::library_arch)
}

/// `x86_64`, `arm64 under qemu-aarch64-static`, or what `bootstrap` is when not an ELF.
fn describe_arch(elf: Option<&ElfReport>, emulator: Option<&Emulator>) -> String {
    match (elf, emulator) {
        (Some(elf), None) => elf.arch.to_string(),
        (_, Some(emulator)) => format!(
            "{} under {}",
            emulator.arch,
            emulator
                .program
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        ),
        // A macOS executable (`--native`) is this machine's own.
        (None, None) if cfg!(target_os = "macos") => std::env::consts::ARCH.to_owned(),
        (None, None) => "not an ELF executable".to_owned(),
    }
}
