//! Engines that cannot see the host's files (`--docker-files copy`): the build's inputs live in
//! labelled named volumes kept between runs, one set per project and architecture, and move
//! through the Engine API by content.
//!
//! - `…-src`: the workspace and the path dependencies outside it, each at its host path under
//!   [`SRC_ROOT`] (never `target/` or `.git`);
//! - `…-registry`: the `.crate` files and index entries the lock file needs, from the host's
//!   `cargo fetch`, as cargo's `registry/` directory (cargo unpacks them there, once);
//! - `…-target`: cargo's target directory, so an edit recompiles incrementally.
//!
//! A manifest of content hashes lives in the source volume (and a copy on the host, which only
//! saves re-hashing files whose size and mtime did not change). A run reads the volume's
//! manifest, uploads one tar of what differs into the created build container, and the container
//! deletes what the host no longer has before cargo starts. The manifest written before the
//! upload marks every file being uploaded as unknown, and the finished one replaces it only
//! once the deletions are done, so an upload or a container cut short by Ctrl-C is redone by
//! the next run instead of being trusted.
//!
//! Afterwards only the executables cargo reported are downloaded, to the same host paths a
//! bind-mount build would have left them at.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::build::BuildError;

use super::DockerError;

type Result<T, E = BuildError> = std::result::Result<T, E>;
use crate::signal::Interrupt;

use super::engine::failure;

/// Where the source volume is mounted; a host path `/p` is at `SRC_ROOT/p`.
pub const SRC_ROOT: &str = "/lambda-build/src";
/// Where the registry volume is mounted: cargo's `$CARGO_HOME/registry` in the container.
pub const REGISTRY_ROOT: &str = "/lambda-build/cargo/registry";
/// Where the target volume is mounted: cargo's `--target-dir` in the container.
pub const TARGET_ROOT: &str = "/lambda-build/target";
/// The sync's own files, inside the source volume (no host path starts with `/.lambda-build`).
pub const STATE_DIR: &str = "/lambda-build/src/.lambda-build";
const MANIFEST: &str = "/lambda-build/src/.lambda-build/manifest.json.gz";
const MANIFEST_NEXT: &str = "/lambda-build/src/.lambda-build/manifest.next.json.gz";
const DELETE_LIST: &str = "/lambda-build/src/.lambda-build/delete";
/// The files an upload is writing, listed before any of them: until the finished manifest
/// replaces the old one, their content there is unknown.
const UNKNOWN_LIST: &str = "/lambda-build/src/.lambda-build/unknown";

/// What the container runs before cargo (`sh -c SCRIPT sh cargo ARGS…`): the deletions the
/// last upload asked for, then the finished manifest into place.
pub const PRELUDE: &str = "set -e
cd /lambda-build/src/.lambda-build
if [ -f manifest.next.json.gz ]; then
  while IFS= read -r f; do rm -f -- \"$f\"; done < delete
  mv -f manifest.next.json.gz manifest.json.gz
  rm -f delete unknown
fi
cd \"$OLDPWD\"
exec \"$@\"";

/// The hash of a file whose content is not known: it differs from every real one.
const UNKNOWN: &str = "";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Container path → what is there.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Hex SHA-256 of the content, or empty when unknown.
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
    /// The host file's mtime in nanoseconds since the epoch: with the size, the key of the
    /// host's hash cache. Also the mtime the file gets in the volume, so cargo's fingerprints
    /// see an edit as newer.
    pub mtime_ns: u64,
}

/// One file the build needs, where it is on the host and where it goes in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub host: PathBuf,
    pub container: String,
    pub entry: FileEntry,
}

/// What a run must do to make the volumes match the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Indices into the scanned files.
    pub upload: Vec<usize>,
    /// Container paths the host no longer has.
    pub delete: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.upload.is_empty() && self.delete.is_empty()
    }
}

/// The container path of a host path in the source volume.
pub fn container_src(host: &Path) -> String {
    format!(
        "{SRC_ROOT}{}",
        unix_form(&host.to_string_lossy(), cfg!(windows))
    )
}

/// The host path of a container path in the source volume or the target volume (with the host
/// directory that stands for the target volume), else `None`.
pub fn host_path(container: &Path, host_target: &Path) -> Option<PathBuf> {
    if let Ok(rest) = container.strip_prefix(TARGET_ROOT) {
        return Some(host_target.join(rest));
    }
    let rest = container.to_str()?.strip_prefix(SRC_ROOT)?;
    host_form(rest, cfg!(windows)).map(PathBuf::from)
}

