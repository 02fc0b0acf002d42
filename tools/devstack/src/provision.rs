//! Creates what template.yaml declares in moto, in dependency order, and records the
//! physical names, URLs and ARNs that functions, scripts and tests need.

use crate::iam::{create_role, RoleSession};
use crate::template::{scalar_text, ResolveError, Resource, Scope, Template};
use anyhow::{anyhow, bail, Context as _, Result};
use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where and as whom the stack is provisioned.
#[derive(Debug, Clone)]
pub struct Target {
    pub stack: String,
    pub region: String,
    pub account: String,
    pub parameters: BTreeMap<String, String>,
    /// Local values for secrets the template generates (logical id → SecretString),
    /// e.g. the local MariaDB's credentials for the MySQL secret.
    pub secrets: BTreeMap<String, String>,
    /// Addresses verified in SES before the stack exists, as a user in the SES sandbox
    /// verifies every recipient (README, "First deploy into a new account"); the local SES
    /// refuses any other recipient, as the sandbox does (scripts/moto_server.py).
    pub verified_recipients: Vec<String>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            stack: "landfall".into(),
            region: "eu-west-2".into(),
            // moto's fixed account id
            account: "123456789012".into(),
            parameters: local_parameters(),
            secrets: BTreeMap::new(),
            verified_recipients: local_recipients(),
        }
    }
}

/// What a user sets up before a first deploy in AWS, as the local stack stands in for it:
/// subnets for the ECS tasks (RunTask refuses Fargate tasks without), and the sender's SES
/// identity, created by the stack here because moto has no earlier verification to find.
pub fn local_parameters() -> BTreeMap<String, String> {
    [
        ("SubnetIds", "subnet-0local"),
        ("SecurityGroupIds", "sg-0local"),
        ("CreateSenderIdentity", "true"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

/// Who the stack emails with its default parameters and configuration: the operations and
/// init addresses and every dataset's `notify` list, but the SES mailbox simulator, which
/// the sandbox accepts unverified.
pub fn local_recipients() -> Vec<String> {
    let configured = [
        include_str!("../../../config/datasets.toml"),
        include_str!("../../../config/dynamodb.toml"),
    ];
    let notify = configured
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| line.trim().strip_prefix("notify"))
        .flat_map(|list| list.split('"').skip(1).step_by(2))
        .filter(|address| !address.ends_with("@simulator.amazonses.com"))
        .map(str::to_owned);
    ["ops@example.com", "dba@example.com"]
        .into_iter()
        .map(str::to_owned)
        .chain(notify)
        .collect()
}

/// The provisioned stack: resource names and the functions with their wiring.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Stack {
    pub region: String,
    /// Logical id → what `Ref` gives (bucket name, queue URL, distribution id, …).
    pub resources: BTreeMap<String, Provisioned>,
    pub functions: BTreeMap<String, FunctionSpec>,
    /// ECS task definitions by family, run by the local task runner.
    #[serde(default)]
    pub task_definitions: BTreeMap<String, TaskDefinitionSpec>,
    /// A session of every role the stack created, by role ARN.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSession>,
}

/// The one container of an ECS task definition, as the local task runner needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskDefinitionSpec {
    pub family: String,
    pub container: String,
    /// The container command's program: a workspace binary of the same name.
    pub binary: String,
    pub arguments: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// TaskRoleArn and ExecutionRoleArn: RunTask passes them (iam:PassRole).
    #[serde(default)]
    pub passes_roles: Vec<String>,
    /// The task role's credentials, as ECS hands them to the container.
    #[serde(default)]
    pub session: RoleSession,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provisioned {
    pub kind: String,
    pub reference: String,
    /// False for kinds the local stack does not need to emulate (IAM, alarms, policies).
    pub emulated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The binary (= package = function name when run locally).
    pub binary: String,
    /// The function's name in AWS: FunctionName when the template gives one (the function
    /// sees it as AWS_LAMBDA_FUNCTION_NAME, and is invoked by it), else the binary.
    #[serde(default)]
    pub name: String,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub environment: BTreeMap<String, String>,
    pub sqs: Vec<SqsMapping>,
    pub schedules: Vec<Schedule>,
    /// The function's execution role's credentials, as Lambda hands them to the code.
    #[serde(default)]
    pub session: RoleSession,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqsMapping {
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    /// MaximumBatchingWindowInSeconds: how long the poller gathers records for one batch.
    pub batching_window_secs: u64,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub expression: String,
    pub input: Option<Value>,
}

impl Stack {
    pub fn reference(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id).map(|r| r.reference.as_str())
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions
            .get(name)
            .or_else(|| self.functions.values().find(|f| f.logical_id == name))
    }
}

pub async fn provision(template: &Template, target: &Target, aws: &SdkConfig) -> Result<Stack> {
    let mut scope = Scope::for_parameters(
        template,
        &target.stack,
        &target.region,
        &target.account,
        &target.parameters,
    )?;

    let clients = Clients::new(aws);
    let mut stack = Stack {
        region: target.region.clone(),
        ..Stack::default()
    };
    let mut pending: Vec<&Resource> = template
        .resources
        .values()
        .filter(|r| {
            r.condition
                .as_ref()
                .is_none_or(|c| scope.conditions.get(c).copied().unwrap_or(false))
        })
        .collect();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut blocked_on = Vec::new();
        for resource in pending.iter().copied() {
            let properties = merge_globals(template, resource);
            match scope.resolve(&properties) {
                Ok(properties) => {
                    create(
                        &clients,
                        target,
                        &mut scope,
                        &mut stack,
                        resource,
                        &properties,
                    )
                    .await
                    .with_context(|| {
                        format!("provisioning {} ({})", resource.logical_id, resource.kind)
                    })?;
                }
                Err(ResolveError::NotYet(missing)) => {
                    blocked_on.push(format!("{} waits for {}", resource.logical_id, missing.0));
                    waiting.push(resource);
                }
                Err(other) => {
                    return Err(other).with_context(|| format!("resolving {}", resource.logical_id))
                }
            }
        }
        if waiting.len() == pending.len() {
            bail!(
                "cannot provision, references never resolve: {}",
                blocked_on.join("; ")
            );
        }
        pending = waiting;
    }
    register_outputs(&clients.moto, target, template, &scope).await?;
    for recipient in &target.verified_recipients {
        created_or_exists(
            clients
                .ses
                .create_email_identity()
                .email_identity(recipient)
                .send()
                .await,
            |e| e.is_already_exists_exception(),
        )
        .with_context(|| format!("verifying the recipient {recipient}"))?;
    }
    Ok(stack)
}

