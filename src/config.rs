//! One resolved `BuildConfig` from layers of settings. For each key the highest layer that sets
//! it wins:
//!
//! 1. the command line;
//! 2. the environment (`CARGO_LAMBDA_BUILD_ARCH`, ...);
//! 3. `[package.metadata.lambda-build.bin.NAME]` for binary NAME;
//! 4. `[package.metadata.lambda-build]` of its package, then cargo-lambda's
//!    `[package.metadata.lambda.build]`;
//! 5. `[workspace.metadata.lambda-build]`, then cargo-lambda's `[workspace.metadata.lambda.build]`
//!    and `CargoLambda.toml`'s `[build]` (see [`cargo_lambda_layer`]);
//! 6. the defaults.
//!
//! The Cargo.toml tables come from `cargo metadata` (no TOML parsing here), are read against a
//! schema of `Option`s (never the clap struct), and every key the schema does not know becomes a
//! warning naming it. The facts about the process (terminal, CI, cwd, variables) are read once
//! into [`Env`] and passed down, so tests can set them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::arch::Arch;
use crate::cli::{BuildArgs, DockerFiles, MessageFormat};
use crate::env::{Env, Ui};
use crate::project::{Function, Project};

type Result<T, E = ConfigError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },

    /// Settings that apply to the one cargo invocation, set differently by two packages.
    #[error("packages `{}` and `{}` set `{key}` differently (`{}` and `{}`), but one build has one {key}",
        .packages[0], .packages[1], .values[0], .values[1])]
    Conflict {
        key: &'static str,
        packages: [String; 2],
        values: [String; 2],
    },
}

impl ConfigError {
    /// What to do about it, when the tool knows: one line per fix.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ConfigError::Invalid { .. } => {
                "fix the value, or remove it (docs/configuration.md lists every key)".into()
            }
            ConfigError::Conflict { key, .. } => format!(
                "set `{key}` once for the build: on the command line, in \
                 `CARGO_LAMBDA_BUILD_{}`, or in `[workspace.metadata.lambda-build]`",
                key.to_uppercase().replace('-', "_")
            ),
        })
    }
}

/// `--docker` and its companions. Where the Dockerfile is found depends on the project, so the
/// choice is made when planning (see `build::docker::image::choose`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    /// `--dockerfile`, absolute.
    pub dockerfile: Option<PathBuf>,
    /// `--docker-image`: use this image as it is.
    pub image: Option<String>,
    /// `--docker-memory`, in bytes: the container's memory limit, swap included.
    pub memory: Option<u64>,
    /// `--docker-files`: bind-mount the project, copy it into volumes, or find out.
    pub files: DockerFiles,
    /// Where `files` was set, for the error when a forced `bind` cannot work.
    pub files_origin: Option<String>,
    /// `--docker-build-arg`s, in the order given; they win over the tool's own.
    pub build_args: Vec<(String, String)>,
    /// `--print-image-tag`: name the image, build nothing.
    pub print_image_tag: bool,
}

/// Everything the later stages need to know about what the user asked for.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// One cargo invocation builds every function: one architecture, one profile.
    pub arch: Arch,
    /// `--small`: the size-optimised settings override the profile's.
    pub small: bool,
    /// `--per-package`: one cargo run per package, so that a function's binary does not
    /// depend on which other packages are built with it (cargo unifies features in a run).
    pub per_package: bool,
    pub profile: String,
    /// The features of every layer, package-qualified (`pkg/feature`) when they come from a
    /// package's table and several packages are built.
    pub features: clap_cargo::Features,
    /// One per function of the project, in its order.
    pub functions: Vec<FunctionConfig>,
    pub message_format: MessageFormat,
    pub verify: bool,
    /// Absolute, when given.
    pub target_dir: Option<PathBuf>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    /// Verbosity, colour and progress display on stderr.
    pub ui: Ui,
    pub source_date_epoch: Option<String>,
    /// Build in a container: `--docker`, `--dockerfile` or `--docker-image`.
    pub docker: Option<DockerConfig>,
    /// `--invoke-with`: events to run each function on after packaging. Absolute.
    pub invoke_with: Option<PathBuf>,
    /// Unknown keys and the like: printed as warnings, never fatal.
    pub warnings: Vec<String>,
}

/// The settings of one function (one binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub package: String,
    pub bin: String,
    pub zip: bool,
    /// Absolute.
    pub outdir: PathBuf,
    /// Paths and glob patterns relative to the package root.
    pub include: Vec<String>,
    /// A Lambda extension (`extensions/<bin>`) rather than a function (`bootstrap`).
    pub extension: bool,
    /// The zips of the layers the function is deployed with. Absolute.
    pub layers: Vec<PathBuf>,
}

/// One layer: every key optional. Paths are absolute (each layer resolves its own relative
/// paths: the command line and the environment against the current directory, a Cargo.toml
/// table against its manifest's directory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    pub arch: Option<Arch>,
    pub zip: Option<bool>,
    pub outdir: Option<PathBuf>,
    pub include: Option<Vec<String>>,
    pub layers: Option<Vec<PathBuf>>,
    pub profile: Option<String>,
    pub small: Option<bool>,
    pub features: Option<Vec<String>>,
    pub extension: Option<bool>,
    pub per_package: Option<bool>,
    /// With where it was set (`--docker-files`, the variable, the table).
    pub docker_files: Option<(DockerFiles, String)>,
}

