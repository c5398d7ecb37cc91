//! Signals: SIGINT and SIGTERM while cargo compiles and while a large zip is written end the run
//! with 130 / 143, the previous `lambda.zip` intact and no temporary file left; SIGKILL, which
//! no program can catch, at many moments of packaging never leaves a partial `lambda.zip`
//! either: it is always the previous zip or the new one, whole. (The Docker phases are in
//! `docker.rs`.)

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    MAIN, assert_stderr_has, assert_unchanged, crate_with, lambda_build_command, report, stderr,
    temp_files,
};

fn kill(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on a child this test spawned and has not waited for.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// A build script that takes long enough for a signal to arrive mid-compile.
const SLOW_BUILD_RS: &str =
    "fn main() { std::thread::sleep(std::time::Duration::from_secs(20)); }\n";

#[test]
fn interrupted_compile_exits_130_or_143_and_keeps_the_previous_zip() {
    let project = crate_with("slow", &[("src/main.rs", MAIN)], "");
    let output = support::lambda_build(project.path(), &["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let zip = project.path().join("lambda.zip");
    let before = fs::read(&zip).unwrap();

    fs::write(project.path().join("build.rs"), SLOW_BUILD_RS).unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = lambda_build_command(project.path(), &["--zip"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Give cargo time to start the build script, then signal this tool only (a CI runner's
        // SIGTERM does not reach cargo by itself).
        std::thread::sleep(Duration::from_secs(3));
        let started = Instant::now();
        kill(&child, signal);
        let output = child.wait_with_output().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "took {:?} to stop",
            started.elapsed()
        );
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        assert_stderr_has(&output, "error: interrupted");
        assert_unchanged(&zip, &before);
        assert_eq!(temp_files(project.path()), Vec::<String>::new());
    }
}

/// Incompressible bytes (xorshift), so deflating them takes a while.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The size of the included file: large enough that packaging takes a second or more.
const BIG: usize = 16 * 1024 * 1024;

/// A project whose zip includes `data/big.bin`; `SOURCE_DATE_EPOCH` is fixed by the commands, so
/// the zip for given contents is always the same bytes.
fn big_project(name: &str) -> tempfile::TempDir {
    let project = crate_with(name, &[("src/main.rs", MAIN)], "");
    fs::create_dir_all(project.path().join("data")).unwrap();
    project
}

fn packaging(dir: &Path) -> Command {
    let mut command = lambda_build_command(dir, &["--zip", "--include", "data"]);
    command
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdout(Stdio::null());
    command
}

/// Runs to the end with `content` as the big file; returns the zip and how long it took.
fn full_run(dir: &Path, content: &[u8]) -> (Vec<u8>, Duration) {
    fs::write(dir.join("data/big.bin"), content).unwrap();
    let started = Instant::now();
    let output = packaging(dir).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    (fs::read(dir.join("lambda.zip")).unwrap(), started.elapsed())
}

/// Waits until a temporary zip is being written in `dir`, or the child ends.
fn wait_for_temp_file(child: &mut Child, dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if !temp_files(dir).is_empty() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn interrupted_packaging_exits_130_or_143_and_keeps_the_previous_zip() {
    let project = big_project("bigsig");
    let (before, took) = full_run(project.path(), &noise(BIG, 1));
    report(&format!(
        "timing: packaging a zip with {} MiB of noise: {took:.1?}",
        BIG >> 20
    ));
    fs::write(project.path().join("data/big.bin"), noise(BIG, 2)).unwrap();

    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut child = packaging(project.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            wait_for_temp_file(&mut child, project.path()),
            "the run ended before writing a zip"
        );
        let signalled = Instant::now();
        kill(&child, signal);
        let output = child.wait_with_output().unwrap();
        let stopped = signalled.elapsed();
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        assert_stderr_has(&output, "error: interrupted");
        assert!(!stderr(&output).contains("Packaged"), "{}", stderr(&output));
        assert_unchanged(&project.path().join("lambda.zip"), &before);
        assert_eq!(temp_files(project.path()), Vec::<String>::new());
        report(&format!("timing: stopped {stopped:.1?} after the signal"));
        assert!(
            stopped < Duration::from_secs(10),
            "took {stopped:?} to stop"
        );
    }
}

/// How many times SIGKILL lands during packaging.
const KILLS: usize = 24;

#[test]
fn sigkill_during_packaging_never_leaves_a_partial_zip() {
    let project = big_project("bigkill");
    let dir = project.path();
    let contents = [noise(BIG, 3), noise(BIG, 4)];
    let (zip_a, _) = full_run(dir, &contents[0]);
    let (zip_b, took) = full_run(dir, &contents[1]);
    let zips = [zip_a, zip_b];
    assert_ne!(zips[0], zips[1]);

    let mut mid_write = 0;
    for i in 0..KILLS {
        // Write the contents the current zip does not have, so every run has to package.
        let current = fs::read(dir.join("lambda.zip")).unwrap();
        let next = usize::from(current == zips[0]);
        fs::write(dir.join("data/big.bin"), &contents[next]).unwrap();

        // Spread the kills from the start of the run to its end (rename and stamp included),
        // and half of them after the temporary zip appeared, at different depths into it.
        let mut child = packaging(dir).stderr(Stdio::null()).spawn().unwrap();
        let fraction = (i as f64 + 0.5) / KILLS as f64;
        if i % 2 == 0 {
            std::thread::sleep(took.mul_f64(fraction));
        } else if wait_for_temp_file(&mut child, dir) {
            std::thread::sleep(took.mul_f64(fraction / 2.0));
        }
        if !temp_files(dir).is_empty() {
            mid_write += 1;
        }
        kill(&child, libc::SIGKILL);
        let _ = child.wait();

        let after = fs::read(dir.join("lambda.zip")).unwrap();
        assert!(
            after == current || after == zips[next],
            "kill {i}: lambda.zip is neither the previous zip nor the new one ({} bytes)",
            after.len()
        );
    }
    report(&format!(
        "sigkill: {KILLS} kills during packaging ({mid_write} while the temporary zip was \
         being written), lambda.zip whole after each"
    ));
    assert!(
        mid_write >= KILLS / 3,
        "only {mid_write} of {KILLS} kills landed while the zip was written"
    );

    // The next run removes what the killed runs left, and writes a whole zip.
    fs::write(dir.join("data/big.bin"), &contents[0]).unwrap();
    let output = packaging(dir).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::read(dir.join("lambda.zip")).unwrap() == zips[0]);
    assert_eq!(temp_files(dir), Vec::<String>::new());
}

/// A run killed after it renamed its zip leaves its temporary file behind (from an earlier
/// write) while `lambda.zip` is already what the sources make: the next run, with nothing to
/// package, must still remove it.
#[test]
fn a_run_with_nothing_to_package_removes_what_a_killed_run_left() {
    let project = crate_with("stale", &[("src/main.rs", MAIN)], "");
    let dir = project.path();
    let output = support::lambda_build(dir, &["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let before = fs::read(dir.join("lambda.zip")).unwrap();

    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = format!(".lambda.zip.{dead}.Xy12Ab.tmp");
    fs::write(dir.join(&stale), "half a zip").unwrap();
    assert_eq!(temp_files(dir), vec![stale]);

    let output = support::lambda_build(dir, &["--zip"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("Fresh"), "{}", stderr(&output));
    assert_unchanged(&dir.join("lambda.zip"), &before);
    assert_eq!(temp_files(dir), Vec::<String>::new());
}
