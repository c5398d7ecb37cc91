//! `--docker` reaches the engine every way the `docker` CLI does, and Podman works:
//!
//! - `tcp://` with TLS: a second `dockerd` with `--tlsverify` and certificates this test makes
//!   with `openssl`; a wrong CA and a missing client certificate are clear errors;
//! - `ssh://`: an `sshd` this test starts on 127.0.0.1 with keys it makes, whose remote `docker
//!   system dial-stdio` reaches the first engine;
//! - `docker context`: named in DOCKER_CONTEXT and made current in the config with `docker context
//!   use`, created by the real docker CLI, with DOCKER_HOST > DOCKER_CONTEXT > config;
//! - Podman's Docker-compatible API, rootful and rootless (the test user's own Podman), the output
//!   belonging to the user either way.
//!
//! Each build's zip answers an invocation under the Runtime API emulator.
//!
//! Each test holds the engine through its `Setup`, as the other Docker tests do: their checks that
//! nothing was left count every container on the first engine, and the machine has 2 cores.
//!
//! Needs what `. .ci/docker.sh` and `. .ci/engines.sh` provide (the base image in the second
//! dockerd's data root and in Podman's stores, the test user) and root for the services; without
//! them the tests say `skipped`, unless `LAMBDA_BUILD_TEST_REQUIRE_ALL=1`, which makes that a
//! failure.

use crate::support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::docker::{
    PreviousZip, Runner, Setup, assert_echo_answers, assert_refused, not_owned_by, project, setup,
    stderr,
};

fn env_or_skip(name: &str, provides: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            support::skip_or_fail(&format!("{name} is not set; {provides}"));
            None
        }
    }
}

fn root_or_skip(what: &str) -> bool {
    if support::is_root() {
        return true;
    }
    support::skip_or_fail(&format!("{what} needs root"));
    false
}

/// The tool as the runner, with only the engine variables a test gives it.
fn tool(runner: &Runner, dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = runner.command(dir, args);
    for name in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
        "DOCKER_CERT_PATH",
    ] {
        command.env_remove(name);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("runs cargo-lambda-build")
}

/// A build through the engine `vars` name: it succeeds, its zip answers, lambda.zip and the
/// container's target dir belong to the runner. Returns stderr.
/// A project built again is a no-op for cargo, but it still runs in a container on the engine.
fn assert_builds(setup: &Setup, dir: &Path, what: &str, vars: &[(&str, &str)]) -> String {
    let started = Instant::now();
    let output = run(tool(&setup.runner, dir, &["--docker", "--zip", "-v"], vars));
    support::assert_success(&output);
    support::report_time(&format!("--docker build over {what}"), started.elapsed());
    let zip = dir.join("lambda.zip");
    assert_eq!(
        std::fs::metadata(&zip).unwrap().uid(),
        setup.runner.uid,
        "{what}: lambda.zip is not the user's"
    );
    let target = support::docker::target_dir(&setup.runner).join("lambda-build/docker/x86_64");
    let foreign = not_owned_by(&target, setup.runner.uid);
    assert!(
        foreign.is_empty(),
        "{what}: the container left files the user does not own: {:?}",
        &foreign[..foreign.len().min(5)]
    );
    let unzipped = tempfile::tempdir().unwrap();
    let bootstrap = support::extract_bootstrap(&zip, unzipped.path());
    assert_echo_answers(&bootstrap, None, "hello");
    stderr(&output)
}

/// One echo project for the TLS, ssh and context tests, compiled by whichever of them runs first:
/// what they test is the way to the engine, and each still runs cargo in a container there (a
/// no-op for cargo after the first), which keeps each test well under a minute. Podman's tests
/// compile afresh: what a container writes there is what they check. Made again by each test
/// process (the fixture may have changed), under the target dir rather than left in /tmp.
fn shared_project(setup: &Setup) -> PathBuf {
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docker-engines-echo");
        let _ = std::fs::remove_dir_all(&dir);
        let fresh = project(setup, "");
        sh(
            "cp -a",
            Command::new("cp").arg("-a").arg(fresh.path()).arg(&dir),
        );
        setup.runner.give(&dir);
        dir
    })
    .clone()
}

