//! zig as the C compiler and linker of cross builds. `zig cc -target <arch>-linux-gnu.2.34`
//! links against stubs of glibc 2.34 exactly (AL2023's), whatever glibc the host has, and
//! cross-compiles C for build scripts without a sysroot.
//!
//! rustc and the `cc` crate call the linker or compiler with gcc's arguments; a few of them mean
//! nothing to zig or make it fail. cargo and cc run small wrapper scripts written under the
//! target dir, which call this binary back as `cargo-lambda-build __zig-cc ...`; it drops or
//! rewrites those arguments, those rustc puts in an `@file` response file included, and runs zig.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::NamedTempFile;

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
    // Windows' installer names it `python`; `python3` there may be the Store's placeholder.
    let python = which::which("python3")
        .or_else(|_| which::which("python"))
        .ok()?;
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
    let zig = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        .join(if cfg!(windows) { "zig.exe" } else { "zig" });
    zig.is_file().then_some(zig)
}

/// Refuses a zig whose `ar` cannot create an archive: the `cc` crate archives every C library
/// a build script compiles (ring's, aws-lc-sys's) with it. aws-lc-rs issue #993: zig 0.16.0 from
/// Homebrew on macOS answers `zig ar rcs new.a x.o` with "unable to open 'new.a': No such file or
/// directory", while the official builds (Python's ziglang 0.16.0 and 0.17.1) work; so the
/// archive is tried, not the version number guessed. Tried once per zig and version in a run.
pub fn check_ar(zig: &Path) -> Result<()> {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static TRIED: Mutex<BTreeMap<(PathBuf, String), Option<String>>> = Mutex::new(BTreeMap::new());
    let output = Command::new(zig)
        .arg("version")
        .output()
        .map_err(BuildError::spawn(zig))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let key = (zig.to_path_buf(), version.clone());
    let cached = TRIED.lock().ok().and_then(|tried| tried.get(&key).cloned());
    let failure = match cached {
        Some(failure) => failure,
        None => {
            let failure = try_ar(zig)?;
            if let Ok(mut tried) = TRIED.lock() {
                tried.insert(key, failure.clone());
            }
            failure
        }
    };
    match failure {
        None => Ok(()),
        Some(said) => Err(BuildError::BrokenZigAr {
            zig: zig.to_path_buf(),
            version: if version.is_empty() {
                "of unknown version".into()
            } else {
                version
            },
            said,
        }),
    }
}

/// `zig ar rcs` of a small file into a new archive in a temporary directory, as `cc` runs it;
/// what went wrong, if it did.
fn try_ar(zig: &Path) -> Result<Option<String>> {
    let dir = tempfile::tempdir()
        .map_err(|e| anyhow::anyhow!("cannot create a temporary directory: {e}"))?;
    let member = dir.path().join("probe.o");
    std::fs::write(&member, b"probe\n")
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", member.display()))?;
    let output = Command::new(zig)
        .args(["ar", "rcs", "probe.a", "probe.o"])
        .current_dir(dir.path())
        .output()
        .map_err(BuildError::spawn(zig))?;
    let archive = std::fs::read(dir.path().join("probe.a")).unwrap_or_default();
    Ok(ar_failure(
        output.status.success(),
        &archive,
        &String::from_utf8_lossy(&output.stderr),
    ))
}

/// What a failed `ar rcs` said (its last line), or `None` when it made an archive.
fn ar_failure(success: bool, archive: &[u8], stderr: &str) -> Option<String> {
    if success && archive.starts_with(b"!<arch>\n") {
        return None;
    }
    let said = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty());
    Some(match (said, success) {
        (Some(line), _) => line.to_owned(),
        (None, true) => "nothing, and wrote no archive".into(),
        (None, false) => "nothing, and failed".into(),
    })
}

/// The scripts cargo and the `cc` crate run for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrappers {
    pub cc: PathBuf,
    pub cxx: PathBuf,
    pub ar: PathBuf,
}

