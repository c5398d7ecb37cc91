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
//! Every source gives the same [`Layer`], and each key is declared once, in [`BuildSettings`]
//! (one value per build) or [`FunctionSettings`] (one per function): serde reads the Cargo.toml
//! tables (from `cargo metadata`, no TOML parsing here) and the variables against them, never
//! against the command line's structs (`cli.rs` maps the flags to a [`CommandLine`]), and every
//! key of a table they do not know becomes a warning naming it. A build-wide key is resolved by
//! one helper, `agree`, for every package. The facts about the process (terminal, CI, cwd,
//! variables) are read once into [`Env`] and passed down, so tests can set them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::value::{Error as ValueError, MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, Error as _, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::arch::Arch;
use crate::env::{CONFIG_PREFIX, Env, Ui};
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
                 `{}`, or in `[workspace.metadata.lambda-build]`",
                var_name(key)
            ),
        })
    }
}

/// How `--docker` gives the engine the project's files (`docker-files`). What `auto` means for
/// an engine is found out by the probe, `build::docker::files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerFiles {
    /// Bind when the engine sees this machine's files, else copy.
    #[default]
    Auto,
    /// Bind-mount the host's paths: an engine on this machine.
    Bind,
    /// Keep the files in volumes on the engine, synced by content: a remote engine.
    Copy,
}

impl DockerFiles {
    pub const ALL: [DockerFiles; 3] = [DockerFiles::Auto, DockerFiles::Bind, DockerFiles::Copy];

    pub fn name(self) -> &'static str {
        match self {
            DockerFiles::Auto => "auto",
            DockerFiles::Bind => "bind",
            DockerFiles::Copy => "copy",
        }
    }
}

