//! `serve --watch`: build the package, serve what was built, and build again when a source
//! changes. A build that succeeds replaces the served function between two requests; one that
//! fails (a compile error, a failed check) leaves the last good build serving.
//!
//! Above both the build ([`crate::build_with`], the same path as `cargo lambda-build --zip`) and
//! the HTTP front ([`serve_function`]): it only sequences them. Files are watched with `notify`
//! (inotify on Linux), debounced so that an editor's burst of writes is one rebuild; builds run
//! on their own thread while the function keeps serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime};

use cargo_metadata::{Metadata, PackageId};
use notify_debouncer_mini::notify::RecursiveMode;

use crate::cli::{BuildArgs, Cli, ServeArgs};
use crate::env::{Env, Ui};
use crate::error::{Error, Result};
use crate::invoke::front::Front;
use crate::invoke::serve::{self, ServeConfig, serve_function};
use crate::report::Reporter;
use crate::signal::Interrupt;

/// Writes closer together than this are one change: an editor's save is often several.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What `--zip` writes into the outdir for a package of one function.
const ZIP_NAME: &str = crate::lambda::ZIP_NAME;

/// How often the waiting loops look at Ctrl-C.
const TICK: Duration = Duration::from_millis(50);

/// `cargo lambda-build serve --watch`.
pub fn run(args: ServeArgs, env: &Env, ui: Ui) -> Result<()> {
    crate::invoke::check_host("serve")?;
    let interrupt = Interrupt::register()
        .map_err(|e| anyhow::anyhow!("cannot install a signal handler: {e}"))?;
    let outdir = env.cwd.join(args.outdir.clone().unwrap_or_default());
    let build_args = build_args(&outdir)?;
    let config = ServeConfig {
        artifact: outdir.join(ZIP_NAME),
        addr: std::net::SocketAddr::new(args.bind, args.port),
        format: args.event_format.into(),
        function: crate::invoke::function_settings(args.function, env)?,
    };
    // Listening first: a port in use is refused before anything is built.
    let front = Front::bind(config.addr)?;
    serve::announce(&front)?;

    let manifest = crate::project::locate_manifest(None, &env.cwd)?;
    let metadata = crate::project::metadata(&env.cargo, &manifest, &env.cwd)?;
    let sources = watched_dirs(&metadata, &manifest);
    let ignore = Ignore {
        target_dir: metadata.target_directory.clone().into_std_path_buf(),
        outdir: outdir.clone(),
    };
    let reporter = Reporter::plain(ui);
    let (events, changes) = channel();
    let mut debouncer = notify_debouncer_mini::new_debouncer(DEBOUNCE, events)
        .map_err(|e| anyhow::anyhow!("cannot watch the sources: {e}"))?;
    for dir in &sources {
        debouncer
            .watcher()
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|e| anyhow::anyhow!("cannot watch `{}`: {e}", dir.display()))?;
    }
    reporter.status(
        "Watching",
        sources
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );

    let build = |why: &str| -> bool {
        let started = Instant::now();
        match crate::build_with(build_args.clone(), env, ui, &interrupt) {
            Ok(()) => {
                reporter.status(
                    "Rebuilt",
                    format!("{why} in {:.1} s", started.elapsed().as_secs_f64()),
                );
                true
            }
            Err(Error::Interrupted(_)) => false,
            Err(error) => {
                error.print(ui.color);
                reporter.warn(if config.artifact.is_file() {
                    "the build failed: the last good build keeps serving"
                } else {
                    "the build failed: nothing to serve until a change builds"
                });
                false
            }
        }
    };

    // Set by the builder when a new build is ready to serve; the server swaps it in.
    let fresh = &AtomicBool::new(false);
    let stop = &AtomicBool::new(false);
    let build = &build;
    let ignore = &ignore;
    let interrupt = &interrupt;
    let artifact = config.artifact.as_path();
    let served = std::thread::scope(|scope| {
        let builder = scope.spawn(move || {
            let mut last_build = SystemTime::now();
            if build("the package") && artifact.is_file() {
                fresh.store(true, Ordering::SeqCst);
            }
            while !stop.load(Ordering::SeqCst) && interrupt.received().is_none() {
                let changed = match changes.recv_timeout(TICK) {
                    Ok(Ok(events)) => events
                        .into_iter()
                        .filter(|e| !ignore.ignores(&e.path) && modified_since(&e.path, last_build))
                        .map(|e| e.path)
                        .collect::<Vec<_>>(),
                    Ok(Err(_)) | Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                let Some(first) = changed.first() else {
                    continue;
                };
                let why = match changed.len() {
                    1 => format!("`{}` changed", first.display()),
                    n => format!("`{}` and {} more changed", first.display(), n - 1),
                };
                last_build = SystemTime::now();
                let before = written_at(artifact);
                // A build that changed nothing leaves the zip as it was (`Fresh`): the served
                // function stays warm.
                if build(&why) && written_at(artifact) != before {
                    fresh.store(true, Ordering::SeqCst);
                }
            }
        });
        let result = serve_builds(&front, &config, &reporter, ui, interrupt, fresh);
        stop.store(true, Ordering::SeqCst);
        let _ = builder.join();
        result
    });
    drop(debouncer);
    served
}

