//! HTTP requests as the events Lambda sends for a Function URL, an API Gateway HTTP API
//! (payload 2.0) or a REST API (payload 1.0), and the function's answers back as HTTP
//! responses, the way each of those services reads them.
//!
//! Sources: "Invoking Lambda function URLs" (request and response payloads), API Gateway's
//! "Working with AWS Lambda proxy integrations for HTTP APIs" (payload versions 1.0 and 2.0,
//! the response format and its inference) and "Set up Lambda proxy integrations" (REST).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::ids::{ACCOUNT_ID, epoch_millis};

use crate::cli::EventFormatArg;

/// The service in front of a served function, and so the event it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// A Lambda Function URL (payload format 2.0).
    #[default]
    FunctionUrl,
    /// An API Gateway HTTP API, payload format 2.0.
    HttpApi,
    /// An API Gateway REST API, payload format 1.0, stage `Prod` (as `sam local start-api`).
    RestApi,
}

impl EventFormat {
    pub fn describe(self) -> &'static str {
        match self {
            EventFormat::FunctionUrl => "a Function URL",
            EventFormat::HttpApi => "an HTTP API (payload 2.0)",
            EventFormat::RestApi => "a REST API (payload 1.0)",
        }
    }
}

/// `--event-format`: `cli.rs` cannot name this module (it reads `cli`'s flags), so the flag's
/// values are mapped here.
impl From<EventFormatArg> for EventFormat {
    fn from(arg: EventFormatArg) -> EventFormat {
        match arg {
            EventFormatArg::FunctionUrl => EventFormat::FunctionUrl,
            EventFormatArg::HttpApi => EventFormat::HttpApi,
            EventFormatArg::RestApi => EventFormat::RestApi,
        }
    }
}

/// The stage of a REST API's events: SAM's default stage name.
pub const REST_STAGE: &str = "Prod";

/// What the front read of one HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// The query string as sent, without `?`.
    pub query: String,
    /// In the order received, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

/// A decoded HTTP response, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn text(status: u16, content_type: &str, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Content types whose bodies the services pass as text; any other body is base64-encoded.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded", "yaml"]
            .iter()
            .any(|kind| essence.contains(kind))
}

/// A request header's value, names compared case-insensitively.
pub fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The body as the event carries it: text when it is text, else base64.
fn body_field(request: &HttpRequest) -> (Option<String>, bool) {
    if request.body.is_empty() {
        return (None, false);
    }
    match std::str::from_utf8(&request.body) {
        Ok(text) if is_text(header(request, "content-type")) => (Some(text.to_owned()), false),
        _ => (
            Some(base64::engine::general_purpose::STANDARD.encode(&request.body)),
            true,
        ),
    }
}

/// `a=1&a=2&b=3` as name -> values, percent-decoded as API Gateway decodes them.
fn query_values(query: &str) -> BTreeMap<String, Vec<String>> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        values
            .entry(percent_decode(name))
            .or_default()
            .push(percent_decode(value));
    }
    values
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `12/Mar/2020:19:03:58 +0000`, the services' `time` / `requestTime`.
fn clf_time(now: SystemTime) -> String {
    let t = time::OffsetDateTime::from(now);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The event for `request`, in `format`, with `request_id` as the service's request id.
pub fn event(
    format: EventFormat,
    request: &HttpRequest,
    region: &str,
    request_id: &str,
    now: SystemTime,
) -> Vec<u8> {
    let value = match format {
        EventFormat::FunctionUrl | EventFormat::HttpApi => {
            v2_event(format, request, region, request_id, now)
        }
        EventFormat::RestApi => v1_event(request, region, request_id, now),
    };
    value.to_string().into_bytes()
}

fn v2_event(
    format: EventFormat,
    request: &HttpRequest,
    region: &str,
    request_id: &str,
    now: SystemTime,
) -> Value {
    let api_id = "local";
    let domain = match format {
        EventFormat::FunctionUrl => format!("{api_id}.lambda-url.{region}.on.aws"),
        _ => format!("{api_id}.execute-api.{region}.amazonaws.com"),
    };
    // Repeated headers are joined with commas; cookies travel apart, in `cookies`.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let query: Map<String, Value> = query_values(&request.query)
        .into_iter()
        .map(|(name, values)| (name, Value::String(values.join(","))))
        .collect();
    let (body, is_base64) = body_field(request);
    let user_agent = header(request, "user-agent").unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": if format == EventFormat::FunctionUrl { "anonymous" } else { ACCOUNT_ID },
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(now),
            "timeEpoch": epoch_millis(now) as u64,
        },
        "isBase64Encoded": is_base64,
    });
    let object = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), Value::Object(query));
    }
    if let Some(body) = body {
        object.insert("body".into(), Value::String(body));
    }
    event
}

