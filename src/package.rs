//! Packaging: the staged `bootstrap`, the reproducible `lambda.zip`, checksums and Lambda's size
//! limits.
//!
//! Every final artifact is written to a temporary file beside it and renamed into place: a failed
//! or interrupted run leaves the previous artifact intact, never a half-written one.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::lambda::{self, BOOTSTRAP, DIRECT_UPLOAD_LIMIT, UNZIPPED_LIMIT};
use crate::plan::{FunctionPlan, Output};
use crate::verify;

/// The reproducible-builds.org convention for a build's fixed clock.
const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Deflate level pinned so a change of the `zip` crate's default cannot change the bytes.
const DEFLATE_LEVEL: i64 = 6;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read `{}`: {}", .path.display(), describe(.error))]
    Read { path: PathBuf, error: io::Error },

    #[error("cannot write `{}`: {}", .path.display(), describe(.error))]
    Write { path: PathBuf, error: io::Error },

    #[error("cannot write `{}`: {message}", .path.display())]
    Zip { path: PathBuf, message: String },

    #[error("cannot package `{}`: not a regular file", .path.display())]
    NotAFile { path: PathBuf },

    #[error("cannot package `{name}` in the zip: {reason}")]
    InvalidEntry { name: String, reason: &'static str },

    #[error(
        "the function is {} unzipped ({size} bytes), over Lambda's limit of {} ({limit} bytes) \
         for a function and its layers",
        mb(*.size),
        mb(*.limit)
    )]
    TooLarge { size: u64, limit: u64 },

    #[error("`{}` did not pass its check before shipping: {source}", .path.display())]
    Verify {
        path: PathBuf,
        source: crate::verify::VerifyError,
    },

    #[error(
        "`{SOURCE_DATE_EPOCH}` must be a whole number of seconds since 1970-01-01 UTC, not `{value}`"
    )]
    InvalidSourceDateEpoch { value: String },

    /// A signal came while writing: the temporary file is gone, the previous artifact stays.
    /// Holds the exit code the signal asks for (130 or 143).
    #[error("interrupted while writing `{}`", .path.display())]
    Interrupted { path: PathBuf, code: i32 },
}

/// Asked between chunks of a write: `Some(exit code)` once a signal asks the run to stop.
pub type Cancel<'a> = &'a dyn Fn() -> Option<i32>;

/// For writes that nothing interrupts.
fn never() -> Option<i32> {
    None
}

impl PackageError {
    /// A one-line fix, for the caller to print after "help: ".
    #[must_use]
    pub fn help(&self) -> Option<String> {
        match self {
            Self::Write { path, error } if error.kind() == io::ErrorKind::PermissionDenied => {
                Some(format!(
                    "make `{}` writable, or choose another directory with `--outdir`",
                    parent_dir(path).display()
                ))
            }
            Self::Write { error, .. } if error.kind() == io::ErrorKind::StorageFull => {
                Some("free some disk space and run again".to_owned())
            }
            Self::TooLarge { .. } => Some(
                "shrink the binary (`strip = true` and `lto = true` under `[profile.release]`), \
                 or deploy a container image instead, which Lambda allows up to 10 GB"
                    .to_owned(),
            ),
            Self::Verify { source, .. } => Some(source.help()),
            Self::InvalidSourceDateEpoch { .. } => Some(format!(
                "set it with `export {SOURCE_DATE_EPOCH}=$(git log -1 --format=%ct)`, or unset it"
            )),
            _ => None,
        }
    }
}

/// One file for the zip. `name` is a relative path with '/' separators; a name that ends with
/// '/' is a directory entry (as in the zip format itself), whose `source` is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub source: PathBuf,
    /// Permission bits: Lambda wants 755 for executables, 644 for other files.
    pub mode: u32,
}

/// A final artifact as written: what to report and to compare with Lambda's `CodeSha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: PathBuf,
    pub size: u64,
    pub unzipped_size: u64,
    pub sha256: [u8; 32],
}

impl Artifact {
    #[must_use]
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// Lambda reports a function's `CodeSha256` as the base64 of the zip's SHA-256.
    #[must_use]
    pub fn code_sha256(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sha256)
    }

    /// Over 50 MB the zip must be uploaded through S3.
    #[must_use]
    pub fn exceeds_direct_upload(&self) -> bool {
        self.size > DIRECT_UPLOAD_LIMIT
    }
}

