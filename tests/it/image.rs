//! `--image`: the function assembled on a base image by the tool, pushed to a registry without
//! an engine, read back by skopeo. The registry is Debian's `docker-registry` on a loopback
//! port (plain HTTP, as the docker CLI allows there); the stand-in base is written here, layer
//! by layer, as a registry client would push it (the Amazon base cannot be pulled in CI).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::{self, MAIN, assert_refused, crate_with, lambda_build, require_tools};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A registry on a free loopback port, its storage in a temporary directory; killed on drop.
struct Registry {
    child: Child,
    host: String,
    /// The `Authorization` header of the user `HTPASSWD` knows, when it asks for one.
    login: Option<String>,
    _root: tempfile::TempDir,
}

/// The user `user` with the password `pass`, as htpasswd writes it (bcrypt, which is all the
/// registry takes), computed once so the test needs no htpasswd tool.
const HTPASSWD: &str = "user:$2b$12$Y6SspdlaJsquiMj34hMywuOfq77ri7RH.WUD436J9uNCBv.1eNfBa\n";

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// A registry anyone may push to.
    fn start() -> Registry {
        Registry::start_with(false)
    }

    /// With `login`, only `user` / `pass` may pull or push (htpasswd, HTTP basic auth).
    fn start_with(login: bool) -> Registry {
        let root = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = root.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n{}",
                root.path().join("data").display(),
                if login {
                    let file = root.path().join("htpasswd");
                    std::fs::write(&file, HTPASSWD).unwrap();
                    format!(
                        "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                        file.display()
                    )
                } else {
                    String::new()
                }
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .args(["serve"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts docker-registry");
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            login: login.then(|| format!("Basic {}", base64_of("user:pass"))),
            _root: root,
        };
        let start = Instant::now();
        while registry.get("/v2/").is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "docker-registry did not answer on {}",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    fn get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut request = ureq::get(&self.url(path));
        if let Some(login) = &self.login {
            request = request.header("Authorization", login);
        }
        request.call()
    }

    /// Pushes a blob as a registry client does: POST an upload, PUT its bytes with the digest.
    fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        let started = ureq::post(&self.url(&format!("/v2/{repository}/blobs/uploads/")))
            .send_empty()
            .expect("starts an upload");
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        ureq::put(&format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .expect("uploads the blob");
        digest
    }

    fn push_manifest(&self, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        ureq::put(&self.url(&format!("/v2/{repository}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .send(bytes)
            .expect("pushes the manifest");
    }

    /// A stand-in for provided:al2023: one layer with a file naming the architecture, the
    /// entrypoint `/lambda-entrypoint.sh`, one image per architecture in `archs` (`amd64`,
    /// `arm64`) under an index tagged `tag`.
    fn push_base(&self, repository: &str, tag: &str, archs: &[&str]) {
        let mut manifests = Vec::new();
        for arch in archs {
            let (layer, diff_id) = gzip_tar(&[("etc/base-release", arch.as_bytes())]);
            let (digest, manifest) = self.push_image(repository, None, arch, &layer, &diff_id);
            manifests.push(serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": digest, "size": manifest,
                "platform": {"architecture": arch, "os": "linux"},
            }));
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
        }))
        .unwrap();
        self.push_manifest(repository, tag, OCI_INDEX, &index);
    }

    /// The repository's tags; none when nothing was ever pushed to it.
    fn tags(&self, repository: &str) -> Vec<String> {
        match self.get(&format!("/v2/{repository}/tags/list")) {
            Ok(mut response) => {
                let list: serde_json::Value =
                    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
                (list["tags"].as_array().cloned().unwrap_or_default())
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect()
            }
            Err(_) => Vec::new(),
        }
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A tar.gz of these files and the digest of the tar (its `diff_id`).
fn gzip_tar(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), digest_of(&tar))
}

