//! The Docker backend: cargo runs inside a container of an Amazon Linux 2023 image (or the
//! project's own `lambda.Dockerfile`), through the Docker Engine API, so the build does not
//! depend on what the host has installed.
//!
//! In order:
//! 1. reach the engine where the `docker` CLI would (`DOCKER_HOST`, the current docker context,
//!    else the default socket; unix, tcp, TLS or ssh) and fail within seconds if it does not
//!    answer;
//! 2. make sure the image exists: built from the Dockerfile alone (the build context holds
//!    nothing else) and tagged by a hash of it and its build arguments, so it is built once;
//! 3. `cargo fetch` on the host, where the user's credentials, proxies and certificates apply;
//! 4. `cargo build --offline` in a container without network, as the host user, with the
//!    workspace, a per-architecture target directory, the cargo caches and outside path
//!    dependencies mounted at the host's paths; its output streams live;
//! 5. remove the container, whatever happened, Ctrl-C included.
//!
//! The executable's path comes from cargo's JSON messages and is a host path (the mounts keep
//! paths unchanged), so inspection and packaging are the local build's.
//!
//! bollard is asynchronous: a current-thread tokio runtime lives for one build and nothing else
//! in the tool needs one.

pub mod container;
pub mod copy;
pub mod engine;
pub mod error;
pub mod exec;
pub mod files;
pub mod image;
pub mod inventory;
pub mod sccache;
pub mod sync;

pub use error::DockerError;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Metadata;

use crate::arch::Arch;
use crate::build::{BuildError, Collector, Executable, Watched, forward_lines};
use crate::config::DockerConfig;
use crate::env::Env;
use crate::plan::{BuildPlan, Cmd};
use crate::report::Reporter;
use crate::rustflags;
use crate::signal::Interrupt;

type Result<T, E = BuildError> = std::result::Result<T, E>;

use self::container::ContainerInputs;
use self::files::Files;
use self::image::{ImageChoice, ImageRecipe};
use self::sccache::Sccache;

/// `<target-dir>/lambda-build/docker/<arch>`: cargo's target directory inside the container, one
/// per architecture and apart from the host's, so host and container artifacts never mix.
pub fn container_target_dir(target_dir: &Path, arch: Arch) -> PathBuf {
    target_dir
        .join("lambda-build")
        .join("docker")
        .join(arch.lambda_name())
}

/// What a `--docker` build produced: the executables, and the image they were built in (for
/// `--message-format json`, so CI can save that image under its name).
#[derive(Debug)]
pub struct DockerBuild {
    pub executables: Vec<Executable>,
    pub image: String,
}

/// The image a build runs in: an existing one (`--docker-image`), or one built from a Dockerfile
/// with its build arguments, named by their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlan {
    pub choice: ImageChoice,
    /// `Some` when the image is built.
    pub recipe: Option<ImageRecipe>,
}

impl ImagePlan {
    /// The name the container runs: `--docker-image`, or the recipe's tag.
    pub fn name(&self) -> &str {
        match (&self.choice, &self.recipe) {
            (_, Some(recipe)) => &recipe.tag,
            (ImageChoice::Existing(name), None) => name,
            (ImageChoice::Build(_), None) => unreachable!("a recipe is loaded for every build"),
        }
    }
}

/// Which image the build uses, read from the project and the host's toolchain, without the
/// engine: what `--print-image-tag` prints and the build then ensures.
pub fn image_plan(plan: &BuildPlan, config: &DockerConfig, env: &Env) -> Result<ImagePlan> {
    // One container builds every function: a package's own `lambda.Dockerfile` counts when
    // they all come from that package.
    let mut package_roots: Vec<&Path> = plan
        .functions
        .iter()
        .map(|f| f.package_root.as_path())
        .collect();
    package_roots.dedup();
    let package_root = match package_roots.as_slice() {
        [only] => *only,
        _ => plan.project.workspace_root.as_path(),
    };
    let roots = (package_root, plan.project.workspace_root.as_path());
    image_plan_in(config, roots, (&env.cargo, &env.cwd))
}

