//! Lambda's Invoke API as `serve` answers it beside the HTTP front: `POST
//! /2015-03-31/functions/NAME/invocations`, what `aws lambda invoke --endpoint-url`, the SDKs and
//! `cargo lambda invoke` send. Reading a request (or refusing it as Lambda does) and writing the
//! answer are pure functions here; `serve` runs the invocation between them.

use base64::Engine as _;
use serde_json::json;

use super::http::{HttpRequest, HttpResponse, header};
use super::record::Outcome;
use crate::lambda::{
    EVENT_STREAM_CONTENT_TYPE, INVOKE_API_PREFIX, INVOKE_API_SUFFIX, INVOKE_STREAM_API_PREFIX,
    INVOKE_STREAM_API_SUFFIX, LATEST_VERSION, LOG_RESULT_BYTES, MAX_CLIENT_CONTEXT_BYTES,
    header as runtime_header, invoke_header,
};

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// An Invoke API request that Lambda would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeCall {
    pub invocation_type: InvocationType,
    /// `X-Amz-Log-Type: Tail`.
    pub tail: bool,
    pub payload: Vec<u8>,
    pub caller: Caller,
    /// InvokeWithResponseStream: answered with an event stream as the function streams.
    pub streaming: bool,
}

/// What an invoke tells of its caller, which the runtime gets with the event: the client's
/// context and the caller's Cognito identity, each compact JSON (a header's value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

impl Caller {
    /// The client context given as JSON text (`invoke --client-context`), checked as the
    /// Invoke API checks it: a JSON object, at most its limit once base64.
    pub fn with_client_context(json: &str) -> Result<Caller, String> {
        let context = compact_object(json.as_bytes())?;
        let encoded = base64::encoded_len(context.len(), true).unwrap_or(usize::MAX);
        if encoded > MAX_CLIENT_CONTEXT_BYTES {
            return Err(format!(
                "it is {encoded} bytes in base64, and Lambda takes at most \
                 {MAX_CLIENT_CONTEXT_BYTES}"
            ));
        }
        Ok(Caller {
            client_context: Some(context),
            cognito_identity: None,
        })
    }

    /// The headers of the runtime's `next` that carry it.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let context = self
            .client_context
            .iter()
            .map(|c| (runtime_header::CLIENT_CONTEXT, c));
        let identity =
            (self.cognito_identity.iter()).map(|i| (runtime_header::COGNITO_IDENTITY, i));
        context
            .chain(identity)
            .map(|(h, v)| (h, v.clone()))
            .collect()
    }
}

/// `json` as one line, when it is a JSON object.
fn compact_object(json: &[u8]) -> Result<String, String> {
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        Ok(_) => Err("it is JSON but not an object".to_owned()),
        Err(error) => Err(format!("it is not JSON: {error}")),
    }
}

/// The caller an Invoke API request tells of: `X-Amz-Client-Context` (base64, as the SDKs send
/// it), or the JSON headers `cargo lambda invoke` sends its emulator.
fn caller_of(request: &HttpRequest) -> Result<Caller, HttpResponse> {
    let invalid = |what: &str, why: String| {
        refusal(
            400,
            "InvalidRequestContentException",
            &format!("Could not read the {what}: {why}"),
        )
    };
    let client_context = match header(request, invoke_header::CLIENT_CONTEXT) {
        Some(encoded) => {
            if encoded.len() > MAX_CLIENT_CONTEXT_BYTES {
                return Err(invalid(
                    "client context",
                    format!(
                        "it is {} bytes, and Lambda takes at most {MAX_CLIENT_CONTEXT_BYTES}",
                        encoded.len()
                    ),
                ));
            }
            let json = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| invalid("client context", format!("it is not base64: {e}")))?;
            Some(compact_object(&json).map_err(|why| invalid("client context", why))?)
        }
        None => header(request, runtime_header::CLIENT_CONTEXT)
            .map(|json| compact_object(json.as_bytes()))
            .transpose()
            .map_err(|why| invalid("client context", why))?,
    };
    let cognito_identity = header(request, runtime_header::COGNITO_IDENTITY)
        .map(|json| compact_object(json.as_bytes()))
        .transpose()
        .map_err(|why| invalid("Cognito identity", why))?;
    Ok(Caller {
        client_context,
        cognito_identity,
    })
}

/// What `cargo lambda invoke` names the function when it is given none: the package's one
/// function, which `serve` is.
const CARGO_LAMBDA_DEFAULT: &str = "_";

