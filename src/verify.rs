//! Zips checked before they ship: `lambda.zip` is read back, as Lambda will read it, before it
//! replaces the previous one, and `invoke` checks a zip the same way before extracting it.
//!
//! The checks are those on which zip readers disagree or that Lambda refuses: names that would
//! land outside `/var/task`, duplicate names, links and special files, a missing or
//! non-executable `bootstrap`, more than Lambda's 250 MB unzipped, and data that does not match
//! its CRC. Whatever the bytes, verification never panics and allocates only in proportion to
//! the central directory: entry data is streamed through a fixed buffer, and a declared size is
//! never trusted for an allocation.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use zip::{System, ZipArchive};

use crate::lambda::{BOOTSTRAP, EXTENSIONS_DIR, UNZIPPED_LIMIT};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Linux's PATH_MAX: a link target is never longer.
const MAX_LINK_TARGET: u64 = 4096;

/// What a zip must be to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// An executable regular file Lambda can start: `bootstrap` at the root, or for an
    /// extension layer, executables directly under `extensions/`.
    pub entrypoint: bool,
    /// Symbolic links whose target is relative and has no `..` (so that it stays inside the
    /// directory the zip is extracted to) are accepted; others are always refused.
    pub inner_symlinks: bool,
    /// The most the entries may hold unzipped, in bytes.
    pub limit: u64,
}

impl Rules {
    /// What `cargo lambda-build` ships: it never writes a link, and the zip must start.
    pub const SHIP: Rules = Rules {
        entrypoint: true,
        inner_symlinks: false,
        limit: UNZIPPED_LIMIT,
    };

    /// What `invoke` extracts: the same hostile entries refused, but a missing or
    /// non-executable `bootstrap` left for the run to report as Lambda does
    /// (`Runtime.InvalidEntrypoint`), and links that stay inside the task root kept (zips from
    /// other tools may hold them, `lib/libfoo.so -> libfoo.so.1` say).
    pub const EXTRACT: Rules = Rules {
        entrypoint: false,
        inner_symlinks: true,
        limit: UNZIPPED_LIMIT,
    };
}

/// What a zip that passed holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entry names, in the zip's order.
    pub names: Vec<String>,
    /// Bytes read from the entries, each checked against its CRC.
    pub unzipped_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the zip: {0}")]
    Read(#[source] io::Error),

    #[error("not a readable zip: {0}")]
    NotAZip(String),

    #[error("entry `{name}` {reason}")]
    UnsafeName { name: String, reason: &'static str },

    #[error(
        "two entries are named {}",
        .0.as_deref().map_or("alike".to_owned(), |name| format!("`{name}`"))
    )]
    Duplicate(Option<String>),

    #[error("entry `{file}` is a file and also the directory of `{inside}`")]
    FileIsDirectory { file: String, inside: String },

    #[error("entry `{name}` is a symbolic link to `{target}`")]
    Symlink { name: String, target: String },

    #[error("entry `{name}` is {kind}")]
    NotAFile { name: String, kind: &'static str },

    #[error(
        "no `bootstrap` at the root of the zip: Lambda would fail with Runtime.InvalidEntrypoint"
    )]
    NoEntrypoint,

    #[error("`{name}` is {what}: Lambda would fail with Runtime.InvalidEntrypoint")]
    NotExecutable { name: String, what: String },

    /// `size` is what the headers declare, or what was read when that passed the limit.
    #[error("the zip holds {size} bytes or more unzipped, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },

    #[error("entry `{name}` is corrupt: {reason}")]
    Corrupt { name: String, reason: String },
}

impl VerifyError {
    /// A one-line fix, for the caller to print after "help: ".
    #[must_use]
    pub fn help(&self) -> String {
        match self {
            Self::Read(_) => "check that the file is readable and the disk healthy".to_owned(),
            Self::NoEntrypoint | Self::NotExecutable { .. } => {
                "build the zip with `cargo lambda-build --zip`, which writes `bootstrap` with \
                 mode 755"
                    .to_owned()
            }
            Self::TooLarge { .. } => {
                "include fewer files, or deploy a container image, which Lambda allows up to \
                 10 GB"
                    .to_owned()
            }
            _ => "rebuild the zip with `cargo lambda-build --zip`; if it was just written, the \
                  disk or the zip writer is failing: please report it"
                .to_owned(),
        }
    }
}