/// [`image_plan`] for a package root and a workspace root (where a `lambda.Dockerfile` is looked
/// for), with the cargo whose version the bundled image installs (run in `cwd`): also the image
/// `invoke --docker` runs a function in.
pub fn image_plan_in(
    config: &DockerConfig,
    (package_root, workspace_root): (&Path, &Path),
    (cargo, cwd): (&OsStr, &Path),
) -> Result<ImagePlan> {
    let choice = image::choose(
        config.image.as_deref(),
        config.dockerfile.as_deref(),
        package_root,
        workspace_root,
        Path::is_file,
    );
    let recipe = match &choice {
        ImageChoice::Existing(_) => None,
        ImageChoice::Build(source) => {
            let loaded = ImageRecipe::load(source.clone(), Vec::new())?;
            let rust = host_rust_version(cargo, cwd)?;
            let args = image::build_args(
                source,
                &loaded.dockerfile,
                vec![("RUST_VERSION".into(), rust)],
                &config.build_args,
            )?;
            Some(ImageRecipe::new(loaded.source, loaded.dockerfile, args))
        }
    };
    Ok(ImagePlan { choice, recipe })
}

/// The steps of the module's header: the engine, the image, `cargo fetch` on the host, then the
/// container, which reaches the project through bind mounts or copies of it in volumes.
pub fn build(
    plan: &BuildPlan,
    config: &DockerConfig,
    env: &Env,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<DockerBuild> {
    let image_plan = image_plan(plan, config, env)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start an async runtime for Docker: {e}"))?;
    let endpoint = engine::resolve(&engine::EngineEnv::from_env(env), &engine::Disk)
        .map_err(DockerError::from)?;
    let docker = runtime.block_on(engine::connect(&endpoint))?;
    reporter.detail("Docker", format!("engine at {}", endpoint.describe()));
    let image = runtime.block_on(ensure_image(&docker, &image_plan, reporter, interrupt))?;
    interrupt.check()?;

    run_fetch(&plan.cargo.fetch(), reporter, interrupt)?;
    let outside = outside_path_roots(plan)?;

    let target_dir = container_target_dir(&plan.target_dir, plan.arch);
    let cargo_home = env
        .cargo_home()
        .ok_or_else(|| anyhow::anyhow!("neither CARGO_HOME nor HOME is set"))?;
    let name = container_name();
    let files = runtime.block_on(files::decide(
        &docker,
        config.files,
        config.files_origin.as_deref(),
        &endpoint.host,
        &image,
        &plan.target_dir,
        &format!("{name}-probe"),
    ))?;
    let rootless = runtime.block_on(engine::is_rootless(&endpoint))?;
    let user = crate::host::user_ids().filter(|&(uid, _)| !rootless && uid != 0);
    let host_env: Vec<(String, String)> = env
        .vars()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .collect();
    let sccache = sccache::detect(&host_env, sccache::host_default_dir(&host_env));
    let image_env = runtime.block_on(image::env_of(&docker, &image))?;
    let cargo = container_cargo(
        plan,
        &ContainerFacts {
            cwd: &env.cwd,
            host_env: &host_env,
            image_env: &image_env,
            target_dir: &match files {
                Files::Copy => PathBuf::from(sync::TARGET_ROOT),
                Files::Bind => target_dir.clone(),
            },
            // Copy mode builds without it (the cache directory is this machine's).
            sccache: sccache.is_some() && files == Files::Bind,
        },
    );
    let inputs = ContainerInputs {
        name,
        image: image.clone(),
        workspace_root: &plan.project.workspace_root,
        target_dir: &target_dir,
        cargo_home: &cargo_home,
        read_only: &outside,
        user,
        host_env: &host_env,
        cwd: &env.cwd,
        cargo: &cargo,
        memory: config.memory,
        sccache: None,
    };
    let executables = if files == Files::Copy {
        if sccache.is_some() {
            // Its cache directory is this machine's, which a remote engine cannot mount.
            reporter.warn(
                "RUSTC_WRAPPER names sccache, but the engine cannot see this machine's files: \
                 this build runs without it",
            );
        }
        refuse_git_dependencies(plan, &endpoint.host)?;
        let build = CopyInputs {
            plan,
            inputs,
            docker: &docker,
        };
        runtime.block_on(build_copy(build, reporter, interrupt))?
    } else {
        let build = BindInputs {
            plan,
            inputs,
            sccache: sccache.as_ref(),
            docker: &docker,
        };
        runtime.block_on(build_bind(build, reporter, interrupt))?
    };
    Ok(DockerBuild { executables, image })
}

/// The image's name, once the engine has it: `--docker-image` must exist, a recipe is built
/// when its tag is missing.
async fn ensure_image(
    docker: &bollard::Docker,
    image_plan: &ImagePlan,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<String> {
    let image = image_plan.name().to_string();
    match &image_plan.recipe {
        None => {
            if !image::exists(docker, &image).await? {
                return Err(DockerError::ImageMissing(image).into());
            }
            reporter.status("Using", format!("image {image}"));
        }
        Some(recipe) => image::ensure(docker, recipe, reporter, interrupt).await?,
    }
    Ok(image)
}

/// A git dependency's checkout lives in the host's `CARGO_HOME`, which the volumes do not
/// carry: refused before anything is uploaded.
fn refuse_git_dependencies(plan: &BuildPlan, engine: &str) -> Result<()> {
    let lock =
        std::fs::read_to_string(plan.project.workspace_root.join("Cargo.lock")).unwrap_or_default();
    let git = sync::git_packages(&lock);
    if git.is_empty() {
        return Ok(());
    }
    Err(DockerError::GitDependencyRemote {
        engine: engine.to_string(),
        packages: git,
    }
    .into())
}

struct BindInputs<'a> {
    plan: &'a BuildPlan,
    inputs: ContainerInputs<'a>,
    sccache: Option<&'a Sccache>,
    docker: &'a bollard::Docker,
}

/// The build on an engine that sees the host's files: the project, the caches and the target
/// directory bind-mounted at the host's paths.
async fn build_bind(
    build: BindInputs<'_>,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Executable>> {
    let BindInputs {
        plan,
        inputs,
        sccache,
        docker,
    } = build;
    reporter.detail(
        "Docker",
        "the engine sees this machine's files: bind mounts",
    );
    create_mount_sources(inputs.target_dir, inputs.cargo_home)?;
    if let Some(sccache) = sccache {
        prepare_sccache(sccache, reporter)?;
    }
    let spec = container::spec(&ContainerInputs { sccache, ..inputs });
    reporter.status(
        "Container",
        format!(
            "{} for {} in {}, offline",
            plan.bin_list(),
            plan.arch,
            spec.image
        ),
    );
    reporter.command(&spec.as_docker_run());
    interrupt.check()?;
    let watch = container::Watch {
        collector: Collector::new(&plan.functions, Path::to_path_buf, reporter),
        reporter,
        interrupt,
    };
    container::run(docker, &spec, watch).await
}

/// Bind mounts need their source: created here, as the user, rather than by the engine as root.
fn create_mount_sources(target_dir: &Path, cargo_home: &Path) -> Result<()> {
    for dir in [
        target_dir,
        &cargo_home.join("registry"),
        &cargo_home.join("git"),
    ] {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))?;
    }
    for lock in container::PACKAGE_CACHE_LOCKS {
        let path = cargo_home.join(lock);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", path.display()))?;
    }
    Ok(())
}