impl fmt::Display for DockerFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How results are printed on stdout (`--message-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// A summary for people.
    #[default]
    Human,
    /// One JSON object per line, for scripts.
    Json,
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

/// `--image` and its companions: the container image of the function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `REGISTRY/REPOSITORY[:TAG]`.
    pub name: String,
    /// `image-base`, else AWS's provided.al2023 image.
    pub base: String,
    /// `--push`: to the registry in `name`.
    pub push: bool,
    /// `--image-out DIR`: an OCI layout directory. Absolute once resolved.
    pub out: Option<PathBuf>,
}

/// Cargo's feature flags for the one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// Package-qualified (`pkg/feature`) when they come from a package's table and several
    /// packages are built.
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
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
    /// The features of every layer.
    pub features: Features,
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
    /// `--image`: the function as a container image too.
    pub image: Option<ImageConfig>,
    /// Unknown keys and the like: printed as warnings, never fatal.
    pub warnings: Vec<String>,
    /// What the settings files and variables (not the command line) hand to cargo, each with
    /// where it was set: when cargo then fails, the user learns which file asked for it.
    pub passed_to_cargo: Vec<String>,
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
    /// What `invoke` and `serve` take from the settings when they run what the tool builds.
    pub run: RunSettings,
}

/// The settings of a function that `invoke` and `serve` read when they run what the tool builds
/// (`--invoke-with`, `--native`, `serve --watch`); their flags win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSettings {
    /// Its environment variables, by name: the `env` tables of its layers merged, a higher
    /// layer's value winning.
    pub env: Vec<(String, String)>,
    /// `concurrency`: Lambda Managed Instances' `AWS_LAMBDA_MAX_CONCURRENCY`.
    pub concurrency: Option<u32>,
}

/// The keys one cargo invocation has once, so the packages of a build must agree on them
/// (features aside: they add up). Named as written in Cargo.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", expecting = "a table of settings")]
pub struct BuildSettings {
    #[serde(default, deserialize_with = "arch_value", serialize_with = "as_text")]
    pub arch: Option<Arch>,
    pub profile: Option<String>,
    pub small: Option<bool>,
    pub features: Option<Vec<String>>,
    pub per_package: Option<bool>,
    #[serde(serialize_with = "as_text")]
    pub docker_files: Option<DockerFiles>,
    /// The image `--image` builds on (a mirror of AWS's, a pinned digest).
    pub image_base: Option<String>,
}

/// A value as its text (`arm64`, `copy`), as Cargo.toml writes it.
fn as_text<T: fmt::Display, S: serde::Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// The keys that may differ between the functions of one build: all that a
/// `[package.metadata.lambda-build.bin.NAME]` table takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", expecting = "a table of settings")]
pub struct FunctionSettings {
    pub zip: Option<bool>,
    pub outdir: Option<PathBuf>,
    pub include: Option<Vec<String>>,
    pub layers: Option<Vec<PathBuf>>,
    pub extension: Option<bool>,
    /// The function's environment variables when `invoke` and `serve` run what the tool
    /// builds (`--invoke-with`, `--native`, `--watch`): a table of strings.
    pub env: Option<BTreeMap<String, String>>,
    /// How many invocations one execution environment takes at once when the tool runs the
    /// function, as Lambda Managed Instances do (`--concurrency`).
    pub concurrency: Option<u32>,
}

/// Where a layer comes from, to say where one of its keys was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    Environment,
    /// A table of a package (its own, one of its `bin.NAME`, cargo-lambda's), named as messages
    /// name it.
    Package(String),
    /// A table of the workspace (its own, cargo-lambda's), named as messages name it.
    Workspace(String),
}

impl Source {
    /// How a message names `key` as this layer sets it (`--docker-files`,
    /// `CARGO_LAMBDA_BUILD_DOCKER_FILES`, `docker-files` in a table).
    pub fn naming(&self, key: &str) -> String {
        match self {
            Source::CommandLine => format!("`--{key}`"),
            Source::Environment => format!("`{}`", var_name(key)),
            Source::Package(table) | Source::Workspace(table) => format!("`{key}` in {table}"),
        }
    }
}

impl fmt::Display for Source {
    /// Names the layer: a table as messages name it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine => f.write_str("the command line"),
            Source::Environment => f.write_str("the environment"),
            Source::Package(table) | Source::Workspace(table) => f.write_str(table),
        }
    }
}

/// The variable of a key: `per-package` is `CARGO_LAMBDA_BUILD_PER_PACKAGE`.
fn var_name(key: &str) -> String {
    format!("{CONFIG_PREFIX}{}", key.to_uppercase().replace('-', "_"))
}

/// One layer of settings, whatever its source: every key optional. Paths are absolute once
/// the layer is read (the command line and the environment against the current directory, a
/// Cargo.toml table against its manifest's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub source: Source,
    pub build: BuildSettings,
    pub function: FunctionSettings,
}

impl Layer {
    /// The keys this layer sets, each with its value as Cargo.toml would write it
    /// (`arch = "arm64"`), in the structs' order.
    pub fn keys(&self) -> Vec<(String, String)> {
        let mut keys = Vec::new();
        for table in [
            serde_json::to_value(&self.build),
            serde_json::to_value(&self.function),
        ]
        .into_iter()
        .flatten()
        {
            let serde_json::Value::Object(table) = table else {
                continue;
            };
            for (key, value) in table {
                let text = match value {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|item| {
                            item.as_str()
                                .map_or_else(|| item.to_string(), str::to_owned)
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => other.to_string(),
                };
                keys.push((key, text));
            }
        }
        keys
    }

    /// A layer that sets nothing yet.
    pub fn new(source: Source) -> Layer {
        Layer {
            source,
            build: BuildSettings::default(),
            function: FunctionSettings::default(),
        }
    }

    /// Its relative paths taken from `base`.
    fn rebased(mut self, base: &Path) -> Layer {
        let function = &mut self.function;
        function.outdir = function.outdir.take().map(|dir| base.join(dir));
        function.layers = (function.layers.take())
            .map(|layers| layers.iter().map(|layer| base.join(layer)).collect());
        self
    }

    /// `CARGO_LAMBDA_BUILD_<KEY>` variables, read against the same keys as the tables; an
    /// empty one counts as unset, and one that names no key is not read.
    fn from_env(vars: &[(String, String)], cwd: &Path) -> Result<Layer> {
        let values: Vec<(String, Var)> = vars
            .iter()
            .filter_map(|(name, value)| {
                let key = name
                    .strip_prefix(CONFIG_PREFIX)?
                    .to_lowercase()
                    .replace('_', "-");
                let value = Var::of(&key, value.trim());
                (var_name(&key) == *name && !value.text.is_empty()).then_some((key, value))
            })
            .collect();
        let read = |layer: &mut Layer| -> Result<(), serde_path_to_error::Error<ValueError>> {
            let map = || MapDeserializer::new(values.iter().map(|(k, v)| (k.as_str(), *v)));
            layer.build = serde_path_to_error::deserialize(map())?;
            layer.function = serde_path_to_error::deserialize(map())?;
            Ok(())
        };
        let mut layer = Layer::new(Source::Environment);
        read(&mut layer).map_err(|e| ConfigError::Invalid {
            origin: format!("`{}`", var_name(&e.path().to_string())),
            message: e.inner().to_string(),
        })?;
        Ok(layer.rebased(cwd))
    }

    /// A `[package.metadata.lambda-build]` or `[workspace.metadata.lambda-build]` table from
    /// `cargo metadata`'s JSON (`Null` when absent), its relative paths from `base`: its layer,
    /// and one per `bin.NAME` table in it. Keys no settings struct knows are pushed to
    /// `warnings`, named as written; a bad value is an error naming its key.
    fn read_table(
        value: &Value,
        source: &Source,
        base: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<(Layer, BTreeMap<String, Layer>)> {
        let origin = &source.to_string();
        if value.is_null() {
            return Ok((Layer::new(source.clone()), BTreeMap::new()));
        }
        /// The `bin.NAME` tables of a table.
        #[derive(Deserialize)]
        struct Bins {
            #[serde(default)]
            bin: BTreeMap<String, FunctionSettings>,
        }
        let (build, not_build) = read_keys::<BuildSettings>(value, origin)?;
        let (function, not_function) = read_keys::<FunctionSettings>(value, origin)?;
        // Every key but `bin` is unknown to this pass, and those of a `bin.NAME` table that
        // `FunctionSettings` does not take, in the table's order.
        let (bins, not_bins) = read_keys::<Bins>(value, origin)?;
        for key in not_bins {
            let known = if key.starts_with("bin.") {
                per_binary_keys().join(", ")
            } else if not_build.contains(&key) && not_function.contains(&key) {
                [settings_keys(), vec!["bin.NAME"]].concat().join(", ")
            } else {
                continue;
            };
            warnings.push(format!(
                "{origin}: unknown key `{key}` (ignored); the keys are: {known}"
            ));
        }
        let layer = |build, function| {
            let layer = Layer {
                source: source.clone(),
                build,
                function,
            };
            layer.rebased(base)
        };
        let bins = (bins.bin.into_iter())
            .map(|(name, function)| (name, layer(BuildSettings::default(), function)))
            .collect();
        Ok((layer(build, function), bins))
    }
}

/// `value` read into `T`, and the keys `T` does not know, as written (`bin.api.arch`).
fn read_keys<T: DeserializeOwned>(value: &Value, origin: &str) -> Result<(T, Vec<String>)> {
    let mut unknown = Vec::new();
    let keys = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        &mut |path: serde_ignored::Path| unknown.push(path.to_string()),
    ))
    .map_err(|e| ConfigError::Invalid {
        origin: origin.to_string(),
        // The error names the key that holds the bad value (`include`, `bin.api.zip`).
        message: match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            key => format!("`{key}`: {}", e.inner()),
        },
    })?;
    Ok((keys, unknown))
}

/// Every key a `lambda-build` table and the environment take, as Cargo.toml writes them: the
/// build-wide ones, then the per-function ones. The warning about an unknown key lists them,
/// and the docs are checked against them (tests/it/docs_truth.rs).
pub fn settings_keys() -> Vec<&'static str> {
    [keys_of::<BuildSettings>(), keys_of::<FunctionSettings>()].concat()
}

/// The keys a `[package.metadata.lambda-build.bin.NAME]` table takes.
pub fn per_binary_keys() -> &'static [&'static str] {
    keys_of::<FunctionSettings>()
}

/// The keys a settings struct reads, in its order: serde's own list, for the warning about an
/// unknown key.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    /// Answers serde's request for a struct with the struct's field names, and nothing else.
    struct Fields(&'static [&'static str]);
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = ValueError;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ValueError> {
            Err(ValueError::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, ValueError> {
            self.0 = fields;
            Err(ValueError::custom("only the field names were asked for"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}

/// A variable's value, read as the type of its key: a boolean as people write it (`yes`, `1`),
/// a list separated by commas, a mode by its name, anything else as the text.
#[derive(Debug, Clone, Copy)]
struct Var<'a> {
    text: &'a str,
    separators: &'static [char],
}

impl<'a> Var<'a> {
    fn of(key: &str, text: &'a str) -> Var<'a> {
        // Cargo reads a list of features separated by spaces too (`-F "a b"`).
        let separators: &[char] = if key == "features" {
            &[',', ' ']
        } else {
            &[',']
        };
        Var { text, separators }
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for Var<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Var<'_> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_str(self.text)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match parse_bool(self.text) {
            Some(value) => visitor.visit_bool(value),
            None => Err(ValueError::custom(format!(
                "`{}` is not a boolean: use `true` or `false` (or 1, 0, yes, no)",
                self.text
            ))),
        }
    }

    /// The one number, `concurrency`.
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.text.trim().parse() {
            Ok(value) => visitor.visit_u32(value),
            Err(_) => Err(ValueError::custom(format!(
                "`{}` is not a number: write a whole number such as `4`",
                self.text
            ))),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let items = (self.text.split(self.separators))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|text| Var { text, ..self });
        visitor.visit_seq(SeqDeserializer::new(items))
    }

    /// The one setting of this kind is `docker-files`, whose values are modes.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        if variants.contains(&self.text) {
            return visitor.visit_enum(self.text.into_deserializer());
        }
        let mut names: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
        let last = names.pop().unwrap_or_default();
        Err(ValueError::custom(format!(
            "`{}` is not a mode: use {} or {last}",
            self.text,
            names.join(", ")
        )))
    }

    /// The one table, `env`: `KEY=VALUE` pairs separated by commas.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let mut pairs = Vec::new();
        for item in (self.text.split(',').map(str::trim)).filter(|item| !item.is_empty()) {
            let pair = item.split_once('=').filter(|(key, _)| !key.is_empty());
            pairs.push(pair.ok_or_else(|| {
                ValueError::custom(format!(
                    "`{item}` is not KEY=VALUE: write the variables as `KEY=VALUE,OTHER=VALUE`"
                ))
            })?);
        }
        visitor.visit_map(MapDeserializer::new(pairs.into_iter()))
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct struct identifier ignored_any
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn arch_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Arch>, D::Error> {
    let name = String::deserialize(deserializer)?;
    Arch::from_name(&name).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{name}` is not a Lambda architecture: use `x86_64` or `arm64`"
        ))
    })
}