/// [`verify`] on a file, read through a buffer.
pub fn verify_file(path: &Path, rules: &Rules) -> Result<Verified, VerifyError> {
    let file = File::open(path).map_err(VerifyError::Read)?;
    verify(BufReader::with_capacity(64 * 1024, file), rules)
}

/// [`verify`] on bytes in memory.
pub fn verify_bytes(bytes: &[u8], rules: &Rules) -> Result<Verified, VerifyError> {
    verify(io::Cursor::new(bytes), rules)
}

/// Reads the whole zip and checks it against `rules`. Never panics, whatever the bytes.
pub fn verify(reader: impl Read + Seek, rules: &Rules) -> Result<Verified, VerifyError> {
    let mut archive = ZipArchive::new(reader).map_err(not_a_zip)?;
    // The zip crate keeps one entry per name; it only tells that some were dropped.
    if archive.has_duplicate_names() {
        return Err(VerifyError::Duplicate(None));
    }

    // What the headers declare, for a zip that is honest about being too large.
    let declared = archive.decompressed_size().unwrap_or(0);
    if declared > u128::from(rules.limit) {
        let size = u64::try_from(declared).unwrap_or(u64::MAX);
        return Err(VerifyError::TooLarge {
            size,
            limit: rules.limit,
        });
    }

    let names = check_names(&mut archive)?;
    // A local header that names another file than the central directory, overlapping entries
    // or an entry missing from the central directory: readers that walk the local headers (a
    // streaming unzip) would see another archive than those that read the central directory.
    archive.validate_header_consistency().map_err(not_a_zip)?;
    let read = read_entries(&mut archive, &names, rules)?;
    if rules.entrypoint {
        check_entrypoint(read.bootstrap, &read.extensions)?;
    }
    Ok(Verified {
        unzipped_size: read.unzipped_size,
        names,
    })
}

/// Names first, from the central directory alone: what extracting would create. Each is safe,
/// none twice, and no file stands where another entry needs a directory.
fn check_names<R: Read + Seek>(archive: &mut ZipArchive<R>) -> Result<Vec<String>, VerifyError> {
    let mut names = Vec::with_capacity(archive.len());
    let mut seen = HashSet::with_capacity(archive.len());
    let mut files = HashSet::new();
    for index in 0..archive.len() {
        let name = match archive.name_for_index(index) {
            Some(Ok(name)) => name.into_owned(),
            Some(Err(e)) => return Err(corrupt(format!("#{index}"), e)),
            None => return Err(corrupt(format!("#{index}"), "missing from the directory")),
        };
        let path = check_name(&name)?;
        if !seen.insert(path.to_owned()) {
            return Err(VerifyError::Duplicate(Some(path.to_owned())));
        }
        if !name.ends_with('/') {
            files.insert(path.to_owned());
        }
        names.push(name);
    }
    // "a" as a file and "a/b" as an entry: extracting one would fail on, or replace, the other.
    for name in &names {
        let path = name.strip_suffix('/').unwrap_or(name);
        for (slash, _) in path.match_indices('/') {
            let parent = &path[..slash];
            if files.contains(parent) {
                return Err(VerifyError::FileIsDirectory {
                    file: parent.to_owned(),
                    inside: name.clone(),
                });
            }
        }
    }
    Ok(names)
}

/// What reading every entry found: the total size, and the modes of the entrypoints.
struct Entries<'a> {
    unzipped_size: u64,
    bootstrap: Option<u32>,
    extensions: Vec<(&'a str, u32)>,
}

