//! A workspace binary as a local stand-in for a Lambda instance or an ECS task: a clean
//! environment (only the host's PATH, HOME and log settings, then the stack's variables),
//! no stdin, output appended to a log file of its own.

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

pub struct LocalProcess {
    pub command: Command,
    pub binary: PathBuf,
    pub log: PathBuf,
}

pub fn local_process(
    binaries: &Path,
    name: &str,
    log_dir: &Path,
    log_name: &str,
    base_env: &BTreeMap<String, String>,
) -> Result<LocalProcess> {
    let binary = binaries.join(name);
    if !binary.exists() {
        return Err(anyhow!(
            "{} is not built: run `cargo build -p {name}` (make binaries does every binary)",
            binary.display()
        ));
    }
    std::fs::create_dir_all(log_dir)?;
    let log_path = log_dir.join(format!("{log_name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut command = Command::new(&binary);
    command
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| {
            k == "PATH" || k == "HOME" || k == "RUST_LOG" || k == "RUST_BACKTRACE"
        }))
        .envs(base_env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(LocalProcess {
        command,
        binary,
        log: log_path,
    })
}
