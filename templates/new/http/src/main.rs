//! `{{name}}`: an HTTP function on AWS Lambda, behind a Function URL (or an API Gateway HTTP or
//! REST API: `lambda_http` reads each of their events into the same `Request`).
//!
//! - `GET /?name=Ferris` answers `{"message": "hello, Ferris"}` and remembers the name in a
//!   cookie, so the next `GET /` greets Ferris again;
//! - `POST /echo` answers the request's body, with its `Content-Type`: JSON as JSON, bytes as
//!   bytes (base64 on the wire, as Lambda carries binary bodies);
//! - anything else is a 404.

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::json;

/// The cookie that remembers who was greeted.
const COOKIE: &str = "name";

async fn handler(request: Request) -> Result<Response<Body>, Error> {
    Ok(route(&request)?)
}

fn route(request: &Request) -> Result<Response<Body>, lambda_http::http::Error> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => greet(request),
        (&Method::POST, "/echo") => echo(request),
        (method, path) => json(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no route for {method} {path}") }),
        ),
    }
}

fn greet(request: &Request) -> Result<Response<Body>, lambda_http::http::Error> {
    let query = request.query_string_parameters();
    let name = query
        .first("name")
        .map(str::to_owned)
        .or_else(|| cookie(request, COOKIE))
        .unwrap_or_else(|| "world".to_owned());
    let mut response = json(StatusCode::OK, json!({ "message": format!("hello, {name}") }))?;
    if query.first("name").is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            format!("{COOKIE}={name}; Path=/; HttpOnly").parse()?,
        );
    }
    Ok(response)
}

fn echo(request: &Request) -> Result<Response<Body>, lambda_http::http::Error> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from_static("application/octet-stream"));
    let body = match request.body() {
        Body::Empty => Body::Empty,
        Body::Text(text) => Body::Text(text.clone()),
        Body::Binary(bytes) => Body::Binary(bytes.clone()),
        _ => Body::Empty,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
}

/// A cookie of the request: `lambda_http` gives them all in one `Cookie` header.
fn cookie(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn json(
    status: StatusCode,
    value: serde_json::Value,
) -> Result<Response<Body>, lambda_http::http::Error> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(value.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http;

    fn request(method: &str, uri: &str, body: Body) -> Request {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .unwrap()
    }

    fn text(response: &Response<Body>) -> String {
        String::from_utf8_lossy(response.body().as_ref()).into_owned()
    }

    #[tokio::test]
    async fn greets_echoes_and_answers_404() {
        let query = [("name".to_owned(), vec!["Ferris".to_owned()])]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>();
        let greet = request("GET", "/", Body::Empty).with_query_string_parameters(query);
        let response = handler(greet).await.unwrap();
        assert_eq!(text(&response), r#"{"message":"hello, Ferris"}"#);
        assert!(response.headers().contains_key(header::SET_COOKIE));

        let mut again = request("GET", "/", Body::Empty);
        again
            .headers_mut()
            .insert(header::COOKIE, "name=Ferris".parse().unwrap());
        assert_eq!(
            text(&handler(again).await.unwrap()),
            r#"{"message":"hello, Ferris"}"#
        );

        let echo = request("POST", "/echo", Body::Binary(vec![0, 255]));
        assert_eq!(
            handler(echo).await.unwrap().body().as_ref(),
            [0u8, 255].as_slice()
        );

        let missing = handler(request("GET", "/nope", Body::Empty)).await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
