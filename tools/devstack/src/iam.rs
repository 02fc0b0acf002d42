//! IAM on the local stack (scripts/local_iam/enforce.py, inside moto_server): each role of
//! the template is created in moto's IAM with its policies, each function and ECS task runs
//! with credentials from sts:AssumeRole of its own role, and every request signed with them
//! is authorised against those policies — here too, for the APIs the devstack serves itself.

use crate::moto::call;
use anyhow::{Context as _, Result};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Uri};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Credentials of one role session, as Lambda and ECS hand them to their code.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct RoleSession {
    pub role_arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl RoleSession {
    /// The session as SDK credentials (for a client that acts as the role).
    pub fn credentials(&self) -> aws_sdk_s3::config::Credentials {
        aws_sdk_s3::config::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()).filter(|token| !token.is_empty()),
            None,
            "local-role-session",
        )
    }

    /// The variables the SDK's default credentials chain reads.
    pub fn environment(&self) -> BTreeMap<String, String> {
        [
            ("AWS_ACCESS_KEY_ID", &self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_SESSION_TOKEN", &self.session_token),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// Creates `name` in moto's IAM with its inline `policies` (name → document) and attached
/// `managed` policy ARNs (moto checks each document as IAM does), then assumes it as
/// `session`.
pub async fn create_role(
    moto: &str,
    name: &str,
    session: &str,
    policies: &BTreeMap<String, Value>,
    managed: &[String],
) -> Result<RoleSession> {
    let role = json!({"name": name, "session": session, "policies": policies, "managed": managed});
    let body = provision_role(moto, &role)
        .await
        .with_context(|| format!("creating role {name}"))?;
    Ok(serde_json::from_slice(&body)?)
}

/// The local IAM's provisioning call: the role as `role` describes it, and a session of it.
async fn provision_role(moto: &str, role: &Value) -> Result<Bytes> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{moto}/_landfall/iam/roles"))
        .body(Body::from(serde_json::to_vec(role)?))?;
    call(request).await
}

/// Deletes the statement `sid` from every inline policy of the role `name` (a test's
/// mutation of the template).
pub async fn revoke(moto: &str, name: &str, session: &str, sid: &str) -> Result<()> {
    let role =
        json!({"name": name, "session": session, "policies": {}, "managed": [], "revoke": [sid]});
    provision_role(moto, &role)
        .await
        .with_context(|| format!("revoking {sid} of {name}"))?;
    Ok(())
}

/// Asks the local stack's IAM whether the request the devstack received (one of its own
/// APIs: Invoke, ECS, Redshift Data) is allowed: `Some(why)` when it is denied.
/// `passes_roles`: the roles the call hands to a service (RunTask's task and execution
/// roles), each an iam:PassRole of the caller.
pub async fn authorize(
    moto: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    passes_roles: &[String],
) -> Result<Option<String>> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("{moto}/_landfall/iam/authorize"))
        .header("x-landfall-original-method", "POST")
        .header("x-landfall-original-uri", uri.to_string())
        .header("x-landfall-passes-roles", passes_roles.join(","));
    for name in ["authorization", "x-amz-target", "content-type"] {
        if let Some(value) = headers.get(name) {
            let name = if name == "content-type" {
                "x-landfall-original-content-type"
            } else {
                name
            };
            request = request.header(name, value);
        }
    }
    let answer = call(request.body(Body::from(body.clone()))?).await?;
    let answer: Value = serde_json::from_slice(&answer)?;
    Ok(answer["denied"].as_str().map(str::to_owned))
}

/// Every denial the local stack's IAM recorded since moto started (`take`: and forget them).
pub async fn denials(moto: &str, take: bool) -> Result<Vec<String>> {
    let request = Request::builder()
        .method(if take { Method::DELETE } else { Method::GET })
        .uri(format!("{moto}/_landfall/iam/denials"))
        .body(Body::empty())?;
    Ok(serde_json::from_slice(&call(request).await?)?)
}
