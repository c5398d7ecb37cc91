//! What cargo says about the project: one `cargo metadata --no-deps` call, then the choice of
//! package and binary. `--no-deps` because nothing here needs the dependency graph, and it keeps
//! a no-op run fast and offline.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Metadata, Package};

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

    #[error("package `{package}` has several binaries ({}); choose one with `--bin`", .names.join(", "))]
    SeveralBinaries { package: String, names: Vec<String> },

    #[error("package `{package}` has no binary named `{name}`; it has: {}", .names.join(", "))]
    UnknownBinary {
        package: String,
        name: String,
        names: Vec<String>,
    },

    #[error("package `{name}` is not in the workspace; it has: {}", .names.join(", "))]
    UnknownPackage { name: String, names: Vec<String> },

    #[error("no selected package has a binary named `{name}`; the packages are: {}", .packages.join(", "))]
    NoSuchBinary { name: String, packages: Vec<String> },

    #[error("two selected binaries are named `{name}`: one in package `{}`, one in package `{}`", .packages[0], .packages[1])]
    DuplicateBinary { name: String, packages: [String; 2] },

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
            ProjectError::SeveralBinaries { names, .. } => {
                format!("for example `--bin {}`", names[0])
            }
            ProjectError::UnknownBinary { names, .. } => {
                format!("for example `--bin {}`", names[0])
            }
            ProjectError::UnknownPackage { names, .. } => format!("for example `-p {}`", names[0]),
            ProjectError::NoSuchBinary { .. } => {
                "list the package that has it with `-p`, or leave `--bin` out".into()
            }
            ProjectError::DuplicateBinary { packages, .. } => format!(
                "each function is named after its binary: select one of them with `-p {}`, or \
                 leave one out with `--exclude {}`",
                packages[0], packages[1]
            ),
            ProjectError::SeveralPackages(names) => format!(
                "for example `-p {}`, or `--workspace` to build every function",
                names[0]
            ),
            ProjectError::RunCargo { .. } => INSTALL_RUST.into(),
        })
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
    /// One per selected binary, in the order they were asked for (else cargo's order); never
    /// empty, and no two share a binary name.
    pub functions: Vec<Function>,
}

/// A binary deployed as its own function.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub package: String,
    pub manifest_path: PathBuf,
    pub bin: String,
    /// `[package.metadata.lambda-build]` of its package, `Null` when absent.
    pub package_config: serde_json::Value,
}