/// sccache's local cache directory, made as the user before it is mounted, and the line that
/// says which cache the build uses.
fn prepare_sccache(sccache: &Sccache, reporter: &Reporter) -> Result<()> {
    if let Some(dir) = &sccache.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create `{}` (SCCACHE_DIR): {e}", dir.display()))?;
    }
    reporter.status(
        "Sccache",
        match (sccache.remote, &sccache.dir) {
            (Some(backend), _) => {
                format!("RUSTC_WRAPPER: its {backend} cache, through the engine's default network")
            }
            (None, Some(dir)) => format!("RUSTC_WRAPPER: its local cache `{}`", dir.display()),
            (None, None) => "RUSTC_WRAPPER: its settings".to_string(),
        },
    );
    Ok(())
}

struct CopyInputs<'a> {
    plan: &'a BuildPlan,
    inputs: ContainerInputs<'a>,
    docker: &'a bollard::Docker,
}

/// The build on an engine that cannot see the host's files: through volumes (see `sync`), the
/// sources at their host paths.
async fn build_copy(
    build: CopyInputs<'_>,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<Vec<Executable>> {
    let CopyInputs {
        plan,
        inputs,
        docker,
    } = build;
    let workspace = &plan.project.workspace_root;
    let roots = source_roots(workspace, inputs.read_only);
    let in_container = sync::container_roots(&roots)?;
    let volumes = sync::Volumes::new(workspace, plan.arch.lambda_name(), &in_container);
    let spec = container::copy_spec(&inputs, &volumes);
    reporter.status(
        "Container",
        format!(
            "{} for {} in {}, offline, the project copied to the engine",
            plan.bin_list(),
            plan.arch,
            inputs.image
        ),
    );
    reporter.command(&spec.as_docker_run());
    interrupt.check()?;

    let mut skip = vec![plan.target_dir.clone()];
    skip.extend(plan.functions.iter().map(|f| f.output.path().to_path_buf()));
    let lock_file = workspace.join("Cargo.lock");
    let host_target = container_target_dir(&plan.target_dir, plan.arch);
    let build = copy::CopyBuild {
        spec: &spec,
        scan: sync::Inputs {
            roots: &roots,
            skip: &skip,
            cargo_home: inputs.cargo_home,
            lock_file: &lock_file,
        },
        host_target: &host_target,
        owner: inputs.user,
        functions: &plan.functions,
        roots: &in_container,
        volumes: &volumes.prefix,
    };
    copy::run(docker, &build, reporter, interrupt).await
}

