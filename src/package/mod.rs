//! Packaging: the staged `bootstrap`, the reproducible `lambda.zip`, checksums and Lambda's size
//! limits.
//!
//! Every final artifact is written to a temporary file beside it and renamed into place: a failed
//! or interrupted run leaves the previous artifact intact, never a half-written one.
//!
//! `zip` writes the reproducible zip, `atomic` the temporary file and its rename, `stamp` records
//! what an artifact was made from so an unchanged rerun keeps it, `include` resolves the extra
//! files of `include = [...]`.

mod atomic;
pub mod include;
mod stamp;
mod zip;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ::zip::DateTime;
use base64::Engine as _;
use sha2::{Digest, Sha256};

pub use atomic::{check_writable, nearest_existing, write_file, write_file_cancellable};
pub use zip::{
    ZipEntry, source_date_epoch_seconds, write_zip, write_zip_cancellable, zip_timestamp,
    zip_timestamp_from,
};

use crate::lambda::{self, BOOTSTRAP, DIRECT_UPLOAD_LIMIT};
use crate::plan::{FunctionPlan, Output};
use atomic::{Cancelled, parent_dir};

/// The reproducible-builds.org convention for a build's fixed clock.
const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

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
        hex::encode(self.sha256)
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

/// The name of the stamp file in a function's staging directory (see [`stamp::reuse`]).
const STAMP_FILE: &str = "package-stamp.json";

/// Writes the function's zip, or its executable alone, from the executable cargo built and what
/// the function brings (`brought.includes`). When nothing changed since the run that wrote it (same contents, same output), the
/// file is kept as it is and the result says so (`true`).
pub fn package_function(
    function: &FunctionPlan,
    executable: &Path,
    timestamp: DateTime,
    cancel: Cancel,
) -> Result<(Artifact, bool), PackageError> {
    let zip = matches!(function.output, Output::Zip(_));
    let mut entries = if zip {
        function.brought.includes.clone()
    } else {
        Vec::new()
    };
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
    let fingerprint = stamp::fingerprint(&entries, zip, timestamp)?;
    let stamp = function.staging_dir.join(STAMP_FILE);
    if let Some(artifact) = stamp::reuse(&stamp, &fingerprint, function.output.path()) {
        return Ok((artifact, true));
    }

    let staged = stage_bootstrap(executable, &function.staging_dir, cancel)?;
    if let Some(dir) = function.output.path().parent() {
        std::fs::create_dir_all(dir).map_err(|error| PackageError::Write {
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
    stamp::record(&stamp, &fingerprint, &artifact)?;
    Ok((artifact, false))
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

/// "Permission denied (os error 13)" -> "permission denied".
pub fn describe(error: &io::Error) -> String {
    // Windows words these "The system cannot find the file specified." and the like: the
    // messages users meet most read the same on every host.
    if cfg!(windows) {
        match error.kind() {
            io::ErrorKind::NotFound => return "no such file or directory".to_owned(),
            io::ErrorKind::PermissionDenied => return "permission denied".to_owned(),
            _ => {}
        }
    }
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

/// The names of a zip's entries, as written (a layer's, to see what its `lib/` holds).
pub fn entry_names(path: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| describe(&e))?;
    let archive = ::zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip: {e}"))?;
    archive
        .file_names()
        .map(|name| {
            name.map(|n| n.into_owned())
                .map_err(|e| format!("not a readable zip: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::atomic::{never, set_mode};
    use super::zip::check_unzipped_size;
    use super::*;
    use crate::lambda::UNZIPPED_LIMIT;

    /// 2023-11-14 22:13:20 UTC.
    pub(super) const EPOCH: u64 = 1_700_000_000;

    pub(super) fn bootstrap_bytes() -> Vec<u8> {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.extend((0..100_000u32).map(|i| (i % 251) as u8));
        bytes
    }

    /// Sources in `dir/src`, listed out of order, with modes on disk unlike the ones requested.
    pub(super) fn fixture(dir: &Path) -> Vec<ZipEntry> {
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

    pub(super) fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The file's permission bits, or `mode` itself where the file system has none (Windows):
    /// what Lambda sees is the zip's modes, which every host writes alike.
    pub(super) fn mode_of(path: &Path, mode: u32) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = mode;
            fs::metadata(path).unwrap().permissions().mode() & 0o7777
        }
        #[cfg(not(unix))]
        {
            assert!(path.exists(), "{}", path.display());
            mode
        }
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
    fn stage_bootstrap_is_an_executable_copy() {
        let dir = tempfile::tempdir().unwrap();
        let executable = dir.path().join("my-function");
        fs::write(&executable, bootstrap_bytes()).unwrap();
        set_mode(&File::open(&executable).unwrap(), 0o644).unwrap();
        let staging = dir.path().join("target/lambda/x86_64");
        for _ in 0..2 {
            let staged = stage_bootstrap(&executable, &staging, &never).unwrap();
            assert_eq!(staged, staging.join("bootstrap"));
            assert_eq!(mode_of(&staged, 0o755), 0o755);
            assert_eq!(fs::read(&staged).unwrap(), bootstrap_bytes());
            assert_eq!(listing(&staging), ["bootstrap"]);
        }
    }

    // errno 13 is EACCES on Unix only
    #[cfg(unix)]
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

    #[derive(Debug)]
    struct Packaged {
        artifact: Artifact,
        fresh: bool,
    }

    #[test]
    fn an_unchanged_function_is_kept_and_a_changed_one_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let executable = dir.path().join("my-extension");
        fs::write(&executable, bootstrap_bytes()).unwrap();
        let staging = dir.path().join("target/lambda/x86_64/my-extension");
        let output = dir.path().join("out/lambda.zip");
        let function = FunctionPlan {
            package: "my-extension".into(),
            bin: "my-extension".into(),
            manifest_path: dir.path().join("Cargo.toml"),
            staging_dir: staging.clone(),
            output: Output::Zip(output.clone()),
            entry_name: "extensions/my-extension".into(),
            extension: true,
            include: Vec::new(),
            package_root: dir.path().to_path_buf(),
            outdir: dir.path().join("out"),
            layers: Vec::new(),
            run: Default::default(),
            brought: crate::plan::Brought::default(),
        };
        let package = |epoch| {
            let (artifact, fresh) =
                package_function(&function, &executable, zip_timestamp(epoch), &never).unwrap();
            Packaged { artifact, fresh }
        };

        let first = package(EPOCH);
        assert!(!first.fresh);
        // Closed before the next write: Windows cannot replace a file that is open.
        let names: Vec<String> = {
            let mut archive = ::zip::ZipArchive::new(File::open(&output).unwrap()).unwrap();
            (0..archive.len())
                .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
                .collect()
        };
        assert_eq!(names, ["extensions/", "extensions/my-extension"]);
        assert_eq!(listing(&staging), ["bootstrap", STAMP_FILE]);

        let second = package(EPOCH);
        assert!(second.fresh);
        assert_eq!(second.artifact, first.artifact);

        // Another timestamp is another zip.
        let third = package(EPOCH + 2);
        assert!(!third.fresh);
        assert_ne!(third.artifact.sha256, first.artifact.sha256);

        // A zip changed behind the tool's back is written again, not trusted.
        fs::write(&output, b"edited").unwrap();
        let fourth = package(EPOCH + 2);
        assert!(!fourth.fresh);
        assert_eq!(fourth.artifact, third.artifact);
        assert_eq!(listing(output.parent().unwrap()), ["lambda.zip"]);
    }
}
