//! `serve --watch`: build the selected function, serve what was built, and build again when a
//! source changes. A build that succeeds replaces the served function between two requests; one
//! that fails (a compile error, a failed check) leaves the last good build serving.
//!
//! Two kinds of build, one loop:
//! - zip mode (the default): the build of `cargo lambda-build --zip` (Lambda's target, linker,
//!   checks and zip), with incremental compilation on, which the shipped build leaves off. cargo
//!   keeps both builds side by side in the target dir (the profile differs, so the unit does),
//!   sharing every dependency; the watch's zip is written under
//!   `<target-dir>/lambda-build/watch/`, so the zip that ships never gets its bytes.
//! - native mode (`--native`): plain `cargo build` for this machine ([`crate::native`]).
//!
//! Above both the builds ([`crate::build_in`], [`crate::native`]) and the HTTP front
//! ([`serve_function`]): it only sequences them. The workspace is read once (one `cargo
//! metadata`, with the dependency graph, whose path dependencies are watched too) and again only
//! when a manifest changes. Files are watched with `notify` (inotify on Linux, FSEvents on
//! macOS), debounced so that an editor's burst of writes is one rebuild; [`filter`] leaves out
//! what is no source. Builds run on their own thread while the function keeps serving.

mod filter;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime};

use cargo_metadata::{DependencyKind, Metadata, PackageId};
use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer};

use crate::cli::{BuildArgs, SelectionArgs, ServeArgs};
use crate::env::{Env, Ui};
use crate::error::{Error, Result};
use crate::invoke::front::Front;
use crate::invoke::serve::{self, ServeConfig, serve_function};
use crate::native;
use crate::plan::BuildPlan;
use crate::project::{self, Workspace};
use crate::report::Reporter;
use crate::signal::Interrupt;

use filter::Filter;

/// Writes closer together than this are one change: an editor's save is often several.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// How often the waiting loops look at Ctrl-C.
const TICK: Duration = Duration::from_millis(50);

/// `cargo lambda-build serve --watch [--native]`.
pub fn run(args: ServeArgs, env: &Env, ui: Ui) -> Result<()> {
    if args.native {
        crate::invoke::check_native_host("serve")?;
    }
    let interrupt = Interrupt::register()
        .map_err(|e| anyhow::anyhow!("cannot install a signal handler: {e}"))?;
    let reporter = if args.native {
        Reporter::new(ui).noting(native::NOTE)
    } else {
        Reporter::new(ui)
    };
    // The zip runs as the packaged function (in a container with --docker, and on macOS); a
    // native build runs here.
    let mut function = if args.native {
        let lookup = |key: &str| env.var(key).map(str::to_owned);
        crate::invoke::function_settings(args.function, &lookup, &env.cwd)?
    } else {
        crate::invoke::packaged_function_settings(args.function, env)?
    };
    // Listening first: a port in use is refused before anything is built.
    let front = Front::bind(args.bind, args.port)?;
    serve::announce(&front)?;

    let manifest = project::locate_manifest(args.selection.manifest_path.as_deref(), &env.cwd)?;
    let workspace = read_workspace(&args.selection, manifest, env)?;
    // cargo's target dir as `cargo metadata` knows it, and `--target-dir`'s: the builds'
    // outputs, which must not start the next build.
    let mut target_dirs = vec![
        workspace
            .metadata
            .target_directory
            .clone()
            .into_std_path_buf(),
    ];
    target_dirs.extend(args.selection.target_dir.as_ref().map(|d| env.cwd.join(d)));
    // Decided before the first build: a selection that names no single function is refused
    // here, rather than leaving a server with nothing to serve.
    let builder = Builder::decide(args.selection, args.native, &workspace, env, ui)?;
    function.add_settings(&builder.run)?;
    let config = ServeConfig {
        // Each build's artifact is passed to `serve_function` as it comes.
        artifact: PathBuf::new(),
        addr: front.addr,
        format: args.event_format.into(),
        function,
    };

    let (events, changes) = channel();
    let debouncer = notify_debouncer_mini::new_debouncer(DEBOUNCE, events)
        .map_err(|e| anyhow::anyhow!("cannot watch the sources: {e}"))?;
    let mut watch = Watch {
        debouncer,
        changes,
        sources: Sources::default(),
        filter: Filter::new(target_dirs),
    };
    watch.follow(
        Sources::of(&workspace.metadata, &builder.manifest),
        &reporter,
    )?;
    reporter.status("Watching", builder.describe(&workspace));

    // The build to serve next, set by the builder and taken by the server between requests.
    let next: &Mutex<Option<PathBuf>> = &Mutex::new(None);
    let stop = &AtomicBool::new(false);
    let (interrupt, reporter) = (&interrupt, &reporter);
    std::thread::scope(|scope| {
        let cx = Context {
            env,
            ui,
            interrupt,
            reporter,
        };
        let building = scope.spawn(move || builder.run(watch, workspace, cx, next, stop));
        let result = serve_builds(&front, &config, reporter, ui, interrupt, next);
        stop.store(true, Ordering::SeqCst);
        let _ = building.join();
        result
    })
}

