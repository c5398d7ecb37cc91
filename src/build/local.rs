//! The local backend: the host's cargo builds for the target triple, with a linker chosen so the
//! result runs on provided.al2023 (glibc 2.34) whatever the host is.
//!
//! The choice, made per build from facts about the host (see [`choose`]):
//! 1. host and target match: the host's own toolchain; the result is checked, and when it needs a
//!    glibc newer than 2.34 and zig is there, it is relinked with zig;
//! 2. cross builds: zig, targeting `<arch>-linux-gnu.2.34`, for Rust's link and for C code built
//!    by build scripts (the `cc` crate's `CC_<triple>`, `CXX_<triple>`, `AR_<triple>`);
//! 3. no zig: a GNU cross gcc (`aarch64-linux-gnu-gcc`), with the result checked;
//! 4. nothing: fail before compiling, naming the three ways out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::arch::Arch;
use crate::build::{BuildError, Built, Executable, check_all, run_cargo, zig};
use crate::env::Env;
use crate::inspect::Problem;
use crate::lambda;
use crate::plan::{BuildPlan, Cmd};
use crate::report::Reporter;
use crate::signal::Interrupt;

type Result<T, E = BuildError> = std::result::Result<T, E>;

/// The local backend's build: a linker for the target, then cargo, then the checks; relinked
/// with zig when the host's glibc made a binary AL2023 cannot load.
pub fn build(
    plan: &BuildPlan,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Built>> {
    let host = HostFacts::discover(plan.arch, &plan.tool_dir());
    let linker = choose(plan.arch, &host)?;
    if let Linker::Zig(zig) = &linker {
        check_zig_ar(zig, plan.arch, env)?;
    }
    match linker {
        Linker::Host => reporter.detail("Linker", linker.describe()),
        _ => reporter.status("Cross", format!("{} with {}", plan.arch, linker.describe())),
    }
    ensure_target(plan.arch, env, &plan.tool_dir(), reporter)?;

    let executables = build_with(plan, &linker, env, reporter, interrupt)?;
    let built = check_all(executables, plan.arch, None)?;
    // The host toolchain links against the host's glibc; when that gives a binary AL2023
    // cannot load and zig is there, relink against AL2023's glibc rather than fail.
    let glibc_too_new = built
        .iter()
        .flat_map(|b| &b.checked.problems)
        .any(|p| matches!(p, Problem::GlibcTooNew { .. }));
    if linker == Linker::Host
        && glibc_too_new
        && let Some(zig) = zig::find()
    {
        check_zig_ar(&zig, plan.arch, env)?;
        let linker = Linker::Zig(zig);
        reporter.status(
            "Relinking",
            format!("{} with {}", plan.bin_list(), linker.describe()),
        );
        let executables = build_with(plan, &linker, env, reporter, interrupt)?;
        return check_all(executables, plan.arch, None);
    }
    Ok(built)
}

/// zig's `ar` archives the C code of build scripts, unless the user named their own
/// (`AR_<triple>`, which cc reads before the tool's): one that cannot is refused before compiling.
fn check_zig_ar(zig: &Path, target: Arch, env: &Env) -> Result<()> {
    let triple = target.triple();
    let own = [
        format!("AR_{triple}"),
        format!("AR_{}", triple.replace('-', "_")),
    ];
    if own.iter().any(|name| env.is_set(name)) {
        return Ok(());
    }
    zig::check_ar(zig)
}

/// How the final link (and C code) is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linker {
    /// Whatever cargo uses by default on this host.
    Host,
    /// `zig cc -target <arch>-linux-gnu.2.34`, through this tool's argument filter.
    Zig(PathBuf),
    /// A GNU cross compiler driver, e.g. `/usr/bin/aarch64-linux-gnu-gcc`.
    CrossGcc(PathBuf),
}

impl Linker {
    pub fn describe(&self) -> String {
        match self {
            Linker::Host => "the host toolchain".into(),
            Linker::Zig(zig) => format!(
                "zig ({}) targeting glibc {}.{}",
                zig.display(),
                lambda::GLIBC.0,
                lambda::GLIBC.1
            ),
            Linker::CrossGcc(gcc) => format!("GNU cross gcc ({})", gcc.display()),
        }
    }
}

/// What the strategy depends on, gathered once so that [`choose`] is a pure function.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub arch: Option<Arch>,
    pub zig: Option<PathBuf>,
    /// `<prefix>gcc` for the target, when installed.
    pub cross_gcc: Option<PathBuf>,
}

