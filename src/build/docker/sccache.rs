//! sccache through the container: when the host's `RUSTC_WRAPPER` names sccache, its `SCCACHE_*`
//! settings reach the build container and cargo runs under sccache there, if the image has it.
//!
//! - A local disk cache (`SCCACHE_DIR`, else the host's default `~/.cache/sccache`) is mounted at
//!   the same path, so host builds and container builds fill one cache and a fresh container
//!   starts warm. The container stays offline: sccache's server listens on the container's own
//!   loopback.
//! - A remote cache (S3, GCS, Redis, Memcached, WebDAV, Azure, GitHub Actions, OSS) needs the
//!   network, so the container then gets the engine's default network (cargo still builds
//!   `--offline`: crates come from the host's `cargo fetch` only), and the S3 credentials in
//!   `AWS_*` pass too.
//! - An image without sccache builds without it, with a warning: the wrapper is decided inside
//!   the container, where the image is known.

use std::path::{Path, PathBuf};

/// The variables that select a remote cache, by the name sccache documents for each back end.
const REMOTE_BACKENDS: &[(&str, &str)] = &[
    ("SCCACHE_BUCKET", "S3"),
    ("SCCACHE_GCS_BUCKET", "GCS"),
    ("SCCACHE_REDIS", "Redis"),
    ("SCCACHE_REDIS_ENDPOINT", "Redis"),
    ("SCCACHE_REDIS_CLUSTER_ENDPOINTS", "Redis"),
    ("SCCACHE_MEMCACHED", "Memcached"),
    ("SCCACHE_MEMCACHED_ENDPOINT", "Memcached"),
    ("SCCACHE_WEBDAV_ENDPOINT", "WebDAV"),
    ("SCCACHE_AZURE_CONNECTION_STRING", "Azure"),
    ("SCCACHE_GHA_ENABLED", "GitHub Actions"),
    ("SCCACHE_OSS_BUCKET", "OSS"),
];

/// What S3 needs besides sccache's own variables (the SDK's credential chain).
const S3_CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

/// sccache's settings for the container, decided from the host's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sccache {
    /// `SCCACHE_*` (and for S3, `AWS_*` credentials), sorted; `SCCACHE_DIR` set for a local cache.
    pub env: Vec<(String, String)>,
    /// The local cache directory, mounted read-write at the same path.
    pub dir: Option<PathBuf>,
    /// Files sccache reads (`SCCACHE_CONF`, `SCCACHE_GCS_KEY_PATH`), mounted read-only.
    pub files: Vec<PathBuf>,
    /// The remote back end, when there is one: the container then needs the network.
    pub remote: Option<&'static str>,
}

/// Whether a `RUSTC_WRAPPER` value names sccache (`sccache`, `/usr/bin/sccache`, `sccache.exe`).
pub fn names_sccache(wrapper: &str) -> bool {
    Path::new(wrapper)
        .file_stem()
        .is_some_and(|stem| stem == "sccache")
}

