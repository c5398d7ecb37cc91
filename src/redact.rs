//! What `-v` must not print: the values of variables whose names look secret. One rule for every
//! command the tool shows (cargo, `docker run`, the `invoke` launch), so a log shared from CI
//! never carries a token.

use std::borrow::Cow;
use std::ffi::OsStr;

/// What a secret value is printed as.
pub const MASK: &str = "***";

/// Whether a variable of this name holds a secret: `*TOKEN*`, `*SECRET*`, `*PASSWORD*`,
/// `*PASSWD*`, `*CREDENTIAL*`, `*PRIVATE_KEY*`, `*API_KEY*` and `AWS_*KEY*` (so
/// `AWS_ACCESS_KEY_ID` too: with the secret key it is half of a credential), in any case.
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PRIVATE_KEY",
        "API_KEY",
    ]
    .iter()
    .any(|word| name.contains(word))
        || (name.starts_with("AWS_") && name.contains("KEY"))
}

/// Whether `-v` hides the value of this variable: a secret, or any of sccache's settings
/// (`SCCACHE_REDIS=redis://:password@host`, `SCCACHE_AZURE_CONNECTION_STRING`, bucket names),
/// which the build container receives but a shared CI log must not show.
#[must_use]
pub fn is_masked_name(name: &str) -> bool {
    is_secret_name(name) || name.to_ascii_uppercase().starts_with("SCCACHE_")
}

/// The value to print for variable `name`.
#[must_use]
pub fn value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_masked_name(name) { MASK } else { value }
}

/// A command as shell words, `NAME=value` first, secrets masked: in the environment, and in
/// arguments of the form `NAME=value` (as `docker run --env NAME=value` has).
#[must_use]
pub fn command_line<'a>(
    env: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    program: &OsStr,
    args: impl IntoIterator<Item = &'a OsStr>,
) -> String {
    let assignment = |name: &str, v: &str| format!("{name}={}", shell_words::quote(value(name, v)));
    env.into_iter()
        .map(|(name, v)| assignment(&name, &v))
        .chain(std::iter::once(
            shell_words::quote(&program.to_string_lossy()).into_owned(),
        ))
        .chain(args.into_iter().map(|arg| {
            let arg = arg.to_string_lossy();
            match arg.split_once('=') {
                Some((name, v)) if is_masked_name(name) && is_variable_name(name) => {
                    assignment(name, v)
                }
                _ => shell_words::quote(&arg).into_owned(),
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_names() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SESSION_TOKEN",
            "GITHUB_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "CARGO_REGISTRIES_CORP_TOKEN",
            "DB_PASSWORD",
            "my_password",
            "NPM_AUTH_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "SSH_PRIVATE_KEY",
            "STRIPE_API_KEY",
            "SECRET",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "AWS_REGION",
            "AWS_LAMBDA_FUNCTION_NAME",
            "CARGO_PROFILE_RELEASE_STRIP",
            "CARGO_TARGET_DIR",
            "RUSTFLAGS",
            "KEYBOARD",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn command_lines_mask_values_in_the_environment_and_in_arguments() {
        let line = command_line(
            [
                ("CARGO_REGISTRY_TOKEN".into(), "hunter2".into()),
                ("CARGO_PROFILE_RELEASE_STRIP".into(), "symbols".into()),
            ],
            OsStr::new("docker"),
            [
                "run",
                "--env",
                "GITHUB_TOKEN=ghp_x y",
                "--env",
                "CARGO_TERM_COLOR=never",
                "--env",
                "SCCACHE_REDIS=redis://:pw@cache",
                "--label",
                "note=has a space",
                "a=b TOKEN=c",
            ]
            .map(OsStr::new),
        );
        assert_eq!(
            line,
            "CARGO_REGISTRY_TOKEN='***' CARGO_PROFILE_RELEASE_STRIP=symbols docker run --env \
             GITHUB_TOKEN='***' --env 'CARGO_TERM_COLOR=never' --env SCCACHE_REDIS='***' --label 'note=has a space' \
             'a=b TOKEN=c'"
        );
    }
}
