//! The registry side: which names are accepted, which registries speak plain HTTP, the
//! credentials the docker CLI would use, and the client (oci-client, over rustls).

use std::path::Path;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// `text` as a reference, refused when it names no registry: Docker Hub's implicit default
/// is never where a Lambda image goes (Lambda pulls from ECR), so the registry is spelled out.
pub fn parse(text: &str) -> Result<Reference, String> {
    let first = text.split('/').next().unwrap_or_default();
    let names_registry =
        text.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !names_registry {
        return Err("it names no registry".into());
    }
    Reference::try_from(text).map_err(|e| e.to_string())
}

/// Whether a registry is on this machine: the docker CLI lets those speak plain HTTP (its
/// default `insecure-registries` is 127.0.0.0/8), and so does the tool; every other registry
/// is reached over HTTPS only.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// A client for these references: plain HTTP to the loopback registries among them.
pub fn client(references: &[&Reference]) -> Client {
    // reqwest is built without a crypto provider of its own: rustls uses ring, as the engine
    // transports do. Installing twice is harmless (the first one stays).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plain_http = (references.iter())
        .map(|reference| reference.resolve_registry().to_owned())
        .filter(|registry| is_loopback(registry))
        .collect();
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain_http),
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(120)),
        ..ClientConfig::default()
    })
}

/// The docker CLI's credentials for `registry`, from `config.json` in `config_dir` (its
/// `auths`, or the credential helper of `credHelpers` / `credsStore`, such as ECR's);
/// anonymous when it has none.
pub fn credentials(registry: &str, config_dir: Option<&Path>) -> Result<RegistryAuth, String> {
    let Some(path) = config_dir.map(|dir| dir.join("config.json")) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    // The CLI keys Docker Hub's credentials by its v1 URL.
    let server = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    match docker_credential::get_credential_from_reader(file, server) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(E::NoCredentialConfigured | E::ConfigNotFound) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(format!("`{}`: {e}", path.display())),
    }
}

/// An error with its causes, which reqwest keeps apart ("error sending request" ... "Connection
/// refused").
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_must_name_its_registry() {
        assert!(parse("func:latest").is_err());
        assert!(parse("team/func").is_err());
        let reference = parse("127.0.0.1:5000/func:v1").unwrap();
        assert_eq!(reference.resolve_registry(), "127.0.0.1:5000");
        assert_eq!(reference.repository(), "func");
        assert!(parse("123.dkr.ecr.eu-west-1.amazonaws.com/func").is_ok());
        assert!(parse("localhost/func").is_ok());
    }

    #[test]
    fn only_this_machine_speaks_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("123.dkr.ecr.eu-west-1.amazonaws.com"));
        assert!(!is_loopback("localhost.example.com"));
    }

    #[test]
    fn credentials_from_the_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .unwrap();
        assert_eq!(
            credentials("127.0.0.1:5000", Some(dir.path())).unwrap(),
            RegistryAuth::Basic("user".into(), "pass".into())
        );
        assert_eq!(
            credentials("other:5000", Some(dir.path())).unwrap(),
            RegistryAuth::Anonymous
        );
    }
}
