//! The flags the tool adds to rustc's, and the way they reach rustc without replacing the
//! user's.
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
//! Where the flags go: cargo takes rustc's flags from the first of `CARGO_ENCODED_RUSTFLAGS`,
//! `RUSTFLAGS`, `target.<triple>.rustflags` (with every matching `target.'cfg(..)'.rustflags`)
//! and `build.rustflags` that is set, and ignores the others; setting `RUSTFLAGS` would silently
//! drop a project's `[build] rustflags`. So they join the source cargo uses: after the user's in
//! `CARGO_ENCODED_RUSTFLAGS` when either variable is set, else through `--config` into the
//! config table cargo reads, whose arrays cargo merges with the user's. When the user's flags
//! remap paths already, the user's mapping stands and the tool adds none; so it does when
//! sccache wraps rustc (see [`channel`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cargo_platform::{Cfg, CfgExpr};

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

/// Where this build's rustc flags come from, as cargo decides it, from the variables (`var`
/// answers `Some` for a variable that is set, empty included) and the config files cargo reads
/// (any order). `None` when those flags remap paths already, or when sccache wraps rustc:
/// sccache before 0.10 does not cache a compile given `--remap-path-prefix`
/// (mozilla/sccache#2270), and who set it up wants the cache.
pub fn channel(
    var: &dyn Fn(&str) -> Option<String>,
    arch: Arch,
    configs: &[toml::Table],
) -> Option<Channel> {
    if Path::new(&rustc_wrapper(var, configs))
        .file_stem()
        .is_some_and(|stem| stem == "sccache")
    {
        return None;
    }
    let (user, channel) = if let Some(encoded) = var("CARGO_ENCODED_RUSTFLAGS") {
        let user: Vec<String> = match encoded.as_str() {
            "" => Vec::new(),
            _ => encoded.split('\x1f').map(String::from).collect(),
        };
        (user.clone(), Channel::Env(user))
    } else if let Some(flags) = var("RUSTFLAGS") {
        // cargo splits on spaces only.
        let user: Vec<String> = flags
            .split(' ')
            .map(str::trim)
            .filter(|flag| !flag.is_empty())
            .map(String::from)
            .collect();
        (user.clone(), Channel::Env(user))
    } else {
        let target = target_flags(var, arch, configs);
        if target.is_empty() {
            (build_flags(var, configs), Channel::BuildConfig)
        } else {
            (target, Channel::TargetConfig)
        }
    };
    let remaps = user
        .iter()
        .any(|flag| flag == "--remap-path-prefix" || flag.starts_with("--remap-path-prefix="));
    (!remaps).then_some(channel)
}

/// The channel of a build on the host: its variables, and the config files its cargo reads
/// from the current directory.
pub fn host_channel(env: &Env, arch: Arch) -> Option<Channel> {
    let configs = read_configs(&config_files(&env.cwd, env.cargo_home().as_deref()));
    channel(&|name| set_var(env, name), arch, &configs)
}

/// A variable's value when it is set, empty included (cargo counts an empty `RUSTFLAGS`).
pub fn set_var(env: &Env, name: &str) -> Option<String> {
    env.is_set(name)
        .then(|| env.var(name).unwrap_or_default().to_string())
}

/// The wrapper cargo runs rustc through: `RUSTC_WRAPPER`, else `CARGO_BUILD_RUSTC_WRAPPER`, else
/// `build.rustc-wrapper` of the nearest config file that sets it; empty for none.
fn rustc_wrapper(var: &dyn Fn(&str) -> Option<String>, configs: &[toml::Table]) -> String {
    var("RUSTC_WRAPPER")
        .or_else(|| var("CARGO_BUILD_RUSTC_WRAPPER"))
        .or_else(|| {
            configs.iter().find_map(|config| {
                let wrapper = config.get("build")?.get("rustc-wrapper")?;
                wrapper.as_str().map(String::from)
            })
        })
        .unwrap_or_default()
}

