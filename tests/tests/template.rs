//! template.yaml is valid CloudFormation and valid SAM, passes the serverless rules and
//! checkov, and keeps the operating rules every function and queue must follow; the
//! workflows pass actionlint and the Dockerfile hadolint.

use landfall_devstack::template::{scalar_text, strings, Resource, Scope, Template};
use landfall_tests::workspace_root;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn run(tool: &str, args: &[&str]) {
    let root = workspace_root();
    let path = root.join(tool);
    assert!(
        path.exists(),
        "{} is missing: run `make venv` (make test does)",
        path.display()
    );
    let out = Command::new(&path)
        .args(args)
        .current_dir(&root)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("tool runs");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cfn_lint_with_the_serverless_rules_passes() {
    // .cfnlintrc names the template and appends cfn-lint-serverless's rules.
    run(".venv-lint/bin/cfn-lint", &[]);
}

#[test]
fn checkov_passes() {
    run(
        ".venv-lint/bin/checkov",
        &["--config-file", ".checkov.yaml"],
    );
}

#[test]
fn the_workflows_pass_actionlint() {
    run(".venv-lint/bin/actionlint", &["-color=false"]);
}

#[test]
fn the_task_image_dockerfile_passes_hadolint() {
    run(".venv-lint/bin/hadolint", &["Dockerfile"]);
}

#[test]
fn sam_validate_passes() {
    run(
        ".venv-sam/bin/sam",
        &[
            "validate",
            "--template-file",
            "template.yaml",
            "--region",
            "eu-west-2",
        ],
    );
}

#[tokio::test]
async fn the_orchestrator_waits_as_long_as_its_callees_may_run() -> anyhow::Result<()> {
    let stack = landfall_tests::LocalStack::start().await?;
    let functions = &stack.stack.functions;
    let orchestrator = &functions["file-orchestrator"].environment;
    for (variable, callee) in [
        ("LOADER_TIMEOUT_SECONDS", "mysql-loader"),
        ("REPORTER_TIMEOUT_SECONDS", "mysql-reporter"),
    ] {
        assert_eq!(
            orchestrator[variable],
            functions[callee].timeout_secs.to_string(),
            "{variable} must be {callee}'s Timeout"
        );
    }
    Ok(())
}

fn template() -> Template {
    Template::load(&workspace_root().join("template.yaml")).expect("template.yaml parses")
}

/// `{"Ref": X}` or `{"Fn::GetAtt": [X, _]}` → X.
fn referenced(value: &Value) -> Option<&str> {
    value
        .get("Ref")
        .and_then(Value::as_str)
        .or_else(|| value.pointer("/Fn::GetAtt/0").and_then(Value::as_str))
}

fn number(resource: &Resource, property: &str) -> Option<u64> {
    resource.properties.get(property).and_then(Value::as_u64)
}

/// The alarms on `metric` whose dimension names `resource` and that notify the alerts topic.
fn alarms_on<'a>(template: &'a Template, metric: &str, resource: &str) -> Vec<&'a Resource> {
    template
        .of_kind("AWS::CloudWatch::Alarm")
        .filter(|alarm| alarm.properties["MetricName"] == metric)
        .filter(|alarm| {
            alarm.properties["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| referenced(&d["Value"]) == Some(resource))
        })
        .filter(|alarm| {
            alarm.properties["AlarmActions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| referenced(a) == Some("AlertsTopic"))
        })
        .collect()
}

/// A logical ID names one thing: parameters, resources and outputs share one namespace
/// (CloudFormation user guide, "Outputs syntax": an output's logical ID is "unique within
/// the template"; the same for parameters and resources). cfn-lint does not check it.
#[test]
fn every_logical_id_is_unique_within_the_template() {
    let template = template();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let sections = [
        ("Parameters", template.parameters.keys().collect::<Vec<_>>()),
        ("Resources", template.resources.keys().collect()),
        ("Outputs", template.outputs.keys().collect()),
    ];
    for (section, ids) in &sections {
        for id in ids {
            if let Some(first) = seen.insert(id.as_str(), section) {
                panic!("{id} is declared in {first} and again in {section}");
            }
        }
    }
}

#[test]
fn every_function_has_its_size_log_retention_and_alarms() {
    let template = template();
    let functions: Vec<_> = template.of_kind("AWS::Serverless::Function").collect();
    assert!(functions.len() >= 9, "{} functions", functions.len());
    for function in functions {
        let id = &function.logical_id;
        assert!(
            number(function, "Timeout").is_some()
                && (number(function, "MemorySize").is_some()
                    || referenced(&function.properties["MemorySize"]).is_some()),
            "{id}: Timeout and MemorySize are chosen per function, not left to Globals"
        );
        let log_group = format!("/aws/lambda/${{{id}}}");
        assert!(
            template.of_kind("AWS::Logs::LogGroup").any(|group| {
                group.properties["LogGroupName"]["Fn::Sub"] == log_group.as_str()
                    && group.properties["RetentionInDays"].as_u64().is_some()
            }),
            "{id} has no log group {log_group} with a retention"
        );
        for metric in ["Errors", "Throttles"] {
            assert!(
                !alarms_on(&template, metric, id).is_empty(),
                "{id} has no {metric} alarm to the alerts topic"
            );
        }
    }
}

#[test]
fn every_queue_outlasts_its_consumer_and_dead_letters_to_an_alarmed_queue() {
    let template = template();
    let queues: Vec<_> = template.of_kind("AWS::SQS::Queue").collect();
    for queue in &queues {
        assert_eq!(
            queue.properties["SqsManagedSseEnabled"], true,
            "{} is not encrypted at rest (SSE-SQS)",
            queue.logical_id
        );
    }
    let mut sources = 0;
    for function in template.of_kind("AWS::Serverless::Function") {
        let timeout = number(function, "Timeout").expect("every function sets its Timeout");
        let events = function.properties["Events"]
            .as_object()
            .into_iter()
            .flatten();
        for (name, event) in events.filter(|(_, e)| e["Type"] == "SQS") {
            sources += 1;
            let queue_id = referenced(&event["Properties"]["Queue"]).expect("queue by GetAtt");
            let queue = &template.resources[queue_id];
            let visibility = number(queue, "VisibilityTimeout").unwrap_or(30);
            assert!(
                visibility >= 6 * timeout,
                "{queue_id}'s visibility {visibility}s is under 6x {}'s {timeout}s ({name})",
                function.logical_id
            );
            let dlq = referenced(&queue.properties["RedrivePolicy"]["deadLetterTargetArn"])
                .unwrap_or_else(|| panic!("{queue_id} has no redrive policy"));
            assert!(
                !alarms_on(&template, "ApproximateNumberOfMessagesVisible", dlq).is_empty(),
                "{dlq} (the DLQ of {queue_id}) has no depth alarm to the alerts topic"
            );
        }
    }
    assert!(sources >= 5, "{sources} SQS event sources");
}

#[test]
fn the_pipeline_lag_alarm_holds_p4_to_its_30_minutes() {
    let template = template();
    let lag = &template.resources["PipelineLagAlarm"].properties;
    assert_eq!(lag["MetricName"], "PipelineLagSeconds");
    assert_eq!(lag["Threshold"], 1800);
    assert_eq!(
        lag["TreatMissingData"], "breaching",
        "a silent loader is stale too"
    );
    assert_eq!(referenced(&lag["AlarmActions"][0]), Some("AlertsTopic"));
}

/// A stack that does not use P4 (no totesys to read) sets `Totesys=disabled`: no lag alarm
/// stuck in ALARM on missing data, and P4's schedules off. By default both are on.
#[test]
fn a_stack_without_totesys_has_no_lag_alarm_and_no_p4_schedules() {
    let template = template();
    let alarm = template.resources["PipelineLagAlarm"]
        .condition
        .as_deref()
        .expect("the lag alarm has a condition");
    let schedules = ["DbExtractFunction", "WarehouseLoaderFunction"].map(|id| {
        let events = &template.resources[id].properties["Events"];
        let (_, event) = events
            .as_object()
            .and_then(|m| m.iter().find(|(_, e)| e["Type"] == "Schedule"))
            .unwrap_or_else(|| panic!("{id} has a schedule"));
        event["Properties"]["State"].clone()
    });
    for (given, on) in [(&[][..], true), (&[("Totesys", "disabled")][..], false)] {
        let scope = scope_with(&template, "landfall", given);
        assert_eq!(scope.conditions[alarm], on, "{given:?}");
        for state in &schedules {
            let state = scalar_text(&scope.resolve(state).expect("resolves"));
            assert_eq!(state, if on { "ENABLED" } else { "DISABLED" }, "{given:?}");
        }
    }
}

/// Every metric name the code emits: `counter!("Name"` and `gauge!("Name"` under crates/
/// and functions/.
fn emitted_metrics() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, names: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("source folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source file");
                // A metric is named in its macro call, or (a file pipeline's files done) in
                // the `FilePipeline::DONE_METRIC` the platform's flow counts.
                for macro_call in [
                    "counter!(\"",
                    "gauge!(\"",
                    "histogram!(\"",
                    "DONE_METRIC: &'static str = \"",
                ] {
                    for (at, _) in text.match_indices(macro_call) {
                        let rest = &text[at + macro_call.len()..];
                        names.insert(rest[..rest.find('"').unwrap_or(0)].to_owned());
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    for folder in ["crates", "functions"] {
        walk(&workspace_root().join(folder), &mut names);
    }
    names
}

#[test]
fn the_dashboard_shows_only_metrics_the_functions_emit() {
    let template = template();
    let body = template.resources["Dashboard"].properties["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is a !Sub string");
    // ${Resource} and ${Resource.Attribute} become their names, as CloudFormation would
    // put a value there; every one must name a resource of the template.
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').expect("closed ${}");
        let name = &rest[start + 2..end];
        let resource = name.split('.').next().unwrap_or(name);
        assert!(
            resource.starts_with("AWS::") || template.resources.contains_key(resource),
            "the dashboard names {name}, which the template does not declare"
        );
        text.push_str(&rest[..start]);
        text.push_str(name);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard body is JSON");

    let emitted = emitted_metrics();
    let mut shown = BTreeSet::new();
    let mut pipeline_lag_target = false;
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        let properties = &widget["properties"];
        for metric in properties["metrics"].as_array().into_iter().flatten() {
            if metric[0] == "landfall" {
                shown.insert(metric[1].as_str().expect("metric name").to_owned());
            }
            if let Some(expression) = metric[0]["expression"].as_str() {
                let name = expression
                    .split("MetricName=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .expect("a SEARCH of one metric name");
                shown.insert(name.to_owned());
            }
        }
        pipeline_lag_target |= properties["annotations"]["horizontal"][0]["value"] == 1800;
    }
    let unknown: Vec<_> = shown.difference(&emitted).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard shows metrics no code emits: {unknown:?}"
    );
    for expected in [
        "RecordsReceived",
        "RecordsFailed",
        "PipelineLagSeconds",
        "RowsLoaded",
    ] {
        assert!(shown.contains(expected), "the dashboard lacks {expected}");
    }
    assert!(
        pipeline_lag_target,
        "the lag widget shows the 30-minute target"
    );
}

/// `make sizes` holds every package under 10 MB zipped: random bytes (incompressible) just
/// under the limit pass, just over it fail, and the failure names the function.
#[test]
fn sizes_refuses_a_package_past_10_mb_zipped() {
    use std::io::Read;
    let build = std::env::temp_dir().join(format!("landfall-sizes-{}", std::process::id()));
    let sizes = |megabytes: f64| {
        let function = build.join("BigFunction");
        std::fs::create_dir_all(&function).unwrap();
        let mut bytes = Vec::new();
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .take((megabytes * 1024.0 * 1024.0) as u64)
            .read_to_end(&mut bytes)
            .unwrap();
        std::fs::write(function.join("bootstrap"), bytes).unwrap();
        Command::new("python3")
            .arg(workspace_root().join("scripts/sizes.py"))
            .arg(&build)
            .output()
            .unwrap()
    };
    let under = sizes(9.9);
    let over = sizes(10.1);
    std::fs::remove_dir_all(&build).unwrap();
    assert!(
        under.status.success(),
        "{}",
        String::from_utf8_lossy(&under.stderr)
    );
    assert!(!over.status.success());
    assert!(String::from_utf8_lossy(&over.stderr).contains("over 10 MB zipped: BigFunction"));
}

/// The template's scope before any resource exists, with `given` parameters over the defaults.
fn scope_with(template: &Template, stack: &str, given: &[(&str, &str)]) -> Scope {
    let given = given
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Scope::for_parameters(template, stack, "eu-west-2", "123456789012", &given)
        .expect("parameters and conditions resolve")
}

/// SES refuses a second CreateEmailIdentity: a user who verified the sender first (as the
/// deploy guide says), or a second stack (dev beside prod), would roll the deploy back.
#[test]
fn the_stack_creates_no_ses_identity_unless_asked() {
    let template = template();
    for identity in template.of_kind("AWS::SES::EmailIdentity") {
        let condition = identity.condition.as_deref().unwrap_or_default();
        assert!(
            !scope_with(&template, "landfall", &[]).conditions[condition],
            "{} is created by default",
            identity.logical_id
        );
    }
}

/// A new account caps a function at 3,008 MB and has 10 concurrent executions, of which
/// Lambda keeps 10 unreserved: any more fails CreateFunction or PutFunctionConcurrency and
/// rolls the whole stack back.
#[test]
fn the_defaults_fit_a_new_accounts_quotas() {
    let template = template();
    let defaults = scope_with(&template, "landfall", &[]);
    for function in template.of_kind("AWS::Serverless::Function") {
        let resolved = defaults
            .resolve(&function.properties["MemorySize"])
            .expect("MemorySize resolves from parameters");
        let memory: u64 = scalar_text(&resolved).parse().expect("a number");
        assert!(
            memory <= 3008,
            "{} asks {memory} MB by default",
            function.logical_id
        );
        let reserved = defaults
            .resolve(
                function
                    .properties
                    .get("ReservedConcurrentExecutions")
                    .unwrap_or(&Value::Null),
            )
            .expect("resolves");
        assert!(
            reserved.is_null(),
            "{} reserves {reserved} by default",
            function.logical_id
        );
    }
    // The parameters still turn both on for an account that has the quota.
    let raised = scope_with(
        &template,
        "landfall",
        &[
            ("DynamodbLoaderMemory", "3584"),
            ("WarehouseLoaderReservedConcurrency", "1"),
        ],
    );
    let loader = &template.resources["WarehouseLoaderFunction"];
    assert_eq!(
        scalar_text(
            &raised
                .resolve(&loader.properties["ReservedConcurrentExecutions"])
                .unwrap()
        ),
        "1"
    );
}

/// A provisioned cluster is chosen by its id alone: the workgroup's default must not win.
#[test]
fn a_redshift_cluster_id_wins_over_the_workgroup_default() {
    let template = template();
    let loader = &template.resources["OrdersLoaderFunction"];
    let env = |scope: &Scope, name: &str| {
        scalar_text(
            &scope
                .resolve(&loader.properties["Environment"]["Variables"][name])
                .unwrap(),
        )
    };
    let cluster = scope_with(&template, "landfall", &[("RedshiftClusterId", "analytics")]);
    assert!(!cluster.conditions["RedshiftServerless"]);
    assert_eq!(env(&cluster, "REDSHIFT_WORKGROUP"), "");
    assert_eq!(env(&cluster, "REDSHIFT_CLUSTER_ID"), "analytics");
    let serverless = scope_with(&template, "landfall", &[]);
    assert!(serverless.conditions["RedshiftServerless"]);
    assert_eq!(env(&serverless, "REDSHIFT_WORKGROUP"), "landfall");
    assert_eq!(env(&serverless, "REDSHIFT_CLUSTER_ID"), "");
}

/// P4's warehouse is PostgreSQL unless `WarehouseEngine=redshift` moves it to P3's cluster or
/// workgroup: the loader gets the Data API's target, and only then the Data API, the Redshift
/// credentials and a copy role; on PostgreSQL, only the warehouse secret.
#[test]
fn the_warehouse_engine_is_a_parameter() {
    let template = template();
    let loader = &template.resources["WarehouseLoaderFunction"];
    let env = |scope: &Scope, name: &str| {
        scalar_text(
            &scope
                .resolve(&loader.properties["Environment"]["Variables"][name])
                .unwrap(),
        )
    };
    let postgres = scope_with(&template, "landfall", &[]);
    assert_eq!(env(&postgres, "WAREHOUSE_ENGINE"), "postgres");
    assert_eq!(env(&postgres, "REDSHIFT_WORKGROUP"), "");
    assert!(!postgres.conditions["CreateWarehouseCopyRole"]);
    let redshift = scope_with(&template, "landfall", &[("WarehouseEngine", "redshift")]);
    assert_eq!(env(&redshift, "WAREHOUSE_ENGINE"), "redshift");
    assert_eq!(env(&redshift, "REDSHIFT_WORKGROUP"), "landfall");
    assert!(redshift.conditions["CreateWarehouseCopyRole"]);
    let cluster = scope_with(
        &template,
        "landfall",
        &[
            ("WarehouseEngine", "redshift"),
            ("RedshiftClusterId", "analytics"),
        ],
    );
    assert_eq!(env(&cluster, "REDSHIFT_CLUSTER_ID"), "analytics");
    assert_eq!(env(&cluster, "REDSHIFT_WORKGROUP"), "");
    // Each engine's statements sit under its own condition (the outermost `Fn::If`).
    let mut guarded = std::collections::BTreeMap::new();
    for statement in loader.properties["Policies"][0]["Statement"]
        .as_array()
        .unwrap()
    {
        if let Some([condition, chosen, ..]) = statement["Fn::If"].as_array().map(Vec::as_slice) {
            for sid in statements_of_if(chosen) {
                guarded.insert(sid, condition.as_str().unwrap().to_owned());
            }
        }
    }
    for (sid, condition) in [
        ("ReadWarehouseCredentials", "WarehouseOnPostgres"),
        ("SubmitStatements", "WarehouseOnRedshift"),
        ("FollowOwnStatements", "WarehouseOnRedshift"),
        ("ServerlessCredentials", "WarehouseOnRedshift"),
    ] {
        assert_eq!(
            guarded.get(sid).map(String::as_str),
            Some(condition),
            "{sid}"
        );
    }
}

/// The `Sid`s of a statement, or of every branch of an `Fn::If` of statements.
fn statements_of_if(value: &Value) -> Vec<String> {
    match value["Fn::If"].as_array() {
        Some(branches) => branches[1..].iter().flat_map(statements_of_if).collect(),
        None => value["Sid"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
    }
}

/// CloudWatch alarms publish to an encrypted topic only under a customer-managed key whose
/// policy lets cloudwatch.amazonaws.com use it (alias/aws/sns cannot): else every alarm is
/// silent.
#[test]
fn alarms_can_publish_to_the_encrypted_alerts_topic() {
    let template = template();
    let topic = &template.resources["AlertsTopic"];
    let key = referenced(&topic.properties["KmsMasterKeyId"])
        .map(|id| &template.resources[id])
        .expect("the topic's key is a key of this stack, not an AWS-managed alias");
    assert_eq!(key.kind, "AWS::KMS::Key");
    let statements = key.properties["KeyPolicy"]["Statement"]
        .as_array()
        .expect("a key policy");
    let for_cloudwatch = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .expect("a statement for CloudWatch");
    let actions = strings(&for_cloudwatch["Action"]);
    for needed in ["kms:Decrypt", "kms:GenerateDataKey*"] {
        assert!(actions.iter().any(|a| a == needed), "{needed}: {actions:?}");
    }
}

/// A stack delete or a replacing update must not take data, the audit trail, undelivered
/// files or credentials with it: every stateful resource says what happens to it.
#[test]
fn every_stateful_resource_has_a_deletion_policy_chosen_on_purpose() {
    let template = template();
    for resource in template.resources.values() {
        let kept = match resource.kind.as_str() {
            "AWS::S3::Bucket" | "AWS::DynamoDB::Table" | "AWS::SecretsManager::Secret" => true,
            "AWS::SQS::Queue" => resource.logical_id.ends_with("DLQ"),
            "AWS::Logs::LogGroup" | "AWS::KMS::Key" => false,
            _ => continue,
        };
        let expected = if kept { "Retain" } else { "Delete" };
        for (what, policy) in [
            ("DeletionPolicy", &resource.deletion_policy),
            ("UpdateReplacePolicy", &resource.update_replace_policy),
        ] {
            assert_eq!(
                policy.as_deref(),
                Some(expected),
                "{} {what}",
                resource.logical_id
            );
        }
    }
}

/// In the SES sandbox SES authorises every recipient as an identity too: a policy on the
/// sender's identity alone fails every email. The sender stays fixed by ses:FromAddress.
#[test]
fn email_reaches_verified_recipients_in_the_ses_sandbox_from_the_sender_only() {
    let template = template();
    let mut senders = 0;
    for (owner, statement) in all_statements(&template) {
        if !strings_or_one(&statement["Action"])
            .iter()
            .any(|a| a == "ses:SendEmail")
        {
            continue;
        }
        senders += 1;
        let resource = statement["Resource"]["Fn::Sub"]
            .as_str()
            .unwrap_or_default();
        assert!(resource.ends_with(":identity/*"), "{owner}: {resource}");
        assert_eq!(
            referenced(&statement["Condition"]["StringEquals"]["ses:FromAddress"]),
            Some("SenderEmail"),
            "{owner}"
        );
    }
    assert_eq!(
        senders, 2,
        "file-orchestrator and dynamodb-loader send email"
    );
}

/// S3 answers a read of a missing key with 403 instead of 404 unless the role may list the
/// bucket (HeadObject/GetObject, "Permissions"): a redelivery after the archive, a task that
/// died before its report, a deleted file or the first transform state would each look like
/// a permission failure. Every role that reads keys may list where it reads.
#[test]
fn every_role_that_reads_a_key_may_list_its_prefix() {
    let template = template();
    let mut reads = 0;
    for resource in template.resources.values() {
        let statements = statements_of(resource);
        let lists: Vec<(String, Option<Vec<String>>)> =
            statements.iter().filter_map(list_grant).collect();
        for (bucket, prefix) in statements.iter().flat_map(object_reads) {
            reads += 1;
            let covered = lists.iter().any(|(listed, patterns)| {
                *listed == bucket
                    && patterns.as_ref().is_none_or(|patterns| {
                        patterns.iter().any(|p| {
                            let fixed = p.trim_end_matches('*');
                            p.ends_with('*') && prefix.starts_with(fixed)
                        })
                    })
            });
            assert!(
                covered,
                "{} reads {bucket}/{prefix}* but may not s3:ListBucket that prefix",
                resource.logical_id
            );
        }
    }
    assert!(reads > 10, "found the readers: {reads}");
}

/// Athena takes only letters, digits and underscores in a database name: the stack name's
/// hyphens must not reach the Glue database.
#[test]
fn the_glue_database_name_is_valid_for_athena_under_any_stack_name() {
    let template = template();
    let database = &template.resources["OrdersGlueDatabase"];
    for stack in ["landfall", "landfall-dev", "team-a-landfall-prod"] {
        let name = scalar_text(
            &scope_with(&template, stack, &[])
                .resolve(&database.properties["DatabaseInput"]["Name"])
                .unwrap(),
        );
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{stack}: {name}"
        );
    }
}

fn strings_or_one(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        other => strings(other),
    }
}