/// Whether `path` was written (or removed) since `since`. inotify also reports files that are
/// only opened, as cargo opens every Cargo.toml at each build: without this, each build would
/// start the next.
/// A directory's own change (an entry created or renamed in it) is not one: its files report
/// theirs.
fn modified_since(path: &Path, since: SystemTime) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => false,
        Ok(meta) => meta.modified().is_ok_and(|modified| modified >= since),
        Err(_) => !path.exists(),
    }
}

fn written_at(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Serves the newest good build until Ctrl-C, swapping in each new one as it comes.
fn serve_builds(
    front: &Front,
    config: &ServeConfig,
    reporter: &Reporter,
    ui: Ui,
    interrupt: &Interrupt,
    fresh: &AtomicBool,
) -> Result<()> {
    loop {
        while !fresh.swap(false, Ordering::SeqCst) {
            interrupt.check()?;
            std::thread::sleep(TICK);
        }
        // Extracted into the sandbox at start: the next build may rewrite the zip meanwhile.
        serve_function(
            front,
            &config.artifact,
            config,
            reporter,
            ui.verbosity,
            interrupt,
            &|| fresh.load(Ordering::SeqCst),
        )?;
        fresh.store(true, Ordering::SeqCst);
    }
}

/// `cargo lambda-build --zip -o OUTDIR` as the build's own parser reads it: the package's
/// settings (Cargo.toml, `CARGO_LAMBDA_BUILD_*`) apply as to any build.
fn build_args(outdir: &Path) -> Result<BuildArgs> {
    let Cli::LambdaBuild(args) = Cli::try_parse_from([
        "cargo".as_ref(),
        "lambda-build".as_ref(),
        "--zip".as_ref(),
        "--outdir".as_ref(),
        outdir.as_os_str(),
    ])
    .map_err(|e| anyhow::anyhow!("cannot prepare the build's arguments: {e}"))?;
    Ok(args)
}

/// The directories whose changes rebuild: the package at `manifest` (every member, for a
/// virtual workspace manifest) and the local packages it depends on, through any depth:
/// the path dependencies, which cargo would rebuild too. Registry and git dependencies do not
/// change under the user's hands.
pub fn watched_dirs(metadata: &Metadata, manifest: &Path) -> Vec<PathBuf> {
    let roots: Vec<&PackageId> = match metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path() == manifest)
    {
        Some(package) => vec![&package.id],
        None => metadata.workspace_members.iter().collect(),
    };
    let mut seen: Vec<&PackageId> = Vec::new();
    let mut queue = roots;
    while let Some(id) = queue.pop() {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        if let Some(node) = metadata
            .resolve
            .as_ref()
            .and_then(|r| r.nodes.iter().find(|n| &n.id == id))
        {
            queue.extend(node.dependencies.iter());
        }
    }
    let mut dirs: Vec<PathBuf> = metadata
        .packages
        .iter()
        .filter(|p| p.source.is_none() && seen.contains(&&p.id))
        .filter_map(|p| {
            p.manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    // A package inside another's directory is already watched through it.
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|other| other != d && d.starts_with(other)));
    dirs
}

/// What changes under the watched directories without being a source: the build's own
/// outputs, hidden files (`.git`, editors' swap files, the tool's temporary files).
struct Ignore {
    target_dir: PathBuf,
    outdir: PathBuf,
}

impl Ignore {
    fn ignores(&self, path: &Path) -> bool {
        if path.starts_with(&self.target_dir) {
            return true;
        }
        let hidden = path.components().any(|c| {
            let name = c.as_os_str().to_string_lossy();
            (name.starts_with('.') && name != "." && name != "..") || name == "target"
        });
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let artifact = path.parent() == Some(&self.outdir)
            && (name == ZIP_NAME || name == crate::lambda::BOOTSTRAP);
        hidden || artifact || name.ends_with('~')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_hidden_files_do_not_rebuild() {
        let ignore = Ignore {
            target_dir: PathBuf::from("/p/target"),
            outdir: PathBuf::from("/p"),
        };
        for path in [
            "/p/target/release/x",
            "/p/lambda.zip",
            "/p/bootstrap",
            "/p/.git/index",
            "/p/src/.main.rs.swp",
            "/p/src/main.rs~",
            "/p/.lambda.zip.tmp123",
            "/p/dep/target/debug/x",
        ] {
            assert!(ignore.ignores(Path::new(path)), "{path}");
        }
        for path in ["/p/src/main.rs", "/p/Cargo.toml", "/p/src/bin/bootstrap.rs"] {
            assert!(!ignore.ignores(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn build_args_are_a_zip_build_into_the_outdir() {
        let args = build_args(Path::new("/tmp/out dir")).unwrap();
        assert!(args.zip);
        assert_eq!(args.outdir.as_deref(), Some(Path::new("/tmp/out dir")));
        assert!(args.command.is_none());
    }
}