/// skopeo's raw read of a document (`docker://...` or `oci:DIR`), and its config.
fn skopeo(location: &str, config: bool) -> Vec<u8> {
    let mut command = Command::new("skopeo");
    command.arg("inspect").arg("--raw");
    if config {
        command.arg("--config");
    }
    if location.starts_with("docker://") {
        command.arg("--tls-verify=false");
    }
    let output = command.arg(location).output().expect("runs skopeo");
    assert!(
        output.status.success(),
        "skopeo inspect {location}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The one JSON line of the build's stdout.
fn artifact(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.contains("lambda-artifact"))
        .expect("a JSON line");
    serde_json::from_str(line).unwrap()
}

fn setup() -> Option<(Registry, tempfile::TempDir)> {
    if !require_tools(&["docker-registry", "skopeo"]) {
        return None;
    }
    let registry = Registry::start();
    registry.push_base("base", "al2023", &["amd64", "arm64"]);
    // The includes of Cargo.toml go under /var/task, as in a zip.
    let project = crate_with(
        "imagefn",
        &[("src/main.rs", MAIN), ("config.json", "{}")],
        "[package.metadata.lambda-build]\ninclude = [\"config.json\"]\n",
    );
    Some((registry, project))
}

/// Pushes `--image NAME` on the registry's base and checks the manifest skopeo reads back: one
/// manifest (never an index), the base's layer and the function's, the platform of `arch`, the
/// base's entrypoint; returns the digest the tool printed.
fn push_and_check(registry: &Registry, project: &Path, name: &str, arch: &str) -> String {
    let image = format!("{}/{name}", registry.host);
    let base = format!("{}/base:al2023", registry.host);
    let output = lambda_build(
        project,
        &[
            "--arch",
            arch,
            "--image",
            &image,
            "--image-base",
            &base,
            "--push",
        ]
        .into_iter()
        .chain(["--message-format", "json"])
        .collect::<Vec<_>>(),
    );
    support::assert_success(&output);
    let json = artifact(&output.stdout);
    let digest = json["image_digest"].as_str().unwrap().to_owned();
    // Every name here has a tag.
    let (repository, _tag) = image.rsplit_once(':').unwrap();
    assert_eq!(
        json["image_uri"],
        format!("{repository}@{digest}"),
        "{json}"
    );
    let oci_arch = if arch == "arm64" { "arm64" } else { "amd64" };
    assert_eq!(json["image_platform"], format!("linux/{oci_arch}"));

    let raw = skopeo(&format!("docker://{image}"), false);
    assert_eq!(
        digest_of(&raw),
        digest,
        "the digest printed is the manifest's"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "{manifest}");
    assert!(manifest.get("manifests").is_none(), "an index: {manifest}");
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&skopeo(&format!("docker://{image}"), true)).unwrap();
    assert_eq!(config["architecture"], oci_arch, "{config}");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Entrypoint"][0], "/lambda-entrypoint.sh");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["bootstrap"]));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    digest
}

