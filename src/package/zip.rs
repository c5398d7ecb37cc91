//! The reproducible zip writer: the same entries (names, modes, contents) and timestamp always
//! give the same bytes, read back with Lambda's rules before they replace the previous zip.

use std::fs;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use time::{OffsetDateTime, PrimitiveDateTime};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use super::atomic::{Checked, checkpoint, never, persist, temp_beside};
use super::{Artifact, Cancel, PackageError, copy, open, read_error, write_error};
use crate::lambda::{BOOTSTRAP, UNZIPPED_LIMIT};
use crate::verify;

/// Deflate level pinned so a change of the `zip` crate's default cannot change the bytes.
const DEFLATE_LEVEL: i64 = 6;

/// Declared with the function's plan, which lists what its zip holds.
pub use crate::plan::ZipEntry;

/// The timestamp for a `SOURCE_DATE_EPOCH` value read by the caller; empty counts as unset, as CI
/// systems often export the variable empty, and a negative value is clamped to 1980.
pub fn zip_timestamp_from(value: Option<&str>) -> Result<DateTime, PackageError> {
    if value.map(str::trim).is_none_or(str::is_empty) {
        return Ok(DateTime::DEFAULT);
    }
    Ok(zip_timestamp(source_date_epoch_seconds(value)?))
}

/// The seconds of a `SOURCE_DATE_EPOCH` value: 0 when unset or empty, as CI systems often
/// export the variable empty; a negative value is clamped to 0. The zip's timestamp and a
/// container image's times both come from it.
pub fn source_date_epoch_seconds(value: Option<&str>) -> Result<u64, PackageError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    let seconds: i128 = value
        .parse()
        .map_err(|_| PackageError::InvalidSourceDateEpoch {
            value: value.to_owned(),
        })?;
    Ok(u64::try_from(seconds.max(0)).unwrap_or(u64::MAX))
}

/// A zip (DOS) timestamp holds 1980-01-01 to 2107-12-31 in two-second steps, with no time zone:
/// the time is taken as UTC, clamped to that range and rounded down to an even second.
#[must_use]
pub fn zip_timestamp(epoch_seconds: u64) -> DateTime {
    let latest = || DateTime::from_date_and_time(2107, 12, 31, 23, 59, 58);
    let time = i64::try_from(epoch_seconds)
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok());
    match time {
        Some(time) if time.year() < 1980 => Ok(DateTime::DEFAULT),
        Some(time) if time.year() <= 2107 => {
            DateTime::try_from(PrimitiveDateTime::new(time.date(), time.time()))
        }
        _ => latest(),
    }
    .unwrap_or(DateTime::DEFAULT)
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
                concat!(
                    "names must be relative paths with `/` separators and no `.` or `..` parts, \
                     as Lambda extracts the zip into ",
                    crate::lambda::literal!(task_root)
                ),
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

pub(super) fn check_unzipped_size(size: u64) -> Result<(), PackageError> {
    if size > UNZIPPED_LIMIT {
        return Err(PackageError::TooLarge {
            size,
            limit: UNZIPPED_LIMIT,
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Read;
    use std::path::PathBuf;

    use super::*;
    use crate::package::atomic::set_mode;
    use crate::package::tests::{EPOCH, fixture, listing, mode_of};

    fn dt(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> DateTime {
        DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap()
    }

    const EXPECTED: [(&str, u32); 4] = [
        ("bootstrap", 0o100_755),
        ("VERSION", 0o100_644),
        ("config/app.json", 0o100_644),
        ("lib/libfoo.so", 0o100_755),
    ];

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

    /// A zip already at `<dir>/out/lambda.zip`, which a failed write must leave as it was.
    fn previous_zip(dir: &Path) -> (Vec<ZipEntry>, PathBuf, Vec<u8>) {
        let entries = fixture(dir);
        let dest = dir.join("out/lambda.zip");
        write_zip(&dest, &entries, zip_timestamp(EPOCH)).unwrap();
        let before = fs::read(&dest).unwrap();
        (entries, dest, before)
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
        assert_eq!(mode_of(&dest, 0o644), 0o644);
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
        let (mut entries, dest, before) = previous_zip(dir.path());
        let out = dest.parent().unwrap();

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
        assert_eq!(listing(out), ["lambda.zip"]);
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

    #[cfg(target_os = "linux")]
    #[test]
    fn read_failure_mid_zip_keeps_the_previous_zip_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut entries, dest, before) = previous_zip(dir.path());

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
        let (entries, dest, before) = previous_zip(dir.path());
        let out = dest.parent().unwrap();

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
        assert_eq!(listing(out), ["lambda.zip"]);
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
        let (mut entries, dest, before) = previous_zip(dir.path());
        let out = dest.parent().unwrap();

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
        assert_eq!(listing(out), ["lambda.zip"]);

        // Nothing at all when there was no previous zip.
        let fresh = dir.path().join("fresh/lambda.zip");
        assert!(write_zip(&fresh, &entries, DateTime::DEFAULT).is_err());
        assert!(!fresh.parent().unwrap().exists());
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
}
