//! `--image`: the function as a container image for Lambda, assembled by the tool as ko and
//! jib do (layers as tar, config and manifest as JSON), so the same `bootstrap` and base give
//! the same digest and no engine is needed. The base (`public.ecr.aws/lambda/provided:al2023`
//! unless `image-base` says otherwise) plus one layer: `bootstrap` in `/var/runtime`, the
//! includes under `/var/task`.
//!
//! Everything Lambda checks is checked before anything is pushed or written: one manifest of
//! the function's platform (an index is resolved to it, never pushed), the size limit, a name
//! with a registry. `layer` writes the tar, `oci` the JSON documents, `registry` reaches the
//! registries.

pub mod layer;
pub mod load;
pub mod oci;
pub mod registry;

use std::path::{Path, PathBuf};

use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::arch::Arch;
use crate::config::ImageConfig;
use crate::lambda::IMAGE_LIMIT;
use crate::plan::ZipEntry;
use layer::Layer;
use oci::{Document, Family, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("`--image {name}`: {reason}")]
    BadName { name: String, reason: String },

    #[error("`--image` builds one function's image, and {count} functions are selected")]
    SeveralFunctions { count: usize },

    #[error("`--image` builds a function's image, and `{bin}` is an extension")]
    Extension { bin: String },

    #[error("cannot read the base image `{base}`: {reason}")]
    Base { base: String, reason: String },

    #[error("the base image `{base}` is an index without `{platform}`; it has: {available}")]
    NoPlatform {
        base: String,
        platform: String,
        available: String,
    },

    #[error(
        "the image would be {size} bytes uncompressed, over Lambda's limit of {IMAGE_LIMIT} \
         bytes (10 GB)"
    )]
    TooLarge { size: u64 },

    #[error("cannot get the credentials for `{registry}`: {reason}")]
    Credentials { registry: String, reason: String },

    #[error("cannot push `{name}`: {reason}")]
    Push { name: String, reason: String },

    #[error("cannot write the image's layer: {0}")]
    Layer(std::io::Error),

    /// Loading into the engine (neither `--push` nor `--image-out`).
    #[error("cannot load the image into the Docker engine: {0}")]
    Engine(Box<crate::build::docker::DockerError>),

    #[error("cannot write `{}`: {error}", .path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl ImageError {
    pub fn help(&self) -> Option<String> {
        Some(match self {
            Self::BadName { .. } => "name the registry: `--image \
                ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG]` (Lambda pulls from ECR)"
                .into(),
            Self::SeveralFunctions { .. } => {
                "select one with `--package NAME` or `--bin NAME`".into()
            }
            Self::Extension { .. } => "deploy an extension as a layer: `--extension --zip`".into(),
            Self::Base { .. } => "check the name and the network, or choose another base with \
                `--image-base REF` (or `image-base` in Cargo.toml)"
                .into(),
            Self::NoPlatform { .. } => "choose a base with the function's platform, or build for \
                one it has with `--arch`"
                .into(),
            Self::TooLarge { .. } => {
                "shrink the binary or the includes, or choose a smaller base".into()
            }
            Self::Credentials { .. } | Self::Push { .. } => "log in as the docker CLI does \
                (`docker login REGISTRY`; for ECR, `aws ecr get-login-password | docker login \
                --username AWS --password-stdin REGISTRY`), and check that the repository exists"
                .into(),
            Self::Engine(e) => format!(
                "{}; or push it with `--push`, or write it with `--image-out DIR`",
                e.help().unwrap_or_else(|| "start the engine".into())
            ),
            Self::Layer(_) | Self::Write { .. } => return None,
        })
    }
}

/// What was made: where it went and the digest to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `REGISTRY/REPOSITORY`, without tag or digest.
    pub repository: String,
    /// `sha256:...` of the manifest.
    pub digest: String,
    /// `linux/amd64` or `linux/arm64`.
    pub platform: String,
    /// Uncompressed, base included (the base's layers counted by their compressed size).
    pub size: u64,
    pub pushed: bool,
    pub layout: Option<PathBuf>,
    /// Loaded into the engine `--docker` uses, tagged NAME.
    pub loaded: bool,
}

