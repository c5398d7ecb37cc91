//! The task root and `/opt`: the function's zip extracted as Lambda extracts it (modes kept,
//! nothing written outside), and the layers merged in order, within Lambda's unzipped limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::invoke::container::UnixEntries;
use crate::invoke::error::InvokeError;
use crate::lambda::{BOOTSTRAP, EXTENSIONS_DIR, UNZIPPED_LIMIT};
use crate::verify::{self, VerifyError};

/// The function's code, extracted into a temporary directory that is removed on drop.
#[derive(Debug)]
pub struct TaskRoot {
    dir: tempfile::TempDir,
    pub unzipped_size: u64,
    /// The modes and links, for a container, where the file system does not keep them.
    pub unix: UnixEntries,
}

impl TaskRoot {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn bootstrap(&self) -> PathBuf {
        self.dir.path().join(BOOTSTRAP)
    }
}

/// Extracts a zip, or takes a bare executable as `bootstrap` (what `cargo lambda-build` writes
/// without `--zip`), keeping its mode either way.
pub fn prepare(artifact: &Path) -> Result<TaskRoot, InvokeError> {
    let read_error = |source| InvokeError::ReadArtifact {
        path: artifact.to_path_buf(),
        source,
    };
    let mut file = File::open(artifact).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(read_error(io::Error::other("not a regular file")));
    }
    let is_zip = starts_like_a_zip(&mut file).map_err(read_error)?;
    let dir = fresh_dir("lambda-task-")?;
    let mut unix = UnixEntries::default();
    let unzipped_size = if is_zip {
        let size = extract_zip(artifact, dir.path(), UNZIPPED_LIMIT, false, &mut unix)?;
        if let Some(extensions) = extension_layer(dir.path()) {
            return Err(InvokeError::ExtensionLayer {
                path: artifact.to_path_buf(),
                extensions,
            });
        }
        size
    } else {
        let dest = dir.path().join(BOOTSTRAP);
        fs::copy(artifact, &dest).map_err(InvokeError::TaskRoot)?;
        let mode = crate::host::mode_bits(&metadata).unwrap_or(0o755);
        set_mode(&dest, mode)?;
        unix.modes.insert(BOOTSTRAP.to_owned(), mode);
        metadata.len()
    };
    Ok(TaskRoot {
        dir,
        unzipped_size,
        unix,
    })
}

/// An empty task root, for an image that brings its own `/var/task` (`--image`).
pub fn empty() -> Result<TaskRoot, InvokeError> {
    Ok(TaskRoot {
        dir: fresh_dir("lambda-task-")?,
        unzipped_size: 0,
        unix: UnixEntries::default(),
    })
}

/// A temporary directory standing for one of Lambda's (`/var/task`, `/opt`): 755 whatever the
/// umask, as there.
fn fresh_dir(prefix: &str) -> Result<tempfile::TempDir, InvokeError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(InvokeError::TaskRoot)?;
    set_mode(dir.path(), 0o755)?;
    Ok(dir)
}

/// Whether the file begins as a zip does (a local header, or an empty zip's end record).
fn starts_like_a_zip(file: &mut File) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    Ok(file.read(&mut magic)? == 4 && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06"))
}

/// What stands for `/opt`: the layers, extracted in order into a temporary directory that is
/// removed on drop. It is not at `/opt` (the function does not run in a chroot, as
/// `/var/task` is not there either): its path replaces `/opt` in `PATH` and `LD_LIBRARY_PATH`.
#[derive(Debug)]
pub struct OptDir {
    dir: tempfile::TempDir,
    pub unzipped_size: u64,
    /// The modes and links, for a container, where the file system does not keep them.
    pub unix: UnixEntries,
}

impl OptDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The external extensions Lambda starts: the files in `/opt/extensions/`, by name.
    pub fn extensions(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.path().join(EXTENSIONS_DIR)) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found
    }
}

/// Extracts `layers` into a fresh `/opt` in the order given: a later layer's file replaces an
/// earlier one's, as Lambda merges layers. `used` is what the function's own code takes of
/// Lambda's 250 MB, which counts the layers too. Every entry must stay inside `/opt`.
pub fn prepare_opt(layers: &[PathBuf], used: u64) -> Result<OptDir, InvokeError> {
    let dir = fresh_dir("lambda-opt-")?;
    let mut unix = UnixEntries::default();
    let mut total = used;
    for layer in layers {
        let read_error = |source| InvokeError::ReadLayer {
            path: layer.clone(),
            source,
        };
        let is_zip = File::open(layer)
            .and_then(|mut f| starts_like_a_zip(&mut f))
            .map_err(read_error)?;
        if !is_zip {
            return Err(InvokeError::BadZip {
                path: layer.clone(),
                reason: "a layer is a zip, and this is not one".to_owned(),
            });
        }
        let budget = UNZIPPED_LIMIT.saturating_sub(total);
        let size =
            extract_zip(layer, dir.path(), budget, true, &mut unix).map_err(|e| match e {
                InvokeError::UnsafeEntry(name) => InvokeError::UnsafeLayerEntry {
                    layer: layer.clone(),
                    name,
                },
                InvokeError::TooLargeUnzipped(size) => InvokeError::TooLargeUnzipped(total + size),
                other => other,
            })?;
        total += size;
    }
    Ok(OptDir {
        dir,
        unzipped_size: total - used,
        unix,
    })
}

