//! A SAM function: its wiring (events, environment) and its generated execution role.

use super::*;

/// A SAM function.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let (id, properties) = (c.id, c.properties);
    let mut spec = function_spec(id, &c.resource.metadata, properties, c.scope)?;
    // SAM's generated execution role: the Policies' statements, the basic execution
    // role, and the SQS poller's managed policy for an SQS event (SAM's
    // "AWS::Serverless::Function" resource: Policies, and its generated resources).
    let role = default_name(c.target, &format!("{id}Role"));
    let policies = items(properties, "/Policies")
        .enumerate()
        .filter_map(|(n, p)| {
            let statements = p.get("Statement")?;
            Some((
                format!("{id}RolePolicy{n}"),
                json!({"Version": "2012-10-17", "Statement": statements}),
            ))
        })
        .collect();
    let mut managed =
        vec!["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole".to_owned()];
    if !spec.sqs.is_empty() {
        managed.push("arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole".into());
    }
    spec.session = create_role(&c.clients.moto, &role, &spec.binary, &policies, &managed).await?;
    let arn = c.arn("lambda", &format!("function:{}", spec.name));
    let name = spec.name.clone();
    c.stack.functions.insert(spec.binary.clone(), spec);
    Ok(Created::new(name, true).with("Arn", arn))
}

pub(super) fn function_spec(
    logical_id: &str,
    metadata: &Value,
    properties: &Value,
    scope: &Scope,
) -> Result<FunctionSpec> {
    let binary = metadata
        .pointer("/BuildProperties/Binary")
        .map(scalar_text)
        .ok_or_else(|| anyhow!("function {logical_id} names no binary"))?;
    let environment = properties
        .pointer("/Environment/Variables")
        .and_then(Value::as_object)
        .map(|vars| {
            vars.iter()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect()
        })
        .unwrap_or_default();
    let mut sqs = Vec::new();
    let mut schedules = Vec::new();
    for (name, event) in properties
        .get("Events")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
    {
        let props = event.get("Properties").cloned().unwrap_or(json!({}));
        match event.get("Type").and_then(Value::as_str) {
            Some("SQS") => {
                let queue_arn = text(&props, "Queue")
                    .ok_or_else(|| anyhow!("SQS event {name} has no Queue"))?;
                let queue_url = queue_url_of(scope, &queue_arn)?;
                sqs.push(SqsMapping {
                    queue_url,
                    queue_arn,
                    batch_size: props
                        .get("BatchSize")
                        .map(scalar_text)
                        .and_then(|b| b.parse().ok())
                        .unwrap_or(10),
                    batching_window_secs: props
                        .get("MaximumBatchingWindowInSeconds")
                        .map(scalar_text)
                        .and_then(|w| w.parse().ok())
                        .unwrap_or(0),
                    report_batch_item_failures: props
                        .get("FunctionResponseTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.iter().any(|v| v == "ReportBatchItemFailures")),
                });
            }
            Some("Schedule") | Some("ScheduleV2") => schedules.push(Schedule {
                name: name.clone(),
                expression: text(&props, "Schedule")
                    .or_else(|| text(&props, "ScheduleExpression"))
                    .unwrap_or_default(),
                input: props.get("Input").map(|i| match i {
                    Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                    other => other.clone(),
                }),
            }),
            _ => {}
        }
    }
    Ok(FunctionSpec {
        logical_id: logical_id.to_owned(),
        name: text(properties, "FunctionName").unwrap_or_else(|| binary.clone()),
        binary,
        timeout_secs: properties
            .get("Timeout")
            .map(scalar_text)
            .and_then(|t| t.parse().ok())
            .unwrap_or(3),
        memory_mb: properties
            .get("MemorySize")
            .map(scalar_text)
            .and_then(|m| m.parse().ok())
            .unwrap_or(128),
        environment,
        sqs,
        schedules,
        session: RoleSession::default(),
    })
}

/// The URL of the queue behind an ARN, from what provisioning recorded.
pub(super) fn queue_url_of(scope: &Scope, arn: &str) -> Result<String> {
    scope
        .attributes
        .iter()
        .find(|((_, attribute), value)| attribute == "Arn" && value.as_str() == Some(arn))
        .and_then(|((resource, _), _)| {
            scope
                .attributes
                .get(&(resource.clone(), "QueueUrl".to_owned()))
        })
        .map(scalar_text)
        .ok_or_else(|| anyhow!("no queue with ARN {arn} in the template"))
}
