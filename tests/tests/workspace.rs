//! The workspace's shape, as ARCHITECTURE.md states it, checked over `cargo metadata`:
//! dependencies point inward (functions → pipeline crates → platform), pure crates link
//! neither the Lambda runtime nor the AWS SDK, library crates link no Lambda runtime,
//! task binaries do not link the parent side of ECS, platform source names no pipeline, and
//! every function has sample events.

// Reading cargo's JSON: a missing field is a failed test.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layer {
    /// `crates/platform/*`: what every pipeline uses; names no pipeline.
    Platform,
    /// `crates/<pipeline>/*`: one pipeline's own logic.
    Pipeline(String),
    /// `functions/*`, `tasks/*`: thin adapters from events to the crates.
    Function,
    /// `tools/*`, `tests`, `bench`: never deployed.
    Support,
}

struct Workspace {
    root: PathBuf,
    /// name → (layer, manifest directory)
    members: BTreeMap<String, (Layer, PathBuf)>,
    /// name → names of workspace members it depends on (normal and build dependencies)
    depends_on: BTreeMap<String, BTreeSet<String>>,
    /// name → every package in its resolved normal-dependency closure
    closure: BTreeMap<String, BTreeSet<String>>,
}

/// This machine's target: other platforms' dependencies are not downloaded, so not read.
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

fn metadata() -> &'static Workspace {
    static WORKSPACE: std::sync::OnceLock<Workspace> = std::sync::OnceLock::new();
    WORKSPACE.get_or_init(read_metadata)
}

fn read_metadata() -> Workspace {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = PathBuf::from(meta["workspace_root"].as_str().unwrap());
    let member_ids: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut names_by_id = BTreeMap::new();
    let mut members = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        let id = package["id"].as_str().unwrap();
        let name = package["name"].as_str().unwrap().to_owned();
        names_by_id.insert(id.to_owned(), name.clone());
        if member_ids.contains(id) {
            let dir = Path::new(package["manifest_path"].as_str().unwrap())
                .parent()
                .unwrap()
                .to_path_buf();
            members.insert(name, (layer_of(&root, &dir), dir));
        }
    }
    let mut depends_on = BTreeMap::new();
    let mut direct: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let name = names_by_id[node["id"].as_str().unwrap()].clone();
        let mut normal = Vec::new();
        let mut inner = BTreeSet::new();
        for dep in node["deps"].as_array().unwrap() {
            let dep_name = names_by_id[dep["pkg"].as_str().unwrap()].clone();
            let kinds: Vec<&str> = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kind"].as_str().unwrap_or("normal"))
                .collect();
            if kinds.iter().any(|k| *k != "dev") {
                if members.contains_key(&dep_name) {
                    inner.insert(dep_name.clone());
                }
                if kinds.contains(&"normal") {
                    normal.push(dep_name);
                }
            }
        }
        if members.contains_key(&name) {
            depends_on.insert(name.clone(), inner);
        }
        direct.insert(name, normal);
    }
    let closure = members
        .keys()
        .map(|name| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![name.clone()];
            while let Some(next) = stack.pop() {
                for dep in direct.get(&next).into_iter().flatten() {
                    if seen.insert(dep.clone()) {
                        stack.push(dep.clone());
                    }
                }
            }
            (name.clone(), seen)
        })
        .collect();
    Workspace {
        root,
        members,
        depends_on,
        closure,
    }
}

fn layer_of(root: &Path, dir: &Path) -> Layer {
    let relative = dir.strip_prefix(root).unwrap();
    let parts: Vec<&str> = relative.iter().map(|p| p.to_str().unwrap()).collect();
    match parts.as_slice() {
        ["crates", "platform", _] => Layer::Platform,
        ["crates", pipeline, _] => Layer::Pipeline((*pipeline).to_owned()),
        ["functions", _] | ["tasks", _] => Layer::Function,
        ["tools", _] | ["tests"] | ["bench"] => Layer::Support,
        other => panic!("{other:?}: a member outside the layout ARCHITECTURE.md describes"),
    }
}

