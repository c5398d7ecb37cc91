//! The image's JSON documents: the base's manifest or index read, the platform chosen, the
//! config with the function's layer added, the manifest written, and an OCI layout directory.
//! Pure data: no registry here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::layer::{Layer, digest_of};
use crate::arch::Arch;
use crate::lambda;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Every kind of document a base reference may name, for the registry's `Accept`.
pub const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// A single-platform image manifest, Docker v2 schema 2 or OCI (the same fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

/// What a base reference named: one image, or an index of several.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(Manifest),
    /// The platforms an index lists, each with the digest of its manifest.
    Index(Vec<Descriptor>),
}

/// `bytes` as the document its media type (the registry's `Content-Type`, else the document's
/// own `mediaType`, else its shape) says it is.
pub fn parse_document(bytes: &[u8]) -> Result<Document, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON document: {e}"))?;
    let media_type = value.get("mediaType").and_then(Value::as_str);
    let is_index = match media_type {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(format!("unknown media type `{other}`")),
        None => value.get("manifests").is_some(),
    };
    if is_index {
        let index: Index =
            serde_json::from_value(value).map_err(|e| format!("not an image index: {e}"))?;
        Ok(Document::Index(index.manifests))
    } else {
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| format!("not an image manifest: {e}"))?;
        Ok(Document::Manifest(manifest))
    }
}

/// The platform a function of `arch` runs on: `linux/amd64` or `linux/arm64`.
pub fn platform(arch: Arch) -> Platform {
    Platform {
        architecture: arch.oci_name().to_owned(),
        os: "linux".to_owned(),
        variant: None,
    }
}

/// The index entry for `arch` (any arm64 variant: Lambda's Graviton is v8 and up), or the
/// platforms the index has, for the error.
pub fn choose(entries: &[Descriptor], arch: Arch) -> Result<&Descriptor, Vec<String>> {
    let wanted = platform(arch);
    entries
        .iter()
        .find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|p| p.os == wanted.os && p.architecture == wanted.architecture)
        })
        .ok_or_else(|| {
            (entries.iter())
                .filter_map(|entry| entry.platform.as_ref().map(ToString::to_string))
                .collect()
        })
}

/// The two families of media types: the image keeps the base's, so that every descriptor of
/// one manifest speaks the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Docker,
    Oci,
}

impl Family {
    pub fn of(manifest: &Manifest) -> Family {
        match manifest.media_type.as_deref() {
            Some(DOCKER_MANIFEST) => Family::Docker,
            _ if manifest.config.media_type == DOCKER_CONFIG => Family::Docker,
            _ => Family::Oci,
        }
    }

    pub fn manifest_type(self) -> &'static str {
        match self {
            Family::Docker => DOCKER_MANIFEST,
            Family::Oci => OCI_MANIFEST,
        }
    }

    fn config_type(self) -> &'static str {
        match self {
            Family::Docker => DOCKER_CONFIG,
            Family::Oci => OCI_CONFIG,
        }
    }

    fn layer_type(self) -> &'static str {
        match self {
            Family::Docker => DOCKER_LAYER,
            Family::Oci => OCI_LAYER,
        }
    }
}

