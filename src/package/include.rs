//! `--include`: files and directories from the package root, put in the zip under the same
//! relative path. What is found becomes a list of [`ZipEntry`] that the zip writer sorts and
//! stamps like `bootstrap`, so includes are as reproducible as the rest of the zip.
//!
//! Modes are normalised as Lambda expects them: 0755 for directories and for files with any
//! execute bit, 0644 for other files. Nothing may come from outside the package root: a path
//! that climbs out of it (`../secret`, `/etc/passwd`) or a symbolic link that resolves outside it
//! is refused. A link that stays inside is followed, and its content is stored under the link's
//! own name.
//!
//! What a directory or a glob reaches never includes `.git`, a cargo target directory (marked by
//! `CACHEDIR.TAG` or `.rustc_info.json`: this build's or one an earlier build left) or the
//! tool's own output: `--include .` once packed 203 MB of them. Named on its own, such a path is
//! packed: the user asked for it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::ZipEntry;

#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("include `{pattern}` is outside the package root `{}`", .root.display())]
    Escapes { pattern: String, root: PathBuf },

    #[error("include `{}` is a symbolic link to `{}`, outside the package root `{}`",
        .path.display(), .target.display(), .root.display())]
    SymlinkOutside {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },

    #[error("include `{pattern}` matches nothing in `{}`", .root.display())]
    NotFound { pattern: String, root: PathBuf },

    #[error("include `{pattern}` is not a valid glob pattern: {message}")]
    BadPattern { pattern: String, message: String },

    #[error("include `{}` cannot be read: {error}", .path.display())]
    Io { path: PathBuf, error: io::Error },

    #[error("include `{}` has a name that is not UTF-8, which a zip entry cannot hold portably", .path.display())]
    NotUtf8 { path: PathBuf },

    #[error("include `{}` is a symbolic link into its own parent directory (a loop)", .path.display())]
    SymlinkLoop { path: PathBuf },

    #[error("include `{}` is neither a file nor a directory", .path.display())]
    NotAFile { path: PathBuf },
}

impl IncludeError {
    pub fn help(&self) -> Option<String> {
        Some(match self {
            Self::Escapes { .. } | Self::SymlinkOutside { .. } => {
                "copy the file into the package (Lambda gets what is under the package root, \
                 nothing else), or build the zip from another package"
                    .into()
            }
            Self::NotFound { .. } => "includes are relative to the package root (the directory \
                 of its Cargo.toml); `*` does not match a leading `.`, write `.*` for that"
                .into(),
            Self::BadPattern { .. } => {
                "patterns use `*`, `?`, `[abc]` and `**` for any number of directories".into()
            }
            _ => return None,
        })
    }
}

/// The zip entries for `patterns`, each a path or a glob relative to `root` (the package root):
/// files, directories with everything under them, and the directories above each of them.
pub fn collect(root: &Path, patterns: &[String]) -> Result<Vec<ZipEntry>, IncludeError> {
    collect_except(root, patterns, &[]).map(|collected| collected.entries)
}

