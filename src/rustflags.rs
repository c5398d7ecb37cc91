//! rustc's flags as cargo takes them, and the flags the tool adds, which reach rustc without
//! replacing the user's.
//!
//! cargo takes rustc's flags from one source: `CARGO_ENCODED_RUSTFLAGS`, else `RUSTFLAGS`, else
//! `target.<triple>.rustflags` with every matching `target.'cfg(..)'.rustflags` (and
//! `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`), else `build.rustflags` (and `CARGO_BUILD_RUSTFLAGS`), the
//! config files merged as cargo merges them ([`rustc_flags`], from facts passed in, so no cargo
//! runs). `native_cpu` reads them for a CPU pin; this module adds to them.
//!
//! The same source and toolchain must give the same `bootstrap` bytes on any engine and from any
//! checkout directory, so a laptop and a CI agree on `CodeSha256`. rustc embeds source paths in
//! the binary (panic locations, `file!()`, debug info), and two of them differ between a host
//! build, a container on a local engine and one on an engine that cannot see the files:
//!
//! - cargo's home, where the registry's and git's sources are unpacked (`~/.cargo` on the host,
//!   `/lambda-build/cargo` in a container): mapped to `/cargo`;
//! - the build's target directory, where build scripts write generated code (`OUT_DIR`): mapped
//!   to `target`.
//!
//! Two others are left alone, on purpose:
//!
//! - the workspace root: cargo names a member's files to rustc relative to it (`src/main.rs`)
//!   already, and a flag that names it would differ between checkouts, so two checkouts sharing
//!   a target directory (`CARGO_TARGET_DIR`) would recompile every dependency each time they
//!   take turns (rustflags are part of cargo's fingerprint);
//! - path dependencies outside the workspace: cargo hashes their absolute path into the
//!   metadata of every crate (symbol names), so they give the same bytes only at the same path;
//!   every engine keeps that path (copy mode mirrors them at their host paths), and their
//!   compiler messages keep naming the files the user's editor knows.
//!
//! Where the tool's flags go: setting `RUSTFLAGS` would silently drop a project's
//! `[build] rustflags`, since cargo reads one source only. So they join the source cargo uses: after the user's in
//! `CARGO_ENCODED_RUSTFLAGS` when either variable is set, else through `--config` into the
//! config table cargo reads, whose arrays cargo merges with the user's. When the user's flags
//! remap paths already, the user's mapping stands and the tool adds none; so it does when
//! sccache wraps rustc (see [`channel`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cargo_metadata::cargo_platform::{Cfg, Platform};

use crate::arch::Arch;
use crate::env::Env;

/// What cargo's home reads as in the binary.
pub const CARGO_HOME_AS: &str = "/cargo";
/// What the target directory reads as in the binary.
pub const TARGET_DIR_AS: &str = "target";

/// The paths of one build (host or container) that rustc sees and the binary must not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    pub cargo_home: PathBuf,
    pub target_dir: PathBuf,
}

impl PathMap {
    /// `--remap-path-prefix=FROM=TO`, one per path; rustc applies the last that matches, so the
    /// target directory (which may sit in cargo's home) comes last.
    pub fn flags(&self) -> Vec<String> {
        [
            (&self.cargo_home, CARGO_HOME_AS),
            (&self.target_dir, TARGET_DIR_AS),
        ]
        .into_iter()
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.to_string_lossy()))
        .collect()
    }
}

/// How the flags reach rustc: through the source cargo takes them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `CARGO_ENCODED_RUSTFLAGS` or `RUSTFLAGS` is set: these are its flags (split as cargo
    /// splits them), and `CARGO_ENCODED_RUSTFLAGS` carries them with the tool's after them.
    Env(Vec<String>),
    /// `target.<triple>.rustflags` or a matching `target.'cfg(..)'.rustflags` is set: the tool's
    /// go there through `--config`.
    TargetConfig,
    /// Only `build.rustflags`, or nothing: the tool's go there through `--config`.
    BuildConfig,
}

/// The tool's rustc flags for one build, and how they reach rustc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rustflags {
    pub map: PathMap,
    pub channel: Channel,
}

impl Rustflags {
    /// `--config` for cargo's command line, unless the flags go through the environment.
    pub fn config_arg(&self, arch: Arch) -> Option<OsString> {
        let key = match self.channel {
            Channel::Env(_) => return None,
            Channel::TargetConfig => format!("target.{}.rustflags", arch.triple()),
            Channel::BuildConfig => "build.rustflags".to_string(),
        };
        // A JSON array of strings is a TOML array of basic strings, escapes included.
        let value = serde_json::to_string(&self.map.flags()).unwrap_or_default();
        Some(format!("{key}={value}").into())
    }

