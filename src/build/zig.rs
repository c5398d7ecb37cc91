//! zig as the C compiler and linker of cross builds. `zig cc -target <arch>-linux-gnu.2.34`
//! links against stubs of glibc 2.34 exactly (AL2023's), whatever glibc the host has, and
//! cross-compiles C for build scripts without a sysroot.
//!
//! rustc and the `cc` crate call the linker or compiler with gcc's arguments; a few of them mean
//! nothing to zig or make it fail. cargo and cc run small wrapper scripts written under the
//! target dir, which call this binary back as `cargo-lambda-build __zig-cc ...`; it drops or
//! rewrites those arguments and runs zig.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::arch::Arch;
use crate::build::BuildError;
use crate::lambda;

type Result<T, E = BuildError> = std::result::Result<T, E>;

/// The first argument that makes this binary act as zig's compiler driver.
pub const COMPILER_MODE: &str = "__zig-cc";

/// Finds zig: `zig` on PATH, else the binary inside Python's `ziglang` package
/// (`pip install ziglang`), called directly so a link costs no Python start-up.
pub fn find() -> Option<PathBuf> {
    which::which("zig").ok().or_else(find_ziglang)
}

/// [`find`], remembering the `ziglang` answer in `cache`: asking Python costs a quarter of a
/// second, more than the rest of a no-op build. A cached path is used only while it is still a
/// file; `zig` on PATH still comes first.
pub fn find_cached(cache: &Path) -> Option<PathBuf> {
    if let Ok(zig) = which::which("zig") {
        return Some(zig);
    }
    if let Ok(cached) = std::fs::read_to_string(cache) {
        let cached = PathBuf::from(cached.trim_end());
        if cached.is_file() {
            return Some(cached);
        }
    }
    let zig = find_ziglang()?;
    // Best effort: without the cache the next run asks Python again.
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = write_script(cache, &format!("{}\n", zig.display()));
    Some(zig)
}

