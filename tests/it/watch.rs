//! `serve --watch` on the echo fixture: the first build serves, an edit that compiles is served
//! within a generous bound, an edit that does not compile shows the compiler's error while the
//! last good build keeps serving, and Ctrl-C leaves no process behind. Builds share the fixture
//! target dir, so only the edited crate recompiles.

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support;

/// Generous: a loaded CI machine recompiles the echo crate in release in tens of seconds.
const BOUND: Duration = Duration::from_secs(300);

fn wait_for<T>(what: &str, child: &mut Child, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + BOUND;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve --watch exited ({status}) while waiting for {what}");
        }
        assert!(Instant::now() < until, "no {what} within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get(url: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent.get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// The processes below `pid`, by their parent links in /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let parent_of = |p: u32| -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut found = vec![pid];
    let mut grew = true;
    while grew {
        grew = false;
        for p in &all {
            if !found.contains(p) && parent_of(*p).is_some_and(|pp| found.contains(&pp)) {
                found.push(*p);
                grew = true;
            }
        }
    }
    found.retain(|p| *p != pid);
    found
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn an_edit_is_served_a_broken_one_is_not_and_ctrl_c_leaves_nothing() {
    let project = support::copy_fixture("echo");
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("out"), logs.path().join("err"));
    let mut child = support::tool()
        .args(["serve", "--watch", "--port", "0"])
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let stderr = || fs::read_to_string(&err).unwrap_or_default();
    let url = wait_for("address on stdout", &mut child, || {
        fs::read_to_string(&out)
            .ok()?
            .lines()
            .next()
            .map(str::to_owned)
    });
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let first = wait_for("first build served", &mut child, || get(&url));
    assert_eq!(first, r#"{"message":"hello, "}"#, "{}", stderr());

    let main = project.path().join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let edited = Instant::now();
    fs::write(&main, source.replace("\"hello, {}\"", "\"howdy, {}\"")).unwrap();
    wait_for("the edit served", &mut child, || {
        get(&url).filter(|answer| answer.contains("howdy"))
    });
    // The loop's edit-to-serving time, for the record (cargo test -- --nocapture).
    eprintln!(
        "serve --watch: edit to serving in {:.1} s",
        edited.elapsed().as_secs_f64()
    );

    fs::write(
        &main,
        source.replace("async fn handler", "async fn handler("),
    )
    .unwrap();
    wait_for("the compile error", &mut child, || {
        stderr()
            .contains("the build failed: the last good build keeps serving")
            .then_some(())
    });
    let log = stderr();
    assert!(log.contains("error: "), "{log}");
    assert!(
        log.contains("src/main.rs"),
        "the compiler's error names the file:\n{log}"
    );
    assert_eq!(get(&url).as_deref(), Some(r#"{"message":"howdy, "}"#));

    let below = descendants(child.id());
    assert!(!below.is_empty(), "the function runs below serve --watch");
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < until,
            "serve --watch did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "{}", stderr());
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<u32> = below.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(!Path::new(&url).exists());
}
