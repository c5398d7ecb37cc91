//! Atomic writes: every final artifact goes to a temporary file beside it, named after this
//! process, and is renamed into place; a failed or interrupted run leaves the previous artifact
//! intact, and the next run sweeps the temporary files of runs that were killed.

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::{Artifact, Cancel, PackageError, copy, open, write_error};

/// For writes that nothing interrupts.
pub(super) fn never() -> Option<i32> {
    None
}

/// Copies `source` to `dest` with `mode`, atomically; creates `dest`'s directory.
pub fn write_file(dest: &Path, source: &Path, mode: u32) -> Result<Artifact, PackageError> {
    write_file_cancellable(dest, source, mode, &never)
}

/// [`write_file`] that stops, leaving `dest` as it was, once `cancel` says so.
pub fn write_file_cancellable(
    dest: &Path,
    source: &Path,
    mode: u32,
    cancel: Cancel,
) -> Result<Artifact, PackageError> {
    let mut input = open(source)?;
    let mut tmp = temp_beside(dest)?;
    let mut hasher = Sha256::new();
    let size = copy(
        &mut input,
        source,
        &mut Checked::new(tmp.as_file_mut(), cancel),
        dest,
        Some(&mut hasher),
    )?;
    checkpoint(dest, cancel)?;
    persist(tmp, dest, mode)?;
    Ok(Artifact {
        path: dest.to_path_buf(),
        size,
        unzipped_size: size,
        sha256: hasher.finalize().into(),
    })
}

/// `path` if it exists, else its nearest ancestor that does (`.` for a relative path none of
/// whose parts exist): where creating `path` starts.
pub fn nearest_existing(path: &Path) -> &Path {
    path.ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.exists())
        .unwrap_or(path)
}

/// Whether this process may write into `dir`, or create it: asks the kernel about the directory,
/// or its nearest existing ancestor, without writing anything, so a run can refuse before
/// compiling for minutes. It answers for permissions and read-only file systems; a full disk
/// shows only when the write fails (and the previous artifact stays).
#[cfg(unix)]
pub fn check_writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let existing = nearest_existing(dir);
    if !existing.exists() {
        return Ok(());
    }
    if !existing.is_dir() {
        // A file where a directory has to be.
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let path = std::ffi::CString::new(existing.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
pub fn check_writable(_: &Path) -> io::Result<()> {
    Ok(())
}

/// The temporary file lives beside `dest` so that the final rename stays within one file system,
/// where it is atomic. Dropping it removes it. Its name carries this process's id
/// (`.lambda.zip.<pid>.<random>.tmp`), so that the files of a run that was killed (SIGKILL, a
/// power cut: no destructor ran) can be told apart from those of a run still writing, and removed.
pub(super) fn temp_beside(dest: &Path) -> Result<NamedTempFile, PackageError> {
    let dir = parent_dir(dest);
    fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    remove_stale_temps_beside(dest);
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    tempfile::Builder::new()
        .prefix(&format!(".{name}.{}.", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| write_error(dest, e))
}

/// Removes the temporary files beside `dest` (see [`temp_beside`]) whose process no longer runs.
/// Both ways a run settles `dest` call it: writing it anew, and [`reuse`] keeping it because
/// nothing changed (else the file of a run killed after its rename would stay until the input
/// changed). Best effort: a file that cannot be removed is left for the next run.
pub(super) fn remove_stale_temps_beside(dest: &Path) {
    let Ok(read) = fs::read_dir(parent_dir(dest)) else {
        return;
    };
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.");
    for entry in read.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|rest| rest.ends_with(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !crate::host::process_is_running(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Returns [`PackageError::Interrupted`] once `cancel` says so.
pub(super) fn checkpoint(dest: &Path, cancel: Cancel) -> Result<(), PackageError> {
    match cancel() {
        Some(code) => Err(PackageError::Interrupted {
            path: dest.to_path_buf(),
            code,
        }),
        None => Ok(()),
    }
}

/// A writer that asks `cancel` before each write, so a long write stops soon after a signal.
///
/// After the first failed write (a signal, a full disk) it turns into a sink that keeps its
/// position: the zip writer's `Drop` then finalises into nothing instead of failing again and
/// printing its own message to stderr. The file is thrown away anyway.
pub(super) struct Checked<'a, W> {
    inner: W,
    cancel: Cancel<'a>,
    /// `Some((position, length))` of the virtual file once a write failed.
    sunk: Option<(u64, u64)>,
}

impl<'a, W: Seek> Checked<'a, W> {
    pub(super) fn new(inner: W, cancel: Cancel<'a>) -> Self {
        Checked {
            inner,
            cancel,
            sunk: None,
        }
    }

    fn fail(&mut self, error: io::Error) -> io::Error {
        let position = self.inner.stream_position().unwrap_or(0);
        let length = self.inner.seek(SeekFrom::End(0)).unwrap_or(position);
        self.sunk = Some((position, length.max(position)));
        error
    }
}

/// The marker inside the `io::Error` that carries an interruption through the zip writer.
#[derive(Debug)]
pub(super) struct Cancelled(pub(super) i32);

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted")
    }
}

impl std::error::Error for Cancelled {}

impl<W: Write + Seek> Write for Checked<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((position, length)) = &mut self.sunk {
            *position += buf.len() as u64;
            *length = (*length).max(*position);
            return Ok(buf.len());
        }
        if let Some(code) = (self.cancel)() {
            return Err(self.fail(io::Error::other(Cancelled(code))));
        }
        self.inner.write(buf).map_err(|e| self.fail(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.sunk.is_some() {
            return Ok(());
        }
        self.inner.flush().map_err(|e| self.fail(e))
    }
}

impl<W: Seek> Seek for Checked<'_, W> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let Some((position, length)) = &mut self.sunk else {
            return self.inner.seek(pos);
        };
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => position.checked_add_signed(d),
            SeekFrom::End(d) => length.checked_add_signed(d),
        };
        *position = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(*position)
    }
}

