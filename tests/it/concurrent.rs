//! Two runs of the tool on one project at the same time, as a CI runner with parallel jobs or a
//! developer with a watch loop and a terminal does: both succeed, and each artifact is whole and
//! right. (The `--docker` pairs are in `docker.rs`.)

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use support::{
    EM_AARCH64, EM_X86_64, crate_with, lambda_build_command, read_zip, stderr, temp_files,
};

/// Starts both commands before waiting for either.
fn at_once(mut a: Command, mut b: Command) -> (Output, Output) {
    let a = a.spawn().unwrap();
    let b = b.spawn().unwrap();
    (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
}

fn build(dir: &Path, args: &[&str]) -> Command {
    let mut command = lambda_build_command(dir, args);
    command
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

fn main_printing(text: &str) -> String {
    format!("fn main() {{ println!(\"{text}\"); }}\n")
}

/// `e_machine` of the ELF `bootstrap` in `zip`.
fn zipped_machine(zip: &Path) -> u16 {
    use std::io::Read;
    let mut archive = read_zip(zip);
    let mut bootstrap = archive.by_name("bootstrap").unwrap();
    assert_eq!(bootstrap.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut header = [0u8; 20];
    bootstrap.read_exact(&mut header).unwrap();
    support::elf_machine_of(&header)
}

/// Whether arm64 can be linked here; skips (or fails in CI) when not.
#[test]
fn same_project_and_architecture_twice_at_once() {
    let project = crate_with("twice", &[("src/main.rs", &main_printing("v0"))], "");
    fs::write(project.path().join("notes.txt"), "included").unwrap();
    let args = ["--zip", "--include", "notes.txt"];
    // Three rounds, each on changed source, so both runs compile and package every time.
    for round in 1..=3 {
        let text = format!("round {round}");
        fs::write(project.path().join("src/main.rs"), main_printing(&text)).unwrap();
        let (a, b) = at_once(build(project.path(), &args), build(project.path(), &args));
        for output in [&a, &b] {
            assert!(output.status.success(), "round {round}: {}", stderr(output));
        }
        let zip = project.path().join("lambda.zip");
        let bytes = fs::read(&zip).unwrap();
        // Whole, and the program of this round.
        let unpacked = tempfile::tempdir().unwrap();
        read_zip(&zip).extract(unpacked.path()).unwrap();
        let ran = support::output_of_written(&unpacked.path().join("bootstrap"));
        assert_eq!(String::from_utf8_lossy(&ran.stdout), format!("{text}\n"));
        assert_eq!(
            fs::read_to_string(unpacked.path().join("notes.txt")).unwrap(),
            "included"
        );
        assert_eq!(temp_files(project.path()), Vec::<String>::new());
        // Both wrote the same bytes, and a third run finds nothing to do.
        let again = build(project.path(), &args).output().unwrap();
        assert!(again.status.success(), "{}", stderr(&again));
        assert!(stderr(&again).contains("Fresh"), "{}", stderr(&again));
        assert!(fs::read(&zip).unwrap() == bytes);
    }
}

#[test]
fn same_project_for_both_architectures_at_once() {
    if !support::arm64_linker() {
        return;
    }
    let project = crate_with("botharch", &[("src/main.rs", &main_printing("v0"))], "");
    for round in 1..=2 {
        fs::write(
            project.path().join("src/main.rs"),
            main_printing(&format!("round {round}")),
        )
        .unwrap();
        let (x86, arm) = at_once(
            build(project.path(), &["--zip", "--arch", "x86_64", "-o", "x86"]),
            build(project.path(), &["--zip", "--arch", "arm64", "-o", "arm"]),
        );
        assert!(x86.status.success(), "x86_64: {}", stderr(&x86));
        assert!(arm.status.success(), "arm64: {}", stderr(&arm));
        assert_eq!(
            zipped_machine(&project.path().join("x86/lambda.zip")),
            EM_X86_64
        );
        assert_eq!(
            zipped_machine(&project.path().join("arm/lambda.zip")),
            EM_AARCH64
        );
    }
}

/// Two architectures into one outdir at once: the zip that stays is one of the two, whole (the
/// later rename wins), never a mix.
#[test]
fn both_architectures_into_one_outdir_leave_one_whole_zip() {
    if !support::arm64_linker() {
        return;
    }
    let project = crate_with("onedir", &[("src/main.rs", &main_printing("x"))], "");
    let (x86, arm) = at_once(
        build(project.path(), &["--zip", "--arch", "x86_64"]),
        build(project.path(), &["--zip", "--arch", "arm64"]),
    );
    assert!(x86.status.success(), "x86_64: {}", stderr(&x86));
    assert!(arm.status.success(), "arm64: {}", stderr(&arm));
    let machine = zipped_machine(&project.path().join("lambda.zip"));
    assert!(
        [EM_X86_64, EM_AARCH64].contains(&machine),
        "e_machine {machine}"
    );
    assert_eq!(temp_files(project.path()), Vec::<String>::new());
}
