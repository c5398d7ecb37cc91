//! `cargo lambda-build new PATH`: a function crate that builds with `cargo lambda-build --zip` as
//! it is, with a handler and its unit test, a README, an AWS SAM template pointing at the zip
//! the tool writes, and on request a CI workflow. The files are embedded in the binary
//! (`templates/`), so `new` needs no network; it does not run cargo either.
//!
//! The crate comes with a Cargo.lock: the versions the tool's own tests build (the test of
//! `new` builds the generated crate with `--locked`, so the lock cannot go stale unnoticed).
//!
//! Inside a workspace it does what `cargo new` does: the crate joins the workspace's `members`
//! (unless a glob already takes it in, or `exclude` leaves it out) and gets no Cargo.lock of
//! its own, since cargo keeps one lock at the workspace root.

use std::fs;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::report;

type Result<T, E = NewError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("`{}` already exists", .0.display())]
    Exists(PathBuf),

    #[error("`{name}` cannot name a crate: {reason}")]
    InvalidCrateName { name: String, reason: &'static str },

    #[error("cannot write `{}`: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot add the crate to the workspace in `{}`: {reason}", .manifest.display())]
    Workspace { manifest: PathBuf, reason: String },
}

impl NewError {
    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            NewError::Write { .. } => return None,
            NewError::Workspace { .. } => {
                "fix the workspace's Cargo.toml (`cargo metadata` shows what cargo makes of it), \
                 or create the crate outside the workspace"
                    .into()
            }
            NewError::Exists(_) => "choose another name, or remove it first".into(),
            NewError::InvalidCrateName { .. } => {
                "use letters, digits, `-` and `_`, starting with a letter".into()
            }
        })
    }
}

/// The files that make one kind of crate.
struct Template {
    cargo_toml: &'static str,
    cargo_lock: &'static str,
    main_rs: &'static str,
    readme: &'static str,
    /// AWS SAM / CloudFormation, written as `template.yaml`.
    sam: &'static str,
}

/// A `lambda_runtime` function; its SAM template has `Runtime: provided.al2023`,
/// `Handler: bootstrap` and `CodeUri: lambda.zip`.
const FUNCTION: Template = Template {
    cargo_toml: include_str!("../templates/new/function/Cargo.toml.in"),
    cargo_lock: include_str!("../templates/new/function/Cargo.lock"),
    main_rs: include_str!("../templates/new/function/src/main.rs"),
    readme: include_str!("../templates/new/function/README.md"),
    sam: include_str!("../templates/deploy/function.yaml"),
};

/// A `lambda-extension` extension, packaged as a layer; its SAM template declares the layer
/// with `ContentUri: lambda.zip`.
const EXTENSION: Template = Template {
    cargo_toml: include_str!("../templates/new/extension/Cargo.toml.in"),
    cargo_lock: include_str!("../templates/new/extension/Cargo.lock"),
    main_rs: include_str!("../templates/new/extension/src/main.rs"),
    readme: include_str!("../templates/new/extension/README.md"),
    sam: include_str!("../templates/deploy/layer.yaml"),
};

/// A `lambda_http` function; its SAM template declares a Function URL.
const HTTP: Template = Template {
    cargo_toml: include_str!("../templates/new/http/Cargo.toml.in"),
    cargo_lock: include_str!("../templates/new/http/Cargo.lock"),
    main_rs: include_str!("../templates/new/http/src/main.rs"),
    readme: include_str!("../templates/new/http/README.md"),
    sam: include_str!("../templates/deploy/http.yaml"),
};

/// What `new` creates: where, what kind of crate, and which CI file with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCrate {
    /// Relative to the current directory; its last component names the crate.
    pub path: PathBuf,
    pub kind: Kind,
    pub ci: Option<Ci>,
    /// `--image`: a function whose SAM template deploys a container image.
    pub image: bool,
}