/// `target.<triple>.rustflags`, every `target.'cfg(..)'.rustflags` that matches the target and
/// `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`, together.
fn target_flags(
    var: &dyn Fn(&str) -> Option<String>,
    arch: Arch,
    configs: &[toml::Table],
) -> Vec<String> {
    let cfgs = target_cfgs(arch);
    let mut flags = Vec::new();
    for config in configs {
        let Some(targets) = config.get("target").and_then(toml::Value::as_table) else {
            continue;
        };
        for (key, table) in targets {
            if key == arch.triple() || CfgExpr::matches_key(key, &cfgs) {
                flags.extend(list(table.get("rustflags")));
            }
        }
    }
    let name = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        arch.triple().replace('-', "_").to_uppercase()
    );
    flags.extend(var(&name).iter().flat_map(|v| words(v)));
    flags
}

/// `build.rustflags` of every config file and `CARGO_BUILD_RUSTFLAGS`, together.
fn build_flags(var: &dyn Fn(&str) -> Option<String>, configs: &[toml::Table]) -> Vec<String> {
    let mut flags: Vec<String> = configs
        .iter()
        .flat_map(|config| list(config.get("build").and_then(|build| build.get("rustflags"))))
        .collect();
    flags.extend(var("CARGO_BUILD_RUSTFLAGS").iter().flat_map(|v| words(v)));
    flags
}