/// The workspace, read with its dependency graph (the path dependencies are watched), with
/// the lock flags the build gets.
fn read_workspace(selection: &SelectionArgs, manifest: PathBuf, env: &Env) -> Result<Workspace> {
    let flags: Vec<&str> = [
        (selection.locked, "--locked"),
        (selection.offline, "--offline"),
        (selection.frozen, "--frozen"),
    ]
    .into_iter()
    .filter_map(|(on, flag)| on.then_some(flag))
    .collect();
    Ok(Workspace::resolved(&env.cargo, manifest, &env.cwd, &flags)?)
}

/// What every build of the loop runs with.
#[derive(Clone, Copy)]
struct Context<'a> {
    env: &'a Env,
    ui: Ui,
    interrupt: &'a Interrupt,
    reporter: &'a Reporter,
}

/// What the loop builds, decided once from the selection.
struct Builder {
    selection: SelectionArgs,
    mode: Mode,
    /// The served package's manifest: its directory and its path dependencies are watched.
    manifest: PathBuf,
    /// The artifact served last and its stamp: a build that leaves it as it was is not served
    /// again, so the function stays warm.
    served: Option<(PathBuf, Option<Stamp>)>,
    /// What the settings say of running the function (`env`, `concurrency`).
    run: crate::config::RunSettings,
}

/// When a file was written, and its size.
type Stamp = (SystemTime, u64);

enum Mode {
    /// `cargo lambda-build --zip` into the watch's own outdir, compiled incrementally.
    Zip { args: Box<BuildArgs>, zip: PathBuf },
    /// Plain `cargo build` for this machine; its executable is served as it is.
    Native,
}

impl Builder {
    fn decide(
        selection: SelectionArgs,
        native: bool,
        workspace: &Workspace,
        env: &Env,
        ui: Ui,
    ) -> Result<Builder> {
        let (manifest, mode, run) = if native {
            let plan = native::plan(&selection, Some(workspace), env, ui, "serve")?;
            (plan.function.manifest_path, Mode::Native, plan.function.run)
        } else {
            let args = native::build_args(&selection, None)?;
            let (config, plan) = crate::plan_build(args, Some(workspace), env, ui)?;
            native::one_function(&config, &plan, "serve")?;
            // Planned again with the watch's outdir, for the zip's path as the build has it.
            let args = native::build_args(&selection, Some(&watch_dir(&plan)))?;
            let (config, plan) = crate::plan_build(args.clone(), Some(workspace), env, ui)?;
            let function = native::one_function(&config, &plan, "serve")?;
            let zip = function.output.path().to_path_buf();
            (
                function.manifest_path.clone(),
                Mode::Zip {
                    args: Box::new(args),
                    zip,
                },
                function.run.clone(),
            )
        };
        Ok(Builder {
            selection,
            mode,
            manifest,
            served: None,
            run,
        })
    }

