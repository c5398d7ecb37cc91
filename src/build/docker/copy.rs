//! One build on an engine that cannot see the host's files: create the container over the
//! project's volumes, upload what changed (`sync`), build, download the executables, remove the
//! container, whatever happened. Runs of one project and architecture from this machine take
//! turns (a lock file in the target directory): they share the volumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde::{Deserialize, Serialize};

use crate::build::{BuildError, Collector, Executable};
use crate::plan::FunctionPlan;

use super::DockerError;

type Result<T, E = BuildError> = std::result::Result<T, E>;
use crate::report::Reporter;
use crate::signal::Interrupt;

use super::container::{self, ContainerSpec};
use super::sync::{self, Local, Manifest};

/// What a copy-mode build needs besides the container.
pub struct CopyBuild<'a> {
    pub spec: &'a ContainerSpec,
    pub scan: sync::Inputs<'a>,
    /// `<target-dir>/lambda-build/docker/<arch>`: where the target volume's files land, the
    /// same place a bind-mount build leaves them.
    pub host_target: &'a Path,
    /// The uid and gid the container runs as (root when `None`).
    pub owner: Option<(u32, u32)>,
    /// The functions built, their manifests at the host's paths.
    pub functions: &'a [FunctionPlan],
}

/// What the host remembers between runs: the last manifest (its hashes spare re-reading files
/// whose size and mtime did not change) and the hash of each executable it downloaded.
#[derive(Debug, Default, Serialize, Deserialize)]
struct HostState {
    manifest: Manifest,
    #[serde(default)]
    downloads: BTreeMap<String, Download>,
}

/// An executable that came over: the engine's size and mtime of it then, and the hash of the
/// bytes written on the host.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Download {
    engine_stat: String,
    sha256: String,
}

fn state_path(host_target: &Path) -> PathBuf {
    host_target.join("remote-state.json")
}

fn read_state(host_target: &Path) -> HostState {
    std::fs::read(state_path(host_target))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_state(host_target: &Path, state: &HostState) {
    // Losing it costs re-hashing and one download next time, nothing else.
    if let Ok(json) = serde_json::to_vec(state) {
        let _ = std::fs::write(state_path(host_target), json);
    }
}

pub async fn run(
    docker: &Docker,
    build: &CopyBuild<'_>,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Executable>> {
    std::fs::create_dir_all(build.host_target)
        .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", build.host_target.display()))?;
    let _lock = lock(build.host_target, reporter, interrupt).await?;
    container::create(docker, build.spec).await?;
    let result = sync_build_fetch(docker, build, reporter, interrupt).await;
    container::finish(docker, build.spec, result, reporter).await
}

async fn sync_build_fetch(
    docker: &Docker,
    build: &CopyBuild<'_>,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Executable>> {
    let name = &build.spec.name;
    let remote = sync::read_manifest(docker, name).await?;
    interrupt.check()?;
    let mut state = read_state(build.host_target);
    let (local, archive, changes) = prepare(build, &remote, &state.manifest)?;
    let volumes = build
        .spec
        .mounts
        .iter()
        .find_map(|m| match m {
            container::MountSpec::Volume { name, .. } => name.strip_suffix("-src"),
            _ => None,
        })
        .unwrap_or("cargo-lambda-build");
    match &archive {
        Some(bytes) => reporter.status(
            "Uploading",
            format!(
                "{} changed files, {} removed: {} bytes to volumes {volumes}-*",
                changes.upload.len(),
                changes.delete.len(),
                bytes.len()
            ),
        ),
        None => reporter.status(
            "Uploading",
            format!("nothing changed: 0 bytes to volumes {volumes}-*"),
        ),
    }
    if let Some(bytes) = archive {
        sync::upload(docker, name, bytes, interrupt).await?;
    }
    state.manifest = sync::manifest_of(&local);
    write_state(build.host_target, &state);

    let watch = container::Watch {
        collector: Collector::new(
            build.functions,
            |manifest| sync::container_src(manifest).into(),
            reporter,
        ),
        reporter,
        interrupt,
    };
    let built = container::attach_start_and_wait(docker, build.spec, watch).await?;

    let mut fetched = Vec::with_capacity(built.len());
    for one in built {
        let inside = one.path.to_string_lossy().into_owned();
        let host = sync::host_path(&one.path, build.host_target)
            .filter(|_| one.path.starts_with(sync::TARGET_ROOT))
            .ok_or_else(|| DockerError::Engine {
                action: "build into its target directory".into(),
                message: format!("cargo reported the executable at `{inside}`, outside it"),
            })?;
        // The engine's file is the one that came over last time (cargo did not relink it), and
        // the host still has those bytes.
        let engine_stat = sync::stat(docker, name, &inside).await?;
        let have = state.downloads.get(&inside).is_some_and(|known| {
            known.engine_stat == engine_stat && sync::has_content(&host, &known.sha256)
        });
        if have {
            reporter.detail("Fresh", format!("`{}`, not downloaded", host.display()));
        } else {
            reporter.detail("Downloading", format!("`{inside}`"));
            let (hash, bytes) =
                sync::fetch_executable(docker, name, &inside, &host, interrupt).await?;
            reporter.detail(
                "Downloaded",
                format!("{bytes} bytes to `{}`", host.display()),
            );
            state.downloads.insert(
                inside,
                Download {
                    engine_stat,
                    sha256: hash,
                },
            );
        }
        fetched.push(Executable { path: host, ..one });
    }
    write_state(build.host_target, &state);
    interrupt.check()?;
    Ok(fetched)
}

/// The host's files, and the archive that brings the volume up to date (`None` when nothing
/// changed). A file that disappears between the scan and the archive (an editor's temporary
/// file) makes it scan again.
fn prepare(
    build: &CopyBuild<'_>,
    remote: &Manifest,
    cache: &Manifest,
) -> Result<(Vec<Local>, Option<Vec<u8>>, sync::Changes)> {
    let mut tries = 0;
    loop {
        tries += 1;
        let local = sync::scan(&build.scan, cache)
            .map_err(|e| anyhow::anyhow!("cannot read the project's files: {e}"))?;
        let changes = sync::diff(remote, &local);
        if changes.is_empty() {
            return Ok((local, None, changes));
        }
        match sync::archive(&local, &changes, build.owner) {
            Ok(bytes) => return Ok((local, Some(bytes), changes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => continue,
            Err(e) => {
                return Err(anyhow::anyhow!("cannot read the project's files: {e}").into());
            }
        }
    }
}

/// An exclusive lock on `<host_target>/remote.lock`, held until dropped; waits (saying so)
/// while another run of this project holds it, and stops waiting at Ctrl-C.
async fn lock(host_target: &Path, reporter: &Reporter, interrupt: &Interrupt) -> Result<Flock> {
    let path = host_target.join("remote.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open `{}`: {e}", path.display()))?;
    let mut said = false;
    loop {
        // flock(2) on Unix, LockFileEx on Windows: released when the file is closed.
        if file.try_lock().is_ok() {
            return Ok(Flock(file));
        }
        if !said {
            reporter.status(
                "Blocking",
                "waiting for another build of this project on the engine",
            );
            said = true;
        }
        interrupt.check()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The lock goes with the file descriptor.
struct Flock(#[allow(dead_code)] std::fs::File);