/// cargo-lambda's keys that mean what this tool's do (`output-format` is `output_format`), as
/// [`cargo_lambda_layer`] reads them: the warning about another key and the docs name them.
pub const CARGO_LAMBDA_KEYS: [&str; 10] = [
    "include",
    "arm64",
    "x86_64",
    "target",
    "output_format",
    "lambda_dir",
    "extension",
    "features",
    "profile",
    "release",
];

/// A cargo-lambda build table (`[package.metadata.lambda.build]`, `[workspace.metadata.lambda.build]`,
/// `CargoLambda.toml`'s `[build]`) as a layer: the keys that mean the same here are read with
/// their meaning there; every other key is named in a warning, with what to do instead.
pub fn cargo_lambda_layer(
    value: &Value,
    source: Source,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Layer> {
    let origin = source.to_string();
    let mut layer = Layer::new(source);
    let Some(table) = value.as_object() else {
        return Ok(layer);
    };
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        origin: origin.clone(),
        message: format!("`{key}`: {message}"),
    };
    let expected = |key: &str, what: &str| invalid(key, format!("expected {what}"));
    let strings = |key: &str, value: &Value| -> Result<Vec<String>> {
        value
            .as_array()
            .and_then(|items| items.iter().map(|i| i.as_str().map(String::from)).collect())
            .ok_or_else(|| expected(key, "a list of strings"))
    };
    let (build, function) = (&mut layer.build, &mut layer.function);
    for (key, value) in table {
        let flag = || {
            value
                .as_bool()
                .ok_or_else(|| expected(key, "`true` or `false`"))
        };
        let text = || value.as_str().ok_or_else(|| expected(key, "a string"));
        match key.replace('-', "_").as_str() {
            "include" => function.include = Some(strings(key, value)?),
            "features" => build.features = Some(strings(key, value)?),
            "arm64" if flag()? => build.arch = Some(Arch::Arm64),
            "x86_64" if flag()? => build.arch = Some(Arch::X86_64),
            "arm64" | "x86_64" => {}
            "target" => {
                let arch = Arch::from_lambda_target(text()?);
                build.arch = Some(arch.map_err(|message| invalid(key, message))?);
            }
            "output_format" => {
                function.zip = Some(match text()?.to_ascii_lowercase().as_str() {
                    "zip" => true,
                    "binary" => false,
                    _ => return Err(expected(key, "`zip` or `binary`")),
                })
            }
            "lambda_dir" => function.outdir = Some(text()?.into()),
            "extension" => function.extension = Some(flag()?),
            "profile" => build.profile = Some(text()?.to_string()),
            // The release profile is the default here.
            "release" => {}
            other => warnings.push(format!(
                "{origin}: cargo-lambda's `{key}` has no equivalent here (ignored); {}",
                match other {
                    "compiler" => "cross builds use zig or a GNU cross gcc on the host, or \
                        `--docker` for a container"
                        .to_string(),
                    _ => format!(
                        "the cargo-lambda keys read are: {}",
                        CARGO_LAMBDA_KEYS.join(", ")
                    ),
                }
            )),
        }
    }
    Ok(layer.rebased(base))
}