/// The stack as CloudFormation describes it: a stack of `target.stack`'s name in moto's
/// CloudFormation with the template's Outputs, resolved — what `DescribeStacks` gives a
/// deployed stack's users (make smoke reads nothing else). Its one resource is a no-op
/// (moto's CloudFormation would otherwise create the resources a second time).
async fn register_outputs(
    moto: &str,
    target: &Target,
    template: &Template,
    scope: &Scope,
) -> Result<()> {
    let mut outputs = serde_json::Map::new();
    for (name, output) in &template.outputs {
        if let Some(condition) = output.get("Condition").and_then(Value::as_str) {
            if !scope.conditions.get(condition).copied().unwrap_or(false) {
                continue;
            }
        }
        let value = scope
            .resolve(output.get("Value").unwrap_or(&Value::Null))
            .map_err(|e| anyhow!("output {name}: {e:?}"))?;
        outputs.insert(name.clone(), json!({"Value": scalar_text(&value)}));
    }
    let body = json!({
        "Resources": {"Outputs": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": outputs,
    });
    let cloudformation = |parameters: Vec<(&'static str, String)>| async move {
        let parameters: Vec<(&str, &str)> =
            parameters.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::moto::query_call(moto, &target.region, "cloudformation", &parameters).await
    };
    // Provisioning again (make dev-up is idempotent) describes the stack anew.
    cloudformation(vec![
        ("Action", "DeleteStack".into()),
        ("Version", "2010-05-15".into()),
        ("StackName", target.stack.clone()),
    ])
    .await?;
    cloudformation(vec![
        ("Action", "CreateStack".into()),
        ("Version", "2010-05-15".into()),
        ("StackName", target.stack.clone()),
        ("TemplateBody", body.to_string()),
    ])
    .await
    .context("registering the stack's outputs in CloudFormation")?;
    Ok(())
}

struct Clients {
    /// moto's endpoint, for the local IAM (scripts/local_iam).
    moto: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    cloudfront: aws_sdk_cloudfront::Client,
    secrets: aws_sdk_secretsmanager::Client,
    ses: aws_sdk_sesv2::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    glue: aws_sdk_glue::Client,
}

impl Clients {
    fn new(aws: &SdkConfig) -> Clients {
        let s3 = aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(true)
            .build();
        Clients {
            moto: aws
                .endpoint_url()
                .unwrap_or("http://127.0.0.1:5000")
                .trim_end_matches('/')
                .to_owned(),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(aws),
            cloudfront: aws_sdk_cloudfront::Client::new(aws),
            secrets: aws_sdk_secretsmanager::Client::new(aws),
            ses: aws_sdk_sesv2::Client::new(aws),
            dynamodb: aws_sdk_dynamodb::Client::new(aws),
            glue: aws_sdk_glue::Client::new(aws),
        }
    }
}

/// SAM's Globals.Function applies to every AWS::Serverless::Function.
fn merge_globals(template: &Template, resource: &Resource) -> Value {
    if resource.kind != "AWS::Serverless::Function" {
        return resource.properties.clone();
    }
    let mut merged = template
        .globals
        .get("Function")
        .cloned()
        .unwrap_or(json!({}));
    deep_merge(&mut merged, &resource.properties);
    merged
}

fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                deep_merge(base.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (base, over) => *base = over.clone(),
    }
}