/// The directories copy mode mirrors: the workspace and the outside path dependencies' roots,
/// without one that another holds (a path dependency's workspace may hold the project).
fn source_roots(workspace_root: &Path, outside: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = vec![workspace_root.to_path_buf()];
    dirs.extend(outside.iter().cloned());
    outermost(dirs)
}

/// What the container's cargo command depends on besides the plan.
struct ContainerFacts<'a> {
    cwd: &'a Path,
    host_env: &'a [(String, String)],
    /// The image's `ENV`.
    image_env: &'a [(String, String)],
    /// cargo's target directory inside.
    target_dir: &'a Path,
    /// The container compiles through sccache.
    sccache: bool,
}

/// The plan's cargo command as the container runs it: the rustc flags that keep paths out of
/// the binary name the container's cargo home and target directory, and go where the
/// container's cargo takes rustc's flags from (its variables: the image's, under the host's it
/// is given; the config files it has: the workspace's, from its working directory up). None
/// through sccache, whose cache comes first (see [`rustflags::channel`]).
fn container_cargo(plan: &BuildPlan, facts: &ContainerFacts) -> crate::plan::CargoArgs {
    let mut vars: std::collections::BTreeMap<String, String> =
        facts.image_env.iter().cloned().collect();
    vars.extend(container::passthrough_env(facts.host_env.iter().cloned()));
    let workspace = &plan.project.workspace_root;
    let workdir = container::workdir(facts.cwd, workspace);
    let paths = rustflags::config_paths(&workdir, Some(workspace), None);
    let channel = rustflags::channel(plan.arch, &vars, &rustflags::read_configs(&paths))
        .filter(|_| !facts.sccache);
    crate::plan::CargoArgs {
        rustflags: channel.map(|channel| rustflags::Rustflags {
            map: rustflags::PathMap {
                cargo_home: container::CONTAINER_CARGO_HOME.into(),
                target_dir: facts.target_dir.to_path_buf(),
            },
            channel,
        }),
        ..plan.cargo.clone()
    }
}