/// Whether the request is for the Invoke API (or InvokeWithResponseStream) rather than the
/// function's HTTP front.
pub fn is_invoke_api(request: &HttpRequest) -> bool {
    request.path.starts_with(INVOKE_API_PREFIX)
        || request.path.starts_with(INVOKE_STREAM_API_PREFIX)
}

/// The function the request names, its qualifier, and whether it is InvokeWithResponseStream;
/// `None` when the path is neither.
fn named(path: &str) -> Option<(String, Option<String>, bool)> {
    let within = |prefix: &str, suffix: &str| path.strip_prefix(prefix)?.strip_suffix(suffix);
    let (name, streaming) = match within(INVOKE_API_PREFIX, INVOKE_API_SUFFIX) {
        Some(name) => (name, false),
        None => (
            within(INVOKE_STREAM_API_PREFIX, INVOKE_STREAM_API_SUFFIX)?,
            true,
        ),
    };
    let name = super::http::percent_decode(name);
    // `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]`, `ACCOUNT:function:NAME[:Q]`, `NAME[:Q]`.
    let rest = match name.split_once(":function:") {
        Some((_, rest)) => rest.to_owned(),
        None => name,
    };
    Some(match rest.split_once(':') {
        Some((name, qualifier)) => (name.to_owned(), Some(qualifier.to_owned()), streaming),
        None => (rest, None, streaming),
    })
}

/// Reads an Invoke API request for the function `function` of `region`: the call, or the
/// answer Lambda refuses it with.
pub fn read(
    request: &HttpRequest,
    function: &str,
    region: &str,
) -> Result<InvokeCall, HttpResponse> {
    let Some((name, qualifier, streaming)) =
        named(&request.path).filter(|_| request.method == "POST")
    else {
        return Err(refusal(
            404,
            "UnknownOperationException",
            &format!(
                "Unknown operation: the Invoke API is POST \
                 {INVOKE_API_PREFIX}NAME{INVOKE_API_SUFFIX}, InvokeWithResponseStream POST \
                 {INVOKE_STREAM_API_PREFIX}NAME{INVOKE_STREAM_API_SUFFIX}"
            ),
        ));
    };
    let qualifier = qualifier.or_else(|| query_value(&request.query, "Qualifier"));
    let known = name == function || name == CARGO_LAMBDA_DEFAULT;
    if !known || qualifier.as_deref().is_some_and(|q| q != LATEST_VERSION) {
        let arn = super::ids::function_arn(region, &name);
        let arn = match qualifier {
            Some(qualifier) => format!("{arn}:{qualifier}"),
            None => arn,
        };
        return Err(refusal(
            404,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        ));
    }
    let invocation_type = match header(request, invoke_header::INVOCATION_TYPE) {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") if !streaming => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) if streaming => {
            return Err(not_one_of(
                other,
                "invocationType",
                "RequestResponse, DryRun",
            ));
        }
        Some(other) => {
            return Err(not_one_of(
                other,
                "invocationType",
                "Event, RequestResponse, DryRun",
            ));
        }
    };
    let tail = match header(request, invoke_header::LOG_TYPE) {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => return Err(not_one_of(other, "logType", "None, Tail")),
    };
    // No payload is an empty JSON object, as the service passes it on.
    let payload = if request.body.is_empty() {
        b"{}".to_vec()
    } else {
        request.body.clone()
    };
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return Err(refusal(
            400,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {error}"),
        ));
    }
    let caller = caller_of(request)?;
    Ok(InvokeCall {
        invocation_type,
        tail,
        payload,
        caller,
        streaming,
    })
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| super::http::percent_decode(v))
}

/// Lambda's validation error for a header outside its set.
fn not_one_of(value: &str, field: &str, set: &str) -> HttpResponse {
    refusal(
        400,
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
             constraint: Member must satisfy enum value set: [{set}]"
        ),
    )
}

/// A refused request: the error's type in `X-Amzn-ErrorType`, and Lambda's JSON body.
pub fn refusal(status: u16, error_type: &str, message: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            (invoke_header::ERROR_TYPE.to_owned(), error_type.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: json!({ "Type": "User", "message": message })
            .to_string()
            .into_bytes(),
    }
}

