//! `invoke --data-example` (issue 24, item 7): every sample event the tool lists deserializes
//! into its `aws_lambda_events` type, as a function written against those types reads it, and
//! one runs end to end.

use crate::invoke::{assert_exit, echo_zip, invoke, payloads, zip_arg};
use crate::support::{stderr, stdout};

use std::collections::BTreeSet;
use std::path::Path;

use aws_lambda_events::event::{
    alb, apigw, cloudwatch_logs, cognito, dynamodb, eventbridge, kinesis, lambda_function_urls, s3,
    sns, sqs,
};
use serde::de::DeserializeOwned;

/// The sample `name` as the tool embeds it (`src/invoke/examples/NAME.json`), read as `T`.
fn sample<T: DeserializeOwned>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/invoke/examples")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} is not a {}: {e}", std::any::type_name::<T>()))
}

/// Reads the sample `name` as the type of its source and checks a field a handler relies on;
/// `false` for a name this test does not know.
fn reads_as_its_type(name: &str) -> bool {
    match name {
        "apigw-rest" => {
            let e: apigw::ApiGatewayProxyRequest = sample(name);
            assert_eq!(e.path_parameters["id"], "42");
            assert_eq!(e.request_context.stage.as_deref(), Some("Prod"));
        }
        "apigw-http" => {
            let e: apigw::ApiGatewayV2httpRequest = sample(name);
            assert_eq!(e.request_context.http.method, "POST");
            assert!(e.body.is_some());
        }
        "function-url" => {
            let e: lambda_function_urls::LambdaFunctionUrlRequest = sample(name);
            assert_eq!(e.raw_path.as_deref(), Some("/hello"));
        }
        "alb" => {
            let e: alb::AlbTargetGroupRequest = sample(name);
            assert!(e.request_context.elb.target_group_arn.is_some());
        }
        "sqs" => {
            let e: sqs::SqsEvent = sample(name);
            assert_eq!(e.records.len(), 1);
            assert!(e.records[0].body.is_some());
        }
        "sns" => {
            let e: sns::SnsEvent = sample(name);
            assert_eq!(e.records[0].sns.sns_message_type, "Notification");
        }
        "s3" => {
            let e: s3::S3Event = sample(name);
            assert_eq!(
                e.records[0].s3.object.key.as_deref(),
                Some("invoices/2026/12/invoice-42.pdf")
            );
        }
        "eventbridge" => {
            let e: eventbridge::EventBridgeEvent = sample(name);
            assert_eq!(e.detail["orderId"], 42);
        }
        "schedule" => {
            let e: eventbridge::EventBridgeEvent = sample(name);
            assert_eq!(e.detail_type, "Scheduled Event");
            assert_eq!(e.source, "aws.events");
        }
        "dynamodb" => {
            let e: dynamodb::Event = sample(name);
            assert_eq!(e.records.len(), 2);
            assert!(e.records[1].change.old_image.get("Customer").is_some());
        }
        "kinesis" => {
            let e: kinesis::KinesisEvent = sample(name);
            let data: serde_json::Value =
                serde_json::from_slice(&e.records[0].kinesis.data.0).unwrap();
            assert_eq!(data["orderId"], 42);
        }
        "cloudwatch-logs" => {
            // The type unzips and decodes `awslogs.data` as it reads it.
            let e: cloudwatch_logs::LogsEvent = sample(name);
            assert_eq!(e.aws_logs.data.log_events.len(), 2);
        }
        "cognito-pre-signup" => {
            let e: cognito::CognitoEventUserPoolsPreSignup = sample(name);
            assert_eq!(
                e.request.user_attributes["email"].as_str(),
                "ferris@example.com"
            );
        }
        _ => return false,
    }
    true
}

#[test]
fn every_listed_sample_reads_as_its_aws_lambda_events_type() {
    let output = invoke(&["--data-example", "list"]);
    assert_exit(&output, 0);
    let listed: Vec<String> = stdout(&output)
        .lines()
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert!(listed.len() >= 13, "{listed:?}");
    for name in &listed {
        assert!(
            reads_as_its_type(name),
            "`{name}` is listed but has no type in this test"
        );
    }
    // Each line describes its sample.
    assert!(stdout(&output).lines().all(|line| line.len() > 30));
    // Every embedded file is listed.
    let files: BTreeSet<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/invoke/examples"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .map(|file| file.trim_end_matches(".json").to_owned())
            .collect();
    assert_eq!(files, listed.iter().cloned().collect::<BTreeSet<_>>());
}

#[test]
fn a_sample_event_runs_end_to_end_and_an_unknown_one_is_named() {
    let output = invoke(&[zip_arg(echo_zip()), "--data-example", "sqs"]);
    assert_exit(&output, 0);
    // echo answers any object; the SQS batch has no `name`.
    assert_eq!(
        payloads(&output),
        [serde_json::json!({"message": "hello, "})]
    );

    let output = invoke(&[zip_arg(echo_zip()), "--data-example", "kafka"]);
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains("error: `--data-example kafka` is not a sample event of this tool")
            && err.contains("help: the samples are: apigw-rest, apigw-http,"),
        "{err}"
    );
}
