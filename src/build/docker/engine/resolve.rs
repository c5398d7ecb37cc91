//! From the environment and the Docker config files to an [`Endpoint`], as the docker CLI
//! decides: no network here, so every rule is a unit test.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::{
    ContextChoice, DEFAULT_HOST, Endpoint, EngineEnv, EngineError, Files, Source, SshTarget, Tls,
    Transport,
};

/// The endpoint the docker CLI would use: `DOCKER_HOST` wins over `DOCKER_CONTEXT`, which wins
/// over `currentContext` in the config; the context `default` is `DOCKER_HOST` or the default
/// socket, with `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH` for TLS.
pub fn resolve(env: &EngineEnv, files: &dyn Files) -> std::result::Result<Endpoint, EngineError> {
    let config_dir = env.config_dir();
    if let Some(host) = &env.docker_host {
        return default_context(host, Source::DockerHost, env, config_dir.as_deref(), files);
    }
    let chosen = match &env.docker_context {
        Some(name) => Some((name.clone(), ContextChoice::DockerContext)),
        None => match &config_dir {
            Some(dir) => current_context(&dir.join("config.json"), files)?,
            None => None,
        },
    };
    match chosen {
        Some((name, chosen_by)) if name != "default" => {
            named_context(name, chosen_by, config_dir.as_deref(), files)
        }
        _ => default_context(
            DEFAULT_HOST,
            Source::Default,
            env,
            config_dir.as_deref(),
            files,
        ),
    }
}

fn default_context(
    host: &str,
    source: Source,
    env: &EngineEnv,
    config_dir: Option<&Path>,
    files: &dyn Files,
) -> std::result::Result<Endpoint, EngineError> {
    let tls = if env.tls_verify || env.tls {
        // The CLI's default: the config directory, which is `~/.docker` unless DOCKER_CONFIG
        // moves it.
        let (dir, dir_from) = match (&env.cert_path, config_dir) {
            (Some(dir), _) => (dir.clone(), "DOCKER_CERT_PATH"),
            (None, Some(dir)) => (
                dir.to_path_buf(),
                "the default, DOCKER_CERT_PATH is not set",
            ),
            (None, None) => (
                PathBuf::from(".docker"),
                "neither DOCKER_CERT_PATH nor HOME is set",
            ),
        };
        Some(tls_files(
            dir,
            dir_from,
            env.tls_verify,
            files,
            &source,
            host,
        )?)
    } else {
        None
    };
    endpoint(host, source, tls)
}

/// The certificates in `dir` that exist: the CLI leaves out a default file that is missing.
fn tls_files(
    dir: PathBuf,
    dir_from: &'static str,
    verify: bool,
    files: &dyn Files,
    source: &Source,
    host: &str,
) -> std::result::Result<Tls, EngineError> {
    let existing = |name: &str| Some(dir.join(name)).filter(|p| files.exists(p));
    let client = match (existing("cert.pem"), existing("key.pem")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (cert, _) => {
            let (has, lacks) = if cert.is_some() {
                ("cert.pem", "key.pem")
            } else {
                ("key.pem", "cert.pem")
            };
            return Err(EngineError::TlsFiles {
                at: format!("`{host}` ({})", short_source(source)),
                dir: dir.clone(),
                reason: format!("`{}` has {has} but no {lacks}", dir.display()),
            });
        }
    };
    Ok(Tls {
        ca: existing("ca.pem"),
        client,
        verify,
        dir,
        dir_from,
    })
}

fn short_source(source: &Source) -> String {
    match source {
        Source::DockerHost => "DOCKER_HOST".into(),
        Source::Context { name, .. } => format!("docker context `{name}`"),
        Source::Default => "the default".into(),
    }
}