/// A config list: an array of strings, or one string of words.
fn list(value: Option<&toml::Value>) -> Vec<String> {
    match value {
        Some(toml::Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(String::from))
            .collect(),
        Some(toml::Value::String(text)) => words(text),
        _ => Vec::new(),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// What `rustc --print cfg --target <triple>` says for Lambda's two targets (rustc 1.95), for
/// `target.'cfg(..)'` keys.
fn target_cfgs(arch: Arch) -> Vec<Cfg> {
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
        .filter_map(|cfg| cfg.parse().ok())
        .collect()
}

/// The config files cargo reads for a build run in `cwd`: `.cargo/config.toml` in `cwd` and in
/// each directory above it, then `config.toml` in cargo's home (read once when it is one of
/// those). cargo takes the old name `config` over `config.toml` when a directory has both.
pub fn config_files(cwd: &Path, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = cwd
        .ancestors()
        .filter_map(|dir| config_in(&dir.join(".cargo")))
        .collect();
    if let Some(file) = cargo_home.and_then(config_in)
        && !files.contains(&file)
    {
        files.push(file);
    }
    files
}

/// The config files a container's cargo reads, run in `workdir`: those of the directories on the
/// way up that the container has (inside one of `roots`, the directories mounted or copied at
/// their host paths). Its cargo home holds none.
pub fn config_files_within(workdir: &Path, roots: &[PathBuf]) -> Vec<PathBuf> {
    workdir
        .ancestors()
        .take_while(|dir| roots.iter().any(|root| dir.starts_with(root)))
        .filter_map(|dir| config_in(&dir.join(".cargo")))
        .collect()
}

fn config_in(dir: &Path) -> Option<PathBuf> {
    ["config", "config.toml"]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|file| file.is_file())
}

/// The files' tables; one that cannot be read or parsed is left out (cargo then fails on it
/// itself, saying why).
pub fn read_configs(files: &[PathBuf]) -> Vec<toml::Table> {
    files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| toml::from_str(&text).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(set: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let set: Vec<(String, String)> = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| set.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn config(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
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
    fn variables_win_over_config_files_as_in_cargo() {
        let build = [config(
            "[build]\nrustflags = [\"--cfg\", \"tokio_unstable\"]\n",
        )];
        let x86 = Arch::X86_64;
        assert_eq!(
            channel(&vars(&[("RUSTFLAGS", " -C  debuginfo=1 ")]), x86, &build),
            Some(Channel::Env(vec!["-C".into(), "debuginfo=1".into()]))
        );
        // Set but empty is set: cargo uses no flags then, and neither file.
        assert_eq!(
            channel(&vars(&[("RUSTFLAGS", "")]), x86, &build),
            Some(Channel::Env(Vec::new()))
        );
        assert_eq!(
            channel(
                &vars(&[
                    ("CARGO_ENCODED_RUSTFLAGS", "-C\x1flink-arg=-s x"),
                    ("RUSTFLAGS", "--cfg ignored")
                ]),
                x86,
                &build
            ),
            Some(Channel::Env(vec!["-C".into(), "link-arg=-s x".into()]))
        );
        assert_eq!(channel(&vars(&[]), x86, &build), Some(Channel::BuildConfig));
        assert_eq!(channel(&vars(&[]), x86, &[]), Some(Channel::BuildConfig));
    }

    #[test]
    fn target_tables_that_match_take_the_flags_and_others_do_not() {
        let x86 = Arch::X86_64;
        let arm = Arch::Arm64;
        let by_triple = [config(
            "[target.x86_64-unknown-linux-gnu]\nrustflags = \"-C link-arg=-fuse-ld=mold\"\n",
        )];
        assert_eq!(
            channel(&vars(&[]), x86, &by_triple),
            Some(Channel::TargetConfig)
        );
        // Another target's table leaves the build's `[build] rustflags` in charge.
        let build_too = [
            by_triple[0].clone(),
            config("[build]\nrustflags = [\"--cfg\", \"x\"]\n"),
        ];
        assert_eq!(
            channel(&vars(&[]), arm, &build_too),
            Some(Channel::BuildConfig)
        );
        let by_cfg = [config(
            "[target.'cfg(all(target_os = \"linux\", target_arch = \"aarch64\"))']\n\
             rustflags = [\"-C\", \"target-cpu=neoverse-n1\"]\n",
        )];
        assert_eq!(
            channel(&vars(&[]), arm, &by_cfg),
            Some(Channel::TargetConfig)
        );
        assert_eq!(
            channel(&vars(&[]), x86, &by_cfg),
            Some(Channel::BuildConfig)
        );
        // An empty list is no flags: cargo falls through to `[build]`.
        let empty = [config(
            "[target.x86_64-unknown-linux-gnu]\nrustflags = []\n",
        )];
        assert_eq!(channel(&vars(&[]), x86, &empty), Some(Channel::BuildConfig));
        let from_env = vars(&[("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C x")]);
        assert_eq!(channel(&from_env, arm, &[]), Some(Channel::TargetConfig));
        assert_eq!(channel(&from_env, x86, &[]), Some(Channel::BuildConfig));
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
            assert_eq!(channel(&vars(&[(var, value)]), x86, &[]), None, "{var}");
        }
        let in_file = [config(
            "[target.'cfg(unix)']\nrustflags = [\"--remap-path-prefix\", \"/a=b\"]\n",
        )];
        assert_eq!(channel(&vars(&[]), x86, &in_file), None);
        // sccache wraps rustc: its cache comes first.
        for wrapper in [
            vars(&[("RUSTC_WRAPPER", "/usr/bin/sccache")]),
            vars(&[("CARGO_BUILD_RUSTC_WRAPPER", "sccache")]),
        ] {
            assert_eq!(channel(&wrapper, x86, &[]), None);
        }
        let in_config = [config("[build]\nrustc-wrapper = \"sccache\"\n")];
        assert_eq!(channel(&vars(&[]), x86, &in_config), None);
        // An empty variable turns the configured wrapper off.
        assert_eq!(
            channel(&vars(&[("RUSTC_WRAPPER", "")]), x86, &in_config),
            Some(Channel::BuildConfig)
        );
        assert_eq!(
            channel(&vars(&[("RUSTC_WRAPPER", "cachepot")]), x86, &[]),
            Some(Channel::BuildConfig)
        );
        // A mapping in a source cargo does not use does not count.
        let unused = [config(
            "[build]\nrustflags = [\"--remap-path-prefix=/a=b\"]\n",
        )];
        assert_eq!(
            channel(&vars(&[("RUSTFLAGS", "-C x")]), x86, &unused),
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

    #[test]
    fn config_files_are_found_where_cargo_looks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |path: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
            path
        };
        let outer = write(".cargo/config.toml");
        let legacy = write("ws/.cargo/config");
        write("ws/.cargo/config.toml");
        let home = write("home/config.toml");
        let cwd = root.join("ws/api/src");
        std::fs::create_dir_all(&cwd).unwrap();
        let found = config_files(&cwd, Some(&root.join("home")));
        assert_eq!(found[..3], [legacy.clone(), outer.clone(), home]);
        // cargo's home among the directories above is read once.
        let found = config_files(&cwd, Some(&root.join(".cargo")));
        assert_eq!(found.iter().filter(|f| **f == outer).count(), 1);
        // A container has the workspace, not what is above it.
        assert_eq!(
            config_files_within(&cwd, &[root.join("ws")]),
            std::slice::from_ref(&legacy)
        );
        assert!(config_files_within(&cwd, &[root.join("elsewhere")]).is_empty());
        assert_eq!(read_configs(&[legacy, root.join("missing")]).len(), 1);
    }
}