    /// `CARGO_ENCODED_RUSTFLAGS` with the user's flags and then the tool's, when the user set a
    /// variable.
    pub fn env(&self) -> Option<(OsString, OsString)> {
        let Channel::Env(user) = &self.channel else {
            return None;
        };
        let all: Vec<String> = user.iter().cloned().chain(self.map.flags()).collect();
        Some(("CARGO_ENCODED_RUSTFLAGS".into(), all.join("\x1f").into()))
    }
}

/// Where this build's rustc flags come from, as cargo decides it from the variables it runs with
/// and its config files. `None` when those flags remap paths already, or when sccache wraps
/// rustc: sccache before 0.10 does not cache a compile given `--remap-path-prefix`
/// (mozilla/sccache#2270), and who set it up wants the cache.
pub fn channel(
    arch: Arch,
    vars: &BTreeMap<String, String>,
    configs: &[ConfigFile],
) -> Option<Channel> {
    if Path::new(&rustc_wrapper(vars, configs))
        .file_stem()
        .is_some_and(|stem| stem == "sccache")
    {
        return None;
    }
    let (source, flags) = rustc_flags(arch, vars, configs);
    let remaps = flags.iter().any(|flag| {
        flag.text == "--remap-path-prefix" || flag.text.starts_with("--remap-path-prefix=")
    });
    if remaps {
        return None;
    }
    Some(match source {
        Source::EncodedVar | Source::Var => {
            Channel::Env(flags.into_iter().map(|flag| flag.text).collect())
        }
        Source::Target => Channel::TargetConfig,
        Source::Build => Channel::BuildConfig,
    })
}

/// The channel of a build on the host: its variables, and the config files its cargo reads
/// from the current directory.
pub fn host_channel(env: &Env, arch: Arch) -> Option<Channel> {
    let (vars, paths) = host_view(env);
    channel(arch, &vars, &read_configs(&paths))
}

/// What cargo on the host sees: every variable (empty ones too, which cargo counts as set),
/// and the config files from the current directory up, then cargo's home's.
pub fn host_view(env: &Env) -> (BTreeMap<String, String>, Vec<PathBuf>) {
    let vars = env
        .vars()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .collect();
    let paths = config_paths(&env.cwd, None, env.cargo_home().as_deref());
    (vars, paths)
}

/// The wrapper cargo runs rustc through: `RUSTC_WRAPPER`, else `CARGO_BUILD_RUSTC_WRAPPER`, else
/// `build.rustc-wrapper` of the nearest config file that sets it; empty for none.
fn rustc_wrapper(vars: &BTreeMap<String, String>, configs: &[ConfigFile]) -> String {
    vars.get("RUSTC_WRAPPER")
        .or_else(|| vars.get("CARGO_BUILD_RUSTC_WRAPPER"))
        .cloned()
        .or_else(|| {
            configs.iter().find_map(|config| {
                let wrapper = config.table.get("build")?.get("rustc-wrapper")?;
                wrapper.as_str().map(String::from)
            })
        })
        .unwrap_or_default()
}

/// Where a flag was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A variable of the environment cargo runs in.
    Var(String),
    /// A key of one of cargo's configuration files.
    Config { path: PathBuf, key: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Var(name) => write!(f, "`{name}`"),
            Origin::Config { path, key } => write!(f, "`{key}` in `{}`", path.display()),
        }
    }
}

/// One of cargo's configuration files, parsed.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub table: toml::Table,
}

/// The configuration files cargo reads, nearest first: in `start` and each directory above it
/// (up to `stop`, when given), `.cargo/config` or else `.cargo/config.toml` (cargo takes the
/// name without extension when both are there); then the one in `cargo_home`, unless the walk
/// found it already.
pub fn config_paths(start: &Path, stop: Option<&Path>, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let in_dir = |dir: &Path| {
        ["config", "config.toml"]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    };
    let mut paths = Vec::new();
    for dir in start.ancestors() {
        paths.extend(in_dir(&dir.join(".cargo")));
        if Some(dir) == stop {
            break;
        }
    }
    if let Some(home) = cargo_home.and_then(in_dir)
        && !paths.contains(&home)
    {
        paths.push(home);
    }
    paths
}