/// What the command line asks for: its layer (relative paths as typed; `resolve` takes them
/// from the current directory), and what only the command line says. `cli.rs` makes it from
/// the flags.
#[derive(Debug, Clone)]
pub struct CommandLine {
    pub layer: Layer,
    pub all_features: bool,
    pub no_default_features: bool,
    pub message_format: MessageFormat,
    pub verify: bool,
    pub target_dir: Option<PathBuf>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    /// Set when a flag asks for a container build; its `files` come from the layers.
    pub docker: Option<DockerConfig>,
    pub invoke_with: Option<PathBuf>,
    /// `--image`; its `base` comes from the layers.
    pub image: Option<ImageConfig>,
}

/// The layers below the environment, each table read once, however many functions it serves.
struct Tables<'p> {
    /// `[workspace.metadata.lambda-build]`, then cargo-lambda's workspace tables.
    workspace: Vec<Layer>,
    /// Per package manifest: its own table then cargo-lambda's, and its `bin.NAME` tables.
    packages: BTreeMap<&'p Path, (Vec<Layer>, BTreeMap<String, Layer>)>,
}

impl<'p> Tables<'p> {
    fn read(project: &'p Project, warnings: &mut Vec<String>) -> Result<Tables<'p>> {
        let root = &project.workspace_root;
        let table = format!(
            "`[workspace.metadata.lambda-build]` in `{}`",
            root.join("Cargo.toml").display()
        );
        let source = Source::Workspace(table.clone());
        let (own, bins) = Layer::read_table(&project.workspace_config, &source, root, warnings)?;
        if !bins.is_empty() {
            warnings.push(format!(
                "{table}: unknown key `bin` (ignored); per-binary tables go in the package: \
                 `[package.metadata.lambda-build.bin.NAME]`"
            ));
        }
        // cargo-lambda's tables sit under this tool's own at each level.
        let mut workspace = vec![own];
        for (origin, table) in &project.cargo_lambda {
            let source = Source::Workspace(origin.clone());
            workspace.push(cargo_lambda_layer(table, source, root, warnings)?);
        }
        let mut packages = BTreeMap::new();
        for function in &project.functions {
            let manifest = function.manifest_path.as_path();
            if packages.contains_key(manifest) {
                continue;
            }
            let of_package = |table: &str| {
                Source::Package(format!(
                    "`[package.metadata.{table}]` of package `{}` (`{}`)",
                    function.package,
                    manifest.display()
                ))
            };
            let root = function.package_root();
            let (own, bins) = Layer::read_table(
                &function.package_config,
                &of_package("lambda-build"),
                root,
                warnings,
            )?;
            let cargo_lambda = cargo_lambda_layer(
                &function.cargo_lambda_config,
                of_package("lambda.build"),
                root,
                warnings,
            )?;
            packages.insert(manifest, (vec![own, cargo_lambda], bins));
        }
        Ok(Tables {
            workspace,
            packages,
        })
    }

    /// `function`'s layers, highest first: `top`, then its `bin.NAME` table, its package's
    /// tables, the workspace's.
    fn stack<'a>(&'a self, top: &'a [Layer], function: &'a Function) -> Stack<'a> {
        let (package, bins) = &self.packages[function.manifest_path.as_path()];
        let layers = (top.iter())
            .chain(bins.get(&function.bin))
            .chain(package)
            .chain(&self.workspace)
            .collect();
        Stack { function, layers }
    }
}