/// `Event`'s answer, before the invocation runs (and so before it has a request id here).
pub fn accepted() -> HttpResponse {
    HttpResponse {
        status: 202,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// `DryRun`'s answer: the request would be allowed.
pub fn dry_run() -> HttpResponse {
    HttpResponse {
        status: 204,
        ..accepted()
    }
}

/// A `RequestResponse` invocation's answer: 200 and the payload, the error's payload with
/// `X-Amz-Function-Error: Unhandled` when it failed; with `log`, its last 4 KB in
/// `X-Amz-Log-Result`. A streamed response was buffered into `streamed` (the Invoke API does
/// not stream).
pub fn answer(
    request_id: &str,
    outcome: &Outcome,
    streamed: &[u8],
    log: Option<&[u8]>,
) -> HttpResponse {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            invoke_header::EXECUTED_VERSION.to_owned(),
            LATEST_VERSION.to_owned(),
        ),
        (invoke_header::REQUEST_ID.to_owned(), request_id.to_owned()),
    ];
    let body = match outcome {
        Outcome::Response(payload) => payload.clone(),
        Outcome::Streamed(_) => streamed.to_vec(),
        Outcome::Failed(failure) => {
            headers.push((
                invoke_header::FUNCTION_ERROR.to_owned(),
                "Unhandled".to_owned(),
            ));
            failure.payload.clone()
        }
    };
    if let Some(log) = log {
        let tail = &log[log.len().saturating_sub(LOG_RESULT_BYTES)..];
        headers.push((
            invoke_header::LOG_RESULT.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(tail),
        ));
    }
    HttpResponse {
        status: 200,
        headers,
        body,
    }
}

/// InvokeWithResponseStream's answer before its events: 200, the event stream's type and the
/// version that runs.
pub fn stream_head() -> Vec<(String, String)> {
    vec![
        (
            "content-type".to_owned(),
            EVENT_STREAM_CONTENT_TYPE.to_owned(),
        ),
        (
            invoke_header::EXECUTED_VERSION.to_owned(),
            LATEST_VERSION.to_owned(),
        ),
    ]
}

/// A `PayloadChunk` event: a piece of the function's response, as it streamed it.
pub fn payload_chunk(data: &[u8]) -> Vec<u8> {
    event_message("PayloadChunk", "application/octet-stream", data)
}

/// The `InvokeComplete` event that ends the stream: the error's type and message when the
/// invocation failed (a timeout, a crash, a stream cut at the limit, the handler's error), and
/// with `X-Amz-Log-Type: Tail` the end of the log.
pub fn invoke_complete(failed: Option<(&str, &str)>, log: Option<&[u8]>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    if let Some((code, details)) = failed {
        body.insert("ErrorCode".into(), code.into());
        body.insert("ErrorDetails".into(), details.into());
    }
    if let Some(log) = log {
        let tail = &log[log.len().saturating_sub(LOG_RESULT_BYTES)..];
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        body.insert("LogResult".into(), encoded.into());
    }
    let body = serde_json::Value::Object(body).to_string();
    event_message("InvokeComplete", "application/json", body.as_bytes())
}

