//! What the tool keeps on an engine, for `docker ls` and `docker clean`: the images it built
//! (tagged `cargo-lambda-build:<hash>` or labelled `cargo-lambda-build`), the volumes it labelled,
//! and the containers a killed run left (labelled too). Listing and removing are apart from
//! printing, so both are data for the command and for tests.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{
    DataUsageOptions, ListContainersOptions, ListImagesOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions,
};

use super::DockerError;

type Result<T, E = DockerError> = std::result::Result<T, E>;

use super::engine::failure;
use super::image::{LABEL, REPOSITORY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Container,
    Image,
    Volume,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
        }
    }
}

/// One thing on the engine that belongs to the tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// What `docker rm` / `docker rmi` / `docker volume rm` take: the container's or volume's
    /// name, the image's tag (its id when it has none of the tool's tags).
    pub name: String,
    pub id: String,
    /// Bytes: an image's size, a container's writable layer, a volume's content. `None` when
    /// it could not be learnt (a volume on an engine with no image of the tool's to measure it).
    pub size: Option<u64>,
    /// A container that runs: perhaps a build in progress.
    pub running: bool,
    /// The container's state, or what else is worth knowing.
    pub note: String,
    /// A container's image (its id).
    pub image_id: Option<String>,
}

fn label_filter() -> Option<HashMap<String, Vec<String>>> {
    Some(HashMap::from([(
        "label".to_string(),
        vec![LABEL.to_string()],
    )]))
}

fn bytes(size: Option<i64>) -> Option<u64> {
    size.and_then(|s| u64::try_from(s).ok())
}

/// Everything of the tool's on the engine: containers, then images, then volumes, each sorted by
/// name.
pub async fn list(docker: &Docker) -> Result<Vec<Item>> {
    let mut items = containers(docker).await?;
    items.extend(images(docker).await?);
    // An image of the tool's has `du`, to measure the volumes the engine does not.
    let image = items
        .iter()
        .find(|i| i.kind == Kind::Image)
        .map(|i| i.id.clone());
    items.extend(volumes(docker, image.as_deref()).await?);
    items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(items)
}

/// The containers labelled as the tool's, running or not.
async fn containers(docker: &Docker) -> Result<Vec<Item>> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            size: true,
            filters: label_filter(),
            ..Default::default()
        }))
        .await
        .map_err(|e| failure("list containers", e))?;
    Ok(containers
        .into_iter()
        .map(|container| {
            let name = container
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .or_else(|| container.id.clone())
                .unwrap_or_default();
            let state = container.state.map(|s| s.to_string()).unwrap_or_default();
            Item {
                kind: Kind::Container,
                name,
                id: container.id.unwrap_or_default(),
                size: bytes(container.size_rw),
                running: matches!(state.as_str(), "running" | "restarting" | "paused"),
                note: state,
                image_id: container.image_id,
            }
        })
        .collect())
}

/// The images tagged in the tool's repository, one item per tag, and those labelled as the
/// tool's that lost their tag.
async fn images(docker: &Docker) -> Result<Vec<Item>> {
    let images = docker
        .list_images(Some(ListImagesOptions::default()))
        .await
        .map_err(|e| failure("list images", e))?;
    let mut items = Vec::new();
    for image in images {
        let ours: Vec<&String> = image
            .repo_tags
            .iter()
            .filter(|tag| tag.starts_with(&format!("{REPOSITORY}:")))
            .collect();
        if ours.is_empty() && !image.labels.contains_key(LABEL) {
            continue;
        }
        let size = u64::try_from(image.size).ok();
        if ours.is_empty() {
            // Untagged: two runs built one tag at once, or a newer build took the tag.
            items.push(Item {
                kind: Kind::Image,
                name: image.id.clone(),
                id: image.id.clone(),
                size,
                running: false,
                note: "untagged".into(),
                image_id: None,
            });
        }
        for tag in ours {
            items.push(Item {
                kind: Kind::Image,
                name: tag.clone(),
                id: image.id.clone(),
                size,
                running: false,
                note: image
                    .labels
                    .get(&format!("{LABEL}.dockerfile"))
                    .cloned()
                    .unwrap_or_default(),
                image_id: None,
            });
        }
    }
    Ok(items)
}

/// The volumes labelled as the tool's, with their sizes where the engine says them or `image`
/// can measure them.
async fn volumes(docker: &Docker, image: Option<&str>) -> Result<Vec<Item>> {
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: label_filter(),
        }))
        .await
        .map_err(|e| failure("list volumes", e))?;
    let volumes = volumes.volumes.unwrap_or_default();
    let mut sizes: HashMap<String, u64> = HashMap::new();
    if !volumes.is_empty() {
        sizes = volume_sizes(docker).await;
        let unknown: Vec<&str> = volumes
            .iter()
            .filter(|v| v.usage_data.is_none() && !sizes.contains_key(&v.name))
            .map(|v| v.name.as_str())
            .collect();
        // Without an image of the tool's, the sizes stay unknown.
        if let (false, Some(image)) = (unknown.is_empty(), image) {
            sizes.extend(measure_volumes(docker, image, &unknown).await);
        }
    }
    Ok(volumes
        .into_iter()
        .map(|volume| Item {
            kind: Kind::Volume,
            size: volume
                .usage_data
                .as_ref()
                .and_then(|usage| u64::try_from(usage.size).ok())
                .or_else(|| sizes.get(&volume.name).copied()),
            id: volume.name.clone(),
            note: volume
                .labels
                .get(LABEL)
                .cloned()
                .filter(|v| !v.is_empty())
                .unwrap_or_default(),
            name: volume.name,
            running: false,
            image_id: None,
        })
        .collect())
}