/// The CI systems `new --ci` writes a file for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    /// GitHub Actions: `.github/workflows/lambda.yml`.
    Github,
    /// GitLab CI, with the `docker:dind` service over TLS: `.gitlab-ci.yml`.
    Gitlab,
}

/// The kinds of crate `new` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Function,
    Http,
    Extension,
}

impl Kind {
    fn template(self) -> &'static Template {
        match self {
            Kind::Function => &FUNCTION,
            Kind::Http => &HTTP,
            Kind::Extension => &EXTENSION,
        }
    }
}

const GITIGNORE: &str = include_str!("../templates/new/gitignore");
/// GitHub Actions: both architectures with `--docker`, the builder image and cargo's files
/// cached, the zips kept as artifacts.
const GITHUB_WORKFLOW: &str = include_str!("../templates/ci/github-workflow.yml");
/// GitLab CI: the same on a `docker:dind` service over TLS.
const GITLAB_CI: &str = include_str!("../templates/ci/gitlab-ci.yml");

/// The SAM template of a function deployed as a container image (`new --image`).
const IMAGE_SAM: &str = include_str!("../templates/deploy/image.yaml");

/// The placeholder every template uses for the crate's name.
const NAME: &str = "{{name}}";

/// The files of a new crate named `name`, a function or an extension: (path relative to the
/// crate, content).
pub fn files(name: &str, kind: Kind, ci: Option<Ci>) -> Vec<(&'static str, String)> {
    files_for(name, kind, ci, true)
}

/// The files of `args`' crate named `name`: [`files`], with the image's SAM template for
/// `--image`.
fn files_of(args: &NewCrate, name: &str, lock: bool) -> Vec<(&'static str, String)> {
    let mut files = files_for(name, args.kind, args.ci, lock);
    if args.image {
        for (path, content) in &mut files {
            if *path == "template.yaml" {
                *content = IMAGE_SAM.replace(NAME, name);
            }
        }
    }
    files
}

/// [`files`], with the crate's own Cargo.lock or without it (a workspace member shares the
/// workspace's).
fn files_for(name: &str, kind: Kind, ci: Option<Ci>, lock: bool) -> Vec<(&'static str, String)> {
    let template = kind.template();
    let fill = |text: &str| text.replace(NAME, name);
    let mut files = vec![
        ("Cargo.toml", fill(template.cargo_toml)),
        ("src/main.rs", fill(template.main_rs)),
        ("README.md", fill(template.readme)),
        (".gitignore", GITIGNORE.to_string()),
        ("template.yaml", fill(template.sam)),
    ];
    if let Some(lock) = lock_file(template.cargo_lock, name).filter(|_| lock) {
        files.push(("Cargo.lock", lock));
    }
    match ci {
        Some(Ci::Github) => files.push((".github/workflows/lambda.yml", fill(GITHUB_WORKFLOW))),
        Some(Ci::Gitlab) => files.push((".gitlab-ci.yml", fill(GITLAB_CI))),
        None => {}
    }
    files
}

/// `cargo lambda-build new`: creates the crate, then says what to run next (on stderr; stdout
/// gets the crate's path, the result).
pub fn run(args: &NewCrate, env: &Env, color: bool) -> Result<()> {
    let (dir, joined) = create_in_workspace(args, &env.cwd)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let shown = args.path.display();
    let stderr = &mut std::io::stderr().lock();
    let _ = report::print_status(
        stderr,
        "Created",
        format!(
            "Lambda {} `{name}` in `{shown}`",
            match args.kind {
                Kind::Function => "function",
                Kind::Http => "HTTP function",
                Kind::Extension => "extension",
            }
        ),
        color,
    );
    if let Some(manifest) = joined {
        let _ = report::print_status(
            stderr,
            "Added",
            format!(
                "`{name}` to the workspace's members in `{}`",
                manifest.display()
            ),
            color,
        );
    }
    let next = if args.image {
        format!(
            "cd {shown} && cargo lambda-build --image REGISTRY/{name}:latest --push   (then \
             deploy the ImageUri it prints with template.yaml)"
        )
    } else {
        format!("cd {shown} && cargo lambda-build --zip   (then see its README.md to deploy)")
    };
    let _ = report::print_status(stderr, "Next", next, color);
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{}", dir.display()).map_err(|source| NewError::Write {
        path: "stdout".into(),
        source,
    })?;
    Ok(())
}