/// Every byte, through one buffer, each entry checked against its CRC and size, its kind
/// against its name, a link against the rules, the total against the limit.
fn read_entries<'a, R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    names: &'a [String],
    rules: &Rules,
) -> Result<Entries<'a>, VerifyError> {
    let mut read = Entries {
        unzipped_size: 0,
        bootstrap: None,
        extensions: Vec::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    for (index, name) in names.iter().enumerate() {
        let mut entry = archive.by_index(index).map_err(|e| match e {
            zip::result::ZipError::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
                VerifyError::Read(e)
            }
            e => corrupt(name.clone(), e),
        })?;
        let is_dir = name.ends_with('/');
        // Only a zip made on Unix has Unix modes; Info-ZIP gives the others 644.
        let mode = if entry.system() == System::Unix {
            entry.external_attributes() >> 16
        } else {
            0
        };
        match (mode & S_IFMT, is_dir) {
            (0, _) | (S_IFREG | S_IFLNK, false) | (S_IFDIR, true) => {}
            (S_IFDIR, false) => return Err(not_a_file(name, "marked a directory without a `/`")),
            (_, true) => return Err(not_a_file(name, "a directory marked as another kind")),
            _ => return Err(not_a_file(name, "a device, pipe or socket")),
        }

        let is_link = mode & S_IFMT == S_IFLNK;
        let mut target = Vec::new();
        let remaining = rules.limit.saturating_sub(read.unzipped_size);
        let size = stream(&mut entry, &mut buf, remaining, |chunk| {
            if is_link && target.len() as u64 <= MAX_LINK_TARGET {
                target.extend_from_slice(&chunk[..chunk.len().min(MAX_LINK_TARGET as usize + 1)]);
            }
        })
        .map_err(|e| match e {
            Streamed::Over(over) => VerifyError::TooLarge {
                size: read.unzipped_size.saturating_add(over),
                limit: rules.limit,
            },
            Streamed::Failed(e) => corrupt(name.clone(), e),
        })?;
        if size != entry.size() {
            let reason = format!("holds {size} bytes, its header says {}", entry.size());
            return Err(corrupt(name.clone(), reason));
        }
        read.unzipped_size += size;
        if is_link {
            check_link(name, &target, rules)?;
        }

        if name == BOOTSTRAP {
            read.bootstrap = Some(mode);
        } else if name
            .strip_prefix(EXTENSIONS_DIR)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        {
            read.extensions.push((name, mode));
        }
    }
    Ok(read)
}

/// A function's zip is extracted to /var/task, where only `bootstrap` starts; a layer without
/// one is an extension layer when it has executables for /opt/extensions/.
fn check_entrypoint(bootstrap: Option<u32>, extensions: &[(&str, u32)]) -> Result<(), VerifyError> {
    match bootstrap {
        Some(mode) => check_executable(BOOTSTRAP, mode),
        None if extensions.is_empty() => Err(VerifyError::NoEntrypoint),
        None => extensions
            .iter()
            .try_for_each(|&(name, mode)| check_executable(name, mode)),
    }
}

fn not_a_zip(error: zip::result::ZipError) -> VerifyError {
    match error {
        zip::result::ZipError::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
            VerifyError::Read(e)
        }
        e => VerifyError::NotAZip(e.to_string()),
    }
}

fn corrupt(name: String, reason: impl fmt::Display) -> VerifyError {
    VerifyError::Corrupt {
        name,
        reason: reason.to_string(),
    }
}

/// The path of `name` without its trailing `/`, when extracting it stays inside the target
/// directory and every reader reads it the same way.
fn check_name(name: &str) -> Result<&str, VerifyError> {
    let unsafe_name = |reason| VerifyError::UnsafeName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(unsafe_name("has an empty name"));
    }
    if name.starts_with('/') {
        return Err(unsafe_name(concat!(
            "is an absolute path, which would land outside ",
            crate::lambda::literal!(task_root)
        )));
    }
    if name.contains('\\') {
        return Err(unsafe_name(
            "has a backslash, a directory separator for some unzip tools",
        ));
    }
    if name.contains('\0') {
        return Err(unsafe_name("has a NUL byte, where some readers stop"));
    }
    let path = name.strip_suffix('/').unwrap_or(name);
    for part in path.split('/') {
        match part {
            "" => return Err(unsafe_name("has an empty path component (`//`)")),
            "." => return Err(unsafe_name("has a `.` component")),
            ".." => {
                return Err(unsafe_name(concat!(
                    "has a `..` component, which would land outside ",
                    crate::lambda::literal!(task_root)
                )));
            }
            _ => {}
        }
    }
    Ok(path)
}

/// A link is refused unless the rules accept links that stay inside: relative, without `..`
/// (every link then resolves below its own directory, links to links included).
fn check_link(name: &str, target: &[u8], rules: &Rules) -> Result<(), VerifyError> {
    let text = String::from_utf8_lossy(&target[..target.len().min(200)]).into_owned();
    let link = || VerifyError::Symlink {
        name: name.to_owned(),
        target: text.clone(),
    };
    if !rules.inner_symlinks || target.is_empty() || target.len() as u64 > MAX_LINK_TARGET {
        return Err(link());
    }
    let escapes = target.first() == Some(&b'/')
        || target.contains(&0)
        || target.split(|&b| b == b'/').any(|part| part == b"..");
    if escapes { Err(link()) } else { Ok(()) }
}

