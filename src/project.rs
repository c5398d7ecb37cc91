//! What cargo says about the project: one `cargo metadata --no-deps` call, then the choice of
//! package and binary. `--no-deps` because nothing here needs the dependency graph, and it keeps
//! a no-op run fast and offline.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_metadata::{Metadata, Package};

use crate::error::{Error, Result};

/// The package and binary this run deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub workspace_root: PathBuf,
    /// cargo's target directory (honours `CARGO_TARGET_DIR` and `.cargo/config.toml`).
    pub target_dir: PathBuf,
    pub package: String,
    pub manifest_path: PathBuf,
    pub bin: String,
}

/// The Cargo.toml cargo would use: `--manifest-path`, else the nearest one at or above `cwd`.
pub fn locate_manifest(manifest_path: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(path) = manifest_path {
        let path = cwd.join(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::ManifestMissing(path))
        };
    }
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::NoManifest(cwd.to_path_buf()))
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
        .map_err(|source| Error::Spawn {
            program: cargo.to_string_lossy().into_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Metadata(cargo_error_text(&output.stderr)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    cargo_metadata::MetadataCommand::parse(stdout.as_ref())
        .map_err(|e| Error::Metadata(e.to_string()))
}

/// Cargo's error without its own `error: ` prefix, as one line, so it reads after ours.
fn cargo_error_text(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && *line != "Caused by:")
        .collect();
    lines.join(": ").trim_start_matches("error: ").to_string()
}

/// Chooses the package (`-p`, else the one whose manifest was found, else the only workspace
/// member with a binary) and its binary (`--bin`, else the only one, else `default-run`).
pub fn select(
    metadata: &Metadata,
    manifest: &Path,
    package: Option<&str>,
    bin: Option<&str>,
) -> Result<Project> {
    let members = metadata.workspace_packages();
    let member_names = || {
        members
            .iter()
            .map(|p| p.name.to_string())
            .collect::<Vec<_>>()
    };
    let chosen: &Package = match package {
        Some(spec) => {
            // `-p name@version` names the same package as `-p name`.
            let name = spec.split('@').next().unwrap_or(spec);
            members
                .iter()
                .copied()
                .find(|p| p.name.as_str() == name)
                .ok_or_else(|| Error::UnknownPackage {
                    name: name.to_string(),
                    names: member_names(),
                })?
        }
        None => {
            let manifest = canonical(manifest);
            match members
                .iter()
                .copied()
                .find(|p| canonical(p.manifest_path.as_std_path()) == manifest)
            {
                Some(package) => package,
                // A virtual manifest: the workspace root is not a package.
                None => {
                    let with_bins: Vec<&Package> = members
                        .iter()
                        .copied()
                        .filter(|p| !binaries(p).is_empty())
                        .collect();
                    match with_bins.as_slice() {
                        [only] => only,
                        [] => {
                            return Err(Error::NoBinary(
                                metadata
                                    .workspace_root
                                    .file_name()
                                    .unwrap_or("workspace")
                                    .into(),
                            ));
                        }
                        several => {
                            return Err(Error::SeveralPackages(
                                several.iter().map(|p| p.name.to_string()).collect(),
                            ));
                        }
                    }
                }
            }
        }
    };

    let names = binaries(chosen);
    let package_name = chosen.name.to_string();
    let bin = match bin {
        Some(name) if names.iter().any(|n| n == name) => name.to_string(),
        Some(name) => {
            return Err(Error::UnknownBinary {
                package: package_name,
                name: name.into(),
                names,
            });
        }
        None => match (names.as_slice(), &chosen.default_run) {
            ([], _) => return Err(Error::NoBinary(package_name)),
            ([only], _) => only.clone(),
            (_, Some(default_run)) => default_run.clone(),
            (_, None) => {
                return Err(Error::SeveralBinaries {
                    package: package_name,
                    names,
                });
            }
        },
    };

    Ok(Project {
        workspace_root: metadata.workspace_root.clone().into(),
        target_dir: metadata.target_directory.clone().into(),
        package: package_name,
        manifest_path: chosen.manifest_path.clone().into(),
        bin,
    })
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

    fn manifest(package: &str) -> PathBuf {
        PathBuf::from(format!("{ROOT}/{package}/Cargo.toml"))
    }

    #[test]
    fn the_only_binary_of_the_package_in_the_current_directory() {
        let meta = workspace(ROOT, &[("api", &["api"], None), ("jobs", &["jobs"], None)]);
        let project = select(&meta, &manifest("jobs"), None, None).unwrap();
        assert_eq!(
            (project.package.as_str(), project.bin.as_str()),
            ("jobs", "jobs")
        );
        assert_eq!(project.target_dir, PathBuf::from("/nonexistent/ws/target"));
    }

    #[test]
    fn several_binaries_need_a_choice_unless_default_run() {
        let meta = workspace(ROOT, &[("api", &["a", "b"], None)]);
        let err = select(&meta, &manifest("api"), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `api` has several binaries (a, b); choose one with `--bin`"
        );
        assert_eq!(
            select(&meta, &manifest("api"), None, Some("b"))
                .unwrap()
                .bin,
            "b"
        );

        let meta = workspace(ROOT, &[("api", &["a", "b"], Some("b"))]);
        assert_eq!(
            select(&meta, &manifest("api"), None, None).unwrap().bin,
            "b"
        );
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let meta = workspace(ROOT, &[("api", &["a", "b"], None)]);
        let err = select(&meta, &manifest("api"), None, Some("c")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `api` has no binary named `c`; it has: a, b"
        );
        let err = select(&meta, &manifest("api"), Some("nope"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "package `nope` is not in the workspace; it has: api"
        );
    }

    #[test]
    fn package_flag_accepts_a_version_suffix() {
        let meta = workspace(ROOT, &[("api", &["api"], None), ("jobs", &["jobs"], None)]);
        let project = select(&meta, &manifest("api"), Some("jobs@0.1.0"), None).unwrap();
        assert_eq!(project.package, "jobs");
    }

    #[test]
    fn library_only_package_is_refused() {
        let meta = workspace(ROOT, &[("util", &[], None)]);
        let err = select(&meta, &manifest("util"), None, None).unwrap_err();
        assert!(
            matches!(err, Error::NoBinary(ref name) if name == "util"),
            "{err}"
        );
    }

    #[test]
    fn virtual_manifest_picks_the_only_member_with_binaries() {
        let virtual_manifest = PathBuf::from(format!("{ROOT}/Cargo.toml"));
        let meta = workspace(ROOT, &[("util", &[], None), ("api", &["api"], None)]);
        assert_eq!(
            select(&meta, &virtual_manifest, None, None)
                .unwrap()
                .package,
            "api"
        );

        let meta = workspace(ROOT, &[("jobs", &["jobs"], None), ("api", &["api"], None)]);
        let err = select(&meta, &virtual_manifest, None, None).unwrap_err();
        assert!(matches!(err, Error::SeveralPackages(_)), "{err}");
    }

    #[test]
    fn manifest_is_found_upwards_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("src/deep");
        std::fs::create_dir_all(&nested).unwrap();
        assert!(matches!(
            locate_manifest(None, &nested),
            Err(Error::NoManifest(_))
        ));
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(
            locate_manifest(None, &nested).unwrap(),
            dir.path().join("Cargo.toml")
        );
        let missing = locate_manifest(Some(Path::new("nope/Cargo.toml")), dir.path());
        assert!(matches!(missing, Err(Error::ManifestMissing(_))));
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
    }
}
