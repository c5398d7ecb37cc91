//! What changes under the watched directories without being a source: the build's outputs
//! (target directories), hidden files (`.git`, the tool's own temporary files), editors' and
//! tools' temporary files, and what git ignores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

pub struct Filter {
    target_dirs: Vec<PathBuf>,
    /// The matcher of each directory's `.gitignore` (`None`: it has none), read when first
    /// needed and again after it changed.
    gitignores: HashMap<PathBuf, Option<Gitignore>>,
}

impl Filter {
    pub fn new(target_dirs: Vec<PathBuf>) -> Filter {
        Filter {
            target_dirs,
            gitignores: HashMap::new(),
        }
    }

    /// Whether a change of `path`, under the watched directory `root`, rebuilds nothing. Only
    /// the part below `root` is looked at for hidden and `target` directories: the project
    /// itself may live under a hidden directory.
    pub fn ignores(&mut self, path: &Path, root: &Path) -> bool {
        if self.target_dirs.iter().any(|dir| path.starts_with(dir)) {
            return true;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == ".gitignore" {
            // Its rules change: read again when next needed.
            if let Some(dir) = path.parent() {
                self.gitignores.remove(dir);
            }
            return true;
        }
        // `.cargo/config.toml` is a build input; other hidden files and directories are not.
        let cargo_config = path.parent().and_then(Path::file_name) == Some(".cargo".as_ref());
        let below = path.strip_prefix(root).unwrap_or(path);
        let hidden = below.components().any(|c| {
            let part = c.as_os_str().to_string_lossy();
            (part.starts_with('.')
                && part != "."
                && part != ".."
                && !(cargo_config && part == ".cargo"))
                || part == "target"
        });
        hidden || is_temporary(&name) || self.git_ignores(path)
    }

    /// Whether git ignores `path`: the `.gitignore` files of its directory and of each one above
    /// it up to the repository's root (the deepest rule that matches decides, as in git), then
    /// the repository's `.git/info/exclude`. Outside a repository, nothing is ignored.
    fn git_ignores(&mut self, path: &Path) -> bool {
        let Some(root) = path
            .ancestors()
            .skip(1)
            .find(|dir| dir.join(".git").exists())
        else {
            return false;
        };
        let is_dir = path.is_dir();
        for dir in path
            .ancestors()
            .skip(1)
            .take_while(|dir| dir.starts_with(root))
        {
            let matcher = self
                .gitignores
                .entry(dir.to_path_buf())
                .or_insert_with(|| read_gitignore(dir, &dir.join(".gitignore")));
            match matcher
                .as_ref()
                .map(|m| m.matched_path_or_any_parents(path, is_dir))
            {
                Some(Match::Ignore(_)) => return true,
                Some(Match::Whitelist(_)) => return false,
                Some(Match::None) | None => {}
            }
        }
        read_gitignore(root, &root.join(".git").join("info").join("exclude"))
            .is_some_and(|m| m.matched_path_or_any_parents(path, is_dir).is_ignore())
    }
}

/// The rules of `file` relative to `dir`; `None` when it does not exist or has none.
fn read_gitignore(dir: &Path, file: &Path) -> Option<Gitignore> {
    if !file.is_file() {
        return None;
    }
    let mut builder = GitignoreBuilder::new(dir);
    // A line git would not read either is skipped; the others still apply.
    let _ = builder.add(file);
    builder.build().ok().filter(|matcher| !matcher.is_empty())
}

/// Whether `name` is a file that editors and tools write beside a source and remove or rename
/// over it: saving writes the source itself (or renames onto it), which is the change that
/// counts.
pub fn is_temporary(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        // Backups: Emacs, Vim, Kate, gedit.
        "~",
        // Most editors' atomic saves: `main.rs.tmp`.
        ".tmp",
        ".temp",
        // Vim's swap files, when not hidden (`set directory=.`); Kate's.
        ".swp",
        ".swo",
        ".swx",
        ".kate-swp",
        // JetBrains' safe write.
        "___jb_tmp___",
        "___jb_old___",
    ];
    // GNU `sed -i` writes `sedXXXXXX` beside the file, then renames it over.
    let sed = name.len() == 9
        && name.starts_with("sed")
        && name[3..].chars().all(|c| c.is_ascii_alphanumeric());
    // Vim checks that it may write a directory with a file named 4913 (then 5036, ...).
    let vim_probe = !name.is_empty() && name.chars().all(|c| c.is_ascii_digit());
    let emacs_autosave = name.len() > 2 && name.starts_with('#') && name.ends_with('#');
    SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.contains(".tmp.")
        || name.starts_with(".#")
        || sed
        || vim_probe
        || emacs_autosave
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_hidden_and_temporary_files_do_not_rebuild() {
        let mut filter = Filter::new(vec![PathBuf::from("/p/target"), PathBuf::from("/p/out")]);
        for path in [
            "/p/target/release/x",
            "/p/out/x86_64-unknown-linux-gnu/release/echo",
            "/p/.git/index",
            "/p/src/.main.rs.swp",
            "/p/src/main.rs.swp",
            "/p/src/main.rs~",
            "/p/src/main.rs.tmp",
            "/p/src/main.rs.tmp.12345.67890",
            "/p/src/sedAb12Cd",
            "/p/src/.#main.rs",
            "/p/src/#main.rs#",
            "/p/src/4913",
            "/p/src/main.rs___jb_tmp___",
            "/p/.lambda.zip.tmp123",
            "/p/dep/target/debug/x",
            "/p/.gitignore",
            "/p/.cargo/registry/x.rs",
        ] {
            assert!(filter.ignores(Path::new(path), Path::new("/p")), "{path}");
        }
        for path in [
            "/p/src/main.rs",
            "/p/Cargo.toml",
            "/p/src/bin/bootstrap.rs",
            "/p/.cargo/config.toml",
            "/p/src/sedimentary.rs",
            "/p/src/v2.rs",
        ] {
            assert!(!filter.ignores(Path::new(path), Path::new("/p")), "{path}");
        }
    }

    #[test]
    fn what_git_ignores_does_not_rebuild() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        std::fs::create_dir_all(root.join(".git/info")).unwrap();
        std::fs::create_dir_all(root.join("fn/src/generated")).unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\n/dist/\n").unwrap();
        std::fs::write(root.join("fn/.gitignore"), "generated/\n!keep.log\n").unwrap();
        std::fs::write(root.join(".git/info/exclude"), "notes.md\n").unwrap();
        let mut filter = Filter::new(vec![root.join("target")]);
        for ignored in [
            "fn/debug.log",
            "dist/lambda.zip",
            "fn/src/generated/x.rs",
            "fn/notes.md",
        ] {
            assert!(filter.ignores(&root.join(ignored), root), "{ignored}");
        }
        for kept in ["fn/src/main.rs", "fn/keep.log", "fn/Cargo.toml"] {
            assert!(!filter.ignores(&root.join(kept), root), "{kept}");
        }
        // A changed .gitignore is read again.
        std::fs::write(root.join("fn/.gitignore"), "*.rs\n").unwrap();
        assert!(filter.ignores(&root.join("fn/.gitignore"), root));
        assert!(filter.ignores(&root.join("fn/src/main.rs"), root));
    }

    #[test]
    fn outside_a_repository_nothing_is_git_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "*.rs\n").unwrap();
        let mut filter = Filter::new(vec![dir.path().join("target")]);
        // A tempdir's name starts with `.tmp`: the directory watched is hidden, its files not.
        assert!(!filter.ignores(&dir.path().join("main.rs"), dir.path()));
    }
}