impl Layer {
    /// This layer over `lower`: each key from the first of the two that sets it.
    #[must_use]
    pub fn over(self, lower: &Layer) -> Layer {
        Layer {
            arch: self.arch.or(lower.arch),
            zip: self.zip.or(lower.zip),
            outdir: self.outdir.or_else(|| lower.outdir.clone()),
            include: self.include.or_else(|| lower.include.clone()),
            layers: self.layers.or_else(|| lower.layers.clone()),
            profile: self.profile.or_else(|| lower.profile.clone()),
            small: self.small.or(lower.small),
            per_package: self.per_package.or(lower.per_package),
            features: self.features.or_else(|| lower.features.clone()),
            extension: self.extension.or(lower.extension),
            docker_files: self.docker_files.or_else(|| lower.docker_files.clone()),
        }
    }

    /// The command line: a flag that is absent sets nothing.
    pub fn from_args(args: &BuildArgs, cwd: &Path) -> Layer {
        Layer {
            arch: args.selection.arch.or(args.selection.cargo_lambda.arch()),
            zip: args.zip.then_some(true).or(args.output_format_zip()),
            outdir: args.outdir.as_ref().map(|dir| cwd.join(dir)),
            include: (!args.include.is_empty()).then(|| args.include.clone()),
            layers: (!args.layer.is_empty())
                .then(|| args.layer.iter().map(|l| cwd.join(l)).collect()),
            profile: args.selection.profile.clone().or_else(|| {
                args.selection
                    .cargo_lambda
                    .release
                    .then(|| "release".into())
            }),
            small: args.small.then_some(true),
            per_package: args.per_package.then_some(true),
            features: (!args.selection.features.features.is_empty())
                .then(|| args.selection.features.features.clone()),
            extension: args.extension.then_some(true),
            docker_files: args
                .docker_files
                .map(|files| (files, "`--docker-files`".to_string())),
        }
    }

    /// `CARGO_LAMBDA_BUILD_<KEY>` variables; an empty one counts as unset. Lists (`INCLUDE`,
    /// `FEATURES`) are separated by commas.
    pub fn from_env(vars: &[(String, String)], cwd: &Path) -> Result<Layer> {
        let get = |key: &str| {
            let name = format!("{}{key}", crate::env::CONFIG_PREFIX);
            vars.iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        };
        let invalid = |name: String, message: String| ConfigError::Invalid {
            origin: format!("`{name}`"),
            message,
        };
        let list = |value: &str| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect()
        };
        let bool_var = |key: &str| -> Result<Option<bool>> {
            get(key)
                .map(|(name, value)| {
                    parse_bool(value).ok_or_else(|| invalid(name, format!(
                    "`{value}` is not a boolean: use `true` or `false` (or 1, 0, yes, no)"
                )))
                })
                .transpose()
        };
        Ok(Layer {
            arch: get("ARCH")
                .map(|(name, value)| parse_arch(value).map_err(|message| invalid(name, message)))
                .transpose()?,
            zip: bool_var("ZIP")?,
            outdir: get("OUTDIR").map(|(_, value)| cwd.join(value)),
            include: get("INCLUDE").map(|(_, value)| list(value)),
            layers: get("LAYERS")
                .map(|(_, value)| list(value).iter().map(|l| cwd.join(l)).collect()),
            profile: get("PROFILE").map(|(_, value)| value.to_string()),
            small: bool_var("SMALL")?,
            per_package: bool_var("PER_PACKAGE")?,
            features: get("FEATURES").map(|(_, value)| {
                value
                    .split([',', ' '])
                    .filter(|f| !f.is_empty())
                    .map(String::from)
                    .collect()
            }),
            extension: bool_var("EXTENSION")?,
            docker_files: get("DOCKER_FILES")
                .map(|(name, value)| {
                    <DockerFiles as clap::ValueEnum>::from_str(value, false)
                        .map(|files| (files, format!("`{name}`")))
                        .map_err(|_| {
                            invalid(
                                name,
                                format!("`{value}` is not a mode: use `auto`, `bind` or `copy`"),
                            )
                        })
                })
                .transpose()?,
        })
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_arch(name: &str) -> Result<Arch, String> {
    <Arch as clap::ValueEnum>::from_str(name, false)
        .map_err(|_| format!("`{name}` is not a Lambda architecture: use `x86_64` or `arm64`"))
}

/// `[package.metadata.lambda-build]` and `[workspace.metadata.lambda-build]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Table {
    #[serde(default, deserialize_with = "arch_value")]
    pub arch: Option<Arch>,
    pub zip: Option<bool>,
    pub outdir: Option<PathBuf>,
    pub include: Option<Vec<String>>,
    pub layers: Option<Vec<PathBuf>>,
    pub profile: Option<String>,
    pub small: Option<bool>,
    pub features: Option<Vec<String>>,
    pub extension: Option<bool>,
    pub per_package: Option<bool>,
    pub docker_files: Option<DockerFiles>,
    /// Per-binary tables (package tables only).
    #[serde(default)]
    pub bin: BTreeMap<String, BinTable>,
}

/// `[package.metadata.lambda-build.bin.NAME]`: what can differ between the binaries of one
/// build. Architecture, profile and features cannot: one cargo invocation builds them all.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BinTable {
    pub zip: Option<bool>,
    pub outdir: Option<PathBuf>,
    pub include: Option<Vec<String>>,
    pub layers: Option<Vec<PathBuf>>,
    pub extension: Option<bool>,
}