#[test]
fn dependencies_point_inward() {
    let ws = metadata();
    let mut wrong = Vec::new();
    for (name, deps) in &ws.depends_on {
        let layer = &ws.members[name].0;
        for dep in deps {
            let dep_layer = &ws.members[dep].0;
            let allowed = match (layer, dep_layer) {
                (_, Layer::Platform) => true,
                (Layer::Platform, _) => false,
                (Layer::Pipeline(a), Layer::Pipeline(b)) => a == b,
                (Layer::Function, Layer::Pipeline(_)) => true,
                (Layer::Support, Layer::Support | Layer::Pipeline(_)) => true,
                (_, Layer::Function) => false,
                _ => false,
            };
            if !allowed {
                wrong.push(format!("{name} ({layer:?}) → {dep} ({dep_layer:?})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies pointing outward:\n{}",
        wrong.join("\n")
    );
    // The rule must see the real layout: every layer is populated.
    let layers: BTreeSet<String> = ws.members.values().map(|(l, _)| format!("{l:?}")).collect();
    for expected in ["Platform", "Function", "Support"] {
        assert!(layers.contains(expected), "{layers:?}");
    }
    assert!(
        layers.iter().filter(|l| l.starts_with("Pipeline")).count() >= 3,
        "{layers:?}"
    );
}

#[test]
fn pure_crates_link_neither_the_lambda_runtime_nor_the_sdk() {
    let ws = metadata();
    for pure in [
        "landfall-failure",
        "landfall-env",
        "landfall-ecs-report",
        "landfall-sql-ident",
        "landfall-sql-script",
        "landfall-s3-events",
        "landfall-csv-check",
        "landfall-mysql-datasets",
        "landfall-dynamodb-datasets",
        "landfall-totesys-contract",
        "landfall-totesys-star",
    ] {
        let linked: Vec<&String> = ws.closure[pure]
            .iter()
            .filter(|p| {
                p.as_str() == "lambda_runtime"
                    || p.starts_with("aws-sdk-")
                    || p.as_str() == "aws-config"
                    || p.as_str() == "landfall-runtime"
            })
            .collect();
        assert!(linked.is_empty(), "{pure} links {linked:?}");
    }
    // The check can fail: a crate that talks to AWS does link them.
    assert!(ws.closure["landfall-landing"].contains("aws-sdk-s3"));
}

/// Only functions and tasks link the Lambda runtime and the telemetry stack: a library
/// crate reaches its deadline and failure types through `landfall-failure`, its config
/// through `landfall-env`. `landfall-runtime` is the functions' adapter to the runtime and
/// `landfall-ecs-task` the tasks'.
#[test]
fn library_crates_link_neither_the_lambda_runtime_nor_the_telemetry_stack() {
    let ws = metadata();
    let adapters = ["landfall-runtime", "landfall-ecs-task"];
    let mut libraries = 0;
    for (name, (layer, _)) in &ws.members {
        if !matches!(layer, Layer::Platform | Layer::Pipeline(_))
            || adapters.contains(&name.as_str())
        {
            continue;
        }
        libraries += 1;
        let linked: Vec<&String> = ws.closure[name]
            .iter()
            .filter(|p| {
                ["lambda_runtime", "landfall-runtime", "landfall-ecs-task"].contains(&p.as_str())
                    || p.as_str() == "metrics_cloudwatch_embedded"
                    || p.as_str() == "tracing-subscriber"
            })
            .collect();
        assert!(linked.is_empty(), "{name} links {linked:?}");
    }
    assert!(libraries > 20, "{libraries} library crates found");
    // The check can fail: a function does link them.
    assert!(ws.closure["db-extract"].contains("lambda_runtime"));
}

/// What a binary built on its own (`cargo lambda build -p <package>`) links: features
/// unified for that package alone, as its release build has them, not the workspace's.
fn linked_alone(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--offline", "--target", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn task_binaries_do_not_link_the_parent_side_of_ecs() {
    for task in ["db-init", "mysql-loader"] {
        let linked = linked_alone(task);
        assert!(
            linked.contains("landfall-ecs-task"),
            "{task} runs as a task"
        );
        for parent in ["landfall-ecs-run", "aws-sdk-ecs"] {
            assert!(!linked.contains(parent), "{task} links {parent}");
        }
    }
    let orchestrator = linked_alone("file-orchestrator");
    assert!(orchestrator.contains("landfall-ecs-run") && orchestrator.contains("aws-sdk-ecs"));
}

#[test]
fn every_function_has_sample_events_that_are_json() {
    let ws = metadata();
    let functions: Vec<&String> = ws
        .members
        .iter()
        .filter(|(_, (layer, _))| *layer == Layer::Function)
        .map(|(name, _)| name)
        .collect();
    assert!(functions.len() >= 8, "{functions:?}");
    for function in functions {
        let dir = ws.root.join("events").join(function);
        let events: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        assert!(!events.is_empty(), "no sample event in {}", dir.display());
        for event in events {
            let text = std::fs::read_to_string(&event).unwrap();
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", event.display()));
        }
    }
}

/// The words that name a pipeline: its crates (either spelling), its functions and tasks, and
/// "P1"…"P5". The platform's code and docs use none of them (a platform crate that routed
/// `mysql/init/` or named db-extract would be one pipeline's code in every pipeline's crate).
fn pipeline_words(ws: &Workspace) -> BTreeSet<String> {
    let mut words: BTreeSet<String> = (1..=5).map(|n| format!("P{n}")).collect();
    for (name, (layer, _)) in &ws.members {
        if matches!(layer, Layer::Pipeline(_) | Layer::Function) {
            words.insert(name.clone());
            words.insert(name.replace('-', "_"));
        }
    }
    words
}

/// Whether `text` holds `word` with no identifier character on either side.
fn names_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(ident)
            && !text[at + word.len()..].chars().next().is_some_and(ident)
    })
}

#[test]
fn platform_source_names_no_pipeline() {
    let ws = metadata();
    let words = pipeline_words(ws);
    let mut named = Vec::new();
    for (name, (layer, dir)) in &ws.members {
        if *layer != Layer::Platform {
            continue;
        }
        let mut files = vec![dir.join("Cargo.toml")];
        let mut pending = vec![dir.join("src")];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path.file_name().is_some_and(|f| f != "tests.rs")
                {
                    files.push(path);
                }
            }
        }
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may take a pipeline's file as their example; the code may not.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for word in &words {
                if names_word(code, word) {
                    named.push(format!("{name}: {} names {word}", path.display()));
                }
            }
        }
    }
    assert!(
        named.is_empty(),
        "platform source names a pipeline:\n{}",
        named.join("\n")
    );
    assert!(names_word("the db-extract role", "db-extract"));
    assert!(!names_word("db-extract-role", "db-extract"));
}
