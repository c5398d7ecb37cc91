//! What cargo says about the project: one `cargo metadata --no-deps` call, then the choice of
//! package and binary. `--no-deps` because nothing here needs the dependency graph, and it keeps
//! a no-op run fast and offline.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Metadata, Package};

use crate::lambda;

type Result<T, E = ProjectError> = std::result::Result<T, E>;

/// The help for a missing cargo or rustc.
pub const INSTALL_RUST: &str =
    "install Rust with rustup (https://rustup.rs), or set `CARGO` to cargo's path";

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("could not find `Cargo.toml` in `{}` or any parent directory", .0.display())]
    NoManifest(PathBuf),

    #[error("`--manifest-path` `{}` does not exist", .0.display())]
    ManifestMissing(PathBuf),

    #[error("`--manifest-path` `{}` is a directory; it must name a Cargo.toml file", .0.display())]
    ManifestIsDir(PathBuf),

    #[error("cargo could not read the project: {0}")]
    Metadata(String),

    #[error("could not run `{program}`: {source}")]
    RunCargo {
        program: String,
        source: std::io::Error,
    },

    #[error("package `{0}` has no binary target to deploy")]
    NoBinary(String),

    #[error("package `{package}` has several binaries ({}){}; choose one with `--bin`",
        .names.join(", "),
        .default_run.as_ref().map(|d| format!(", and its `default-run` `{d}` is what `cargo run` \
            starts, not necessarily the Lambda function")).unwrap_or_default())]
    SeveralBinaries {
        package: String,
        names: Vec<String>,
        default_run: Option<String>,
    },

    #[error("package `{package}` has no {kind} named `{name}`; it has: {}", list_or_none(.names))]
    UnknownBinary {
        package: String,
        kind: TargetKind,
        name: String,
        names: Vec<String>,
    },

    #[error("package `{name}` is not in the workspace; it has: {}", .names.join(", "))]
    UnknownPackage { name: String, names: Vec<String> },

    #[error("no selected package has a {kind} named `{name}`; the packages are: {}", .packages.join(", "))]
    NoSuchBinary {
        kind: TargetKind,
        name: String,
        packages: Vec<String>,
    },

    #[error("two selected binaries are named `{name}`: one in package `{}`, one in package `{}`", .packages[0], .packages[1])]
    DuplicateBinary {
        name: String,
        packages: [String; 2],
        via: Via,
    },

    #[error("{}", no_function_text(.excluded))]
    NoFunction { excluded: Vec<String> },

    #[error(
        "`--exclude` leaves packages out of the workspace's, but this run builds package `{0}` alone"
    )]
    ExcludeWithoutWorkspace(String),

    #[error("`{}` is not valid TOML: {message}", .path.display())]
    CargoLambdaToml { path: PathBuf, message: String },

    #[error("the workspace has several packages with binaries ({}); choose one with `-p`", .0.join(", "))]
    SeveralPackages(Vec<String>),
}

impl ProjectError {
    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ProjectError::NoManifest(_) => {
                "run in your function's crate, or pass `--manifest-path path/to/Cargo.toml`".into()
            }
            ProjectError::ManifestMissing(_) => {
                "point `--manifest-path` at an existing Cargo.toml".into()
            }
            ProjectError::ManifestIsDir(dir) => {
                format!("use `--manifest-path {}`", dir.join("Cargo.toml").display())
            }
            ProjectError::Metadata(_) => {
                "fix what cargo says, then run again (`cargo metadata --no-deps` shows it in full)"
                    .into()
            }
            ProjectError::NoBinary(_) => {
                "a Lambda function is a binary: add `src/main.rs` or a `[[bin]]` target".into()
            }
            ProjectError::SeveralBinaries {
                names, default_run, ..
            } => {
                // The example is never the `default-run` binary: that one is the suspect.
                let example = names
                    .iter()
                    .find(|n| Some(*n) != default_run.as_ref())
                    .unwrap_or(&names[0]);
                format!(
                    "for example `--bin {example}`; `{}` builds each into its own zip; a binary \
                     named `bootstrap` is taken as the function without asking",
                    names
                        .iter()
                        .map(|n| format!("--bin {n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
            ProjectError::UnknownBinary { names, kind, .. } => match names.first() {
                Some(name) => format!("for example `{} {name}`", kind.flag()),
                None => format!(
                    "choose a package that has one with `-p`, or leave `{}` out",
                    kind.flag()
                ),
            },
            ProjectError::UnknownPackage { names, .. } => format!("for example `-p {}`", names[0]),
            ProjectError::NoSuchBinary { kind, .. } => format!(
                "list the package that has it with `-p`, or leave `{}` out",
                kind.flag()
            ),
            ProjectError::DuplicateBinary { packages, via, .. } => match via {
                Via::Listed => format!(
                    "each function is named after its binary: list one of the two packages, \
                     `-p {}` or `-p {}`",
                    packages[0], packages[1]
                ),
                Via::Members => format!(
                    "each function is named after its binary: select one of them with `-p {}`, \
                     or leave one out with `--exclude {}`",
                    packages[0], packages[1]
                ),
                Via::Workspace => format!(
                    "each function is named after its binary: leave one out with `--exclude {}`, \
                     or build one package with `-p {}` in place of `--workspace`",
                    packages[1], packages[0]
                ),
            },
            ProjectError::NoFunction { excluded } if !excluded.is_empty() => {
                "leave fewer packages out, or build one with `-p`".into()
            }
            ProjectError::NoFunction { .. } => "a Lambda function is a binary: add \
                `src/main.rs` or a `[[bin]]` target to a member (or pick an example with \
                `--example NAME`)"
                .into(),
            ProjectError::ExcludeWithoutWorkspace(_) => {
                "add `--workspace` to build the workspace's functions less the excluded, or \
                 leave `--exclude` out"
                    .into()
            }
            ProjectError::SeveralPackages(names) => format!(
                "for example `-p {}`, or `--workspace` to build every function",
                names[0]
            ),
            ProjectError::RunCargo { .. } => INSTALL_RUST.into(),
            ProjectError::CargoLambdaToml { .. } => {
                "fix it, or remove it: its `[build]` settings are read as cargo-lambda reads them"
                    .into()
            }
        })
    }
}

/// How the packages were chosen, for advice that works with the command line as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `--workspace`.
    Workspace,
    /// Every member, at a workspace root that is not itself a function.
    Members,
    /// `-p`, or the package of the current directory.
    Listed,
}