/// One function's layers, highest first: for each key, the first that sets it wins.
struct Stack<'a> {
    function: &'a Function,
    layers: Vec<&'a Layer>,
}

impl<'a> Stack<'a> {
    /// The layer that sets a key, if one does.
    fn setter<T>(&self, key: impl Fn(&Layer) -> &Option<T>) -> Option<&'a Layer> {
        self.layers
            .iter()
            .copied()
            .find(|layer| key(layer).is_some())
    }

    /// The value of a key, from the layer that sets it.
    fn get<T: Clone>(&self, key: impl Fn(&Layer) -> &Option<T>) -> Option<T> {
        self.layers.iter().find_map(|layer| key(layer).clone())
    }

    fn function_config(&self, cwd: &Path) -> FunctionConfig {
        FunctionConfig {
            package: self.function.package.clone(),
            bin: self.function.bin.clone(),
            zip: self.get(|l| &l.function.zip).unwrap_or(false),
            // `mix lambda.build` writes into the current directory by default.
            outdir: (self.get(|l| &l.function.outdir)).unwrap_or_else(|| cwd.to_path_buf()),
            include: self.get(|l| &l.function.include).unwrap_or_default(),
            extension: self.get(|l| &l.function.extension).unwrap_or(false),
            layers: self.get(|l| &l.function.layers).unwrap_or_default(),
            run: RunSettings {
                env: self.env(),
                concurrency: self.get(|l| &l.function.concurrency),
            },
        }
    }

    /// Unlike a list, the `env` tables add up, variable by variable, as cargo-lambda's do:
    /// the workspace's `RUST_LOG` stays when a package sets its own `TABLE_NAME`.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = BTreeMap::new();
        for table in self
            .layers
            .iter()
            .rev()
            .filter_map(|l| l.function.env.as_ref())
        {
            env.extend(table.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env.into_iter().collect()
    }
}