/// A host path as a Linux container names it. Unix paths stay as they are. A Windows path has a
/// drive or a server and backslashes, which a Linux path cannot hold: `C:\Users\me\fn` is
/// `/C/Users/me/fn`, `\\server\share\fn` is `/unc/server/share/fn` (the `\\?\` form as
/// well), and a relative path only changes its separators.
fn unix_form(host: &str, windows: bool) -> String {
    if !windows {
        return host.to_string();
    }
    let host = host.strip_prefix(r"\\?\").map_or(host.to_string(), |rest| {
        match rest.strip_prefix(r"UNC\") {
            Some(unc) => format!(r"\\{unc}"),
            None => rest.to_string(),
        }
    });
    let slashed = host.replace('\\', "/");
    if let Some(unc) = slashed.strip_prefix("//") {
        return format!("/unc/{unc}");
    }
    let mut chars = slashed.chars();
    match (chars.next(), chars.next()) {
        (Some(drive), Some(':')) if drive.is_ascii_alphabetic() => {
            format!("/{drive}{}", &slashed[2..])
        }
        _ => slashed,
    }
}

/// The host path [`unix_form`] made `container` from; `None` for what no host path gives.
fn host_form(container: &str, windows: bool) -> Option<String> {
    if !windows {
        return container.starts_with('/').then(|| container.to_string());
    }
    let rest = container.strip_prefix('/')?;
    if let Some(unc) = rest.strip_prefix("unc/") {
        return Some(format!(r"\\{}", unc.replace('/', "\\")));
    }
    let (drive, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut letters = drive.chars();
    match (letters.next(), letters.next()) {
        (Some(letter), None) if letter.is_ascii_alphabetic() => {
            Some(format!(r"{letter}:\{}", path.replace('/', "\\")))
        }
        _ => None,
    }
}

/// What to scan: the source roots, what to leave out, and where the crates come from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The workspace root and the outside path dependencies' roots, absolute.
    pub roots: &'a [PathBuf],
    /// Left out wherever they are: the target dir, the outputs of earlier runs.
    pub skip: &'a [PathBuf],
    /// The host's `CARGO_HOME`.
    pub cargo_home: &'a Path,
    /// The workspace's `Cargo.lock`.
    pub lock_file: &'a Path,
}

/// Every file the build needs, hashed (a file whose size and mtime match `cache` keeps its
/// hash), sorted by container path.
pub fn scan(inputs: &Inputs, cache: &Manifest) -> std::io::Result<Vec<Local>> {
    let mut found: Vec<(PathBuf, String)> = Vec::new();
    for root in inputs.roots {
        walk_sources(root, inputs.skip, &mut found)?;
    }
    let registry = inputs.cargo_home.join("registry");
    for relative in needed_registry_files(&registry, inputs.lock_file)? {
        let container = format!(
            "{REGISTRY_ROOT}/{}",
            unix_form(&relative.to_string_lossy(), cfg!(windows))
        );
        found.push((registry.join(relative), container));
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found.dedup_by(|a, b| a.1 == b.1);
    found
        .into_iter()
        .map(|(host, container)| {
            let entry = entry_of(&host, cache.files.get(&container))?;
            Ok(Local {
                host,
                container,
                entry,
            })
        })
        .collect()
}

/// A file's entry: its hash read again only when its size or mtime changed.
fn entry_of(path: &Path, cached: Option<&FileEntry>) -> std::io::Result<FileEntry> {
    let meta = std::fs::metadata(path)?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    // A project's sources carry no execute bit on Windows: none is executable in the volume.
    let executable = crate::host::execute_bit(&meta).unwrap_or(false);
    if let Some(cached) = cached.filter(|c| {
        c.size == meta.len() && c.mtime_ns == mtime_ns && !c.sha256.is_empty() && mtime_ns != 0
    }) {
        return Ok(FileEntry {
            executable,
            ..cached.clone()
        });
    }
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(FileEntry {
        sha256: hex(&hasher.finalize()),
        size: meta.len(),
        executable,
        mtime_ns,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The files under `root`, without `.git`, the `skip` paths and cargo target directories
/// (marked by the `CACHEDIR.TAG` cargo writes). A symlink counts as what it points to, except a
/// directory (a loop would never end). Names that are not UTF-8 or hold a newline cannot be
/// named in the manifest or the deletion list: left out.
fn walk_sources(
    root: &Path,
    skip: &[PathBuf],
    found: &mut Vec<(PathBuf, String)>,
) -> std::io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if skip.iter().any(|s| s == &dir) || dir.join("CACHEDIR.TAG").is_file() {
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A directory the user cannot read is not part of any build.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let Some(name) = path.to_str() else { continue };
            if name.contains('\n') || entry.file_name() == ".git" || is_skipped(&path, skip) {
                continue;
            }
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                stack.push(path);
            } else if file_type.is_file() || (file_type.is_symlink() && path.is_file()) {
                let container = container_src(&path);
                found.push((path, container));
            }
        }
    }
    Ok(())
}

/// A skipped path, or the temporary file a run writes beside a skipped output
/// (`.lambda.zip.<pid>.XXXXXX`) before renaming it into place, or a `lambda.zip` of another run
/// (another `--outdir`, another architecture): no build reads one.
fn is_skipped(path: &Path, skip: &[PathBuf]) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let zip_name = crate::lambda::ZIP_NAME;
    if name == zip_name || name.starts_with(&format!(".{zip_name}.")) {
        return true;
    }
    skip.iter().any(|s| {
        s == path
            || (s.parent() == path.parent()
                && s.file_name().zip(path.file_name()).is_some_and(|(s, p)| {
                    p.to_string_lossy()
                        .starts_with(&format!(".{}.", s.to_string_lossy()))
                }))
    })
}