fn default_name(target: &Target, logical_id: &str) -> String {
    format!("{}-{}", target.stack, logical_id.to_ascii_lowercase())
}

/// The elements of the array at `pointer`, none when it is absent.
fn items<'a>(properties: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    properties
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn text(properties: &Value, key: &str) -> Option<String> {
    properties
        .get(key)
        .map(scalar_text)
        .filter(|s| !s.is_empty())
}

async fn create(
    clients: &Clients,
    target: &Target,
    scope: &mut Scope,
    stack: &mut Stack,
    resource: &Resource,
    properties: &Value,
) -> Result<()> {
    let id = resource.logical_id.as_str();
    let mut attributes: Vec<(&str, String)> = Vec::new();
    let (reference, emulated) = match resource.kind.as_str() {
        "AWS::SQS::Queue" => {
            let name = text(properties, "QueueName").unwrap_or_else(|| default_name(target, id));
            let url = create_queue(&clients.sqs, &name, properties).await?;
            attributes.push((
                "Arn",
                format!("arn:aws:sqs:{}:{}:{}", target.region, target.account, name),
            ));
            attributes.push(("QueueName", name));
            attributes.push(("QueueUrl", url.clone()));
            (url, true)
        }
        "AWS::S3::Bucket" => {
            let name = text(properties, "BucketName").unwrap_or_else(|| default_name(target, id));
            create_bucket(&clients.s3, &target.region, &name, properties).await?;
            attributes.push(("Arn", format!("arn:aws:s3:::{name}")));
            attributes.push(("DomainName", format!("{name}.s3.amazonaws.com")));
            attributes.push((
                "RegionalDomainName",
                format!("{name}.s3.{}.amazonaws.com", target.region),
            ));
            attributes.push((
                "WebsiteURL",
                format!("http://{name}.s3-website.{}.amazonaws.com", target.region),
            ));
            (name, true)
        }
        "AWS::CloudFront::Distribution" => {
            let (dist_id, domain) =
                create_distribution(&clients.cloudfront, target, id, properties).await?;
            attributes.push(("Id", dist_id.clone()));
            attributes.push(("DomainName", domain));
            (dist_id, true)
        }
        "AWS::SecretsManager::Secret" => {
            let name = text(properties, "Name").unwrap_or_else(|| default_name(target, id));
            let value = target
                .secrets
                .get(id)
                .cloned()
                .or_else(|| text(properties, "SecretString"))
                .unwrap_or_else(|| generated_secret(properties));
            let arn = put_secret(&clients.secrets, &name, &value).await?;
            attributes.push(("Id", arn.clone()));
            (arn, true)
        }
        "AWS::Logs::LogGroup" => {
            let name = text(properties, "LogGroupName").unwrap_or_else(|| default_name(target, id));
            let retention = properties
                .get("RetentionInDays")
                .and_then(|d| d.as_i64().or_else(|| scalar_text(d).parse().ok()));
            crate::logs::create_group(&clients.moto, &target.region, &name, retention).await?;
            attributes.push((
                "Arn",
                format!(
                    "arn:aws:logs:{}:{}:log-group:{name}:*",
                    target.region, target.account
                ),
            ));
            (name, false)
        }
        "AWS::SES::EmailIdentity" => {
            let identity = text(properties, "EmailIdentity")
                .ok_or_else(|| anyhow!("EmailIdentity missing"))?;
            created_or_exists(
                clients
                    .ses
                    .create_email_identity()
                    .email_identity(&identity)
                    .send()
                    .await,
                |e| e.is_already_exists_exception(),
            )?;
            (identity, true)
        }
        "AWS::IAM::Role" => {
            let name = text(properties, "RoleName").unwrap_or_else(|| default_name(target, id));
            let policies = items(properties, "/Policies")
                .filter_map(|p| Some((text(p, "PolicyName")?, p.get("PolicyDocument")?.clone())))
                .collect();
            let managed: Vec<String> = items(properties, "/ManagedPolicyArns")
                .map(scalar_text)
                .collect();
            let session = create_role(&clients.moto, &name, id, &policies, &managed).await?;
            attributes.push(("Arn", session.role_arn.clone()));
            stack.roles.insert(session.role_arn.clone(), session);
            (name, true)
        }
        "AWS::Serverless::Function" => {
            let mut spec = function_spec(id, &resource.metadata, properties, scope)?;
            // SAM's generated execution role: the Policies' statements, the basic execution
            // role, and the SQS poller's managed policy for an SQS event (SAM's
            // "AWS::Serverless::Function" resource: Policies, and its generated resources).
            let role = default_name(target, &format!("{id}Role"));
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
                managed.push(
                    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole".into(),
                );
            }
            spec.session =
                create_role(&clients.moto, &role, &spec.binary, &policies, &managed).await?;
            attributes.push((
                "Arn",
                format!(
                    "arn:aws:lambda:{}:{}:function:{}",
                    target.region, target.account, spec.name
                ),
            ));
            let name = spec.name.clone();
            stack.functions.insert(spec.binary.clone(), spec);
            (name, true)
        }
        "AWS::ECS::TaskDefinition" => {
            let mut spec = task_definition_spec(id, properties)?;
            let task_role = text(properties, "TaskRoleArn").unwrap_or_default();
            spec.session = stack.roles.get(&task_role).cloned().ok_or_else(|| {
                anyhow!("{id}: TaskRoleArn {task_role:?} is no role of the stack")
            })?;
            spec.passes_roles = ["TaskRoleArn", "ExecutionRoleArn"]
                .iter()
                .filter_map(|k| text(properties, k))
                .collect();
            let arn = format!(
                "arn:aws:ecs:{}:{}:task-definition/{}:1",
                target.region, target.account, spec.family
            );
            attributes.push(("TaskDefinitionArn", arn.clone()));
            stack.task_definitions.insert(spec.family.clone(), spec);
            (arn, true)
        }
        "AWS::DynamoDB::Table" => {
            let name = text(properties, "TableName").unwrap_or_else(|| default_name(target, id));
            create_table(&clients.dynamodb, &name, properties).await?;
            attributes.push((
                "Arn",
                format!(
                    "arn:aws:dynamodb:{}:{}:table/{name}",
                    target.region, target.account
                ),
            ));
            (name, true)
        }
        "AWS::Glue::Database" => {
            let name = properties
                .pointer("/DatabaseInput/Name")
                .map(scalar_text)
                .ok_or_else(|| anyhow!("DatabaseInput.Name missing"))?;
            created_or_exists(
                clients
                    .glue
                    .create_database()
                    .database_input(
                        aws_sdk_glue::types::DatabaseInput::builder()
                            .name(&name)
                            .build()?,
                    )
                    .send()
                    .await,
                |e| e.is_already_exists_exception(),
            )?;
            (name, true)
        }
        "AWS::Glue::Crawler" => {
            let name = text(properties, "Name").unwrap_or_else(|| default_name(target, id));
            let paths = items(properties, "/Targets/S3Targets")
                .filter_map(|t| t.get("Path").map(scalar_text))
                .map(|path| aws_sdk_glue::types::S3Target::builder().path(path).build())
                .collect::<Vec<_>>();
            created_or_exists(
                clients
                    .glue
                    .create_crawler()
                    .name(&name)
                    .role(text(properties, "Role").unwrap_or_default())
                    .set_database_name(text(properties, "DatabaseName"))
                    .targets(
                        aws_sdk_glue::types::CrawlerTargets::builder()
                            .set_s3_targets(Some(paths))
                            .build(),
                    )
                    .send()
                    .await,
                |e| e.is_already_exists_exception(),
            )?;
            (name, true)
        }
        // The devstack serves ECS itself; policies name the cluster by its ARN (ecs:cluster).
        "AWS::ECS::Cluster" => {
            let name = text(properties, "ClusterName").unwrap_or_else(|| default_name(target, id));
            attributes.push((
                "Arn",
                format!(
                    "arn:aws:ecs:{}:{}:cluster/{name}",
                    target.region, target.account
                ),
            ));
            (name, true)
        }
        // Images are not needed locally (tasks run the workspace binaries); the URI is.
        "AWS::ECR::Repository" => {
            let name =
                text(properties, "RepositoryName").unwrap_or_else(|| default_name(target, id));
            attributes.push((
                "RepositoryUri",
                format!(
                    "{}.dkr.ecr.{}.amazonaws.com/{name}",
                    target.account, target.region
                ),
            ));
            attributes.push((
                "Arn",
                format!(
                    "arn:aws:ecr:{}:{}:repository/{name}",
                    target.region, target.account
                ),
            ));
            (name, false)
        }
        // IAM, policies, alarms, log groups, OAC: nothing to emulate locally, but other
        // resources may still reference them.
        _ => {
            let placeholder = default_name(target, id);
            attributes.push((
                "Arn",
                format!(
                    "arn:aws:local:{}:{}:{}",
                    target.region, target.account, placeholder
                ),
            ));
            attributes.push(("Id", placeholder.clone()));
            attributes.push(("Name", placeholder.clone()));
            (placeholder, false)
        }
    };
    scope
        .values
        .insert(id.to_owned(), Value::String(reference.clone()));
    for (attribute, value) in attributes {
        scope
            .attributes
            .insert((id.to_owned(), attribute.to_owned()), Value::String(value));
    }
    stack.resources.insert(
        id.to_owned(),
        Provisioned {
            kind: resource.kind.clone(),
            reference,
            emulated,
        },
    );
    Ok(())
}