/// Creates the crate at `cwd/args.path` and returns its directory. The files are written into a
/// temporary directory beside it, renamed into place at the end: no half-made crate is left.
pub fn create(args: &NewCrate, cwd: &Path) -> Result<PathBuf> {
    create_in_workspace(args, cwd).map(|(dir, _)| dir)
}

/// [`create`], and the workspace manifest it added the crate to, if it did.
fn create_in_workspace(args: &NewCrate, cwd: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let dir = cwd.join(&args.path);
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    check_name(&name)?;
    if fs::symlink_metadata(&dir).is_ok() {
        return Err(NewError::Exists(dir));
    }
    let parent = dir.parent().unwrap_or(cwd);
    let failed = |what: &Path, source: std::io::Error| NewError::Write {
        path: what.to_path_buf(),
        source,
    };
    fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
    let workspace = enclosing_workspace(&dir)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempdir_in(parent)
        .map_err(|e| failed(parent, e))?;
    let own_lock = workspace.is_none();
    for (path, content) in files_of(args, &name, own_lock) {
        let path = staging.path().join(path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        }
        fs::write(&path, content).map_err(|e| failed(&path, e))?;
    }
    // tempdir creates 0700; a crate directory is an ordinary one.
    crate::host::set_path_mode(staging.path(), 0o755).map_err(|e| failed(&dir, e))?;
    // `rename` would replace an empty directory that appeared meanwhile; refuse that too.
    if fs::symlink_metadata(&dir).is_ok() {
        return Err(NewError::Exists(dir));
    }
    // The new members list is written beside the manifest first, so a failure leaves both as
    // they were; it replaces the manifest once the crate is in place.
    let manifest = match &workspace {
        Some(Workspace {
            manifest,
            members: Some(text),
        }) => {
            let temp = tempfile::NamedTempFile::new_in(manifest.parent().unwrap_or(parent))
                .map_err(|e| failed(manifest, e))?;
            fs::write(temp.path(), text).map_err(|e| failed(manifest, e))?;
            Some((temp, manifest.clone()))
        }
        _ => None,
    };
    fs::rename(staging.path(), &dir).map_err(|e| failed(&dir, e))?;
    let _ = staging.keep();
    let joined = match manifest {
        Some((temp, manifest)) => {
            temp.persist(&manifest)
                .map_err(|e| failed(&manifest, e.error))?;
            Some(manifest)
        }
        None => None,
    };
    Ok((dir, joined))
}

/// The workspace a new crate at `dir` falls in, as cargo finds it: the nearest ancestor
/// Cargo.toml with a `[workspace]` table, unless its `exclude` leaves `dir` out.
struct Workspace {
    manifest: PathBuf,
    /// The manifest's new text with `dir` added to `members`; `None` when a `members` glob
    /// already takes it in.
    members: Option<String>,
}