impl Published {
    /// As the report shows it.
    pub fn report(&self) -> crate::report::ImageReport<'_> {
        crate::report::ImageReport {
            repository: &self.repository,
            digest: &self.digest,
            platform: &self.platform,
            size: self.size,
            pushed: self.pushed,
            layout: self.layout.as_deref(),
            loaded: self.loaded,
        }
    }
}

/// Refusals that need no build: a name without a registry, several functions, an extension.
pub fn check(image: &ImageConfig, functions: &[(&str, bool)]) -> Result<(), ImageError> {
    registry::parse(&image.name).map_err(|reason| ImageError::BadName {
        name: image.name.clone(),
        reason,
    })?;
    registry::parse(&image.base).map_err(|reason| ImageError::Base {
        base: image.base.clone(),
        reason,
    })?;
    if functions.len() != 1 {
        return Err(ImageError::SeveralFunctions {
            count: functions.len(),
        });
    }
    if let Some((bin, true)) = functions.first() {
        return Err(ImageError::Extension {
            bin: (*bin).to_owned(),
        });
    }
    Ok(())
}

/// The function's files and where the image goes.
pub struct Request<'a> {
    pub image: &'a ImageConfig,
    pub arch: Arch,
    pub bootstrap: &'a Path,
    pub includes: &'a [ZipEntry],
    /// `SOURCE_DATE_EPOCH`, or 0.
    pub mtime: u64,
    /// The docker CLI's config directory, for the credentials.
    pub docker_config: Option<&'a Path>,
    /// How the docker CLI reaches its engine, to load the image when it goes nowhere else.
    pub engine: &'a crate::build::docker::engine::EngineEnv,
}

/// The base and the function's layer as one image; pushed and/or written as an OCI layout.
/// `status` gets the steps, as a verb and a message.
pub fn publish(request: &Request, status: &dyn Fn(&str, String)) -> Result<Published, ImageError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ImageError::Layer)?;
    runtime.block_on(publish_async(request, status))
}

/// An image assembled in memory: its documents and the blobs that are new.
struct Assembled {
    base: Manifest,
    base_reference: Reference,
    layer: Layer,
    config: Vec<u8>,
    manifest: Vec<u8>,
    media_type: &'static str,
}

async fn publish_async(
    request: &Request<'_>,
    status: &dyn Fn(&str, String),
) -> Result<Published, ImageError> {
    let image = request.image;
    let target = registry::parse(&image.name).map_err(|reason| ImageError::BadName {
        name: image.name.clone(),
        reason,
    })?;
    let base_error = |reason: String| ImageError::Base {
        base: image.base.clone(),
        reason,
    };
    let base = registry::parse(&image.base).map_err(&base_error)?;
    let client = registry::client(&[&target, &base]);
    let base_auth = registry::credentials(base.resolve_registry(), request.docker_config)
        .map_err(&base_error)?;
    status("Pulling", format!("base image `{}`", image.base));
    let assembled = assemble(request, &client, base, &base_auth).await?;
    let size =
        assembled.layer.unpacked_size + assembled.base.layers.iter().map(|l| l.size).sum::<u64>();
    if size > IMAGE_LIMIT {
        return Err(ImageError::TooLarge { size });
    }
    let digest = layer::digest_of(&assembled.manifest);
    let repository = format!("{}/{}", target.resolve_registry(), target.repository());
    let mut published = Published {
        repository,
        digest,
        platform: oci::platform(request.arch).to_string(),
        size,
        pushed: false,
        layout: None,
        loaded: false,
    };
    if let Some(dir) = &image.out {
        write_layout(&client, &assembled, dir, tag_of(&target)).await?;
        status("Wrote", format!("OCI layout `{}`", dir.display()));
        published.layout = Some(dir.clone());
    }
    if image.push {
        push(request, &client, &target, &assembled, status).await?;
        published.pushed = true;
    }
    if !image.push && image.out.is_none() {
        let mut layers = base_layers(&client, &assembled).await?;
        layers.push((assembled.layer.digest.clone(), assembled.layer.blob.clone()));
        let tag = format!("{}:{}", published.repository, tag_of(&target));
        let archive = load::archive(&assembled.config, &layers, &tag).map_err(ImageError::Layer)?;
        load::import(archive, request.engine)
            .await
            .map_err(|e| ImageError::Engine(Box::new(e)))?;
        status("Loaded", format!("`{tag}` into the Docker engine"));
        published.loaded = true;
    }
    Ok(published)
}