/// What CloudFormation would generate from GenerateSecretString, minus the randomness
/// (a local stack needs no real secret unless the caller provides one).
fn generated_secret(properties: &Value) -> String {
    let spec = properties
        .get("GenerateSecretString")
        .cloned()
        .unwrap_or(json!({}));
    let mut value: serde_json::Map<String, Value> = text(&spec, "SecretStringTemplate")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let key = text(&spec, "GenerateStringKey").unwrap_or_else(|| "password".into());
    value.insert(key, Value::String("local-only".into()));
    Value::Object(value).to_string()
}

/// Provisioning runs on every start, so what an earlier start created is not an error.
fn created_or_exists<T, E, R>(
    created: std::result::Result<T, aws_sdk_s3::error::SdkError<E, R>>,
    exists: impl FnOnce(&E) -> bool,
) -> Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match created {
        Err(err) if !err.as_service_error().is_some_and(exists) => Err(err.into()),
        _ => Ok(()),
    }
}

async fn put_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Result<String> {
    match secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(out) => Ok(out.arn().unwrap_or_default().to_owned()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            let out = secrets
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await?;
            Ok(out.arn().unwrap_or_default().to_owned())
        }
        Err(err) => Err(err.into()),
    }
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str, properties: &Value) -> Result<String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let mut attributes = std::collections::HashMap::new();
    for (key, attribute) in [
        ("VisibilityTimeout", A::VisibilityTimeout),
        ("MessageRetentionPeriod", A::MessageRetentionPeriod),
        ("DelaySeconds", A::DelaySeconds),
        (
            "ReceiveMessageWaitTimeSeconds",
            A::ReceiveMessageWaitTimeSeconds,
        ),
        ("MaximumMessageSize", A::MaximumMessageSize),
        ("FifoQueue", A::FifoQueue),
        ("ContentBasedDeduplication", A::ContentBasedDeduplication),
    ] {
        if let Some(value) = properties.get(key) {
            attributes.insert(attribute, scalar_text(value));
        }
    }
    if let Some(policy) = properties.get("RedrivePolicy") {
        let policy = match policy {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        attributes.insert(A::RedrivePolicy, policy);
    }
    match sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await
    {
        Ok(out) => Ok(out.queue_url().unwrap_or_default().to_owned()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_name_exists()) =>
        {
            // Exists with other attributes (template changed): update in place.
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await?
                .queue_url()
                .unwrap_or_default()
                .to_owned();
            attributes.remove(&A::FifoQueue);
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await?;
            Ok(url)
        }
        Err(err) => Err(err.into()),
    }
}