/// The `.crate` files of the lock file's registry packages that the host's `cargo fetch`
/// downloaded (the others are for platforms the build does not target), and the index entries
/// of all of them (offline, cargo's resolver still reads the entry of an optional dependency no
/// feature enables): relative to cargo's `registry/` directory, in every registry directory
/// that has them.
fn needed_registry_files(registry: &Path, lock_file: &Path) -> std::io::Result<Vec<PathBuf>> {
    let text = match std::fs::read_to_string(lock_file) {
        Ok(text) => text,
        // No lock file yet: `cargo fetch` writes it before this runs, so none means no packages.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let packages = registry_packages(&text);
    let mut files = Vec::new();
    let mut used_registries = BTreeSet::new();
    for cache in std::fs::read_dir(registry.join("cache"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir_name = PathBuf::from(cache.file_name());
        for (name, version) in &packages {
            let krate = Path::new("cache")
                .join(&dir_name)
                .join(format!("{name}-{version}.crate"));
            if registry.join(&krate).is_file() {
                used_registries.insert(dir_name.clone());
                files.push(krate);
            }
        }
    }
    for dir_name in used_registries {
        let index = Path::new("index").join(&dir_name);
        let config = index.join("config.json");
        if registry.join(&config).is_file() {
            files.push(config);
        }
        let names: BTreeSet<&str> = packages.iter().map(|(name, _)| name.as_str()).collect();
        for name in names {
            let entry = index.join(".cache").join(index_path(name));
            if registry.join(&entry).is_file() {
                files.push(entry);
            }
        }
    }
    Ok(files)
}

/// `(name, version)` of each package of `Cargo.lock` that comes from a registry.
pub fn registry_packages(lock: &str) -> Vec<(String, String)> {
    lock_packages(lock, |source| {
        source.starts_with("registry+") || source.starts_with("sparse+")
    })
}

/// The names of the packages of `Cargo.lock` that come from a git repository: the volumes do
/// not carry cargo's git checkouts.
pub fn git_packages(lock: &str) -> Vec<String> {
    lock_packages(lock, |source| source.starts_with("git+"))
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn lock_packages(lock: &str, from: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        version: String,
        source: Option<String>,
    }
    let Ok(lock) = toml::from_str::<Lock>(lock) else {
        return Vec::new();
    };
    lock.package
        .into_iter()
        .filter(|p| p.source.as_deref().is_some_and(&from))
        .map(|p| (p.name, p.version))
        .collect()
}

/// Where a crate's entry sits in a registry index, as cargo lays it out: `1/a`, `2/ab`,
/// `3/a/abc`, `se/rd/serde`, lower-cased.
pub fn index_path(name: &str) -> PathBuf {
    let name = name.to_lowercase();
    match name.len() {
        1 => Path::new("1").join(&name),
        2 => Path::new("2").join(&name),
        3 => Path::new("3").join(&name[..1]).join(&name),
        _ => Path::new(&name[..2]).join(&name[2..4]).join(&name),
    }
}

/// What differs between the volume (`remote`) and the host (`local`).
pub fn diff(remote: &Manifest, local: &[Local]) -> Changes {
    let upload = local
        .iter()
        .enumerate()
        .filter(|(_, file)| {
            remote.files.get(&file.container).is_none_or(|there| {
                there.sha256.is_empty()
                    || there.sha256 != file.entry.sha256
                    || there.executable != file.entry.executable
            })
        })
        .map(|(i, _)| i)
        .collect();
    let here: BTreeSet<&str> = local.iter().map(|f| f.container.as_str()).collect();
    let delete = remote
        .files
        .keys()
        .filter(|path| !here.contains(path.as_str()))
        .cloned()
        .collect();
    Changes { upload, delete }
}

/// The manifest of the host's files: what the volume holds once the changes are in.
pub fn manifest_of(local: &[Local]) -> Manifest {
    Manifest {
        files: local
            .iter()
            .map(|f| (f.container.clone(), f.entry.clone()))
            .collect(),
    }
}

/// What the volume holds when an upload was cut short (the list of files it was writing is
/// still there): those files are unknown, and the ones it was to delete are still there.
pub fn with_unknown(mut manifest: Manifest, unknown: &str) -> Manifest {
    for path in unknown.lines().filter(|line| !line.is_empty()) {
        manifest.files.entry(path.to_string()).or_default().sha256 = UNKNOWN.into();
    }
    manifest
}

/// The tar that makes the volumes match the host, extracted at `/` of the build container:
/// the list of files it writes first, then those files (with their parent directories, so they
/// get the owner), then the deletion list and the finished manifest for [`PRELUDE`]. `owner` is
/// the uid and gid the build runs as (root when `None`); the volume roots get it too, so cargo
/// can write its target directory and unpack crates.
pub fn archive(
    local: &[Local],
    changes: &Changes,
    owner: Option<(u32, u32)>,
) -> std::io::Result<Vec<u8>> {
    let (uid, gid) = owner.unwrap_or((0, 0));
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs_done: BTreeSet<String> = BTreeSet::new();
    let mut add_dirs = |builder: &mut tar::Builder<Vec<u8>>, path: &str| -> std::io::Result<()> {
        let root = [SRC_ROOT, REGISTRY_ROOT, TARGET_ROOT]
            .into_iter()
            .find(|root| path.starts_with(&format!("{root}/")) || path == *root);
        let Some(root) = root else { return Ok(()) };
        let mut dirs: Vec<&str> = Path::new(path)
            .ancestors()
            .skip(1)
            .filter_map(Path::to_str)
            .take_while(|dir| dir.len() >= root.len())
            .collect();
        dirs.reverse();
        for dir in dirs {
            if dirs_done.insert(dir.to_string()) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_uid(uid.into());
                header.set_gid(gid.into());
                header.set_size(0);
                header.set_mtime(0);
                builder.append_data(&mut header, format!("{}/", &dir[1..]), std::io::empty())?;
            }
        }
        Ok(())
    };
    let add_bytes =
        |builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_uid(uid.into());
            header.set_gid(gid.into());
            header.set_size(bytes.len() as u64);
            header.set_mtime(0);
            builder.append_data(&mut header, &path[1..], bytes)
        };
    for root in [SRC_ROOT, REGISTRY_ROOT, TARGET_ROOT] {
        add_dirs(&mut builder, &format!("{root}/x"))?;
    }
    add_dirs(&mut builder, MANIFEST)?;
    let mut unknown = String::new();
    for &i in &changes.upload {
        unknown.push_str(&local[i].container);
        unknown.push('\n');
    }
    add_bytes(&mut builder, UNKNOWN_LIST, unknown.as_bytes())?;
    for &i in &changes.upload {
        let file = &local[i];
        add_dirs(&mut builder, &file.container)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if file.entry.executable { 0o755 } else { 0o644 });
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(file.entry.mtime_ns / 1_000_000_000);
        // The size read now: a file that changed since the scan is sent as it is (the next
        // run sees the new hash), never cut or padded.
        let content = std::fs::read(&file.host)?;
        header.set_size(content.len() as u64);
        // The header holds whole seconds, and cargo compares a source's mtime with its last
        // compile's to the nanosecond: an edit in the same second as that compile, cut to the
        // second, looks older and is not rebuilt. The engine takes the exact time from PAX.
        builder.append_pax_extensions([("mtime", pax_time(file.entry.mtime_ns).as_bytes())])?;
        builder.append_data(&mut header, &file.container[1..], content.as_slice())?;
    }
    let mut list = String::new();
    for path in &changes.delete {
        list.push_str(path);
        list.push('\n');
    }
    add_bytes(&mut builder, DELETE_LIST, list.as_bytes())?;
    // Last: its presence says that everything before it arrived.
    add_bytes(&mut builder, MANIFEST_NEXT, &compress(&manifest_of(local))?)?;
    builder.into_inner()
}