impl Function {
    /// The package root: includes are relative to it.
    pub fn package_root(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// What the command line selects: cargo's `-p`, `--workspace`, `--exclude` and `--bin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub packages: &'a [String],
    pub workspace: bool,
    pub exclude: &'a [String],
    pub bins: &'a [String],
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

/// Runs `cargo metadata` for `manifest`.
pub fn metadata(cargo: &OsStr, manifest: &Path, cwd: &Path) -> Result<Metadata> {
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
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

/// Cargo's error without its own `error: ` prefix, as one line, so it reads after ours.
fn cargo_error_text(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(location) = line.strip_prefix("--> ") {
            // A TOML error's place: said once, after the message.
            if let Some(last) = parts.last_mut() {
                last.push_str(&format!(" (at {location})"));
            }
            continue;
        }
        // The source snippet under it (`|`, `1 | [package`) reads badly on one line.
        let snippet = line.starts_with('|')
            || line
                .split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
        if line.is_empty() || line == "Caused by:" || snippet {
            continue;
        }
        parts.push(line.trim_start_matches("error: ").to_string());
    }
    parts.join(": ")
}

/// Chooses the functions: the packages (`--workspace` less `--exclude`, else each `-p`, else
/// the one whose manifest was found, else the only workspace member with a binary), then their
/// binaries (each `--bin`; else every binary with `--workspace`; else per package the only one,
/// else `default-run`).
pub fn select(metadata: &Metadata, manifest: &Path, selection: Selection) -> Result<Project> {
    let members = metadata.workspace_packages();
    let member_names = || {
        members
            .iter()
            .map(|p| p.name.to_string())
            .collect::<Vec<_>>()
    };
    let find = |spec: &str| -> Result<&Package> {
        // `-p name@version` names the same package as `-p name`.
        let name = spec.split('@').next().unwrap_or(spec);
        members
            .iter()
            .copied()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| ProjectError::UnknownPackage {
                name: name.to_string(),
                names: member_names(),
            })
    };

    let mut packages: Vec<&Package> = Vec::new();
    if selection.workspace {
        let excluded = selection
            .exclude
            .iter()
            .map(|spec| find(spec))
            .collect::<Result<Vec<_>>>()?;
        packages.extend(
            members
                .iter()
                .copied()
                .filter(|p| !excluded.iter().any(|e| e.id == p.id)),
        );
    } else if !selection.packages.is_empty() {
        for spec in selection.packages {
            let package = find(spec)?;
            if !packages.iter().any(|p| p.id == package.id) {
                packages.push(package);
            }
        }
    } else {
        let manifest = canonical(manifest);
        match members
            .iter()
            .copied()
            .find(|p| canonical(p.manifest_path.as_std_path()) == manifest)
        {
            Some(package) => packages.push(package),
            // A virtual manifest: the workspace root is not a package. `--bin` names are
            // looked for in every member, as cargo does.
            None if !selection.bins.is_empty() => packages.extend(members.iter().copied()),
            None => {
                let with_bins: Vec<&Package> = members
                    .iter()
                    .copied()
                    .filter(|p| !binaries(p).is_empty())
                    .collect();
                match with_bins.as_slice() {
                    [only] => packages.push(only),
                    [] => return Err(ProjectError::NoBinary(workspace_name(metadata))),
                    several => {
                        return Err(ProjectError::SeveralPackages(
                            several.iter().map(|p| p.name.to_string()).collect(),
                        ));
                    }
                }
            }
        }
    }

    let mut chosen: Vec<(&Package, String)> = Vec::new();
    if !selection.bins.is_empty() {
        for name in selection.bins {
            let having: Vec<&Package> = packages
                .iter()
                .copied()
                .filter(|p| binaries(p).iter().any(|b| b == name))
                .collect();
            match having.as_slice() {
                [] => {
                    return Err(match packages.as_slice() {
                        [only] => ProjectError::UnknownBinary {
                            package: only.name.to_string(),
                            name: name.clone(),
                            names: binaries(only),
                        },
                        _ => ProjectError::NoSuchBinary {
                            name: name.clone(),
                            packages: packages.iter().map(|p| p.name.to_string()).collect(),
                        },
                    });
                }
                [package, ..] => chosen.push((package, name.clone())),
            }
            // Several packages with this name: the duplicate check below names them.
            chosen.extend(having.iter().skip(1).map(|p| (*p, name.clone())));
        }
    } else if selection.workspace {
        for package in &packages {
            chosen.extend(binaries(package).into_iter().map(|bin| (*package, bin)));
        }
        if chosen.is_empty() {
            return Err(ProjectError::NoBinary(workspace_name(metadata)));
        }
    } else {
        for package in &packages {
            let names = binaries(package);
            let package_name = package.name.to_string();
            let bin = match (names.as_slice(), &package.default_run) {
                ([], _) => return Err(ProjectError::NoBinary(package_name)),
                ([only], _) => only.clone(),
                (_, Some(default_run)) => default_run.clone(),
                (_, None) => {
                    return Err(ProjectError::SeveralBinaries {
                        package: package_name,
                        names,
                    });
                }
            };
            chosen.push((package, bin));
        }
    }
    let mut unique: Vec<(&Package, String)> = Vec::new();
    for (package, bin) in chosen {
        if !unique.iter().any(|(p, b)| p.id == package.id && *b == bin) {
            unique.push((package, bin));
        }
    }
    let chosen = unique;

    // Each function's output is named after its binary, so two of one name cannot coexist.
    for (i, (package, bin)) in chosen.iter().enumerate() {
        if let Some((other, _)) = chosen[..i]
            .iter()
            .find(|(p, b)| b == bin && p.id != package.id)
        {
            return Err(ProjectError::DuplicateBinary {
                name: bin.clone(),
                packages: [other.name.to_string(), package.name.to_string()],
            });
        }
    }

    Ok(Project {
        workspace_root: metadata.workspace_root.clone().into(),
        target_dir: metadata.target_directory.clone().into(),
        workspace_config: metadata.workspace_metadata[CONFIG_KEY].clone(),
        functions: chosen
            .into_iter()
            .map(|(package, bin)| Function {
                package: package.name.to_string(),
                manifest_path: package.manifest_path.clone().into(),
                bin,
                package_config: package.metadata[CONFIG_KEY].clone(),
            })
            .collect(),
    })
}

fn workspace_name(metadata: &Metadata) -> String {
    metadata
        .workspace_root
        .file_name()
        .unwrap_or("workspace")
        .into()
}

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
    package
        .targets
        .iter()
        .filter(|t| t.is_bin())
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
                    "manifest_path": format!("{root}/{name}/Cargo.toml"), "edition": "2021",
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

    fn pick(
        meta: &Metadata,
        manifest: &Path,
        package: Option<&str>,
        bin: Option<&str>,
    ) -> Result<Project> {
        let packages: Vec<String> = package.into_iter().map(String::from).collect();
        let bins: Vec<String> = bin.into_iter().map(String::from).collect();
        select(
            meta,
            manifest,
            Selection {
                packages: &packages,
                bins: &bins,
                ..Selection::default()
            },
        )
    }

    fn names(project: &Project) -> Vec<(String, String)> {
        project
            .functions
            .iter()
            .map(|f| (f.package.clone(), f.bin.clone()))
            .collect()
    }