/// A table as declared (keys and billing); the rest (PITR, SSE) means nothing locally.
async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    properties: &Value,
) -> Result<()> {
    use aws_sdk_dynamodb::types::*;
    let list = |key: &str| {
        properties
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut request = dynamodb.create_table().table_name(name);
    for attribute in list("AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(scalar_text(&attribute["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    scalar_text(&attribute["AttributeType"]).as_str(),
                ))
                .build()?,
        );
    }
    for key in list("KeySchema") {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(scalar_text(&key["AttributeName"]))
                .key_type(KeyType::from(scalar_text(&key["KeyType"]).as_str()))
                .build()?,
        );
    }
    let billing = text(properties, "BillingMode").unwrap_or_else(|| "PAY_PER_REQUEST".into());
    request = request.billing_mode(BillingMode::from(billing.as_str()));
    created_or_exists(request.send().await, |e| e.is_resource_in_use_exception())
}

async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    region: &str,
    name: &str,
    properties: &Value,
) -> Result<()> {
    use aws_sdk_s3::types::*;
    let mut request = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    created_or_exists(request.send().await, |e| {
        e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
    })?;
    if properties
        .pointer("/VersioningConfiguration/Status")
        .and_then(Value::as_str)
        == Some("Enabled")
    {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
    }
    let queues = properties
        .pointer("/NotificationConfiguration/QueueConfigurations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !queues.is_empty() {
        let mut configuration = NotificationConfiguration::builder();
        for queue in queues {
            let mut rules = Vec::new();
            for rule in queue
                .pointer("/Filter/S3Key/Rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                rules.push(
                    FilterRule::builder()
                        .name(FilterRuleName::from(
                            text(&rule, "Name")
                                .unwrap_or_default()
                                .to_ascii_lowercase()
                                .as_str(),
                        ))
                        .value(text(&rule, "Value").unwrap_or_default())
                        .build(),
                );
            }
            let mut builder = QueueConfiguration::builder()
                .queue_arn(
                    text(&queue, "Queue")
                        .ok_or_else(|| anyhow!("queue configuration without Queue"))?,
                )
                .events(Event::from(
                    text(&queue, "Event").unwrap_or_default().as_str(),
                ));
            if !rules.is_empty() {
                builder = builder.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            configuration = configuration.queue_configurations(builder.build()?);
        }
        s3.put_bucket_notification_configuration()
            .bucket(name)
            .notification_configuration(configuration.build())
            .send()
            .await?;
    }
    Ok(())
}

