//! Without `--push` or `--image-out`: the image loaded into the engine `--docker` uses, as a
//! `docker save` archive (`manifest.json`, the config, one file per layer, the layers kept
//! gzipped: the engine decompresses them) through the Engine API's `/images/load`.

use futures_util::StreamExt as _;

use crate::build::docker::DockerError;
use crate::build::docker::engine::{self, EngineEnv};

/// The archive `docker load` reads: the config, the layers (`digest` and bytes, base first) and
/// `manifest.json` naming them and the tag.
pub fn archive(config: &[u8], layers: &[(String, Vec<u8>)], tag: &str) -> std::io::Result<Vec<u8>> {
    let hex = |digest: &str| digest.trim_start_matches("sha256:").to_owned();
    let config_name = format!("{}.json", hex(&super::layer::digest_of(config)));
    let layer_names: Vec<String> = (layers.iter())
        .map(|(digest, _)| format!("{}/layer.tar", hex(digest)))
        .collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": layer_names,
    }]);
    let manifest = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, name, bytes)
    };
    add(&config_name, config)?;
    for (name, (_, bytes)) in layer_names.iter().zip(layers) {
        add(name, bytes)?;
    }
    add("manifest.json", &manifest)?;
    tar.into_inner()
}

/// Loads `archive` into the engine the docker CLI reaches (`DOCKER_HOST`, the context).
pub async fn import(archive: Vec<u8>, engine_env: &EngineEnv) -> Result<(), DockerError> {
    let endpoint = engine::resolve(engine_env, &engine::Disk)?;
    let docker = engine::connect(&endpoint).await?;
    let options = bollard::query_parameters::ImportImageOptionsBuilder::new()
        .quiet(true)
        .build();
    let mut progress = docker.import_image(options, bollard::body_full(archive.into()), None);
    while let Some(step) = progress.next().await {
        step.map_err(|e| engine::failure("load the image", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_names_the_config_the_layers_and_the_tag() {
        let layers = [("sha256:aa".to_owned(), b"gz".to_vec())];
        let archive = archive(b"{}", &layers, "127.0.0.1:5000/f:v1").unwrap();
        let mut tar = tar::Archive::new(archive.as_slice());
        let names: Vec<String> = (tar.entries().unwrap())
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let config = format!("{}.json", &super::super::layer::digest_of(b"{}")[7..]);
        assert_eq!(names, [config.as_str(), "aa/layer.tar", "manifest.json"]);
    }
}