/// A unique name: the process id and the time, so concurrent builds never collide.
/// `cargo-lambda-build-<pid>-<nanoseconds>`: whose it is, and unique.
pub fn container_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cargo-lambda-build-{}-{:x}", std::process::id(), nanos)
}

/// The `RUST_VERSION` build argument: the version of the cargo that runs the build.
fn host_rust_version(cargo: &OsStr, cwd: &Path) -> Result<String> {
    let output = Command::new(cargo)
        .arg("-V")
        .current_dir(cwd)
        .output()
        .map_err(BuildError::spawn_rust(cargo))?;
    let text = String::from_utf8_lossy(&output.stdout);
    image::rust_version_from(&text).ok_or_else(|| {
        anyhow::anyhow!("cannot read the Rust version from `cargo -V`: {text}").into()
    })
}

/// Runs `cargo fetch`, its output passed to the user, a signal passed on to it.
fn run_fetch(invocation: &Cmd, reporter: &Reporter, interrupt: &Interrupt) -> Result<()> {
    let mut watched = Watched::spawn(invocation, Stdio::null(), reporter, interrupt)?;
    forward_lines(watched.child_stderr()?, reporter);
    let status = watched.wait(interrupt)?;
    if status.success() {
        Ok(())
    } else {
        Err(DockerError::Fetch {
            code: status.code(),
        }
        .into())
    }
}

/// The directories outside the workspace that the build reads: path dependencies (each one's
/// own workspace root when it has one, since its manifest may inherit from there).
fn outside_path_roots(plan: &BuildPlan) -> Result<Vec<PathBuf>> {
    let cmd = plan.cargo.metadata();
    let output = cmd
        .command()
        .output()
        .map_err(BuildError::spawn_rust(&cmd.program))?;
    if !output.status.success() {
        return Err(DockerError::Metadata(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        )
        .into());
    }
    let metadata = cargo_metadata::MetadataCommand::parse(String::from_utf8_lossy(&output.stdout))
        .map_err(|e| DockerError::Metadata(e.to_string()))?;
    let dirs = outside_path_packages(&metadata, &plan.project.workspace_root)
        .into_iter()
        .map(|dir| enclosing_workspace(&dir).unwrap_or(dir))
        .collect();
    Ok(outermost(dirs))
}

/// The directories of the path packages (no registry or git source) outside the workspace.
pub fn outside_path_packages(metadata: &Metadata, workspace_root: &Path) -> Vec<PathBuf> {
    metadata
        .packages
        .iter()
        .filter(|package| package.source.is_none())
        .filter_map(|package| package.manifest_path.parent())
        .map(|dir| dir.as_std_path().to_path_buf())
        .filter(|dir| !dir.starts_with(workspace_root))
        .collect()
}

/// The nearest ancestor of `dir` whose Cargo.toml has a `[workspace]` table, as cargo finds it.
fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|candidate| {
        let text = std::fs::read_to_string(candidate.join("Cargo.toml")).ok()?;
        text.lines()
            .map(str::trim)
            .any(|line| line == "[workspace]" || line.starts_with("[workspace."))
            .then(|| candidate.to_path_buf())
    })
}