fn no_function_text(excluded: &[String]) -> String {
    if excluded.is_empty() {
        "no package of the workspace has a binary target to deploy".into()
    } else {
        format!(
            "no package left has a binary to deploy: `--exclude` left out {}",
            excluded
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The workspace and the functions this run deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub workspace_root: PathBuf,
    /// cargo's target directory (honours `CARGO_TARGET_DIR` and `.cargo/config.toml`).
    pub target_dir: PathBuf,
    /// `[workspace.metadata.lambda-build]`, `Null` when absent.
    pub workspace_config: serde_json::Value,
    /// cargo-lambda's workspace-wide build settings, highest first, each with where it was
    /// written: `[workspace.metadata.lambda.build]`, then `CargoLambda.toml`'s `[build]`.
    pub cargo_lambda: Vec<(String, serde_json::Value)>,
    /// One per selected binary, in the order they were asked for (else cargo's order); never
    /// empty, and no two share a binary name.
    pub functions: Vec<Function>,
}

/// The two kinds of cargo target that are executables a function can be made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Bin,
    /// `examples/NAME.rs`: AWS's runtime repository keeps its functions there.
    Example,
}

impl TargetKind {
    /// cargo's flag that selects one by name.
    pub fn flag(self) -> &'static str {
        match self {
            TargetKind::Bin => "--bin",
            TargetKind::Example => "--example",
        }
    }

    fn of(self, target: &cargo_metadata::Target) -> bool {
        match self {
            TargetKind::Bin => target.is_bin(),
            TargetKind::Example => target.is_example(),
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetKind::Bin => "binary",
            TargetKind::Example => "example",
        })
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A binary (or example) deployed as its own function.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub package: String,
    pub manifest_path: PathBuf,
    /// The target's name: a function is named after it.
    pub bin: String,
    pub kind: TargetKind,
    /// `[package.metadata.lambda-build]` of its package, `Null` when absent.
    pub package_config: serde_json::Value,
    /// cargo-lambda's `[package.metadata.lambda.build]` of its package, `Null` when absent.
    pub cargo_lambda_config: serde_json::Value,
}

impl Function {
    /// The package root: includes are relative to it.
    pub fn package_root(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// What the command line selects: cargo's `-p`, `--workspace`, `--exclude`, `--bin` and
/// `--example`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub packages: &'a [String],
    pub workspace: bool,
    pub exclude: &'a [String],
    pub bins: &'a [String],
    pub examples: &'a [String],
}

impl Selection<'_> {
    /// Targets named on the command line, with their kind.
    fn named(&self) -> impl Iterator<Item = (TargetKind, &String)> {
        let bins = self.bins.iter().map(|b| (TargetKind::Bin, b));
        bins.chain(self.examples.iter().map(|e| (TargetKind::Example, e)))
    }
}

/// The key of this tool's tables under `[package.metadata]` and `[workspace.metadata]`.
pub const CONFIG_KEY: &str = "lambda-build";

/// The Cargo.toml cargo would use: `--manifest-path`, else the nearest one at or above `cwd`.
pub fn locate_manifest(manifest_path: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(path) = manifest_path {
        let path = cwd.join(path);
        return if path.is_file() {
            Ok(path)
        } else if path.is_dir() {
            Err(ProjectError::ManifestIsDir(path))
        } else {
            Err(ProjectError::ManifestMissing(path))
        };
    }
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ProjectError::NoManifest(cwd.to_path_buf()))
}