impl Wrappers {
    /// Writes (or keeps, when unchanged) `<dir>/<zig-target>-{cc,c++,ar}`: `sh` scripts, or
    /// batch files (`.bat`) on Windows, where cargo and `cc` run those through `cmd`.
    pub fn write(dir: &Path, arch: Arch, zig: &Path) -> Result<Wrappers> {
        let exe = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find this program's own path: {e}"))?;
        let target = zig_target(arch);
        let [cc, cxx, ar] = scripts(&exe, zig, &target, cfg!(windows));
        let extension = if cfg!(windows) { ".bat" } else { "" };
        let wrappers = Wrappers {
            cc: dir.join(format!("{target}-cc{extension}")),
            cxx: dir.join(format!("{target}-c++{extension}")),
            ar: dir.join(format!("{target}-ar{extension}")),
        };
        write_script(&wrappers.cc, &cc)?;
        write_script(&wrappers.cxx, &cxx)?;
        write_script(&wrappers.ar, &ar)?;
        Ok(wrappers)
    }
}

/// The content of the cc, c++ and ar wrappers: each passes its arguments on, unchanged.
fn scripts(exe: &Path, zig: &Path, target: &str, windows: bool) -> [String; 3] {
    let (exe, zig) = (exe.to_string_lossy(), zig.to_string_lossy());
    // No `"` is in a Windows path; `%` is, and batch files expand it unless doubled.
    let quote = |path: &str| match windows {
        true => format!("\"{}\"", path.replace('%', "%%")),
        false => shell_words::quote(path).into_owned(),
    };
    let script = |command: String| match windows {
        true => format!("@echo off\r\n{command} %*\r\n"),
        false => format!("#!/bin/sh\nexec {command} \"$@\"\n"),
    };
    let driver = |mode: &str| {
        script(format!(
            "{} {COMPILER_MODE} {mode} {target} {}",
            quote(&exe),
            quote(&zig)
        ))
    };
    [
        driver("cc"),
        driver("c++"),
        script(format!("{} ar", quote(&zig))),
    ]
}

/// Rewrites the script only when its content changed (a concurrent build of the same
/// architecture writes the same bytes), through a rename so no build sees half a script.
fn write_script(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == content) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| anyhow::anyhow!("cannot write `{}`: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    file.write_all(content.as_bytes()).map_err(failed)?;
    crate::host::set_mode(file.as_file(), 0o755).map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// `__zig-cc <cc|c++> <zig-target> <zig> ARGS...`: runs zig with ARGS filtered, those inside
/// rustc's response files included. Returns the exit code for `main`.
pub fn run_compiler(args: &[OsString]) -> i32 {
    let [mode, target, zig, rest @ ..] = args else {
        eprintln!(
            "error: usage: cargo-lambda-build {COMPILER_MODE} <cc|c++> <zig-target> <zig> ARGS..."
        );
        return 1;
    };
    // The rewritten response files must outlive zig; dropping them removes them.
    let (filtered, _response_files) = match zig_args(rest) {
        Ok(filtered) => filtered,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
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

/// The arguments for zig: [`filter_args`] applied to `args`, and to the arguments inside each
/// `@file` among them. When the command line is too long, rustc passes the linker's arguments in
/// a response file instead (rust-lang/rust#41190); each becomes a filtered copy, returned with
/// the arguments so that it lives until zig is done.
fn zig_args(args: &[OsString]) -> Result<(Vec<String>, Vec<NamedTempFile>)> {
    let mut filtered = Vec::new();
    let mut response_files = Vec::new();
    for arg in args {
        let arg = arg.to_string_lossy();
        let Some(inner) = arg
            .strip_prefix('@')
            .and_then(|path| Some((path, std::fs::read_to_string(path).ok()?)))
        else {
            // Not a response file (or not one that can be read, which gcc too takes as a
            // plain argument).
            filtered.extend(filter_arg(arg.into_owned()));
            continue;
        };
        let (path, content) = inner;
        let inner = filter_args(parse_response_file(&content));
        let Some(rewritten) = render_response_file(&inner) else {
            // zig cannot read these from a file: on its command line, which may still be short
            // enough for zig where it was too long for the wrapper script.
            filtered.extend(inner);
            continue;
        };
        let copy = write_response_file(Path::new(path), &rewritten)?;
        filtered.push(format!("@{}", copy.path().display()));
        response_files.push(copy);
    }
    Ok((filtered, response_files))
}

/// The arguments of a response file as rustc writes them for gcc-like linkers: one argument per
/// line, a backslash before each backslash and space (rustc_codegen_ssa's `back/link.rs`,
/// `Escape`). A backslash takes the next character literally, whatever it is.
pub fn parse_response_file(content: &str) -> Vec<String> {
    if content.is_empty() {
        return Vec::new();
    }
    content
        .strip_suffix('\n')
        .unwrap_or(content)
        .split('\n')
        .map(|line| {
            let mut arg = String::with_capacity(line.len());
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                arg.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            arg
        })
        .collect()
}

/// A response file as zig reads one (`std.process.ArgIteratorGeneral` with single quotes, as of
/// zig 0.17), which is not rustc's format: zig splits `a\ b` at the space. Each argument goes in
/// double quotes on its own line, a `"` and the backslashes before it escaped as on Windows.
/// `None` when an argument holds a `'`: zig takes either kind of quote as the end of a quoted
/// argument, and an escaped `'` as `"`, so no response file can carry it.
pub fn render_response_file(args: &[String]) -> Option<String> {
    let mut content = String::new();
    for arg in args {
        if arg.contains('\'') {
            return None;
        }
        content.push('"');
        let mut backslashes = 0;
        for c in arg.chars() {
            match c {
                '\\' => backslashes += 1,
                // 2n backslashes before a quote are n backslashes, 2n+1 are n and the quote itself.
                '"' => {
                    content.extend(std::iter::repeat_n('\\', 2 * backslashes + 1));
                    content.push('"');
                    backslashes = 0;
                }
                c => {
                    content.extend(std::iter::repeat_n('\\', backslashes));
                    content.push(c);
                    backslashes = 0;
                }
            }
        }
        // Before the closing quote, too.
        content.extend(std::iter::repeat_n('\\', 2 * backslashes));
        content.push_str("\"\n");
    }
    Some(content)
}

/// Writes `content` to a new response file beside `original` (rustc's temporary directory, which
/// rustc removes), leaving the original as rustc wrote it.
fn write_response_file(original: &Path, content: &str) -> Result<NamedTempFile> {
    use std::io::Write;
    let dir = original
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot write the filtered copy of the response file `{}` in `{}`: {e}",
            original.display(),
            dir.display()
        )
    };
    let mut file = tempfile::Builder::new()
        .prefix("zig-linker-arguments.")
        .tempfile_in(dir)
        .map_err(failed)?;
    file.write_all(content.as_bytes()).map_err(failed)?;
    Ok(file)
}

/// gcc arguments that rustc or `cc` pass for Linux GNU targets and zig does not take.
pub fn filter_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter().filter_map(filter_arg).collect()
}

