//! Calls to moto from the devstack itself: its own endpoints (the local IAM's, under
//! `/_landfall/`), and, as the stack's admin, the few operations of CloudFormation and
//! CloudWatch Logs it needs — through their wire protocols rather than their SDK crates,
//! megabytes of generated code that every build would compile for four operations.

use anyhow::{anyhow, Context as _, Result};
use axum::body::{Body, Bytes};
use axum::http::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// One client for every call: the devstack asks moto for each request its APIs serve, so the
/// connections are kept and reused.
fn client() -> &'static Client<HttpConnector, Body> {
    static CLIENT: std::sync::LazyLock<Client<HttpConnector, Body>> =
        std::sync::LazyLock::new(|| Client::builder(TokioExecutor::new()).build_http());
    &CLIENT
}

/// Sends `request`; its body, or an error naming the status and moto's answer.
pub(crate) async fn call(request: Request<Body>) -> Result<Bytes> {
    let uri = request.uri().clone();
    let response = client()
        .request(request)
        .await
        .with_context(|| format!("calling {uri}"))?;
    let status = response.status();
    let body = axum::body::to_bytes(Body::new(response.into_body()), 16 << 20).await?;
    if !status.is_success() {
        return Err(anyhow!(
            "{uri} answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

/// An admin request to `service`: moto reads the region and the service from the credential
/// scope and checks no signature; the local IAM lets the admin key through.
fn admin(endpoint: &str, region: &str, service: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(format!("{}/", endpoint.trim_end_matches('/')))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
}

/// A JSON-protocol operation, e.g. CloudWatch Logs' `Logs_20140328.PutLogEvents`.
pub async fn json_call(
    endpoint: &str,
    region: &str,
    service: &str,
    target: &str,
    body: &Value,
) -> Result<Value> {
    let request = admin(endpoint, region, service)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(serde_json::to_vec(body)?))?;
    let answer = call(request).await.with_context(|| target.to_owned())?;
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// A Query-protocol operation, e.g. CloudFormation's `CreateStack`; the answer's XML.
pub async fn query_call(
    endpoint: &str,
    region: &str,
    service: &str,
    parameters: &[(&str, &str)],
) -> Result<String> {
    let form: String = parameters
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let request = admin(endpoint, region, service)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))?;
    let action = parameters
        .iter()
        .find(|(k, _)| *k == "Action")
        .map_or("", |(_, v)| v);
    let answer = call(request).await.with_context(|| action.to_owned())?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