/// Runs `cargo metadata --no-deps` for `manifest`: the workspace's packages, no resolution.
pub fn metadata(cargo: &OsStr, manifest: &Path, cwd: &Path) -> Result<Metadata> {
    run_metadata(cargo, manifest, cwd, &["--no-deps"])
}

/// The workspace as `cargo metadata` described it, read once, and the manifest it was asked
/// about: `serve --watch` reads it once and builds from it until a manifest changes.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub manifest: PathBuf,
    pub metadata: Metadata,
}

impl Workspace {
    /// `cargo metadata` with the dependency graph resolved (`lock_flags`: the user's
    /// `--locked`, `--offline`, `--frozen`, as the build would pass them): the path
    /// dependencies outside the workspace are only in the resolved graph.
    pub fn resolved(
        cargo: &OsStr,
        manifest: PathBuf,
        cwd: &Path,
        lock_flags: &[&str],
    ) -> Result<Workspace> {
        let metadata = run_metadata(cargo, &manifest, cwd, lock_flags)?;
        Ok(Workspace { manifest, metadata })
    }
}

fn run_metadata(cargo: &OsStr, manifest: &Path, cwd: &Path, flags: &[&str]) -> Result<Metadata> {
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .args(flags)
        .arg("--manifest-path")
        .arg(manifest)
        .current_dir(cwd)
        .output()
        .map_err(|source| ProjectError::RunCargo {
            program: cargo.to_string_lossy().into_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(ProjectError::Metadata(cargo_error_text(&output.stderr)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    cargo_metadata::MetadataCommand::parse(stdout.as_ref())
        .map_err(|e| ProjectError::Metadata(e.to_string()))
}

/// Cargo's error without its own `error: ` prefix, so it reads after ours, in cargo's lines: a
/// list (the manifests of two packages of one name) or a `Caused by:` chain reads as cargo
/// wrote it. Only a TOML error's source snippet is left out, its place said after the message.
fn cargo_error_text(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        let trimmed = line.trim_start();
        if let Some(location) = trimmed.strip_prefix("--> ") {
            if let Some(last) = lines.last_mut() {
                last.push_str(&format!(" (at {location})"));
            }
            continue;
        }
        let snippet = trimmed.starts_with('|')
            || trimmed
                .split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
        if snippet {
            continue;
        }
        lines.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
    }
    lines.join("\n").trim().to_string()
}

/// Chooses the functions: the packages (`--workspace` less `--exclude`, else each `-p`, else
/// the one whose manifest was found, else the only workspace member with a binary), then their
/// binaries (each `--bin`; else every binary with `--workspace`; else per package the only one,
/// else `default-run`).
pub fn select(metadata: &Metadata, manifest: &Path, selection: Selection) -> Result<Project> {
    let members = Members(metadata.workspace_packages());
    let excluded = selection
        .exclude
        .iter()
        .map(|spec| members.find(spec))
        .collect::<Result<Vec<_>>>()?;
    let candidates: Vec<&Package> = members
        .0
        .iter()
        .copied()
        .filter(|p| !excluded.iter().any(|e| e.id == p.id))
        .collect();
    let no_function = || ProjectError::NoFunction {
        excluded: excluded.iter().map(|p| p.name.to_string()).collect(),
    };
    let (packages, via) = if selection.workspace {
        (candidates.clone(), Via::Workspace)
    } else if !selection.packages.is_empty() {
        (listed_packages(&members, selection.packages)?, Via::Listed)
    } else {
        let at = Location { metadata, manifest };
        implied_packages(
            &members,
            &candidates,
            &excluded,
            at,
            &selection,
            no_function,
        )?
    };
    let chosen = if selection.named().next().is_some() {
        named_targets(&packages, &selection)?
    } else if selection.workspace {
        let every: Vec<_> = packages
            .iter()
            .flat_map(|package| {
                binaries(package)
                    .into_iter()
                    .map(|bin| (*package, bin, TargetKind::Bin))
            })
            .collect();
        if every.is_empty() {
            return Err(no_function());
        }
        every
    } else {
        default_binaries(&packages)?
    };
    let chosen = without_repeats(chosen);
    refuse_duplicate_names(&chosen, via)?;

    Ok(Project {
        workspace_root: metadata.workspace_root.clone().into(),
        target_dir: metadata.target_directory.clone().into(),
        workspace_config: metadata.workspace_metadata[CONFIG_KEY].clone(),
        cargo_lambda: cargo_lambda_tables(metadata)?,
        functions: chosen
            .into_iter()
            .map(|(package, bin, kind)| Function {
                package: package.name.to_string(),
                manifest_path: package.manifest_path.clone().into(),
                bin,
                kind,
                package_config: package.metadata[CONFIG_KEY].clone(),
                cargo_lambda_config: package.metadata["lambda"]["build"].clone(),
            })
            .collect(),
    })
}

/// A chosen target: its package, its name and its kind.
type Chosen<'m> = (&'m Package, String, TargetKind);

/// The workspace's members, found by the names `-p` and `--exclude` give.
struct Members<'m>(Vec<&'m Package>);

impl<'m> Members<'m> {
    fn find(&self, spec: &str) -> Result<&'m Package> {
        // `-p name@version` names the same package as `-p name`.
        let name = spec.split('@').next().unwrap_or(spec);
        self.0
            .iter()
            .copied()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| ProjectError::UnknownPackage {
                name: name.to_string(),
                names: self.0.iter().map(|p| p.name.to_string()).collect(),
            })
    }
}