/// The `extensions/<name>` of an extracted zip that has no `bootstrap`: an extension layer.
fn extension_layer(root: &Path) -> Option<Vec<String>> {
    if root.join(BOOTSTRAP).exists() {
        return None;
    }
    let mut names: Vec<String> = fs::read_dir(root.join(EXTENSIONS_DIR))
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| format!("{EXTENSIONS_DIR}{}", entry.file_name().to_string_lossy()))
        .collect();
    names.sort();
    (!names.is_empty()).then_some(names)
}

/// Extracts every entry with its Unix mode (0644 when the zip records none, as for zips made
/// on Windows: such a `bootstrap` is not executable on Lambda either). Symlinks are created
/// last, so that no file is ever written through one. With `replace` (a layer over earlier
/// ones), a file or link already there is removed first, never written through. Each entry's
/// mode and each link is also recorded in `unix`; a host without symlinks (Windows) creates
/// none, and its container gets them from there.
fn extract_zip(
    path: &Path,
    root: &Path,
    limit: u64,
    replace: bool,
    unix: &mut UnixEntries,
) -> Result<u64, InvokeError> {
    let bad_zip = |e: zip::result::ZipError| InvokeError::BadZip {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // The hostile entries that `cargo lambda-build` refuses to ship are refused here too, before
    // anything is written; the checks below stay, as a second line.
    let rules = verify::Rules {
        limit,
        ..verify::Rules::EXTRACT
    };
    verify::verify_file(path, &rules).map_err(|e| match e {
        VerifyError::UnsafeName { name, .. }
        | VerifyError::Symlink { name, .. }
        | VerifyError::NotAFile { name, .. }
        | VerifyError::FileIsDirectory { inside: name, .. }
        | VerifyError::Duplicate(Some(name)) => InvokeError::UnsafeEntry(name),
        VerifyError::TooLarge { size, .. } => InvokeError::TooLargeUnzipped(size),
        VerifyError::Read(source) => InvokeError::ReadArtifact {
            path: path.to_path_buf(),
            source,
        },
        other => InvokeError::BadZip {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    let file = File::open(path).map_err(|source| InvokeError::ReadArtifact {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file).map_err(bad_zip)?;
    let mut total: u64 = 0;
    let mut symlinks = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(bad_zip)?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry #{index}"));
        let relative = entry
            .enclosed_name()
            .ok_or_else(|| InvokeError::UnsafeEntry(name.clone()))?;
        let dest = root.join(&relative);
        total = total.saturating_add(entry.size());
        if total > limit {
            return Err(InvokeError::TooLargeUnzipped(total));
        }
        let mode = entry.unix_mode().map(|m| m & 0o777);
        let key = unix_key(&relative);
        if entry.is_dir() {
            create_dirs(root, &dest)?;
            set_mode(&dest, mode.unwrap_or(0o755))?;
            unix.modes.insert(key, mode.unwrap_or(0o755));
        } else if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| bad_zip(e.into()))?;
            symlinks.push((dest, target));
        } else {
            unix.links.remove(&key);
            unix.modes.insert(key, mode.unwrap_or(0o644));
            if let Some(parent) = dest.parent() {
                create_dirs(root, parent)?;
            }
            if replace {
                remove_non_dir(&dest, &name)?;
            }
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            // Private until its mode is set from the zip's.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut out = options.open(&dest).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    InvokeError::UnsafeEntry(name.clone())
                } else {
                    InvokeError::TaskRoot(e)
                }
            })?;
            io::copy(&mut entry, &mut out).map_err(|e| InvokeError::BadZip {
                path: path.to_path_buf(),
                reason: format!("cannot extract `{name}`: {e}"),
            })?;
            set_mode(&dest, mode.unwrap_or(0o644))?;
        }
    }
    make_links(root, symlinks, replace, unix)?;
    Ok(total)
}