/// Makes the content durable before it becomes visible under `dest`, in one rename.
pub(super) fn persist(tmp: NamedTempFile, dest: &Path, mode: u32) -> Result<(), PackageError> {
    set_mode(tmp.as_file(), mode).map_err(|e| write_error(dest, e))?;
    tmp.as_file().sync_all().map_err(|e| write_error(dest, e))?;
    // On failure the temporary file comes back inside the error and is removed on drop.
    tmp.persist(dest).map_err(|e| write_error(dest, e.error))?;
    Ok(())
}

pub(super) use crate::host::set_mode;

pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::{EPOCH, fixture, listing, mode_of};
    use crate::package::{write_zip, zip_timestamp};

    #[test]
    fn the_nearest_existing_directory_is_where_creating_starts() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("a/b/c");
        assert_eq!(nearest_existing(&missing), dir.path());
        assert_eq!(nearest_existing(dir.path()), dir.path());
        assert_eq!(
            nearest_existing(Path::new("no-such-dir-here/x")),
            Path::new(".")
        );
    }

    #[test]
    fn temp_files_of_dead_processes_are_removed_and_those_of_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let entries = fixture(dir.path());
        let out = dir.path().join("out");
        fs::create_dir_all(&out).unwrap();
        // A process that has exited (its id is not reused this soon), and this live one.
        let dead = crate::host::exited_process_id();
        let stale = format!(".lambda.zip.{dead}.aB3dE9.tmp");
        let live = format!(".lambda.zip.{}.zZ9yY8.tmp", std::process::id());
        let other = format!(".other.zip.{dead}.aB3dE9.tmp");
        for name in [&stale, &live, &other] {
            fs::write(out.join(name), "partial").unwrap();
        }
        write_zip(&out.join("lambda.zip"), &entries, zip_timestamp(EPOCH)).unwrap();
        let mut expected = vec![other, live, "lambda.zip".to_owned()];
        expected.sort();
        assert_eq!(listing(&out), expected);
    }

    #[test]
    fn write_file_describes_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("empty");
        fs::write(&source, b"").unwrap();
        let dest = dir.path().join("out/bootstrap");
        let artifact = write_file(&dest, &source, 0o755).unwrap();
        assert_eq!((artifact.size, artifact.unzipped_size), (0, 0));
        assert_eq!(
            artifact.sha256_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            artifact.code_sha256(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(mode_of(&dest, 0o755), 0o755);

        let err = write_file(&dest, &dir.path().join("nope"), 0o755).unwrap_err();
        assert!(
            err.to_string().ends_with("`: no such file or directory"),
            "{err}"
        );
        assert_eq!(listing(dest.parent().unwrap()), ["bootstrap"]);
    }
}