fn enclosing_workspace(dir: &Path) -> Result<Option<Workspace>> {
    for ancestor in dir.ancestors().skip(1) {
        let manifest = ancestor.join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let invalid = |reason: String| NewError::Workspace {
            manifest: manifest.clone(),
            reason,
        };
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| invalid(e.to_string()))?;
        let Some(workspace) = doc.get_mut("workspace").and_then(|w| w.as_table_like_mut()) else {
            continue;
        };
        // cargo compares paths relative to the root, with `/` on every host.
        let relative = dir
            .strip_prefix(ancestor)
            .unwrap_or(dir)
            .iter()
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let listed = |key: &str| -> Vec<String> {
            workspace
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str()).map(normalize).collect())
                .unwrap_or_default()
        };
        let under = |path: &str| relative == path || relative.starts_with(&format!("{path}/"));
        if listed("exclude").iter().any(|path| under(path)) {
            return Ok(None);
        }
        let members = listed("members");
        let taken_in = members.iter().any(|member| {
            glob::Pattern::new(member).is_ok_and(|pattern| pattern.matches(&relative))
        });
        if taken_in {
            return Ok(Some(Workspace {
                manifest,
                members: None,
            }));
        }
        let entry = workspace
            .entry("members")
            .or_insert(toml_edit::value(toml_edit::Array::new()));
        let Some(array) = entry.as_array_mut() else {
            return Err(invalid("`workspace.members` is not an array".into()));
        };
        array.push(relative.as_str());
        return Ok(Some(Workspace {
            manifest,
            members: Some(doc.to_string()),
        }));
    }
    Ok(None)
}

/// A `members` or `exclude` entry as cargo reads it: `./a/b/` is `a/b`.
fn normalize(path: &str) -> String {
    let path = path.trim_end_matches('/');
    path.strip_prefix("./").unwrap_or(path).to_owned()
}

/// The names cargo accepts for a package that is also a binary: ASCII letters, digits, `-`,
/// `_`, starting with a letter, and not one that shadows a standard crate.
fn check_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(NewError::InvalidCrateName {
            name: name.to_string(),
            reason,
        })
    };
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return invalid("it must start with an ASCII letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return invalid("only ASCII letters, digits, `-` and `_` are allowed");
    }
    if matches!(
        name,
        "std" | "core" | "alloc" | "proc_macro" | "test" | "self" | "crate" | "super"
    ) {
        return invalid("it is the name of a standard crate or a keyword");
    }
    Ok(())
}

