//! template.yaml is valid CloudFormation and valid SAM, passes the serverless rules and
//! checkov, and keeps the operating rules every function and queue must follow; the
//! workflows pass actionlint and the Dockerfile hadolint.

use landfall_devstack::template::{Resource, Template};
use landfall_tests::workspace_root;
use serde_json::Value;
use std::collections::BTreeSet;
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

#[test]
fn every_function_has_its_size_log_retention_and_alarms() {
    let template = template();
    let functions: Vec<_> = template.of_kind("AWS::Serverless::Function").collect();
    assert!(functions.len() >= 9, "{} functions", functions.len());
    for function in functions {
        let id = &function.logical_id;
        assert!(
            number(function, "Timeout").is_some() && number(function, "MemorySize").is_some(),
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
                for macro_call in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
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