/// Sorted, without the directories that another one contains.
fn outermost(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.sort();
    dirs.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        if !kept.iter().any(|outer| dir.starts_with(outer)) {
            kept.push(dir);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;

    fn plan(args: &[&str]) -> BuildPlan {
        use crate::cli::Cli;
        use crate::config::BuildConfig;
        let project = Project {
            workspace_root: "/ws".into(),
            target_dir: "/ws/target".into(),
            workspace_config: serde_json::Value::Null,
            cargo_lambda: Vec::new(),
            functions: vec![crate::project::Function {
                package: "api".into(),
                manifest_path: "/ws/api/Cargo.toml".into(),
                bin: "api".into(),
                kind: crate::project::TargetKind::Bin,
                package_config: serde_json::Value::Null,
                cargo_lambda_config: serde_json::Value::Null,
            }],
        };
        let Cli::LambdaBuild(args) =
            Cli::try_parse_from(["cargo", "lambda-build"].iter().chain(args)).unwrap();
        let env = Env::new(
            "/ws/api".into(),
            false,
            [("CARGO", "/bin/cargo"), ("CI", "true")],
        );
        let ui = args.output.ui(&env);
        let config = BuildConfig::resolve(args, &env, ui, &project).unwrap();
        crate::plan::plan(&config, &project, &env, Vec::new(), None)
    }

    #[test]
    fn fetch_covers_both_targets_and_keeps_the_users_lock_flags() {
        let plan = plan(&["--docker", "--arch", "arm64", "--locked", "-F", "x"]);
        assert_eq!(plan.cargo.manifest_path, Path::new("/ws/api/Cargo.toml"));
        let shown = plan.cargo.fetch().to_string();
        assert_eq!(
            shown,
            "/bin/cargo fetch --manifest-path /ws/api/Cargo.toml \
             --target x86_64-unknown-linux-gnu --target aarch64-unknown-linux-gnu \
             --locked --color never"
        );
    }

    #[test]
    fn container_artifacts_have_their_own_directory_per_architecture() {
        assert_eq!(
            container_target_dir(Path::new("/ws/target"), Arch::Arm64),
            Path::new("/ws/target/lambda-build/docker/arm64")
        );
        assert_ne!(
            container_target_dir(Path::new("/t"), Arch::X86_64),
            container_target_dir(Path::new("/t"), Arch::Arm64)
        );
    }

    #[test]
    fn only_path_packages_outside_the_workspace_are_mounted() {
        let package = |name: &str, dir: &str, source: Option<&str>| {
            serde_json::json!({
                "name": name, "version": "0.1.0", "id": format!("{name} 0.1.0"),
                "source": source, "dependencies": [], "targets": [], "features": {},
                "manifest_path": format!("{dir}/Cargo.toml"), "edition": "2021",
                "metadata": null, "publish": null, "authors": [], "categories": [],
                "keywords": [], "readme": null, "repository": null, "homepage": null,
                "documentation": null, "license": null, "license_file": null,
                "description": null, "links": null, "default_run": null, "rust_version": null,
            })
        };
        let json = serde_json::json!({
            "packages": [
                package("api", "/ws/api", None),
                package("util", "/shared/util", None),
                package("serde", "/home/me/.cargo/registry/src/x/serde-1.0.0",
                        Some("registry+https://github.com/rust-lang/crates.io-index")),
            ],
            "workspace_members": ["api 0.1.0"], "workspace_default_members": ["api 0.1.0"],
            "resolve": null, "workspace_root": "/ws", "target_directory": "/ws/target",
            "version": 1, "metadata": null,
        });
        let metadata = cargo_metadata::MetadataCommand::parse(json.to_string()).unwrap();
        assert_eq!(
            outside_path_packages(&metadata, Path::new("/ws")),
            [PathBuf::from("/shared/util")]
        );
    }

    #[test]
    fn nested_mounts_are_dropped() {
        assert_eq!(
            outermost(vec![
                "/a/b/c".into(),
                "/a/b".into(),
                "/z".into(),
                "/a/b".into(),
                "/a/bc".into()
            ]),
            [
                PathBuf::from("/a/b"),
                PathBuf::from("/a/bc"),
                PathBuf::from("/z")
            ]
        );
    }

    #[test]
    fn a_path_dependency_in_another_workspace_brings_that_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let member = dir.path().join("crates/util");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            member.join("Cargo.toml"),
            "[package]\nversion.workspace = true\n",
        )
        .unwrap();
        assert_eq!(enclosing_workspace(&member), None);
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n",
        )
        .unwrap();
        assert_eq!(enclosing_workspace(&member), Some(dir.path().to_path_buf()));
    }
}