    /// The `Watching` line: the sources, and what each change builds.
    fn describe(&self, workspace: &Workspace) -> String {
        let sources = Sources::of(&workspace.metadata, &self.manifest);
        let dirs = sources
            .recursive
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match &self.mode {
            Mode::Zip { zip, .. } => format!(
                "{dirs}; each change builds {} (the shipped zip's target, profile and checks, \
                 compiled incrementally: not its bytes, which `cargo lambda-build --zip` writes)",
                zip.display()
            ),
            Mode::Native => format!("{dirs}; each change builds for this machine"),
        }
    }

    /// Builds once; `Some(artifact)` when there is a new build to serve (the first good one,
    /// or one that changed the artifact). A failure is printed; the last good build keeps
    /// serving.
    fn build(&mut self, workspace: &Workspace, cx: Context<'_>) -> Option<PathBuf> {
        let (env, ui) = (cx.env, cx.ui);
        let built = match &self.mode {
            Mode::Zip { args, zip } => {
                let quick = |plan: &mut BuildPlan| quick_build(plan, env);
                crate::build_in(
                    *args.clone(),
                    Some(workspace),
                    env,
                    ui,
                    cx.interrupt,
                    &quick,
                )
                .map(|()| zip.clone())
            }
            // Planned again: the workspace may have changed (a renamed binary, a feature).
            Mode::Native => native::plan(&self.selection, Some(workspace), env, ui, "serve")
                .and_then(|plan| native::build(&plan, cx.reporter, cx.interrupt)),
        };
        match built {
            Ok(artifact) => {
                let stamp = written_at(&artifact);
                let same = self
                    .served
                    .as_ref()
                    .is_some_and(|(path, last)| *path == artifact && *last == stamp);
                if same || stamp.is_none() {
                    return None;
                }
                self.served = Some((artifact.clone(), stamp));
                Some(artifact)
            }
            Err(Error::Interrupted(_)) => None,
            Err(error) => {
                error.print(ui.color);
                cx.reporter.warn(if self.served.is_some() {
                    "the build failed: the last good build keeps serving"
                } else {
                    "the build failed: nothing to serve until a change builds"
                });
                None
            }
        }
    }

    /// The builder's thread: the first build, then one per change, until the server stops.
    fn run(
        mut self,
        mut watch: Watch,
        mut workspace: Workspace,
        cx: Context<'_>,
        next: &Mutex<Option<PathBuf>>,
        stop: &AtomicBool,
    ) {
        let Context {
            env,
            ui,
            interrupt,
            reporter,
        } = cx;
        let offer = |artifact: PathBuf| {
            if let Ok(mut next) = next.lock() {
                *next = Some(artifact);
            }
        };
        let mut last_build = SystemTime::now();
        if let Some(artifact) = self.build(&workspace, cx) {
            offer(artifact);
        }
        while !stop.load(Ordering::SeqCst) && interrupt.received().is_none() {
            let Some(changed) = watch.changed(last_build) else {
                continue;
            };
            let why = match changed.as_slice() {
                [one] => format!("`{}` changed", one.display()),
                [first, rest @ ..] => {
                    format!("`{}` and {} more changed", first.display(), rest.len())
                }
                [] => continue,
            };
            reporter.status("Rebuilding", &why);
            last_build = SystemTime::now();
            let started = Instant::now();
            if changed.iter().any(|p| is_manifest(p)) {
                match read_workspace(&self.selection, workspace.manifest.clone(), env) {
                    Ok(read) => workspace = read,
                    Err(error) => {
                        error.print(ui.color);
                        reporter.warn("the last good build keeps serving");
                        continue;
                    }
                }
                if let Err(error) =
                    watch.follow(Sources::of(&workspace.metadata, &self.manifest), reporter)
                {
                    error.print(ui.color);
                }
            }
            // A build that changed nothing leaves the artifact as it was (`Fresh`): the served
            // function stays warm.
            if let Some(artifact) = self.build(&workspace, cx) {
                reporter.status(
                    "Rebuilt",
                    format!(
                        "in {:.1} s: serving the new build",
                        started.elapsed().as_secs_f64()
                    ),
                );
                offer(artifact);
            }
        }
    }
}

