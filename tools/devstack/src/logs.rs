//! Lambda sends what a function writes to stdout and stderr to CloudWatch Logs, the group
//! `/aws/lambda/<function name>` (template.yaml creates it, with a retention). The local host
//! appends that output to a file per function; this ships each new line of those files to
//! moto's CloudWatch Logs, so what reads a function's log in AWS (make smoke) reads it here
//! the same way.

use crate::moto::json_call;
use crate::Stack;
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// PutLogEvents takes at most 10,000 events a call, 1,048,576 bytes counted as each message's
/// UTF-8 plus 26 bytes, and no event over 256 KB (CloudWatch Logs API reference,
/// PutLogEvents); Lambda cuts a longer line.
const EVENTS_PER_CALL: usize = 10_000;
const BYTES_PER_CALL: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
const MAX_EVENT: usize = 256 * 1024 - EVENT_OVERHEAD;

/// Ships, until the task is dropped, every line the stack's functions write from now on.
pub async fn ship(endpoint: String, stack: Stack, log_dir: PathBuf) {
    let stream = format!("local/{}", std::process::id());
    // binary → (group, bytes of its file already shipped)
    let mut files: BTreeMap<String, (String, u64)> = stack
        .functions
        .values()
        .map(|f| {
            let name = if f.name.is_empty() {
                &f.binary
            } else {
                &f.name
            };
            let shipped = file_len(&log_file(&log_dir, &f.binary));
            (f.binary.clone(), (format!("/aws/lambda/{name}"), shipped))
        })
        .collect();
    let mut streams_created = std::collections::BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (binary, (group, shipped)) in files.iter_mut() {
            let (lines, read) = new_lines(&log_file(&log_dir, binary), *shipped);
            if lines.is_empty() {
                *shipped += read;
                continue;
            }
            if !streams_created.contains(group) {
                if let Err(err) = create_stream(&endpoint, &stack.region, group, &stream).await {
                    tracing::warn!(group, error = %err, "could not create the log stream");
                    continue;
                }
                streams_created.insert(group.clone());
            }
            match put(&endpoint, &stack.region, group, &stream, &lines).await {
                Ok(()) => *shipped += read,
                Err(err) => tracing::warn!(group, error = %err, "could not ship log lines"),
            }
        }
    }
}

fn log_file(log_dir: &Path, binary: &str) -> PathBuf {
    log_dir.join(format!("{binary}.log"))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The complete lines after `offset`, and how many bytes they span (a line still being
/// written waits for the next poll).
fn new_lines(path: &Path, offset: u64) -> (Vec<String>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = Vec::new();
    let read = std::fs::File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut text)
    });
    if read.is_err() {
        return (Vec::new(), 0);
    }
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = String::from_utf8_lossy(&text[..complete])
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (lines, complete as u64)
}

async fn create_stream(endpoint: &str, region: &str, group: &str, stream: &str) -> Result<()> {
    let created = json_call(
        endpoint,
        region,
        "logs",
        "Logs_20140328.CreateLogStream",
        &json!({"logGroupName": group, "logStreamName": stream}),
    )
    .await;
    match created {
        Err(err) if format!("{err:#}").contains("ResourceAlreadyExistsException") => Ok(()),
        other => other.map(drop),
    }
}

async fn put(
    endpoint: &str,
    region: &str,
    group: &str,
    stream: &str,
    lines: &[String],
) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    for batch in batches(lines) {
        let events: Vec<_> = batch
            .iter()
            .map(|message| json!({"timestamp": now, "message": message}))
            .collect();
        json_call(
            endpoint,
            region,
            "logs",
            "Logs_20140328.PutLogEvents",
            &json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
        )
        .await?;
    }
    Ok(())
}

/// `lines` as PutLogEvents takes them: each at most `MAX_EVENT` bytes (cut at a character),
/// in calls within `EVENTS_PER_CALL` and `BYTES_PER_CALL`.
fn batches(lines: &[String]) -> Vec<Vec<&str>> {
    let mut batches: Vec<Vec<&str>> = Vec::new();
    let mut bytes = 0;
    for line in lines {
        let mut end = line.len().min(MAX_EVENT);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let event = &line[..end];
        let size = event.len() + EVENT_OVERHEAD;
        match batches.last_mut() {
            Some(batch) if batch.len() < EVENTS_PER_CALL && bytes + size <= BYTES_PER_CALL => {
                batch.push(event);
                bytes += size;
            }
            _ => {
                batches.push(vec![event]);
                bytes = size;
            }
        }
    }
    batches
}

/// Creates a log group the template declares (`AWS::Logs::LogGroup`), with its retention.
pub async fn create_group(
    endpoint: &str,
    region: &str,
    group: &str,
    retention_days: Option<i64>,
) -> Result<()> {
    let created = json_call(
        endpoint,
        region,
        "logs",
        "Logs_20140328.CreateLogGroup",
        &json!({"logGroupName": group}),
    )
    .await;
    match created {
        Err(err) if format!("{err:#}").contains("ResourceAlreadyExistsException") => {}
        other => drop(other?),
    }
    if let Some(days) = retention_days {
        json_call(
            endpoint,
            region,
            "logs",
            "Logs_20140328.PutRetentionPolicy",
            &json!({"logGroupName": group, "retentionInDays": days}),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_within_put_log_events_limits() {
        // One past the event count of a call.
        let many = vec!["x".to_owned(); EVENTS_PER_CALL + 1];
        let counts: Vec<usize> = batches(&many).iter().map(Vec::len).collect();
        assert_eq!(counts, [EVENTS_PER_CALL, 1]);

        // Events of 100 KB: ten fit in a call's bytes (with their overhead), the eleventh not.
        let wide = vec!["y".repeat(100 * 1024); 11];
        let split = batches(&wide);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [10, 1]);
        for batch in &split {
            let bytes: usize = batch.iter().map(|e| e.len() + EVENT_OVERHEAD).sum();
            assert!(bytes <= BYTES_PER_CALL, "{bytes}");
        }

        // A line past 256 KB is cut, at a character, to what one event may hold.
        let long = vec!["é".repeat(200 * 1024)];
        let cut = batches(&long);
        assert!(cut[0][0].len() <= MAX_EVENT && cut[0][0].len() > MAX_EVENT - 2);
        assert!(cut[0][0].chars().all(|c| c == 'é'));
    }
}