    fn manifest(package: &str) -> PathBuf {
        PathBuf::from(format!("{ROOT}/{package}/Cargo.toml"))
    }

    #[test]
    fn the_only_binary_of_the_package_in_the_current_directory() {
        let meta = workspace(ROOT, &[("api", &["api"], None), ("jobs", &["jobs"], None)]);
        let project = pick(&meta, &manifest("jobs"), None, None).unwrap();
        assert_eq!(names(&project), [("jobs".into(), "jobs".into())]);
        assert_eq!(project.target_dir, PathBuf::from("/nonexistent/ws/target"));
    }

    #[test]
    fn several_binaries_need_a_choice_unless_default_run() {
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

        let meta = workspace(ROOT, &[("api", &["a", "b"], Some("b"))]);
        assert_eq!(
            pick(&meta, &manifest("api"), None, None).unwrap().functions[0].bin,
            "b"
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

    fn select_with(meta: &Metadata, manifest: &Path, selection: Selection) -> Result<Project> {
        select(meta, manifest, selection)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn several_packages_and_binaries_each_become_a_function() {
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let meta = workspace(
            ROOT,
            &[
                ("api", &["api"], None),
                ("jobs", &["hourly", "nightly"], None),
                ("util", &[], None),
            ],
        );
        let bins = strings(&["nightly", "api"]);
        let project = select_with(
            &meta,
            &virtual_manifest,
            Selection {
                bins: &bins,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&project),
            [
                ("jobs".into(), "nightly".into()),
                ("api".into(), "api".into())
            ]
        );

        let packages = strings(&["api", "jobs", "api"]);
        let err = select_with(
            &meta,
            &virtual_manifest,
            Selection {
                packages: &packages,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, ProjectError::SeveralBinaries { ref package, .. } if package == "jobs"),
            "{err}"
        );
        let bins = strings(&["api", "hourly", "api"]);
        let project = select_with(
            &meta,
            &virtual_manifest,
            Selection {
                packages: &packages,
                bins: &bins,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&project),
            [
                ("api".into(), "api".into()),
                ("jobs".into(), "hourly".into())
            ]
        );

        let bins = strings(&["nope"]);
        let err = select_with(
            &meta,
            &virtual_manifest,
            Selection {
                packages: &packages,
                bins: &bins,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no selected package has a binary named `nope`; the packages are: api, jobs"
        );
    }

    #[test]
    fn workspace_takes_every_binary_less_the_excluded_packages() {
        let meta = workspace(
            ROOT,
            &[
                ("api", &["api"], None),
                ("jobs", &["hourly", "nightly"], None),
                ("util", &[], None),
            ],
        );
        let project = select_with(
            &meta,
            &manifest("api"),
            Selection {
                workspace: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            names(&project),
            [
                ("api".into(), "api".into()),
                ("jobs".into(), "hourly".into()),
                ("jobs".into(), "nightly".into())
            ]
        );
        let exclude = strings(&["jobs"]);
        let project = select_with(
            &meta,
            &manifest("api"),
            Selection {
                workspace: true,
                exclude: &exclude,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(names(&project), [("api".into(), "api".into())]);
        let exclude = strings(&["api", "jobs"]);
        let err = select_with(
            &meta,
            &manifest("api"),
            Selection {
                workspace: true,
                exclude: &exclude,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, ProjectError::NoBinary(_)), "{err}");
        let exclude = strings(&["ghost"]);
        let err = select_with(
            &meta,
            &manifest("api"),
            Selection {
                workspace: true,
                exclude: &exclude,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, ProjectError::UnknownPackage { .. }), "{err}");
    }

    #[test]
    fn one_binary_name_in_two_packages_is_refused_naming_both() {
        let meta = workspace(
            ROOT,
            &[("api", &["handler"], None), ("admin", &["handler"], None)],
        );
        let err = select_with(
            &meta,
            &manifest("api"),
            Selection {
                workspace: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "two selected binaries are named `handler`: one in package `api`, one in package `admin`"
        );
        assert!(err.help().unwrap().contains("--exclude admin"));
        // By name, the same clash.
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let bins = strings(&["handler"]);
        let err = select_with(
            &meta,
            &virtual_manifest,
            Selection {
                bins: &bins,
                ..Default::default()
            },
        )
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
    fn cargo_errors_read_as_one_line() {
        let stderr = b"error: failed to parse manifest at `/x/Cargo.toml`\n\nCaused by:\n  TOML parse error\n";
        assert_eq!(
            cargo_error_text(stderr),
            "failed to parse manifest at `/x/Cargo.toml`: TOML parse error"
        );
        let toml = b"error: unclosed table, expected `]`\n --> Cargo.toml:1:9\n  |\n1 | [package\n  |         ^\n";
        assert_eq!(
            cargo_error_text(toml),
            "unclosed table, expected `]` (at Cargo.toml:1:9)"
        );
    }
}