/// The value a build-wide key has for every function (`default` where no layer sets it): one
/// cargo invocation builds them all, so two packages that differ are refused, naming both.
fn agree<T: Clone + PartialEq + fmt::Display>(
    key: &'static str,
    stacks: &[Stack],
    default: T,
    setting: impl Fn(&Layer) -> &Option<T>,
) -> Result<T> {
    let mut first: Option<(T, &Function)> = None;
    for stack in stacks {
        let value = stack.get(&setting).unwrap_or_else(|| default.clone());
        match &first {
            Some((seen, other)) if *seen != value => {
                return Err(ConfigError::Conflict {
                    key,
                    packages: [other.package.clone(), stack.function.package.clone()],
                    values: [seen.to_string(), value.to_string()],
                });
            }
            Some(_) => {}
            None => first = Some((value, stack.function)),
        }
    }
    Ok(first.map_or(default, |(value, _)| value))
}

/// Every function's features, each once. A package's own features name its features: with
/// several packages in one invocation, cargo needs them qualified as `package/feature`.
fn features(stacks: &[Stack]) -> Vec<String> {
    let packages: BTreeSet<&Path> = (stacks.iter())
        .map(|stack| stack.function.manifest_path.as_path())
        .collect();
    let mut features: Vec<String> = Vec::new();
    for stack in stacks {
        let Some(layer) = stack.setter(|l| &l.build.features) else {
            continue;
        };
        let qualify = packages.len() > 1 && matches!(layer.source, Source::Package(_));
        for feature in layer.build.features.iter().flatten() {
            let feature = if qualify && !feature.contains('/') {
                format!("{}/{feature}", stack.function.package)
            } else {
                feature.clone()
            };
            if !features.contains(&feature) {
                features.push(feature);
            }
        }
    }
    features
}

/// The features and the profile that a layer other than the command line gave, named with
/// where they were set (`` features `test` from `[build]` in `/p/CargoLambda.toml` ``).
fn passed_to_cargo(stacks: &[Stack]) -> Vec<String> {
    let mut passed = Vec::new();
    for stack in stacks {
        let given = [
            stack.setter(|l| &l.build.features).map(|layer| {
                let features = layer.build.features.iter().flatten();
                let names: Vec<String> = features.map(|f| format!("`{f}`")).collect();
                (layer, "features", names.join(", "))
            }),
            stack.setter(|l| &l.build.profile).map(|layer| {
                let profile = layer.build.profile.as_deref().unwrap_or_default();
                (layer, "profile", format!("`{profile}`"))
            }),
        ];
        for (layer, key, value) in given.into_iter().flatten() {
            if layer.source == Source::CommandLine || value.is_empty() {
                continue;
            }
            let line = format!("{key} {value} from {}", layer.source.naming(key));
            if !passed.contains(&line) {
                passed.push(line);
            }
        }
    }
    passed
}

