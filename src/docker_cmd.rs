//! The commands about `--docker` that build nothing: `dockerfile` prints the bundled Dockerfile,
//! `docker ls` lists what the tool keeps on the engine, `docker clean` removes it.

use std::io::Write;

use bollard::Docker;

use crate::build::BuildError;
use crate::build::docker::DockerError;
use crate::build::docker::engine::{self, Endpoint};
use crate::build::docker::image::BUNDLED_DOCKERFILE;
use crate::build::docker::inventory::{self, Item, Outcome};
use crate::config::MessageFormat;
use crate::env::{Env, Ui};
use crate::error::{Error, Result};
use crate::report::{Reporter, human_size};

fn stdout_error(e: std::io::Error) -> Error {
    anyhow::anyhow!("cannot write to stdout: {e}").into()
}

/// `cargo lambda-build dockerfile`: the bundled file, byte for byte, so that a committed copy
/// builds the same image (and gets the same tag) until someone edits it.
pub fn dockerfile() -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(BUNDLED_DOCKERFILE.as_bytes())
        .map_err(stdout_error)
}

/// The engine `--docker` would use, and an async runtime for the requests.
fn connect(env: &Env) -> Result<(tokio::runtime::Runtime, Docker, Endpoint)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start an async runtime for Docker: {e}"))?;
    let address = engine::resolve(&engine::EngineEnv::from_env(env), &engine::Disk)
        .map_err(|e| docker_error(e.into()))?;
    let docker = runtime
        .block_on(engine::connect(&address))
        .map_err(docker_error)?;
    Ok((runtime, docker, address))
}

fn docker_error(error: DockerError) -> Error {
    Error::from(BuildError::Docker(error))
}

/// `cargo lambda-build docker ls`.
pub fn ls(format: MessageFormat, env: &Env, ui: Ui) -> Result<()> {
    let (runtime, docker, address) = connect(env)?;
    let items = runtime
        .block_on(inventory::list(&docker))
        .map_err(docker_error)?;
    let out = &mut std::io::stdout().lock();
    match format {
        MessageFormat::Json => {
            for item in &items {
                writeln!(out, "{}", json(item)).map_err(stdout_error)?;
            }
        }
        MessageFormat::Human if items.is_empty() => {
            Reporter::plain(ui).status(
                "Empty",
                format!(
                    "nothing of cargo-lambda-build on the engine at {}",
                    address.host
                ),
            );
        }
        MessageFormat::Human => print_table(out, &items).map_err(stdout_error)?,
    }
    Ok(())
}

fn json(item: &Item) -> serde_json::Value {
    serde_json::json!({
        "kind": item.kind.name(),
        "name": item.name,
        "id": item.id,
        // Bytes; null when the engine does not report it.
        "size": item.size,
        "running": item.running,
        "note": item.note,
    })
}

fn size_text(size: Option<u64>) -> String {
    size.map_or_else(|| "-".to_string(), human_size)
}

fn print_table(out: &mut impl Write, items: &[Item]) -> std::io::Result<()> {
    let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "{:<9}  {:<width$}  {:>10}  NOTE",
        "KIND", "NAME", "SIZE"
    )?;
    for item in items {
        writeln!(
            out,
            "{:<9}  {:<width$}  {:>10}  {}",
            item.kind.name(),
            item.name,
            size_text(item.size),
            item.note
        )?;
    }
    let total: u64 = items.iter().filter_map(|i| i.size).sum();
    writeln!(
        out,
        "{} item{}, {} (images may share layers)",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        human_size(total)
    )
}

/// `cargo lambda-build docker clean`: removes without asking, and says what it removed.
pub fn clean(force: bool, env: &Env, ui: Ui) -> Result<()> {
    let (runtime, docker, address) = connect(env)?;
    let reporter = Reporter::plain(ui);
    let items = runtime
        .block_on(inventory::list(&docker))
        .map_err(docker_error)?;
    if items.is_empty() {
        reporter.status(
            "Empty",
            format!(
                "nothing of cargo-lambda-build on the engine at {}",
                address.host
            ),
        );
        return Ok(());
    }
    let outcomes = runtime.block_on(inventory::remove(&docker, &items, force));
    let mut removed = 0;
    let mut failed = Vec::new();
    for (item, outcome) in &outcomes {
        match outcome {
            Outcome::Removed => {
                removed += 1;
                let size = item
                    .size
                    .map(|s| format!(" ({})", human_size(s)))
                    .unwrap_or_default();
                reporter.status(
                    "Removed",
                    format!("{} {}{size}", item.kind.name(), item.name),
                );
            }
            Outcome::KeptRunning => reporter.warn(format!(
                "kept container {}: it is running (a build in progress?); `cargo lambda-build \
                 docker clean --force` removes it too",
                item.name
            )),
            Outcome::KeptInUse => reporter.warn(format!(
                "kept image {}: a running container uses it",
                item.name
            )),
            Outcome::Failed(message) => {
                reporter.warn(format!(
                    "could not remove {} {}: {message}",
                    item.kind.name(),
                    item.name
                ));
                failed.push(format!("{} {}", item.kind.name(), item.name));
            }
        }
    }
    // Not a sum of sizes: images share layers, and an image with other names only loses a tag.
    reporter.status(
        "Summary",
        format!("removed {removed} of {} items", outcomes.len()),
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(docker_error(DockerError::Engine {
            action: format!("remove {}", failed.join(", ")),
            message: "see the warnings above".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::docker::inventory::Kind;

    fn item(kind: Kind, name: &str, size: Option<u64>) -> Item {
        Item {
            kind,
            name: name.into(),
            id: format!("id-{name}"),
            size,
            running: false,
            note: String::new(),
            image_id: None,
        }
    }

    #[test]
    fn the_table_has_a_line_per_item_and_a_total() {
        let items = [
            item(Kind::Container, "cargo-lambda-build-1-a", Some(0)),
            item(Kind::Image, "cargo-lambda-build:0123", Some(3 << 20)),
            item(Kind::Volume, "cargo-lambda-build-src", None),
        ];
        let mut out = Vec::new();
        print_table(&mut out, &items).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[2].starts_with("image") && lines[2].contains("3.0 MiB"),
            "{text}"
        );
        assert!(lines[3].contains(" - "), "unknown size shown as -: {text}");
        assert_eq!(lines[4], "3 items, 3.0 MiB (images may share layers)");
        let json = json(&items[2]);
        assert_eq!(json["kind"], "volume");
        assert!(json["size"].is_null());
    }
}
