//! The package stamp: what an artifact was made from, recorded beside the staging directory so
//! that a rerun with nothing changed keeps the file it wrote last time, byte for byte.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::DateTime;

use super::atomic::{persist, remove_stale_temps_beside, temp_beside};
use super::{Artifact, PackageError, ZipEntry, copy, open, write_error};

/// What an artifact was made from: entry names, modes and contents, the output kind and the
/// timestamp. Equal fingerprints give equal bytes, which is what lets a rerun with nothing
/// changed keep the file it wrote last time (see [`reuse`]).
pub fn fingerprint(
    entries: &[ZipEntry],
    zip: bool,
    timestamp: DateTime,
) -> Result<String, PackageError> {
    let mut hasher = Sha256::new();
    hasher.update(format!("v1 zip={zip} time={timestamp:?}\n"));
    for entry in entries {
        hasher.update(format!("{} {:o} ", entry.name, entry.mode));
        if entry.is_dir() {
            hasher.update(b"\n");
            continue;
        }
        let mut input = open(&entry.source)?;
        copy(
            &mut input,
            &entry.source,
            &mut io::sink(),
            &entry.source,
            Some(&mut hasher),
        )?;
        hasher.update(b"\n");
    }
    Ok(hex::encode(hasher.finalize()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stamp {
    fingerprint: String,
    path: PathBuf,
    size: u64,
    unzipped_size: u64,
    sha256: String,
}

/// The artifact recorded in `stamp` when it was made from `fingerprint` and `dest` still holds
/// exactly those bytes (size and SHA-256 checked, so an edited or truncated file is rewritten).
/// Keeping `dest` removes killed runs' temporary files beside it, as writing it would.
pub fn reuse(stamp: &Path, fingerprint: &str, dest: &Path) -> Option<Artifact> {
    let artifact = recorded_artifact(stamp, fingerprint, dest)?;
    remove_stale_temps_beside(dest);
    Some(artifact)
}

fn recorded_artifact(stamp: &Path, fingerprint: &str, dest: &Path) -> Option<Artifact> {
    let recorded: Stamp = serde_json::from_slice(&fs::read(stamp).ok()?).ok()?;
    if recorded.fingerprint != fingerprint || recorded.path != dest {
        return None;
    }
    if fs::metadata(dest).ok()?.len() != recorded.size {
        return None;
    }
    let mut hasher = Sha256::new();
    copy(
        &mut open(dest).ok()?,
        dest,
        &mut io::sink(),
        dest,
        Some(&mut hasher),
    )
    .ok()?;
    let sha256: [u8; 32] = hasher.finalize().into();
    (hex::encode(sha256) == recorded.sha256).then(|| Artifact {
        path: dest.to_path_buf(),
        size: recorded.size,
        unzipped_size: recorded.unzipped_size,
        sha256,
    })
}

/// Records what `artifact` was made from, for [`reuse`]. Written beside and renamed, so a
/// concurrent run reads either the old stamp or the new one.
pub fn record(stamp: &Path, fingerprint: &str, artifact: &Artifact) -> Result<(), PackageError> {
    let recorded = Stamp {
        fingerprint: fingerprint.to_string(),
        path: artifact.path.clone(),
        size: artifact.size,
        unzipped_size: artifact.unzipped_size,
        sha256: artifact.sha256_hex(),
    };
    let mut tmp = temp_beside(stamp)?;
    let json =
        serde_json::to_vec(&recorded).map_err(|e| write_error(stamp, io::Error::other(e)))?;
    tmp.write_all(&json).map_err(|e| write_error(stamp, e))?;
    persist(tmp, stamp, 0o644)
}