/// `currentContext` of the config, when the file exists and names one.
fn current_context(
    config: &Path,
    files: &dyn Files,
) -> std::result::Result<Option<(String, ContextChoice)>, EngineError> {
    let bytes = match files.read(config) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Config {
                path: config.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Config {
            path: config.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(value
        .get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(|name| {
            (
                name.to_string(),
                ContextChoice::Config(config.to_path_buf()),
            )
        }))
}

#[derive(serde::Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, ContextEndpoint>,
}

#[derive(serde::Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The docker CLI's context store: `contexts/meta/<sha256 of the name>/meta.json`, the TLS
/// material in `contexts/tls/<sha256>/docker/`.
fn named_context(
    name: String,
    chosen_by: ContextChoice,
    config_dir: Option<&Path>,
    files: &dyn Files,
) -> std::result::Result<Endpoint, EngineError> {
    let failed = |path: PathBuf, reason: String| EngineError::Context {
        name: name.clone(),
        chosen_by: chosen_by.clone(),
        path,
        reason,
    };
    let Some(config_dir) = config_dir else {
        return Err(failed(
            PathBuf::from(".docker/contexts"),
            "neither DOCKER_CONFIG nor HOME is set, so the contexts cannot be found".into(),
        ));
    };
    let id: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let bytes = files.read(&meta_path).map_err(|e| {
        let reason = if e.kind() == io::ErrorKind::NotFound {
            "it does not exist".to_string()
        } else {
            e.to_string()
        };
        failed(meta_path.clone(), reason)
    })?;
    let meta: ContextMeta = serde_json::from_slice(&bytes)
        .map_err(|e| failed(meta_path.clone(), format!("its metadata is invalid: {e}")))?;
    let Some(docker) = meta.endpoints.get("docker") else {
        return Err(failed(meta_path, "it has no docker endpoint".into()));
    };
    let Some(host) = docker.host.clone().filter(|h| !h.is_empty()) else {
        return Err(failed(meta_path, "its docker endpoint has no host".into()));
    };
    let source = Source::Context {
        name: name.clone(),
        chosen_by: chosen_by.clone(),
    };
    let tls_dir = config_dir
        .join("contexts")
        .join("tls")
        .join(&id)
        .join("docker");
    let has_tls_files = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|f| files.exists(&tls_dir.join(f)));
    let tls = if has_tls_files || docker.skip_tls_verify {
        Some(tls_files(
            tls_dir,
            "the context's TLS directory",
            !docker.skip_tls_verify,
            files,
            &source,
            &host,
        )?)
    } else {
        None
    };
    endpoint(&host, source, tls)
}

/// Parses an address as the CLI does: no scheme means tcp; tcp's default port is 2375, 2376
/// with TLS.
fn endpoint(
    host: &str,
    source: Source,
    tls: Option<Tls>,
) -> std::result::Result<Endpoint, EngineError> {
    let bad = |reason: &str| EngineError::Address {
        at: format!("`{host}` ({})", short_source(&source)),
        reason: reason.to_string(),
    };
    let (scheme, rest) = host.split_once("://").unwrap_or(("tcp", host));
    let transport = match scheme {
        "unix" if cfg!(windows) => {
            return Err(bad(
                "this Windows build reaches Docker Desktop over its named pipe \
                 (`npipe:////./pipe/docker_engine`, the default), tcp or ssh, not a unix socket",
            ));
        }
        "unix" if !rest.is_empty() => Transport::Unix(PathBuf::from(rest)),
        "unix" => return Err(bad("it names no socket")),
        "npipe" if cfg!(windows) => Transport::NamedPipe(rest.to_string()),
        "npipe" => return Err(bad("named pipes (`npipe://`) exist only on Windows")),
        "tcp" | "http" | "https" => {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad("a tcp address is `tcp://HOST:PORT`"));
            }
            let has_port = match authority.rsplit_once(':') {
                Some((_, port)) => !port.contains(']'),
                None => false,
            };
            let authority = if has_port {
                authority.to_string()
            } else {
                let port = if tls.is_some() { 2376 } else { 2375 };
                format!("{authority}:{port}")
            };
            Transport::Tcp { authority, tls }
        }
        "ssh" => Transport::Ssh(ssh_target(rest).map_err(|reason| bad(&reason))?),
        _ => {
            return Err(bad(&format!(
                "the scheme `{scheme}://` is not one the docker CLI knows (unix://, tcp://, \
                 ssh://{})",
                if cfg!(windows) { ", npipe://" } else { "" }
            )));
        }
    };
    Ok(Endpoint {
        host: host.to_string(),
        transport,
        source,
    })
}