impl HostFacts {
    /// Looks for tools only when the build crosses architectures: a native build needs none.
    /// `cache_dir` keeps what is slow to find (zig inside Python's ziglang).
    pub fn discover(target: Arch, cache_dir: &Path) -> HostFacts {
        let arch = Arch::host();
        if arch == Some(target) {
            return HostFacts {
                arch,
                ..HostFacts::default()
            };
        }
        HostFacts {
            arch,
            zig: zig::find_cached(&cache_dir.join("zig").join("zig-path")),
            cross_gcc: cross_gcc(target),
        }
    }
}

/// The GNU cross gcc for `target` on PATH (`aarch64-linux-gnu-gcc`), when installed.
pub fn cross_gcc(target: Arch) -> Option<PathBuf> {
    which::which(format!("{}gcc", target.gnu_prefix())).ok()
}

pub fn choose(target: Arch, host: &HostFacts) -> Result<Linker> {
    if host.arch == Some(target) {
        return Ok(Linker::Host);
    }
    if let Some(zig) = &host.zig {
        return Ok(Linker::Zig(zig.clone()));
    }
    if let Some(gcc) = &host.cross_gcc {
        return Ok(Linker::CrossGcc(gcc.clone()));
    }
    Err(BuildError::NoCrossLinker { target })
}

/// The environment a strategy adds to cargo's. A variable the user already set wins: it is
/// left out here, so the inherited value stays.
pub fn linker_env(
    target: Arch,
    linker: &Linker,
    wrappers: Option<&zig::Wrappers>,
    already_set: impl Fn(&str) -> bool,
) -> Vec<(OsString, OsString)> {
    let triple_env = target.triple().replace('-', "_");
    let cargo_linker = format!("CARGO_TARGET_{}_LINKER", triple_env.to_uppercase());
    let (cc, cxx, ar): (PathBuf, Option<PathBuf>, Option<PathBuf>) = match (linker, wrappers) {
        (Linker::Host, _) => return Vec::new(),
        (Linker::Zig(_), Some(w)) => (w.cc.clone(), Some(w.cxx.clone()), Some(w.ar.clone())),
        (Linker::Zig(_), None) => return Vec::new(),
        (Linker::CrossGcc(gcc), _) => {
            let sibling = |tool: &str| {
                let name = format!("{}{tool}", target.gnu_prefix());
                let path = gcc.with_file_name(&name);
                path.is_file().then_some(path)
            };
            (gcc.clone(), sibling("g++"), sibling("ar"))
        }
    };
    let mut vars = vec![(cargo_linker, cc.clone()), (format!("CC_{triple_env}"), cc)];
    vars.extend(cxx.map(|cxx| (format!("CXX_{triple_env}"), cxx)));
    vars.extend(ar.map(|ar| (format!("AR_{triple_env}"), ar)));
    vars.into_iter()
        .filter(|(name, _)| !already_set(name))
        .map(|(name, value)| (name.into(), value.into()))
        .collect()
}

/// Builds with the plan's cargo command plus the chosen linker's environment; one
/// [`Executable`] per function of the plan, in its order.
fn build_with(
    plan: &BuildPlan,
    linker: &Linker,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Executable>> {
    let wrappers = match linker {
        Linker::Zig(zig_path) => Some(zig::Wrappers::write(
            &plan.tool_dir().join("zig"),
            plan.arch,
            zig_path,
        )?),
        _ => None,
    };
    let mut cargo: Cmd = plan.cargo.build();
    cargo
        .env
        .extend(linker_env(plan.arch, linker, wrappers.as_ref(), |name| {
            env.is_set(name)
        }));
    run_cargo(&cargo, &plan.functions, reporter, interrupt)
}

/// Makes sure the Rust standard library for `target` is installed: `rustup target add` when
/// rustup manages the toolchain, else an error saying what to install. Concurrent builds take
/// turns through a lock file in `lock_dir`, so two of them never run rustup at once.
pub fn ensure_target(target: Arch, env: &Env, lock_dir: &Path, reporter: &Reporter) -> Result<()> {
    if Arch::host() == Some(target) {
        return Ok(());
    }
    let cwd = &env.cwd;
    let std_dir = std_dir(&rust_sysroot(env)?, target);
    if std_dir.is_dir() {
        return Ok(());
    }
    let Ok(rustup) = which::which("rustup") else {
        return Err(BuildError::MissingRustTarget {
            target,
            rustup: false,
        });
    };
    let _lock = FileLock::acquire(&lock_dir.join("rustup.lock"))?;
    if std_dir.is_dir() {
        return Ok(());
    }
    reporter.status(
        "Installing",
        format!(
            "the Rust standard library for {} (rustup target add)",
            target.triple()
        ),
    );
    let status = Command::new(&rustup)
        .args(["target", "add", target.triple()])
        .current_dir(cwd)
        // Stdout is for results (`--message-format json` promises nothing else there).
        .stdout(std::io::stderr())
        .status()
        .map_err(BuildError::spawn("rustup"))?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::MissingRustTarget {
            target,
            rustup: true,
        })
    }
}