/// Only what moto needs to serve invalidations and origin look-ups: origins and the
/// default cache behaviour. Found again by its comment, so provisioning is idempotent.
async fn create_distribution(
    cloudfront: &aws_sdk_cloudfront::Client,
    target: &Target,
    logical_id: &str,
    properties: &Value,
) -> Result<(String, String)> {
    use aws_sdk_cloudfront::types::*;
    let config = properties
        .get("DistributionConfig")
        .cloned()
        .unwrap_or(json!({}));
    let comment = format!("{}:{}", target.stack, logical_id);
    let listed = cloudfront.list_distributions().send().await?;
    if let Some(existing) = listed
        .distribution_list()
        .map(|l| l.items())
        .unwrap_or_default()
        .iter()
        .find(|d| d.comment() == comment)
    {
        return Ok((existing.id().to_owned(), existing.domain_name().to_owned()));
    }
    let mut origins = Vec::new();
    for origin in config
        .get("Origins")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        origins.push(
            Origin::builder()
                .id(text(&origin, "Id").unwrap_or_default())
                .domain_name(text(&origin, "DomainName").unwrap_or_default())
                .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
                .build()?,
        );
    }
    let target_origin = config
        .pointer("/DefaultCacheBehavior/TargetOriginId")
        .map(scalar_text)
        .unwrap_or_default();
    let distribution = DistributionConfig::builder()
        .caller_reference(&comment)
        .comment(&comment)
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(origins.len() as i32)
                .set_items(Some(origins))
                .build()?,
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id(target_origin)
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id(
                    config
                        .pointer("/DefaultCacheBehavior/CachePolicyId")
                        .map(scalar_text)
                        .unwrap_or_default(),
                )
                .trusted_signers(
                    TrustedSigners::builder()
                        .enabled(false)
                        .quantity(0)
                        .build()?,
                )
                .build()?,
        )
        .build()?;
    let created = cloudfront
        .create_distribution()
        .distribution_config(distribution)
        .send()
        .await?;
    let created = created
        .distribution()
        .ok_or_else(|| anyhow!("no distribution in the answer"))?;
    Ok((created.id().to_owned(), created.domain_name().to_owned()))
}