/// The keys of [`Table`], for the warning about an unknown one.
const TABLE_KEYS: &str = "arch, zip, outdir, include, layers, profile, small, features, extension, per-package, docker-files, \
     bin.NAME";
const BIN_TABLE_KEYS: &str = "zip, outdir, include, layers, extension";

fn arch_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Arch>, D::Error> {
    let name = String::deserialize(deserializer)?;
    parse_arch(&name)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl Table {
    /// Reads a table from `cargo metadata`'s JSON (`Null` when absent). Keys the schema does
    /// not know are pushed to `warnings`, named as written; a bad value is an error.
    pub fn parse(
        value: &serde_json::Value,
        origin: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Table> {
        if value.is_null() {
            return Ok(Table::default());
        }
        let mut unknown = Vec::new();
        // The error names the key that holds the bad value (`include`, `bin.api.zip`).
        let table: Table = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            value.clone(),
            &mut |path: serde_ignored::Path| unknown.push(path.to_string()),
        ))
        .map_err(|e| ConfigError::Invalid {
            origin: origin.to_string(),
            message: match e.path().to_string().as_str() {
                "." => e.inner().to_string(),
                key => format!("`{key}`: {}", e.inner()),
            },
        })?;
        for key in unknown {
            let known = if key.starts_with("bin.") {
                BIN_TABLE_KEYS
            } else {
                TABLE_KEYS
            };
            warnings.push(format!(
                "{origin}: unknown key `{key}` (ignored); the keys are: {known}"
            ));
        }
        Ok(table)
    }

    /// The table's own keys as a layer, relative paths against `base`; `origin` names the
    /// table for the settings that say where they came from.
    fn layer(&self, base: &Path, origin: &str) -> Layer {
        Layer {
            arch: self.arch,
            zip: self.zip,
            outdir: self.outdir.as_ref().map(|dir| base.join(dir)),
            include: self.include.clone(),
            layers: self
                .layers
                .as_ref()
                .map(|l| l.iter().map(|l| base.join(l)).collect()),
            profile: self.profile.clone(),
            small: self.small,
            per_package: self.per_package,
            features: self.features.clone(),
            extension: self.extension,
            docker_files: self
                .docker_files
                .map(|files| (files, format!("`docker-files` in {origin}"))),
        }
    }
}

impl BinTable {
    fn layer(&self, base: &Path) -> Layer {
        Layer {
            zip: self.zip,
            outdir: self.outdir.as_ref().map(|dir| base.join(dir)),
            include: self.include.clone(),
            layers: self
                .layers
                .as_ref()
                .map(|l| l.iter().map(|l| base.join(l)).collect()),
            extension: self.extension,
            ..Layer::default()
        }
    }
}

/// cargo-lambda's keys that mean what this tool's do (`output-format` is `output_format`).
const CARGO_LAMBDA_KEYS: &str = "include, arm64, x86_64, target, output_format, lambda_dir, extension, features, profile, release";