/// Each `-p`, once, in the order given.
fn listed_packages<'m>(members: &Members<'m>, specs: &[String]) -> Result<Vec<&'m Package>> {
    let mut packages: Vec<&Package> = Vec::new();
    for spec in specs {
        let package = members.find(spec)?;
        if !packages.iter().any(|p| p.id == package.id) {
            packages.push(package);
        }
    }
    Ok(packages)
}

/// Where the command runs: the workspace, and the manifest found (or given).
#[derive(Clone, Copy)]
struct Location<'a> {
    metadata: &'a Metadata,
    manifest: &'a Path,
}

/// Without `-p` or `--workspace`: the package whose manifest was found, else (a virtual
/// manifest, or a root package with no binary) the members, all of them when binaries are
/// named, else the only one with a binary.
fn implied_packages<'m>(
    members: &Members<'m>,
    candidates: &[&'m Package],
    excluded: &[&'m Package],
    at: Location,
    selection: &Selection,
    no_function: impl Fn() -> ProjectError,
) -> Result<(Vec<&'m Package>, Via)> {
    let manifest = canonical(at.manifest);
    let root = canonical(at.metadata.workspace_root.as_std_path());
    let at_root = manifest.parent() == Some(root.as_path());
    let own = members
        .0
        .iter()
        .copied()
        .find(|p| canonical(p.manifest_path.as_std_path()) == manifest);
    let named = selection.named().next().is_some();
    let members_have_functions = members.0.iter().any(|p| !binaries(p).is_empty());
    match own {
        // At a workspace root whose package has no binary, the members' functions are the only
        // sensible reading, as at a virtual manifest.
        Some(package)
            if !(at_root && !named && members_have_functions && binaries(package).is_empty()) =>
        {
            if !excluded.is_empty() {
                return Err(ProjectError::ExcludeWithoutWorkspace(
                    package.name.to_string(),
                ));
            }
            Ok((vec![package], Via::Listed))
        }
        // A virtual manifest: the workspace root is not a package. `--bin` names are looked for
        // in every member, as cargo does.
        _ if named => Ok((candidates.to_vec(), Via::Members)),
        _ => {
            let with_bins: Vec<&Package> = candidates
                .iter()
                .copied()
                .filter(|p| !binaries(p).is_empty())
                .collect();
            match with_bins.as_slice() {
                [only] => Ok((vec![*only], Via::Members)),
                [] => Err(no_function()),
                several => Err(ProjectError::SeveralPackages(
                    several.iter().map(|p| p.name.to_string()).collect(),
                )),
            }
        }
    }
}

/// Each `--bin` and `--example`, in every package that has it.
fn named_targets<'m>(packages: &[&'m Package], selection: &Selection) -> Result<Vec<Chosen<'m>>> {
    let mut chosen = Vec::new();
    for (kind, name) in selection.named() {
        let having: Vec<&Package> = packages
            .iter()
            .copied()
            .filter(|p| targets(p, kind).iter().any(|b| b == name))
            .collect();
        if having.is_empty() {
            return Err(match packages {
                [only] => ProjectError::UnknownBinary {
                    package: only.name.to_string(),
                    kind,
                    name: name.clone(),
                    names: targets(only, kind),
                },
                _ => ProjectError::NoSuchBinary {
                    kind,
                    name: name.clone(),
                    packages: packages.iter().map(|p| p.name.to_string()).collect(),
                },
            });
        }
        // Several packages with this name: the duplicate check names them.
        chosen.extend(having.iter().map(|p| (*p, name.clone(), kind)));
    }
    Ok(chosen)
}

/// Per package, its only binary, else the one named `bootstrap` (the name Lambda runs).
/// Never `default-run`: that is what `cargo run` starts, often a local server beside the
/// function (an axum app and its Lambda entry), and packaging it silently ships the wrong one.
fn default_binaries<'m>(packages: &[&'m Package]) -> Result<Vec<Chosen<'m>>> {
    let mut chosen = Vec::new();
    for package in packages {
        let names = binaries(package);
        let package_name = package.name.to_string();
        let bin = match names.as_slice() {
            [] => return Err(ProjectError::NoBinary(package_name)),
            [only] => only.clone(),
            several if several.iter().any(|n| n == lambda::BOOTSTRAP) => {
                lambda::BOOTSTRAP.to_owned()
            }
            _ => {
                return Err(ProjectError::SeveralBinaries {
                    package: package_name,
                    names,
                    default_run: package.default_run.clone(),
                });
            }
        };
        chosen.push((*package, bin, TargetKind::Bin));
    }
    Ok(chosen)
}