/// Volume sizes from `system df`, when the engine answers in the shape this client reads
/// (`VolumeUsage`); older engines answer in another shape, and [`measure_volumes`] steps in.
async fn volume_sizes(docker: &Docker) -> HashMap<String, u64> {
    let options = DataUsageOptions {
        _type: Some(vec!["volume".into()]),
        verbose: true,
    };
    let Ok(usage) = docker.df(Some(options)).await else {
        return HashMap::new();
    };
    usage
        .volume_usage
        .and_then(|usage| usage.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| serde_json::from_value::<bollard::models::Volume>(item).ok())
        .filter_map(|volume| Some((volume.name, u64::try_from(volume.usage_data?.size).ok()?)))
        .collect()
}

/// Volume sizes measured by `du` in a short-lived container (offline, the volumes read-only,
/// labelled like every container of the tool's), for engines whose `system df` this client cannot
/// read. Any failure leaves the sizes unknown: a listing never fails for a size.
async fn measure_volumes(docker: &Docker, image: &str, names: &[&str]) -> HashMap<String, u64> {
    use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
    use bollard::query_parameters::{CreateContainerOptions, LogsOptions, WaitContainerOptions};
    use futures_util::StreamExt;

    let target = |i: usize| format!("/lambda-build-volumes/{i}");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(Vec::new()),
        cmd: Some(
            ["du", "-sk"]
                .into_iter()
                .map(String::from)
                .chain((0..names.len()).map(target))
                .collect(),
        ),
        user: Some("0".into()),
        labels: Some(HashMap::from([(LABEL.to_string(), "ls".to_string())])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(name.to_string()),
                        target: Some(target(i)),
                        read_only: Some(true),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!(
        "{REPOSITORY}-du-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    if docker.create_container(Some(options), body).await.is_err() {
        return HashMap::new();
    }
    let mut output = String::new();
    if docker.start_container(&name, None).await.is_ok() {
        let wait = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut waiting = docker.wait_container(&name, Some(wait));
        while let Some(Ok(_)) = waiting.next().await {}
        let logs = LogsOptions {
            stdout: true,
            ..Default::default()
        };
        let mut lines = docker.logs(&name, Some(logs));
        while let Some(Ok(chunk)) = lines.next().await {
            output.push_str(&chunk.to_string());
        }
    }
    let _ = super::container::remove(docker, &name).await;
    parse_du(&output, names, target)
}

/// `du -sk` lines (`<KiB>\t<path>`) back to volume names and bytes.
fn parse_du(
    output: &str,
    names: &[&str],
    target: impl Fn(usize) -> String,
) -> HashMap<String, u64> {
    output
        .lines()
        .filter_map(|line| {
            let (kib, path) = line.split_once('\t')?;
            let i = (0..names.len()).find(|&i| target(i) == path.trim())?;
            Some((names[i].to_string(), kib.trim().parse::<u64>().ok()? * 1024))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn du_output_maps_back_to_volume_names() {
        let target = |i: usize| format!("/v/{i}");
        let sizes = parse_du(
            "12\t/v/0\nnoise\n4\t/v/1\n8\t/elsewhere\n",
            &["src", "target"],
            target,
        );
        assert_eq!(
            sizes,
            HashMap::from([("src".to_string(), 12 * 1024), ("target".to_string(), 4096)])
        );
    }
}

/// What became of one item in `clean`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Removed,
    /// A running container, left alone without `--force`.
    KeptRunning,
    /// The image of a container left running.
    KeptInUse,
    Failed(String),
}

/// Removes the items: containers first (an image or volume in use cannot go), then images, then
/// volumes. Running containers only with `force`. Never stops at a failure: each item's outcome
/// is returned.
pub async fn remove(docker: &Docker, items: &[Item], force: bool) -> Vec<(Item, Outcome)> {
    let mut outcomes = Vec::new();
    let mut ordered: Vec<&Item> = items.iter().collect();
    ordered.sort_by_key(|item| item.kind);
    let kept = |item: &Item| item.kind == Kind::Container && item.running && !force;
    let in_use: Vec<&str> = items
        .iter()
        .filter(|item| kept(item))
        .filter_map(|item| item.image_id.as_deref())
        .collect();
    for item in ordered {
        let result = match item.kind {
            _ if kept(item) => {
                outcomes.push((item.clone(), Outcome::KeptRunning));
                continue;
            }
            Kind::Image if in_use.contains(&item.id.as_str()) => {
                outcomes.push((item.clone(), Outcome::KeptInUse));
                continue;
            }
            Kind::Container => docker
                .remove_container(
                    &item.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map(drop),
            // By tag: an image that also has other names keeps them.
            Kind::Image => docker
                .remove_image(&item.name, Some(RemoveImageOptions::default()), None)
                .await
                .map(drop),
            Kind::Volume => docker
                .remove_volume(&item.name, Some(RemoveVolumeOptions { force: false }))
                .await
                .map(drop),
        };
        let outcome = match result {
            Ok(()) => Outcome::Removed,
            // Gone meanwhile (another clean, a run that finished): what was asked holds.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Outcome::Removed,
            Err(e) => Outcome::Failed(super::engine::engine_message(&e)),
        };
        outcomes.push((item.clone(), outcome));
    }
    outcomes
}