/// The files that parse; cargo itself says what is wrong with the others when it starts.
pub fn read_configs(paths: &[PathBuf]) -> Vec<ConfigFile> {
    paths
        .iter()
        .filter_map(|path| {
            let table = std::fs::read_to_string(path).ok()?.parse().ok()?;
            Some(ConfigFile {
                path: path.clone(),
                table,
            })
        })
        .collect()
}

/// A flag as cargo or cc will pass it, and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub origin: Origin,
}

pub fn words(value: &str, origin: &Origin) -> Vec<Token> {
    value
        .split_whitespace()
        .map(|word| Token {
            text: word.to_owned(),
            origin: origin.clone(),
        })
        .collect()
}

/// The source cargo takes rustc's flags from: the first that is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    EncodedVar,
    Var,
    /// `target.<triple>.rustflags`, the matching `target.'cfg(..)'.rustflags`, or the variable.
    Target,
    /// `build.rustflags` or its variable, or nothing at all.
    Build,
}

/// rustc's flags for the target (`vars`: every variable cargo runs with, empty ones too;
/// `configs`: its config files, nearest first), from the one source cargo takes them from.
pub fn rustc_flags(
    arch: Arch,
    vars: &BTreeMap<String, String>,
    configs: &[ConfigFile],
) -> (Source, Vec<Token>) {
    let var = |name: &str| {
        let origin = Origin::Var(name.to_owned());
        vars.get(name).map(|value| (value.as_str(), origin))
    };
    if let Some((value, origin)) = var("CARGO_ENCODED_RUSTFLAGS") {
        let flags = value
            .split('\x1f')
            .filter(|flag| !flag.is_empty())
            .map(|flag| Token {
                text: flag.to_owned(),
                origin: origin.clone(),
            })
            .collect();
        return (Source::EncodedVar, flags);
    }
    if let Some((value, origin)) = var("RUSTFLAGS") {
        return (Source::Var, words(value, &origin));
    }
    // `target.<triple>.rustflags` (its variable's flags after the files'), then every
    // `target.'cfg(..)'` that matches, in key order; if any is set, `build.rustflags` is not read.
    let triple = arch.triple();
    let mut target = config_flags(configs, &["target", triple, "rustflags"]);
    let name = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        triple.to_uppercase().replace(['-', '.'], "_")
    );
    if let Some((value, origin)) = var(&name) {
        target.get_or_insert_default().extend(words(value, &origin));
    }
    let cfgs: BTreeSet<&String> = configs
        .iter()
        .filter_map(|file| file.table.get("target")?.as_table())
        .flat_map(|table| table.keys())
        .filter(|key| cfg_matches(key, arch))
        .collect();
    for key in cfgs {
        if let Some(flags) = config_flags(configs, &["target", key, "rustflags"]) {
            target.get_or_insert_default().extend(flags);
        }
    }
    // An empty list is no flags: cargo reads `build.rustflags` then.
    if let Some(flags) = target.filter(|flags| !flags.is_empty()) {
        return (Source::Target, flags);
    }
    let mut build = config_flags(configs, &["build", "rustflags"]);
    if let Some((value, origin)) = var("CARGO_BUILD_RUSTFLAGS") {
        build.get_or_insert_default().extend(words(value, &origin));
    }
    (Source::Build, build.unwrap_or_default())
}

