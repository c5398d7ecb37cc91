//! `{{name}}`: an AWS Lambda function. It answers `{"name": "Ferris"}` with
//! `{"message": "hello, Ferris"}`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};

/// The event the function is invoked with (JSON).
#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    name: String,
}

/// What it answers (JSON).
#[derive(Debug, PartialEq, Serialize)]
struct Response {
    message: String,
}

async fn handler(event: LambdaEvent<Request>) -> Result<Response, Error> {
    let name = match event.payload.name.as_str() {
        "" => "world",
        name => name,
    };
    Ok(Response {
        message: format!("hello, {name}"),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    #[tokio::test]
    async fn greets_by_name_or_the_world() {
        let event = |name: &str| {
            LambdaEvent::new(
                Request {
                    name: name.to_string(),
                },
                Context::default(),
            )
        };
        assert_eq!(
            handler(event("Ferris")).await.unwrap().message,
            "hello, Ferris"
        );
        assert_eq!(handler(event("")).await.unwrap().message, "hello, world");
    }
}