/// `[user@]host[:port][/]`, as `ssh://` addresses are written.
fn ssh_target(rest: &str) -> std::result::Result<SshTarget, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("an ssh address is `ssh://[USER@]HOST[:PORT]`, without a path".into());
    }
    let (user, host_port) = match rest.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err("a password in an ssh address is not supported: use an ssh key".into());
        }
        Some((user, host_port)) => (Some(user.to_string()), host_port),
        None => (None, rest),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an unclosed `[` in the ssh address")?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("the ssh address names no host".into());
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port number"))
        })
        .transpose()?;
    Ok(SshTarget {
        user: user.filter(|u| !u.is_empty()),
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system of fixtures: path to content.
    #[derive(Default)]
    struct Fixture(HashMap<PathBuf, Vec<u8>>);

    impl Fixture {
        fn with(mut self, path: &str, content: &str) -> Fixture {
            self.0
                .insert(PathBuf::from(path), content.as_bytes().to_vec());
            self
        }

        /// A context as `docker context create NAME --docker host=HOST` stores it.
        fn context(self, name: &str, host: &str, skip_tls_verify: bool) -> Fixture {
            let id = context_id(name);
            self.with(
                &format!("/home/me/.docker/contexts/meta/{id}/meta.json"),
                &format!(
                    r#"{{"Name":"{name}","Metadata":{{"Description":""}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip_tls_verify}}}}}}}"#
                ),
            )
        }
    }

    impl Files for Fixture {
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| io::ErrorKind::NotFound.into())
        }

        fn exists(&self, path: &Path) -> bool {
            self.0.contains_key(path)
        }
    }

    fn context_id(name: &str) -> String {
        sha2::Sha256::digest(name.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn env() -> EngineEnv {
        EngineEnv {
            home: Some("/home/me".into()),
            ..EngineEnv::default()
        }
    }

    #[test]
    fn the_context_id_is_the_sha256_of_its_name_as_the_cli_stores_it() {
        // `printf builder | sha256sum`
        assert_eq!(
            context_id("builder"),
            "df6b07176a9b17cc4c9afc257bd404732e7d09b76436c7890f7b7be14e579794"
        );
    }

    // Unix sockets and Unix-path fixtures: a Windows host uses its named pipe
    #[cfg(unix)]
    #[test]
    fn nothing_set_is_the_default_socket() {
        let endpoint = resolve(&env(), &Fixture::default()).unwrap();
        assert_eq!(endpoint.host, "unix:///var/run/docker.sock");
        assert_eq!(
            endpoint.transport,
            Transport::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(endpoint.source, Source::Default);
        assert!(endpoint.describe().contains("DOCKER_HOST is not set"));
    }

    // Unix sockets and Unix-path fixtures: a Windows host uses its named pipe
    #[cfg(unix)]
    #[test]
    fn docker_host_wins_over_docker_context_and_the_config() {
        let files = Fixture::default()
            .with(
                "/home/me/.docker/config.json",
                r#"{"currentContext":"remote"}"#,
            )
            .context("remote", "ssh://me@remote", false)
            .context("ci", "tcp://ci:2375", false);
        let mut env = env();
        env.docker_host = Some("unix:///run/podman.sock".into());
        env.docker_context = Some("ci".into());
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(endpoint.source, Source::DockerHost);
        assert_eq!(
            endpoint.transport,
            Transport::Unix("/run/podman.sock".into())
        );
        assert_eq!(
            endpoint.describe(),
            "`unix:///run/podman.sock` (DOCKER_HOST) over a unix socket"
        );

        env.docker_host = None;
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(endpoint.host, "tcp://ci:2375");
        assert_eq!(
            endpoint.describe(),
            "`tcp://ci:2375` (docker context `ci` from DOCKER_CONTEXT) over tcp without TLS"
        );

        env.docker_context = None;
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(
            endpoint.transport,
            Transport::Ssh(SshTarget {
                user: Some("me".into()),
                host: "remote".into(),
                port: None
            })
        );
        assert_eq!(
            endpoint.source,
            Source::Context {
                name: "remote".into(),
                chosen_by: ContextChoice::Config("/home/me/.docker/config.json".into())
            }
        );
    }

    #[test]
    fn the_default_context_is_the_default_socket() {
        let files = Fixture::default().with(
            "/home/me/.docker/config.json",
            r#"{"auths":{},"currentContext":"default"}"#,
        );
        assert_eq!(resolve(&env(), &files).unwrap().source, Source::Default);
        let mut env = env();
        env.docker_context = Some("default".into());
        assert_eq!(
            resolve(&env, &Fixture::default()).unwrap().source,
            Source::Default
        );
    }

    // Unix sockets and Unix-path fixtures: a Windows host uses its named pipe
    #[cfg(unix)]
    #[test]
    fn docker_config_moves_the_config_and_the_contexts() {
        let id = context_id("podman");
        let files = Fixture::default()
            .with("/etc/docker-cfg/config.json", r#"{"currentContext":"podman"}"#)
            .with(
                &format!("/etc/docker-cfg/contexts/meta/{id}/meta.json"),
                r#"{"Name":"podman","Endpoints":{"docker":{"Host":"unix:///run/podman/podman.sock"}}}"#,
            );
        let mut env = env();
        env.docker_config = Some("/etc/docker-cfg".into());
        let endpoint = resolve(&env, &files).unwrap();
        assert_eq!(
            endpoint.transport,
            Transport::Unix("/run/podman/podman.sock".into())
        );
    }

    #[test]
    fn a_context_with_certificates_speaks_tls() {
        let id = context_id("gitlab");
        let tls = format!("/home/me/.docker/contexts/tls/{id}/docker");
        let files = Fixture::default()
            .context("gitlab", "tcp://docker:2376", false)
            .with(&format!("{tls}/ca.pem"), "ca")
            .with(&format!("{tls}/cert.pem"), "cert")
            .with(&format!("{tls}/key.pem"), "key");
        let mut env = env();
        env.docker_context = Some("gitlab".into());
        // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH belong to the default context only.
        env.cert_path = Some("/elsewhere".into());
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp {
            authority,
            tls: Some(found),
        } = endpoint.transport
        else {
            panic!("{:?}", endpoint.transport)
        };
        assert_eq!(authority, "docker:2376");
        assert!(found.verify);
        assert_eq!(found.ca, Some(PathBuf::from(format!("{tls}/ca.pem"))));
        assert_eq!(
            found.client,
            Some((
                PathBuf::from(format!("{tls}/cert.pem")),
                PathBuf::from(format!("{tls}/key.pem"))
            ))
        );
    }

    #[test]
    fn skip_tls_verify_in_a_context_is_tls_without_verification() {
        let files = Fixture::default().context("lab", "tcp://lab:2376", true);
        let mut env = env();
        env.docker_context = Some("lab".into());
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
            panic!("{:?}", endpoint.transport)
        };
        assert!(!tls.verify && tls.ca.is_none() && tls.client.is_none());
        assert!(
            endpoint
                .describe()
                .ends_with("over TLS without verifying the engine")
        );
    }

    // Unix sockets and Unix-path fixtures: a Windows host uses its named pipe
    #[cfg(unix)]
    #[test]
    fn a_missing_or_broken_context_is_named_with_its_file() {
        let mut env = env();
        env.docker_context = Some("gone".into());
        let err = resolve(&env, &Fixture::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot use the docker context `gone` (DOCKER_CONTEXT): "),
            "{text}"
        );
        assert!(text.contains(&context_id("gone")), "{text}");
        assert!(text.ends_with("it does not exist"), "{text}");
        assert!(err.help().unwrap().contains("docker context ls"));

        let files = Fixture::default().with(
            &format!(
                "/home/me/.docker/contexts/meta/{}/meta.json",
                context_id("gone")
            ),
            r#"{"Name":"gone","Endpoints":{}}"#,
        );
        let text = resolve(&env, &files).unwrap_err().to_string();
        assert!(text.ends_with("it has no docker endpoint"), "{text}");

        let files = Fixture::default().with("/home/me/.docker/config.json", "{not json");
        let text = resolve(&self::env(), &files).unwrap_err().to_string();
        assert!(
            text.starts_with("cannot read the Docker config `/home/me/.docker/config.json`"),
            "{text}"
        );
    }

    #[test]
    fn tls_verify_takes_the_certificates_from_docker_cert_path() {
        let files = Fixture::default()
            .with("/certs/ca.pem", "")
            .with("/certs/cert.pem", "")
            .with("/certs/key.pem", "");
        let mut env = env();
        env.docker_host = Some("tcp://build.example:2376".into());
        env.tls_verify = true;
        env.cert_path = Some("/certs".into());
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
            panic!("{:?}", endpoint.transport)
        };
        assert!(tls.verify);
        assert_eq!(tls.dir_from, "DOCKER_CERT_PATH");
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/certs/ca.pem")));
        assert_eq!(
            endpoint.describe(),
            "`tcp://build.example:2376` (DOCKER_HOST) over TLS"
        );
    }

    #[test]
    fn tls_certificates_default_to_the_config_directory_and_missing_ones_are_left_out() {
        let files = Fixture::default().with("/home/me/.docker/ca.pem", "");
        let mut env = env();
        env.docker_host = Some("tcp://h".into());
        env.tls_verify = true;
        let endpoint = resolve(&env, &files).unwrap();
        let Transport::Tcp {
            authority,
            tls: Some(tls),
        } = &endpoint.transport
        else {
            panic!("{:?}", endpoint.transport)
        };
        // The CLI's default TLS port.
        assert_eq!(authority, "h:2376");
        assert_eq!(tls.dir, Path::new("/home/me/.docker"));
        assert!(tls.ca.is_some() && tls.client.is_none());

        let half = Fixture::default().with("/home/me/.docker/cert.pem", "");
        let err = resolve(&env, &half).unwrap_err();
        assert!(
            err.to_string().contains("has cert.pem but no key.pem"),
            "{err}"
        );
    }

    #[test]
    fn docker_tls_alone_does_not_verify_and_plain_tcp_defaults_to_2375() {
        let mut env = env();
        env.docker_host = Some("tcp://h".into());
        let endpoint = resolve(&env, &Fixture::default()).unwrap();
        assert_eq!(
            endpoint.transport,
            Transport::Tcp {
                authority: "h:2375".into(),
                tls: None
            }
        );
        env.tls = true;
        let endpoint = resolve(&env, &Fixture::default()).unwrap();
        let Transport::Tcp { tls: Some(tls), .. } = &endpoint.transport else {
            panic!("{:?}", endpoint.transport)
        };
        assert!(!tls.verify);
        // No scheme is tcp, as for the CLI.
        env.docker_host = Some("localhost:1234".into());
        env.tls = false;
        assert_eq!(
            resolve(&env, &Fixture::default()).unwrap().transport,
            Transport::Tcp {
                authority: "localhost:1234".into(),
                tls: None
            }
        );
    }

    #[test]
    fn ssh_addresses_become_the_clis_ssh_command() {
        let target = ssh_target("builder@10.0.0.5:2222/").unwrap();
        assert_eq!(
            target.argv().join(" "),
            "ssh -o BatchMode=yes -o ConnectTimeout=20 -T -l builder -p 2222 -- 10.0.0.5 \
             docker system dial-stdio"
        );
        assert_eq!(
            ssh_target("host").unwrap().argv().join(" "),
            "ssh -o BatchMode=yes -o ConnectTimeout=20 -T -- host docker system dial-stdio"
        );
        let v6 = ssh_target("[::1]:22").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(22)));
        assert!(
            ssh_target("me:secret@host")
                .unwrap_err()
                .contains("password")
        );
        assert!(
            ssh_target("host/path")
                .unwrap_err()
                .contains("without a path")
        );
        assert!(ssh_target("host:ssh").unwrap_err().contains("not a port"));
        assert!(ssh_target("me@").unwrap_err().contains("no host"));
    }

    #[test]
    fn unknown_schemes_and_named_pipes_off_windows_are_refused() {
        let mut env = env();
        env.docker_host = Some("fd://3".into());
        let err = resolve(&env, &Fixture::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot use the Docker address `fd://3` (DOCKER_HOST): the scheme"),
            "{err}"
        );
        assert!(err.help().unwrap().contains("ssh://"));
        if !cfg!(windows) {
            env.docker_host = Some("npipe:////./pipe/docker_engine".into());
            let err = resolve(&env, &Fixture::default()).unwrap_err();
            assert!(err.to_string().contains("only on Windows"), "{err}");
        }
    }
}
