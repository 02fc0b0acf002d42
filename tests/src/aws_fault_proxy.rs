//! An HTTP proxy in front of moto that, while a fault is on, answers some requests itself
//! the way an overloaded AWS does — 500 `InternalError`, or throttling (S3's 503
//! `SlowDown`, the JSON services' 400 `ThrottlingException`) — and passes the rest through.
//! A refused request never reaches moto, so it had no effect: what the function must do is
//! retry it (the SDK's retries, then the queue's redelivery), never give up on the file.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What the proxy does to the requests it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFault {
    /// 500 InternalError.
    ServerError,
    /// 503 SlowDown (S3, REST services) or 400 ThrottlingException (JSON services).
    Throttling,
}

pub struct AwsFaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Body>,
    /// 0: pass everything; else 1 + the `AwsFault` as a number.
    mode: AtomicU8,
    /// While a fault is on, one request in `every` is refused.
    every: AtomicU64,
    seen: AtomicU64,
    refused: AtomicU64,
}

impl AwsFaultProxy {
    /// Listens on a free local port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<AwsFaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            mode: AtomicU8::new(0),
            every: AtomicU64::new(1),
            seen: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(AwsFaultProxy {
            endpoint,
            shared,
            task,
        })
    }

    /// From now on, one request in `every` gets `fault` instead of moto's answer.
    pub fn inject(&self, fault: AwsFault, every: u64) {
        self.shared.every.store(every.max(1), Ordering::SeqCst);
        let mode = match fault {
            AwsFault::ServerError => 1,
            AwsFault::Throttling => 2,
        };
        self.shared.mode.store(mode, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.shared.mode.store(0, Ordering::SeqCst);
    }

    /// How many requests were refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for AwsFaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, mut request: Request) -> Response {
    let mode = shared.mode.load(Ordering::SeqCst);
    let n = shared.seen.fetch_add(1, Ordering::SeqCst);
    if mode != 0 && n % shared.every.load(Ordering::SeqCst) == 0 {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        let json = request.headers().contains_key("x-amz-target");
        return refusal(
            if mode == 1 {
                AwsFault::ServerError
            } else {
                AwsFault::Throttling
            },
            json,
        );
    }
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    match format!("{}{path}", shared.upstream).parse::<Uri>() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    }
    // moto answers for the host it is asked as; keep what the client asked for.
    match shared.client.request(request).await {
        Ok(response) => response.map(Body::new),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// The error as the service would word it: JSON protocols (`X-Amz-Target`) read `__type`,
/// the REST/XML ones an `<Error><Code>`.
fn refusal(fault: AwsFault, json: bool) -> Response {
    let (status, code, message) = match (fault, json) {
        (AwsFault::ServerError, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (AwsFault::Throttling, true) => (
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        (AwsFault::Throttling, false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        ),
    };
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            serde_json::json!({ "__type": code, "message": message }).to_string(),
        )
    } else {
        (
            "application/xml",
            format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
        )
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("x-amzn-errortype", HeaderValue::from_static(code));
    headers.insert("connection", HeaderValue::from_static("close"));
    response
}
