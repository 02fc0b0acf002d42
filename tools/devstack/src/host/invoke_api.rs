//! The AWS APIs served over the host, each request checked by the local IAM first: Lambda's
//! Invoke (a function error is HTTP 200 with `X-Amz-Function-Error`, as in AWS), and ECS's
//! and the Redshift Data API's JSON protocols.

use super::*;

/// Endpoint variables for the services the host serves itself at `address`: the Lambda
/// Invoke API, ECS and the Redshift Data API (`serve_invoke_api`).
pub fn served_endpoints(address: impl std::fmt::Display) -> BTreeMap<String, String> {
    [
        "AWS_ENDPOINT_URL_LAMBDA",
        "AWS_ENDPOINT_URL_ECS",
        "AWS_ENDPOINT_URL_REDSHIFT_DATA",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), format!("http://{address}")))
    .collect()
}

/// The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), and the ECS
/// task API and Redshift Data API (`POST /` with `X-Amz-Target`) over the host, so the
/// SDK's clients work against the local stack as against AWS.
pub async fn serve_invoke_api(host: Host, listener: TcpListener) -> Result<()> {
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
        .route("/", post(json_api))
        .with_state(host);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The local IAM's decision on a request to one of the APIs served here (its caller's
/// role must allow it, as in AWS): `Some(response)` refusing it.
async fn refused(
    host: &Host,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    passes_roles: &[String],
) -> Option<Response> {
    let moto = host.inner.base_env.get("AWS_ENDPOINT_URL")?;
    let denied = match crate::iam::authorize(moto, uri, headers, body, passes_roles).await {
        Ok(denied) => denied?,
        Err(err) => format!("the local IAM could not decide: {err:#}"),
    };
    tracing::warn!(denied, "refused");
    Some(
        (
            StatusCode::FORBIDDEN,
            [
                ("x-amzn-errortype", "AccessDeniedException"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            serde_json::json!({ "__type": "AccessDeniedException", "message": denied }).to_string(),
        )
            .into_response(),
    )
}

async fn invoke_api(
    State(host): State<Host>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refused(&host, &uri, &headers, &body, &[]).await {
        return refusal;
    }
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    if invocation_type == "Event" {
        let host = host.clone();
        tokio::spawn(async move {
            if let Err(err) = host.invoke(&name, body).await {
                tracing::error!(function = name, error = %err, "async invocation failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    match host.invoke(&name, body).await {
        Ok(invoked) => {
            let mut response = (StatusCode::OK, invoked.payload).into_response();
            response.headers_mut().insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            if invoked.function_error.is_some() {
                response.headers_mut().insert(
                    "x-amz-function-error",
                    HeaderValue::from_static("Unhandled"),
                );
            }
            response
        }
        Err(err) => (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            serde_json::json!({ "Type": "User", "message": err.to_string() }).to_string(),
        )
            .into_response(),
    }
}

async fn json_api(State(host): State<Host>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    host.record(&target, &body);
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    // RunTask passes the definition's roles to ECS (iam:PassRole, with the caller's role).
    let passes_roles = request["taskDefinition"]
        .as_str()
        .and_then(|requested| host.inner.tasks.definition(requested))
        .map(|definition| definition.passes_roles.clone())
        .unwrap_or_default();
    if let Some(refusal) = refused(&host, &uri, &headers, &body, &passes_roles).await {
        return refusal;
    }
    let answer = if target.starts_with("RedshiftData.") {
        match &host.inner.redshift {
            Some(api) => api.call(&target, &request).await.map_err(|e| ApiError {
                kind: e.kind,
                message: e.message,
            }),
            None => Err(ApiError {
                kind: "ValidationException",
                message: "this local stack serves no Redshift Data API (no database given)".into(),
            }),
        }
    } else {
        host.inner.tasks.call(&target, &request).await
    };
    let (status, answer) = match answer {
        Ok(answer) => (StatusCode::OK, answer),
        Err(err) => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "__type": err.kind, "message": err.message }),
        ),
    };
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}