/// What [`collect_except`] found, and what it left out.
#[derive(Debug, Default)]
pub struct Collected {
    pub entries: Vec<ZipEntry>,
    /// Relative to the root, each with why it was left out.
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// [`collect`], leaving out of directories and globs what must never be packed: `.git`, cargo
/// target directories, and `outputs` (the outdir, the artifact).
pub fn collect_except(
    root: &Path,
    patterns: &[String],
    outputs: &[PathBuf],
) -> Result<Collected, IncludeError> {
    if patterns.is_empty() {
        return Ok(Collected::default());
    }
    let canonical_root = root.canonicalize().map_err(|error| IncludeError::Io {
        path: root.to_path_buf(),
        error,
    })?;
    let mut walk = Walk {
        root,
        canonical_root: &canonical_root,
        entries: BTreeMap::new(),
        stack: Vec::new(),
        outputs: outputs
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .collect(),
        skipped: Vec::new(),
    };
    for pattern in patterns {
        let (paths, glob) = expand(root, pattern)?;
        for relative in paths {
            if !glob || !walk.left_out(&relative) {
                walk.add(&relative)?;
            }
        }
    }
    Ok(Collected {
        entries: walk.entries.into_values().collect(),
        skipped: walk.skipped,
    })
}

/// The relative paths a pattern names, and whether it is a glob. A plain path must exist; a
/// glob must match something.
fn expand(root: &Path, pattern: &str) -> Result<(Vec<PathBuf>, bool), IncludeError> {
    let escapes = || IncludeError::Escapes {
        pattern: pattern.to_string(),
        root: root.to_path_buf(),
    };
    let mut relative = PathBuf::new();
    for component in Path::new(pattern).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !relative.pop() {
                    return Err(escapes());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escapes()),
        }
    }
    let not_found = || IncludeError::NotFound {
        pattern: pattern.to_string(),
        root: root.to_path_buf(),
    };
    // A trailing `**` is everything below, as in gitignore: the directory itself, walked.
    let mut everything_below = false;
    while relative.ends_with("**") {
        relative.pop();
        everything_below = true;
    }
    let is_glob = |path: &Path| path.to_string_lossy().contains(['*', '?', '[']);
    if !is_glob(&relative) {
        fs::symlink_metadata(root.join(&relative)).map_err(|_| not_found())?;
        return Ok((vec![relative], everything_below));
    }

    let root_text = root.to_str().ok_or_else(|| IncludeError::NotUtf8 {
        path: root.to_path_buf(),
    })?;
    let relative_text = relative.to_str().ok_or_else(|| IncludeError::NotUtf8 {
        path: relative.clone(),
    })?;
    let full = format!("{}/{relative_text}", glob::Pattern::escape(root_text));
    let options = glob::MatchOptions {
        case_sensitive: true,
        // `*` stays within one directory, and does not pick up `.env` and friends by accident.
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(&full, options).map_err(|e| IncludeError::BadPattern {
        pattern: pattern.to_string(),
        message: e.msg.to_string(),
    })?;
    let mut found = Vec::new();
    for path in paths {
        let path = path.map_err(|e| IncludeError::Io {
            path: e.path().to_path_buf(),
            error: io::Error::new(e.error().kind(), e.error().to_string()),
        })?;
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        found.push(relative);
    }
    if found.is_empty() {
        return Err(not_found());
    }
    Ok((found, true))
}

struct Walk<'a> {
    root: &'a Path,
    canonical_root: &'a Path,
    /// By zip name: one entry per name however many patterns reach it.
    entries: BTreeMap<String, ZipEntry>,
    /// The canonical directories being walked, to stop at a link into one of them.
    stack: Vec<PathBuf>,
    /// Canonical paths of the tool's outputs.
    outputs: Vec<PathBuf>,
    skipped: Vec<(PathBuf, &'static str)>,
}

impl Walk<'_> {
    /// Whether a path that a directory or a glob reached must stay out of the zip; noted once.
    fn left_out(&mut self, relative: &Path) -> bool {
        if relative.as_os_str().is_empty() {
            // The package root itself (`**`), which may well be the outdir.
            return false;
        }
        let path = self.root.join(relative);
        let reason = if path.file_name().is_some_and(|name| name == ".git") {
            "git's repository"
        } else if path.is_dir()
            && ["CACHEDIR.TAG", ".rustc_info.json"]
                .iter()
                .any(|marker| path.join(marker).is_file())
        {
            "a cargo target directory"
        } else if path
            .canonicalize()
            .is_ok_and(|canonical| self.outputs.contains(&canonical))
        {
            "where this build writes its output"
        } else {
            return false;
        };
        if !self.skipped.iter().any(|(p, _)| p == relative) {
            self.skipped.push((relative.to_path_buf(), reason));
        }
        true
    }

    fn add(&mut self, relative: &Path) -> Result<(), IncludeError> {
        let path = self.root.join(relative);
        let io_error = |error| IncludeError::Io {
            path: path.clone(),
            error,
        };
        let canonical = path.canonicalize().map_err(io_error)?;
        if !canonical.starts_with(self.canonical_root) {
            return Err(IncludeError::SymlinkOutside {
                path: path.clone(),
                target: canonical,
                root: self.root.to_path_buf(),
            });
        }
        let name = zip_name(relative)?;
        // Following links: a link that stays inside is read as what it points at.
        let metadata = fs::metadata(&path).map_err(io_error)?;
        if metadata.is_dir() {
            if self.stack.contains(&canonical) {
                return Err(IncludeError::SymlinkLoop { path });
            }
            if !name.is_empty() {
                self.add_parents(&name);
                self.insert_dir(&name, &path);
            }
            let mut children: Vec<PathBuf> = fs::read_dir(&path)
                .map_err(io_error)?
                .map(|entry| entry.map(|e| relative.join(e.file_name())))
                .collect::<Result<_, _>>()
                .map_err(io_error)?;
            children.sort();
            self.stack.push(canonical);
            for child in children {
                if !self.left_out(&child) {
                    self.add(&child)?;
                }
            }
            self.stack.pop();
            Ok(())
        } else if metadata.is_file() {
            self.add_parents(&name);
            let executable =
                crate::host::execute_bit(&metadata).unwrap_or_else(|| looks_executable(&path));
            self.entries.insert(
                name.clone(),
                ZipEntry {
                    name,
                    source: path,
                    mode: if executable { 0o755 } else { 0o644 },
                },
            );
            Ok(())
        } else {
            Err(IncludeError::NotAFile { path })
        }
    }

    /// The directories above `name`, so that every directory of the zip has its mode.
    fn add_parents(&mut self, name: &str) {
        let mut end = 0;
        while let Some(slash) = name[end..].find('/') {
            end += slash + 1;
            let dir = &name[..end - 1];
            self.insert_dir(dir, &self.root.join(dir));
        }
    }

    fn insert_dir(&mut self, name: &str, path: &Path) {
        let name = format!("{name}/");
        self.entries.entry(name.clone()).or_insert(ZipEntry {
            name,
            source: path.to_path_buf(),
            mode: 0o755,
        });
    }
}

