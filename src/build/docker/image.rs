//! The build image: which Dockerfile defines it, the tag that names it, and building it when the
//! engine does not have that tag yet.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::build::BuildError;
use crate::report::Reporter;

use super::DockerError;
use crate::signal::Interrupt;

/// The bundled default image (Amazon Linux 2023), embedded so that an installed binary needs
/// nothing beside it.
pub const BUNDLED_DOCKERFILE: &str = include_str!("../../../lambda.Dockerfile");

/// The file name a project uses to bring its own image.
pub const PROJECT_DOCKERFILE: &str = "lambda.Dockerfile";

/// The repository part of the tags this tool gives the images it builds.
pub const REPOSITORY: &str = "cargo-lambda-build";

/// Label on every image and container this tool creates (`docker ps -a --filter label=...`).
pub const LABEL: &str = "cargo-lambda-build";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// `--dockerfile`, or a project's `lambda.Dockerfile`.
    File(PathBuf),
    /// [`BUNDLED_DOCKERFILE`].
    Bundled,
}

impl fmt::Display for DockerfileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerfileSource::File(path) => write!(f, "{}", path.display()),
            DockerfileSource::Bundled => f.write_str("the bundled Amazon Linux 2023 Dockerfile"),
        }
    }
}

/// What the container runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChoice {
    /// `--docker-image NAME`: used as it is, never built.
    Existing(String),
    Build(DockerfileSource),
}

/// `--docker-image`, else `--dockerfile` (what is typed on the command line wins over what is
/// found), else `lambda.Dockerfile` in the package root, else in the workspace root, else the
/// bundled Dockerfile.
pub fn choose(
    image: Option<&str>,
    dockerfile: Option<&Path>,
    package_root: &Path,
    workspace_root: &Path,
    is_file: impl Fn(&Path) -> bool,
) -> ImageChoice {
    if let Some(image) = image {
        return ImageChoice::Existing(image.to_string());
    }
    if let Some(path) = dockerfile {
        return ImageChoice::Build(DockerfileSource::File(path.to_path_buf()));
    }
    let found = [package_root, workspace_root]
        .into_iter()
        .map(|dir| dir.join(PROJECT_DOCKERFILE))
        .find(|path| is_file(path));
    ImageChoice::Build(found.map_or(DockerfileSource::Bundled, DockerfileSource::File))
}

/// A Dockerfile read and ready to build: its text, the build arguments, and the tag both give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecipe {
    pub source: DockerfileSource,
    pub dockerfile: String,
    /// Sorted by name, so the tag does not depend on an order.
    pub build_args: Vec<(String, String)>,
    pub tag: String,
    /// `linux/arm64`: built for that platform rather than the engine's own (to run a function
    /// of the other architecture under the engine's emulation).
    pub platform: Option<String>,
}

impl ImageRecipe {
    pub fn new(
        source: DockerfileSource,
        dockerfile: String,
        mut build_args: Vec<(String, String)>,
    ) -> ImageRecipe {
        build_args.sort();
        let tag = tag_for(&dockerfile, &build_args);
        ImageRecipe {
            source,
            dockerfile,
            build_args,
            tag,
            platform: None,
        }
    }

    /// The same image built for `platform` (`linux/arm64`), tagged apart (`-arm64`) so that it
    /// never replaces the image of the engine's own architecture that builds use.
    pub fn for_platform(self, platform: &str) -> ImageRecipe {
        let arch = platform.rsplit('/').next().unwrap_or(platform);
        ImageRecipe {
            tag: format!("{}-{arch}", self.tag),
            platform: Some(platform.to_owned()),
            ..self
        }
    }

