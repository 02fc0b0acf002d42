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