/// `<target-dir>/lambda-build/watch/<arch>`: the watch's zips, apart from the shipped ones.
fn watch_dir(plan: &BuildPlan) -> PathBuf {
    plan.tool_dir().join("watch").join(plan.arch.lambda_name())
}

/// The watch's changes to the shipped build: incremental compilation (which the release
/// profile leaves off, and which changes the bytes) and no cross-crate LTO, whose link would
/// take most of each rebuild. Its files are staged apart. A variable the user set wins.
fn quick_build(plan: &mut BuildPlan, env: &Env) {
    let prefix = format!(
        "CARGO_PROFILE_{}_",
        plan.cargo.profile.to_uppercase().replace('-', "_")
    );
    for (key, value) in [("INCREMENTAL", "true"), ("LTO", "false")] {
        let name = format!("{prefix}{key}");
        if !env.is_set(&name) {
            plan.cargo
                .env
                .push((OsString::from(name), OsString::from(value)));
        }
    }
    let staging = watch_dir(plan).join("staging");
    for function in &mut plan.functions {
        function.staging_dir = staging.join(&function.bin);
    }
}

/// Whether a change to `path` can change the workspace (`cargo metadata`'s answer).
fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default();
    name == "Cargo.toml"
        || name == "Cargo.lock"
        || (path.parent().and_then(Path::file_name) == Some(".cargo".as_ref())
            && (name == "config.toml" || name == "config"))
}

/// What is watched: directories of sources (recursively), and directories of which only the
/// manifests count (the workspace root, when it is not one of the sources).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Sources {
    recursive: Vec<PathBuf>,
    manifests_only: Vec<PathBuf>,
}

impl Sources {
    fn of(metadata: &Metadata, manifest: &Path) -> Sources {
        let recursive = watched_dirs(metadata, manifest);
        let root = metadata.workspace_root.as_std_path().to_path_buf();
        let manifests_only = if recursive.iter().any(|d| root.starts_with(d)) {
            Vec::new()
        } else {
            vec![root]
        };
        Sources {
            recursive,
            manifests_only,
        }
    }

    /// The watched directory `path` counts under, if it counts.
    fn root_of(&self, path: &Path) -> Option<&Path> {
        let recursive = self.recursive.iter().find(|d| path.starts_with(d));
        let manifest_of = || {
            self.manifests_only
                .iter()
                .find(|d| path.parent() == Some(d.as_path()) && is_manifest(path))
        };
        recursive.or_else(manifest_of).map(PathBuf::as_path)
    }
}

/// The watcher and what it watches.
struct Watch {
    debouncer: Debouncer<RecommendedWatcher>,
    changes: Receiver<DebounceEventResult>,
    sources: Sources,
    filter: Filter,
}

