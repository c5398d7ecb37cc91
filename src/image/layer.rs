//! The function's layer: `bootstrap` in the runtime directory and the `--include` files under
//! the task root, as a tar that depends only on their names, modes and contents: entries
//! sorted, owned by root, one timestamp (`SOURCE_DATE_EPOCH`, else 0), gzip without a name or
//! a time of its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::lambda::{BOOTSTRAP, IMAGE_RUNTIME_DIR, TASK_ROOT};
use crate::plan::ZipEntry;

/// Gzip's level pinned, so that a change of flate2's default cannot change the digest.
const GZIP_LEVEL: u32 = 6;

/// A layer as the registry and the image's config name it.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The tar.gz itself.
    pub blob: Vec<u8>,
    /// `sha256:...` of `blob`: the manifest's descriptor.
    pub digest: String,
    /// `sha256:...` of the uncompressed tar: the config's `rootfs.diff_ids`.
    pub diff_id: String,
    /// The uncompressed tar's size, counted against Lambda's image limit.
    pub unpacked_size: u64,
}

/// One entry of the tar: a directory (`source` is `None`) or a file read from `source`.
struct Entry {
    source: Option<PathBuf>,
    mode: u32,
}

/// `sha256:` and the hex digest of `bytes`, as OCI descriptors write it.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The layer of `bootstrap` (at `/var/runtime/bootstrap`) and `includes` (under `/var/task`),
/// every entry stamped `mtime`.
pub fn function_layer(bootstrap: &Path, includes: &[ZipEntry], mtime: u64) -> io::Result<Layer> {
    let tar = tar_of(&entries(bootstrap, includes), mtime)?;
    let mut gzip = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    gzip.write_all(&tar)?;
    let blob = gzip.finish()?;
    Ok(Layer {
        digest: digest_of(&blob),
        diff_id: digest_of(&tar),
        unpacked_size: tar.len() as u64,
        blob,
    })
}

/// Every entry by its path in the image (relative, as tars write them), directories with a
/// trailing '/', each parent directory once: a map, so the order is the names' order.
fn entries(bootstrap: &Path, includes: &[ZipEntry]) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    let add_parents = |entries: &mut BTreeMap<String, Entry>, path: &str| {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash + 1;
            if end < path.len() {
                entries.entry(path[..end].to_owned()).or_insert(Entry {
                    source: None,
                    mode: 0o755,
                });
            }
        }
    };
    let runtime = IMAGE_RUNTIME_DIR.trim_start_matches('/');
    let task = TASK_ROOT.trim_start_matches('/');
    let bootstrap_path = format!("{runtime}/{BOOTSTRAP}");
    add_parents(&mut entries, &bootstrap_path);
    entries.insert(
        bootstrap_path,
        Entry {
            source: Some(bootstrap.to_path_buf()),
            mode: 0o755,
        },
    );
    add_parents(&mut entries, &format!("{task}/"));
    entries.insert(
        format!("{task}/"),
        Entry {
            source: None,
            mode: 0o755,
        },
    );
    for include in includes {
        let path = format!("{task}/{}", include.name);
        add_parents(&mut entries, &path);
        let source = (!include.is_dir()).then(|| include.source.clone());
        let mode = if include.is_dir() {
            0o755
        } else {
            include.mode
        };
        entries.insert(path, Entry { source, mode });
    }
    entries
}

fn tar_of(entries: &BTreeMap<String, Entry>, mtime: u64) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        // GNU headers: a name over 100 bytes gets a long-name entry, as docker's own tars do.
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        match &entry.source {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, path, io::empty())?;
            }
            Some(source) => {
                let file = File::open(source).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot read `{}`: {e}", source.display()))
                })?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(file.metadata()?.len());
                tar.append_data(&mut header, path, file)?;
            }
        }
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(layer: &Layer) -> Vec<(String, u32, u64)> {
        let gz = flate2::read::GzDecoder::new(layer.blob.as_slice());
        let mut archive = tar::Archive::new(gz);
        (archive.entries().unwrap())
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn bootstrap_in_the_runtime_dir_includes_under_the_task_root_sorted_and_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = dir.path().join("bootstrap");
        std::fs::write(&bootstrap, b"\x7fELF").unwrap();
        let data = dir.path().join("data.json");
        std::fs::write(&data, b"{}").unwrap();
        let includes = [ZipEntry {
            name: "conf/data.json".into(),
            source: data,
            mode: 0o644,
        }];
        let layer = function_layer(&bootstrap, &includes, 1_700_000_000).unwrap();
        assert_eq!(
            names(&layer),
            [
                ("var/".into(), 0o755, 1_700_000_000),
                ("var/runtime/".into(), 0o755, 1_700_000_000),
                ("var/runtime/bootstrap".into(), 0o755, 1_700_000_000),
                ("var/task/".into(), 0o755, 1_700_000_000),
                ("var/task/conf/".into(), 0o755, 1_700_000_000),
                ("var/task/conf/data.json".into(), 0o644, 1_700_000_000),
            ]
        );
        let again = function_layer(&bootstrap, &includes, 1_700_000_000).unwrap();
        assert_eq!(
            (&again.digest, &again.diff_id),
            (&layer.digest, &layer.diff_id)
        );
        let other_time = function_layer(&bootstrap, &includes, 0).unwrap();
        assert_ne!(other_time.digest, layer.digest);
    }
}