/// The timestamp for a `SOURCE_DATE_EPOCH` value read by the caller; empty counts as unset, as CI
/// systems often export the variable empty, and a negative value is clamped to 1980.
pub fn zip_timestamp_from(value: Option<&str>) -> Result<DateTime, PackageError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DateTime::DEFAULT);
    };
    let seconds: i128 = value
        .parse()
        .map_err(|_| PackageError::InvalidSourceDateEpoch {
            value: value.to_owned(),
        })?;
    Ok(zip_timestamp(
        u64::try_from(seconds.max(0)).unwrap_or(u64::MAX),
    ))
}

/// A zip (DOS) timestamp holds 1980-01-01 to 2107-12-31 in two-second steps, with no time zone:
/// the time is taken as UTC, clamped to that range and rounded down to an even second.
#[must_use]
pub fn zip_timestamp(epoch_seconds: u64) -> DateTime {
    let (year, month, day) = civil_from_days(epoch_seconds / 86_400);
    let secs = epoch_seconds % 86_400;
    let (hour, minute, second) = (
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
    );
    let (year, month, day, hour, minute, second) = match year {
        ..1980 => return DateTime::DEFAULT,
        1980..=2107 => (year as u16, month, day, hour, minute, second),
        _ => (2107, 12, 31, 23, 59, 58),
    };
    DateTime::from_date_and_time(year, month, day, hour, minute, second)
        .unwrap_or(DateTime::DEFAULT)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// Copies the built executable to `staging_dir/bootstrap`, executable (755) as Lambda requires.
pub fn stage_bootstrap(
    executable: &Path,
    staging_dir: &Path,
    cancel: Cancel,
) -> Result<PathBuf, PackageError> {
    write_file_cancellable(&staging_dir.join(BOOTSTRAP), executable, 0o755, cancel)
        .map(|artifact| artifact.path)
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

/// Writes a zip that Lambda can run and that depends only on the entries' names, modes and
/// contents: `bootstrap` first, the rest sorted, Unix modes, deflate, one timestamp, no extra
/// fields (no on-disk mtimes, uids or gids). Creates `dest`'s directory.
pub fn write_zip(
    dest: &Path,
    entries: &[ZipEntry],
    timestamp: DateTime,
) -> Result<Artifact, PackageError> {
    write_zip_cancellable(dest, entries, timestamp, &never)
}

/// [`write_zip`] that stops, leaving `dest` as it was, once `cancel` says so: it is asked after
/// every chunk written, so a signal during a large zip takes effect at once.
pub fn write_zip_cancellable(
    dest: &Path,
    entries: &[ZipEntry],
    timestamp: DateTime,
    cancel: Cancel,
) -> Result<Artifact, PackageError> {
    let entries = ordered(entries)?;
    let mut declared = 0u64;
    for entry in entries.iter().filter(|e| !e.is_dir()) {
        let metadata = fs::metadata(&entry.source).map_err(|e| read_error(&entry.source, e))?;
        if !metadata.is_file() {
            return Err(PackageError::NotAFile {
                path: entry.source.clone(),
            });
        }
        declared = declared.saturating_add(metadata.len());
    }
    check_unzipped_size(declared)?;

    let mut tmp = temp_beside(dest)?;
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .system(System::Unix)
        .last_modified_time(timestamp);
    let mut zip = ZipWriter::new(BufWriter::new(Checked::new(tmp.as_file_mut(), cancel)));
    let mut unzipped_size = 0u64;
    for entry in &entries {
        if entry.is_dir() {
            zip.add_directory(entry.name.as_str(), options.unix_permissions(entry.mode))
                .map_err(|e| zip_error(dest, e))?;
            continue;
        }
        let mut input = open(&entry.source)?;
        zip.start_file(entry.name.as_str(), options.unix_permissions(entry.mode))
            .map_err(|e| zip_error(dest, e))?;
        unzipped_size += copy(&mut input, &entry.source, &mut zip, dest, None)?;
    }
    zip.finish()
        .map_err(|e| zip_error(dest, e))?
        .flush()
        .map_err(|e| write_error(dest, e))?;
    // A file that grew after the first check must not slip past the limit.
    check_unzipped_size(unzipped_size)?;

    let file = tmp.as_file_mut();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| write_error(dest, e))?;
    // Read back as Lambda will read it, before it can replace the previous zip.
    let verified = verify::verify(
        io::BufReader::with_capacity(64 * 1024, &mut *file),
        &verify::Rules::SHIP,
    )
    .map_err(|source| PackageError::Verify {
        path: dest.to_path_buf(),
        source,
    })?;
    if verified.unzipped_size != unzipped_size
        || !verified.names.iter().eq(entries.iter().map(|e| &e.name))
    {
        return Err(PackageError::Zip {
            path: dest.to_path_buf(),
            message: "it does not read back as written".to_owned(),
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| write_error(dest, e))?;
    let mut hasher = Sha256::new();
    let size = copy(file, dest, &mut io::sink(), dest, Some(&mut hasher))?;
    checkpoint(dest, cancel)?;
    persist(tmp, dest, 0o644)?;
    Ok(Artifact {
        path: dest.to_path_buf(),
        size,
        unzipped_size,
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

/// Validates names and orders entries: `bootstrap` first, then by name.
fn ordered(entries: &[ZipEntry]) -> Result<Vec<&ZipEntry>, PackageError> {
    let invalid = |entry: &ZipEntry, reason| PackageError::InvalidEntry {
        name: entry.name.clone(),
        reason,
    };
    let mut sorted: Vec<&ZipEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| (a.name != BOOTSTRAP, &a.name).cmp(&(b.name != BOOTSTRAP, &b.name)));
    for entry in &sorted {
        let path = entry.name.strip_suffix('/').unwrap_or(&entry.name);
        if entry.name.contains('\\') || path.split('/').any(|part| matches!(part, "" | "." | ".."))
        {
            return Err(invalid(
                entry,
                "names must be relative paths with `/` separators and no `.` or `..` parts, \
                 as Lambda extracts the zip into /var/task",
            ));
        }
        if entry.name == BOOTSTRAP && entry.mode & 0o111 == 0 {
            return Err(invalid(
                entry,
                "Lambda only starts an executable `bootstrap` (mode 755)",
            ));
        }
    }
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(invalid(pair[0], "two entries have this name"));
    }
    Ok(sorted)
}

impl ZipEntry {
    /// A directory entry: its name ends with '/'.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

fn check_unzipped_size(size: u64) -> Result<(), PackageError> {
    if size > UNZIPPED_LIMIT {
        return Err(PackageError::TooLarge {
            size,
            limit: UNZIPPED_LIMIT,
        });
    }
    Ok(())
}

fn open(path: &Path) -> Result<File, PackageError> {
    File::open(path).map_err(|e| read_error(path, e))
}

/// Copies `input` to `output`, hashing what passes through; errors name the side that failed.
fn copy(
    input: &mut impl Read,
    input_path: &Path,
    output: &mut impl Write,
    output_path: &Path,
    mut hasher: Option<&mut Sha256>,
) -> Result<u64, PackageError> {
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(input_path, e)),
        };
        if let Some(hasher) = hasher.as_deref_mut() {
            hasher.update(&buf[..n]);
        }
        output
            .write_all(&buf[..n])
            .map_err(|e| write_error(output_path, e))?;
        total += n as u64;
    }
}

/// The temporary file lives beside `dest` so that the final rename stays within one file system,
/// where it is atomic. Dropping it removes it. Its name carries this process's id
/// (`.lambda.zip.<pid>.<random>.tmp`), so that the files of a run that was killed (SIGKILL, a
/// power cut: no destructor ran) can be told apart from those of a run still writing, and removed.
fn temp_beside(dest: &Path) -> Result<NamedTempFile, PackageError> {
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
fn remove_stale_temps_beside(dest: &Path) {
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
        if !process_is_running(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn process_is_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    // EPERM: it exists, owned by someone else.
    alive || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_is_running(_: u32) -> bool {
    true
}

/// Returns [`PackageError::Interrupted`] once `cancel` says so.
fn checkpoint(dest: &Path, cancel: Cancel) -> Result<(), PackageError> {
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
struct Checked<'a, W> {
    inner: W,
    cancel: Cancel<'a>,
    /// `Some((position, length))` of the virtual file once a write failed.
    sunk: Option<(u64, u64)>,
}

impl<'a, W: Seek> Checked<'a, W> {
    fn new(inner: W, cancel: Cancel<'a>) -> Self {
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
struct Cancelled(i32);

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
fn persist(tmp: NamedTempFile, dest: &Path, mode: u32) -> Result<(), PackageError> {
    set_mode(tmp.as_file(), mode).map_err(|e| write_error(dest, e))?;
    tmp.as_file().sync_all().map_err(|e| write_error(dest, e))?;
    // On failure the temporary file comes back inside the error and is removed on drop.
    tmp.persist(dest).map_err(|e| write_error(dest, e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &File, _: u32) -> io::Result<()> {
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn read_error(path: &Path, error: io::Error) -> PackageError {
    PackageError::Read {
        path: path.to_path_buf(),
        error,
    }
}

fn write_error(path: &Path, error: io::Error) -> PackageError {
    if let Some(Cancelled(code)) = error.get_ref().and_then(|e| e.downcast_ref::<Cancelled>()) {
        return PackageError::Interrupted {
            path: path.to_path_buf(),
            code: *code,
        };
    }
    PackageError::Write {
        path: path.to_path_buf(),
        error,
    }
}

fn zip_error(path: &Path, error: zip::result::ZipError) -> PackageError {
    match error {
        zip::result::ZipError::Io(error) => write_error(path, error),
        other => PackageError::Zip {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

/// "Permission denied (os error 13)" -> "permission denied".
pub fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Sizes as AWS states its limits: 1 MB = 1,048,576 bytes.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

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
    Ok(hex(&hasher.finalize()))
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
    (hex(&sha256) == recorded.sha256).then(|| Artifact {
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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The name of the stamp file in a function's staging directory (see [`reuse`]).
const STAMP_FILE: &str = "package-stamp.json";

/// Writes the function's zip, or its executable alone, from the executable cargo built and the
/// includes. When nothing changed since the run that wrote it (same contents, same output), the
/// file is kept as it is and the result says so (`true`).
pub fn package_function(
    function: &FunctionPlan,
    executable: &Path,
    includes: Vec<ZipEntry>,
    timestamp: DateTime,
    cancel: Cancel,
) -> Result<(Artifact, bool), PackageError> {
    let zip = matches!(function.output, Output::Zip(_));
    let mut entries = if zip { includes } else { Vec::new() };
    // Lambda reads extensions from `/opt/extensions/` of a layer; the directory gets its own
    // entry (mode 755) unless an include brought it.
    if zip && function.extension && !entries.iter().any(|e| e.name == lambda::EXTENSIONS_DIR) {
        entries.push(ZipEntry {
            name: lambda::EXTENSIONS_DIR.into(),
            source: function.staging_dir.clone(),
            mode: 0o755,
        });
    }
    entries.push(ZipEntry {
        name: function.entry_name.clone(),
        source: executable.to_path_buf(),
        mode: 0o755,
    });
    let fingerprint = fingerprint(&entries, zip, timestamp)?;
    let stamp = function.staging_dir.join(STAMP_FILE);
    if let Some(artifact) = reuse(&stamp, &fingerprint, function.output.path()) {
        return Ok((artifact, true));
    }

    let staged = stage_bootstrap(executable, &function.staging_dir, cancel)?;
    if let Some(dir) = function.output.path().parent() {
        fs::create_dir_all(dir).map_err(|error| PackageError::Write {
            path: dir.to_path_buf(),
            error,
        })?;
    }
    let artifact = match &function.output {
        Output::Zip(path) => {
            if let Some(executable) = entries.last_mut() {
                executable.source = staged;
            }
            write_zip_cancellable(path, &entries, timestamp, cancel)?
        }
        Output::Executable(path) => write_file_cancellable(path, &staged, 0o755, cancel)?,
    };
    record(&stamp, &fingerprint, &artifact)?;
    Ok((artifact, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14 22:13:20 UTC.
    const EPOCH: u64 = 1_700_000_000;

    fn dt(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> DateTime {
        DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap()
    }

    fn bootstrap_bytes() -> Vec<u8> {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.extend((0..100_000u32).map(|i| (i % 251) as u8));
        bytes
    }

    /// Sources in `dir/src`, listed out of order, with modes on disk unlike the ones requested.
    fn fixture(dir: &Path) -> Vec<ZipEntry> {
        let src = dir.join("src");
        fs::create_dir_all(src.join("lib")).unwrap();
        let files: [(&str, &[u8], u32); 4] = [
            ("lib/libfoo.so", b"not really a library", 0o755),
            ("config/app.json", b"{\"a\": 1}\n", 0o644),
            ("bootstrap", &bootstrap_bytes(), 0o755),
            ("VERSION", b"1.2.3\n", 0o644),
        ];
        files
            .into_iter()
            .map(|(name, content, mode)| {
                let source = src.join(name.replace('/', "_"));
                fs::write(&source, content).unwrap();
                ZipEntry {
                    name: name.to_owned(),
                    source,
                    mode,
                }
            })
            .collect()
    }

    const EXPECTED: [(&str, u32); 4] = [
        ("bootstrap", 0o100_755),
        ("VERSION", 0o100_644),
        ("config/app.json", 0o100_644),
        ("lib/libfoo.so", 0o100_755),
    ];

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Walks the central directory and each local header by hand.
    struct RawEntry {
        name: String,
        made_by_system: u8,
        flags: u16,
        method: u16,
        time: u16,
        date: u16,
        external: u32,
        central_extra: u16,
        local_extra: u16,
    }

    fn raw_entries(bytes: &[u8]) -> Vec<RawEntry> {
        let eocd = bytes.len() - 22;
        assert_eq!(
            u32_at(bytes, eocd),
            0x0605_4b50,
            "no archive comment expected"
        );
        assert_ne!(u32_at(bytes, eocd - 20), 0x0706_4b50, "no zip64 locator");
        let count = u16_at(bytes, eocd + 10) as usize;
        let mut at = u32_at(bytes, eocd + 16) as usize;
        (0..count)
            .map(|_| {
                assert_eq!(u32_at(bytes, at), 0x0201_4b50);
                let name_len = u16_at(bytes, at + 28) as usize;
                let central_extra = u16_at(bytes, at + 30);
                let comment_len = u16_at(bytes, at + 32) as usize;
                let local = u32_at(bytes, at + 42) as usize;
                assert_eq!(u32_at(bytes, local), 0x0403_4b50);
                let entry = RawEntry {
                    name: String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).unwrap(),
                    made_by_system: bytes[at + 5],
                    flags: u16_at(bytes, at + 8),
                    method: u16_at(bytes, at + 10),
                    time: u16_at(bytes, at + 12),
                    date: u16_at(bytes, at + 14),
                    external: u32_at(bytes, at + 38),
                    central_extra,
                    local_extra: u16_at(bytes, local + 28),
                };
                assert_eq!(u16_at(bytes, local + 10), entry.time);
                assert_eq!(u16_at(bytes, local + 12), entry.date);
                at += 46 + name_len + central_extra as usize + comment_len;
                entry
            })
            .collect()
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn zip_layout_names_modes_order_timestamp_method() {
        let dir = tempfile::tempdir().unwrap();
        let entries = fixture(dir.path());
        let dest = dir.path().join("out/lambda.zip");
        let artifact = write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();

        let mut archive = zip::ZipArchive::new(File::open(&dest).unwrap()).unwrap();
        let mut unzipped = 0;
        for (i, (name, mode)) in EXPECTED.into_iter().enumerate() {
            let mut file = archive.by_index(i).unwrap();
            assert_eq!(file.name().unwrap(), name);
            assert_eq!(file.unix_mode(), Some(mode), "{name}");
            assert_eq!(file.last_modified(), Some(dt(2023, 11, 14, 22, 13, 20)));
            assert_eq!(file.compression(), CompressionMethod::Deflated);
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            let source = &entries.iter().find(|e| e.name == name).unwrap().source;
            assert_eq!(content, fs::read(source).unwrap(), "{name}");
            unzipped += content.len() as u64;
        }
        assert_eq!(archive.len(), EXPECTED.len());

        let bytes = fs::read(&dest).unwrap();
        assert_eq!(artifact.path, dest);
        assert_eq!(artifact.size, bytes.len() as u64);
        assert_eq!(artifact.unzipped_size, unzipped);
        assert_eq!(artifact.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert!(!artifact.exceeds_direct_upload());
        assert_eq!(mode_of(&dest), 0o644);
        assert_eq!(listing(dest.parent().unwrap()), ["lambda.zip"]);
    }

    #[test]
    fn directory_entries_are_stored_with_their_mode_and_no_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = fixture(dir.path());
        for name in ["lib/", "config/"] {
            entries.push(ZipEntry {
                name: name.into(),
                source: dir.path().join("does-not-exist"),
                mode: 0o755,
            });
        }
        let dest = dir.path().join("lambda.zip");
        let artifact = write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();
        let raw = raw_entries(&fs::read(&dest).unwrap());
        let got: Vec<(&str, u32)> = raw
            .iter()
            .map(|e| (e.name.as_str(), e.external >> 16))
            .collect();
        assert_eq!(
            got,
            [
                ("bootstrap", 0o100_755),
                ("VERSION", 0o100_644),
                ("config/", 0o40_755),
                ("config/app.json", 0o100_644),
                ("lib/", 0o40_755),
                ("lib/libfoo.so", 0o100_755),
            ]
        );
        for entry in &raw {
            assert_eq!(
                (entry.central_extra, entry.local_extra),
                (0, 0),
                "{}",
                entry.name
            );
        }
        let without: Vec<ZipEntry> = entries.iter().filter(|e| !e.is_dir()).cloned().collect();
        let files_only =
            write_zip(&dir.path().join("b.zip"), &without, zip_timestamp(EPOCH)).unwrap();
        assert_eq!(artifact.unzipped_size, files_only.unzipped_size);
    }

    #[test]
    fn zip_has_no_extra_fields_and_unix_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("lambda.zip");
        write_zip(&dest, &fixture(dir.path()), zip_timestamp(EPOCH)).unwrap();
        let raw = raw_entries(&fs::read(&dest).unwrap());
        let stamp = zip_timestamp(EPOCH);
        let names: Vec<_> = raw.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, EXPECTED.map(|(name, _)| name));
        for (entry, (_, mode)) in raw.iter().zip(EXPECTED) {
            assert_eq!(
                (entry.central_extra, entry.local_extra),
                (0, 0),
                "{}",
                entry.name
            );
            assert_eq!(entry.made_by_system, 3, "made by Unix");
            assert_eq!(entry.flags & 0x8, 0, "no data descriptor");
            assert_eq!(entry.method, 8, "deflate");
            assert_eq!(
                (entry.date, entry.time),
                (stamp.datepart(), stamp.timepart())
            );
            assert_eq!(entry.external >> 16, mode);
        }
    }

    #[test]
    fn zip_is_deterministic_whatever_the_files_on_disk_say() {
        let dir = tempfile::tempdir().unwrap();
        let entries = fixture(dir.path());
        let first = dir.path().join("a/lambda.zip");
        let second = dir.path().join("b/lambda.zip");
        let a = write_zip(&first, &entries, zip_timestamp(EPOCH)).unwrap();
        let b = write_zip(&second, &entries, zip_timestamp(EPOCH)).unwrap();
        assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());
        assert_eq!(a.sha256, b.sha256);

        // Touch and chmod the sources, reorder the list: same bytes.
        for entry in &entries {
            let file = File::options().write(true).open(&entry.source).unwrap();
            file.set_modified(
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890),
            )
            .unwrap();
            set_mode(&file, 0o600).unwrap();
        }
        let reversed: Vec<ZipEntry> = entries.iter().rev().cloned().collect();
        let c = write_zip(&second, &reversed, zip_timestamp(EPOCH)).unwrap();
        assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());
        assert_eq!(a.code_sha256(), c.code_sha256());

        // The timestamp is part of the bytes.
        let d = write_zip(&second, &entries, zip_timestamp(EPOCH + 2)).unwrap();
        assert_ne!(a.sha256, d.sha256);
    }

    #[test]
    fn failed_write_keeps_the_previous_zip_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = fixture(dir.path());
        let out = dir.path().join("out");
        let dest = out.join("lambda.zip");
        write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();
        let before = fs::read(&dest).unwrap();

        let missing = dir.path().join("src/missing");
        entries.push(ZipEntry {
            name: "missing".into(),
            source: missing.clone(),
            mode: 0o644,
        });
        let err = write_zip(&dest, &entries, DateTime::DEFAULT).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read `{}`: no such file or directory",
                missing.display()
            )
        );
        assert_eq!(fs::read(&dest).unwrap(), before);
        assert_eq!(listing(&out), ["lambda.zip"]);
    }

    #[test]
    fn a_signal_mid_write_keeps_the_previous_zip_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let entries = fixture(dir.path());
        let out = dir.path().join("out");
        let dest = out.join("lambda.zip");
        // How often an uninterrupted write asks; the last question comes just before the rename.
        let asked = std::cell::Cell::new(0usize);
        let counting = || {
            asked.set(asked.get() + 1);
            None
        };
        write_zip_cancellable(&dest, &entries, zip_timestamp(EPOCH), &counting).unwrap();
        let questions = asked.get();
        assert!(questions > 2, "asked only {questions} times");
        let before = fs::read(&dest).unwrap();

        // The signal arrives at the first write, mid-way, and at the last moment.
        for at in [1, questions / 2, questions] {
            asked.set(0);
            let cancel = || {
                asked.set(asked.get() + 1);
                (asked.get() >= at).then_some(143)
            };
            let err =
                write_zip_cancellable(&dest, &entries, DateTime::DEFAULT, &cancel).unwrap_err();
            assert!(
                matches!(err, PackageError::Interrupted { code: 143, .. }),
                "at {at}: {err}"
            );
            assert_eq!(fs::read(&dest).unwrap(), before, "at {at}");
            assert_eq!(listing(&out), ["lambda.zip"], "at {at}");
        }
    }

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
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
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

    #[cfg(target_os = "linux")]
    #[test]
    fn read_failure_mid_zip_keeps_the_previous_zip_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = fixture(dir.path());
        let dest = dir.path().join("out/lambda.zip");
        write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();
        let before = fs::read(&dest).unwrap();

        // A regular file by its metadata whose first read fails (EIO), after `bootstrap` is written.
        entries.push(ZipEntry {
            name: "zz".into(),
            source: "/proc/self/mem".into(),
            mode: 0o644,
        });
        let err = write_zip(&dest, &entries, DateTime::DEFAULT).unwrap_err();
        assert!(
            matches!(err, PackageError::Read { ref path, .. } if path == Path::new("/proc/self/mem")),
            "{err}"
        );
        assert_eq!(fs::read(&dest).unwrap(), before);
        assert_eq!(listing(dest.parent().unwrap()), ["lambda.zip"]);
    }

    #[test]
    fn a_zip_that_fails_verification_never_replaces_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let entries = fixture(dir.path());
        let out = dir.path().join("out");
        let dest = out.join("lambda.zip");
        write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();
        let before = fs::read(&dest).unwrap();

        // Nothing Lambda could start: written, read back, refused before the rename.
        let data: Vec<ZipEntry> = entries
            .into_iter()
            .filter(|e| e.name != "bootstrap" && e.mode == 0o644)
            .collect();
        let err = write_zip(&dest, &data, DateTime::DEFAULT).unwrap_err();
        assert!(
            matches!(
                err,
                PackageError::Verify {
                    source: verify::VerifyError::NoEntrypoint,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with(&format!(
            "`{}` did not pass its check before shipping: no `bootstrap`",
            dest.display()
        )));
        assert!(err.help().unwrap().contains("cargo lambda-build --zip"));
        assert_eq!(fs::read(&dest).unwrap(), before);
        assert_eq!(listing(&out), ["lambda.zip"]);
    }

    #[test]
    fn failed_rename_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let entries = fixture(dir.path());
        let out = dir.path().join("out");
        let dest = out.join("lambda.zip");
        fs::create_dir_all(dest.join("occupied")).unwrap();
        let err = write_zip(&dest, &entries, DateTime::DEFAULT).unwrap_err();
        assert!(
            matches!(err, PackageError::Write { ref path, .. } if *path == dest),
            "{err}"
        );
        assert_eq!(listing(&out), ["lambda.zip"]);
        assert_eq!(listing(&dest), ["occupied"]);
    }

    #[test]
    fn over_the_unzipped_limit_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = fixture(dir.path());
        let out = dir.path().join("out");
        let dest = out.join("lambda.zip");
        write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();
        let before = fs::read(&dest).unwrap();

        let big = dir.path().join("src/big");
        File::create(&big).unwrap().set_len(UNZIPPED_LIMIT).unwrap(); // sparse
        entries.push(ZipEntry {
            name: "big".into(),
            source: big,
            mode: 0o644,
        });
        let err = write_zip(&dest, &entries, DateTime::DEFAULT).unwrap_err();
        let PackageError::TooLarge { size, limit } = err else {
            panic!("{err}")
        };
        assert_eq!(limit, 262_144_000);
        assert!(size > limit);
        let message = err.to_string();
        assert!(
            message.contains("250.0 MB") && message.contains("262144000 bytes"),
            "{message}"
        );
        assert!(err.help().unwrap().contains("strip = true"));
        assert_eq!(fs::read(&dest).unwrap(), before);
        assert_eq!(listing(&out), ["lambda.zip"]);

        // Nothing at all when there was no previous zip.
        let fresh = dir.path().join("fresh/lambda.zip");
        assert!(write_zip(&fresh, &entries, DateTime::DEFAULT).is_err());
        assert!(!fresh.parent().unwrap().exists());
    }

    #[test]
    fn limits_are_lambdas() {
        assert!(check_unzipped_size(UNZIPPED_LIMIT).is_ok());
        assert!(check_unzipped_size(UNZIPPED_LIMIT + 1).is_err());
        let artifact = |size| Artifact {
            path: PathBuf::new(),
            size,
            unzipped_size: size,
            sha256: [0; 32],
        };
        assert!(!artifact(52_428_800).exceeds_direct_upload());
        assert!(artifact(52_428_801).exceeds_direct_upload());
    }

    #[test]
    fn invalid_entries_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out/lambda.zip");
        let source = dir.path().join("f");
        fs::write(&source, b"x").unwrap();
        let entry = |name: &str, mode| ZipEntry {
            name: name.into(),
            source: source.clone(),
            mode,
        };
        for name in [
            "", "/abs", "../up", "a/../b", "./a", "a//b", "a//", "/", "a\\b",
        ] {
            let err = write_zip(&dest, &[entry(name, 0o644)], DateTime::DEFAULT).unwrap_err();
            assert!(
                matches!(err, PackageError::InvalidEntry { .. }),
                "{name:?}: {err}"
            );
        }
        let twice = [entry("a", 0o644), entry("a", 0o755)];
        assert!(matches!(
            write_zip(&dest, &twice, DateTime::DEFAULT),
            Err(PackageError::InvalidEntry { .. })
        ));
        let err = write_zip(&dest, &[entry("bootstrap", 0o644)], DateTime::DEFAULT).unwrap_err();
        assert!(err.to_string().contains("executable `bootstrap`"), "{err}");
        assert!(!dest.parent().unwrap().exists());

        let err = write_zip(
            &dest,
            &[entry("dir", 0o644)].map(|e| ZipEntry {
                source: dir.path().into(),
                ..e
            }),
            DateTime::DEFAULT,
        )
        .unwrap_err();
        assert!(matches!(err, PackageError::NotAFile { .. }), "{err}");
    }

    #[test]
    fn zip_timestamp_converts_and_clamps() {
        assert_eq!(zip_timestamp(0), DateTime::DEFAULT);
        assert_eq!(zip_timestamp(315_532_799), DateTime::DEFAULT);
        assert_eq!(zip_timestamp(315_532_800), dt(1980, 1, 1, 0, 0, 0));
        assert_eq!(zip_timestamp(EPOCH), dt(2023, 11, 14, 22, 13, 20));
        assert_eq!(
            zip_timestamp(EPOCH + 1),
            dt(2023, 11, 14, 22, 13, 20),
            "two-second steps"
        );
        assert_eq!(zip_timestamp(951_782_400), dt(2000, 2, 29, 0, 0, 0));
        assert_eq!(zip_timestamp(4_354_819_199), dt(2107, 12, 31, 23, 59, 58));
        assert_eq!(zip_timestamp(4_354_819_200), dt(2107, 12, 31, 23, 59, 58));
        assert_eq!(zip_timestamp(u64::MAX), dt(2107, 12, 31, 23, 59, 58));
    }

    #[test]
    fn source_date_epoch_parsing() {
        assert_eq!(zip_timestamp_from(None).unwrap(), DateTime::DEFAULT);
        assert_eq!(zip_timestamp_from(Some("")).unwrap(), DateTime::DEFAULT);
        assert_eq!(
            zip_timestamp_from(Some("1700000000")).unwrap(),
            zip_timestamp(EPOCH)
        );
        assert_eq!(
            zip_timestamp_from(Some(" 1700000000\n")).unwrap(),
            zip_timestamp(EPOCH)
        );
        assert_eq!(zip_timestamp_from(Some("-5")).unwrap(), DateTime::DEFAULT);
        assert_eq!(
            zip_timestamp_from(Some("99999999999999999999999")).unwrap(),
            zip_timestamp(u64::MAX)
        );
        for bad in ["abc", "1.5", "17e8", "0x10"] {
            let err = zip_timestamp_from(Some(bad)).unwrap_err();
            assert!(
                err.to_string().starts_with("`SOURCE_DATE_EPOCH` must be"),
                "{err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
            assert!(err.help().is_some());
        }
    }

    #[test]
    fn stage_bootstrap_is_an_executable_copy() {
        let dir = tempfile::tempdir().unwrap();
        let executable = dir.path().join("my-function");
        fs::write(&executable, bootstrap_bytes()).unwrap();
        set_mode(&File::open(&executable).unwrap(), 0o644).unwrap();
        let staging = dir.path().join("target/lambda/x86_64");
        for _ in 0..2 {
            let staged = stage_bootstrap(&executable, &staging, &never).unwrap();
            assert_eq!(staged, staging.join("bootstrap"));
            assert_eq!(mode_of(&staged), 0o755);
            assert_eq!(fs::read(&staged).unwrap(), bootstrap_bytes());
            assert_eq!(listing(&staging), ["bootstrap"]);
        }
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
        assert_eq!(mode_of(&dest), 0o755);

        let err = write_file(&dest, &dir.path().join("nope"), 0o755).unwrap_err();
        assert!(
            err.to_string().ends_with("`: no such file or directory"),
            "{err}"
        );
        assert_eq!(listing(dest.parent().unwrap()), ["bootstrap"]);
    }

    #[test]
    fn error_messages_are_lower_case_and_help_where_it_can() {
        let err = write_error(Path::new("/x/lambda.zip"), io::Error::from_raw_os_error(13));
        assert_eq!(
            err.to_string(),
            "cannot write `/x/lambda.zip`: permission denied"
        );
        assert_eq!(
            err.help().unwrap(),
            "make `/x` writable, or choose another directory with `--outdir`"
        );
    }
}