/// The settings when the host's `RUSTC_WRAPPER` (or `CARGO_BUILD_RUSTC_WRAPPER`) names sccache.
/// `default_dir` is the host's default cache directory (`$XDG_CACHE_HOME/sccache`, else
/// `~/.cache/sccache`), used when neither `SCCACHE_DIR` nor a remote cache is set.
pub fn detect(host_env: &[(String, String)], default_dir: Option<PathBuf>) -> Option<Sccache> {
    let var = |name: &str| {
        host_env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let wrapper = var("RUSTC_WRAPPER").or_else(|| var("CARGO_BUILD_RUSTC_WRAPPER"))?;
    if !names_sccache(wrapper) {
        return None;
    }
    let remote = REMOTE_BACKENDS
        .iter()
        .find(|(name, _)| var(name).is_some())
        .map(|(_, backend)| *backend);
    let mut env: Vec<(String, String)> = host_env
        .iter()
        .filter(|(name, value)| name.starts_with("SCCACHE_") && !value.is_empty())
        .cloned()
        .collect();
    let dir = match (var("SCCACHE_DIR"), remote) {
        (Some(dir), _) => Some(PathBuf::from(dir)),
        (None, None) => default_dir.inspect(|dir| {
            env.push(("SCCACHE_DIR".into(), dir.to_string_lossy().into_owned()));
        }),
        (None, Some(_)) => None,
    };
    if remote == Some("S3") {
        env.extend(
            S3_CREDENTIALS
                .iter()
                .filter_map(|name| Some((name.to_string(), var(name)?.to_string()))),
        );
    }
    env.sort();
    let files = ["SCCACHE_CONF", "SCCACHE_GCS_KEY_PATH"]
        .iter()
        .filter_map(|name| var(name))
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .collect();
    Some(Sccache {
        env,
        dir,
        files,
        remote,
    })
}

/// sccache's default cache directory on the host, as sccache computes it on Linux.
pub fn host_default_dir(host_env: &[(String, String)]) -> Option<PathBuf> {
    let var = |name: &str| {
        host_env
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    };
    var("XDG_CACHE_HOME")
        .filter(|dir| dir.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("sccache"))
}

/// Runs the command (`"$@"`) under sccache when the image has it, then prints sccache's
/// statistics as one JSON line on stdout (read back by [`stats_summary`]) and stops its server,
/// which also lets it finish writing the cache before the container goes.
const SCRIPT: &str = "\
if command -v sccache >/dev/null 2>&1; then
  export RUSTC_WRAPPER=sccache
  \"$@\"
  status=$?
  sccache --show-stats --stats-format json 2>/dev/null
  echo
  sccache --stop-server >/dev/null 2>&1
  exit $status
fi
echo 'warning: RUSTC_WRAPPER names sccache but the image has no `sccache` on PATH: building without it' >&2
exec \"$@\"";

/// The container's command: `command` wrapped by [`SCRIPT`] in the image's `sh`.
pub fn wrap(command: Vec<String>) -> Vec<String> {
    ["sh", "-c", SCRIPT, "sh"]
        .into_iter()
        .map(String::from)
        .chain(command)
        .collect()
}

/// `hits, misses` from the statistics line the wrapper prints, for a status line; `None` for any
/// other line (cargo's messages).
pub fn stats_summary(line: &str) -> Option<(u64, u64)> {
    if !line.starts_with("{\"stats\":") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let total = |key: &str| -> u64 {
        value["stats"][key]["counts"]
            .as_object()
            .map(|counts| counts.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0)
    };
    Some((total("cache_hits"), total("cache_misses")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_wrapper_named_sccache_turns_it_on() {
        assert!(names_sccache("sccache"));
        assert!(names_sccache("/usr/local/bin/sccache"));
        assert!(!names_sccache("/usr/bin/ccache"));
        assert!(!names_sccache("sccache-wrapper"));
        assert_eq!(detect(&env(&[("SCCACHE_DIR", "/c")]), None), None);
        assert_eq!(
            detect(
                &env(&[("RUSTC_WRAPPER", "cachepot"), ("SCCACHE_DIR", "/c")]),
                None
            ),
            None
        );
        let via_cargo = detect(&env(&[("CARGO_BUILD_RUSTC_WRAPPER", "sccache")]), None);
        assert!(via_cargo.is_some());
    }

    // Unix paths: on Windows `--docker` always copies into volumes, and a copy runs without
    // sccache.
    #[cfg(unix)]
    #[test]
    fn a_local_cache_is_mounted_and_stays_offline() {
        let host = env(&[
            ("RUSTC_WRAPPER", "/usr/bin/sccache"),
            ("SCCACHE_DIR", "/var/cache/sccache"),
            ("SCCACHE_CACHE_SIZE", "2G"),
            ("AWS_SECRET_ACCESS_KEY", "not for a local cache"),
            ("HOME", "/home/me"),
        ]);
        let settings = detect(&host, host_default_dir(&host)).unwrap();
        assert_eq!(settings.dir, Some(PathBuf::from("/var/cache/sccache")));
        assert_eq!(settings.remote, None);
        assert_eq!(
            settings.env,
            env(&[
                ("SCCACHE_CACHE_SIZE", "2G"),
                ("SCCACHE_DIR", "/var/cache/sccache")
            ])
        );
        // Without SCCACHE_DIR: the host's default directory, shared with host builds.
        let host = env(&[("RUSTC_WRAPPER", "sccache"), ("HOME", "/home/me")]);
        let settings = detect(&host, host_default_dir(&host)).unwrap();
        assert_eq!(settings.dir, Some(PathBuf::from("/home/me/.cache/sccache")));
        assert_eq!(
            settings.env,
            env(&[("SCCACHE_DIR", "/home/me/.cache/sccache")])
        );
        let xdg = env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/home/me")]);
        assert_eq!(host_default_dir(&xdg), Some(PathBuf::from("/x/sccache")));
    }

    // Unix paths: on Windows `--docker` always copies into volumes, and a copy runs without
    // sccache.
    #[cfg(unix)]
    #[test]
    fn a_remote_cache_brings_its_credentials_and_needs_the_network() {
        let host = env(&[
            ("RUSTC_WRAPPER", "sccache"),
            ("SCCACHE_BUCKET", "builds"),
            ("SCCACHE_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            (
                "AWS_PROFILE",
                "not passed: the file is not in the container",
            ),
            ("HOME", "/home/me"),
        ]);
        let settings = detect(&host, host_default_dir(&host)).unwrap();
        assert_eq!(settings.remote, Some("S3"));
        assert_eq!(settings.dir, None, "no local cache besides a remote one");
        let names: Vec<&str> = settings.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "SCCACHE_BUCKET",
                "SCCACHE_REGION"
            ]
        );
        let redis = env(&[
            ("RUSTC_WRAPPER", "sccache"),
            ("SCCACHE_REDIS", "redis://:pw@cache:6379"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("SCCACHE_CONF", "/etc/sccache.toml"),
        ]);
        let settings = detect(&redis, None).unwrap();
        assert_eq!(settings.remote, Some("Redis"));
        assert!(settings.env.iter().all(|(k, _)| k.starts_with("SCCACHE_")));
        assert_eq!(settings.files, [PathBuf::from("/etc/sccache.toml")]);
    }

    #[test]
    fn the_wrapper_keeps_the_command_as_its_arguments() {
        let wrapped = wrap(vec!["cargo".into(), "build".into(), "--offline".into()]);
        assert_eq!(&wrapped[..2], ["sh", "-c"]);
        assert_eq!(&wrapped[3..], ["sh", "cargo", "build", "--offline"]);
        assert!(wrapped[2].contains("export RUSTC_WRAPPER=sccache"));
        assert!(wrapped[2].contains("exit $status"));
    }

    #[test]
    fn statistics_are_read_from_sccaches_json() {
        let line = r#"{"stats":{"compile_requests":9,"cache_hits":{"counts":{"Rust":7,"C/C++":1}},"cache_misses":{"counts":{"Rust":1}}},"cache_location":"Local disk"}"#;
        assert_eq!(stats_summary(line), Some((8, 1)));
        assert_eq!(
            stats_summary(r#"{"reason":"build-finished","success":true}"#),
            None
        );
    }
}
