//! The bad-input table: every way a user can hand the tool something it cannot build, run on the
//! real binary. Each case checks what the user sees and what stays on disk:
//!
//! - the exit code (1 for a refusal, 2 for a usage error, 101 for a compile error);
//! - one `error: ` line naming the problem, and a `help: ` line with the fix;
//! - no panic or backtrace of the tool's own;
//! - the `lambda.zip` a previous run left is byte for byte the same, with no temporary file
//!   beside it;
//! - refusals that do not need the compiler come before it (no `Compiling` line).
//!
//! The Docker cases (engine absent, refusing or stopping, a failing `lambda.Dockerfile`, a
//! missing `--docker-image`, an OOM-killed container) are in `docker.rs`, which owns the
//! engine.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::{
    MAIN, assert_fails, assert_refused, assert_stderr_has, assert_unchanged, crate_with,
    lambda_build, lambda_build_command, stderr, temp_files,
};

/// What a previous successful run left: the case checks that it is still there, unchanged.
const PREVIOUS: &[u8] = b"PK previous lambda.zip, which a failed run must not touch";

/// One row of the table.
struct Case<'a> {
    /// The crate's name (each case its own, as they share one target dir).
    name: &'a str,
    files: &'a [(&'a str, &'a str)],
    manifest: &'a str,
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
    /// Where the previous `lambda.zip` lies, relative to the project ("" for the project root).
    outdir: &'a str,
    code: i32,
    message: &'a str,
    help: &'a str,
    /// The refusal comes before cargo compiles anything.
    before_compiling: bool,
}

const CASE: Case<'static> = Case {
    name: "bad",
    files: &[("src/main.rs", MAIN)],
    manifest: "",
    args: &["--zip"],
    env: &[],
    outdir: "",
    code: 1,
    message: "",
    help: "",
    before_compiling: true,
};

impl Case<'_> {
    fn project(&self) -> tempfile::TempDir {
        let project = crate_with(self.name, self.files, self.manifest);
        let outdir = project.path().join(self.outdir);
        if fs::create_dir_all(&outdir).is_ok() {
            fs::write(outdir.join("lambda.zip"), PREVIOUS).unwrap();
        }
        project
    }

    /// Runs the case in a fresh project.
    fn check(&self) -> Output {
        let project = self.project();
        self.check_in(project.path())
    }

    /// Runs the case in `dir` (a project from [`Case::project`], perhaps changed further).
    fn check_in(&self, dir: &Path) -> Output {
        let output = lambda_build_command(dir, self.args)
            .envs(self.env.iter().copied())
            .output()
            .expect("runs cargo-lambda-build");
        self.assert(dir, &output);
        output
    }

    fn assert(&self, dir: &Path, output: &Output) {
        assert_refused(output, self.code, self.message, self.help);
        let outdir = dir.join(self.outdir);
        if outdir.join("lambda.zip").is_file() {
            assert_unchanged(&outdir.join("lambda.zip"), PREVIOUS);
        }
        assert_eq!(temp_files(&outdir), Vec::<String>::new(), "temporary files");
        if self.before_compiling {
            assert!(!stderr(output).contains("Compiling"), "{}", stderr(output));
        }
    }
}

/// A row of `bad_input.toml`: a case that is one run in a fresh crate, checked as every case is,
/// and what else its stderr must say.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    test: String,
    name: Option<String>,
    files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    manifest: String,
    args: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    code: Option<i32>,
    #[serde(default)]
    compiles: bool,
    message: String,
    help: String,
    #[serde(default)]
    also: Vec<String>,
    /// Directories made before the run (in the way of the zip, say).
    #[serde(default)]
    dirs: Vec<String>,
}

