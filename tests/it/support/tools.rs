//! External tools the tests need: find them on PATH, skip or fail when one is missing.

use std::path::PathBuf;

/// When this environment variable is `1`, a missing tool fails the test instead of skipping it.
/// `.ci/run` sets it after installing everything, so CI cannot go green by skipping.
const REQUIRE_ALL_ENV: &str = "LAMBDA_BUILD_TEST_REQUIRE_ALL";

/// qemu-user with the arm64 libc (`libc6-arm64-cross`), to run an arm64 `bootstrap` here:
/// put it before the program's path.
pub const QEMU: [&str; 3] = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];

/// How `.ci/run` provides each tool the tests may ask for.
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "cargo-lambda" => {
            "`python3 -m pip install --no-deps cargo-lambda` (its Runtime API emulator)"
        }
        "unzip" => "`apt-get install -y unzip`",
        "bsdtar" => "`apt-get install -y libarchive-tools`",
        "7z" => "`apt-get install -y p7zip-full`",
        "qemu-aarch64-static" | "qemu-aarch64" => "`apt-get install -y qemu-user-static`",
        "aarch64-linux-gnu-gcc" => "`apt-get install -y gcc-aarch64-linux-gnu`",
        "python3" => "nothing: python3 is expected on the CI machine",
        "docker" => "nothing: the Docker client is expected on the CI machine",
        "docker-registry" => "`apt-get install -y docker-registry`",
        "skopeo" => "`apt-get install -y skopeo`",
        _ => "nothing: add it to .ci/run",
    }
}

/// The path of an executable `name` found on PATH (or `name` itself when it is a path).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when `name` is on PATH. When it is not: panics if `LAMBDA_BUILD_TEST_REQUIRE_ALL=1`
/// (saying how `.ci/run` installs it), else prints `skipped: <name> not installed` and returns
/// false, and the caller returns early:
///
/// ```ignore
/// if !common::require_tool("unzip") { return; }
/// ```
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    if std::env::var(REQUIRE_ALL_ENV).as_deref() == Ok("1") {
        panic!(
            "required tool `{name}` is not installed ({REQUIRE_ALL_ENV}=1 forbids skipping); \
             .ci/run installs it with {}",
            install_hint(name)
        );
    }
    eprintln!("skipped: {name} not installed");
    false
}

/// A test that cannot run here: panics when `LAMBDA_BUILD_TEST_REQUIRE_ALL=1`, else prints
/// `skipped: <reason>`; the caller then returns.
pub fn skip_or_fail(reason: &str) {
    if std::env::var(REQUIRE_ALL_ENV).as_deref() == Ok("1") {
        panic!("{reason} ({REQUIRE_ALL_ENV}=1 forbids skipping; .ci/run provides it)");
    }
    eprintln!("skipped: {reason}");
}

/// Whether the tool finds zig (on PATH or as `python3 -m ziglang`), asked of the tool's own
/// lookup so that the tests and the tool never disagree. The one use of the crate's library here.
pub fn zig_installed() -> bool {
    cargo_lambda_build::build::zig::find().is_some()
}

/// [`require_tool`] for each name (all are checked, so every missing one is reported).
pub fn require_tools(names: &[&str]) -> bool {
    // Not `all`: it would stop at the first missing tool.
    names.iter().filter(|name| !require_tool(name)).count() == 0
}

/// A PATH of one directory, under `scratch`, holding links to these tools and nothing else: a run
/// without zig, python3 or a cross gcc even where cargo's own directory has them (a distribution's
/// cargo lives in /usr/bin).
pub fn path_with_only(scratch: &std::path::Path, tools: &[&str]) -> std::ffi::OsString {
    let bin = scratch.join("only-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in tools {
        let found = find_tool(tool).unwrap_or_else(|| panic!("`{tool}` on PATH"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    bin.into_os_string()
}

/// A PATH of one directory, under `scratch`, holding links to every program on this PATH but
/// `hidden`: a run on this machine as if those were not installed (each name links to the
/// program PATH finds first, so nothing else changes).
pub fn path_without(scratch: &std::path::Path, hidden: &[&str]) -> std::ffi::OsString {
    let bin = scratch.join("path-without");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = bin.join(&name);
            let program = entry.path();
            if hidden.iter().any(|h| name == *h) || link.exists() || !is_executable(&program) {
                continue;
            }
            std::os::unix::fs::symlink(&program, &link).unwrap();
        }
    }
    bin.into_os_string()
}

/// Whether an arm64 cross build can link here (zig or a GNU cross gcc); skips the test
/// otherwise, or fails it under `LAMBDA_BUILD_TEST_REQUIRE_ALL=1`.
pub fn arm64_linker() -> bool {
    let found = zig_installed() || find_tool("aarch64-linux-gnu-gcc").is_some();
    if !found {
        skip_or_fail("no arm64 linker: zig (`pip install ziglang`) or aarch64-linux-gnu-gcc");
    }
    found
}