fn find_ziglang() -> Option<PathBuf> {
    let python = which::which("python3").ok()?;
    let output = Command::new(python)
        .args([
            "-c",
            "import os, ziglang; print(os.path.dirname(ziglang.__file__))",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let zig = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("zig");
    zig.is_file().then_some(zig)
}

/// The scripts cargo and the `cc` crate run for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrappers {
    pub cc: PathBuf,
    pub cxx: PathBuf,
    pub ar: PathBuf,
}

impl Wrappers {
    /// Writes (or keeps, when unchanged) `<dir>/<zig-target>-{cc,c++,ar}`.
    pub fn write(dir: &Path, arch: Arch, zig: &Path) -> Result<Wrappers> {
        let exe = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find this program's own path: {e}"))?;
        let quote = |path: &Path| shell_words::quote(&path.to_string_lossy()).into_owned();
        let target = zig_target(arch);
        let driver = |mode: &str| {
            format!(
                "#!/bin/sh\nexec {} {COMPILER_MODE} {mode} {target} {} \"$@\"\n",
                quote(&exe),
                quote(zig)
            )
        };
        let wrappers = Wrappers {
            cc: dir.join(format!("{target}-cc")),
            cxx: dir.join(format!("{target}-c++")),
            ar: dir.join(format!("{target}-ar")),
        };
        write_script(&wrappers.cc, &driver("cc"))?;
        write_script(&wrappers.cxx, &driver("c++"))?;
        write_script(
            &wrappers.ar,
            &format!("#!/bin/sh\nexec {} ar \"$@\"\n", quote(zig)),
        )?;
        Ok(wrappers)
    }
}

/// Rewrites the script only when its content changed (a concurrent build of the same
/// architecture writes the same bytes), through a rename so no build sees half a script.
fn write_script(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == content) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| anyhow::anyhow!("cannot write `{}`: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    file.write_all(content.as_bytes()).map_err(failed)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))
        .map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// `__zig-cc <cc|c++> <zig-target> <zig> ARGS...`: runs zig with ARGS filtered. Returns the exit
/// code for `main`.
pub fn run_compiler(args: &[OsString]) -> i32 {
    let [mode, target, zig, rest @ ..] = args else {
        eprintln!(
            "error: usage: cargo-lambda-build {COMPILER_MODE} <cc|c++> <zig-target> <zig> ARGS..."
        );
        return 1;
    };
    let filtered = filter_args(rest.iter().map(|arg| arg.to_string_lossy().into_owned()));
    match Command::new(zig)
        .arg(mode)
        .arg("-target")
        .arg(target)
        .args(filtered)
        .status()
    {
        Ok(status) => status.code().unwrap_or(1),
        Err(e) => {
            eprintln!("error: could not run zig `{}`: {e}", zig.to_string_lossy());
            1
        }
    }
}

/// gcc arguments that rustc or `cc` pass for Linux GNU targets and zig does not take.
pub fn filter_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .filter_map(|arg| {
            // zig ships libunwind in place of libgcc_s, linked statically.
            if arg == "-lgcc_s" {
                return Some("-lunwind".into());
            }
            // zig gets its target from `-target`; rustc's self-contained lld is replaced by zig's.
            if arg.starts_with("--target=")
                || arg.starts_with("-fuse-ld=")
                || (arg.starts_with("-B") && arg.contains("gcc-ld"))
            {
                return None;
            }
            // Linker options zig's lld driver rejects.
            if matches!(
                arg.as_str(),
                "-Wl,--no-undefined-version"
                    | "-Wl,-znostart-stop-gc"
                    | "-Wl,--fix-cortex-a53-843419"
            ) || arg.starts_with("-Wl,-plugin-opt")
            {
                return None;
            }
            if let Some(symbol) = arg.strip_prefix("-Wl,--undefined=") {
                return Some(format!("-Wl,-u,{symbol}"));
            }
            // zig accepts only these preprocessor pass-throughs.
            if arg.starts_with("-Wp,")
                && !["-Wp,-MD", "-Wp,-MMD", "-Wp,-MT"]
                    .iter()
                    .any(|ok| arg.starts_with(ok))
            {
                return None;
            }
            // An input file passed through `-Wl,` (whole-archive static libraries): zig wants
            // it as a plain input.
            if let Some(path) = arg.strip_prefix("-Wl,")
                && !path.starts_with('-')
                && Path::new(path).is_file()
            {
                return Some(path.to_string());
            }
            Some(arg)
        })
        .collect()
}

/// zig's target for this architecture, pinned to AL2023's glibc: `aarch64-linux-gnu.2.34`.
pub fn zig_target(arch: Arch) -> String {
    let (major, minor) = lambda::GLIBC;
    format!(
        "{}-linux-gnu.{major}.{minor}",
        arch.gnu_prefix().trim_end_matches("-linux-gnu-")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(args: &[&str]) -> Vec<String> {
        filter_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn rustc_link_arguments_are_made_acceptable_to_zig() {
        assert_eq!(
            filter(&[
                "-m64",
                "main.o",
                "-lgcc_s",
                "-lc",
                "--target=aarch64-unknown-linux-gnu",
                "-fuse-ld=lld",
                "-B/sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld",
                "-Wl,--no-undefined-version",
                "-Wl,--undefined=keep_me",
                "-Wl,--as-needed",
                "-Wp,-U_FORTIFY_SOURCE",
                "-Wp,-MD,dep.d",
                "-o",
                "out",
            ]),
            [
                "-m64",
                "main.o",
                "-lunwind",
                "-lc",
                "-Wl,-u,keep_me",
                "-Wl,--as-needed",
                "-Wp,-MD,dep.d",
                "-o",
                "out"
            ]
        );
    }

    #[test]
    fn whole_archive_inputs_become_plain_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libring_core.a");
        std::fs::write(&lib, b"!<arch>\n").unwrap();
        let arg = format!("-Wl,{}", lib.display());
        assert_eq!(
            filter(&["-Wl,--whole-archive", &arg, "-Wl,--no-whole-archive"]),
            [
                "-Wl,--whole-archive".to_string(),
                lib.display().to_string(),
                "-Wl,--no-whole-archive".into()
            ]
        );
    }

    #[test]
    fn a_cached_zig_path_is_used_only_while_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("zig-path");
        let zig = dir.path().join("zig");
        std::fs::write(&zig, "").unwrap();
        std::fs::write(&cache, format!("{}\n", zig.display())).unwrap();
        if which::which("zig").is_err() {
            assert_eq!(find_cached(&cache), Some(zig.clone()));
            std::fs::remove_file(&zig).unwrap();
            assert_ne!(find_cached(&cache), Some(zig));
        }
    }

    #[test]
    fn wrapper_scripts_call_back_with_the_pinned_target() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wrappers::write(dir.path(), Arch::Arm64, Path::new("/opt/zig dir/zig")).unwrap();
        let cc = std::fs::read_to_string(&w.cc).unwrap();
        assert!(
            cc.contains("__zig-cc cc aarch64-linux-gnu.2.34 '/opt/zig dir/zig' \"$@\""),
            "{cc}"
        );
        let ar = std::fs::read_to_string(&w.ar).unwrap();
        assert_eq!(ar, "#!/bin/sh\nexec '/opt/zig dir/zig' ar \"$@\"\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&w.cc).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // Unchanged content is not rewritten (a concurrent build may be running it).
        let before = std::fs::metadata(&w.cc).unwrap().modified().unwrap();
        Wrappers::write(dir.path(), Arch::Arm64, Path::new("/opt/zig dir/zig")).unwrap();
        assert_eq!(
            std::fs::metadata(&w.cc).unwrap().modified().unwrap(),
            before
        );
    }
}