fn check_executable(name: &str, mode: u32) -> Result<(), VerifyError> {
    let what = if mode == 0 {
        Some("without Unix permissions (made on Windows?)".to_owned())
    } else if mode & S_IFMT != S_IFREG {
        Some("not a regular file".to_owned())
    } else if mode & 0o555 != 0o555 {
        Some(format!(
            "mode {:03o}, not readable and executable by all (755)",
            mode & 0o7777
        ))
    } else {
        None
    };
    match what {
        Some(what) => Err(VerifyError::NotExecutable {
            name: name.to_owned(),
            what,
        }),
        None => Ok(()),
    }
}

fn not_a_file(name: &str, kind: &'static str) -> VerifyError {
    VerifyError::NotAFile {
        name: name.to_owned(),
        kind,
    }
}

enum Streamed {
    /// More than the bytes allowed: how many were read.
    Over(u64),
    Failed(io::Error),
}

/// Reads `input` to its end through `buf`, at most `limit` bytes; the zip reader checks the CRC
/// when it reaches the end.
fn stream(
    input: &mut impl Read,
    buf: &mut [u8],
    limit: u64,
    mut each: impl FnMut(&[u8]),
) -> Result<u64, Streamed> {
    let mut total = 0u64;
    loop {
        let n = match input.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Streamed::Failed(e)),
        };
        total += n as u64;
        if total > limit {
            return Err(Streamed::Over(total));
        }
        each(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, System, ZipWriter};

    /// One entry: a name ending in `/` is a directory, a `target` makes a symbolic link.
    struct E<'a> {
        name: &'a str,
        mode: u32,
        data: &'a [u8],
        link: Option<&'a str>,
    }

    fn file<'a>(name: &'a str, mode: u32, data: &'a [u8]) -> E<'a> {
        E {
            name,
            mode,
            data,
            link: None,
        }
    }

    fn link<'a>(name: &'a str, target: &'a str) -> E<'a> {
        E {
            name,
            mode: 0o777,
            data: b"",
            link: Some(target),
        }
    }

    const BOOT: &[u8] = b"\x7fELF boot";

    /// Stored (uncompressed), so tests can patch names and data in place.
    /// Made by Unix, as the tool's zips are: the `zip` crate's default is the host's system.
    fn unix() -> SimpleFileOptions {
        SimpleFileOptions::default().system(System::Unix)
    }

    fn zip_of(entries: &[E]) -> Vec<u8> {
        let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
        for e in entries {
            let options = unix()
                .compression_method(CompressionMethod::Stored)
                .unix_permissions(e.mode);
            if let Some(target) = e.link {
                zip.add_symlink(e.name, target, options).unwrap();
            } else if e.name.ends_with('/') {
                zip.add_directory(e.name, options).unwrap();
            } else {
                zip.start_file(e.name, options).unwrap();
                zip.write_all(e.data).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }

    fn with_bootstrap(more: E) -> Vec<u8> {
        zip_of(&[file("bootstrap", 0o755, BOOT), more])
    }

    /// Replaces every occurrence of `from` by `to` (same length): in the local and the central
    /// header alike, so the zip stays consistent.
    fn patch(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut found = 0;
        for at in 0..=bytes.len() - from.len() {
            if &bytes[at..at + from.len()] == from {
                bytes[at..at + from.len()].copy_from_slice(to);
                found += 1;
            }
        }
        assert!(found > 0, "{from:?} not found");
        bytes
    }

    fn ship(bytes: &[u8]) -> Result<Verified, VerifyError> {
        verify_bytes(bytes, &Rules::SHIP)
    }

    #[test]
    fn a_good_zip_passes_with_its_names_and_size() {
        let bytes = zip_of(&[
            file("bootstrap", 0o755, BOOT),
            file("lib/", 0o755, b""),
            file("lib/libx.so", 0o755, b"lib"),
            file("config.json", 0o644, b"{}"),
        ]);
        let verified = ship(&bytes).unwrap();
        assert_eq!(
            verified.names,
            ["bootstrap", "lib/", "lib/libx.so", "config.json"]
        );
        assert_eq!(verified.unzipped_size, (BOOT.len() + 3 + 2) as u64);
        assert_eq!(verify_bytes(&bytes, &Rules::EXTRACT).unwrap(), verified);
    }

    #[test]
    fn hostile_names_are_refused() {
        // Written as harmless names of the same length, then patched in both headers.
        for (hostile, harmless) in [
            ("/etc/x", "etc/xx"),
            ("../up", "up/up"),
            ("a/../b", "a/b/cc"),
            ("a\\..\\b", "a/x/bb"),
            ("a//b", "a/bb"),
            ("./a", "a/a"),
            ("a/./", "a/b/"),
            ("a\0bb", "a_bb"),
        ] {
            let bytes = with_bootstrap(file(harmless, 0o644, b"x"));
            let bytes = patch(bytes, harmless.as_bytes(), hostile.as_bytes());
            for rules in [Rules::SHIP, Rules::EXTRACT] {
                let err = verify_bytes(&bytes, &rules).unwrap_err();
                assert!(
                    matches!(err, VerifyError::UnsafeName { ref name, .. } if name == hostile),
                    "{hostile:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn duplicate_names_and_a_file_used_as_a_directory_are_refused() {
        // Beside bootstrap, `first` and `second`; then `second` renamed in the bytes.
        let renamed = |first, second: &str, to: &str| {
            let entries = [
                file("bootstrap", 0o755, BOOT),
                first,
                file(second, 0o644, b""),
            ];
            let bytes = patch(zip_of(&entries), second.as_bytes(), to.as_bytes());
            ship(&bytes).unwrap_err().to_string()
        };
        let two_files = renamed(file("aa", 0o644, b"1"), "bb", "aa");
        assert_eq!(two_files, "two entries are named alike");
        // A file and a directory of the same name.
        let file_and_dir = renamed(file("a", 0o644, b"1"), "b/", "a/");
        assert_eq!(file_and_dir, "two entries are named `a`");

        let err = ship(&with_bootstrap(file("bootstrap/x", 0o644, b""))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry `bootstrap` is a file and also the directory of `bootstrap/x`"
        );
    }

    #[test]
    fn symbolic_links_are_refused_when_shipping_and_outside_links_when_extracting() {
        let inside = with_bootstrap(link("lib/libx.so", "libx.so.1"));
        let err = ship(&inside).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry `lib/libx.so` is a symbolic link to `libx.so.1`"
        );
        verify_bytes(&inside, &Rules::EXTRACT).unwrap();
        for target in ["/etc/passwd", "../../x", "a/../../b", ".."] {
            let bytes = with_bootstrap(link("lib/x", target));
            let err = verify_bytes(&bytes, &Rules::EXTRACT).unwrap_err();
            assert!(
                matches!(err, VerifyError::Symlink { .. }),
                "{target}: {err}"
            );
        }
        let long = "a/".repeat(2100);
        let err = verify_bytes(&with_bootstrap(link("x", &long)), &Rules::EXTRACT).unwrap_err();
        assert!(matches!(err, VerifyError::Symlink { .. }), "{err}");
    }

    #[test]
    fn bootstrap_must_be_an_executable_regular_file() {
        let err = ship(&zip_of(&[file("main", 0o755, BOOT)])).unwrap_err();
        assert!(matches!(err, VerifyError::NoEntrypoint), "{err}");
        assert!(err.to_string().contains("Runtime.InvalidEntrypoint"));

        let err = ship(&zip_of(&[file("bootstrap", 0o644, BOOT)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`bootstrap` is mode 644, not readable and executable by all (755): \
             Lambda would fail with Runtime.InvalidEntrypoint"
        );
        assert!(err.help().contains("mode 755"));
        for mode in [0o700, 0o711, 0o744] {
            assert!(ship(&zip_of(&[file("bootstrap", mode, BOOT)])).is_err());
        }
        for mode in [0o755, 0o775] {
            ship(&zip_of(&[file("bootstrap", mode, BOOT)])).unwrap();
        }
        let err = ship(&zip_of(&[file("bootstrap/", 0o755, b"")])).unwrap_err();
        assert!(matches!(err, VerifyError::NoEntrypoint), "{err}");
        let err = ship(&zip_of(&[
            link("bootstrap", "main"),
            file("main", 0o755, BOOT),
        ]))
        .unwrap_err();
        assert!(matches!(err, VerifyError::Symlink { .. }), "{err}");

        // Made on Windows: no Unix mode at all.
        let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().system(System::Dos);
        zip.start_file("bootstrap", options).unwrap();
        zip.write_all(BOOT).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let err = ship(&bytes).unwrap_err();
        assert!(
            err.to_string().contains("without Unix permissions"),
            "{err}"
        );

        // `invoke` leaves these to the run, which fails as Lambda does.
        verify_bytes(&zip_of(&[file("bootstrap", 0o644, BOOT)]), &Rules::EXTRACT).unwrap();
        verify_bytes(&zip_of(&[file("main", 0o755, BOOT)]), &Rules::EXTRACT).unwrap();
    }

    #[test]
    fn an_extension_layer_needs_executables_under_extensions() {
        let layer = zip_of(&[
            file("extensions/", 0o755, b""),
            file("extensions/my-ext", 0o755, BOOT),
        ]);
        ship(&layer).unwrap();
        let err = ship(&zip_of(&[file("extensions/my-ext", 0o644, BOOT)])).unwrap_err();
        assert!(matches!(err, VerifyError::NotExecutable { .. }), "{err}");
        let err = ship(&zip_of(&[file("extensions/", 0o755, b"")])).unwrap_err();
        assert!(matches!(err, VerifyError::NoEntrypoint), "{err}");
        // In a function's zip, extensions/ is only data.
        ship(&with_bootstrap(file("extensions/notes", 0o644, b""))).unwrap();
    }

    #[test]
    fn more_than_the_limit_unzipped_is_refused_while_reading() {
        let bytes = with_bootstrap(file("data", 0o644, &[7; 1000]));
        let rules = |limit| Rules {
            limit,
            ..Rules::SHIP
        };
        let total = (BOOT.len() + 1000) as u64;
        assert_eq!(
            verify_bytes(&bytes, &rules(total)).unwrap().unzipped_size,
            total
        );
        let err = verify_bytes(&bytes, &rules(total - 1)).unwrap_err();
        assert!(
            matches!(err, VerifyError::TooLarge { size, limit } if (size, limit) == (total, total - 1)),
            "{err}"
        );

        // Headers that understate the size of deflated data: caught while reading.
        let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
        zip.start_file("bootstrap", unix().unix_permissions(0o755))
            .unwrap();
        zip.write_all(&[0; 100_000]).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let liar = patch(bytes, &100_000u32.to_le_bytes(), &10u32.to_le_bytes());
        let err = verify_bytes(&liar, &rules(1000)).unwrap_err();
        assert!(
            matches!(err, VerifyError::Corrupt { ref reason, .. } if reason.contains("larger than its declared")),
            "{err}"
        );
        assert_eq!(Rules::SHIP.limit, 262_144_000);
    }

    #[test]
    fn data_that_does_not_match_its_crc_or_size_is_corrupt() {
        let bytes = with_bootstrap(file("data", 0o644, b"the quick brown fox"));
        ship(&bytes).unwrap();
        let err = ship(&patch(bytes.clone(), b"quick", b"quack")).unwrap_err();
        assert!(
            matches!(err, VerifyError::Corrupt { ref name, ref reason } if name == "data" && reason.contains("checksum")),
            "{err}"
        );

        // Deflated data with one bit flipped.
        let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
        let options = unix().unix_permissions(0o755);
        zip.start_file("bootstrap", options).unwrap();
        zip.write_all(&[b'a'; 10_000]).unwrap();
        let mut bytes = zip.finish().unwrap().into_inner();
        ship(&bytes).unwrap();
        bytes[40] ^= 0x10;
        assert!(ship(&bytes).is_err());
    }

    #[test]
    fn what_is_not_a_zip_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"PK",
            b"PK\x05\x06",
            b"\x7fELF\x02\x01\x01",
            &[0; 100],
        ] {
            let err = ship(bytes).unwrap_err();
            assert!(matches!(err, VerifyError::NotAZip(_)), "{bytes:?}: {err}");
        }
        let err = verify_file(Path::new("/nonexistent/lambda.zip"), &Rules::SHIP).unwrap_err();
        assert!(matches!(err, VerifyError::Read(_)), "{err}");
    }
}
