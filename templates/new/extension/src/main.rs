//! `{{name}}`: an AWS Lambda extension. Lambda starts it from the layer's `extensions/`
//! directory, before the function; it then hears of each invocation and of the shutdown, and
//! writes a line about each to the function's log.

use lambda_extension::{Error, LambdaEvent, NextEvent, service_fn};

/// What the extension says about an event.
fn describe(event: &NextEvent) -> String {
    match event {
        NextEvent::Invoke(invoke) => format!("{{name}}: invocation {}", invoke.request_id),
        NextEvent::Shutdown(shutdown) => {
            format!("{{name}}: shutdown ({})", shutdown.shutdown_reason)
        }
    }
}

async fn on_event(event: LambdaEvent) -> Result<(), Error> {
    println!("{}", describe(&event.next));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_extension::run(service_fn(on_event)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_invocations_and_shutdowns() {
        let invoke: NextEvent = serde_json::from_str(
            r#"{"eventType": "INVOKE", "deadlineMs": 1700000000000, "requestId": "req-1",
                "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}"#,
        )
        .unwrap();
        assert_eq!(describe(&invoke), "{{name}}: invocation req-1");
        let shutdown: NextEvent = serde_json::from_str(
            r#"{"eventType": "SHUTDOWN", "deadlineMs": 1700000000000, "shutdownReason": "SPINDOWN"}"#,
        )
        .unwrap();
        assert_eq!(describe(&shutdown), "{{name}}: shutdown (SPINDOWN)");
    }
}
