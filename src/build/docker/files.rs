//! Whether the engine sees the host's files: an engine on this machine does (bind mounts),
//! one elsewhere (CI's docker:dind, CircleCI's remote docker, `ssh://builder`) does not, and
//! a bind mount there gives the container an empty directory or fails.
//!
//! The probe: a file of random content in the target directory, bind-mounted into a created
//! (never started) container of the build image, read back through the Engine API. The answer
//! is remembered per engine (its ID from `/info`) in the target directory, so it costs one
//! container creation per engine and target directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::CreateContainerOptions;
use sha2::{Digest, Sha256};

use crate::build::BuildError;
use crate::config::DockerFiles;

use super::DockerError;

type Result<T, E = BuildError> = std::result::Result<T, E>;

use super::engine::failure;
use super::image::LABEL;

/// How this build gives the engine the project's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    Bind,
    Copy,
}

impl Files {
    fn name(self) -> &'static str {
        match self {
            Files::Bind => "bind",
            Files::Copy => "copy",
        }
    }
}

/// `<target-dir>/lambda-build/docker/engines.json`: engine → what the probe found. An engine is
/// its ID and its address together: dockerd 20.10 takes its ID from the host's
/// `/etc/docker/key.json`, so two engines of one machine (one of them in its own mount
/// namespace, seeing other files) can share an ID.
pub fn cache_path(target_dir: &Path) -> PathBuf {
    target_dir
        .join("lambda-build")
        .join("docker")
        .join("engines.json")
}

fn read_cache(path: &Path) -> BTreeMap<String, String> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The mode for this engine: the setting when it says `copy`, else the probe's answer (from the
/// cache when this engine was probed before). A forced `bind` that the engine cannot honour is
/// an error naming the setting, never a build of an empty directory.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    docker: &Docker,
    setting: DockerFiles,
    origin: Option<&str>,
    engine: &str,
    image: &str,
    target_dir: &Path,
    name: &str,
) -> Result<Files> {
    if setting == DockerFiles::Copy {
        return Ok(Files::Copy);
    }
    if cfg!(windows) {
        // Docker Desktop's Linux containers see no Windows paths as they are (`C:\...`), and
        // its bind mounts of the Windows file system are its slowest: volumes, always.
        return match setting {
            DockerFiles::Bind => Err(DockerError::BindOnWindows {
                origin: origin.unwrap_or("`--docker-files bind`").to_string(),
            }
            .into()),
            _ => Ok(Files::Copy),
        };
    }
    let info = docker
        .info()
        .await
        .map_err(|e| failure("read the engine's information", e))?;
    let id = info.id.unwrap_or_default();
    let key = format!("{id} at {engine}");
    let cache = cache_path(target_dir);
    let mut known = read_cache(&cache);
    let found = match known.get(&key).map(String::as_str) {
        Some("bind") if !id.is_empty() => Files::Bind,
        Some("copy") if !id.is_empty() => Files::Copy,
        _ => {
            let found = probe(docker, image, target_dir, name).await?;
            if !id.is_empty() {
                known.insert(key, found.name().to_string());
                // A cache that cannot be written only means probing again next time.
                if let Ok(json) = serde_json::to_vec_pretty(&known) {
                    let _ = std::fs::write(&cache, json);
                }
            }
            found
        }
    };
    if setting == DockerFiles::Bind && found == Files::Copy {
        return Err(DockerError::FilesUnseen {
            origin: origin.unwrap_or("`--docker-files bind`").to_string(),
            engine: engine.to_string(),
            path: target_dir.to_path_buf(),
        }
        .into());
    }
    Ok(found)
}