fn pairs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Row {
    fn check(&self) {
        let files = self.files.as_ref().map(pairs);
        let args: Option<Vec<&str>> = self
            .args
            .as_ref()
            .map(|args| args.iter().map(String::as_str).collect());
        let case = Case {
            name: self.name.as_deref().unwrap_or(CASE.name),
            files: files.as_deref().unwrap_or(CASE.files),
            manifest: &self.manifest,
            args: args.as_deref().unwrap_or(CASE.args),
            env: &pairs(&self.env),
            code: self.code.unwrap_or(CASE.code),
            message: &self.message,
            help: &self.help,
            before_compiling: !self.compiles,
            ..CASE
        };
        let project = case.project();
        for dir in &self.dirs {
            fs::create_dir_all(project.path().join(dir)).unwrap();
        }
        let output = case.check_in(project.path());
        for text in &self.also {
            assert_stderr_has(&output, text);
        }
        // What was in the project is still there, as it was.
        for (path, content) in case.files {
            assert_eq!(
                fs::read_to_string(project.path().join(path)).unwrap(),
                *content
            );
        }
        for dir in &self.dirs {
            assert!(project.path().join(dir).is_dir(), "{dir} is gone");
        }
    }
}

/// Every row of `bad_input.toml`; the rows that fail are named together.
#[test]
fn the_table_of_plain_refusals() {
    #[derive(serde::Deserialize)]
    struct Table {
        case: Vec<Row>,
    }
    let table: Table = toml::from_str(include_str!("bad_input.toml")).unwrap();
    assert!(table.case.len() >= 24, "rows lost from bad_input.toml");
    let failures: Vec<String> = table
        .case
        .iter()
        .filter_map(|row| {
            let panic = std::panic::catch_unwind(|| row.check()).err()?;
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Some(format!("{}: {text}", row.test))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// The project itself.

#[test]
fn no_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("lambda.zip"), PREVIOUS).unwrap();
    Case {
        message: "could not find `Cargo.toml`",
        help: "--manifest-path path/to/Cargo.toml",
        ..CASE
    }
    .check_in(dir.path());
}

#[test]
fn malformed_cargo_toml() {
    let case = Case {
        message: "cargo could not read the project: unclosed table, expected `]` (at Cargo.toml:1:9)",
        help: "fix what cargo says",
        ..CASE
    };
    let project = case.project();
    fs::write(project.path().join("Cargo.toml"), "[package\nname = ").unwrap();
    case.check_in(project.path());
}

// Flags and configuration.

#[test]
fn bad_arch_flag() {
    // clap's usage errors list the values instead of a `help:` line.
    let project = CASE.project();
    let output = lambda_build(project.path(), &["--zip", "--arch", "sparc"]);
    assert_fails(&output, 2, "invalid value 'sparc' for '--arch <ARCH>'");
    assert_stderr_has(&output, "[possible values: x86_64, arm64]");
    assert_unchanged(&project.path().join("lambda.zip"), PREVIOUS);
}

#[test]
fn unknown_flag() {
    let project = CASE.project();
    let output = lambda_build(project.path(), &["--zip", "--ziip"]);
    assert_fails(&output, 2, "unexpected argument '--ziip'");
    assert_stderr_has(&output, "tip: a similar argument exists: '--zip'");
    assert_unchanged(&project.path().join("lambda.zip"), PREVIOUS);
}

/// cargo warns about keys it does not know and goes on; so does the tool, naming the key, and
/// the build is the one the known keys ask for.
#[test]
fn unknown_config_key_warns_by_name_and_builds() {
    let project = crate_with(
        "unknownkey",
        &[("src/main.rs", MAIN)],
        "[package.metadata.lambda-build]\nzipp = true\noutdir = \"dist\"\n",
    );
    let output = lambda_build(project.path(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("unknown key `zipp` (ignored)")),
        "{}",
        stderr(&output)
    );
    // `zipp` did not turn `zip` on: the executable alone, in the outdir that was spelt right.
    assert!(project.path().join("dist/bootstrap").is_file());
    assert!(!project.path().join("dist/lambda.zip").exists());
}

// Where the artifact goes.

/// Permissions mean nothing to root: the tool runs as a user without its powers.
#[test]
fn outdir_that_is_not_writable() {
    use std::os::unix::fs::PermissionsExt;
    let Some(user) = support::Unprivileged::find() else {
        return;
    };
    let case = Case {
        name: "readonly",
        args: &["--zip", "--outdir", "locked"],
        outdir: "locked",
        message: "",
        help: "locked` writable",
        ..CASE
    };
    let project = case.project();
    user.give(project.path());
    let locked = project.path().join("locked");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    // And a not-yet-created outdir below it.
    for args in [case.args, &["--zip", "--outdir", "locked/new/dir"]] {
        let output = support::tool_as(&user)
            .args(args)
            .current_dir(project.path())
            .env("CARGO_TARGET_DIR", project.path().join("target"))
            .output()
            .unwrap();
        let message = format!("{}`: permission denied", args[2]);
        Case {
            args,
            message: &message,
            ..case
        }
        .assert(project.path(), &output);
    }
    assert!(!locked.join("new").exists());
}

/// A small tmpfs, filled up: the write fails with ENOSPC midway, and the previous zip stays.
#[test]
fn outdir_on_a_full_file_system() {
    if !support::is_root() {
        support::skip_or_fail("mounting a small tmpfs needs root");
        return;
    }
    let case = Case {
        name: "fullfs",
        args: &["--zip", "--outdir", "full"],
        outdir: "full",
        message: "full/lambda.zip`: no space left on device",
        help: "free some disk space and run again",
        before_compiling: false,
        ..CASE
    };
    let project = case.project();
    let mount = Tmpfs::mount(&project.path().join("full"), "256k");
    fs::write(mount.0.join("lambda.zip"), PREVIOUS).unwrap();
    // Fill it, keeping a few blocks free so the write starts and fails partway.
    let mut filler = fs::File::create(mount.0.join("filler")).unwrap();
    use std::io::Write as _;
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    drop(filler);
    let size = fs::metadata(mount.0.join("filler")).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(mount.0.join("filler"))
        .unwrap()
        .set_len(size.saturating_sub(16 * 1024))
        .unwrap();
    let output = case.check_in(project.path());
    // Only the tool's own words: the zip library has nothing to add.
    assert!(
        !stderr(&output).contains("ZipWriter"),
        "{}",
        stderr(&output)
    );
}

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

// The build.

/// A program that calls `arc4random`, which glibc added in 2.36 (this test's host has 2.36 or
/// newer; provided.al2023 has 2.34).
const NEEDS_GLIBC_2_36: &str = "unsafe extern \"C\" { fn arc4random() -> u32; }\n\
    fn main() { println!(\"{}\", unsafe { arc4random() } % 2); }\n";

/// PATH with cargo, rustc and a C compiler for linking, but no zig (nor python3).
fn path_without_zig(scratch: &Path) -> std::ffi::OsString {
    support::path_with_only(scratch, &["cargo", "rustc", "cc"])
}

#[test]
fn too_new_glibc_without_zig() {
    let scratch = tempfile::tempdir().unwrap();
    let path = path_without_zig(scratch.path());
    let case = Case {
        name: "newglibc",
        files: &[("src/main.rs", NEEDS_GLIBC_2_36)],
        message: "requires glibc 2.36, but provided.al2023 has glibc 2.34",
        help: "pip install ziglang",
        before_compiling: false,
        ..CASE
    };
    let project = case.project();
    let output = lambda_build_command(project.path(), case.args)
        .env("PATH", &path)
        .output()
        .unwrap();
    case.assert(project.path(), &output);

    // `--no-verify` packages it anyway, and says what it let through.
    let output = lambda_build_command(project.path(), &["--zip", "--no-verify"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("glibc 2.36")),
        "{}",
        stderr(&output)
    );
    assert_ne!(
        fs::read(project.path().join("lambda.zip")).unwrap(),
        PREVIOUS
    );
}

#[test]
fn too_new_glibc_is_relinked_with_zig_which_names_the_missing_symbol() {
    if !support::zig_installed() {
        support::skip_or_fail("zig is not installed (`python3 -m pip install ziglang`)");
        return;
    }
    let output = Case {
        name: "relink",
        files: &[("src/main.rs", NEEDS_GLIBC_2_36)],
        code: 101,
        message: "`cargo build` failed",
        help: "cargo says above what failed",
        before_compiling: false,
        ..CASE
    }
    .check();
    // zig links against glibc 2.34, where arc4random does not exist: the build fails at the
    // link, naming the symbol, instead of shipping a binary that fails at start-up.
    let err = stderr(&output);
    assert!(err.contains("Relinking `relink` with zig"), "{err}");
    assert!(err.contains("undefined symbol: arc4random"), "{err}");
}

/// The architecture that is a cross build from this host, and the other one.
fn cross_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "x86_64"
    } else {
        "arm64"
    }
}