/// The first of each target named twice (`--bin api --bin api`).
fn without_repeats(chosen: Vec<Chosen>) -> Vec<Chosen> {
    let mut unique: Vec<Chosen> = Vec::new();
    for (package, bin, kind) in chosen {
        if !unique
            .iter()
            .any(|(p, b, k)| p.id == package.id && *b == bin && *k == kind)
        {
            unique.push((package, bin, kind));
        }
    }
    unique
}

/// Each function's output is named after its binary, so two of one name cannot coexist.
fn refuse_duplicate_names(chosen: &[Chosen], via: Via) -> Result<()> {
    for (i, (package, bin, kind)) in chosen.iter().enumerate() {
        if let Some((other, _, _)) = chosen[..i]
            .iter()
            .find(|(p, b, k)| b == bin && (p.id != package.id || k != kind))
        {
            return Err(ProjectError::DuplicateBinary {
                name: bin.clone(),
                packages: [other.name.to_string(), package.name.to_string()],
                via,
            });
        }
    }
    Ok(())
}

/// cargo-lambda's workspace-wide build tables that are present, highest first.
fn cargo_lambda_tables(metadata: &Metadata) -> Result<Vec<(String, serde_json::Value)>> {
    let root: &Path = metadata.workspace_root.as_std_path();
    let mut tables = Vec::new();
    let table = &metadata.workspace_metadata["lambda"]["build"];
    if !table.is_null() {
        let origin = format!(
            "`[workspace.metadata.lambda.build]` in `{}`",
            root.join("Cargo.toml").display()
        );
        tables.push((origin, table.clone()));
    }
    let file = root.join(CARGO_LAMBDA_TOML);
    if let Ok(text) = std::fs::read_to_string(&file) {
        let invalid = |message: String| ProjectError::CargoLambdaToml {
            path: file.clone(),
            message,
        };
        let parsed: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        if let Some(build) = parsed.get("build") {
            let value = serde_json::to_value(build).map_err(|e| invalid(e.to_string()))?;
            tables.push((format!("`[build]` in `{}`", file.display()), value));
        }
    }
    Ok(tables)
}

/// cargo-lambda's own configuration file, read for the build settings that mean the same here.
pub const CARGO_LAMBDA_TOML: &str = "CargoLambda.toml";

/// Whether the workspace's `[profile.<name>]` says anything about stripping or debug info, in
/// which case the tool leaves stripping to it.
pub fn profile_sets_strip(workspace_root: &Path, profile: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(workspace_root.join("Cargo.toml")) else {
        return false;
    };
    // cargo has already accepted this manifest; a parse failure here only means "not set".
    let Ok(manifest) = text.parse::<toml::Table>() else {
        return false;
    };
    let table = manifest.get("profile").and_then(|p| p.get(profile));
    table.is_some_and(|t| t.get("strip").is_some() || t.get("debug").is_some())
}

fn binaries(package: &Package) -> Vec<String> {
    targets(package, TargetKind::Bin)
}