fn tag_of(reference: &Reference) -> &str {
    reference.tag().unwrap_or("latest")
}

/// The base resolved to the function's platform, its config read, the layer made, the config
/// and the manifest written.
async fn assemble(
    request: &Request<'_>,
    client: &Client,
    base: Reference,
    auth: &RegistryAuth,
) -> Result<Assembled, ImageError> {
    let base_name = request.image.base.clone();
    let failed = |reason: String| ImageError::Base {
        base: base_name.clone(),
        reason,
    };
    let pull_error = |e: oci_client::errors::OciDistributionError| failed(registry::describe(&e));
    let (bytes, _) = client
        .pull_manifest_raw(&base, auth, &oci::ACCEPTED)
        .await
        .map_err(pull_error)?;
    let (manifest, base) = match oci::parse_document(&bytes).map_err(&failed)? {
        Document::Manifest(manifest) => (manifest, base),
        Document::Index(entries) => {
            let wanted = oci::platform(request.arch);
            let entry = oci::choose(&entries, request.arch).map_err(|available| {
                ImageError::NoPlatform {
                    base: base_name.clone(),
                    platform: wanted.to_string(),
                    available: if available.is_empty() {
                        "no platform named".into()
                    } else {
                        available.join(", ")
                    },
                }
            })?;
            let by_digest = base.clone_with_digest(entry.digest.clone());
            let (bytes, _) = client
                .pull_manifest_raw(&by_digest, auth, &oci::ACCEPTED)
                .await
                .map_err(pull_error)?;
            match oci::parse_document(&bytes).map_err(&failed)? {
                Document::Manifest(manifest) => (manifest, by_digest),
                Document::Index(_) => return Err(failed("its index names another index".into())),
            }
        }
    };
    let mut base_config = Vec::new();
    client
        .pull_blob(&base, &manifest.config, &mut base_config)
        .await
        .map_err(pull_error)?;
    let layer = layer::function_layer(request.bootstrap, request.includes, request.mtime)
        .map_err(ImageError::Layer)?;
    let created = oci::rfc3339(request.mtime);
    let config =
        oci::image_config(&base_config, &layer, request.arch, &created).map_err(&failed)?;
    let family = Family::of(&manifest);
    let document = oci::manifest(family, &config, &manifest, &layer);
    let manifest_bytes = serde_json::to_vec(&document).map_err(|e| failed(e.to_string()))?;
    Ok(Assembled {
        base: manifest,
        base_reference: base,
        layer,
        config,
        manifest: manifest_bytes,
        media_type: family.manifest_type(),
    })
}

impl oci_client::client::AsLayerDescriptor for &oci::Descriptor {
    fn as_layer_descriptor(&self) -> oci_client::client::LayerDescriptor<'_> {
        oci_client::client::LayerDescriptor {
            digest: &self.digest,
            urls: &None,
        }
    }
}