/// A zig whose `ar` cannot create an archive, as Homebrew's 0.16.0 on macOS (aws-lc-rs issue
/// #993): a stand-in first on PATH, which the cross build would pick. It is named, with its
/// version and what to install, before anything compiles.
#[test]
fn a_zig_whose_ar_cannot_create_an_archive_is_named_before_compiling() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::tempdir().unwrap();
    let zig = scratch.path().join("zig");
    fs::write(
        &zig,
        "#!/bin/sh\ncase \"$1\" in\n  version) echo 0.16.0 ;;\n  \
         ar) echo \"ar: error: unable to open '$3': No such file or directory\" >&2; exit 1 ;;\n  \
         *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    fs::set_permissions(&zig, fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(scratch.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap()
    .into_string()
    .unwrap();
    let message = format!(
        "zig 0.16.0 (`{}`) cannot create an archive, which C dependencies (ring, aws-lc-sys) \
         need: `zig ar rcs` said \"ar: error: unable to open 'probe.a': No such file or directory\"",
        zig.display()
    );
    let output = Case {
        name: "brokenzig",
        args: &["--zip", "--arch", cross_arch()],
        env: &[("PATH", &path)],
        message: &message,
        help: "`pip install ziglang`",
        ..CASE
    }
    .check();
    for fix in [
        "brew install zig@0.15",
        "--docker",
        &zig.display().to_string(),
    ] {
        assert!(stderr(&output).contains(fix), "{fix}: {}", stderr(&output));
    }
}