fn targets(package: &Package, kind: TargetKind) -> Vec<String> {
    package
        .targets
        .iter()
        .filter(|t| kind.of(t))
        .map(|t| t.name.clone())
        .collect()
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo metadata --no-deps` output for a workspace, trimmed to what `select` reads.
    fn workspace(root: &str, packages: &[(&str, &[&str], Option<&str>)]) -> Metadata {
        let packages: Vec<serde_json::Value> = packages
            .iter()
            .map(|(name, bins, default_run)| {
                let mut targets: Vec<serde_json::Value> = bins
                    .iter()
                    .map(|bin| {
                        serde_json::json!({
                            "name": bin, "kind": ["bin"], "crate_types": ["bin"],
                            "src_path": format!("{root}/{name}/src/bin/{bin}.rs"),
                            "edition": "2021", "doctest": false, "test": true, "doc": true,
                        })
                    })
                    .collect();
                targets.push(serde_json::json!({
                    "name": name, "kind": ["lib"], "crate_types": ["lib"],
                    "src_path": format!("{root}/{name}/src/lib.rs"),
                    "edition": "2021", "doctest": true, "test": true, "doc": true,
                }));
                serde_json::json!({
                    "name": name, "version": "0.1.0", "id": format!("path+file://{root}/{name}#0.1.0"),
                    "source": null, "dependencies": [], "targets": targets, "features": {},
                    "manifest_path": manifest_in(root, name), "edition": "2021",
                    "metadata": null, "publish": null, "authors": [], "categories": [],
                    "keywords": [], "readme": null, "repository": null, "homepage": null,
                    "documentation": null, "license": null, "license_file": null,
                    "description": null, "links": null, "default_run": default_run,
                    "rust_version": null,
                })
            })
            .collect();
        let ids: Vec<_> = packages.iter().map(|p| p["id"].clone()).collect();
        let json = serde_json::json!({
            "packages": packages, "workspace_members": ids, "workspace_default_members": ids,
            "resolve": null, "workspace_root": root, "target_directory": format!("{root}/target"),
            "version": 1, "metadata": null,
        });
        cargo_metadata::MetadataCommand::parse(json.to_string()).expect("valid metadata")
    }

    const ROOT: &str = "/nonexistent/ws";

    /// A package's manifest; the package named `root` is the workspace root's own.
    fn manifest_in(root: &str, package: &str) -> String {
        if package == "root" {
            format!("{root}/Cargo.toml")
        } else {
            format!("{root}/{package}/Cargo.toml")
        }
    }

    fn pick(
        meta: &Metadata,
        manifest: &Path,
        package: Option<&str>,
        bin: Option<&str>,
    ) -> Result<Project> {
        Flags::default()
            .packages(&Vec::from_iter(package))
            .bins(&Vec::from_iter(bin))
            .select(meta, manifest)
    }

    /// The functions as `package/bin`.
    fn names(project: &Project) -> Vec<String> {
        project
            .functions
            .iter()
            .map(|f| format!("{}/{}", f.package, f.bin))
            .collect()
    }

    fn manifest(package: &str) -> PathBuf {
        PathBuf::from(manifest_in(ROOT, package))
    }

    /// Every suggested fix, run: it selects something (issue 17, item 4).
    #[test]
    fn the_advice_for_one_binary_name_in_two_packages_works() {
        let meta = workspace(
            ROOT,
            &[("api", &["handler"], None), ("admin", &["handler"], None)],
        );
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let err = Flags::default()
            .bins(&["handler"])
            .select(&meta, &virtual_manifest)
            .unwrap_err();
        let help = err.help().unwrap();
        assert!(help.contains("`--exclude admin`"), "{help}");
        let project = Flags::default()
            .bins(&["handler"])
            .exclude(&["admin"])
            .select(&meta, &virtual_manifest)
            .unwrap();
        assert_eq!(names(&project), ["api/handler"]);
        // Listing both with `-p`: the advice is to list one.
        let err = Flags::default()
            .bins(&["handler"])
            .packages(&["api", "admin"])
            .select(&meta, &virtual_manifest)
            .unwrap_err();
        let help = err.help().unwrap();
        assert!(!help.contains("--exclude"), "{help}");
        assert!(help.contains("`-p api`"), "{help}");
    }

    /// Item 5: excluding every function names what was excluded, not a package that does not
    /// exist, and does not suggest `src/main.rs`.
    #[test]
    fn excluding_every_function_says_so() {
        let meta = workspace(ROOT, &[("api", &["api"], None), ("jobs", &["jobs"], None)]);
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let err = Flags::default()
            .workspace()
            .exclude(&["api", "jobs"])
            .select(&meta, &virtual_manifest)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--exclude"), "{text}");
        assert!(!text.contains("`ws`"), "{text}");
        assert!(!err.help().unwrap().contains("src/main.rs"), "{err:?}");
    }

    /// Item 12: at a workspace root whose own package has no binary, the members' functions
    /// are the only sensible reading.
    #[test]
    fn a_root_package_without_binary_builds_the_member_with_one() {
        let meta = workspace(
            ROOT,
            &[
                ("root", &[], None),
                ("api", &["api"], None),
                ("util", &[], None),
            ],
        );
        let project = pick(&meta, &manifest("root"), None, None).unwrap();
        assert_eq!(names(&project), ["api/api"]);

        let meta = workspace(
            ROOT,
            &[
                ("root", &[], None),
                ("api", &["api"], None),
                ("jobs", &["jobs"], None),
            ],
        );
        let err = pick(&meta, &manifest("root"), None, None).unwrap_err();
        let help = err.help().unwrap();
        assert!(
            help.contains("-p api") && help.contains("--workspace"),
            "{help}"
        );
        // A library member asked for by name is still refused.
        let err = pick(&meta, &manifest("root"), Some("root"), None).unwrap_err();
        assert!(matches!(err, ProjectError::NoBinary(_)), "{err}");
    }

    #[test]
    fn the_only_binary_of_the_package_in_the_current_directory() {
        let meta = workspace(ROOT, &[("api", &["api"], None), ("jobs", &["jobs"], None)]);
        let project = pick(&meta, &manifest("jobs"), None, None).unwrap();
        assert_eq!(names(&project), ["jobs/jobs"]);
        assert_eq!(project.target_dir, PathBuf::from("/nonexistent/ws/target"));
    }

    #[test]
    fn several_binaries_need_a_choice_unless_one_is_bootstrap() {
        let meta = workspace(ROOT, &[("api", &["a", "b"], None)]);
        let err = pick(&meta, &manifest("api"), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `api` has several binaries (a, b); choose one with `--bin`"
        );
        assert_eq!(
            pick(&meta, &manifest("api"), None, Some("b"))
                .unwrap()
                .functions[0]
                .bin,
            "b"
        );

        // `default-run` is what `cargo run` starts (here a local server): never taken silently.
        let meta = workspace(ROOT, &[("api", &["server", "lambda"], Some("server"))]);
        let err = pick(&meta, &manifest("api"), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `api` has several binaries (server, lambda), and its `default-run` `server` \
             is what `cargo run` starts, not necessarily the Lambda function; choose one with `--bin`"
        );
        assert_eq!(
            err.help().unwrap(),
            "for example `--bin lambda`; `--bin server --bin lambda` builds each into its own zip; \
             a binary named `bootstrap` is taken as the function without asking"
        );

        // A binary named `bootstrap` is the Lambda entry, whatever `default-run` says.
        let meta = workspace(ROOT, &[("api", &["server", "bootstrap"], Some("server"))]);
        assert_eq!(
            pick(&meta, &manifest("api"), None, None).unwrap().functions[0].bin,
            "bootstrap"
        );
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let meta = workspace(ROOT, &[("api", &["a", "b"], None)]);
        let err = pick(&meta, &manifest("api"), None, Some("c")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `api` has no binary named `c`; it has: a, b"
        );
        let err = pick(&meta, &manifest("api"), Some("nope"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `nope` is not in the workspace; it has: api"
        );
    }

    #[test]
    fn package_flag_accepts_a_version_suffix() {
        let meta = workspace(ROOT, &[("api", &["api"], None), ("jobs", &["jobs"], None)]);
        let project = pick(&meta, &manifest("api"), Some("jobs@0.1.0"), None).unwrap();
        assert_eq!(project.functions[0].package, "jobs");
    }

    #[test]
    fn library_only_package_is_refused() {
        let meta = workspace(ROOT, &[("util", &[], None)]);
        let err = pick(&meta, &manifest("util"), None, None).unwrap_err();
        assert!(
            matches!(err, ProjectError::NoBinary(ref name) if name == "util"),
            "{err}"
        );
        // The same at the workspace root: no member has a function either.
        let meta = workspace(ROOT, &[("root", &[], None), ("util", &[], None)]);
        let err = pick(&meta, &manifest("root"), None, None).unwrap_err();
        assert!(
            matches!(err, ProjectError::NoBinary(ref name) if name == "root"),
            "{err}"
        );
    }

    #[test]
    fn virtual_manifest_picks_the_only_member_with_binaries() {
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let meta = workspace(ROOT, &[("util", &[], None), ("api", &["api"], None)]);
        assert_eq!(
            pick(&meta, &virtual_manifest, None, None)
                .unwrap()
                .functions[0]
                .package,
            "api"
        );

        let meta = workspace(ROOT, &[("jobs", &["jobs"], None), ("api", &["api"], None)]);
        let err = pick(&meta, &virtual_manifest, None, None).unwrap_err();
        assert!(matches!(err, ProjectError::SeveralPackages(_)), "{err}");
    }

    /// The selection flags of a command line, owned: `Flags::default().bins(&["a"])`.
    #[derive(Default)]
    struct Flags {
        packages: Vec<String>,
        workspace: bool,
        exclude: Vec<String>,
        bins: Vec<String>,
    }

    impl Flags {
        fn packages(mut self, names: &[impl AsRef<str>]) -> Flags {
            self.packages = names.iter().map(|n| n.as_ref().to_string()).collect();
            self
        }

        fn bins(mut self, names: &[impl AsRef<str>]) -> Flags {
            self.bins = names.iter().map(|n| n.as_ref().to_string()).collect();
            self
        }

        fn exclude(mut self, names: &[impl AsRef<str>]) -> Flags {
            self.exclude = names.iter().map(|n| n.as_ref().to_string()).collect();
            self
        }

        fn workspace(mut self) -> Flags {
            self.workspace = true;
            self
        }

        fn select(&self, meta: &Metadata, manifest: &Path) -> Result<Project> {
            let selection = Selection {
                packages: &self.packages,
                workspace: self.workspace,
                exclude: &self.exclude,
                bins: &self.bins,
                examples: &[],
            };
            select(meta, manifest, selection)
        }
    }

    /// `--workspace --exclude ...`, run in package `at`.
    fn workspace_excluding(meta: &Metadata, at: &str, exclude: &[&str]) -> Result<Project> {
        Flags::default()
            .workspace()
            .exclude(exclude)
            .select(meta, &manifest(at))
    }

    /// A workspace of `api` (one binary), `jobs` (two) and `util` (none).
    fn api_jobs_util() -> Metadata {
        workspace(
            ROOT,
            &[
                ("api", &["api"], None),
                ("jobs", &["hourly", "nightly"], None),
                ("util", &[], None),
            ],
        )
    }

    #[test]
    fn several_packages_and_binaries_each_become_a_function() {
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let meta = api_jobs_util();
        let project = Flags::default()
            .bins(&["nightly", "api"])
            .select(&meta, &virtual_manifest)
            .unwrap();
        assert_eq!(names(&project), ["jobs/nightly", "api/api"]);

        let packages = ["api", "jobs", "api"];
        let err = Flags::default()
            .packages(&packages)
            .select(&meta, &virtual_manifest)
            .unwrap_err();
        assert!(
            matches!(err, ProjectError::SeveralBinaries { ref package, .. } if package == "jobs"),
            "{err}"
        );
        let project = Flags::default()
            .packages(&packages)
            .bins(&["api", "hourly", "api"])
            .select(&meta, &virtual_manifest)
            .unwrap();
        assert_eq!(names(&project), ["api/api", "jobs/hourly"]);

        let err = Flags::default()
            .packages(&packages)
            .bins(&["nope"])
            .select(&meta, &virtual_manifest)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no selected package has a binary named `nope`; the packages are: api, jobs"
        );
    }

    #[test]
    fn workspace_takes_every_binary_less_the_excluded_packages() {
        let meta = api_jobs_util();
        let project = workspace_excluding(&meta, "api", &[]).unwrap();
        assert_eq!(names(&project), ["api/api", "jobs/hourly", "jobs/nightly"]);
        let project = workspace_excluding(&meta, "api", &["jobs"]).unwrap();
        assert_eq!(names(&project), ["api/api"]);
        let err = workspace_excluding(&meta, "api", &["api", "jobs"]).unwrap_err();
        assert!(matches!(err, ProjectError::NoFunction { .. }), "{err}");
        let err = workspace_excluding(&meta, "api", &["ghost"]).unwrap_err();
        assert!(matches!(err, ProjectError::UnknownPackage { .. }), "{err}");
    }

    #[test]
    fn one_binary_name_in_two_packages_is_refused_naming_both() {
        let meta = workspace(
            ROOT,
            &[("api", &["handler"], None), ("admin", &["handler"], None)],
        );
        let err = workspace_excluding(&meta, "api", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "two selected binaries are named `handler`: one in package `api`, one in package `admin`"
        );
        assert!(err.help().unwrap().contains("--exclude admin"));
        // By name, the same clash.
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let err = Flags::default()
            .bins(&["handler"])
            .select(&meta, &virtual_manifest)
            .unwrap_err();
        assert!(matches!(err, ProjectError::DuplicateBinary { .. }), "{err}");
    }

    #[test]
    fn manifest_is_found_upwards_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("src/deep");
        std::fs::create_dir_all(&nested).unwrap();
        assert!(matches!(
            locate_manifest(None, &nested),
            Err(ProjectError::NoManifest(_))
        ));
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(
            locate_manifest(None, &nested).unwrap(),
            dir.path().join("Cargo.toml")
        );
        let missing = locate_manifest(Some(Path::new("nope/Cargo.toml")), dir.path());
        assert!(matches!(missing, Err(ProjectError::ManifestMissing(_))));
    }

    #[test]
    fn profile_strip_settings_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        assert!(!profile_sets_strip(dir.path(), "release"));
        std::fs::write(
            &manifest,
            "[package]\nname = \"a\"\n[profile.release]\nlto = true\n",
        )
        .unwrap();
        assert!(!profile_sets_strip(dir.path(), "release"));
        std::fs::write(
            &manifest,
            "[profile.release]\nstrip = false\n[profile.fast]\ndebug = 1\n",
        )
        .unwrap();
        assert!(profile_sets_strip(dir.path(), "release"));
        assert!(profile_sets_strip(dir.path(), "fast"));
        assert!(!profile_sets_strip(dir.path(), "dev"));
    }

    #[test]
    fn cargo_errors_keep_cargos_lines() {
        let stderr = b"error: failed to parse manifest at `/x/Cargo.toml`\n\nCaused by:\n  TOML parse error\n";
        assert_eq!(
            cargo_error_text(stderr),
            "failed to parse manifest at `/x/Cargo.toml`\n\nCaused by:\n  TOML parse error"
        );
        let list = b"error: two packages named `same` in this workspace:\n- /w/a/Cargo.toml\n- /w/b/Cargo.toml\n";
        assert_eq!(
            cargo_error_text(list),
            "two packages named `same` in this workspace:\n- /w/a/Cargo.toml\n- /w/b/Cargo.toml"
        );
        let toml = b"error: unclosed table, expected `]`\n --> Cargo.toml:1:9\n  |\n1 | [package\n  |         ^\n";
        assert_eq!(
            cargo_error_text(toml),
            "unclosed table, expected `]` (at Cargo.toml:1:9)"
        );
    }
}