/// A refusal before anything is compiled, the previous zip untouched; returns stderr.
fn assert_refused_at_once(
    setup: &Setup,
    vars: &[(&str, &str)],
    problem: &str,
    fix: &str,
) -> String {
    let project = project(setup, "");
    let previous = PreviousZip::plant(project.path());
    let started = Instant::now();
    let output = run(tool(
        &setup.runner,
        project.path(),
        &["--docker", "--zip"],
        vars,
    ));
    let err = assert_refused(&output, 1, problem, fix);
    assert!(!err.contains("Compiling"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    previous.assert_intact();
    err
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, child: &mut Child, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited with {status} before it was ready");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A service this test started, stopped (SIGTERM, then waited for) when the test ends.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(name: &'static str, mut command: Command, log: PathBuf) -> Service {
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Service { name, child, log }
    }

    fn wait_ready(&mut self, limit: Duration, ready: impl FnMut() -> bool) {
        let log = self.log.clone();
        let name = self.name;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(name, &mut self.child, limit, ready)
        }));
        if let Err(panic) = result {
            eprintln!(
                "{name}'s log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SIGTERM, as a service manager stops an engine; then make sure.
        support::child::stop(&mut self.child, libc::SIGTERM, Duration::from_secs(20));
    }
}

fn sh(what: &str, command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `openssl`: a CA, and certificates it signs for the engine (127.0.0.1) and for a client.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn ca(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        sh(
            "openssl req (CA)",
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
                .args(["-keyout", "ca-key.pem", "-out", "ca.pem"])
                .arg("-subj")
                .arg(format!("/CN={name}"))
                .current_dir(dir),
        );
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// `<name>-key.pem` and `<name>-cert.pem`, signed by this CA.
    fn sign(&self, name: &str, extensions: &str) {
        let ext = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext, extensions).unwrap();
        sh(
            "openssl req (certificate)",
            Command::new("openssl")
                .args(["req", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes"])
                .arg("-keyout")
                .arg(format!("{name}-key.pem"))
                .arg("-out")
                .arg(format!("{name}.csr"))
                .arg("-subj")
                .arg(format!("/CN={name}"))
                .current_dir(&self.dir),
        );
        sh(
            "openssl x509 (sign)",
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CA", "ca.pem", "-CAkey"])
                .args(["ca-key.pem", "-CAcreateserial", "-in"])
                .arg(format!("{name}.csr"))
                .arg("-out")
                .arg(format!("{name}-cert.pem"))
                .arg("-extfile")
                .arg(&ext)
                .current_dir(&self.dir),
        );
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A DOCKER_CERT_PATH directory: this CA as `ca.pem`, and the client certificate of `client`
    /// (when given) as `cert.pem` / `key.pem`.
    fn cert_path(&self, dir: &Path, client: Option<&Pki>) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(self.path("ca.pem"), dir.join("ca.pem")).unwrap();
        if let Some(client) = client {
            std::fs::copy(client.path("client-cert.pem"), dir.join("cert.pem")).unwrap();
            std::fs::copy(client.path("client-key.pem"), dir.join("key.pem")).unwrap();
        }
    }
}

/// A second dockerd on `tcp://127.0.0.1:PORT` that requires TLS with client certificates
/// (`--tlsverify`), on the data root `.ci/engines.sh` loaded the base image into.
fn start_tls_dockerd(data_root: &str, pki: &Pki, work: &Path) -> (Service, String) {
    let port = free_port();
    let run_dir = PathBuf::from("/run/cargo-lambda-build/tls-test");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut command = Command::new("dockerd");
    command
        .args(["--data-root", data_root])
        .arg("--exec-root")
        .arg(run_dir.join("exec"))
        .arg("--pidfile")
        .arg(run_dir.join("docker.pid"))
        .arg("-H")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .arg("--tlsverify")
        .arg("--tlscacert")
        .arg(pki.path("ca.pem"))
        .arg("--tlscert")
        .arg(pki.path("server-cert.pem"))
        .arg("--tlskey")
        .arg(pki.path("server-key.pem"))
        // Its own engine beside the first one: no bridge, no iptables rules to clash.
        .args(["--bridge=none", "--iptables=false", "--ip-masq=false"]);
    let mut dockerd = Service::start("the TLS dockerd", command, work.join("dockerd.log"));
    let host = format!("tcp://127.0.0.1:{port}");
    let probe_host = host.clone();
    let ca = pki.path("ca.pem");
    let (cert, key) = (pki.path("client-cert.pem"), pki.path("client-key.pem"));
    dockerd.wait_ready(Duration::from_secs(60), || {
        Command::new("docker")
            .args(["--tlsverify", "--tlscacert"])
            .arg(&ca)
            .arg("--tlscert")
            .arg(&cert)
            .arg("--tlskey")
            .arg(&key)
            .args(["-H", &probe_host, "version"])
            .env_remove("DOCKER_CONTEXT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    (dockerd, host)
}

#[test]
fn tls_engine_builds_and_a_wrong_ca_or_a_missing_client_certificate_is_a_clear_error() {
    if !support::require_tools(&["docker", "dockerd", "openssl", "cargo-lambda", "unzip"])
        || !root_or_skip("starting a second dockerd")
    {
        return;
    }
    let Some(data_root) = env_or_skip(
        "LAMBDA_BUILD_TEST_SECOND_DOCKERD_ROOT",
        "`. .ci/engines.sh` loads the base image into a second dockerd's data root",
    ) else {
        return;
    };
    let Some(setup) = setup() else { return };
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::ca(&work.path().join("pki"), "lambda-build test CA");
    pki.sign(
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    pki.sign("client", "extendedKeyUsage=clientAuth\n");
    let other = Pki::ca(&work.path().join("other"), "another CA");
    other.sign("client", "extendedKeyUsage=clientAuth\n");

    let good = work.path().join("good");
    pki.cert_path(&good, Some(&pki));
    let wrong_ca = work.path().join("wrong-ca");
    other.cert_path(&wrong_ca, Some(&pki));
    let no_client = work.path().join("no-client");
    pki.cert_path(&no_client, None);
    let foreign_client = work.path().join("foreign-client");
    pki.cert_path(&foreign_client, Some(&other));
    setup.runner.give(work.path());
    let (_dockerd, host) = start_tls_dockerd(&data_root, &pki, work.path());
    support::report_time("TLS dockerd start", started.elapsed());

    let with = |dir: &Path| {
        vec![
            ("DOCKER_HOST", host.clone()),
            ("DOCKER_TLS_VERIFY", "1".to_string()),
            ("DOCKER_CERT_PATH", dir.to_string_lossy().into_owned()),
        ]
    };
    let good_vars = with(&good);
    let project = shared_project(&setup);
    let err = assert_builds(&setup, project.as_path(), "TLS", &borrow(&good_vars));
    assert!(
        err.contains(&format!("engine at `{host}` (DOCKER_HOST) over TLS")),
        "{err}"
    );

    let err = assert_refused_at_once(
        &setup,
        &borrow(&with(&wrong_ca)),
        &format!(
            "cannot connect to the Docker engine at `{host}` (DOCKER_HOST) over TLS: its \
             certificate is not signed by a trusted CA"
        ),
        "the engine's certificate is not signed by",
    );
    assert!(err.contains("UnknownIssuer"), "{err}");
    report_error("wrong CA", &err);

    let plain = vec![("DOCKER_HOST", host.clone())];
    for (case, vars, message, help) in [
        (
            "no client certificate",
            with(&no_client),
            "over TLS: it requires a client certificate, and none was sent",
            "the engine requires a client certificate and there is none",
        ),
        (
            "client certificate of another CA",
            with(&foreign_client),
            "over TLS: it did not accept the client certificate",
            "the engine did not accept the client certificate",
        ),
        (
            "TLS port without DOCKER_TLS_VERIFY",
            plain,
            "over tcp without TLS: that port speaks TLS only",
            "that port wants TLS: set `DOCKER_TLS_VERIFY=1`",
        ),
    ] {
        let err = assert_refused_at_once(&setup, &borrow(&vars), message, help);
        report_error(case, &err);
    }

    // A context that holds the same certificates, as `docker context create` stores them.
    let config = work.path().join("docker-config");
    docker_cli(&config)
        .args(["context", "create", "tls-engine", "--docker"])
        .arg(format!(
            "host={host},ca={},cert={},key={}",
            good.join("ca.pem").display(),
            good.join("cert.pem").display(),
            good.join("key.pem").display()
        ))
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("docker context create");
    setup.runner.give(&config);
    let config_text = config.to_string_lossy().into_owned();
    let err = assert_builds(
        &setup,
        project.as_path(),
        "TLS from a docker context",
        &[
            ("DOCKER_CONFIG", &config_text),
            ("DOCKER_CONTEXT", "tls-engine"),
        ],
    );
    assert!(
        err.contains("(docker context `tls-engine` from DOCKER_CONTEXT) over TLS"),
        "{err}"
    );
    support::report_time("TLS test in all", started.elapsed());
}

fn borrow<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn report_error(case: &str, stderr: &str) {
    support::report(&format!("error for {case}:\n{}", stderr.trim_end()));
}

/// The docker CLI with its own config directory (contexts live there).
fn docker_cli(config: &Path) -> Command {
    let mut command = Command::new("docker");
    command
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT")
        .stdout(Stdio::null());
    command
}

#[test]
fn docker_contexts_from_docker_context_and_from_the_config_reach_the_engine() {
    if !support::require_tools(&["docker", "cargo-lambda", "unzip"]) {
        return;
    }
    let Some(setup) = setup() else { return };
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("docker-config");
    for (name, address) in [
        ("lambda-engine", host.as_str()),
        ("broken", "unix:///nonexistent/docker.sock"),
    ] {
        sh(
            "docker context create",
            docker_cli(&config)
                .args(["context", "create", name, "--docker"])
                .arg(format!("host={address}")),
        );
    }
    setup.runner.give(work.path());
    let config_text = config.to_string_lossy().into_owned();
    let cfg = ("DOCKER_CONFIG", config_text.as_str());

    let project = shared_project(&setup);
    let err = assert_builds(
        &setup,
        project.as_path(),
        "a docker context from DOCKER_CONTEXT",
        &[cfg, ("DOCKER_CONTEXT", "lambda-engine")],
    );
    assert!(
        err.contains(&format!(
            "engine at `{host}` (docker context `lambda-engine` from DOCKER_CONTEXT)"
        )),
        "{err}"
    );

    // `docker context use` writes `currentContext` into config.json.
    sh(
        "docker context use",
        docker_cli(&config).args(["context", "use", "lambda-engine"]),
    );
    setup.runner.give(&config);
    let config_json = config.join("config.json");
    let err = assert_builds(
        &setup,
        project.as_path(),
        "the current docker context",
        &[cfg],
    );
    assert!(
        err.contains(&format!(
            "(docker context `lambda-engine`, the current one in `{}`)",
            config_json.display()
        )),
        "{err}"
    );

    // DOCKER_CONTEXT wins over the config's current context, DOCKER_HOST over both.
    let err = assert_refused_at_once(
        &setup,
        &[cfg, ("DOCKER_CONTEXT", "broken")],
        "cannot use the Docker engine at `unix:///nonexistent/docker.sock` (docker context \
         `broken` from DOCKER_CONTEXT) over a unix socket",
        "start the engine that the docker context `broken` points at",
    );
    report_error("a context whose engine is down", &err);
    assert_refused_at_once(
        &setup,
        &[
            cfg,
            ("DOCKER_CONTEXT", "lambda-engine"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
        "cannot use the Docker engine at `unix:///nonexistent/docker.sock` (DOCKER_HOST)",
        "start the engine",
    );
    let err = assert_refused_at_once(
        &setup,
        &[cfg, ("DOCKER_CONTEXT", "missing")],
        "cannot use the docker context `missing` (DOCKER_CONTEXT)",
        "docker context ls",
    );
    report_error("a context that does not exist", &err);
}

#[test]
fn ssh_engine_builds_through_dial_stdio_and_a_refused_login_is_a_clear_error() {
    if !support::require_tools(&[
        "docker",
        "ssh",
        "ssh-keygen",
        "/usr/sbin/sshd",
        "cargo-lambda",
        "unzip",
    ]) || !root_or_skip("starting sshd and logging in as the test user")
    {
        return;
    }
    let Some(setup) = setup() else { return };
    let Some(home) = setup.runner.home().map(Path::to_path_buf) else {
        return support::skip_or_fail("the ssh test logs in as LAMBDA_BUILD_TEST_USER");
    };
    let user = std::env::var("LAMBDA_BUILD_TEST_USER").unwrap();
    let engine =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    for key in ["host_key", "client_key"] {
        sh(
            "ssh-keygen",
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key)),
        );
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = free_port();
    let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    std::fs::write(
        dir.join("known_hosts"),
        format!("[127.0.0.1]:{port} {}\n", host_key.join(" ")),
    )
    .unwrap();
    // The remote `docker system dial-stdio` reaches the first engine; `docker` is on sshd's
    // default PATH.
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPermitRootLogin no\nPidFile {}\nSetEnv DOCKER_HOST={engine}\n",
            dir.join("host_key").display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    // `!` in the shadow file locks the account: sshd would refuse even a key.
    let shadow = Command::new("getent")
        .args(["shadow", &user])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&shadow.stdout).split(':').nth(1) == Some("!") {
        sh("usermod", Command::new("usermod").args(["-p", "*", &user]));
    }
    std::fs::create_dir_all("/run/sshd").unwrap();
    // ssh finds its configuration in the user's home from the password database, not $HOME:
    // the test user's own ~/.ssh/config points at this test's key and known hosts.
    let ssh_dir = home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(
        ssh_dir.join("config"),
        format!(
            "# written by cargo-lambda-build's tests/it/docker_engines.rs\nHost 127.0.0.1\n  \
             IdentityFile {}\n  UserKnownHostsFile {}\n  IdentitiesOnly yes\n",
            dir.join("client_key").display(),
            dir.join("known_hosts").display()
        ),
    )
    .unwrap();
    setup.runner.give(&ssh_dir);
    setup.runner.give(dir);
    let mut command = Command::new("/usr/sbin/sshd");
    command
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"));
    let mut sshd = Service::start("sshd", command, dir.join("sshd.log"));
    sshd.wait_ready(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let address = format!("ssh://{user}@127.0.0.1:{port}");
    let project = shared_project(&setup);
    let err = assert_builds(
        &setup,
        project.as_path(),
        "ssh",
        &[("DOCKER_HOST", &address)],
    );
    assert!(
        err.contains(&format!("engine at `{address}` (DOCKER_HOST) over ssh")),
        "{err}"
    );

    let refused = format!("ssh://nobody-here@127.0.0.1:{port}");
    let err = assert_refused_at_once(
        &setup,
        &[("DOCKER_HOST", &refused)],
        &format!("cannot reach the Docker engine at `{refused}` (DOCKER_HOST) over ssh: ssh said:"),
        "the login was refused",
    );
    assert!(err.contains("Permission denied"), "{err}");
    report_error("an ssh login that is refused", &err);
    support::report_time("ssh test in all", started.elapsed());
}

/// `podman system service` on a socket in `dir`, as root or (rootless) as the runner.
fn start_podman(setup: &Setup, dir: &Path, rootless: bool) -> Option<(Service, String)> {
    let conf = env_or_skip(
        "LAMBDA_BUILD_TEST_CONTAINERS_CONF",
        "`. .ci/engines.sh` writes the containers.conf Podman needs here",
    )?;
    let socket = dir.join("podman.sock");
    let mut command = if rootless {
        let storage = env_or_skip(
            "LAMBDA_BUILD_TEST_STORAGE_CONF",
            "`. .ci/engines.sh` writes the storage.conf rootless Podman uses",
        )?;
        let mut command = setup.runner.0.command("podman");
        let xdg = PathBuf::from(format!("/run/cargo-lambda-build/xdg-{}", setup.runner.uid));
        if support::is_root() {
            std::fs::create_dir_all(&xdg).unwrap();
            setup.runner.give(&xdg);
            std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
            command.env("XDG_RUNTIME_DIR", &xdg);
        }
        command.env("CONTAINERS_STORAGE_CONF", storage);
        // setpriv keeps the working directory, which the user may not enter.
        command.current_dir(dir);
        command
    } else {
        Command::new("podman")
    };
    command
        .env("CONTAINERS_CONF", conf)
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()));
    let name = if rootless {
        "rootless podman"
    } else {
        "rootful podman"
    };
    let mut service = Service::start(name, command, dir.join("podman.log"));
    let probe = socket.clone();
    service.wait_ready(Duration::from_secs(30), || {
        std::os::unix::net::UnixStream::connect(&probe).is_ok()
    });
    if !rootless {
        // The tool runs as the test user, as a member of a `podman` group would.
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
    }
    Some((service, format!("unix://{}", socket.display())))
}

fn podman_builds(rootless: bool) {
    if !support::require_tools(&["podman", "cargo-lambda", "unzip"]) {
        return;
    }
    if !rootless && !root_or_skip("rootful Podman") {
        return;
    }
    let Some(setup) = setup() else { return };
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    setup.runner.give(work.path());
    std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let Some((_podman, host)) = start_podman(&setup, work.path(), rootless) else {
        return;
    };
    let what = if rootless {
        "rootless Podman"
    } else {
        "rootful Podman"
    };
    let project = project(&setup, "");
    let err = assert_builds(&setup, project.path(), what, &[("DOCKER_HOST", &host)]);
    // Rootless, the container's root is the user; rootful, the container runs as the user.
    let as_user = format!("--user {}:{}", setup.runner.uid, setup.runner.gid);
    assert_eq!(err.contains(&as_user), !rootless, "{err}");
    support::report_time(&format!("{what} test in all"), started.elapsed());
}

#[test]
fn rootful_podman_builds_a_zip_that_runs_and_belongs_to_the_user() {
    podman_builds(false);
}

/// In rootless Podman the container's root is the user: the tool keeps root there, so the files
/// it writes are the user's.
#[test]
fn rootless_podman_builds_a_zip_that_runs_and_belongs_to_the_user() {
    podman_builds(true);
}
