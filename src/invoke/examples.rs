//! `invoke --data-example NAME`: a sample event of each common source, in the shape AWS
//! documents for it (the Lambda developer guide's "Using AWS Lambda with ..." pages), embedded
//! so that it works offline. Each deserializes into its `aws_lambda_events` type
//! (`tests/it/examples.rs`), so a function written against those types can be tried at once.

/// One sample event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    pub name: &'static str,
    /// One line for `--data-example list`.
    pub description: &'static str,
    pub json: &'static str,
}

/// `list` names no event: it prints these.
pub const LIST: &str = "list";

macro_rules! example {
    ($name:literal, $description:literal) => {
        Example {
            name: $name,
            description: $description,
            json: include_str!(concat!("examples/", $name, ".json")),
        }
    };
}

/// Every sample, in the order `list` prints them.
pub const EXAMPLES: &[Example] = &[
    example!(
        "apigw-rest",
        "API Gateway REST API, Lambda proxy integration (payload format 1.0)"
    ),
    example!("apigw-http", "API Gateway HTTP API (payload format 2.0)"),
    example!("function-url", "Lambda function URL request"),
    example!("alb", "Application Load Balancer target group request"),
    example!("sqs", "SQS queue: a batch of one message"),
    example!("sns", "SNS topic notification"),
    example!("s3", "S3 ObjectCreated:Put notification"),
    example!("eventbridge", "EventBridge event from a custom source"),
    example!("schedule", "EventBridge scheduled rule (Scheduled Event)"),
    example!("dynamodb", "DynamoDB stream: an INSERT and a MODIFY record"),
    example!("kinesis", "Kinesis data stream record (base64 data)"),
    example!(
        "cloudwatch-logs",
        "CloudWatch Logs subscription filter (gzipped, base64 data)"
    ),
    example!(
        "cognito-pre-signup",
        "Cognito user pool pre sign-up trigger"
    ),
];

/// The sample called `name`.
pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|example| example.name == name)
}

/// `--data-example list`: one line per sample, its name then its description.
pub fn listing() -> String {
    let width = EXAMPLES.iter().map(|e| e.name.len()).max().unwrap_or(0);
    EXAMPLES
        .iter()
        .map(|e| format!("{:width$}  {}\n", e.name, e.description))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_one_json_event_with_a_unique_name() {
        for (i, example) in EXAMPLES.iter().enumerate() {
            let events = crate::invoke::events::parse(example.json.as_bytes(), example.name)
                .unwrap_or_else(|e| panic!("{}: {e}", example.name));
            assert_eq!(events.len(), 1, "{}", example.name);
            assert_eq!(find(example.name), Some(example));
            assert!(EXAMPLES[..i].iter().all(|e| e.name != example.name));
            assert_ne!(example.name, LIST);
        }
        assert!(listing().lines().count() == EXAMPLES.len());
    }
}
