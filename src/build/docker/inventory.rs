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

use crate::error::Result;

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
    /// the engine does not say (volume sizes need API 1.42's `system df`).
    pub size: Option<u64>,
    /// A container that runs: perhaps a build in progress.
    pub running: bool,
    /// The container's state, or what else is worth knowing.
    pub note: String,
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
    let mut items = Vec::new();

    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            size: true,
            filters: label_filter(),
            ..Default::default()
        }))
        .await
        .map_err(|e| failure("list containers", e))?;
    for container in containers {
        let name = container
            .names
            .as_ref()
            .and_then(|names| names.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .or_else(|| container.id.clone())
            .unwrap_or_default();
        let state = container.state.map(|s| s.to_string()).unwrap_or_default();
        items.push(Item {
            kind: Kind::Container,
            name,
            id: container.id.unwrap_or_default(),
            size: bytes(container.size_rw),
            running: matches!(state.as_str(), "running" | "restarting" | "paused"),
            note: state,
        });
    }

    let images = docker
        .list_images(Some(ListImagesOptions::default()))
        .await
        .map_err(|e| failure("list images", e))?;
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
            });
        }
    }

    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: label_filter(),
        }))
        .await
        .map_err(|e| failure("list volumes", e))?;
    let mut volumes = volumes.volumes.unwrap_or_default();
    if !volumes.is_empty() {
        let sizes = volume_sizes(docker).await;
        for volume in &mut volumes {
            if volume.usage_data.is_none() {
                volume.usage_data = sizes.get(&volume.name).cloned();
            }
        }
    }
    for volume in volumes {
        items.push(Item {
            kind: Kind::Volume,
            size: volume
                .usage_data
                .as_ref()
                .and_then(|usage| u64::try_from(usage.size).ok()),
            id: volume.name.clone(),
            note: volume
                .labels
                .get(LABEL)
                .cloned()
                .filter(|v| !v.is_empty())
                .unwrap_or_default(),
            name: volume.name,
            running: false,
        });
    }
    items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(items)
}

/// Volume sizes from `system df`, when the engine's API has them in the shape this client reads
/// (`VolumeUsage`, API 1.52); an older engine answers in another shape, and sizes stay unknown.
async fn volume_sizes(docker: &Docker) -> HashMap<String, bollard::models::VolumeUsageData> {
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
        .filter_map(|volume| Some((volume.name, volume.usage_data?)))
        .collect()
}

/// What became of one item in `clean`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Removed,
    /// A running container, left alone without `--force`.
    KeptRunning,
    Failed(String),
}

/// Removes the items: containers first (an image or volume in use cannot go), then images, then
/// volumes. Running containers only with `force`. Never stops at a failure: each item's outcome
/// is returned.
pub async fn remove(docker: &Docker, items: &[Item], force: bool) -> Vec<(Item, Outcome)> {
    let mut outcomes = Vec::new();
    let mut ordered: Vec<&Item> = items.iter().collect();
    ordered.sort_by_key(|item| item.kind);
    for item in ordered {
        let result = match item.kind {
            Kind::Container if item.running && !force => {
                outcomes.push((item.clone(), Outcome::KeptRunning));
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
            Err(e) => Outcome::Failed(super::image::engine_message(&e)),
        };
        outcomes.push((item.clone(), outcome));
    }
    outcomes
}
