//! Small throwaway crates with no dependencies (they build in a second or two, in one shared
//! target dir), the tool run on them, and what a user checks about a failed run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `main` that prints a line.
pub const MAIN: &str = "fn main() { println!(\"hello from bootstrap\"); }\n";

/// One target dir for every scratch crate, so the std-only builds stay quick.
fn scratch_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-target")
}

/// A crate named `name` with the given files (path, content) and Cargo.toml extra lines, in a
/// directory whose name has spaces and a non-ASCII letter (so every test covers such paths).
pub fn crate_with(name: &str, files: &[(&str, &str)], manifest_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("lambda build ü ")
        .tempdir()
        .unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{manifest_extra}\n[workspace]\n"
        ),
    )
    .unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

/// `cargo-lambda-build lambda-build ARGS` in `dir`, with the scratch target dir.
pub fn lambda_build_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = super::tool();
    command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", scratch_target_dir());
    command
}

pub fn lambda_build(dir: &Path, args: &[&str]) -> Output {
    lambda_build_command(dir, args)
        .output()
        .expect("runs cargo-lambda-build")
}

/// The exit code, `message` on the line that starts with `error: `, and no panic or backtrace of
/// the tool's own (a build script's panic is the project's, and cargo shows it, indented).
pub fn assert_fails(output: &Output, code: i32, message: &str) {
    let err = super::stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{err}");
    assert!(
        err.lines()
            .any(|line| line.starts_with("error: ") && line.contains(message)),
        "expected an `error: ` line with `{message}` in:\n{err}"
    );
    // cargo indents what a build script prints; the tool's own panic would start a line.
    assert!(
        !err.lines().any(
            |line| (line.starts_with("thread '") && line.contains("panicked"))
                || line.starts_with("stack backtrace")
        ),
        "{err}"
    );
}

/// A refusal as users should see it: exit `code`, and stderr ending in the tool's one `error:`
/// line, containing `problem`, followed only by `help:` lines, one containing `fix`; no panic
/// or backtrace. (cargo's own `error:` lines, passed on, come before.) Returns stderr.
pub fn assert_refused(output: &Output, code: i32, problem: &str, fix: &str) -> String {
    assert_fails(output, code, problem);
    let err = super::stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        lines[at].contains(problem),
        "`{problem}` is not on the last `error:` line:\n{err}"
    );
    let after = &lines[at + 1..];
    assert!(
        !after.is_empty() && after.iter().all(|l| l.starts_with("help: ")),
        "the error is not one line followed by `help:` lines:\n{err}"
    );
    assert!(
        after.iter().any(|l| l.contains(fix)),
        "no `help:` line with `{fix}`:\n{err}"
    );
    err
}

pub fn assert_unchanged(zip: &Path, before: &[u8]) {
    assert!(
        fs::read(zip).unwrap() == before,
        "`{}` changed",
        zip.display()
    );
}

/// The temporary files a write leaves beside its artifact (`.lambda.zip.<pid>.<random>.tmp`).
pub fn temp_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
        .collect()
}

/// Runs a program this test process has just written (extracted from a zip). Another test thread
/// that forks while the file is still open for writing holds it open until its own exec, and
/// running the file then fails with ETXTBSY (rust-lang/rust#114554): that is retried.
pub fn output_of_written(program: &Path) -> Output {
    for _ in 0..50 {
        match Command::new(program).output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            ran => return ran.unwrap_or_else(|e| panic!("run {}: {e}", program.display())),
        }
    }
    panic!("{} stayed busy for a second", program.display())
}

pub fn read_zip(path: &Path) -> zip::ZipArchive<fs::File> {
    zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap()
}

/// A measurement for the CI log: written to the real stderr, which the test harness does not
/// capture (`eprintln!` output is shown only for failing tests).
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn report_time(what: &str, elapsed: std::time::Duration) {
    report(&format!("timing: {what}: {elapsed:.1?}"));
}

/// `e_machine` values: what an ELF was built for.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// The `e_machine` of the ELF file at `path`.
pub fn elf_machine(path: &Path) -> u16 {
    elf_machine_of(&fs::read(path).unwrap())
}

/// The `e_machine` of an ELF header (its first 20 bytes or more).
pub fn elf_machine_of(header: &[u8]) -> u16 {
    assert_eq!(&header[..4], b"\x7fELF", "not an ELF");
    u16::from_le_bytes([header[18], header[19]])
}

/// Every one of `needed` is among `names` (a zip's entries, a package's files); the failure
/// names all that are missing at once, not the first.
pub fn assert_lists_all(names: &[String], needed: &[&str]) {
    let missing: Vec<&&str> = needed
        .iter()
        .filter(|n| !names.iter().any(|name| name == *n))
        .collect();
    assert!(missing.is_empty(), "{missing:?} missing from {names:?}");
}
