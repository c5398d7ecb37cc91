//! `serve --watch` as users drive it, on the echo fixture, in zip mode and in native mode: the
//! first build serves, an edit that compiles is served within a generous bound, an edit that
//! does not compile shows the compiler's error while the last good build keeps serving, editors'
//! temporary files rebuild nothing, and Ctrl-C leaves no process behind; an edit in a path
//! dependency outside the package rebuilds; `-p` at a workspace root serves that package.
//! Builds share the fixture target dir, so only the edited crate recompiles.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support;

/// Generous: a loaded CI machine recompiles the echo crate in release in tens of seconds.
const BOUND: Duration = Duration::from_secs(300);

fn get(url: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent.get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// A running `serve --watch`, its output in files.
struct Watching {
    child: Child,
    err: PathBuf,
    url: String,
    _logs: tempfile::TempDir,
}

impl Watching {
    fn start(dir: &Path, args: &[&str]) -> Watching {
        let logs = tempfile::tempdir().unwrap();
        let (out, err) = (logs.path().join("out"), logs.path().join("err"));
        let child = support::tool()
            .args(["serve", "--watch", "--port", "0"])
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", support::fixture_target_dir())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut watching = Watching {
            child,
            err,
            url: String::new(),
            _logs: logs,
        };
        watching.url = watching.wait_for("the address on stdout", || {
            fs::read_to_string(&out)
                .ok()?
                .lines()
                .next()
                .map(str::to_owned)
        });
        assert!(
            watching.url.starts_with("http://127.0.0.1:"),
            "{}",
            watching.url
        );
        watching
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn wait_for<T>(&mut self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let until = Instant::now() + BOUND;
        loop {
            if let Some(found) = probe() {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "serve --watch exited ({status}) while waiting for {what}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < until,
                "no {what} within {BOUND:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the answer contains `text`; returns it.
    fn answer_with(&mut self, text: &str) -> String {
        let url = self.url.clone();
        self.wait_for(&format!("an answer with `{text}`"), || {
            get(&url).filter(|answer| answer.contains(text))
        })
    }

    /// Ctrl-C: exit code 130, and no process of the ones it started is left.
    fn interrupt(mut self) {
        let below = descendants(self.child.id());
        assert!(!below.is_empty(), "the function runs below serve --watch");
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let until = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < until,
                "serve --watch did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(130), "{}", self.stderr());
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<u32> = below.into_iter().filter(|p| alive(*p)).collect();
        assert!(left.is_empty(), "processes left: {left:?}");
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            support::child::stop(&mut self.child, libc::SIGINT, Duration::from_secs(10));
        }
    }
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

/// How many builds the loop started after the first.
fn rebuilds(stderr: &str) -> usize {
    stderr.matches("Rebuilding").count()
}

/// The loop on the echo fixture, with `args` (`--native`, or none for zip mode): served, an
/// edit served anew, temporary files rebuilding nothing, a broken edit leaving the last good
/// build serving, Ctrl-C leaving nothing behind. Returns the whole stderr.
fn edit_loop(args: &[&str]) -> String {
    let project = support::copy_fixture("echo");
    let mut watching = Watching::start(project.path(), args);
    assert_eq!(
        watching.answer_with("hello"),
        r#"{"message":"hello, "}"#,
        "{}",
        watching.stderr()
    );

    // What editors and `sed -i` leave beside a source rebuilds nothing.
    let src = project.path().join("src");
    for name in [
        "main.rs.tmp",
        "sedAb12Cd",
        "4913",
        "main.rs~",
        ".main.rs.swp",
        ".#main.rs",
    ] {
        fs::write(src.join(name), "x").unwrap();
    }
    fs::write(project.path().join("notes.tmp"), "x").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for name in ["main.rs.tmp", "sedAb12Cd", "4913"] {
        fs::remove_file(src.join(name)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rebuilds(&watching.stderr()),
        0,
        "temporary files rebuilt:\n{}",
        watching.stderr()
    );

    let main = src.join("main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let edited = Instant::now();
    fs::write(&main, source.replace("\"hello, {}\"", "\"howdy, {}\"")).unwrap();
    watching.answer_with("howdy");
    // The loop's edit-to-serving time, for the record (cargo test -- --nocapture).
    eprintln!(
        "serve --watch {args:?}: edit to serving in {:.1} s",
        edited.elapsed().as_secs_f64()
    );

    fs::write(
        &main,
        source.replace("async fn handler", "async fn handler("),
    )
    .unwrap();
    let err = watching.err.clone();
    watching.wait_for("the compile error", || {
        fs::read_to_string(&err)
            .ok()?
            .contains("the build failed: the last good build keeps serving")
            .then_some(())
    });
    let log = watching.stderr();
    assert!(log.contains("error: "), "{log}");
    assert!(
        log.contains("src/main.rs"),
        "the compiler's error names the file:\n{log}"
    );
    assert_eq!(
        get(&watching.url).as_deref(),
        Some(r#"{"message":"howdy, "}"#)
    );
    // The zip that ships is `cargo lambda-build --zip`'s: the loop writes none in the project.
    assert!(!project.path().join("lambda.zip").exists());
    let log = watching.stderr();
    watching.interrupt();
    log
}

#[test]
fn an_edit_is_served_a_broken_one_is_not_and_ctrl_c_leaves_nothing() {
    let log = edit_loop(&[]);
    assert!(log.contains("compiled incrementally"), "{log}");
    assert!(
        log.contains("lambda-build/watch/x86_64/lambda.zip"),
        "{log}"
    );
}

#[test]
fn native_mode_serves_edits_and_says_on_each_status_line_that_it_is_not_the_zip() {
    let log = edit_loop(&["--native"]);
    let ours = [
        "Watching",
        "Building",
        "Built",
        "Serving",
        "Rebuilding",
        "Rebuilt",
        "Finished",
    ];
    let mut seen = 0;
    for line in log.lines() {
        let verb = line.split_whitespace().next().unwrap_or_default();
        // cargo's own `Finished` line ends with its time; ours with the note.
        if ours.contains(&verb) && !line.contains("profile [") {
            assert!(
                line.ends_with("(native build, not the shipped zip)"),
                "{line}\n{log}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 6, "{log}");
    assert!(
        !log.contains("Packaged"),
        "native mode zips nothing:\n{log}"
    );
}

/// A function that depends on `../shared` (a path dependency outside the package and its
/// workspace): an edit there is served.
#[test]
fn an_edit_in_a_path_dependency_outside_the_package_rebuilds() {
    let root = tempfile::tempdir().unwrap();
    let function = root.path().join("functions/echo");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo"),
        &function,
    );
    let shared = root.path().join("shared");
    fs::create_dir_all(shared.join("src")).unwrap();
    fs::write(
        shared.join("Cargo.toml"),
        "[package]\nname = \"shared\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    let lib = shared.join("src/lib.rs");
    fs::write(&lib, "pub const GREETING: &str = \"hello\";\n").unwrap();
    let manifest = function.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace(
            "[dependencies]\n",
            "[dependencies]\nshared = { path = \"../../shared\" }\n",
        ),
    )
    .unwrap();
    let main = function.join("src/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        text.replace(
            "format!(\"hello, {}\", event.payload.name)",
            "format!(\"{}, {}\", shared::GREETING, event.payload.name)",
        ),
    )
    .unwrap();

    let mut watching = Watching::start(&function, &[]);
    watching.answer_with("hello");
    let log = watching.stderr();
    assert!(
        log.contains(&format!("{}", shared.display())),
        "the path dependency is watched:\n{log}"
    );
    fs::write(&lib, "pub const GREETING: &str = \"bonjour\";\n").unwrap();
    assert_eq!(
        watching.answer_with("bonjour"),
        r#"{"message":"bonjour, "}"#
    );
    assert_eq!(rebuilds(&watching.stderr()), 1, "{}", watching.stderr());
}

/// At a workspace root of two functions, `serve --watch` is refused with the way out, at once;
/// `-p beta` serves beta.
#[test]
fn at_a_workspace_root_p_chooses_the_function() {
    let project = support::copy_fixture("workspace");
    let output = support::tool()
        .args(["serve", "--watch", "--port", "0"])
        .current_dir(project.path())
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    support::assert_stderr_has(&output, "choose one with `-p`");
    assert!(!support::stderr(&output).contains("Compiling"));

    let mut watching = Watching::start(project.path(), &["-p", "beta"]);
    assert_eq!(
        watching.answer_with("beta"),
        r#"{"function":"beta","message":"hello, "}"#
    );
}