fn v1_event(request: &HttpRequest, region: &str, request_id: &str, now: SystemTime) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut multi_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), value.clone());
        multi_headers
            .entry(name.clone())
            .or_default()
            .push(value.clone());
    }
    let query = query_values(&request.query);
    let (single, multi) = if query.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (
            query
                .iter()
                .map(|(k, v)| (k.clone(), json!(v.last())))
                .collect::<Map<_, _>>()
                .into(),
            json!(query),
        )
    };
    let (body, is_base64) = body_field(request);
    let proxy = request.path.trim_start_matches('/');
    json!({
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": if proxy.is_empty() { Value::Null } else { json!({ "proxy": proxy }) },
        "stageVariables": null,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": format!("local.execute-api.{region}.amazonaws.com"),
            "domainPrefix": "local",
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {
                "sourceIp": request.peer.ip().to_string(),
                "userAgent": header(request, "user-agent"),
            },
            "path": format!("/{REST_STAGE}{}", request.path),
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": clf_time(now),
            "requestTimeEpoch": epoch_millis(now) as u64,
            "resourceId": "local",
            "resourcePath": "/{proxy+}",
            "stage": REST_STAGE,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// What the service answers when the invocation failed (an error, a timeout, a crash).
pub fn failure_response(format: EventFormat) -> HttpResponse {
    match format {
        EventFormat::FunctionUrl => HttpResponse::text(502, "text/plain", "Internal Server Error"),
        EventFormat::HttpApi => HttpResponse::text(
            500,
            "application/json",
            r#"{"message":"Internal Server Error"}"#,
        ),
        EventFormat::RestApi => HttpResponse::text(
            502,
            "application/json",
            r#"{"message": "Internal server error"}"#,
        ),
    }
}

/// The answer to a request over the 6 MB an invocation's payload may be.
pub fn too_large_response(limit: usize) -> HttpResponse {
    HttpResponse::text(
        413,
        "application/json",
        &json!({
            "message": format!(
                "Request must be smaller than {limit} bytes for the InvokeFunction operation"
            )
        })
        .to_string(),
    )
}

/// Reads the function's response payload as `format`'s service reads it. `Err` carries why the
/// service would answer with its failure response instead (the function's mistake, to show).
pub fn response(format: EventFormat, payload: &[u8]) -> Result<HttpResponse, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the response is not JSON ({e})"))?;
    let structured = value
        .as_object()
        .filter(|o| o.contains_key("statusCode"))
        .cloned();
    let Some(object) = structured else {
        // Payload 2.0 infers a 200 with the payload as a JSON body; 1.0 requires statusCode.
        if format == EventFormat::RestApi {
            return Err("a REST API needs `statusCode` in the response".to_owned());
        }
        return Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: match &value {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            },
        });
    };
    let status = object["statusCode"]
        .as_u64()
        .or_else(|| object["statusCode"].as_str().and_then(|s| s.parse().ok()))
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| {
            format!(
                "`statusCode` {} is not an HTTP status",
                object["statusCode"]
            )
        })? as u16;
    let rest = format == EventFormat::RestApi;
    let fields = HeaderFields {
        multi: rest,
        cookies: !rest,
        lists: false,
    };
    let headers = headers_of(&object, fields);
    let text = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let body = if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("`isBase64Encoded` is true but `body` is not base64 ({e})"))?
    } else {
        text.into_bytes()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Which fields of a response give its headers.
#[derive(Clone, Copy)]
struct HeaderFields {
    /// `multiValueHeaders`, merged with `headers` (a name in both takes the multi values, as
    /// API Gateway merges them).
    multi: bool,
    /// `cookies`, each a `set-cookie`.
    cookies: bool,
    /// A list in `headers` is that header repeated (a stream's metadata).
    lists: bool,
}

/// A response's headers, names lower-case.
fn headers_of(object: &serde_json::Map<String, Value>, fields: HeaderFields) -> Headers {
    let mut headers: Headers = Vec::new();
    let scalar = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    if let Some(Value::Object(map)) = object.get("headers") {
        for (name, value) in map {
            let values = match value {
                Value::Array(values) if fields.lists => values.iter().filter_map(scalar).collect(),
                one => scalar(one).into_iter().collect::<Vec<_>>(),
            };
            headers.extend(values.into_iter().map(|v| (name.to_ascii_lowercase(), v)));
        }
    }
    let (multi, cookies) = (fields.multi, fields.cookies);
    if multi && let Some(Value::Object(map)) = object.get("multiValueHeaders") {
        for (name, values) in map {
            let name = name.to_ascii_lowercase();
            if let Value::Array(values) = values {
                headers.retain(|(n, _)| *n != name);
                headers.extend(values.iter().filter_map(scalar).map(|v| (name.clone(), v)));
            }
        }
    }
    if cookies && let Some(Value::Array(cookies)) = object.get("cookies") {
        headers.extend(
            cookies
                .iter()
                .filter_map(Value::as_str)
                .map(|c| ("set-cookie".to_owned(), c.to_owned())),
        );
    }
    headers
}

type Headers = Vec<(String, String)>;

/// The `Content-Type` of a streamed response that starts with metadata: JSON with the status,
/// headers and cookies, then 8 NUL bytes, then the body (lambda_runtime's `StreamResponse`,
/// which lambda_http streams with). A Function URL reads the metadata when the stream has this
/// type, and passes any other stream on as its body.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
pub const METADATA_END: &[u8] = &[0; 8];

/// Where the metadata of a streamed response must end, for `format`'s service. A REST API
/// (response transfer mode `STREAM`) requires it within the first 16 KB of every stream,
/// whatever its type ("Set up a Lambda proxy integration with payload response streaming in API
/// Gateway"); a Function URL reads it only when the stream is [`HTTP_INTEGRATION`], and
/// here, past 64 KB, sends what it has as the body.
pub fn metadata_limit(format: EventFormat) -> usize {
    match format {
        EventFormat::RestApi => 16 * 1024,
        EventFormat::FunctionUrl | EventFormat::HttpApi => 64 * 1024,
    }
}

/// Whether `format`'s service reads a stream of `content_type` as metadata, then the body.
pub fn stream_has_metadata(format: EventFormat, content_type: Option<&str>) -> bool {
    format == EventFormat::RestApi
        || content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(HTTP_INTEGRATION))
        })
}