/// The sysroot of the rustc cargo runs (`rustc --print sysroot`).
pub fn rust_sysroot(env: &Env) -> Result<PathBuf> {
    let rustc = env.rustc();
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(&env.cwd)
        .output()
        .map_err(BuildError::spawn_rust(&rustc))?;
    Ok(PathBuf::from(
        String::from_utf8_lossy(&sysroot.stdout).trim(),
    ))
}

/// Where the Rust standard library for `target` lives in `sysroot`: it is installed when this
/// is a directory.
pub fn std_dir(sysroot: &Path, target: Arch) -> PathBuf {
    sysroot
        .join("lib/rustlib")
        .join(target.triple())
        .join("lib")
}

/// An exclusive lock on a file, held until dropped (closing the file releases it).
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock> {
        let failed = |e: std::io::Error| anyhow::anyhow!("cannot lock `{}`: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(failed)?;
        file.lock().map_err(failed)?;
        Ok(FileLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(arch: Arch, zig: bool, gcc: bool) -> HostFacts {
        HostFacts {
            arch: Some(arch),
            zig: zig.then(|| PathBuf::from("/opt/zig/zig")),
            cross_gcc: gcc.then(|| PathBuf::from("/usr/bin/aarch64-linux-gnu-gcc")),
        }
    }

    #[test]
    fn native_builds_use_the_host_toolchain() {
        assert_eq!(
            choose(Arch::X86_64, &facts(Arch::X86_64, true, true)).unwrap(),
            Linker::Host
        );
        assert_eq!(
            choose(Arch::Arm64, &facts(Arch::Arm64, false, false)).unwrap(),
            Linker::Host
        );
    }

    #[test]
    fn cross_builds_prefer_zig_then_gnu_gcc() {
        let zig = choose(Arch::Arm64, &facts(Arch::X86_64, true, true)).unwrap();
        assert_eq!(zig, Linker::Zig("/opt/zig/zig".into()));
        let gcc = choose(Arch::Arm64, &facts(Arch::X86_64, false, true)).unwrap();
        assert_eq!(
            gcc,
            Linker::CrossGcc("/usr/bin/aarch64-linux-gnu-gcc".into())
        );
        // From an arm64 host (Apple-silicon-like), x86_64 is the cross build.
        assert!(matches!(
            choose(Arch::X86_64, &facts(Arch::Arm64, true, false)),
            Ok(Linker::Zig(_))
        ));
    }

    #[test]
    fn nothing_to_cross_link_with_is_an_error_before_compiling() {
        let err = choose(Arch::Arm64, &facts(Arch::X86_64, false, false)).unwrap_err();
        assert!(matches!(
            err,
            BuildError::NoCrossLinker {
                target: Arch::Arm64
            }
        ));
        let help = err.help().unwrap();
        for way in ["pip install ziglang", "gcc-aarch64-linux-gnu", "--docker"] {
            assert!(help.contains(way), "{way} missing from: {help}");
        }
    }

    #[test]
    fn gnu_gcc_sets_linker_and_cc_for_the_target_only() {
        let linker = Linker::CrossGcc("/nonexistent/aarch64-linux-gnu-gcc".into());
        let env = linker_env(Arch::Arm64, &linker, None, |_| false);
        let names: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
                "CC_aarch64_unknown_linux_gnu"
            ]
        );
        assert!(
            env.iter()
                .all(|(_, v)| v == "/nonexistent/aarch64-linux-gnu-gcc")
        );
    }

    #[test]
    fn zig_sets_cc_cxx_ar_and_the_user_wins() {
        let wrappers = zig::Wrappers {
            cc: "/t/zig/aarch64-cc".into(),
            cxx: "/t/zig/aarch64-c++".into(),
            ar: "/t/zig/aarch64-ar".into(),
        };
        let linker = Linker::Zig("/opt/zig/zig".into());
        let env = linker_env(Arch::Arm64, &linker, Some(&wrappers), |name| {
            name == "CC_aarch64_unknown_linux_gnu"
        });
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        assert_eq!(
            env,
            [
                (
                    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".into(),
                    "/t/zig/aarch64-cc".into()
                ),
                (
                    "CXX_aarch64_unknown_linux_gnu".into(),
                    "/t/zig/aarch64-c++".into()
                ),
                (
                    "AR_aarch64_unknown_linux_gnu".into(),
                    "/t/zig/aarch64-ar".into()
                ),
            ]
        );
        assert!(linker_env(Arch::Arm64, &Linker::Host, None, |_| false).is_empty());
    }
}