/// The zip's links, once its files are written: none is ever written through.
fn make_links(
    root: &Path,
    symlinks: Vec<(PathBuf, String)>,
    replace: bool,
    unix: &mut UnixEntries,
) -> Result<(), InvokeError> {
    for (dest, target) in symlinks {
        if let Some(parent) = dest.parent() {
            create_dirs(root, parent)?;
        }
        let relative = dest.strip_prefix(root).unwrap_or(&dest);
        if replace {
            remove_non_dir(&dest, &relative.to_string_lossy())?;
        }
        symlink(&target, &dest)?;
        let key = unix_key(relative);
        unix.modes.remove(&key);
        unix.links.insert(key, target);
    }
    Ok(())
}

/// Removes the file or link an earlier layer left at `dest`; a directory there is refused, as
/// a file cannot replace it.
fn remove_non_dir(dest: &Path, name: &str) -> Result<(), InvokeError> {
    match fs::symlink_metadata(dest) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => Err(InvokeError::UnsafeEntry(name.to_owned())),
        Ok(_) => fs::remove_file(dest).map_err(InvokeError::TaskRoot),
    }
}

/// Creates the directories down to `dir`, refusing to go through anything but a real directory
/// inside `root`.
fn create_dirs(root: &Path, dir: &Path) -> Result<(), InvokeError> {
    let relative = dir.strip_prefix(root).unwrap_or(dir);
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(InvokeError::UnsafeEntry(
                    relative.to_string_lossy().into_owned(),
                ));
            }
            Err(_) => {
                fs::create_dir(&current).map_err(InvokeError::TaskRoot)?;
                set_mode(&current, 0o755)?;
            }
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), InvokeError> {
    crate::host::set_path_mode(path, mode).map_err(InvokeError::TaskRoot)
}

/// A link as Lambda's extraction makes it; Windows makes none (its links need a privilege and
/// know files from directories): the container gets it from [`UnixEntries`].
fn symlink(target: &str, dest: &Path) -> Result<(), InvokeError> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, dest).map_err(InvokeError::TaskRoot);
    #[cfg(not(unix))]
    {
        let _ = (target, dest);
        Ok(())
    }
}