/// A template's Cargo.lock for a crate named `name`, its `[[package]]` entries in cargo's
/// order (by name, then version). `None` when `name` is also the name of a locked dependency:
/// cargo would then write the lock differently, and it is left to cargo.
fn lock_file(template: &str, name: &str) -> Option<String> {
    let mut blocks = template.split("\n[[package]]\n");
    let header = blocks.next()?;
    let mut packages: Vec<String> = blocks
        .map(|block| block.replace(NAME, name).trim_end().to_string())
        .collect();
    let key = |block: &str| -> (String, semver::Version) {
        let field = |prefix: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let version =
            semver::Version::parse(&field("version = ")).unwrap_or(semver::Version::new(0, 0, 0));
        (field("name = "), version)
    };
    let names: Vec<String> = packages.iter().map(|b| key(b).0).collect();
    if names.iter().filter(|n| *n == name).count() != 1 {
        return None;
    }
    packages.sort_by_cached_key(|b| key(b));
    let mut lock = header.to_string();
    for block in packages {
        lock.push_str("\n[[package]]\n");
        lock.push_str(&block);
        lock.push('\n');
    }
    Some(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_args(path: &str, ci: Option<Ci>) -> NewCrate {
        NewCrate {
            path: path.into(),
            kind: Kind::Function,
            ci,
            image: false,
        }
    }

    #[test]
    fn creates_the_crate_with_its_name_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let created = create(&new_args("fns/my-fn", Some(Ci::Github)), dir.path()).unwrap();
        assert_eq!(created, dir.path().join("fns/my-fn"));
        for (path, _) in files("my-fn", Kind::Function, Some(Ci::Github)) {
            let content = fs::read_to_string(created.join(path)).unwrap();
            assert!(!content.contains(NAME), "{path} keeps a placeholder");
        }
        let manifest = fs::read_to_string(created.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-fn\""), "{manifest}");
        assert!(created.join(".github/workflows/lambda.yml").is_file());
        // Nothing else beside it: the staging directory was renamed, not left.
        let beside: Vec<_> = fs::read_dir(dir.path().join("fns")).unwrap().collect();
        assert_eq!(beside.len(), 1);

        let err = create(&new_args("fns/my-fn", None), dir.path()).unwrap_err();
        assert!(matches!(err, NewError::Exists(_)), "{err}");
        let plain = create(&new_args("plain", None), dir.path()).unwrap();
        assert!(!plain.join(".github").exists() && !plain.join(".gitlab-ci.yml").exists());
        let gitlab = create(&new_args("gl", Some(Ci::Gitlab)), dir.path()).unwrap();
        let text = fs::read_to_string(gitlab.join(".gitlab-ci.yml")).unwrap();
        assert!(text.contains("DOCKER_HOST: tcp://docker:2376"), "{text}");
        assert!(!gitlab.join(".github").exists());
    }

    #[test]
    fn bad_names_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1fn", "my fn", "é", "test", "-x"] {
            let err = create(&new_args(&format!("sub/{name}"), None), dir.path()).unwrap_err();
            assert!(
                matches!(err, NewError::InvalidCrateName { .. } | NewError::Exists(_)),
                "{name}: {err}"
            );
        }
        assert!(!dir.path().join("sub").exists());
    }

    /// The template pins what the echo fixture pins, so the test of `new` reuses its compiled
    /// dependencies; update both together.
    #[test]
    fn the_lock_is_the_echo_fixtures() {
        let echo = include_str!("../tests/fixtures/echo/Cargo.lock");
        assert_eq!(
            lock_file(FUNCTION.cargo_lock, "echo").as_deref(),
            Some(echo)
        );
        let manifest = include_str!("../tests/fixtures/echo/Cargo.toml");
        for line in FUNCTION
            .cargo_toml
            .lines()
            .filter(|l| l.contains("version = \"") && !l.starts_with("version"))
        {
            assert!(
                manifest.contains(line),
                "`{line}` differs from the echo fixture's"
            );
        }
    }

    /// The HTTP template pins the echo fixture's versions of the crates both have, so that its
    /// build reuses what the fixtures compiled and adds only lambda_http's own crates.
    #[test]
    fn the_http_lock_agrees_with_the_echo_fixtures() {
        let versions = |lock: &str| -> Vec<(String, String)> {
            lock.split("\n[[package]]\n")
                .skip(1)
                .map(|block| {
                    let field = |prefix: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(prefix))
                            .unwrap_or_default()
                            .to_owned()
                    };
                    (field("name = "), field("version = "))
                })
                .collect()
        };
        let http = versions(HTTP.cargo_lock);
        let echo = versions(include_str!("../tests/fixtures/echo/Cargo.lock"));
        for (name, version) in &echo {
            if http.iter().any(|(n, _)| n == name) {
                assert!(
                    http.contains(&(name.clone(), version.clone())),
                    "{name} {version}"
                );
            }
        }
        assert!(http.iter().any(|(n, _)| n == "\"lambda_http\""));
    }

    #[test]
    fn the_lock_lists_the_crate_in_cargos_order() {
        for template in [&FUNCTION, &HTTP, &EXTENSION] {
            let lock = lock_file(template.cargo_lock, "my-fn").unwrap();
            assert_sorted_with(&lock, "my-fn");
            // Named like a dependency: cargo writes the lock.
            assert_eq!(lock_file(template.cargo_lock, "tokio"), None);
        }
        let last = lock_file(FUNCTION.cargo_lock, "zzz").unwrap();
        assert!(last.trim_end().ends_with(']'));
    }

    #[test]
    fn an_extension_is_packaged_as_one_by_its_cargo_toml() {
        let files = files("my-ext", Kind::Extension, None);
        let manifest = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(manifest.contains("extension = true"), "{manifest}");
        let sam = &files.iter().find(|(p, _)| *p == "template.yaml").unwrap().1;
        assert!(sam.contains("AWS::Serverless::LayerVersion"), "{sam}");
    }

    fn assert_sorted_with(lock: &str, name: &str) {
        let names: Vec<&str> = lock
            .lines()
            .filter_map(|l| l.strip_prefix("name = "))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&format!("\"{name}\"").as_str()));
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."));
    }
}