    /// Reads the Dockerfile of `source`.
    pub fn load(
        source: DockerfileSource,
        build_args: Vec<(String, String)>,
    ) -> Result<Self, DockerError> {
        let text = match &source {
            DockerfileSource::Bundled => BUNDLED_DOCKERFILE.to_string(),
            DockerfileSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| DockerError::DockerfileRead {
                    path: path.clone(),
                    source,
                })?
            }
        };
        Ok(ImageRecipe::new(source, text, build_args))
    }

    /// The build context: a tar holding only the Dockerfile, never the project or `target/`
    /// (sending gigabytes of `target/` to the engine is what makes naive Docker builds slow).
    pub fn context(&self) -> Result<Vec<u8>, BuildError> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(self.dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, "Dockerfile", self.dockerfile.as_bytes())
            .and_then(|()| builder.into_inner())
            .map_err(|e| anyhow::anyhow!("cannot make the image build context: {e}").into())
    }
}

/// `cargo-lambda-build:<16 hex digits of SHA-256>` over the Dockerfile and the build arguments:
/// the same inputs give the same tag, so an image that exists is reused instead of rebuilt.
pub fn tag_for(dockerfile: &str, build_args: &[(String, String)]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"cargo-lambda-build image 1\0");
    hash.update(dockerfile.as_bytes());
    for (name, value) in build_args {
        hash.update(b"\0");
        hash.update(name.as_bytes());
        hash.update(b"=");
        hash.update(value.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{REPOSITORY}:{hex}")
}

/// The names of the build arguments a Dockerfile declares (`ARG NAME` or `ARG NAME=default`,
/// several on one line too), in order: a `--docker-build-arg` it does not declare would be
/// ignored by the engine with only a warning, so it is refused instead.
pub fn declared_args(dockerfile: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut continued = false;
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        let is_instruction = !continued && !trimmed.starts_with('#');
        continued = trimmed.ends_with('\\');
        if !is_instruction {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        if !words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("ARG"))
        {
            continue;
        }
        for word in words {
            let name = word.split_once('=').map_or(word, |(name, _)| name);
            if !name.is_empty() && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The build arguments of an image build: the tool's own (`RUST_VERSION`), then the user's
/// `--docker-build-arg`s, which win. A user's argument that the Dockerfile does not declare is
/// refused, naming the ones it does.
pub fn build_args(
    source: &DockerfileSource,
    dockerfile: &str,
    tool: Vec<(String, String)>,
    user: &[(String, String)],
) -> Result<Vec<(String, String)>, DockerError> {
    let declared = declared_args(dockerfile);
    if let Some((name, _)) = user.iter().find(|(name, _)| !declared.contains(name)) {
        return Err(DockerError::UndeclaredBuildArg {
            name: name.clone(),
            dockerfile: source.to_string(),
            declared,
        });
    }
    let mut args: Vec<(String, String)> = tool
        .into_iter()
        .filter(|(name, _)| !user.iter().any(|(n, _)| n == name))
        .collect();
    args.extend(user.iter().cloned());
    Ok(args)
}

/// The `RUST_VERSION` build argument from `cargo -V` (`cargo 1.95.0 (f2d3ce0bd 2026-03-21)`):
/// `1.95.0` for a stable toolchain, the channel name for a beta or nightly one (rustup installs
/// those by channel; pin a dated nightly in your own `lambda.Dockerfile`).
pub fn rust_version_from(cargo_version: &str) -> Option<String> {
    let version = cargo_version.split_whitespace().nth(1)?;
    match version.split_once('-') {
        Some((_, pre)) => {
            let channel = pre.split('.').next().unwrap_or(pre);
            Some(channel.to_string())
        }
        None => Some(version.to_string()),
    }
}

/// Whether the engine has `name`.
pub async fn exists(docker: &Docker, name: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(name).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(super::engine::failure(format!("inspect image `{name}`"), e)),
    }
}

/// The image's `ENV`, as name and value: what its containers start with.
pub async fn env_of(docker: &Docker, name: &str) -> Result<Vec<(String, String)>, DockerError> {
    let image = docker
        .inspect_image(name)
        .await
        .map_err(|e| super::engine::failure(format!("inspect image `{name}`"), e))?;
    Ok(image
        .config
        .and_then(|config| config.env)
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}

/// Builds the image unless its tag exists. Progress goes to the reporter: the current step on a
/// spinner (every line of output at `-v`); on failure, the error carries Docker's message and the
/// last lines of output.
pub async fn ensure(
    docker: &Docker,
    recipe: &ImageRecipe,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<(), BuildError> {
    if exists(docker, &recipe.tag).await? {
        reporter.status(
            "Reusing",
            format!("image {} ({})", recipe.tag, recipe.source),
        );
        return Ok(());
    }
    reporter.status(
        "Building",
        format!("image {} from {}", recipe.tag, recipe.source),
    );
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(recipe.tag.clone()),
        rm: true,
        forcerm: true,
        buildargs: Some(recipe.build_args.iter().cloned().collect()),
        platform: recipe.platform.clone().unwrap_or_default(),
        labels: Some(HashMap::from([
            (LABEL.to_string(), "image".to_string()),
            (format!("{LABEL}.dockerfile"), recipe.source.to_string()),
        ])),
        ..Default::default()
    };
    let body = bollard::body_full(recipe.context()?.into());
    let mut stream = docker.build_image(options, None, Some(body));
    let mut tail = Tail::new(40);
    reporter.start_spinner("Building", "image");
    let result = loop {
        if let Err(e) = interrupt.check() {
            // Dropping the stream closes the connection, and the engine cancels the build.
            break Err(e.into());
        }
        let item = match tokio::time::timeout(Duration::from_millis(100), stream.next()).await {
            Err(_elapsed) => continue,
            Ok(None) => break Ok(()),
            Ok(Some(item)) => item,
        };
        match item {
            Ok(info) => {
                if let Some(text) = &info.stream {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        tail.push(line);
                        if line.starts_with("Step ") {
                            reporter.spinner_message(line);
                        }
                        reporter.detail_line(line);
                    }
                }
                if let Some(status) = &info.status {
                    tail.push(status);
                }
                if let Some(message) = info.error_detail.and_then(|detail| detail.message) {
                    break Err(image_build_error(recipe, message).into());
                }
            }
            // A broken connection is the engine's failure, not the Dockerfile's.
            Err(e @ bollard::errors::Error::DockerStreamError { .. })
            | Err(e @ bollard::errors::Error::DockerResponseServerError { .. }) => {
                break Err(image_build_error(recipe, super::engine::engine_message(&e)).into());
            }
            Err(e) => break Err(super::engine::failure("build the image", e).into()),
        }
    };
    reporter.finish_progress();
    if let Err(e @ BuildError::Docker(DockerError::ImageBuild { .. })) = result {
        // At `-v` every line was shown already.
        if !reporter.verbose() {
            for line in &tail.lines {
                reporter.cargo_line(line);
            }
        }
        return Err(e);
    }
    result?;
    // Some engines end the stream without an error although the build did not tag anything.
    if !exists(docker, &recipe.tag).await? {
        return Err(image_build_error(
            recipe,
            "the engine reported no error but the image does not exist".into(),
        )
        .into());
    }
    Ok(())
}

fn image_build_error(recipe: &ImageRecipe, message: String) -> DockerError {
    DockerError::ImageBuild {
        source_name: recipe.source.to_string(),
        message: message.trim().to_string(),
        bundled: recipe.source == DockerfileSource::Bundled,
    }
}

/// The last lines of the image build's output, for the error.
struct Tail {
    lines: Vec<String>,
    keep: usize,
}

impl Tail {
    fn new(keep: usize) -> Tail {
        Tail {
            lines: Vec::new(),
            keep,
        }
    }

    fn push(&mut self, line: &str) {
        if self.lines.len() == self.keep {
            self.lines.remove(0);
        }
        self.lines.push(line.trim_end().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_package_then_the_workspace_then_the_bundled_file() {
        let pkg = Path::new("/ws/api");
        let ws = Path::new("/ws");
        let everywhere = |_: &Path| true;
        let nowhere = |_: &Path| false;
        assert_eq!(
            choose(Some("img:1"), Some(Path::new("/x")), pkg, ws, everywhere),
            ImageChoice::Existing("img:1".into())
        );
        assert_eq!(
            choose(None, Some(Path::new("/ci/D")), pkg, ws, everywhere),
            ImageChoice::Build(DockerfileSource::File("/ci/D".into()))
        );
        assert_eq!(
            choose(None, None, pkg, ws, everywhere),
            ImageChoice::Build(DockerfileSource::File("/ws/api/lambda.Dockerfile".into()))
        );
        assert_eq!(
            choose(None, None, pkg, ws, |p: &Path| p
                == Path::new("/ws/lambda.Dockerfile")),
            ImageChoice::Build(DockerfileSource::File("/ws/lambda.Dockerfile".into()))
        );
        assert_eq!(
            choose(None, None, pkg, ws, nowhere),
            ImageChoice::Build(DockerfileSource::Bundled)
        );
    }

    #[test]
    fn the_tag_depends_on_the_dockerfile_and_the_arguments_only() {
        let args = |v: &str| vec![("RUST_VERSION".to_string(), v.to_string())];
        let a = ImageRecipe::new(DockerfileSource::Bundled, "FROM x\n".into(), args("1.95.0"));
        let same = ImageRecipe::new(
            DockerfileSource::File("/elsewhere".into()),
            "FROM x\n".into(),
            args("1.95.0"),
        );
        assert_eq!(a.tag, same.tag);
        assert!(a.tag.starts_with("cargo-lambda-build:"), "{}", a.tag);
        assert_eq!(a.tag.len(), "cargo-lambda-build:".len() + 16);
        let other_file =
            ImageRecipe::new(DockerfileSource::Bundled, "FROM y\n".into(), args("1.95.0"));
        let other_rust =
            ImageRecipe::new(DockerfileSource::Bundled, "FROM x\n".into(), args("1.96.0"));
        assert_ne!(a.tag, other_file.tag);
        assert_ne!(a.tag, other_rust.tag);
        // Argument order does not matter.
        let two = |first: (&str, &str), second: (&str, &str)| {
            ImageRecipe::new(
                DockerfileSource::Bundled,
                "FROM x\n".into(),
                [first, second]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .tag
        };
        assert_eq!(two(("A", "1"), ("B", "2")), two(("B", "2"), ("A", "1")));
    }

    #[test]
    fn the_context_holds_the_dockerfile_alone() {
        let recipe = ImageRecipe::new(DockerfileSource::Bundled, "FROM scratch\n".into(), vec![]);
        let bytes = recipe.context().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, String)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                (entry.path().unwrap().display().to_string(), text)
            })
            .collect();
        assert_eq!(
            entries,
            [("Dockerfile".to_string(), "FROM scratch\n".to_string())]
        );
        // The same recipe gives the same bytes.
        assert_eq!(bytes, recipe.context().unwrap());
    }

    #[test]
    fn declared_arguments_are_read_like_docker_reads_them() {
        let text = "ARG BASE_IMAGE=x\nFROM ${BASE_IMAGE}\n# ARG COMMENTED\narg lower=1 Two\n\
                    RUN echo \\\n  ARG NOT_AN_INSTRUCTION\nARG RUST_VERSION\n";
        assert_eq!(
            declared_args(text),
            ["BASE_IMAGE", "lower", "Two", "RUST_VERSION"]
        );
        assert_eq!(
            declared_args(BUNDLED_DOCKERFILE),
            [
                "BASE_IMAGE",
                "RUST_VERSION",
                "CARGO_ZIGBUILD_VERSION",
                "ZIGLANG_VERSION"
            ]
        );
    }

    #[test]
    fn the_users_build_arguments_win_and_must_be_declared() {
        let tool = vec![("RUST_VERSION".to_string(), "1.95.0".to_string())];
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let args = build_args(
            &DockerfileSource::Bundled,
            BUNDLED_DOCKERFILE,
            tool.clone(),
            &[
                pair("BASE_IMAGE", "mirror/al:2023"),
                pair("RUST_VERSION", "1.90.0"),
            ],
        )
        .unwrap();
        assert_eq!(
            args,
            [
                pair("BASE_IMAGE", "mirror/al:2023"),
                pair("RUST_VERSION", "1.90.0")
            ]
        );
        let with_mirror =
            ImageRecipe::new(DockerfileSource::Bundled, BUNDLED_DOCKERFILE.into(), args);
        let plain = ImageRecipe::new(
            DockerfileSource::Bundled,
            BUNDLED_DOCKERFILE.into(),
            tool.clone(),
        );
        assert_ne!(
            with_mirror.tag, plain.tag,
            "the tag covers the build arguments"
        );

        let err = build_args(
            &DockerfileSource::File("/p/lambda.Dockerfile".into()),
            "FROM x\nARG A\n",
            tool,
            &[pair("BASE_IMAGE", "m")],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`BASE_IMAGE`") && text.contains("/p/lambda.Dockerfile"),
            "{text}"
        );
        let help = err.help().unwrap();
        assert!(
            help.contains("ARG BASE_IMAGE") && help.contains("`A`"),
            "{help}"
        );
    }

    #[test]
    fn rust_version_comes_from_cargo_version() {
        assert_eq!(
            rust_version_from("cargo 1.95.0 (f2d3ce0bd 2026-03-21)").as_deref(),
            Some("1.95.0")
        );
        assert_eq!(
            rust_version_from("cargo 1.97.0-nightly (abc 2026-05-01)").as_deref(),
            Some("nightly")
        );
        assert_eq!(
            rust_version_from("cargo 1.96.0-beta.3 (abc 2026-05-01)").as_deref(),
            Some("beta")
        );
        assert_eq!(rust_version_from("garbage"), None);
    }

    /// The bundled image cannot be built here (nothing can be pulled), so its content is checked.
    #[test]
    fn the_bundled_dockerfile_is_amazon_linux_2023_with_rust_for_both_targets() {
        let text = BUNDLED_DOCKERFILE;
        let from: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(from, ["FROM ${BASE_IMAGE}"]);
        // The base image is an argument (registry mirrors), declared before FROM with AL2023 as
        // its default.
        let base = text
            .lines()
            .position(|l| l == "ARG BASE_IMAGE=public.ecr.aws/amazonlinux/amazonlinux:2023")
            .expect("ARG BASE_IMAGE with Amazon Linux 2023 as default");
        let from_at = text.lines().position(|l| l.starts_with("FROM ")).unwrap();
        assert!(base < from_at, "ARG BASE_IMAGE must come before FROM");
        assert!(
            text.contains("ARG RUST_VERSION"),
            "no RUST_VERSION argument"
        );
        assert!(text.contains("--default-toolchain \"${RUST_VERSION}\""));
        for needed in [
            "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=",
            "CC_aarch64_unknown_linux_gnu=",
            "linux-gnu.2.34",
            "chmod -R a+rX",
        ] {
            assert!(
                text.contains(needed),
                "`{needed}` missing from lambda.Dockerfile"
            );
        }
        // Every instruction line is one Docker knows (a typo would only show on a real engine).
        let known = [
            "FROM", "ARG", "RUN", "ENV", "LABEL", "COPY", "WORKDIR", "USER", "CMD", "SHELL",
        ];
        let mut continued = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if !continued && !trimmed.is_empty() && !trimmed.starts_with('#') {
                let word = trimmed.split_whitespace().next().unwrap();
                assert!(
                    known.contains(&word),
                    "unknown instruction `{word}` in: {line}"
                );
            }
            continued = trimmed.ends_with('\\');
        }
    }
}