/// The base's config with the function's layer on top: its `diff_id` appended, a history
/// entry for it, `Cmd` set to the handler and the entrypoint kept; `created` is the layer's
/// time, so the config depends on nothing but the base and the layer. Refuses a base whose
/// config is not `linux` on `arch`.
pub fn image_config(
    base: &[u8],
    layer: &Layer,
    arch: Arch,
    created: &str,
) -> Result<Vec<u8>, String> {
    let mut config: Value =
        serde_json::from_slice(base).map_err(|e| format!("its config is not JSON: {e}"))?;
    let wanted = platform(arch);
    let field = |name: &str| config.get(name).and_then(Value::as_str).unwrap_or("");
    if field("os") != wanted.os || field("architecture") != wanted.architecture {
        return Err(format!(
            "it is an image for `{}/{}`, and the function is built for `{wanted}`",
            field("os"),
            field("architecture")
        ));
    }
    let Some(object) = config.as_object_mut() else {
        return Err("its config is not a JSON object".into());
    };
    object.insert("created".into(), created.into());
    let rootfs = object
        .entry("rootfs")
        .or_insert_with(|| serde_json::json!({"type": "layers", "diff_ids": []}));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(ids) => ids.push(layer.diff_id.clone().into()),
        None => return Err("its config has no `rootfs.diff_ids`".into()),
    }
    let history = object
        .entry("history")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(history) = history.as_array_mut() {
        history.push(serde_json::json!({
            "created": created,
            "created_by": "cargo lambda-build --image",
        }));
    }
    let run = object
        .entry("config")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(run) = run.as_object_mut() {
        run.insert("Cmd".into(), serde_json::json!([lambda::DEFAULT_HANDLER]));
    }
    serde_json::to_vec(&config).map_err(|e| e.to_string())
}

/// The image's manifest: the base's layers, then the function's.
pub fn manifest(family: Family, config: &[u8], base: &Manifest, layer: &Layer) -> Manifest {
    let mut layers = base.layers.clone();
    layers.push(Descriptor {
        media_type: family.layer_type().to_owned(),
        digest: layer.digest.clone(),
        size: layer.blob.len() as u64,
        platform: None,
    });
    Manifest {
        schema_version: 2,
        media_type: Some(family.manifest_type().to_owned()),
        config: Descriptor {
            media_type: family.config_type().to_owned(),
            digest: digest_of(config),
            size: config.len() as u64,
            platform: None,
        },
        layers,
    }
}

/// `seconds` since 1970 as RFC 3339 in UTC (`1970-01-01T00:00:00Z`), as configs write `created`.
pub fn rfc3339(seconds: u64) -> String {
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// `index.json` of an OCI layout holding one image, tagged `tag`.
pub fn layout_index(manifest: &[u8], media_type: &str, tag: &str) -> Vec<u8> {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest_of(manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    serde_json::to_vec(&index).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Layer {
        Layer {
            blob: b"gz".to_vec(),
            digest: digest_of(b"gz"),
            diff_id: digest_of(b"tar"),
            unpacked_size: 3,
        }
    }

    #[test]
    fn an_index_without_the_platform_names_the_ones_it_has() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:aa","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let Document::Index(entries) = parse_document(index).unwrap() else {
            panic!("an index")
        };
        assert_eq!(choose(&entries, Arch::X86_64).unwrap().digest, "sha256:aa");
        assert_eq!(choose(&entries, Arch::Arm64).unwrap_err(), ["linux/amd64"]);
    }

    #[test]
    fn the_config_gets_the_layer_the_handler_and_keeps_the_entrypoint() {
        let base = br#"{"architecture":"arm64","os":"linux",
            "config":{"Entrypoint":["/lambda-entrypoint.sh"],"Cmd":["x"]},
            "rootfs":{"type":"layers","diff_ids":["sha256:base"]}}"#;
        let config = image_config(base, &layer(), Arch::Arm64, &rfc3339(0)).unwrap();
        let config: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["config"]["Entrypoint"][0], "/lambda-entrypoint.sh");
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["bootstrap"]));
        assert_eq!(config["rootfs"]["diff_ids"][1], layer().diff_id);
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        let err = image_config(base, &layer(), Arch::X86_64, "").unwrap_err();
        assert!(err.contains("`linux/arm64`"), "{err}");
    }

    #[test]
    fn the_manifest_keeps_the_base_family() {
        let base = Manifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Descriptor {
                media_type: DOCKER_CONFIG.into(),
                digest: "sha256:c".into(),
                size: 1,
                platform: None,
            },
            layers: vec![],
        };
        let family = Family::of(&base);
        let m = manifest(family, b"{}", &base, &layer());
        assert_eq!(m.media_type.as_deref(), Some(DOCKER_MANIFEST));
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER);
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
