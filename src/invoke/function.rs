//! The function's configuration, as Lambda holds it: name, memory, timeout, handler, region,
//! variables and layers, with Lambda's defaults and the values Lambda refuses.

use std::path::{Path, PathBuf};

use super::error::InvokeError;
use crate::lambda::{
    DEFAULT_HANDLER, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECS, LOG_FORMAT_JSON, LOG_FORMAT_TEXT,
    LOG_FORMAT_VARIABLE, LOG_LEVEL_VARIABLE, MAX_HANDLER_CHARS, RESERVED_VARIABLES,
};

/// Lambda's region when none is configured here.
const DEFAULT_REGION: &str = "us-east-1";

/// The function's configuration, as Lambda holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSettings {
    pub name: String,
    pub memory_mb: u32,
    pub timeout_secs: u32,
    /// `_HANDLER`: `bootstrap` unless the function's configuration names another.
    pub handler: String,
    pub region: String,
    /// The function's own variables, each key once: the settings' `env` table, then
    /// `--env-file`, then `--env`, a later one winning; checked against Lambda's reserved keys.
    pub variables: Vec<(String, String)>,
    /// Lambda's logging configuration, when one is given (`--log-format`, `--log-level`).
    pub log_format: Option<LogFormat>,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` from this machine: on
    /// Lambda the function gets its role's credentials in these.
    pub credentials: Vec<(String, String)>,
    /// The layers' zips (`--layer`), extracted into `/opt` in this order.
    pub layers: Vec<PathBuf>,
    /// Run in a container rather than as a process of this machine (`--docker`, the default
    /// where this machine cannot run a Linux executable).
    pub container: Option<super::container::ContainerPlan>,
    /// The packaged `bootstrap` as a process of this machine: every library it and the layers'
    /// extensions need is looked for before it starts (see `libraries`). Not for `--native`'s
    /// build, made for this machine's libraries.
    pub check_libraries: bool,
    /// The sysroot qemu runs the other architecture with, when `QEMU_LD_PREFIX` chooses one.
    pub qemu_sysroot: Option<PathBuf>,
    /// `--concurrency`: Lambda Managed Instances' `AWS_LAMBDA_MAX_CONCURRENCY`; `None` runs one
    /// invocation at a time, as Lambda's default model does.
    pub concurrency: Option<u32>,
    /// `invoke --tenant-id`: the tenant every event runs for.
    pub tenant_id: Option<String>,
    /// `invoke --client-context`: the client context every event is invoked with.
    pub caller: super::invoke_api::Caller,
    /// `--snap-start`: SnapStart's lifecycle (`restore/next`, a pause, the after-restore hooks).
    pub snap_start: bool,
}

impl FunctionSettings {
    /// The function's ARN, for the `Lambda-Runtime-Invoked-Function-Arn` header.
    pub fn arn(&self) -> String {
        super::ids::function_arn(&self.region, &self.name)
    }

    /// How many invocations one environment takes at once.
    pub fn max_concurrency(&self) -> u32 {
        self.concurrency.unwrap_or(1).max(1)
    }

    /// Takes what the settings say of running the function, under the command line: the `env`
    /// table's variables under those already there (`--env-file`, `--env`), which win (Lambda's
    /// reserved keys are refused wherever they come from), and `concurrency` unless
    /// `--concurrency` (or the variable) gave one.
    pub fn add_settings(&mut self, run: &crate::config::RunSettings) -> Result<(), InvokeError> {
        self.add_settings_env(&run.env)?;
        self.concurrency = self.concurrency.or(run.concurrency.filter(|n| *n >= 1));
        Ok(())
    }

    /// Puts the variables of the settings' `env` table under those already there (`--env-file`,
    /// `--env`), which win; Lambda's reserved keys are refused wherever they come from.
    pub fn add_settings_env(&mut self, env: &[(String, String)]) -> Result<(), InvokeError> {
        let given = std::mem::take(&mut self.variables);
        self.variables = checked(merged(env.iter().cloned().chain(given)))?;
        Ok(())
    }

    /// Whether Lambda's own lines (START, REPORT) are JSON objects.
    pub fn json_logs(&self) -> bool {
        matches!(self.log_format, Some(LogFormat::Json { .. }))
    }
}

/// Lambda's `LoggingConfig` as the function sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// With the application log level, one of `lambda::LOG_LEVELS`.
    Json {
        level: &'static str,
    },
}

impl LogFormat {
    /// The variables Lambda sets for it.
    pub fn variables(self) -> Vec<(String, String)> {
        let var = |key: &str, value: &str| (key.to_owned(), value.to_owned());
        match self {
            LogFormat::Text => vec![var(LOG_FORMAT_VARIABLE, LOG_FORMAT_TEXT)],
            LogFormat::Json { level } => vec![
                var(LOG_FORMAT_VARIABLE, LOG_FORMAT_JSON),
                var(LOG_LEVEL_VARIABLE, level),
            ],
        }
    }
}

/// The function's settings with Lambda's defaults (3 s, 128 MB), the region and credentials
/// of this machine's environment.
pub fn default_function(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> FunctionSettings {
    FunctionSettings {
        name: name.to_owned(),
        memory_mb: DEFAULT_MEMORY_MB,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        handler: DEFAULT_HANDLER.to_owned(),
        region: lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        variables: Vec::new(),
        log_format: None,
        credentials: [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .into_iter()
        .filter_map(|key| lookup(key).map(|value| (key.to_owned(), value)))
        .collect(),
        layers: Vec::new(),
        container: None,
        check_libraries: false,
        qemu_sysroot: None,
        concurrency: None,
        tenant_id: None,
        caller: Default::default(),
        snap_start: false,
    }
}

/// Lambda's constraint on a function's `Handler`: 1 to 128 characters, no whitespace.
pub fn check_handler(handler: &str) -> Result<(), InvokeError> {
    if handler.is_empty()
        || handler.chars().count() > MAX_HANDLER_CHARS
        || handler.contains(char::is_whitespace)
    {
        return Err(InvokeError::InvalidHandler(handler.to_owned()));
    }
    Ok(())
}

/// Parses `--env KEY=VALUE` values, refusing what Lambda refuses.
pub fn parse_variables(values: &[String]) -> Result<Vec<(String, String)>, InvokeError> {
    let mut variables = Vec::new();
    for value in values {
        let (key, val) = value
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| InvokeError::InvalidEnv(value.clone()))?;
        variables.push((key.to_owned(), val.to_owned()));
    }
    checked(merged(variables))
}

/// Each key once, at its first place, with the last value given for it.
fn merged(variables: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (key, value) in variables {
        match merged.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => merged.push((key, value)),
        }
    }
    merged
}

/// Reads an `--env-file` as `docker run --env-file` does: a line is `KEY=VALUE`, the value
/// taken as written (quotes included) up to the end of the line; `KEY` alone passes `lookup`'s
/// value, and nothing when it has none; leading whitespace is dropped, and a line that is then
/// empty or starts with `#` is skipped. A key with whitespace in it, or none, is refused with
/// its line number, as docker refuses it.
pub fn parse_env_file(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, InvokeError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut variables = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line, None),
        };
        let bad = |reason: String| InvokeError::InvalidEnvFile {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        if key.is_empty() {
            return Err(bad(format!("`{line}` has no variable name before `=`")));
        }
        if key.contains(char::is_whitespace) {
            return Err(bad(format!(
                "the variable name `{key}` contains whitespace"
            )));
        }
        match value {
            Some(value) => variables.push((key.to_owned(), value.to_owned())),
            None => variables.extend(lookup(key).map(|value| (key.to_owned(), value))),
        }
    }
    Ok(variables)
}