impl BuildConfig {
    /// Merges the command line, the environment and the project's Cargo.toml tables. `ui` is
    /// the one `main` worked out from the same flags (it colours errors before a config exists).
    pub fn resolve(
        command_line: impl Into<CommandLine>,
        env: &Env,
        ui: Ui,
        project: &Project,
    ) -> Result<BuildConfig> {
        let flags: CommandLine = command_line.into();
        let mut warnings = Vec::new();
        let tables = Tables::read(project, &mut warnings)?;
        let top = [
            flags.layer.rebased(&env.cwd),
            Layer::from_env(&env.config_vars(), &env.cwd)?,
        ];
        let stacks: Vec<Stack> = (project.functions.iter())
            .map(|function| tables.stack(&top, function))
            .collect();

        let arch = agree("arch", &stacks, Arch::default(), |l| &l.build.arch)?;
        let profile = agree("profile", &stacks, "release".into(), |l| &l.build.profile)?;
        let small = agree("small", &stacks, false, |l| &l.build.small)?;
        let per_package = agree("per-package", &stacks, false, |l| &l.build.per_package)?;
        let files = agree("docker-files", &stacks, DockerFiles::Auto, |l| {
            &l.build.docker_files
        })?;
        let image_base = agree(
            "image-base",
            &stacks,
            crate::lambda::IMAGE_BASE.to_owned(),
            |l| &l.build.image_base,
        )?;
        let files_origin = (stacks.first())
            .and_then(|stack| stack.setter(|l| &l.build.docker_files))
            .map(|layer| layer.source.naming("docker-files"));
        Ok(BuildConfig {
            arch,
            small,
            per_package,
            profile,
            features: Features {
                features: features(&stacks),
                all_features: flags.all_features,
                no_default_features: flags.no_default_features,
            },
            functions: (stacks.iter())
                .map(|stack| stack.function_config(&env.cwd))
                .collect(),
            message_format: flags.message_format,
            verify: flags.verify,
            target_dir: flags.target_dir.map(|dir| env.cwd.join(dir)),
            locked: flags.locked,
            offline: flags.offline,
            frozen: flags.frozen,
            ui,
            source_date_epoch: env
                .source_date_epoch()
                .map(|value| value.to_string_lossy().into_owned()),
            docker: flags.docker.map(|docker| DockerConfig {
                dockerfile: docker.dockerfile.map(|path| env.cwd.join(path)),
                files,
                files_origin,
                ..docker
            }),
            invoke_with: flags.invoke_with.map(|file| env.cwd.join(file)),
            image: flags.image.map(|image| ImageConfig {
                base: image_base,
                out: image.out.map(|dir| env.cwd.join(dir)),
                ..image
            }),
            warnings,
            passed_to_cargo: passed_to_cargo(&stacks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use serde_json::{Value, json};

    fn env(terminal: bool, ci: bool) -> Env {
        let vars: &[(&str, &str)] = if ci { &[("CI", "true")] } else { &[] };
        Env::new(PathBuf::from("/home/me/fn"), terminal, vars.iter().copied())
    }

    fn env_with(vars: &[(&str, &str)]) -> Env {
        Env::new(PathBuf::from("/home/me/fn"), false, vars.iter().copied())
    }

    /// Every key [`CARGO_LAMBDA_KEYS`] names (the warning and the docs list) is read without a
    /// warning, and a key it does not name is warned about: the list is the reader's.
    #[test]
    fn the_cargo_lambda_keys_named_are_the_keys_read() {
        let value_of = |key: &str| match key {
            "include" | "features" => json!(["a"]),
            "target" => json!("aarch64-unknown-linux-gnu"),
            "output_format" => json!("zip"),
            "lambda_dir" | "profile" => json!("x"),
            _ => json!(true),
        };
        let read = |key: &str| {
            let mut warnings = Vec::new();
            let table = json!({ key: value_of(key) });
            let source = Source::Workspace("`CargoLambda.toml`".into());
            cargo_lambda_layer(&table, source, Path::new("/ws"), &mut warnings).unwrap();
            warnings
        };
        for key in CARGO_LAMBDA_KEYS {
            assert_eq!(read(key), Vec::<String>::new(), "{key}");
        }
        let warnings = read("deploy_region");
        assert!(
            warnings[0].contains(&CARGO_LAMBDA_KEYS.join(", ")),
            "{warnings:?}"
        );
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

    // the expected paths are written with `/`
    #[cfg(unix)]
    #[test]
    fn the_environment_reads_the_keys_of_the_tables() {
        let vars = [
            ("CARGO_LAMBDA_BUILD_PER_PACKAGE", "on"),
            ("CARGO_LAMBDA_BUILD_LAYERS", "a.zip, /opt/b.zip,"),
            ("CARGO_LAMBDA_BUILD_FEATURES", "x,y z"),
            ("CARGO_LAMBDA_BUILD_INCLUDE", "my file.txt"),
            // Not a key's variable: `zip` is `CARGO_LAMBDA_BUILD_ZIP`, and `bin` is no key.
            ("CARGO_LAMBDA_BUILD_zip", "true"),
            ("CARGO_LAMBDA_BUILD_BIN", "x"),
        ];
        let c = resolve(&[], &env_with(&vars), &one()).unwrap();
        assert!(c.per_package && !c.functions[0].zip);
        assert_eq!(
            c.functions[0].layers,
            [
                PathBuf::from("/home/me/fn/a.zip"),
                PathBuf::from("/opt/b.zip")
            ]
        );
        assert_eq!(c.features.features, ["x", "y", "z"]);
        assert_eq!(c.functions[0].include, ["my file.txt"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn concurrency_is_a_function_setting_a_binary_may_change() {
        let package = json!({ "concurrency": 8, "bin": { "worker": { "concurrency": 2 } } });
        let p = project(
            &[("app", "api", package.clone()), ("app", "worker", package)],
            json!({}),
        );
        let c = resolve(&[], &env_with(&[]), &p).unwrap();
        assert_eq!(c.functions[0].run.concurrency, Some(8));
        assert_eq!(c.functions[1].run.concurrency, Some(2));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let vars = [("CARGO_LAMBDA_BUILD_CONCURRENCY", "4")];
        let c = resolve(&[], &env_with(&vars), &one()).unwrap();
        assert_eq!(c.functions[0].run.concurrency, Some(4));
    }

    #[test]
    fn env_tables_add_up_variable_by_variable_the_higher_winning() {
        let package = json!({
            "env": { "TABLE": "orders", "LEVEL": "package" },
            "bin": { "worker": { "env": { "LEVEL": "worker" } } },
        });
        let workspace = json!({ "env": { "RUST_LOG": "info", "TABLE": "workspace" } });
        let p = project(
            &[("app", "api", package.clone()), ("app", "worker", package)],
            workspace,
        );
        let vars = [("CARGO_LAMBDA_BUILD_ENV", "FROM_ENV=1, TABLE=env")];
        let c = resolve(&[], &env_with(&vars), &p).unwrap();
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            c.functions[0].run.env,
            pairs(&[
                ("FROM_ENV", "1"),
                ("LEVEL", "package"),
                ("RUST_LOG", "info"),
                ("TABLE", "env")
            ])
        );
        assert_eq!(c.functions[1].run.env[1], ("LEVEL".into(), "worker".into()));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        let bad = [("CARGO_LAMBDA_BUILD_ENV", "A=1,oops")];
        let err = resolve(&[], &env_with(&bad), &p).unwrap_err().to_string();
        assert!(err.contains("`oops` is not KEY=VALUE"), "{err}");
        let p = project(&[("app", "api", json!({ "env": { "N": 1 } }))], Value::Null);
        let err = resolve(&[], &env(false, false), &p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`env.N`"), "{err}");
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
            "unknown key `bin.api.arch` (ignored); the keys are: zip, outdir, include, layers, extension, env, concurrency",
        ] {
            assert!(
                warnings.contains(expected),
                "`{expected}` missing from:\n{warnings}"
            );
        }
        assert_eq!(c.warnings.len(), 3, "{warnings}");
        // The list comes from the settings structs themselves, so it cannot miss a key.
        assert!(
            warnings.contains(
                "unknown key `zipp` (ignored); the keys are: arch, profile, small, features, \
                 per-package, docker-files, image-base, zip, outdir, include, layers, extension, \
                 env, concurrency, bin.NAME"
            ),
            "{warnings}"
        );
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