/// A PAX time: seconds since the epoch, with the nanoseconds after the point.
fn pax_time(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// The manifest, gzipped: the hashes are most of an edit's upload otherwise.
fn compress(manifest: &Manifest) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&serde_json::to_vec(manifest).map_err(std::io::Error::other)?)?;
    encoder.finish()
}

/// What the volume holds, from the tar of [`STATE_DIR`] the engine sends: its manifest, with
/// the files of an upload that never finished marked unknown. A volume without a manifest
/// (new, or emptied) holds nothing known.
pub fn state_from_tar(tar_bytes: &[u8]) -> Manifest {
    let mut manifest = None;
    let mut unknown = String::new();
    let mut archive = tar::Archive::new(tar_bytes);
    let Ok(entries) = archive.entries() else {
        return Manifest::default();
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            return Manifest::default();
        };
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        match name.as_deref() {
            Some("manifest.json.gz") => {
                let mut json = Vec::new();
                let read = flate2::read::GzDecoder::new(&mut entry).read_to_end(&mut json);
                manifest = read.ok().and_then(|_| serde_json::from_slice(&json).ok());
                if manifest.is_none() {
                    return Manifest::default();
                }
            }
            Some("unknown") => {
                let _ = entry.read_to_string(&mut unknown);
            }
            _ => {}
        }
    }
    // The list without a manifest: a first upload cut short, everything unknown.
    with_unknown(manifest.unwrap_or_default(), &unknown)
}