impl Watch {
    /// Watches `sources` from now on, and no longer what it watched before and they drop.
    fn follow(&mut self, sources: Sources, reporter: &Reporter) -> Result<()> {
        if sources == self.sources {
            return Ok(());
        }
        let watcher = self.debouncer.watcher();
        let old = std::mem::take(&mut self.sources);
        for dir in old.recursive.iter().chain(&old.manifests_only) {
            let _ = watcher.unwatch(dir);
        }
        let dirs = sources
            .recursive
            .iter()
            .map(|d| (d, RecursiveMode::Recursive))
            .chain(
                sources
                    .manifests_only
                    .iter()
                    .map(|d| (d, RecursiveMode::NonRecursive)),
            );
        for (dir, mode) in dirs {
            watcher
                .watch(dir, mode)
                .map_err(|e| anyhow::anyhow!("cannot watch `{}`: {e}", dir.display()))?;
        }
        if !old.recursive.is_empty() {
            reporter.status(
                "Watching",
                sources
                    .recursive
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        self.sources = sources;
        Ok(())
    }

    /// The sources changed since `since`, once a debounced batch arrives (`None` meanwhile, at
    /// each tick, so the caller can look at Ctrl-C).
    fn changed(&mut self, since: SystemTime) -> Option<Vec<PathBuf>> {
        let events = match self.changes.recv_timeout(TICK) {
            Ok(Ok(events)) => events,
            Ok(Err(_)) | Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                return None;
            }
        };
        let mut changed: Vec<PathBuf> = events
            .into_iter()
            .map(|e| e.path)
            .filter(|p| {
                self.sources
                    .root_of(p)
                    .is_some_and(|root| !self.filter.ignores(p, root))
            })
            .filter(|p| modified_since(p, since))
            .collect();
        changed.sort();
        changed.dedup();
        Some(changed)
    }
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

fn written_at(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// Serves the newest good build until Ctrl-C, swapping in each new one as it comes.
fn serve_builds(
    front: &Front,
    config: &ServeConfig,
    reporter: &Reporter,
    ui: Ui,
    interrupt: &Interrupt,
    next: &Mutex<Option<PathBuf>>,
) -> Result<()> {
    let take = || next.lock().ok().and_then(|mut next| next.take());
    let waiting = || next.lock().is_ok_and(|next| next.is_some());
    loop {
        let artifact = loop {
            if let Some(artifact) = take() {
                break artifact;
            }
            interrupt.check()?;
            std::thread::sleep(TICK);
        };
        // Copied into the sandbox at start: the next build may rewrite the artifact meanwhile.
        serve_function(
            front,
            &artifact,
            config,
            reporter,
            ui.verbosity,
            interrupt,
            &waiting,
        )?;
    }
}

/// The directories whose changes rebuild: the package at `manifest` (every member, for a
/// virtual workspace manifest) and the local packages it depends on, through any depth: the
/// path dependencies, which cargo would rebuild too (dev-dependencies aside: the build does
/// not compile them). Registry and git dependencies do not change under the user's hands.
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
            queue.extend(
                node.deps
                    .iter()
                    .filter(|dep| {
                        dep.dep_kinds.is_empty()
                            || dep
                                .dep_kinds
                                .iter()
                                .any(|k| k.kind != DependencyKind::Development)
                    })
                    .map(|dep| &dep.pkg),
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_the_files_that_change_the_workspace() {
        for path in [
            "/p/Cargo.toml",
            "/p/Cargo.lock",
            "/p/.cargo/config.toml",
            "/p/.cargo/config",
        ] {
            assert!(is_manifest(Path::new(path)), "{path}");
        }
        for path in ["/p/src/main.rs", "/p/config.toml", "/p/Cargo.toml.bak"] {
            assert!(!is_manifest(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn the_workspace_root_counts_for_its_manifests_only() {
        let sources = Sources {
            recursive: vec![PathBuf::from("/w/crates/f"), PathBuf::from("/shared")],
            manifests_only: vec![PathBuf::from("/w")],
        };
        for path in [
            "/w/crates/f/src/main.rs",
            "/shared/src/lib.rs",
            "/w/Cargo.toml",
            "/w/Cargo.lock",
        ] {
            assert!(sources.root_of(Path::new(path)).is_some(), "{path}");
        }
        for path in [
            "/w/README.md",
            "/w/crates/other/src/lib.rs",
            "/elsewhere/x.rs",
        ] {
            assert!(sources.root_of(Path::new(path)).is_none(), "{path}");
        }
    }
}