/// A linker that links as asked, then puts `replacement` where the executable should be: how a
/// broken toolchain or a `[[bin]]` that is not a program would look to the tool.
fn linker_replacing_output_with(dir: &Path, replacement: &str) -> (String, String) {
    let replacement = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/elf")
        .join(replacement);
    // Named like a gcc, so rustc passes it gcc's arguments.
    let script = dir.join("replacing-gcc");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncc \"$@\" || exit 1\nprev=\nfor a in \"$@\"; do\n  \
             [ \"$prev\" = -o ] && out=$a\n  prev=$a\ndone\ncp '{}' \"$out\"\n",
            replacement.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER".to_owned(),
        script.to_string_lossy().into_owned(),
    )
}

fn check_with_replaced_binary(name: &str, replacement: &str, message: &str, help: &str) -> Output {
    let case = Case {
        name,
        message,
        help,
        before_compiling: false,
        ..CASE
    };
    let project = case.project();
    let scratch = tempfile::tempdir().unwrap();
    let (var, linker) = linker_replacing_output_with(scratch.path(), replacement);
    let output = lambda_build_command(project.path(), case.args)
        .env(var, linker)
        .output()
        .unwrap();
    case.assert(project.path(), &output);
    output
}

#[cfg(target_arch = "x86_64")]
#[test]
fn binary_that_is_a_shell_script() {
    check_with_replaced_binary(
        "scripted",
        "script.sh",
        "the file is a `#!` script (`#!/bin/sh`), not an ELF executable",
        "package the compiled binary, not a wrapper script",
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn binary_that_is_a_shared_library() {
    check_with_replaced_binary(
        "shared",
        "libfoo.so.1",
        "the file is a shared library (libfoo.so.1), not an executable",
        "not a `cdylib`/`dylib` library",
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn binary_that_needs_a_library_al2023_lacks() {
    check_with_replaced_binary(
        "needslib",
        "needs-libfoo",
        "needs the shared library libfoo.so.1, which is not on provided.al2023",
        "link libfoo.so.1 statically",
    );
}

/// A zip holding `names`, each a small file.
fn zip_of(path: &Path, names: &[&str]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for name in names {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"\x7fELF").unwrap();
    }
    zip.finish().unwrap();
}

/// The same binary that needs libfoo.so.1 passes once the function has it where Lambda's loader
/// looks: its zip's lib/ (`--include`), or a declared layer's lib/ (`--layer`, `layers`).
#[cfg(target_arch = "x86_64")]
#[test]
fn a_library_shipped_in_lib_or_a_layer_satisfies_the_check() {
    let project = crate_with("needslayer", &[("src/main.rs", MAIN)], "");
    let dir = project.path();
    let scratch = tempfile::tempdir().unwrap();
    let (var, linker) = linker_replacing_output_with(scratch.path(), "needs-libfoo");
    fs::create_dir_all(dir.join("layers")).unwrap();
    zip_of(&dir.join("layers/foo.zip"), &["lib/libfoo.so.1"]);
    // In the layer, but not where /opt/lib is: the check still fails.
    zip_of(
        &dir.join("layers/elsewhere.zip"),
        &["share/libfoo.so.1", "lib/x/libfoo.so.1"],
    );
    let build = |args: &[&str]| {
        lambda_build_command(dir, args)
            .env(var.as_str(), linker.as_str())
            .output()
            .unwrap()
    };

    let output = build(&["--zip", "--layer", "layers/elsewhere.zip"]);
    assert_fails(&output, 1, "needs the shared library libfoo.so.1");
    assert!(
        stderr(&output).contains("(`--layer ZIP`)"),
        "{}",
        stderr(&output)
    );

    let output = build(&[
        "--zip",
        "--layer",
        "layers/elsewhere.zip",
        "--layer",
        "layers/foo.zip",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Checked `needslayer`"),
        "{}",
        stderr(&output)
    );

    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "{}\n[package.metadata.lambda-build]\nlayers = [\"layers/foo.zip\"]\n",
            fs::read_to_string(dir.join("Cargo.toml")).unwrap()
        ),
    )
    .unwrap();
    let output = build(&["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        manifest.replace("layers/foo.zip", "layers/gone.zip"),
    )
    .unwrap();
    let output = build(&["--zip"]);
    assert_fails(&output, 1, "cannot read the layer");
    assert!(stderr(&output).contains("gone.zip"), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("Compiling"),
        "{}",
        stderr(&output)
    );
    fs::write(
        dir.join("Cargo.toml"),
        manifest.replace("\nlayers = [\"layers/foo.zip\"]", ""),
    )
    .unwrap();

    fs::create_dir_all(dir.join("lib")).unwrap();
    fs::write(dir.join("lib/libfoo.so.1"), b"\x7fELF").unwrap();
    let output = build(&["--zip", "--include", "lib/"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn binary_with_a_musl_loader() {
    check_with_replaced_binary(
        "muslish",
        "musl-interp",
        "program interpreter /lib/ld-musl-x86_64.so.1 does not exist on provided.al2023",
        "build for `x86_64-unknown-linux-gnu`",
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn binary_for_the_other_architecture() {
    check_with_replaced_binary(
        "otherarch",
        "hello-aarch64",
        "the binary is built for arm64, but the function's architecture is x86_64",
        "build with `--arch x86_64`",
    );
}

// What goes into the zip.

#[test]
fn include_of_a_symlink_that_points_outside() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.pem"), "secret").unwrap();
    let case = Case {
        args: &["--zip", "--include", "ok.txt", "--include", "*.pem"],
        message: "is a symbolic link to",
        help: "",
        ..CASE
    };
    let project = case.project();
    fs::write(project.path().join("ok.txt"), "ok").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.pem"),
        project.path().join("cert.pem"),
    )
    .unwrap();
    let output = case.check_in(project.path());
    assert_stderr_has(&output, "outside the package root");
}

#[test]
fn include_of_a_directory_symlink_that_points_outside() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("id_rsa"), "secret").unwrap();
    let case = Case {
        args: &["--zip", "--include", "config"],
        message: "is a symbolic link to",
        help: "",
        ..CASE
    };
    let project = case.project();
    fs::create_dir_all(project.path().join("config")).unwrap();
    fs::write(project.path().join("config/app.toml"), "x = 1").unwrap();
    std::os::unix::fs::symlink(outside.path(), project.path().join("config/home")).unwrap();
    case.check_in(project.path());
}

// `package BINARY`: a binary built elsewhere, planted in an empty directory beside a previous
// lambda.zip (a missing file, a directory, a `.exe` and a text file are rows of bad_input.toml).

/// `package --zip FILE` in a directory holding a previous lambda.zip and `FILE` with `content`.
fn package_case(file: &str, content: &[u8], extra: &[&str], message: &str, help: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("lambda.zip"), PREVIOUS).unwrap();
    fs::write(dir.path().join(file), content).unwrap();
    let args: Vec<&str> = ["package", "--zip", file]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    Case {
        args: &args,
        message,
        help,
        ..CASE
    }
    .check_in(dir.path());
}

fn elf(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/elf")
            .join(name),
    )
    .unwrap()
}

#[test]
fn package_of_a_mach_o_binary() {
    package_case(
        "handler",
        b"\xcf\xfa\xed\xfe\x0c\x00\x00\x01\x00\x00\x00\x00",
        &[],
        "the file is a mach-o (macos) binary, not an ELF executable",
        "lambda runs linux ELF binaries",
    );
}

#[test]
fn package_of_an_elf_for_another_machine() {
    // The x86_64 binary with its e_machine set to RISC-V's 243.
    let mut riscv = elf("hello-x86_64");
    riscv[18..20].copy_from_slice(&243u16.to_le_bytes());
    package_case(
        "handler",
        &riscv,
        &[],
        "the file is an ELF for risc-v (e_machine 243); lambda runs only x86_64 and arm64",
        "build with `--arch x86_64` or `--arch arm64`",
    );
}

#[test]
fn package_of_the_other_architecture() {
    package_case(
        "handler",
        &elf("hello-aarch64"),
        &["--arch", "x86_64"],
        "the binary is built for arm64, but the function's architecture is x86_64",
        "deploy the function with `--architectures arm64`",
    );
}

#[test]
fn package_of_a_binary_that_needs_a_newer_glibc() {
    package_case(
        "handler",
        &elf("glibc-2.36"),
        &[],
        "the binary requires glibc 2.36, but provided.al2023 has glibc 2.34",
        "to package it anyway, pass `--no-verify`",
    );
}

#[test]
fn package_of_a_binary_that_needs_a_missing_library() {
    package_case(
        "handler",
        &elf("needs-libfoo"),
        &[],
        "the binary needs the shared library libfoo.so.1, which is not on provided.al2023",
        "ship it in the zip under lib/",
    );
}

// What must work.

/// A CPU Lambda has, pinned, is not `native`: `-C target-cpu=neoverse-n1` (Graviton2) for arm64
/// and `x86-64-v3` for x86_64 build and are packaged.
#[test]
fn a_pinned_cpu_lambda_has_builds() {
    let project = crate_with("pinnedcpu", &[("src/main.rs", MAIN)], "");
    // Its own target dir: other flags would make cargo rebuild the shared one back and forth.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pinned-cpu-target");
    for (arch, cpu) in [("x86_64", "x86-64-v3"), ("arm64", "neoverse-n1")] {
        if arch == "arm64" && cross_arch() == "arm64" && !support::arm64_linker() {
            continue;
        }
        let output = lambda_build_command(project.path(), &["--zip", "--arch", arch, "-o", arch])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", format!("-C target-cpu={cpu}"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{arch}: {}", stderr(&output));
        assert!(
            support::stdout(&output).contains(&format!("architecture  {arch}")),
            "{}",
            support::stdout(&output)
        );
        let mut zip = support::read_zip(&project.path().join(arch).join("lambda.zip"));
        assert_eq!(zip.by_index(0).unwrap().name().unwrap(), "bootstrap");
    }
}

/// Spaces and non-ASCII letters in every path the tool touches: the project, `--manifest-path`
/// from elsewhere, and `--outdir`.
#[test]
fn paths_with_spaces_and_non_ascii_letters_work() {
    let project = crate_with("spaced", &[("src/main.rs", MAIN)], "");
    assert!(project.path().to_string_lossy().contains(" ü "));
    let elsewhere = tempfile::tempdir().unwrap();
    let manifest = project.path().join("Cargo.toml");
    let outdir = project.path().join("dist ä/ß ø");
    let output = lambda_build_command(
        elsewhere.path(),
        &[
            "--zip",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--outdir",
            outdir.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let mut zip = support::read_zip(&outdir.join("lambda.zip"));
    assert_eq!(zip.by_index(0).unwrap().name().unwrap(), "bootstrap");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("dist ä/ß ø/lambda.zip"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