/// The IAM statements of a function's `Policies` or a role's inline policies, both branches
/// of any `Fn::If`.
fn statements_of(resource: &Resource) -> Vec<Value> {
    fn flatten(value: &Value, out: &mut Vec<Value>) {
        match value.get("Fn::If").and_then(Value::as_array) {
            Some(branches) => branches[1..].iter().for_each(|b| flatten(b, out)),
            None if value.is_object() => out.push(value.clone()),
            None => {}
        }
    }
    let mut out = vec![];
    for policy in resource.properties["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let statements = policy
            .get("Statement")
            .or_else(|| policy.pointer("/PolicyDocument/Statement"));
        for statement in statements.and_then(Value::as_array).into_iter().flatten() {
            flatten(statement, &mut out);
        }
    }
    out
}

fn all_statements(template: &Template) -> Vec<(String, Value)> {
    template
        .resources
        .values()
        .flat_map(|r| {
            statements_of(r)
                .into_iter()
                .map(|s| (r.logical_id.clone(), s))
        })
        .collect()
}

/// `(bucket, key prefix)` of each `${Bucket.Arn}/prefix*` an s3:GetObject statement names.
fn object_reads(statement: &Value) -> Vec<(String, String)> {
    if !strings_or_one(&statement["Action"])
        .iter()
        .any(|a| a == "s3:GetObject")
    {
        return vec![];
    }
    let resources = match &statement["Resource"] {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    resources
        .iter()
        .filter_map(|r| r["Fn::Sub"].as_str())
        .filter_map(|arn| {
            let (bucket, rest) = arn.strip_prefix("${")?.split_once(".Arn}/")?;
            Some((bucket.to_owned(), rest.trim_end_matches('*').to_owned()))
        })
        .collect()
}

/// `(bucket, s3:prefix patterns or None for all)` of an s3:ListBucket statement.
fn list_grant(statement: &Value) -> Option<(String, Option<Vec<String>>)> {
    if !strings_or_one(&statement["Action"])
        .iter()
        .any(|a| a == "s3:ListBucket")
    {
        return None;
    }
    let bucket = referenced(&statement["Resource"])?.to_owned();
    let patterns = statement
        .pointer("/Condition/StringLike/s3:prefix")
        .map(strings_or_one);
    Some((bucket, patterns))
}

/// An alarm on a metric no code emits never fires: each alarm in the project's namespace
/// watches a metric the functions emit (EmailsFailed, ManifestsRejected, …).
#[test]
fn every_alarm_on_the_projects_metrics_watches_one_the_code_emits() {
    let template = template();
    let emitted = emitted_metrics();
    let ours: Vec<_> = template
        .of_kind("AWS::CloudWatch::Alarm")
        .filter(|alarm| alarm.properties["Namespace"] == "landfall")
        .collect();
    assert!(ours.len() >= 4, "{}", ours.len());
    for alarm in ours {
        let metric = alarm.properties["MetricName"].as_str().unwrap_or_default();
        assert!(
            emitted.contains(metric),
            "{} watches {metric}, which nothing emits",
            alarm.logical_id
        );
    }
}

/// CloudFormation calls each resource type's handler permissions (its registry schema) with
/// the CI deploy role: the role is generated from those schemas, and this fails when
/// template.yaml gains a type (or a schema a permission) the role does not cover.
#[test]
fn the_ci_deploy_role_covers_every_handler_permission_of_the_template() {
    run(
        ".venv-lint/bin/python",
        &["scripts/deploy-role.py", "--check"],
    );
}