/// `a/b/c` with `/` separators, UTF-8 only.
fn zip_name(relative: &Path) -> Result<String, IncludeError> {
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts
        .map(|parts| parts.join("/"))
        .ok_or_else(|| IncludeError::NotUtf8 {
            path: relative.to_path_buf(),
        })
}

/// Where files have no execute bit (Windows), what Lambda would execute: an ELF (a helper
/// binary, a shared library) or a `#!` script. Anything else is data, 644.
fn looks_executable(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = Vec::with_capacity(4);
    let read = fs::File::open(path).and_then(|file| file.take(4).read_to_end(&mut magic));
    read.is_ok() && (magic == b"\x7fELF" || magic.starts_with(b"#!"))
}

#[cfg(test)]
mod any_host_tests {
    use super::*;

    #[test]
    fn without_an_execute_bit_elfs_and_scripts_are_the_executables() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content, executable) in [
            ("lib.so", &b"\x7fELF\x02\x01"[..], true),
            ("run.sh", b"#!/bin/sh\n", true),
            ("x", b"#!", true),
            ("config.json", b"{}", false),
            ("empty", b"", false),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, content).unwrap();
            assert_eq!(looks_executable(&path), executable, "{name}");
        }
        assert!(!looks_executable(&dir.path().join("missing")));
    }
}