/// A cargo-lambda build table (`[package.metadata.lambda.build]`, `[workspace.metadata.lambda.build]`,
/// `CargoLambda.toml`'s `[build]`) as a layer: the keys that mean the same here are read with
/// their meaning there; every other key is named in a warning, with what to do instead.
pub fn cargo_lambda_layer(
    value: &serde_json::Value,
    origin: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Layer> {
    let mut layer = Layer::default();
    let Some(table) = value.as_object() else {
        return Ok(layer);
    };
    let invalid = |key: &str, expected: &str| ConfigError::Invalid {
        origin: origin.to_string(),
        message: format!("`{key}`: expected {expected}"),
    };
    let strings = |key: &str, value: &serde_json::Value| -> Result<Vec<String>> {
        value
            .as_array()
            .and_then(|items| items.iter().map(|i| i.as_str().map(String::from)).collect())
            .ok_or_else(|| invalid(key, "a list of strings"))
    };
    for (key, value) in table {
        let flag = || {
            value
                .as_bool()
                .ok_or_else(|| invalid(key, "`true` or `false`"))
        };
        let text = || value.as_str().ok_or_else(|| invalid(key, "a string"));
        match key.replace('-', "_").as_str() {
            "include" => layer.include = Some(strings(key, value)?),
            "features" => layer.features = Some(strings(key, value)?),
            "arm64" if flag()? => layer.arch = Some(Arch::Arm64),
            "x86_64" if flag()? => layer.arch = Some(Arch::X86_64),
            "arm64" | "x86_64" => {}
            "target" => {
                let arch = crate::cli::parse_lambda_target(text()?).map_err(|message| {
                    ConfigError::Invalid {
                        origin: origin.to_string(),
                        message: format!("`{key}`: {message}"),
                    }
                })?;
                layer.arch = Some(arch);
            }
            "output_format" => {
                layer.zip = Some(match text()?.to_ascii_lowercase().as_str() {
                    "zip" => true,
                    "binary" => false,
                    _ => return Err(invalid(key, "`zip` or `binary`")),
                })
            }
            "lambda_dir" => layer.outdir = Some(base.join(text()?)),
            "extension" => layer.extension = Some(flag()?),
            "profile" => layer.profile = Some(text()?.to_string()),
            // The release profile is the default here.
            "release" => {}
            other => warnings.push(format!(
                "{origin}: cargo-lambda's `{key}` has no equivalent here (ignored); {}",
                match other {
                    "compiler" => "cross builds use zig or a GNU cross gcc on the host, or \
                        `--docker` for a container"
                        .to_string(),
                    _ => format!("the cargo-lambda keys read are: {CARGO_LAMBDA_KEYS}"),
                }
            )),
        }
    }
    Ok(layer)
}

/// Where a function's settings came from, highest first.
struct Layers {
    /// Command line over environment: the same for every function.
    top: Layer,
    workspace: Layer,
}

impl BuildConfig {
    /// Merges the command line, the environment and the project's Cargo.toml tables. `ui` is
    /// the one `main` worked out from the same flags (it colours errors before a config exists).
    pub fn resolve(args: BuildArgs, env: &Env, ui: Ui, project: &Project) -> Result<BuildConfig> {
        let mut warnings = Vec::new();

        let workspace_manifest = project.workspace_root.join("Cargo.toml");
        let workspace_table = Table::parse(
            &project.workspace_config,
            &format!(
                "`[workspace.metadata.lambda-build]` in `{}`",
                workspace_manifest.display()
            ),
            &mut warnings,
        )?;
        if !workspace_table.bin.is_empty() {
            warnings.push(format!(
                "`[workspace.metadata.lambda-build]` in `{}`: unknown key `bin` (ignored); \
                 per-binary tables go in the package: `[package.metadata.lambda-build.bin.NAME]`",
                workspace_manifest.display()
            ));
        }
        // cargo-lambda's tables sit under this tool's own at each level.
        let mut workspace = workspace_table.layer(
            &project.workspace_root,
            &format!(
                "`[workspace.metadata.lambda-build]` in `{}`",
                workspace_manifest.display()
            ),
        );
        for (origin, table) in &project.cargo_lambda {
            let layer = cargo_lambda_layer(table, origin, &project.workspace_root, &mut warnings)?;
            workspace = workspace.over(&layer);
        }
        let layers = Layers {
            top: Layer::from_args(&args, &env.cwd)
                .over(&Layer::from_env(&env.config_vars(), &env.cwd)?),
            workspace,
        };

        // Package tables are read once per package, however many of its binaries are built.
        let mut package_tables: BTreeMap<&Path, (Table, String)> = BTreeMap::new();
        let mut cargo_lambda_tables: BTreeMap<&Path, Layer> = BTreeMap::new();
        for function in &project.functions {
            if !package_tables.contains_key(function.manifest_path.as_path()) {
                let origin = format!(
                    "`[package.metadata.lambda-build]` of package `{}` (`{}`)",
                    function.package,
                    function.manifest_path.display()
                );
                let table = Table::parse(&function.package_config, &origin, &mut warnings)?;
                package_tables.insert(&function.manifest_path, (table, origin));
                let origin = format!(
                    "`[package.metadata.lambda.build]` of package `{}` (`{}`)",
                    function.package,
                    function.manifest_path.display()
                );
                let layer = cargo_lambda_layer(
                    &function.cargo_lambda_config,
                    &origin,
                    function.package_root(),
                    &mut warnings,
                )?;
                cargo_lambda_tables.insert(&function.manifest_path, layer);
            }
        }
        let several_packages = package_tables.len() > 1;

        let mut functions = Vec::new();
        let mut arch: Option<(Arch, &Function)> = None;
        let mut profile: Option<(String, &Function)> = None;
        let mut small: Option<(bool, &Function)> = None;
        let mut per_package: Option<(bool, &Function)> = None;
        let mut docker_files: Option<((DockerFiles, Option<String>), &Function)> = None;
        let mut features: Vec<String> = Vec::new();
        for function in &project.functions {
            let root = function.package_root();
            let (table, origin) = &package_tables[function.manifest_path.as_path()];
            let package_layer = table
                .layer(root, origin)
                .over(&cargo_lambda_tables[function.manifest_path.as_path()]);
            let bin_layer = table
                .bin
                .get(&function.bin)
                .map(|bin| bin.layer(root))
                .unwrap_or_default();
            let below_env = bin_layer.over(&package_layer.clone().over(&layers.workspace));
            let merged = layers.top.clone().over(&below_env);

            let this_arch = merged.arch.unwrap_or_default();
            match &arch {
                Some((seen, other)) if *seen != this_arch => {
                    return Err(conflict("arch", other, function, *seen, this_arch));
                }
                Some(_) => {}
                None => arch = Some((this_arch, function)),
            }
            let this_profile = merged.profile.clone().unwrap_or_else(|| "release".into());
            match &profile {
                Some((seen, other)) if *seen != this_profile => {
                    return Err(conflict("profile", other, function, seen, &this_profile));
                }
                Some(_) => {}
                None => profile = Some((this_profile, function)),
            }
            let this_small = merged.small.unwrap_or(false);
            match &small {
                Some((seen, other)) if *seen != this_small => {
                    return Err(conflict("small", other, function, seen, this_small));
                }
                Some(_) => {}
                None => small = Some((this_small, function)),
            }
            let this_per_package = merged.per_package.unwrap_or(false);
            match &per_package {
                Some((seen, other)) if *seen != this_per_package => {
                    return Err(conflict(
                        "per-package",
                        other,
                        function,
                        seen,
                        this_per_package,
                    ));
                }
                Some(_) => {}
                None => per_package = Some((this_per_package, function)),
            }
            let this_files = merged
                .docker_files
                .clone()
                .map_or((DockerFiles::Auto, None), |(files, origin)| {
                    (files, Some(origin))
                });
            match &docker_files {
                Some(((seen, _), other)) if *seen != this_files.0 => {
                    return Err(conflict(
                        "docker-files",
                        other,
                        function,
                        seen.name(),
                        this_files.0.name(),
                    ));
                }
                Some(_) => {}
                None => docker_files = Some((this_files, function)),
            }
            // A package's own features name its features: with several packages in one
            // invocation, cargo needs them qualified as `package/feature`.
            let from_package = layers.top.features.is_none() && package_layer.features.is_some();
            for feature in merged.features.iter().flatten() {
                let feature = if from_package && several_packages && !feature.contains('/') {
                    format!("{}/{feature}", function.package)
                } else {
                    feature.clone()
                };
                if !features.contains(&feature) {
                    features.push(feature);
                }
            }

            functions.push(FunctionConfig {
                package: function.package.clone(),
                bin: function.bin.clone(),
                zip: merged.zip.unwrap_or(false),
                // `mix lambda.build` writes into the current directory by default.
                outdir: merged.outdir.unwrap_or_else(|| env.cwd.clone()),
                include: merged.include.unwrap_or_default(),
                extension: merged.extension.unwrap_or(false),
                layers: merged.layers.unwrap_or_default(),
            });
        }

        let mut cargo_features = args.selection.features;
        cargo_features.features = features;
        Ok(BuildConfig {
            arch: arch.map(|(arch, _)| arch).unwrap_or_default(),
            profile: profile
                .map(|(profile, _)| profile)
                .unwrap_or_else(|| "release".into()),
            features: cargo_features,
            functions,
            message_format: args.message_format,
            verify: !args.no_verify,
            small: small.map(|(small, _)| small).unwrap_or(false),
            per_package: per_package.is_some_and(|(on, _)| on),
            target_dir: args.selection.target_dir.map(|dir| env.cwd.join(dir)),
            locked: args.selection.locked,
            offline: args.selection.offline,
            frozen: args.selection.frozen,
            ui,
            source_date_epoch: env
                .source_date_epoch()
                .map(|value| value.to_string_lossy().into_owned()),
            docker: (args.docker
                || args.dockerfile.is_some()
                || args.docker_image.is_some()
                || args.docker_memory.is_some()
                || args.docker_files.is_some()
                || !args.docker_build_arg.is_empty()
                || args.print_image_tag)
                .then(|| {
                    let (files, files_origin) = docker_files
                        .map(|(files, _)| files)
                        .unwrap_or((DockerFiles::Auto, None));
                    DockerConfig {
                        dockerfile: args.dockerfile.map(|path| env.cwd.join(path)),
                        image: args.docker_image,
                        memory: args.docker_memory,
                        files,
                        files_origin,
                        build_args: args.docker_build_arg,
                        print_image_tag: args.print_image_tag,
                    }
                }),
            invoke_with: args.invoke_with.map(|file| env.cwd.join(file)),
            warnings,
        })
    }
}

fn conflict(
    key: &'static str,
    first: &Function,
    second: &Function,
    a: impl std::fmt::Display,
    b: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::Conflict {
        key,
        packages: [first.package.clone(), second.package.clone()],
        values: [a.to_string(), b.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;
    use serde_json::{Value, json};

    fn env(terminal: bool, ci: bool) -> Env {
        let vars: &[(&str, &str)] = if ci { &[("CI", "true")] } else { &[] };
        Env::new(PathBuf::from("/home/me/fn"), terminal, vars.iter().copied())
    }

    fn env_with(vars: &[(&str, &str)]) -> Env {
        Env::new(PathBuf::from("/home/me/fn"), false, vars.iter().copied())
    }

    /// A workspace at /ws with one function per (package, bin, `[package.metadata.lambda-build]`).
    fn project(functions: &[(&str, &str, Value)], workspace: Value) -> Project {
        Project {
            workspace_root: "/ws".into(),
            target_dir: "/ws/target".into(),
            workspace_config: workspace,
            cargo_lambda: Vec::new(),
            functions: functions
                .iter()
                .map(|(package, bin, config)| Function {
                    package: package.to_string(),
                    manifest_path: format!("/ws/{package}/Cargo.toml").into(),
                    bin: bin.to_string(),
                    kind: crate::project::TargetKind::Bin,
                    package_config: config.clone(),
                    cargo_lambda_config: Value::Null,
                })
                .collect(),
        }
    }

    fn one() -> Project {
        project(&[("api", "api", Value::Null)], Value::Null)
    }

    fn resolve(args: &[&str], env: &Env, project: &Project) -> Result<BuildConfig> {
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        let ui = args.output.ui(env);
        BuildConfig::resolve(args, env, ui, project)
    }

    fn config(args: &[&str], env: &Env) -> BuildConfig {
        resolve(args, env, &one()).unwrap()
    }

    #[test]
    fn paths_are_relative_to_the_current_directory() {
        let c = config(&["-o", "dist", "--target-dir", "t"], &env(false, false));
        assert_eq!(c.functions[0].outdir, PathBuf::from("/home/me/fn/dist"));
        assert_eq!(c.target_dir, Some(PathBuf::from("/home/me/fn/t")));
        let c = config(&["-o", "/abs"], &env(false, false));
        assert_eq!(c.functions[0].outdir, PathBuf::from("/abs"));
        // `mix lambda.build` writes into the current directory by default.
        assert_eq!(
            config(&[], &env(false, false)).functions[0].outdir,
            PathBuf::from("/home/me/fn")
        );
    }

    #[test]
    fn defaults_are_the_designs() {
        let c = config(&[], &env(false, false));
        assert_eq!((c.arch, c.profile.as_str()), (Arch::X86_64, "release"));
        let f = &c.functions[0];
        assert_eq!((f.zip, f.extension, f.include.len()), (false, false, 0));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn dockerfile_and_image_imply_docker() {
        let e = env(false, false);
        assert_eq!(config(&[], &e).docker, None);
        assert_eq!(
            config(&["--docker"], &e).docker,
            Some(DockerConfig::default())
        );
        assert_eq!(
            config(&["--dockerfile", "ci/lambda.Dockerfile"], &e).docker,
            Some(DockerConfig {
                dockerfile: Some("/home/me/fn/ci/lambda.Dockerfile".into()),
                ..DockerConfig::default()
            })
        );
        assert_eq!(
            config(&["--docker-image", "mine:1"], &e).docker,
            Some(DockerConfig {
                image: Some("mine:1".into()),
                ..DockerConfig::default()
            })
        );
        assert_eq!(
            config(&["--docker-memory", "512m"], &e).docker,
            Some(DockerConfig {
                memory: Some(512 << 20),
                ..DockerConfig::default()
            })
        );
        assert_eq!(
            config(&["--docker-build-arg", "BASE_IMAGE=m"], &e).docker,
            Some(DockerConfig {
                build_args: vec![("BASE_IMAGE".into(), "m".into())],
                ..DockerConfig::default()
            })
        );
        assert_eq!(
            config(&["--print-image-tag"], &e).docker,
            Some(DockerConfig {
                print_image_tag: true,
                ..DockerConfig::default()
            })
        );
    }

    /// Each layer sets every key; removing the layers one by one from the top shows the order:
    /// command line > environment > bin table > package table > workspace table > defaults.
    // the expected paths are written with `/`
    #[cfg(unix)]
    #[test]
    fn precedence_command_line_env_bin_package_workspace_defaults() {
        let workspace = json!({
            "arch": "arm64", "zip": true, "outdir": "ws-out", "include": ["ws.txt"],
            "profile": "ws-profile", "features": ["ws-feature"], "extension": true,
        });
        let package = json!({
            "arch": "x86_64", "zip": false, "outdir": "pkg-out", "include": ["pkg.txt"],
            "profile": "pkg-profile", "features": ["pkg-feature"], "extension": false,
            "bin": { "api": { "zip": true, "outdir": "bin-out", "include": ["bin.txt"], "extension": true } },
        });
        let cli = [
            "--arch",
            "arm64",
            "--zip",
            "-o",
            "cli-out",
            "--include",
            "cli.txt",
            "--profile",
            "cli-profile",
            "-F",
            "cli-feature",
            "--extension",
        ];
        let env_vars = [
            ("CARGO_LAMBDA_BUILD_ARCH", "x86_64"),
            ("CARGO_LAMBDA_BUILD_ZIP", "false"),
            ("CARGO_LAMBDA_BUILD_OUTDIR", "env-out"),
            ("CARGO_LAMBDA_BUILD_INCLUDE", "env.txt, env2.txt"),
            ("CARGO_LAMBDA_BUILD_PROFILE", "env-profile"),
            ("CARGO_LAMBDA_BUILD_FEATURES", "env-feature"),
            ("CARGO_LAMBDA_BUILD_EXTENSION", "no"),
        ];
        type Row<'a> = (
            Arch,
            bool,
            &'a str,
            Vec<&'a str>,
            &'a str,
            Vec<&'a str>,
            bool,
        );
        let summary =
            |c: &BuildConfig| -> (Arch, bool, String, Vec<String>, String, Vec<String>, bool) {
                let f = &c.functions[0];
                (
                    c.arch,
                    f.zip,
                    f.outdir.display().to_string(),
                    f.include.clone(),
                    c.profile.clone(),
                    c.features.features.clone(),
                    f.extension,
                )
            };
        let expect = |row: Row| {
            (
                row.0,
                row.1,
                row.2.to_string(),
                row.3.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                row.4.to_string(),
                row.5.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                row.6,
            )
        };
        let full = project(&[("api", "api", package.clone())], workspace.clone());
        let c = resolve(&cli, &env_with(&env_vars), &full).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(
            summary(&c),
            expect((
                Arch::Arm64,
                true,
                "/home/me/fn/cli-out",
                vec!["cli.txt"],
                "cli-profile",
                vec!["cli-feature"],
                true
            ))
        );
        let c = resolve(&[], &env_with(&env_vars), &full).unwrap();
        assert_eq!(
            summary(&c),
            expect((
                Arch::X86_64,
                false,
                "/home/me/fn/env-out",
                vec!["env.txt", "env2.txt"],
                "env-profile",
                vec!["env-feature"],
                false
            ))
        );
        // The bin table sets only what can differ per binary; the package table the rest.
        let c = resolve(&[], &env(false, false), &full).unwrap();
        assert_eq!(
            summary(&c),
            expect((
                Arch::X86_64,
                true,
                "/ws/api/bin-out",
                vec!["bin.txt"],
                "pkg-profile",
                vec!["pkg-feature"],
                true
            ))
        );
        let mut package_only = package.clone();
        package_only.as_object_mut().unwrap().remove("bin");
        let c = resolve(
            &[],
            &env(false, false),
            &project(&[("api", "api", package_only)], workspace.clone()),
        )
        .unwrap();
        assert_eq!(
            summary(&c),
            expect((
                Arch::X86_64,
                false,
                "/ws/api/pkg-out",
                vec!["pkg.txt"],
                "pkg-profile",
                vec!["pkg-feature"],
                false
            ))
        );
        let c = resolve(
            &[],
            &env(false, false),
            &project(&[("api", "api", Value::Null)], workspace),
        )
        .unwrap();
        assert_eq!(
            summary(&c),
            expect((
                Arch::Arm64,
                true,
                "/ws/ws-out",
                vec!["ws.txt"],
                "ws-profile",
                vec!["ws-feature"],
                true
            ))
        );
        let c = resolve(&[], &env(false, false), &one()).unwrap();
        assert_eq!(
            summary(&c),
            expect((
                Arch::X86_64,
                false,
                "/home/me/fn",
                vec![],
                "release",
                vec![],
                false
            ))
        );
    }

    #[test]
    fn docker_files_is_layered_and_remembers_where_it_was_set() {
        let files = |args: &[&str], env: &Env, p: &Project| {
            let docker = resolve(args, env, p).unwrap().docker.unwrap();
            (docker.files, docker.files_origin)
        };
        let plain = env(false, false);
        assert_eq!(
            files(&["--docker"], &plain, &one()),
            (DockerFiles::Auto, None)
        );
        // The flag alone means `--docker`.
        assert_eq!(
            files(&["--docker-files", "copy"], &plain, &one()),
            (DockerFiles::Copy, Some("`--docker-files`".into()))
        );
        let table = project(
            &[("api", "api", json!({ "docker-files": "bind" }))],
            Value::Null,
        );
        let (mode, origin) = files(&["--docker"], &plain, &table);
        assert_eq!(mode, DockerFiles::Bind);
        assert!(
            origin
                .unwrap()
                .starts_with("`docker-files` in `[package.metadata.lambda-build]`")
        );
        let var = env_with(&[("CARGO_LAMBDA_BUILD_DOCKER_FILES", "copy")]);
        assert_eq!(
            files(&["--docker"], &var, &table),
            (
                DockerFiles::Copy,
                Some("`CARGO_LAMBDA_BUILD_DOCKER_FILES`".into())
            )
        );
        let bad = env_with(&[("CARGO_LAMBDA_BUILD_DOCKER_FILES", "mount")]);
        let err = resolve(&["--docker"], &bad, &one()).unwrap_err();
        assert!(
            err.to_string().contains("use `auto`, `bind` or `copy`"),
            "{err}"
        );
    }

    #[test]
    fn small_is_a_layered_key_too() {
        let p = project(&[("api", "api", json!({ "small": true }))], Value::Null);
        assert!(resolve(&[], &env(false, false), &p).unwrap().small);
        let off = env_with(&[("CARGO_LAMBDA_BUILD_SMALL", "false")]);
        assert!(!resolve(&[], &off, &p).unwrap().small);
        assert!(resolve(&["--small"], &off, &p).unwrap().small);
        assert!(!resolve(&[], &env(false, false), &one()).unwrap().small);
    }

    #[test]
    fn a_bin_table_applies_to_its_binary_only() {
        let package = json!({ "include": ["shared"], "bin": { "worker": { "extension": true } } });
        let p = project(
            &[("app", "api", package.clone()), ("app", "worker", package)],
            Value::Null,
        );
        let c = resolve(&[], &env(false, false), &p).unwrap();
        assert_eq!(
            c.functions
                .iter()
                .map(|f| (f.bin.as_str(), f.extension))
                .collect::<Vec<_>>(),
            [("api", false), ("worker", true)]
        );
        assert!(c.functions.iter().all(|f| f.include == ["shared"]));
    }

    // the expected paths are written with `/`
    #[cfg(unix)]
    #[test]
    fn unknown_keys_warn_and_name_the_key() {
        let p = project(
            &[(
                "api",
                "api",
                json!({ "zipp": true, "bin": { "api": { "arch": "arm64" } } }),
            )],
            json!({ "docker-image": "x", "bin": {} }),
        );
        let c = resolve(&[], &env(false, false), &p).unwrap();
        let warnings = c.warnings.join("\n");
        for expected in [
            "`[workspace.metadata.lambda-build]` in `/ws/Cargo.toml`: unknown key `docker-image`",
            "of package `api` (`/ws/api/Cargo.toml`): unknown key `zipp` (ignored)",
            "unknown key `bin.api.arch` (ignored); the keys are: zip, outdir, include, layers, extension",
        ] {
            assert!(
                warnings.contains(expected),
                "`{expected}` missing from:\n{warnings}"
            );
        }
        assert_eq!(c.warnings.len(), 3, "{warnings}");
        assert!(!c.functions[0].zip, "a misspelt key sets nothing");
    }

    #[test]
    fn bad_values_are_errors_naming_where() {
        let p = project(&[("api", "api", json!({ "zip": "yes" }))], Value::Null);
        let err = resolve(&[], &env(false, false), &p).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        assert!(
            err.to_string().contains("package `api`") && err.to_string().contains("boolean"),
            "{err}"
        );
        assert!(err.help().is_some());

        let p = project(&[("api", "api", Value::Null)], json!({ "arch": "mips" }));
        let err = resolve(&[], &env(false, false), &p).unwrap_err();
        assert!(
            err.to_string()
                .contains("`mips` is not a Lambda architecture"),
            "{err}"
        );

        for (name, value) in [
            ("CARGO_LAMBDA_BUILD_ARCH", "sparc"),
            ("CARGO_LAMBDA_BUILD_ZIP", "maybe"),
        ] {
            let err = resolve(&[], &env_with(&[(name, value)]), &one()).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("`{name}`: `{value}`")),
                "{err}"
            );
        }
        // Empty counts as unset; booleans read as people write them.
        let c = resolve(
            &[],
            &env_with(&[
                ("CARGO_LAMBDA_BUILD_ARCH", ""),
                ("CARGO_LAMBDA_BUILD_ZIP", "YES"),
            ]),
            &one(),
        )
        .unwrap();
        assert_eq!((c.arch, c.functions[0].zip), (Arch::X86_64, true));
    }

    #[test]
    fn packages_that_disagree_on_the_build_are_refused_unless_overridden() {
        let p = project(
            &[
                ("a", "a", json!({ "arch": "arm64" })),
                ("b", "b", json!({ "arch": "x86_64" })),
            ],
            Value::Null,
        );
        let err = resolve(&[], &env(false, false), &p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "packages `a` and `b` set `arch` differently (`arm64` and `x86_64`), but one build has one arch"
        );
        assert!(err.help().unwrap().contains("CARGO_LAMBDA_BUILD_ARCH"));
        assert_eq!(
            resolve(&["--arch", "arm64"], &env(false, false), &p)
                .unwrap()
                .arch,
            Arch::Arm64
        );
        let same = project(
            &[
                ("a", "a", json!({ "profile": "lambda" })),
                ("b", "b", json!({ "profile": "lambda" })),
            ],
            Value::Null,
        );
        assert_eq!(
            resolve(&[], &env(false, false), &same).unwrap().profile,
            "lambda"
        );
    }

    #[test]
    fn package_features_are_qualified_when_several_packages_build() {
        let p = project(
            &[
                ("a", "a", json!({ "features": ["fast"] })),
                ("b", "b", Value::Null),
            ],
            json!({ "features": ["shared"] }),
        );
        let c = resolve(&[], &env(false, false), &p).unwrap();
        assert_eq!(c.features.features, ["a/fast", "shared"]);
        let single = project(&[("a", "a", json!({ "features": ["fast"] }))], Value::Null);
        assert_eq!(
            resolve(&[], &env(false, false), &single)
                .unwrap()
                .features
                .features,
            ["fast"]
        );
        let c = resolve(
            &["-F", "x y", "--no-default-features"],
            &env(false, false),
            &p,
        )
        .unwrap();
        assert_eq!(c.features.features, ["x", "y"]);
        assert!(c.features.no_default_features);
    }

    /// The fenced blocks that follow a line `marker`.
    #[cfg(unix)]
    fn readme_blocks(text: &str, marker: &str) -> Vec<String> {
        let mut blocks = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() != marker {
                continue;
            }
            let mut block = String::new();
            let mut started = false;
            for line in lines.by_ref() {
                if line.trim_start().starts_with("```") {
                    if started {
                        break;
                    }
                    started = true;
                } else if started {
                    block.push_str(line);
                    block.push('\n');
                }
            }
            blocks.push(block);
        }
        blocks
    }

    /// The configuration examples of docs/configuration.md and the README, each put into a real
    /// Cargo.toml and read back through `cargo metadata`, parse without a warning: the
    /// documentation cannot drift from the schema.
    // runs cargo, which a Windows test run under wine does not have
    #[cfg(unix)]
    #[test]
    fn readme_config_examples_parse_without_warnings() {
        let docs = [
            include_str!("../docs/configuration.md"),
            include_str!("../README.md"),
        ];
        let examples: Vec<String> = docs
            .iter()
            .flat_map(|text| readme_blocks(text, "<!-- config-example -->"))
            .collect();
        assert!(
            examples.len() >= 2,
            "no config examples found in docs/configuration.md"
        );
        for example in examples {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("src")).unwrap();
            std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
            let manifest = dir.path().join("Cargo.toml");
            let workspace = if example.contains("[workspace") {
                ""
            } else {
                "[workspace]\n"
            };
            std::fs::write(
                &manifest,
                format!(
                    "[package]\nname = \"api\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{example}\n{workspace}"
                ),
            )
            .unwrap();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let metadata = crate::project::metadata(&cargo, &manifest, dir.path())
                .unwrap_or_else(|e| panic!("{e}\n{example}"));
            let selected =
                crate::project::select(&metadata, &manifest, Default::default()).unwrap();
            assert!(
                !selected.functions[0].package_config.is_null()
                    || !selected.workspace_config.is_null(),
                "the example sets nothing:\n{example}"
            );
            let c = resolve(&[], &env(false, false), &selected)
                .unwrap_or_else(|e| panic!("{e}\n{example}"));
            assert!(c.warnings.is_empty(), "{:?}\n{example}", c.warnings);
        }
    }
}