/// Mounts a directory holding a fresh random marker into a created container and reads the
/// marker back: the engine sees the host's files only when the content matches (an engine
/// elsewhere may have a directory of the same name, with other files).
async fn probe(docker: &Docker, image: &str, target_dir: &Path, name: &str) -> Result<Files> {
    let dir = target_dir.join("lambda-build").join("docker").join("probe");
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let random = Sha256::digest(format!("{}-{nanos}-{name}", std::process::id()));
    let marker: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let file = dir.join(format!("marker-{}", std::process::id()));
    std::fs::write(&file, &marker)
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", file.display()))?;
    let result = probe_with(docker, image, &dir, &file, name, marker.as_bytes()).await;
    let _ = std::fs::remove_file(&file);
    result
}

/// Whether the engine sees `file` of this machine at its path: its directory is mounted into a
/// created container of `image` and the file read back through the Engine API, nothing written
/// (`invoke --docker` asks so about the artifact: an engine that does not see it is elsewhere).
pub async fn sees(docker: &Docker, image: &str, file: &Path, name: &str) -> Result<bool> {
    let expected = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    Ok(probe_with(docker, image, dir, file, name, &expected).await? == Files::Bind)
}

async fn probe_with(
    docker: &Docker,
    image: &str,
    dir: &Path,
    file: &Path,
    name: &str,
    expected: &[u8],
) -> Result<Files> {
    const INSIDE: &str = "/lambda-build/probe";
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["true".into()]),
        entrypoint: Some(Vec::new()),
        labels: Some(
            [(LABEL.to_string(), "probe".to_string())]
                .into_iter()
                .collect(),
        ),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(vec![Mount {
                typ: Some(MountType::BIND),
                source: Some(dir.to_string_lossy().into_owned()),
                target: Some(INSIDE.into()),
                read_only: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    match docker.create_container(Some(options), body).await {
        Ok(_) => {}
        // The engine checks a bind mount's source when the container is created; a Linux engine
        // on another machine than a Windows host cannot even take its path (`C:/...`).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message,
        }) if message.contains("bind source path does not exist")
            || message.contains("mount path must be absolute") =>
        {
            return Ok(Files::Copy);
        }
        Err(e) => {
            return Err(BuildError::from(failure(
                format!(
                    "create a container from `{image}` to see whether it sees this machine's files"
                ),
                e,
            )));
        }
    }
    let inside = format!(
        "{INSIDE}/{}",
        file.file_name().unwrap_or_default().to_string_lossy()
    );
    let seen = super::sync::download(docker, name, &inside).await;
    let removed = super::container::remove(docker, name).await;
    let seen = match seen {
        Ok(tar) => super::sync::file_from_tar(&tar).ok(),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(e) => return Err(failure("read a file through a probe container", e).into()),
    };
    removed?;
    Ok(if seen.as_deref() == Some(expected) {
        Files::Bind
    } else {
        Files::Copy
    })
}

// Only Windows decides without the engine.
#[cfg(all(test, windows))]
mod tests {
    use super::*;

    /// On Windows the engine is never asked: `auto` copies, and `bind` is refused naming where it
    /// was set (a client that would fail on any request shows that no request is made).
    #[test]
    fn windows_copies_without_a_probe_and_refuses_bind() {
        let docker =
            Docker::connect_with_http("tcp://127.0.0.1:9", 1, bollard::API_DEFAULT_VERSION)
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let decide = |setting, origin| {
            runtime.block_on(decide(
                &docker,
                setting,
                origin,
                "npipe:////./pipe/docker_engine",
                "image",
                dir.path(),
                "probe",
            ))
        };
        assert_eq!(decide(DockerFiles::Auto, None).unwrap(), Files::Copy);
        assert_eq!(decide(DockerFiles::Copy, None).unwrap(), Files::Copy);
        let refused = decide(
            DockerFiles::Bind,
            Some("`docker-files = \"bind\"` in Cargo.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("`docker-files = \"bind\"` in Cargo.toml"),
            "{refused}"
        );
        assert!(
            refused.contains("copies it into the engine's volumes"),
            "{refused}"
        );
        assert!(!cache_path(dir.path()).exists());
    }
}