// Symbolic links and execute bits.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn package() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, content, mode) in [
            ("Cargo.toml", "[package]\n", 0o644),
            ("config/app.json", "{}\n", 0o600),
            ("config/nested/extra.json", "[]\n", 0o664),
            ("config/.hidden", "x\n", 0o644),
            ("bin/tool.sh", "#!/bin/sh\n", 0o700),
            ("certs/a.pem", "A\n", 0o644),
            ("certs/b.pem", "B\n", 0o644),
            ("certs/readme.txt", "r\n", 0o644),
        ] {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        dir
    }

    fn names(entries: &[ZipEntry]) -> Vec<(String, u32)> {
        entries.iter().map(|e| (e.name.clone(), e.mode)).collect()
    }

    fn strings(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn files_directories_and_globs_with_normalised_modes() {
        let dir = package();
        let entries = collect(
            dir.path(),
            &strings(&["config", "bin/tool.sh", "certs/*.pem", "./config/app.json"]),
        )
        .unwrap();
        assert_eq!(
            names(&entries),
            [
                ("bin/", 0o755),
                ("bin/tool.sh", 0o755),
                ("certs/", 0o755),
                ("certs/a.pem", 0o644),
                ("certs/b.pem", 0o644),
                ("config/", 0o755),
                ("config/.hidden", 0o644),
                ("config/app.json", 0o644),
                ("config/nested/", 0o755),
                ("config/nested/extra.json", 0o644),
            ]
            .map(|(n, m)| (n.to_string(), m))
        );
        assert_eq!(
            entries[1].source,
            dir.path().join("bin/tool.sh"),
            "sources are the files on disk"
        );
    }

    #[test]
    fn globs_stay_in_one_directory_skip_dotfiles_and_recurse_with_double_star() {
        let dir = package();
        // Both patterns find the same files: `*` within `config/`, `**` below it.
        for patterns in [["config/*"], ["**/*.json"]] {
            let entries = collect(dir.path(), &strings(&patterns)).unwrap();
            let got: Vec<String> = names(&entries).into_iter().map(|(n, _)| n).collect();
            assert_eq!(
                got,
                [
                    "config/",
                    "config/app.json",
                    "config/nested/",
                    "config/nested/extra.json"
                ],
                "{patterns:?}"
            );
        }
    }

    #[test]
    fn a_trailing_double_star_is_everything_below() {
        let dir = package();
        let got = |pattern: &str| -> Vec<String> {
            let entries = collect(dir.path(), &strings(&[pattern])).unwrap();
            names(&entries).into_iter().map(|(n, _)| n).collect()
        };
        assert_eq!(got("certs/**"), got("certs"));
        assert_eq!(
            got("certs/**"),
            ["certs/", "certs/a.pem", "certs/b.pem", "certs/readme.txt"]
        );
        let everything = got("**");
        assert!(
            everything.contains(&"Cargo.toml".to_string()),
            "{everything:?}"
        );
        assert!(everything.contains(&"config/nested/extra.json".to_string()));

        // The root as the outdir does not hide the root's files.
        let collected = collect_except(dir.path(), &strings(&["**"]), &[dir.path().into()]);
        assert_eq!(collected.unwrap().entries.len(), everything.len());
    }

    #[test]
    fn nothing_to_include_is_nothing() {
        assert!(collect(Path::new("/nonexistent"), &[]).unwrap().is_empty());
    }

    #[test]
    fn missing_paths_and_empty_globs_are_errors() {
        let dir = package();
        for pattern in ["nope.json", "config/*.yaml"] {
            let err = collect(dir.path(), &strings(&[pattern])).unwrap_err();
            assert!(matches!(err, IncludeError::NotFound { .. }), "{err}");
            assert!(err.to_string().contains(pattern), "{err}");
            assert!(err.help().is_some());
        }
        let err = collect(dir.path(), &strings(&["[abc"])).unwrap_err();
        assert!(matches!(err, IncludeError::BadPattern { .. }), "{err}");
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let dir = package();
        let root = dir.path().join("config");
        for pattern in [
            "../Cargo.toml",
            "nested/../../Cargo.toml",
            "/etc/passwd",
            "../*",
        ] {
            let err = collect(&root, &strings(&[pattern])).unwrap_err();
            assert!(
                matches!(err, IncludeError::Escapes { .. }),
                "{pattern}: {err}"
            );
            assert!(
                err.to_string().contains("outside the package root"),
                "{err}"
            );
        }
        // Climbing out and back in is still inside.
        let entries = collect(&root, &strings(&["nested/../app.json"])).unwrap();
        assert_eq!(names(&entries), [("app.json".to_string(), 0o644)]);
    }

    #[test]
    fn symlinks_inside_are_followed_and_outside_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s\n").unwrap();
        let dir = package();
        let root = dir.path();
        symlink("config/app.json", root.join("app-link.json")).unwrap();
        symlink("certs", root.join("certs-link")).unwrap();
        let entries = collect(root, &strings(&["app-link.json", "certs-link"])).unwrap();
        let got: Vec<String> = names(&entries).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            got,
            [
                "app-link.json",
                "certs-link/",
                "certs-link/a.pem",
                "certs-link/b.pem",
                "certs-link/readme.txt"
            ]
        );

        symlink(outside.path().join("secret"), root.join("config/secret")).unwrap();
        for pattern in ["config", "config/secret", "config/*"] {
            let err = collect(root, &strings(&[pattern])).unwrap_err();
            assert!(
                matches!(err, IncludeError::SymlinkOutside { .. }),
                "{pattern}: {err}"
            );
        }
        fs::remove_file(root.join("config/secret")).unwrap();
        symlink(outside.path(), root.join("config/dir-out")).unwrap();
        let err = collect(root, &strings(&["config"])).unwrap_err();
        assert!(matches!(err, IncludeError::SymlinkOutside { .. }), "{err}");
        fs::remove_file(root.join("config/dir-out")).unwrap();

        symlink("..", root.join("config/loop")).unwrap();
        let err = collect(root, &strings(&["config"])).unwrap_err();
        assert!(matches!(err, IncludeError::SymlinkLoop { .. }), "{err}");
    }
}