/// One argument as zig should see it, or none.
fn filter_arg(arg: String) -> Option<String> {
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
        "-Wl,--no-undefined-version" | "-Wl,-znostart-stop-gc" | "-Wl,--fix-cortex-a53-843419"
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
    fn windows_wrappers_are_batch_files_that_pass_every_argument_on() {
        let [cc, cxx, ar] = scripts(
            Path::new(r"C:\Users\me\.cargo\bin\cargo-lambda-build.exe"),
            Path::new(r"C:\Tools\100%\zig.exe"),
            "x86_64-linux-gnu.2.34",
            true,
        );
        assert_eq!(
            cc,
            "@echo off\r\n\"C:\\Users\\me\\.cargo\\bin\\cargo-lambda-build.exe\" __zig-cc cc \
             x86_64-linux-gnu.2.34 \"C:\\Tools\\100%%\\zig.exe\" %*\r\n"
        );
        assert!(
            cxx.contains(" __zig-cc c++ x86_64-linux-gnu.2.34 "),
            "{cxx}"
        );
        assert_eq!(ar, "@echo off\r\n\"C:\\Tools\\100%%\\zig.exe\" ar %*\r\n");
    }

    #[cfg(unix)]
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

    #[test]
    fn an_archive_that_was_not_made_is_a_failure_with_what_ar_said() {
        assert_eq!(ar_failure(true, b"!<arch>\nprobe.o/", ""), None);
        assert_eq!(
            ar_failure(
                false,
                b"",
                "warning: x\nar: error: unable to open 'probe.a': No such file or directory\n"
            )
            .as_deref(),
            Some("ar: error: unable to open 'probe.a': No such file or directory")
        );
        assert_eq!(
            ar_failure(true, b"", "").as_deref(),
            Some("nothing, and wrote no archive")
        );
    }

    /// A stand-in zig: `zig version` says `version`, `zig ar` fails as Homebrew's 0.16.0 does
    /// (or works, with `ar_works`), and each call is logged.
    #[cfg(unix)]
    fn stand_in_zig(dir: &Path, version: &str, ar_works: bool) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let log = dir.join("calls");
        let zig = dir.join("zig");
        let ar = if ar_works {
            "printf '!<arch>\\n' > \"$3\""
        } else {
            "echo \"ar: error: unable to open '$3': No such file or directory\" >&2; exit 1"
        };
        std::fs::write(
            &zig,
            format!(
                "#!/bin/sh\necho \"$1\" >> '{}'\ncase \"$1\" in\n  version) echo {version} ;;\n  \
                 ar) {ar} ;;\nesac\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&zig, std::fs::Permissions::from_mode(0o755)).unwrap();
        (zig, log)
    }

    #[cfg(unix)]
    #[test]
    fn a_zig_whose_ar_cannot_create_an_archive_is_named_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let (zig, log) = stand_in_zig(dir.path(), "0.16.0", false);
        let err = check_ar(&zig).unwrap_err();
        let BuildError::BrokenZigAr { version, said, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(version, "0.16.0");
        assert_eq!(
            said,
            "ar: error: unable to open 'probe.a': No such file or directory"
        );
        assert!(
            err.to_string().contains(&zig.display().to_string()),
            "{err}"
        );
        let help = err.help().unwrap();
        for fix in ["pip install ziglang", "zig@0.15", "--docker"] {
            assert!(help.contains(fix), "{fix} missing from {help}");
        }
        // Tried once per zig and version in a run; only the version is asked again.
        assert!(check_ar(&zig).is_err());
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            calls.lines().collect::<Vec<_>>(),
            ["version", "ar", "version"]
        );

        let working = tempfile::tempdir().unwrap();
        let (zig, _) = stand_in_zig(working.path(), "0.17.1", true);
        check_ar(&zig).unwrap();
    }

    /// The real zig's `ar` works (Python's ziglang, as in CI).
    #[test]
    fn the_installed_zig_makes_an_archive() {
        let Some(zig) = find() else {
            return;
        };
        check_ar(&zig).unwrap();
    }

    /// Arguments as rustc passes them to the linker, some of which zig must not see.
    const RUSTC_ARGS: [&str; 8] = [
        "-m64",
        "/tmp/my project/main.o",
        "-lgcc_s",
        "--target=x86_64-unknown-linux-gnu",
        "-fuse-ld=lld",
        "-Wl,--undefined=keep_me",
        "C:\\odd\\path",
        "",
    ];

    /// What is left of [`RUSTC_ARGS`] for zig, in zig's response-file format.
    const FOR_ZIG: &str = "\"-m64\"\n\"/tmp/my project/main.o\"\n\"-lunwind\"\n\"-Wl,-u,keep_me\"\n\
                           \"C:\\odd\\path\"\n\"\"\n";

    /// A response file as rustc writes it (rustc_codegen_ssa's `Escape`).
    fn rustc_response_file(args: &[&str]) -> String {
        args.iter()
            .map(|arg| format!("{}\n", arg.replace('\\', "\\\\").replace(' ', "\\ ")))
            .collect()
    }

    #[test]
    fn response_files_are_read_as_rustc_writes_them_and_written_as_zig_reads_them() {
        let content = rustc_response_file(&RUSTC_ARGS);
        assert_eq!(
            content,
            "-m64\n/tmp/my\\ project/main.o\n-lgcc_s\n--target=x86_64-unknown-linux-gnu\n\
             -fuse-ld=lld\n-Wl,--undefined=keep_me\nC:\\\\odd\\\\path\n\n"
        );
        assert_eq!(parse_response_file(&content), RUSTC_ARGS);
        assert_eq!(parse_response_file(""), Vec::<String>::new());
        // A last line without its newline is still an argument.
        assert_eq!(parse_response_file("-lc\n-o\nout"), ["-lc", "-o", "out"]);

        let quoted = |arg: &str| render_response_file(&[arg.to_owned()]);
        assert_eq!(quoted("a\"b").as_deref(), Some("\"a\\\"b\"\n"));
        assert_eq!(quoted("a\\\"b").as_deref(), Some("\"a\\\\\\\"b\"\n"));
        assert_eq!(quoted("dir\\").as_deref(), Some("\"dir\\\\\"\n"));
        assert_eq!(
            quoted("# not a comment").as_deref(),
            Some("\"# not a comment\"\n")
        );
        assert_eq!(quoted("o'brien"), None);
    }

    #[test]
    fn arguments_inside_a_response_file_are_filtered_too() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("linker-arguments");
        let content = rustc_response_file(&RUSTC_ARGS);
        std::fs::write(&original, &content).unwrap();
        let args =
            ["-o", "out", &format!("@{}", original.display()), "@missing"].map(OsString::from);

        let (filtered, files) = zig_args(&args).unwrap();
        let [o, out, response, missing] = filtered.as_slice() else {
            panic!("{filtered:?}")
        };
        assert_eq!([o, out, missing], ["-o", "out", "@missing"]);
        let copy = PathBuf::from(response.strip_prefix('@').unwrap());
        assert_eq!(copy, files[0].path());
        assert_eq!(copy.parent(), Some(dir.path()));
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), FOR_ZIG);
        // rustc's file stays as rustc wrote it; the copy goes with its guard.
        assert_eq!(std::fs::read_to_string(&original).unwrap(), content);
        drop(files);
        assert!(!copy.exists());

        // What zig cannot read in a response file goes on its command line, filtered.
        std::fs::write(
            &original,
            rustc_response_file(&["/home/o'brien/main.o", "-lgcc_s"]),
        )
        .unwrap();
        let (filtered, files) = zig_args(&args[2..3]).unwrap();
        assert_eq!(filtered, ["/home/o'brien/main.o", "-lunwind"]);
        assert!(files.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_compiler_driver_hands_zig_a_filtered_response_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("zig.log");
        // A zig that records its arguments and the content of the response files it is given,
        // which are gone once the driver returns.
        let zig = dir.path().join("zig");
        std::fs::write(
            &zig,
            format!(
                "#!/bin/sh\nfor arg in \"$@\"; do\n  printf '%s\\n' \"$arg\" >> '{log}'\n  \
                 case \"$arg\" in @*) cat \"${{arg#@}}\" >> '{log}' ;; esac\ndone\nexit 7\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&zig, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rustc_dir = dir.path().join("rustcXYZ");
        std::fs::create_dir(&rustc_dir).unwrap();
        let response = rustc_dir.join("linker-arguments");
        std::fs::write(&response, rustc_response_file(&RUSTC_ARGS)).unwrap();

        let args = [
            "cc".into(),
            "x86_64-linux-gnu.2.34".into(),
            zig.clone().into_os_string(),
            format!("@{}", response.display()).into(),
        ];
        assert_eq!(run_compiler(&args), 7, "zig's exit code is the driver's");

        let logged = std::fs::read_to_string(&log).unwrap();
        let (head, file) = logged.split_at(logged.find("\"-m64\"").expect(&logged));
        let head: Vec<&str> = head.lines().collect();
        let [cc, target_flag, target, copy] = head.as_slice() else {
            panic!("{logged}")
        };
        assert_eq!(
            [*cc, *target_flag, *target],
            ["cc", "-target", "x86_64-linux-gnu.2.34"]
        );
        assert_ne!(Path::new(copy.strip_prefix('@').unwrap()), response);
        assert_eq!(file, FOR_ZIG);
        // Only rustc's own file is left in rustc's directory.
        assert_eq!(std::fs::read_dir(&rustc_dir).unwrap().count(), 1);
    }

    /// The real zig links from a rewritten response file that rustc's escaping and flags would
    /// have broken (a space in a path, `--target=`). Runs where zig is installed, as in CI.
    #[test]
    fn zig_links_from_a_rewritten_response_file() {
        let Some(zig) = find() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("my project/main.c");
        std::fs::create_dir_all(source.parent().unwrap()).unwrap();
        std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
        let output = dir.path().join("my project/main");
        let response = dir.path().join("linker-arguments");
        let (source, output) = (source.display().to_string(), output.display().to_string());
        std::fs::write(
            &response,
            rustc_response_file(&[&source, "-o", &output, "--target=x86_64-unknown-linux-gnu"]),
        )
        .unwrap();
        let args = [
            "cc".into(),
            "x86_64-linux-gnu.2.34".into(),
            zig.into_os_string(),
            format!("@{}", response.display()).into(),
        ];
        assert_eq!(run_compiler(&args), 0);
        assert!(Path::new(&output).is_file());
    }
}