/// The flags at `key` merged over the files as cargo merges them: lists are joined, the
/// farthest file's first; a string (flags separated by spaces) replaces what farther files
/// set. `None` when no file sets it.
fn config_flags(configs: &[ConfigFile], key: &[&str]) -> Option<Vec<Token>> {
    let shown = key
        .iter()
        .map(|part| match part.starts_with("cfg(") {
            true => format!("'{part}'"),
            false => (*part).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(".");
    let (last, tables) = key.split_last()?;
    let mut flags: Option<Vec<Token>> = None;
    for file in configs.iter().rev() {
        let mut value = Some(&file.table);
        for part in tables {
            value = value.and_then(|table| table.get(*part)?.as_table());
        }
        let Some(value) = value.and_then(|table| table.get(*last)) else {
            continue;
        };
        let origin = Origin::Config {
            path: file.path.clone(),
            key: shown.clone(),
        };
        let found = flags.get_or_insert_default();
        match value {
            toml::Value::String(value) => *found = words(value, &origin),
            toml::Value::Array(items) => {
                found.extend(
                    items
                        .iter()
                        .filter_map(toml::Value::as_str)
                        .map(|flag| Token {
                            text: flag.to_owned(),
                            origin: origin.clone(),
                        }),
                );
            }
            // cargo refuses the file and says why.
            _ => {}
        }
    }
    flags
}

/// What `rustc --print cfg --target <triple>` says (rustc 1.9x), for `target.'cfg(..)'` tables.
fn target_cfg(arch: Arch) -> Vec<Cfg> {
    let common = [
        "debug_assertions",
        "panic=\"unwind\"",
        "target_abi=\"\"",
        "target_endian=\"little\"",
        "target_env=\"gnu\"",
        "target_family=\"unix\"",
        "target_has_atomic=\"8\"",
        "target_has_atomic=\"16\"",
        "target_has_atomic=\"32\"",
        "target_has_atomic=\"64\"",
        "target_has_atomic=\"ptr\"",
        "target_os=\"linux\"",
        "target_pointer_width=\"64\"",
        "target_vendor=\"unknown\"",
        "unix",
    ];
    let own: &[&str] = match arch {
        Arch::X86_64 => &[
            "target_arch=\"x86_64\"",
            "target_feature=\"fxsr\"",
            "target_feature=\"sse\"",
            "target_feature=\"sse2\"",
        ],
        Arch::Arm64 => &[
            "target_arch=\"aarch64\"",
            "target_feature=\"neon\"",
            "target_has_atomic=\"128\"",
        ],
    };
    common
        .iter()
        .chain(own)
        .filter_map(|cfg| Cfg::from_str(cfg).ok())
        .collect()
}

/// Whether a `target` table's key is a `cfg(..)` that the target matches.
fn cfg_matches(key: &str, arch: Arch) -> bool {
    key.starts_with("cfg(")
        && Platform::from_str(key).is_ok_and(|p| p.matches(arch.triple(), &target_cfg(arch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(set: &[(&str, &str)]) -> BTreeMap<String, String> {
        set.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn config(text: &str) -> ConfigFile {
        ConfigFile {
            path: "/ws/.cargo/config.toml".into(),
            table: text.parse().unwrap(),
        }
    }

    fn map() -> PathMap {
        PathMap {
            cargo_home: "/home/me/.cargo".into(),
            target_dir: "/home/me/fn/target".into(),
        }
    }

    #[test]
    fn cargo_home_and_target_dir_are_mapped_the_target_dir_last() {
        assert_eq!(
            map().flags(),
            [
                "--remap-path-prefix=/home/me/.cargo=/cargo",
                "--remap-path-prefix=/home/me/fn/target=target"
            ]
        );
    }

    #[test]
    fn the_tools_flags_join_the_source_cargo_uses() {
        let x86 = Arch::X86_64;
        let arm = Arch::Arm64;
        let build = [config(
            "[build]\nrustflags = [\"--cfg\", \"tokio_unstable\"]\n",
        )];
        assert_eq!(
            channel(x86, &vars(&[("RUSTFLAGS", " -C  debuginfo=1 ")]), &build),
            Some(Channel::Env(vec!["-C".into(), "debuginfo=1".into()]))
        );
        // Set but empty is set: cargo uses no flags then, and no file.
        assert_eq!(
            channel(x86, &vars(&[("RUSTFLAGS", "")]), &build),
            Some(Channel::Env(Vec::new()))
        );
        assert_eq!(
            channel(
                x86,
                &vars(&[
                    ("CARGO_ENCODED_RUSTFLAGS", "-C\x1flink-arg=-s x"),
                    ("RUSTFLAGS", "--cfg ignored")
                ]),
                &build
            ),
            Some(Channel::Env(vec!["-C".into(), "link-arg=-s x".into()]))
        );
        assert_eq!(channel(x86, &vars(&[]), &build), Some(Channel::BuildConfig));
        assert_eq!(channel(x86, &vars(&[]), &[]), Some(Channel::BuildConfig));
        // A target table that matches takes the flags; another target's leaves `[build]` in
        // charge, and an empty list is no flags.
        let mold = config(
            "[target.x86_64-unknown-linux-gnu]\nrustflags = \"-C link-arg=-fuse-ld=mold\"\n",
        );
        assert_eq!(
            channel(x86, &vars(&[]), std::slice::from_ref(&mold)),
            Some(Channel::TargetConfig)
        );
        assert_eq!(
            channel(arm, &vars(&[]), &[mold, build[0].clone()]),
            Some(Channel::BuildConfig)
        );
        let by_cfg = [config(
            "[target.'cfg(all(target_os = \"linux\", target_arch = \"aarch64\"))']\n\
             rustflags = [\"-C\", \"target-cpu=neoverse-n1\"]\n",
        )];
        assert_eq!(
            channel(arm, &vars(&[]), &by_cfg),
            Some(Channel::TargetConfig)
        );
        assert_eq!(
            channel(x86, &vars(&[]), &by_cfg),
            Some(Channel::BuildConfig)
        );
        let empty = [config(
            "[target.x86_64-unknown-linux-gnu]\nrustflags = []\n",
        )];
        assert_eq!(channel(x86, &vars(&[]), &empty), Some(Channel::BuildConfig));
        let from_env = vars(&[("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C x")]);
        assert_eq!(channel(arm, &from_env, &[]), Some(Channel::TargetConfig));
        assert_eq!(channel(x86, &from_env, &[]), Some(Channel::BuildConfig));
    }

    #[test]
    fn a_users_own_mapping_and_sccache_stand() {
        let x86 = Arch::X86_64;
        for (var, value) in [
            ("RUSTFLAGS", "--remap-path-prefix=/home/me=~"),
            (
                "CARGO_ENCODED_RUSTFLAGS",
                "--remap-path-prefix\x1f/home/me=~",
            ),
            ("CARGO_BUILD_RUSTFLAGS", "--remap-path-prefix=/a=b"),
        ] {
            assert_eq!(channel(x86, &vars(&[(var, value)]), &[]), None, "{var}");
        }
        let in_file = [config(
            "[target.'cfg(unix)']\nrustflags = [\"--remap-path-prefix\", \"/a=b\"]\n",
        )];
        assert_eq!(channel(x86, &vars(&[]), &in_file), None);
        // sccache wraps rustc: its cache comes first.
        for wrapper in [
            vars(&[("RUSTC_WRAPPER", "/usr/bin/sccache")]),
            vars(&[("CARGO_BUILD_RUSTC_WRAPPER", "sccache")]),
        ] {
            assert_eq!(channel(x86, &wrapper, &[]), None);
        }
        let in_config = [config("[build]\nrustc-wrapper = \"sccache\"\n")];
        assert_eq!(channel(x86, &vars(&[]), &in_config), None);
        // An empty variable turns the configured wrapper off.
        assert_eq!(
            channel(x86, &vars(&[("RUSTC_WRAPPER", "")]), &in_config),
            Some(Channel::BuildConfig)
        );
        assert_eq!(
            channel(x86, &vars(&[("RUSTC_WRAPPER", "cachepot")]), &[]),
            Some(Channel::BuildConfig)
        );
        // A mapping in a source cargo does not use does not count.
        let unused = [config(
            "[build]\nrustflags = [\"--remap-path-prefix=/a=b\"]\n",
        )];
        assert_eq!(
            channel(x86, &vars(&[("RUSTFLAGS", "-C x")]), &unused),
            Some(Channel::Env(vec!["-C".into(), "x".into()]))
        );
    }

    #[test]
    fn the_flags_render_where_the_channel_says() {
        let arch = Arch::Arm64;
        let flags = |channel| Rustflags {
            map: map(),
            channel,
        };
        assert_eq!(
            flags(Channel::BuildConfig).config_arg(arch).unwrap(),
            "build.rustflags=[\"--remap-path-prefix=/home/me/.cargo=/cargo\",\
             \"--remap-path-prefix=/home/me/fn/target=target\"]"
        );
        assert!(flags(Channel::BuildConfig).env().is_none());
        let target = flags(Channel::TargetConfig).config_arg(arch).unwrap();
        assert!(
            target
                .to_string_lossy()
                .starts_with("target.aarch64-unknown-linux-gnu.rustflags=[\"--remap"),
            "{target:?}"
        );
        let env = flags(Channel::Env(vec!["--cfg".into(), "a b".into()]));
        assert!(env.config_arg(arch).is_none());
        assert_eq!(
            env.env().unwrap(),
            (
                "CARGO_ENCODED_RUSTFLAGS".into(),
                "--cfg\x1fa b\x1f--remap-path-prefix=/home/me/.cargo=/cargo\x1f\
                 --remap-path-prefix=/home/me/fn/target=target"
                    .into()
            )
        );
        // A Windows path's backslashes stay one each once cargo reads the TOML.
        let windows = Rustflags {
            map: PathMap {
                cargo_home: r"C:\Users\me\.cargo".into(),
                target_dir: r"C:\Users\me\fn\target".into(),
            },
            channel: Channel::BuildConfig,
        };
        let arg = windows.config_arg(arch).unwrap();
        let (_, value) = arg.to_str().unwrap().split_once('=').unwrap();
        let parsed: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
        assert_eq!(
            parsed["v"][0].as_str(),
            Some(r"--remap-path-prefix=C:\Users\me\.cargo=/cargo")
        );
    }
}