#[test]
fn image_is_one_manifest_of_the_platform_pushed_without_an_engine_and_reproducible() {
    let Some((registry, project)) = setup() else {
        return;
    };
    let first = push_and_check(&registry, project.path(), "func:v1", "x86_64");
    // Another tag, another run: the same bootstrap on the same base is the same image.
    let second = push_and_check(&registry, project.path(), "func:v2", "x86_64");
    assert_eq!(first, second, "two runs gave two digests");

    // The layer itself: bootstrap in /var/runtime, written by an OCI layout reader too.
    let layout = tempfile::tempdir().unwrap();
    let out = layout.path().join("image");
    let output = lambda_build(
        project.path(),
        &[
            "--image",
            &format!("{}/func:v3", registry.host),
            "--image-base",
            &format!("{}/base:al2023", registry.host),
            "--image-out",
            out.to_str().unwrap(),
        ],
    );
    support::assert_success(&output);
    let stdout = support::stdout(&output);
    let uri = format!("ImageUri      {}/func@{first}", registry.host);
    assert!(stdout.contains(&uri), "{stdout}");
    assert!(stdout.contains("image         linux/amd64"), "{stdout}");
    let raw = skopeo(&format!("oci:{}:v3", out.display()), false);
    assert_eq!(
        digest_of(&raw),
        first,
        "the layout holds the image that was pushed"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    let blob = std::fs::read(
        out.join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
    let entries: Vec<(String, u32)> = (archive.entries().unwrap())
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    for entry in [
        ("var/runtime/bootstrap", 0o755),
        ("var/task/config.json", 0o644),
    ] {
        assert!(
            entries.contains(&(entry.0.to_owned(), entry.1)),
            "{entry:?} missing from {entries:?}"
        );
    }
    assert!(
        registry.tags("func").len() == 2,
        "--image-out alone pushes nothing"
    );
}

#[test]
fn image_for_arm64_is_linux_arm64() {
    if !support::arm64_linker() {
        return;
    }
    let Some((registry, project)) = setup() else {
        return;
    };
    push_and_check(&registry, project.path(), "func:arm", "arm64");
}

#[test]
fn image_refusals_are_clear_and_push_nothing() {
    let Some((registry, project)) = setup() else {
        return;
    };
    let host = &registry.host;
    // An index without the function's platform.
    registry.push_base("armonly", "al2023", &["arm64"]);
    let output = lambda_build(
        project.path(),
        &[
            "--image",
            &format!("{host}/func:v1"),
            "--image-base",
            &format!("{host}/armonly:al2023"),
            "--push",
        ],
    );
    assert_refused(
        &output,
        1,
        "is an index without `linux/amd64`; it has: linux/arm64",
        "--arch",
    );
    // A registry that does not answer.
    let output = lambda_build(
        project.path(),
        &[
            "--image",
            "127.0.0.1:9/func:v1",
            "--image-base",
            &format!("{host}/base:al2023"),
            "--push",
        ],
    );
    assert_refused(
        &output,
        1,
        "cannot push `127.0.0.1:9/func:v1`",
        "docker login",
    );
    // A name without a registry: refused before anything is built.
    let output = lambda_build(project.path(), &["--image", "func:latest", "--push"]);
    assert_refused(&output, 1, "it names no registry", "amazonaws.com");
    assert!(registry.tags("func").is_empty(), "something was pushed");
}

#[test]
fn image_is_pushed_with_the_docker_clis_login_and_a_refused_one_pushes_nothing() {
    let Some((base, project)) = setup() else {
        return;
    };
    let registry = Registry::start_with(true);
    let image = format!("{}/func:v1", registry.host);
    let base_ref = format!("{}/base:al2023", base.host);
    let docker_config = tempfile::tempdir().unwrap();
    let login = |password: &str| {
        let auths = serde_json::json!({"auths": {
            &registry.host: {"auth": base64_of(&format!("user:{password}"))},
        }});
        std::fs::write(docker_config.path().join("config.json"), auths.to_string()).unwrap();
    };
    let push = || {
        support::lambda_build_command(
            project.path(),
            &["--image", &image, "--image-base", &base_ref, "--push"],
        )
        .env("DOCKER_CONFIG", docker_config.path())
        .output()
        .unwrap()
    };
    login("wrong");
    let err = assert_refused(
        &push(),
        1,
        &format!("cannot push `{image}`"),
        "docker login",
    );
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(
        registry.tags("func").is_empty(),
        "pushed with a refused login"
    );
    login("pass");
    let output = push();
    support::assert_success(&output);
    assert_eq!(registry.tags("func"), ["v1"]);
    assert!(support::stdout(&output).contains("ImageUri"));
}

/// Removes an image from the engine when the test ends, passed or not.
struct Loaded<'a>(&'a str);

impl Drop for Loaded<'_> {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "--force", self.0])
            .output();
    }
}

#[test]
fn image_without_push_or_out_is_loaded_into_the_engine() {
    let Some(_engine) = support::docker::setup() else {
        return;
    };
    let Some((registry, project)) = setup() else {
        return;
    };
    let name = format!("{}/func:loaded", registry.host);
    let _loaded = Loaded(&name);
    let base = format!("{}/base:al2023", registry.host);
    let output = lambda_build(project.path(), &["--image", &name, "--image-base", &base]);
    support::assert_success(&output);
    assert!(
        support::stdout(&output).contains("loaded into the Docker engine"),
        "{}",
        support::stdout(&output)
    );
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format"])
        .arg("{{.Architecture}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}")
        .arg(&name)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        r#"amd64 ["bootstrap"] ["/lambda-entrypoint.sh"]"#,
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert!(registry.tags("func").is_empty(), "loading pushed it");
}

/// What a base needs to run a Rust function in container mode (the relay's `/bin/sh` and
/// `/usr/bin/env`, glibc), taken from this machine at its own paths: a base small enough to
/// push here, unlike the Docker tests' build image.
const RUNNABLE_BASE_FILES: [&str; 6] = [
    "/bin/sh",
    "/usr/bin/env",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/lib/x86_64-linux-gnu/libm.so.6",
];