/// The only regular file of a tar the engine sent for one path.
pub fn file_from_tar(tar_bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes)?;
            return Ok(bytes);
        }
    }
    Err(std::io::Error::other("the engine sent no file"))
}

/// The volume names of a project (its workspace root) and architecture: stable between runs,
/// apart for projects and architectures.
pub fn volume_names(workspace_root: &Path, arch: &str) -> [String; 3] {
    let digest = Sha256::digest(workspace_root.as_os_str().as_encoded_bytes());
    let key = &hex(&digest)[..16];
    ["src", "registry", "target"].map(|kind| format!("cargo-lambda-build-{key}-{arch}-{kind}"))
}

/// How long one chunk of an upload may take before the interrupt flag is looked at again.
const UPLOAD_CHUNK: usize = 1 << 20;

/// The volume's manifest, read through the created (not started) build container.
pub async fn read_manifest(docker: &Docker, container: &str) -> Result<Manifest> {
    match download(docker, container, STATE_DIR).await {
        Ok(bytes) => Ok(state_from_tar(&bytes)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(Manifest::default()),
        Err(e) => Err(failure("read the build volumes' manifest", e).into()),
    }
}

/// Sends the archive into the created build container (the engine writes it into the
/// volumes), in chunks so Ctrl-C stops it within one chunk: the engine then drops the partial
/// upload, which the interim manifest already marks as unknown.
pub async fn upload(
    docker: &Docker,
    container: &str,
    archive: Vec<u8>,
    interrupt: &Interrupt,
) -> Result<()> {
    let bytes = bytes::Bytes::from(archive);
    let chunks: Vec<bytes::Bytes> = (0..bytes.len())
        .step_by(UPLOAD_CHUNK)
        .map(|start| bytes.slice(start..(start + UPLOAD_CHUNK).min(bytes.len())))
        .collect();
    let flag = interrupt.clone();
    // The stream stops feeding the engine at a signal; the request then fails or is dropped.
    let body = futures_util::stream::iter(chunks).take_while(move |_| {
        let go = flag.received().is_none();
        async move { go }
    });
    let options = UploadToContainerOptions {
        path: "/".into(),
        ..Default::default()
    };
    let request = docker.upload_to_container(container, Some(options), bollard::body_stream(body));
    tokio::pin!(request);
    loop {
        interrupt.check()?;
        match tokio::time::timeout(Duration::from_millis(100), &mut request).await {
            Err(_elapsed) => continue,
            Ok(result) => {
                interrupt.check()?;
                return result
                    .map_err(|e| failure("copy the project into the build volumes", e).into());
            }
        }
    }
}

/// One file of the stopped build container (through its volumes), as the tar the engine sends.
pub async fn download(
    docker: &Docker,
    container: &str,
    path: &str,
) -> std::result::Result<Vec<u8>, bollard::errors::Error> {
    let options = DownloadFromContainerOptions { path: path.into() };
    let mut stream = docker.download_from_container(container, Some(options));
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// The size and mtime of a file in the stopped container, as the engine states them.
pub async fn stat(docker: &Docker, container: &str, path: &str) -> Result<String> {
    let options = bollard::query_parameters::ContainerArchiveInfoOptions { path: path.into() };
    let found = docker
        .get_container_archive_info(container, Some(options))
        .await
        .map_err(|e| failure(format!("look at `{path}` in the build container"), e))?;
    Ok(format!(
        "{} {}",
        found.size,
        found.modification_time.unwrap_or_default()
    ))
}

/// Whether `host` holds exactly the bytes whose hash is `known`.
pub fn has_content(host: &Path, known: &str) -> bool {
    entry_of(host, None).is_ok_and(|e| e.sha256 == known)
}

/// Copies a built executable out of the stopped container to `host` (written beside it and
/// renamed, so an interrupted download never leaves half a binary). Returns the bytes' hash
/// and how many came over.
pub async fn fetch_executable(
    docker: &Docker,
    container: &str,
    path: &str,
    host: &Path,
    interrupt: &Interrupt,
) -> Result<(String, u64)> {
    let action = || format!("copy `{path}` out of the build container");
    let request = download(docker, container, path);
    tokio::pin!(request);
    let tar_bytes = loop {
        interrupt.check()?;
        match tokio::time::timeout(Duration::from_millis(100), &mut request).await {
            Err(_elapsed) => continue,
            Ok(result) => break result.map_err(|e| failure(action(), e))?,
        }
    };
    interrupt.check()?;
    let content = file_from_tar(&tar_bytes).map_err(|e| DockerError::Engine {
        action: action(),
        message: e.to_string(),
    })?;
    let dir = host.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        temp.write_all(&content)?;
        crate::host::set_mode(temp.as_file(), 0o755)?;
        temp.persist(host).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", host.display()))?;
    Ok((hex(&Sha256::digest(&content)), content.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str, sha: &str) -> Local {
        Local {
            host: PathBuf::from(path),
            container: container_src(Path::new(path)),
            entry: FileEntry {
                sha256: sha.into(),
                size: 1,
                executable: false,
                mtime_ns: 1,
            },
        }
    }

    #[test]
    fn only_changed_new_and_removed_files_move() {
        let before = [
            local("/p/a.rs", "1"),
            local("/p/b.rs", "2"),
            local("/p/c.rs", "3"),
        ];
        let remote = manifest_of(&before);
        assert!(diff(&remote, &before).is_empty());

        let mut after = vec![
            local("/p/a.rs", "1"),
            local("/p/b.rs", "22"),
            local("/p/d.rs", "4"),
        ];
        after[0].entry.mtime_ns = 99; // touched, same content: nothing to send
        let changes = diff(&remote, &after);
        assert_eq!(changes.upload, [1, 2]);
        assert_eq!(changes.delete, ["/lambda-build/src/p/c.rs"]);

        // A mode change alone is a change.
        let mut exec = before.clone();
        exec[2].entry.executable = true;
        assert_eq!(diff(&remote, &exec).upload, [2]);
    }

    /// A tar of the state directory as the engine sends it, from the archive's entries under it
    /// (the archive extracted, up to `upto` entries).
    fn state_dir_after(archive_bytes: &[u8], before: &[(&str, Vec<u8>)], upto: usize) -> Vec<u8> {
        let mut files: BTreeMap<String, Vec<u8>> = before
            .iter()
            .map(|(name, bytes)| (name.to_string(), bytes.clone()))
            .collect();
        let mut archive = tar::Archive::new(archive_bytes);
        for entry in archive.entries().unwrap().take(upto) {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            if let Some(name) = path
                .strip_prefix(&STATE_DIR[1..])
                .and_then(|n| n.strip_prefix('/'))
                && !name.is_empty()
            {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                files.insert(name.to_string(), bytes);
            }
        }
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            builder
                .append_data(
                    &mut header,
                    format!(".lambda-build/{name}"),
                    bytes.as_slice(),
                )
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn an_interrupted_upload_is_redone_and_its_deletions_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            Local {
                container: container_src(&path),
                entry: entry_of(&path, None).unwrap(),
                host: path,
            }
        };
        let before = [file("a.rs", "1"), file("c.rs", "3")];
        let remote = manifest_of(&before);
        let stored = vec![("manifest.json.gz", compress(&remote).unwrap())];
        assert_eq!(state_from_tar(&state_dir_after(&[], &stored, 0)), remote);
        let after = [file("a.rs", "11"), file("n.rs", "5")];
        let changes = diff(&remote, &after);
        let bytes = archive(&after, &changes, None).unwrap();
        // Cut short after the list of files being written and one more entry.
        let at = tar::Archive::new(bytes.as_slice())
            .entries()
            .unwrap()
            .position(|e| e.unwrap().path().unwrap().ends_with("unknown"))
            .unwrap();
        let cut_short = state_from_tar(&state_dir_after(&bytes, &stored, at + 2));
        // The next run trusts nothing that was being written and still deletes c.rs, even when
        // the host went back to the old a.rs and dropped n.rs in between.
        let again = diff(&cut_short, &before[..1]);
        assert_eq!(again.upload, [0]);
        assert_eq!(
            again.delete,
            [before[1].container.clone(), after[1].container.clone()]
        );

        // The whole archive arrived: the finished manifest is there for the prelude, and until
        // it ran, reading the state still says the same.
        let whole = state_dir_after(&bytes, &stored, usize::MAX);
        assert_eq!(state_from_tar(&whole), cut_short);
    }

    #[test]
    fn the_archive_carries_owners_manifests_and_the_deletion_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("main.rs");
        std::fs::write(&file, "fn main() {}\n").unwrap();
        let scanned = vec![Local {
            host: file.clone(),
            container: container_src(&file),
            entry: entry_of(&file, None).unwrap(),
        }];
        let mut remote = Manifest::default();
        remote
            .files
            .insert("/lambda-build/src/gone.rs".into(), FileEntry::default());
        let changes = diff(&remote, &scanned);
        let bytes = archive(&scanned, &changes, Some((1000, 1001))).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        let mut delete_list = String::new();
        let mut source_mtime = None;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name == container_src(&file)[1..] {
                let pax = entry.pax_extensions().unwrap().unwrap();
                let mtime = pax.map(|e| e.unwrap()).find(|e| e.key() == Ok("mtime"));
                source_mtime = mtime.map(|e| e.value().unwrap().to_string());
            }
            assert_eq!(entry.header().uid().unwrap(), 1000, "{name}");
            assert_eq!(entry.header().gid().unwrap(), 1001, "{name}");
            if name.ends_with("/delete") {
                entry.read_to_string(&mut delete_list).unwrap();
            }
            names.push(name);
        }
        assert_eq!(delete_list, "/lambda-build/src/gone.rs\n");
        // The file's mtime to the nanosecond, which the tar header cannot hold.
        assert_eq!(source_mtime, Some(pax_time(scanned[0].entry.mtime_ns)));
        assert_eq!(pax_time(1_700_000_000_000_000_042), "1700000000.000000042");
        let unknown = names.iter().position(|n| n.ends_with("/unknown")).unwrap();
        let source = names
            .iter()
            .position(|n| *n == container_src(&file)[1..])
            .unwrap();
        let next = names
            .iter()
            .position(|n| n.ends_with("manifest.next.json.gz"))
            .unwrap();
        assert!(unknown < source && source < next, "{names:?}");
        assert_eq!(next, names.len() - 1, "{names:?}");
        // The volume roots belong to the build's user.
        for root in [SRC_ROOT, REGISTRY_ROOT, TARGET_ROOT] {
            assert!(
                names.contains(&format!("{}/", &root[1..])),
                "{root}: {names:?}"
            );
        }
        // Every directory on the way to the file is in the archive, so it gets the owner.
        let parent = file.parent().unwrap();
        assert!(names.contains(&format!("{}/", &container_src(parent)[1..])));
    }

    #[test]
    fn a_file_keeps_its_hash_until_its_size_or_mtime_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lib.rs");
        std::fs::write(&file, "a").unwrap();
        let first = entry_of(&file, None).unwrap();
        let mut cached = first.clone();
        cached.sha256 = "cached".into();
        assert_eq!(entry_of(&file, Some(&cached)).unwrap().sha256, "cached");
        std::fs::write(&file, "bb").unwrap();
        let second = entry_of(&file, Some(&cached)).unwrap();
        assert_ne!(second.sha256, "cached");
        assert_ne!(second.sha256, first.sha256);
    }

    // The expected names are written with `/`, as Unix paths are.
    #[cfg(unix)]
    #[test]
    fn sources_leave_out_git_target_dirs_and_skipped_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "Cargo.toml",
            "src/main.rs",
            ".git/HEAD",
            "target/CACHEDIR.TAG",
            "target/release/app",
            "other-target/CACHEDIR.TAG",
            "lambda.zip",
            ".lambda.zip.123.abcdef",
            "dist/arm64/lambda.zip",
            "out/bootstrap",
            "out/.bootstrap.9.x",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let skip = [root.join("out/bootstrap")];
        let mut found = Vec::new();
        walk_sources(root, &skip, &mut found).unwrap();
        let mut names: Vec<String> = found
            .iter()
            .map(|(host, _)| host.strip_prefix(root).unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["Cargo.toml", "src/main.rs"]);
        assert_eq!(found[0].1, container_src(&found[0].0));
    }

    // The expected names are written with `/`, as Unix paths are.
    #[cfg(unix)]
    #[test]
    fn the_lock_files_registry_crates_are_found_with_their_index_entries() {
        let lock = r#"
version = 4
[[package]]
name = "serde"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "my-fn"
version = "0.1.0"
[[package]]
name = "ab"
version = "0.2.0"
source = "sparse+https://corp.example/index/"
[[package]]
name = "wasm-only"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "gitdep"
version = "0.1.0"
source = "git+https://example.com/x#abc"
"#;
        assert_eq!(
            registry_packages(lock),
            [
                ("serde".to_string(), "1.0.0".to_string()),
                ("ab".to_string(), "0.2.0".to_string()),
                ("wasm-only".to_string(), "1.0.0".to_string()),
            ]
        );
        assert_eq!(git_packages(lock), ["gitdep"]);
        assert_eq!(index_path("Serde"), Path::new("se/rd/serde"));
        assert_eq!(index_path("ab"), Path::new("2/ab"));
        assert_eq!(index_path("syn"), Path::new("3/s/syn"));
        assert_eq!(index_path("a"), Path::new("1/a"));

        let home = tempfile::tempdir().unwrap();
        let registry = home.path().join("registry");
        for file in [
            "cache/index.crates.io-x/serde-1.0.0.crate",
            "cache/index.crates.io-x/unrelated-9.9.9.crate",
            "index/index.crates.io-x/.cache/se/rd/serde",
            "index/index.crates.io-x/.cache/wa/sm/wasm-only",
            "index/index.crates.io-x/config.json",
            "index/index.crates.io-x/.cache/un/re/unrelated",
            "cache/corp-y/ab-0.2.0.crate",
        ] {
            let path = registry.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let lock_file = home.path().join("Cargo.lock");
        std::fs::write(&lock_file, lock).unwrap();
        let mut files: Vec<String> = needed_registry_files(&registry, &lock_file)
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        files.sort();
        // wasm-only was not fetched for the Linux targets: its crate is not on the host and
        // not needed, but the resolver reads its index entry.
        assert_eq!(
            files,
            [
                "cache/corp-y/ab-0.2.0.crate",
                "cache/index.crates.io-x/serde-1.0.0.crate",
                "index/index.crates.io-x/.cache/se/rd/serde",
                "index/index.crates.io-x/.cache/wa/sm/wasm-only",
                "index/index.crates.io-x/config.json",
            ]
        );
    }

    #[test]
    fn container_paths_map_back_to_the_host() {
        let target = Path::new("/home/me/fn/target/lambda-build/docker/arm64");
        assert_eq!(
            host_path(
                Path::new("/lambda-build/target/aarch64-unknown-linux-gnu/release/api"),
                target
            ),
            Some(target.join("aarch64-unknown-linux-gnu/release/api"))
        );
        assert_eq!(host_path(Path::new("/usr/bin/cargo"), target), None);
        // Through the source volume and back, in this host's own form of path.
        let manifest = if cfg!(windows) {
            r"C:\Users\me\fn\api\Cargo.toml"
        } else {
            "/home/me/fn/api/Cargo.toml"
        };
        let inside = container_src(Path::new(manifest));
        assert!(inside.starts_with("/lambda-build/src/"), "{inside}");
        assert!(!inside.contains('\\'), "{inside}");
        assert_eq!(
            host_path(Path::new(&inside), target),
            Some(PathBuf::from(manifest))
        );
    }

    #[test]
    fn windows_paths_become_linux_paths_and_back() {
        let both_ways = [
            (r"C:\Users\me\fn\Cargo.toml", "/C/Users/me/fn/Cargo.toml"),
            (r"d:\", "/d/"),
            (
                r"\\server\share\fn\src\main.rs",
                "/unc/server/share/fn/src/main.rs",
            ),
        ];
        for (windows, linux) in both_ways {
            assert_eq!(unix_form(windows, true), linux);
            assert_eq!(host_form(linux, true).as_deref(), Some(windows));
        }
        // The verbatim forms `canonicalize` gives name the same places.
        assert_eq!(unix_form(r"\\?\C:\Users\me", true), "/C/Users/me");
        assert_eq!(
            unix_form(r"\\?\UNC\server\share\x", true),
            "/unc/server/share/x"
        );
        // A path below a registry directory only changes its separators.
        assert_eq!(
            unix_form(r"cache\index.crates.io-x\serde-1.0.0.crate", true),
            "cache/index.crates.io-x/serde-1.0.0.crate"
        );
        // Unix paths are their own container paths.
        assert_eq!(unix_form("/home/me/fn", false), "/home/me/fn");
        assert_eq!(
            host_form("/home/me/fn", false).as_deref(),
            Some("/home/me/fn")
        );
        // What no Windows path becomes is no host path.
        assert_eq!(host_form("/home/me/fn", true), None);
        assert_eq!(host_form("relative", false), None);
    }

    #[test]
    fn volumes_are_per_project_and_architecture() {
        let a = volume_names(Path::new("/p/one"), "x86_64");
        assert!(a[0].starts_with("cargo-lambda-build-") && a[0].ends_with("-x86_64-src"));
        assert_ne!(a, volume_names(Path::new("/p/two"), "x86_64"));
        assert_ne!(a, volume_names(Path::new("/p/one"), "arm64"));
        assert_eq!(a, volume_names(Path::new("/p/one"), "x86_64"));
    }

    #[test]
    fn a_missing_or_broken_manifest_means_nothing_is_known() {
        assert_eq!(state_from_tar(b""), Manifest::default());
        let broken = state_dir_after(&[], &[("manifest.json.gz", b"{x}".to_vec())], 0);
        assert_eq!(state_from_tar(&broken), Manifest::default());
    }
}