fn function_spec(
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

fn task_definition_spec(logical_id: &str, properties: &Value) -> Result<TaskDefinitionSpec> {
    let family = text(properties, "Family")
        .ok_or_else(|| anyhow!("task definition {logical_id} has no Family"))?;
    let container = properties
        .pointer("/ContainerDefinitions/0")
        .ok_or_else(|| anyhow!("task definition {logical_id} has no container"))?;
    let command: Vec<String> = container
        .get("Command")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(scalar_text).collect())
        .unwrap_or_default();
    let (program, arguments) = command
        .split_first()
        .ok_or_else(|| anyhow!("task definition {logical_id}: the container has no Command"))?;
    let environment = container
        .get("Environment")
        .and_then(Value::as_array)
        .map(|vars| {
            vars.iter()
                .filter_map(|kv| Some((text(kv, "Name")?, kv.get("Value").map(scalar_text)?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(TaskDefinitionSpec {
        family,
        container: text(container, "Name").unwrap_or_else(|| "main".into()),
        binary: program.rsplit('/').next().unwrap_or(program).to_owned(),
        arguments: arguments.to_vec(),
        environment,
        passes_roles: Vec::new(),
        session: RoleSession::default(),
    })
}

/// The URL of the queue behind an ARN, from what provisioning recorded.
fn queue_url_of(scope: &Scope, arn: &str) -> Result<String> {
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

/// `WebsiteBucket` → `WEBSITE_BUCKET`.
pub fn env_name(logical_id: &str) -> String {
    let mut out = String::new();
    let mut previous_upper = true;
    for c in logical_id.chars() {
        if c.is_ascii_uppercase() && !previous_upper {
            out.push('_');
        }
        previous_upper = c.is_ascii_uppercase();
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definitions_run_the_container_command_as_a_workspace_binary() {
        let properties = json!({
            "Family": "landfall-db-init",
            "ContainerDefinitions": [{
                "Name": "db-init",
                "Image": "123.dkr.ecr.eu-west-2.amazonaws.com/landfall-tasks:latest",
                "Command": ["/usr/local/bin/db-init", "--verbose"],
                "Environment": [{"Name": "MYSQL_SECRET_ARN", "Value": "arn:secret"}, {"Name": "N", "Value": 3}]
            }]
        });
        let spec = task_definition_spec("DbInitTaskDefinition", &properties).unwrap();
        assert_eq!(spec.family, "landfall-db-init");
        assert_eq!(spec.container, "db-init");
        assert_eq!(spec.binary, "db-init");
        assert_eq!(spec.arguments, vec!["--verbose".to_owned()]);
        assert_eq!(spec.environment["MYSQL_SECRET_ARN"], "arn:secret");
        assert_eq!(spec.environment["N"], "3");
        let no_command = json!({"Family": "f", "ContainerDefinitions": [{"Name": "c"}]});
        assert!(task_definition_spec("X", &no_command).is_err());
    }

    #[test]
    fn function_wiring_comes_from_the_template() {
        let mut scope = Scope::new("landfall", "eu-west-2", "123456789012");
        let arn = "arn:aws:sqs:eu-west-2:123456789012:landfall-in";
        scope
            .attributes
            .insert(("In".into(), "Arn".into()), arn.into());
        scope.attributes.insert(
            ("In".into(), "QueueUrl".into()),
            "http://moto/123456789012/landfall-in".into(),
        );
        let metadata =
            json!({"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "db-extract"}});
        let properties = json!({
            "Timeout": 900,
            "Environment": {"Variables": {"TABLES": "all", "BATCH": 5}},
            "Events": {
                "Queue": {"Type": "SQS", "Properties": {"Queue": arn, "BatchSize": 25,
                    "MaximumBatchingWindowInSeconds": 3, "FunctionResponseTypes": ["ReportBatchItemFailures"]}},
                "Every5": {"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)", "Input": "{\"mode\":\"dispatch\"}"}}
            }
        });
        let spec = function_spec("DbExtractFunction", &metadata, &properties, &scope).unwrap();
        assert_eq!(spec.binary, "db-extract");
        assert_eq!(spec.timeout_secs, 900);
        assert_eq!(spec.environment["BATCH"], "5");
        assert_eq!(spec.sqs.len(), 1);
        assert_eq!(
            spec.sqs[0].queue_url,
            "http://moto/123456789012/landfall-in"
        );
        assert_eq!(
            (spec.sqs[0].batch_size, spec.sqs[0].batching_window_secs),
            (25, 3)
        );
        assert!(spec.sqs[0].report_batch_item_failures);
        assert_eq!(spec.schedules[0].expression, "rate(5 minutes)");
        assert_eq!(spec.schedules[0].input, Some(json!({"mode": "dispatch"})));
    }

    #[test]
    fn env_names() {
        assert_eq!(super::env_name("WebsiteBucket"), "WEBSITE_BUCKET");
        assert_eq!(super::env_name("WebsiteChangesDLQ"), "WEBSITE_CHANGES_DLQ");
        assert_eq!(
            super::env_name("CdnInvalidatorFunction"),
            "CDN_INVALIDATOR_FUNCTION"
        );
    }
}