/// The base's layers (mounted from the base's repository on the same registry, else copied),
/// the function's layer, the config, then the manifest under the name's tag.
async fn push(
    request: &Request<'_>,
    client: &Client,
    target: &Reference,
    image: &Assembled,
    status: &dyn Fn(&str, String),
) -> Result<(), ImageError> {
    let name = &request.image.name;
    let failed = |reason: String| ImageError::Push {
        name: name.clone(),
        reason,
    };
    let push_error = |e: oci_client::errors::OciDistributionError| failed(registry::describe(&e));
    let registry = target.resolve_registry();
    let auth = registry::credentials(registry, request.docker_config).map_err(|reason| {
        ImageError::Credentials {
            registry: registry.to_owned(),
            reason,
        }
    })?;
    // Authenticates for push first: refused credentials fail here, before any upload.
    client
        .auth(target, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(push_error)?;
    status("Pushing", format!("`{name}`"));
    let same_registry = image.base_reference.resolve_registry() == registry;
    for layer in &image.base.layers {
        if client
            .blob_exists(target, &layer.digest)
            .await
            .map_err(push_error)?
        {
            continue;
        }
        if same_registry
            && client
                .mount_blob(target, &image.base_reference, &layer.digest)
                .await
                .is_ok()
            && client
                .blob_exists(target, &layer.digest)
                .await
                .unwrap_or(false)
        {
            continue;
        }
        let mut blob = Vec::new();
        client
            .pull_blob(&image.base_reference, layer, &mut blob)
            .await
            .map_err(|e| {
                failed(format!(
                    "cannot copy the base's layer: {}",
                    registry::describe(&e)
                ))
            })?;
        client
            .push_blob(target, blob, &layer.digest)
            .await
            .map_err(push_error)?;
    }
    for (blob, digest) in [
        (&image.layer.blob, &image.layer.digest),
        (&image.config, &layer::digest_of(&image.config)),
    ] {
        if !client
            .blob_exists(target, digest)
            .await
            .map_err(push_error)?
        {
            client
                .push_blob(target, blob.clone(), digest)
                .await
                .map_err(push_error)?;
        }
    }
    let tagged = target.clone_with_digest(String::new());
    let tagged = Reference::with_tag(
        tagged.registry().to_owned(),
        tagged.repository().to_owned(),
        tag_of(target).to_owned(),
    );
    let content_type = image
        .media_type
        .parse()
        .map_err(|_| failed("bad media type".into()))?;
    client
        .push_manifest_raw(&tagged, image.manifest.clone(), content_type)
        .await
        .map_err(push_error)?;
    Ok(())
}

/// The base's layers, downloaded: what a layout or the engine needs besides the new blobs.
async fn base_layers(
    client: &Client,
    image: &Assembled,
) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let mut layers = Vec::with_capacity(image.base.layers.len());
    for layer in &image.base.layers {
        let mut blob = Vec::new();
        client
            .pull_blob(&image.base_reference, layer, &mut blob)
            .await
            .map_err(|e| ImageError::Base {
                base: image.base_reference.whole(),
                reason: registry::describe(&e),
            })?;
        layers.push((layer.digest.clone(), blob));
    }
    Ok(layers)
}

/// An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`), written beside `dir` and
/// renamed into place: a failed run leaves the previous directory as it was.
async fn write_layout(
    client: &Client,
    image: &Assembled,
    dir: &Path,
    tag: &str,
) -> Result<(), ImageError> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write_error = |path: &Path, error| ImageError::Write {
        path: path.to_path_buf(),
        error,
    };
    std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".image-out.")
        .tempdir_in(parent)
        .map_err(|e| write_error(parent, e))?;
    let blobs = staging.path().join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| write_error(&blobs, e))?;
    let put = |name: &str, bytes: &[u8]| {
        let path = match name.strip_prefix("sha256:") {
            Some(hex) => blobs.join(hex),
            None => staging.path().join(name),
        };
        std::fs::write(&path, bytes).map_err(|e| write_error(&path, e))
    };
    for (digest, blob) in base_layers(client, image).await? {
        put(&digest, &blob)?;
    }
    put(&image.layer.digest, &image.layer.blob)?;
    put(&layer::digest_of(&image.config), &image.config)?;
    put(&layer::digest_of(&image.manifest), &image.manifest)?;
    put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    put(
        "index.json",
        &oci::layout_index(&image.manifest, image.media_type, tag),
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| write_error(dir, e))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).map_err(|e| write_error(dir, e))
}