/// A streamed response's metadata: its status (200 when it has none or a bad one) and
/// headers; a REST API also merges `multiValueHeaders`.
pub fn stream_metadata(format: EventFormat, metadata: &[u8]) -> (u16, Headers) {
    let value: Value = serde_json::from_slice(metadata).unwrap_or_default();
    let status = value["statusCode"]
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .unwrap_or(200) as u16;
    let headers = value
        .as_object()
        .map(|object| {
            let fields = HeaderFields {
                multi: format == EventFormat::RestApi,
                cookies: true,
                lists: true,
            };
            headers_of(object, fields)
        })
        .unwrap_or_default();
    (status, headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn request(method: &str, path: &str, query: &str, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![
                ("user-agent".into(), "curl/8".into()),
                ("accept".into(), "a".into()),
                ("accept".into(), "b".into()),
                ("cookie".into(), "x=1; y=2".into()),
            ],
            body: body.to_vec(),
            peer: "127.0.0.1:5000".parse().unwrap(),
        }
    }

    fn parse(format: EventFormat, request: &HttpRequest) -> Value {
        let now = UNIX_EPOCH + Duration::from_secs(1_583_348_638);
        serde_json::from_slice(&event(format, request, "eu-west-1", "rid", now)).unwrap()
    }

    #[test]
    fn function_url_events_are_payload_2_0() {
        let e = parse(
            EventFormat::FunctionUrl,
            &request("GET", "/p", "a=1&a=2&b=x%20y", b""),
        );
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/p");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["headers"]["accept"], "a,b");
        assert_eq!(e["headers"].get("cookie"), None);
        assert_eq!(e["cookies"], json!(["x=1", "y=2"]));
        assert_eq!(e["requestContext"]["http"]["method"], "GET");
        assert_eq!(e["requestContext"]["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(
            e["requestContext"]["domainName"],
            "local.lambda-url.eu-west-1.on.aws"
        );
        assert_eq!(e["requestContext"]["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e.get("body"), None);
    }

    #[test]
    fn bodies_are_text_or_base64_by_content_type() {
        let mut r = request("POST", "/", "", b"{\"k\":1}");
        r.headers
            .push(("content-type".into(), "application/json".into()));
        let e = parse(EventFormat::HttpApi, &r);
        assert_eq!(e["body"], "{\"k\":1}");
        assert_eq!(e["isBase64Encoded"], false);
        let r = request("POST", "/", "", &[0, 159, 146, 150]);
        let e = parse(EventFormat::HttpApi, &r);
        assert_eq!(e["body"], "AJ+Slg==");
        assert_eq!(e["isBase64Encoded"], true);
    }

    #[test]
    fn rest_events_are_payload_1_0() {
        let e = parse(
            EventFormat::RestApi,
            &request("GET", "/a/b", "q=1&q=2", b""),
        );
        assert_eq!(e["httpMethod"], "GET");
        assert_eq!(e["path"], "/a/b");
        assert_eq!(e["queryStringParameters"], json!({"q": "2"}));
        assert_eq!(
            e["multiValueQueryStringParameters"],
            json!({"q": ["1", "2"]})
        );
        assert_eq!(e["multiValueHeaders"]["accept"], json!(["a", "b"]));
        assert_eq!(e["headers"]["cookie"], "x=1; y=2");
        assert_eq!(e["pathParameters"], json!({"proxy": "a/b"}));
        assert_eq!(e["requestContext"]["stage"], "Prod");
        assert_eq!(e["requestContext"]["path"], "/Prod/a/b");
        assert_eq!(e["body"], Value::Null);
        let e = parse(EventFormat::RestApi, &request("GET", "/", "", b""));
        assert_eq!(e["queryStringParameters"], Value::Null);
    }

    #[test]
    fn structured_responses_become_http_responses() {
        let payload = br#"{"statusCode":201,"headers":{"X-A":"1"},"cookies":["c=1","d=2"],"body":"AP8=","isBase64Encoded":true}"#;
        let r = response(EventFormat::FunctionUrl, payload).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, [0, 255]);
        assert_eq!(
            r.headers,
            [
                ("x-a".to_owned(), "1".to_owned()),
                ("set-cookie".to_owned(), "c=1".to_owned()),
                ("set-cookie".to_owned(), "d=2".to_owned())
            ]
        );
        let v1 = br#"{"statusCode":200,"headers":{"a":"x"},"multiValueHeaders":{"a":["y","z"],"set-cookie":["s=1"]},"body":"hi"}"#;
        let r = response(EventFormat::RestApi, v1).unwrap();
        assert_eq!(
            r.headers,
            [
                ("a".to_owned(), "y".to_owned()),
                ("a".to_owned(), "z".to_owned()),
                ("set-cookie".to_owned(), "s=1".to_owned())
            ]
        );
        assert_eq!(r.body, b"hi");
    }

    #[test]
    fn a_rest_api_reads_every_streams_metadata_a_function_url_only_its_own_type() {
        use EventFormat::*;
        assert!(stream_has_metadata(RestApi, Some("text/plain")));
        assert!(stream_has_metadata(RestApi, None));
        assert!(stream_has_metadata(
            FunctionUrl,
            Some("application/vnd.awslambda.http-integration-response; charset=utf-8")
        ));
        assert!(!stream_has_metadata(FunctionUrl, Some("text/plain")));
        assert_eq!(metadata_limit(RestApi), 16 * 1024);
        let metadata = br#"{"statusCode":201,"headers":{"A":"1","B":["2","3"]},
            "multiValueHeaders":{"a":["x","y"]},"cookies":["c=1"]}"#;
        let (status, headers) = stream_metadata(RestApi, metadata);
        assert_eq!(status, 201);
        let pairs = |list: &[(&str, &str)]| -> Headers {
            list.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            headers,
            pairs(&[
                ("b", "2"),
                ("b", "3"),
                ("a", "x"),
                ("a", "y"),
                ("set-cookie", "c=1")
            ])
        );
        let (_, headers) = stream_metadata(FunctionUrl, metadata);
        assert_eq!(
            headers,
            pairs(&[("a", "1"), ("b", "2"), ("b", "3"), ("set-cookie", "c=1")])
        );
        assert_eq!(stream_metadata(RestApi, b"not json"), (200, Vec::new()));
    }

    #[test]
    fn payload_2_0_infers_the_response_and_1_0_does_not() {
        let r = response(EventFormat::HttpApi, br#"{"message":"hi"}"#).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &br#"{"message":"hi"}"#[..])
        );
        assert!(response(EventFormat::RestApi, br#"{"message":"hi"}"#).is_err());
        assert!(response(EventFormat::FunctionUrl, b"not json").is_err());
        assert!(response(EventFormat::FunctionUrl, br#"{"statusCode":"x"}"#).is_err());
        assert_eq!(failure_response(EventFormat::FunctionUrl).status, 502);
        assert_eq!(failure_response(EventFormat::HttpApi).status, 500);
    }
}
