//! Creates what template.yaml declares in moto, in dependency order, and records the
//! physical names, URLs and ARNs that functions, scripts and tests need.

use crate::iam::{create_role, RoleSession};
use crate::template::{scalar_text, ResolveError, Resource, Scope, Template};
use anyhow::{anyhow, bail, Context as _, Result};
use aws_config::SdkConfig;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

mod bucket;
mod distribution;
mod email_identity;
mod function;
mod glue;
mod log_group;
mod named;
mod queue;
mod role;
mod secret;
mod table;
mod task_definition;

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
        include_str!("../../../../config/datasets.toml"),
        include_str!("../../../../config/dynamodb.toml"),
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
    /// Every role's session credentials, by role ARN (what the local Redshift's COPY reads
    /// S3 as).
    pub fn role_credentials(&self) -> BTreeMap<String, aws_sdk_s3::config::Credentials> {
        self.roles
            .iter()
            .map(|(arn, session)| (arn.clone(), session.credentials()))
            .collect()
    }

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

/// What creating one resource gives: what `Ref` names, its `Fn::GetAtt` attributes, and
/// whether the local stack serves it.
struct Created {
    reference: String,
    attributes: Vec<(&'static str, String)>,
    emulated: bool,
}

impl Created {
    /// A resource known by `reference`; `emulated`: the local stack serves it.
    fn new(reference: String, emulated: bool) -> Created {
        Created {
            reference,
            attributes: Vec::new(),
            emulated,
        }
    }

    /// With the `Fn::GetAtt` attribute `name`.
    fn with(mut self, name: &'static str, value: impl Into<String>) -> Created {
        self.attributes.push((name, value.into()));
        self
    }
}

/// One resource being created, and what its creation may read and record.
struct Creation<'a> {
    clients: &'a Clients,
    target: &'a Target,
    scope: &'a mut Scope,
    stack: &'a mut Stack,
    resource: &'a Resource,
    properties: &'a Value,
    id: &'a str,
}

impl Creation<'_> {
    /// The resource's name: its `property`, else the stack's default for its logical id.
    fn name(&self, property: &str) -> String {
        text(self.properties, property).unwrap_or_else(|| default_name(self.target, self.id))
    }

    /// `arn:aws:<service>:<region>:<account>:<resource>`
    fn arn(&self, service: &str, resource: &str) -> String {
        let target = self.target;
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            target.region, target.account
        )
    }
}

/// Creates `resource` (one module per resource kind, each with this `create` signature) and
/// records what it is known by.
async fn create(
    clients: &Clients,
    target: &Target,
    scope: &mut Scope,
    stack: &mut Stack,
    resource: &Resource,
    properties: &Value,
) -> Result<()> {
    let id = resource.logical_id.as_str();
    let c = Creation {
        clients,
        target,
        scope,
        stack,
        resource,
        properties,
        id,
    };
    let Created {
        reference,
        attributes,
        emulated,
    } = match resource.kind.as_str() {
        "AWS::SQS::Queue" => queue::create(c).await?,
        "AWS::S3::Bucket" => bucket::create(c).await?,
        "AWS::CloudFront::Distribution" => distribution::create(c).await?,
        "AWS::SecretsManager::Secret" => secret::create(c).await?,
        "AWS::DynamoDB::Table" => table::create(c).await?,
        "AWS::IAM::Role" => role::create(c).await?,
        "AWS::Serverless::Function" => function::create(c).await?,
        "AWS::ECS::TaskDefinition" => task_definition::create(c).await?,
        "AWS::Glue::Database" => glue::create_database(c).await?,
        "AWS::Glue::Crawler" => glue::create_crawler(c).await?,
        "AWS::Logs::LogGroup" => log_group::create(c).await?,
        "AWS::SES::EmailIdentity" => email_identity::create(c).await?,
        "AWS::ECS::Cluster" => named::cluster(c).await?,
        "AWS::ECR::Repository" => named::repository(c).await?,
        _ => named::placeholder(c).await?,
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
        let spec =
            task_definition::task_definition_spec("DbInitTaskDefinition", &properties).unwrap();
        assert_eq!(spec.family, "landfall-db-init");
        assert_eq!(spec.container, "db-init");
        assert_eq!(spec.binary, "db-init");
        assert_eq!(spec.arguments, vec!["--verbose".to_owned()]);
        assert_eq!(spec.environment["MYSQL_SECRET_ARN"], "arn:secret");
        assert_eq!(spec.environment["N"], "3");
        let no_command = json!({"Family": "f", "ContainerDefinitions": [{"Name": "c"}]});
        assert!(task_definition::task_definition_spec("X", &no_command).is_err());
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
        let spec =
            function::function_spec("DbExtractFunction", &metadata, &properties, &scope).unwrap();
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