impl Registry {
    /// A one-manifest amd64 base of [`RUNNABLE_BASE_FILES`], with `/tmp` and `/var/task`,
    /// tagged `tag`.
    fn push_runnable_base(&self, repository: &str, tag: &str) {
        let mut tar = tar::Builder::new(Vec::new());
        for (dir, mode) in [("tmp/", 0o1777), ("var/task/", 0o755)] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(mode);
            header.set_size(0);
            tar.append_data(&mut header, dir, std::io::empty()).unwrap();
        }
        for path in RUNNABLE_BASE_FILES {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o755);
            header.set_size(bytes.len() as u64);
            let name = path.trim_start_matches('/');
            tar.append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let layer = gz.finish().unwrap();
        self.push_image(repository, Some(tag), "amd64", &layer, &digest_of(&tar));
    }

    /// One image of `arch` with the entrypoint `/lambda-entrypoint.sh` and this one layer,
    /// tagged `tag` (else pushed by digest); its manifest's digest and size.
    fn push_image(
        &self,
        repository: &str,
        tag: Option<&str>,
        arch: &str,
        layer: &[u8],
        diff_id: &str,
    ) -> (String, usize) {
        let layer_digest = self.push_blob(repository, layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Entrypoint": ["/lambda-entrypoint.sh"], "WorkingDir": "/var/task"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let config_digest = self.push_blob(repository, &config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let digest = digest_of(&manifest);
        self.push_manifest(repository, tag.unwrap_or(&digest), OCI_MANIFEST, &manifest);
        (digest, manifest.len())
    }
}

/// The image `--image --push` sends to the registry, pulled by the engine from there, answers
/// through `invoke --docker --image NAME` and `serve --docker --image NAME` as it ships: its
/// `/var/runtime/bootstrap`, no zip.
#[test]
fn invoke_and_serve_run_the_image_as_it_ships() {
    let Some(_engine) = support::docker::setup() else {
        return;
    };
    if !require_tools(&["docker-registry"]) {
        return;
    }
    let registry = Registry::start();
    registry.push_runnable_base("base", "runnable");
    let name = &format!("{}/echo:test", registry.host);
    let _loaded = Loaded(name);
    let source = support::copy_fixture("echo");
    let base = format!("{}/base:runnable", registry.host);
    let output = support::tool()
        .args(["--image", name, "--image-base", &base, "--push"])
        .args(["--locked", "--arch", "x86_64"])
        .current_dir(source.path())
        .env("CARGO_TARGET_DIR", support::fixture_target_dir())
        .output()
        .expect("run cargo-lambda-build");
    support::assert_success(&output);
    assert_eq!(registry.tags("echo"), ["test"]);
    // Not in the engine (`--push` does not load it; an earlier run's copy is removed): invoke
    // pulls it from the registry (plain HTTP on loopback, as Docker allows there), as `docker
    // run` would.
    let _ = Command::new("docker")
        .args(["image", "rm", "--force", name])
        .output();

    let (output, _) = crate::invoke::invoke_with_pid(
        &["--docker", "--image", name, "-d", r#"{"name":"x"}"#],
        b"",
    );
    crate::invoke::assert_exit(&output, 0);
    assert_eq!(
        crate::invoke::payloads(&output),
        [serde_json::json!({"message": "hello, x"})]
    );
    let err = support::stderr(&output);
    assert!(
        err.contains(&format!("Pulling {name}, not in the engine")),
        "{err}"
    );
    assert!(
        err.contains(&format!("image {name} (x86_64 in a container of {name})")),
        "{err}"
    );
    // A name the registry does not have: the engine's reason, and what to check.
    let missing = format!("{}/echo:missing", registry.host);
    let (output, _) =
        crate::invoke::invoke_with_pid(&["--docker", "--image", &missing, "-d", "{}"], b"");
    assert_refused(
        &output,
        1,
        &format!("the image `{missing}` is not in the Docker engine, and pulling it failed"),
        "check the name and that the registry has it",
    );

    let args = ["--docker", "--image", name].map(std::ffi::OsStr::new);
    let served = crate::serve::Served::start_with(Path::new(env!("CARGO_TARGET_TMPDIR")), &args);
    let answer = served.get("/?name=x");
    assert_eq!(answer.status, 200, "{answer:?}\n{}", served.stderr());
    // echo is no HTTP function: its plain JSON answer is read as payload 2.0 infers it.
    assert_eq!(answer.json()["message"], "hello, ");
}

#[test]
fn invoke_image_that_is_not_in_the_engine_is_a_clear_error() {
    let Some(_engine) = support::docker::setup() else {
        return;
    };
    let (output, _) = crate::invoke::invoke_with_pid(
        &[
            "--docker",
            "--image",
            "local/no-such-image:test",
            "-d",
            "{}",
        ],
        b"",
    );
    assert_refused(
        &output,
        1,
        "the image `local/no-such-image:test` is not in the Docker engine",
        "cargo lambda-build --image local/no-such-image:test",
    );
}