/// One message of the AWS event stream encoding: the total and headers lengths and their
/// CRC32, the headers (each a name, type 7 for a string, and the value), the payload, and the
/// CRC32 of all before it.
fn event_message(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", content_type),
        (":message-type", "event"),
    ] {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut message = Vec::with_capacity(total);
    message.extend_from_slice(&(total as u32).to_be_bytes());
    message.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&message);
    message.extend_from_slice(&prelude_crc.to_be_bytes());
    message.extend_from_slice(&headers);
    message.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&message);
    message.extend_from_slice(&message_crc.to_be_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoke::failure::Failure;

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    fn read_one(
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<InvokeCall, HttpResponse> {
        read(&request("POST", path, headers, body), "orders", "eu-west-1")
    }

    fn refused(result: Result<InvokeCall, HttpResponse>) -> (u16, String, String) {
        let response = result.unwrap_err();
        let error_type = response.headers[0].1.clone();
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        (
            response.status,
            error_type,
            body["message"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn names_arns_and_cargo_lambdas_placeholder_reach_the_function() {
        for path in [
            "/2015-03-31/functions/orders/invocations",
            "/2015-03-31/functions/_/invocations",
            "/2015-03-31/functions/orders:$LATEST/invocations",
            "/2015-03-31/functions/orders/invocations?Qualifier=%24LATEST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders/invocations",
            "/2015-03-31/functions/123456789012:function:orders/invocations",
        ] {
            let call =
                read_one(path, &[], br#"{"a":1}"#).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            assert_eq!(call.invocation_type, InvocationType::RequestResponse);
            assert!(!call.tail);
            assert_eq!(call.payload, br#"{"a":1}"#);
        }
    }

    #[test]
    fn other_functions_and_bad_input_are_refused_as_lambda_refuses_them() {
        assert_eq!(
            refused(read_one(
                "/2015-03-31/functions/other/invocations",
                &[],
                b"{}"
            )),
            (
                404,
                "ResourceNotFoundException".to_owned(),
                "Function not found: arn:aws:lambda:eu-west-1:123456789012:function:other"
                    .to_owned()
            )
        );
        assert_eq!(
            refused(read_one(
                "/2015-03-31/functions/orders/invocations?Qualifier=live",
                &[],
                b"{}"
            ))
            .2,
            "Function not found: arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
        );
        let (status, error_type, message) = refused(read_one(
            "/2015-03-31/functions/orders/invocations",
            &[],
            b"{nope",
        ));
        assert_eq!(
            (status, error_type.as_str()),
            (400, "InvalidRequestContentException")
        );
        assert!(
            message.starts_with("Could not parse request body into json"),
            "{message}"
        );
        let (status, error_type, message) = refused(read_one(
            "/2015-03-31/functions/orders/invocations",
            &[("X-Amz-Invocation-Type", "Later")],
            b"{}",
        ));
        assert_eq!((status, error_type.as_str()), (400, "ValidationException"));
        assert!(
            message.contains("Value 'Later' at 'invocationType'"),
            "{message}"
        );
        let get = read(
            &request("GET", "/2015-03-31/functions/orders/invocations", &[], b""),
            "orders",
            "eu-west-1",
        );
        assert_eq!(refused(get).0, 404);
    }

    #[test]
    fn headers_choose_the_type_and_the_log_and_no_payload_is_an_empty_object() {
        let call = read_one(
            "/2015-03-31/functions/orders/invocations",
            &[
                ("x-amz-invocation-type", "Event"),
                ("X-Amz-Log-Type", "Tail"),
            ],
            b"",
        )
        .unwrap();
        assert_eq!(call.invocation_type, InvocationType::Event);
        assert!(call.tail);
        assert_eq!(call.payload, b"{}");
        assert_eq!(
            read_one(
                "/2015-03-31/functions/orders/invocations",
                &[("X-Amz-Invocation-Type", "DryRun")],
                b"{}"
            )
            .unwrap()
            .invocation_type,
            InvocationType::DryRun
        );
    }

    #[test]
    fn answers_carry_the_payload_the_error_header_and_the_logs_tail() {
        let header = |response: &HttpResponse, name: &str| {
            response
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let ok = answer("id", &Outcome::Response(b"[1]".to_vec()), b"", None);
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"[1]"[..]));
        assert_eq!(
            header(&ok, "X-Amz-Executed-Version").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(header(&ok, "X-Amz-Function-Error"), None);
        let failure = Failure::lambda(
            crate::invoke::failure::FailureKind::Exit,
            "Runtime.ExitError",
            "gone".into(),
        );
        let log = vec![b'x'; 5000];
        let failed = answer("id", &Outcome::Failed(failure.clone()), b"", Some(&log));
        assert_eq!(failed.status, 200);
        assert_eq!(failed.body, failure.payload);
        assert_eq!(
            header(&failed, "X-Amz-Function-Error").as_deref(),
            Some("Unhandled")
        );
        let tail = header(&failed, "X-Amz-Log-Result").unwrap();
        let tail = base64::engine::general_purpose::STANDARD
            .decode(tail)
            .unwrap();
        assert_eq!(tail.len(), 4096);
        let streamed = answer("id", &Outcome::Streamed(3), b"abc", None);
        assert_eq!(streamed.body, b"abc");
        assert_eq!(accepted().status, 202);
        assert_eq!(dry_run().status, 204);
    }

    #[test]
    fn the_client_context_and_identity_reach_the_runtime_as_compact_json() {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode("{\n  \"custom\": {\"tier\": \"gold\"}\n}");
        let call = read_one(
            "/2015-03-31/functions/orders/invocations",
            &[
                ("X-Amz-Client-Context", &encoded),
                (
                    "lambda-runtime-cognito-identity",
                    r#"{"identityId":"id-1","identityPoolId":"pool-1"}"#,
                ),
            ],
            b"{}",
        )
        .unwrap();
        assert_eq!(
            call.caller.headers(),
            [
                (
                    "Lambda-Runtime-Client-Context",
                    r#"{"custom":{"tier":"gold"}}"#.to_owned()
                ),
                (
                    "Lambda-Runtime-Cognito-Identity",
                    r#"{"identityId":"id-1","identityPoolId":"pool-1"}"#.to_owned()
                ),
            ]
        );
        // What `cargo lambda invoke --client-context-file` sends its emulator: JSON, not base64.
        let call = read_one(
            "/2015-03-31/functions/_/invocations",
            &[("lambda-runtime-client-context", r#"{"custom":{"a":"b"}}"#)],
            b"{}",
        )
        .unwrap();
        assert_eq!(
            call.caller.client_context.as_deref(),
            Some(r#"{"custom":{"a":"b"}}"#)
        );
        assert_eq!(call.caller.cognito_identity, None);
        let plain = read_one("/2015-03-31/functions/_/invocations", &[], b"{}").unwrap();
        assert!(plain.caller.headers().is_empty());
    }

    #[test]
    fn a_client_context_lambda_would_not_take_is_refused() {
        use base64::Engine as _;
        let path = "/2015-03-31/functions/orders/invocations";
        let not_base64 = refused(read_one(path, &[("X-Amz-Client-Context", "{}")], b"{}"));
        assert_eq!(not_base64.0, 400);
        assert_eq!(not_base64.1, "InvalidRequestContentException");
        assert!(not_base64.2.contains("not base64"), "{}", not_base64.2);
        let array = base64::engine::general_purpose::STANDARD.encode("[1]");
        let not_object = refused(read_one(path, &[("X-Amz-Client-Context", &array)], b"{}"));
        assert!(not_object.2.contains("not an object"), "{}", not_object.2);
        let long = base64::engine::general_purpose::STANDARD
            .encode(format!(r#"{{"custom":{{"k":"{}"}}}}"#, "x".repeat(3000)));
        let too_long = refused(read_one(path, &[("X-Amz-Client-Context", &long)], b"{}"));
        assert!(too_long.2.contains("at most 3583"), "{}", too_long.2);
        let identity = refused(read_one(
            path,
            &[("lambda-runtime-cognito-identity", "id-1")],
            b"{}",
        ));
        assert!(identity.2.contains("Cognito identity"), "{}", identity.2);

        assert!(Caller::with_client_context(r#"{"custom":{}}"#).is_ok());
        let err = Caller::with_client_context("tier=gold").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        let err =
            Caller::with_client_context(&format!(r#"{{"k":"{}"}}"#, "x".repeat(3000))).unwrap_err();
        assert!(err.contains("at most 3583"), "{err}");
    }

    #[test]
    fn invoke_with_response_stream_is_read_as_a_streaming_call() {
        let path = "/2021-11-15/functions/orders/response-streaming-invocations";
        let call = read_one(path, &[], b"{}").unwrap();
        assert!(call.streaming);
        assert_eq!(call.invocation_type, InvocationType::RequestResponse);
        assert!(
            !read_one("/2015-03-31/functions/orders/invocations", &[], b"{}")
                .unwrap()
                .streaming
        );
        let dry = read_one(path, &[("X-Amz-Invocation-Type", "DryRun")], b"{}").unwrap();
        assert_eq!(dry.invocation_type, InvocationType::DryRun);
        let (status, error_type, message) =
            refused(read_one(path, &[("X-Amz-Invocation-Type", "Event")], b"{}"));
        assert_eq!((status, error_type.as_str()), (400, "ValidationException"));
        assert!(message.contains("[RequestResponse, DryRun]"), "{message}");
    }

    #[test]
    fn event_stream_messages_carry_their_lengths_and_checksums() {
        let message = payload_chunk(b"abc");
        let total = u32::from_be_bytes(message[..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(message[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, message.len());
        let prelude_crc = u32::from_be_bytes(message[8..12].try_into().unwrap());
        assert_eq!(prelude_crc, crc32fast::hash(&message[..8]));
        assert_eq!(&message[12 + headers..total - 4], b"abc");
        let crc = u32::from_be_bytes(message[total - 4..].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&message[..total - 4]));
        let names = String::from_utf8_lossy(&message[12..12 + headers]).into_owned();
        assert!(
            names.contains(":event-type") && names.contains("PayloadChunk"),
            "{names}"
        );

        let complete = invoke_complete(Some(("Sandbox.Timedout", "timed out")), Some(b"log"));
        let headers = u32::from_be_bytes(complete[4..8].try_into().unwrap()) as usize;
        let body: serde_json::Value =
            serde_json::from_slice(&complete[12 + headers..complete.len() - 4]).unwrap();
        assert_eq!(
            body,
            json!({"ErrorCode": "Sandbox.Timedout", "ErrorDetails": "timed out", "LogResult": "bG9n"})
        );
    }
}
