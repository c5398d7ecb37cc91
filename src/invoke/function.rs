//! The function's configuration, as Lambda holds it: name, memory, timeout, handler, region,
//! variables and layers, with Lambda's defaults and the values Lambda refuses.

use std::path::PathBuf;

use super::error::InvokeError;
use crate::lambda::{
    DEFAULT_HANDLER, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECS, MAX_HANDLER_CHARS, RESERVED_VARIABLES,
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
    /// The function's own variables (`--env`), checked against Lambda's reserved keys.
    pub variables: Vec<(String, String)>,
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
