//! template.yaml is valid CloudFormation and valid SAM.

use landfall_tests::workspace_root;
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
fn cfn_lint_passes() {
    run(".venv/bin/cfn-lint", &["template.yaml"]);
}

#[test]
fn sam_validate_lint_passes() {
    run(
        ".venv-sam/bin/sam",
        &[
            "validate",
            "--lint",
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