/// A path below the task root or `/opt` as [`UnixEntries`] keys it: `/`-separated.
fn unix_key(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

// The task root's parts are Unix files (modes, links), which Windows keeps in `UnixEntries`
// instead (tested with `container::files_tar`).
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn zip_with(entries: &[(&str, u32, &[u8])]) -> tempfile::NamedTempFile {
        zip_of(entries, None)
    }

    /// A zip of `entries` (a name ending in `/` is a directory) and, last, the symbolic link
    /// `link` (its name, its target) when there is one.
    fn zip_of(
        entries: &[(&str, u32, &[u8])],
        link: Option<(&str, &str)>,
    ) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, mode, data) in entries {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            if name.ends_with('/') {
                zip.add_directory(*name, options).unwrap();
            } else {
                zip.start_file(*name, options).unwrap();
                zip.write_all(data).unwrap();
            }
        }
        if let Some((name, target)) = link {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            zip.add_symlink(name, target, options).unwrap();
        }
        zip.finish().unwrap();
        file
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn zips_are_extracted_with_their_modes() {
        let zip = zip_with(&[
            ("bootstrap", 0o755, b"#!/bin/sh\n"),
            ("lib/", 0o755, b""),
            ("lib/libx.so", 0o644, b"x"),
            ("data/deep/f.txt", 0o600, b"abc"),
        ]);
        let root = prepare(zip.path()).unwrap();
        assert_eq!(mode(&root.bootstrap()), 0o755);
        assert_eq!(mode(&root.path().join("lib/libx.so")), 0o644);
        assert_eq!(mode(&root.path().join("data/deep/f.txt")), 0o600);
        assert_eq!(mode(&root.path().join("data/deep")), 0o755);
        assert_eq!(root.unzipped_size, 10 + 1 + 3);
        let path = root.path().to_path_buf();
        drop(root);
        assert!(!path.exists(), "the task root is removed");
    }

    #[test]
    fn a_non_executable_bootstrap_stays_non_executable() {
        let zip = zip_with(&[("bootstrap", 0o644, b"\x7fELF")]);
        let root = prepare(zip.path()).unwrap();
        assert_eq!(mode(&root.bootstrap()), 0o644);
    }

    #[test]
    fn a_bare_executable_becomes_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("my-fn");
        fs::write(&exe, b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o750)).unwrap();
        let root = prepare(&exe).unwrap();
        assert_eq!(fs::read(root.bootstrap()).unwrap(), b"#!/bin/sh\necho hi\n");
        assert_eq!(mode(&root.bootstrap()), 0o750);
    }

    #[test]
    fn more_than_lambdas_unzipped_limit_is_refused() {
        let zip = zip_with(&[("bootstrap", 0o755, b"12345"), ("data", 0o644, b"123456")]);
        let root = tempfile::tempdir().unwrap();
        let err = extract_zip(
            zip.path(),
            root.path(),
            10,
            false,
            &mut UnixEntries::default(),
        )
        .unwrap_err();
        assert!(matches!(err, InvokeError::TooLargeUnzipped(11)), "{err}");
        assert!(
            err.to_string()
                .starts_with("Unzipped size must be smaller than 262144000 bytes"),
            "{err}"
        );
    }

    #[test]
    fn entries_escaping_the_root_are_refused() {
        let zip = zip_with(&[("../evil", 0o644, b"x")]);
        assert!(matches!(
            prepare(zip.path()),
            Err(InvokeError::UnsafeEntry(name)) if name == "../evil"
        ));
    }

    #[test]
    fn links_out_of_the_task_root_are_refused_and_links_inside_kept() {
        let zip_with_link = |target: &str| {
            let file = tempfile::NamedTempFile::new().unwrap();
            let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
            let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            zip.start_file("bootstrap", options).unwrap();
            zip.write_all(b"#!/bin/sh\n").unwrap();
            zip.add_symlink("lib/libx.so", target, options).unwrap();
            zip.finish().unwrap();
            file
        };
        for target in ["/etc/passwd", "../../etc/passwd", "a/../../x"] {
            let zip = zip_with_link(target);
            assert!(
                matches!(prepare(zip.path()), Err(InvokeError::UnsafeEntry(name)) if name == "lib/libx.so"),
                "{target}"
            );
        }
        let root = prepare(zip_with_link("libx.so.1").path()).unwrap();
        assert_eq!(
            fs::read_link(root.path().join("lib/libx.so")).unwrap(),
            Path::new("libx.so.1")
        );
    }

    fn zip_with_link(
        entries: &[(&str, u32, &[u8])],
        link: (&str, &str),
    ) -> tempfile::NamedTempFile {
        zip_of(entries, Some(link))
    }

    #[test]
    fn layers_merge_into_opt_in_order_the_later_winning() {
        let first = zip_with(&[
            ("lib/libshared.so", 0o644, b"first"),
            ("lib/libfirst.so", 0o644, b"1"),
            ("extensions/a", 0o755, b"#!/bin/sh\n"),
        ]);
        let second = zip_with_link(
            &[
                ("lib/libshared.so", 0o644, b"second!"),
                ("bin/tool", 0o755, b"t"),
            ],
            ("lib/libfirst.so", "libshared.so"),
        );
        let opt = prepare_opt(&[first.path().into(), second.path().into()], 100).unwrap();
        let read = |p: &str| fs::read(opt.path().join(p)).unwrap();
        assert_eq!(read("lib/libshared.so"), b"second!");
        // The later layer's link replaced the earlier file, and was not written through.
        assert_eq!(read("lib/libfirst.so"), b"second!");
        assert_eq!(mode(&opt.path().join("bin/tool")), 0o755);
        assert_eq!(opt.extensions(), [opt.path().join("extensions/a")]);
        assert_eq!(opt.unzipped_size, 5 + 1 + 10 + 7 + 1 + 12);

        let err = prepare_opt(&[first.path().into()], UNZIPPED_LIMIT - 10).unwrap_err();
        assert!(matches!(err, InvokeError::TooLargeUnzipped(_)), "{err}");
    }

    #[test]
    fn a_layer_escaping_opt_is_refused_naming_the_layer_and_entry() {
        let dotdot = zip_with(&[("../etc/evil", 0o644, b"x")]);
        let absolute = zip_with(&[("/etc/evil", 0o644, b"x")]);
        let link_out = zip_with_link(&[], ("lib/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"));
        let link_up = zip_with_link(&[], ("lib/up", "../../etc"));
        for (zip, entry) in [
            (&dotdot, "../etc/evil"),
            (&absolute, "/etc/evil"),
            (&link_out, "lib/libc.so.6"),
            (&link_up, "lib/up"),
        ] {
            let err = prepare_opt(&[zip.path().into()], 0).unwrap_err();
            match &err {
                InvokeError::UnsafeLayerEntry { layer, name } => {
                    assert_eq!(layer, zip.path());
                    assert_eq!(name, entry);
                }
                other => panic!("{entry}: {other:?}"),
            }
            assert!(err.to_string().contains("outside /opt"), "{err}");
            assert!(err.help().unwrap().contains("relative"), "{:?}", err.help());
        }
        let not_zip = tempfile::NamedTempFile::new().unwrap();
        fs::write(not_zip.path(), b"hello").unwrap();
        assert!(matches!(
            prepare_opt(&[not_zip.path().into()], 0),
            Err(InvokeError::BadZip { .. })
        ));
        assert!(matches!(
            prepare_opt(&[PathBuf::from("/nonexistent/layer.zip")], 0),
            Err(InvokeError::ReadLayer { .. })
        ));
    }
}