/// Refuses the keys Lambda reserves, naming them as Lambda does.
fn checked(variables: Vec<(String, String)>) -> Result<Vec<(String, String)>, InvokeError> {
    let reserved: Vec<String> = variables
        .iter()
        .map(|(key, _)| key.clone())
        .filter(|key| RESERVED_VARIABLES.contains(&key.as_str()))
        .collect();
    if !reserved.is_empty() {
        return Err(InvokeError::ReservedEnv(reserved));
    }
    Ok(variables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_concurrency_yields_to_the_command_lines() {
        let run = crate::config::RunSettings {
            env: Vec::new(),
            concurrency: Some(8),
        };
        let mut function = default_function("f", &|_: &str| None);
        function.add_settings(&run).unwrap();
        assert_eq!(function.concurrency, Some(8));
        function.concurrency = Some(2);
        function.add_settings(&run).unwrap();
        assert_eq!(function.concurrency, Some(2));
    }

    #[test]
    fn reserved_variables_are_refused_like_lambda_does() {
        let values = [
            "A=1".to_owned(),
            "AWS_REGION=x".to_owned(),
            "_HANDLER=y".to_owned(),
        ];
        let err = parse_variables(&values).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("Reserved keys used in this request: AWS_REGION, _HANDLER"),
            "{err}"
        );
        assert!(matches!(
            parse_variables(&["NOEQUALS".to_owned()]),
            Err(InvokeError::InvalidEnv(_))
        ));
        assert_eq!(
            parse_variables(&["K=a=b".to_owned(), "E=".to_owned()]).unwrap(),
            [("K".into(), "a=b".into()), ("E".into(), String::new())]
        );
    }

    #[test]
    fn env_files_are_read_as_docker_reads_them() {
        let path = Path::new("f.env");
        let here = |key: &str| (key == "HERE").then(|| "from here".to_owned());
        let text = "\u{feff}# comment\n\n  A=1\r\nQ=\"quoted\" # kept\nE=\nHERE\nGONE\nK=a=b\n";
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            parse_env_file(path, text, &here).unwrap(),
            pairs(&[
                ("A", "1"),
                ("Q", "\"quoted\" # kept"),
                ("E", ""),
                ("HERE", "from here"),
                ("K", "a=b"),
            ])
        );
        for (text, line, reason) in [
            ("A=1\n=x\n", 2, "`=x` has no variable name before `=`"),
            (
                "MY KEY=x",
                1,
                "the variable name `MY KEY` contains whitespace",
            ),
            (
                "\n\nTAB\tKEY",
                3,
                "the variable name `TAB\tKEY` contains whitespace",
            ),
        ] {
            let err = parse_env_file(path, text, &here).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("f.env:{line}: {reason}"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_settings_table_is_under_the_file_and_the_flags() {
        let mut function = default_function("f", &|_| None);
        function.variables =
            parse_variables(&["A=flag".into(), "B=flag".into(), "A=last".into()]).unwrap();
        assert_eq!(function.variables.len(), 2);
        let table = [
            ("C".to_owned(), "table".to_owned()),
            ("A".into(), "table".into()),
        ];
        function.add_settings_env(&table).unwrap();
        let get = |key: &str| {
            let found = function.variables.iter().find(|(k, _)| k == key);
            found.map(|(_, v)| v.as_str())
        };
        assert_eq!(get("A"), Some("last"));
        assert_eq!(get("C"), Some("table"));
        assert_eq!(function.variables.len(), 3);
        let reserved = [("_HANDLER".to_owned(), "x".to_owned())];
        assert!(matches!(
            function.add_settings_env(&reserved),
            Err(InvokeError::ReservedEnv(_))
        ));
    }

    #[test]
    fn handlers_are_checked_as_lambda_checks_them() {
        for good in ["bootstrap", "orders.list", "a", &"h".repeat(128)] {
            assert!(check_handler(good).is_ok(), "{good}");
        }
        for bad in ["", "two words", "tab\there", &"h".repeat(129)] {
            assert!(
                matches!(check_handler(bad), Err(InvokeError::InvalidHandler(_))),
                "{bad}"
            );
        }
    }
}
