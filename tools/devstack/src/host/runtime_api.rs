//! The Lambda Runtime API each function instance polls: its next invocation, and its answer,
//! its error or its failed start.

use super::*;

pub(super) async fn next_invocation(State(state): State<Arc<RuntimeState>>) -> Response {
    state.first_poll.get_or_init(Instant::now);
    let Some(pending) = state.next.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", pending.id);
    set(
        "lambda-runtime-deadline-ms",
        pending.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, pending.payload).into_response()
}

pub(super) async fn invocation_response(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if let Some(tx) = state
        .waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&id)
    {
        let _ = tx.send(Ok(body));
    }
    StatusCode::ACCEPTED
}

pub(super) async fn invocation_error(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled")
        .to_owned();
    if let Some(tx) = state
        .waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&id)
    {
        let _ = tx.send(Err((kind, body)));
    }
    StatusCode::ACCEPTED
}

pub(super) async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    *state
        .init_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
