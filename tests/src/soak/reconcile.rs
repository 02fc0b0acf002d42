//! The checker: every target read back and compared with the ledger, after the drain.
//! - lost: an input row (file row, totesys row version, website change) not in its target;
//! - duplicated: one that is there more than once (or a file archived more often than sent);
//! - stray: what no good input explains (a bad file's row, a row left in a stage table, an
//!   out-of-date dimension row);
//! - every dead letter names a bad file, and every bad file has one.

use crate::soak::faults::Injected;
use crate::soak::files::FILE_PIPELINES;
use crate::soak::rig::{Rig, DEAD_LETTER_QUEUES};
use crate::soak::workload::{archived_versions, Input, Ledger};
use crate::star::{expected, from_warehouse};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::Ordering;

#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub load_seconds: f64,
    pub drain_seconds: f64,
    pub total_seconds: f64,
    /// What the drain waited on, each time that changed (seconds into the drain).
    pub drain_waited_on: Vec<(f64, String)>,
    pub faults: Injected,
    /// Uploads of landing files (P1–P3), good and bad.
    pub files: u64,
    /// Rows checked in their targets (P1–P3 file rows, P4 warehouse rows).
    pub rows: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub stray: u64,
    pub dlq_expected: u64,
    /// Bad files found in a DLQ, plus dead letters no bad file explains.
    pub dlq_actual: u64,
    pub dlq_messages: u64,
    pub p95_file_s: f64,
    pub p4_lag_max_s: f64,
    pub secret_hits: u64,
    /// Per pipeline: what was put in and what the target holds.
    pub lines: Vec<String>,
    /// Each broken promise, readably.
    pub problems: Vec<String>,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Adds one target's lost, duplicated and stray, and names them as a problem if any.
    pub(crate) fn tally(&mut self, what: &str, lost: u64, duplicated: u64, stray: u64) {
        self.lost += lost;
        self.duplicated += duplicated;
        self.stray += stray;
        if lost + duplicated + stray > 0 {
            self.problems.push(format!(
                "{what}: lost={lost} duplicated={duplicated} stray={stray}"
            ));
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak: seed {} — {:.0} s of load, drained in {:.0} s, {:.0} s in all",
            self.seed, self.load_seconds, self.drain_seconds, self.total_seconds
        )?;
        for line in &self.lines {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "  the drain waited on:")?;
        for (at, outstanding) in &self.drain_waited_on {
            let outstanding = if outstanding.is_empty() {
                "nothing"
            } else {
                outstanding
            };
            writeln!(f, "    {at:>5.0} s  {outstanding}")?;
        }
        writeln!(
            f,
            "  faults (each followed by recovery; the result below held through all):"
        )?;
        for (fault, count) in &self.faults.counts {
            writeln!(f, "    {:<32} {count}", fault.name())?;
        }
        let killed: Vec<String> = self
            .faults
            .killed
            .iter()
            .map(|(name, n)| format!("{name} ×{n}"))
            .collect();
        writeln!(f, "    killed: {}", killed.join(", "))?;
        writeln!(
            f,
            "    moto requests refused: {}",
            self.faults.refused_requests
        )?;
        for problem in &self.problems {
            writeln!(f, "  PROBLEM {problem}")?;
        }
        write!(
            f,
            "soak: files={} rows={} lost={} duplicated={} stray={} dlq_expected={} dlq_actual={} secret_hits={} p95_file_s={:.1} p4_lag_max_s={:.1}",
            self.files,
            self.rows,
            self.lost,
            self.duplicated,
            self.stray,
            self.dlq_expected,
            self.dlq_actual,
            self.secret_hits,
            self.p95_file_s,
            self.p4_lag_max_s
        )
    }
}

pub async fn check(rig: &Rig, ledger: &Ledger) -> Result<Report> {
    ledger.observe(rig).await?;
    let inputs = ledger.inputs();
    let mut report = Report {
        files: inputs.iter().map(|i| u64::from(i.uploads)).sum(),
        ..Report::default()
    };
    for pipeline in FILE_PIPELINES {
        let its: Vec<&Input> = inputs.iter().filter(|i| i.of(pipeline)).collect();
        pipeline.reconcile(rig, &its, &mut report).await?;
    }
    archives(rig, &inputs, &mut report).await?;
    warehouse(rig, &mut report).await?;
    website(rig, ledger, &mut report).await?;
    dead_letters(rig, &inputs, &mut report).await?;
    timing(ledger, &inputs, &mut report);
    let leaks = rig.stack.leaked_secrets();
    report.secret_hits = leaks.len() as u64;
    report.problems.extend(leaks.into_iter().take(5));
    report.lines.push(format!(
        "deliveries {} (whole-batch failures {}), succeeded messages redelivered {}, totesys churns {}",
        ledger.deliveries.load(Ordering::Relaxed),
        ledger.function_errors.load(Ordering::Relaxed),
        ledger.redelivered.load(Ordering::Relaxed),
        ledger.churns.load(Ordering::Relaxed),
    ));
    Ok(report)
}

/// Row numbers every good input of `pipeline` must have put in its target.
pub(crate) fn expected_rows<'a>(inputs: impl Iterator<Item = &'a Input>) -> BTreeSet<u32> {
    inputs
        .filter(|i| !i.bad)
        .flat_map(|i| i.rows.clone())
        .collect()
}

/// lost, duplicated, stray of `found` (row number or an unexplained name → count) against
/// `want`.
pub(crate) fn compare(
    want: &BTreeSet<u32>,
    found: &BTreeMap<Result<u32, String>, u64>,
) -> (u64, u64, u64) {
    let lost = want
        .iter()
        .filter(|n| !found.contains_key(&Ok(**n)))
        .count() as u64;
    let duplicated = found.values().map(|c| c.saturating_sub(1)).sum();
    let stray = found
        .iter()
        .filter(|(k, _)| k.as_ref().map_or(true, |n| !want.contains(n)))
        .map(|(_, c)| *c)
        .sum();
    (lost, duplicated, stray)
}

/// `Item 17` → 17; anything else is kept whole, to be reported as stray.
pub(crate) fn numbered(text: &str, prefix: &str) -> Result<u32, String> {
    text.strip_prefix(prefix)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| text.to_owned())
}

/// The files of pipelines that archive: archived once per upload (bad ones not at all), and
/// gone from landing.
async fn archives(rig: &Rig, inputs: &[Input], report: &mut Report) -> Result<()> {
    let archived = archived_versions(rig).await?;
    let landing = rig.stack.resource("LandingBucket");
    let left: BTreeSet<String> = rig.stack.keys(&landing, "").await?.into_iter().collect();
    let (mut lost, mut duplicated, mut stray) = (0, 0, 0);
    for input in inputs.iter().filter(|i| i.pipeline.soak().archives) {
        let copies = archived.get(&input.name).copied().unwrap_or(0);
        let want = if input.bad { 0 } else { input.uploads };
        match copies.cmp(&want) {
            std::cmp::Ordering::Less => lost += u64::from(want - copies),
            std::cmp::Ordering::Greater if input.bad => stray += u64::from(copies),
            std::cmp::Ordering::Greater => duplicated += u64::from(copies - want),
            std::cmp::Ordering::Equal => {}
        }
        if !input.bad && left.contains(&input.key) {
            report
                .problems
                .push(format!("{} is still in the landing bucket", input.key));
        }
    }
    report.lines.push(format!(
        "archive       versions {:>4}  (one per good upload of a pipeline that archives)",
        archived.values().sum::<u32>()
    ));
    report.tally("archived files", lost, duplicated, stray);
    Ok(())
}

/// The warehouse against SQL on totesys written independently of the pipeline
/// (`star::expected`): dimensions exactly the latest versions; facts: every current source
/// version once (older versions, extracted between changes, stay as history); dim_date:
/// every referenced day once.
async fn warehouse(rig: &Rig, report: &mut Report) -> Result<()> {
    let want = expected(&mut rig.totesys.conn().await?, None).await?;
    let got = from_warehouse(&mut rig.warehouse.conn().await?).await?;
    let (mut lost, mut duplicated, mut stray, mut rows) = (0, 0, 0, 0);
    for (table, want_rows) in &want {
        let mut counts: BTreeMap<&Vec<String>, u64> = BTreeMap::new();
        for row in got.get(table).into_iter().flatten() {
            *counts.entry(row).or_insert(0) += 1;
        }
        rows += want_rows.len() as u64;
        lost += want_rows.iter().filter(|r| !counts.contains_key(r)).count() as u64;
        duplicated += counts.values().map(|c| c - 1).sum::<u64>();
        if table.starts_with("dim_") && table != "dim_date" {
            let wanted: BTreeSet<&Vec<String>> = want_rows.iter().collect();
            stray += counts.keys().filter(|r| !wanted.contains(*r)).count() as u64;
        }
    }
    report.rows += rows;
    report.lines.push(format!(
        "P4 warehouse  tables {:>3}  rows {rows:>7}  (against SQL on totesys)",
        want.len()
    ));
    report.tally("P4 warehouse", lost, duplicated, stray);
    Ok(())
}

/// Every page written is covered by an invalidation path (its own, or a wildcard above it).
async fn website(rig: &Rig, ledger: &Ledger, report: &mut Report) -> Result<()> {
    let cloudfront = rig.stack.cloudfront();
    let distribution = rig.stack.resource("WebsiteDistribution");
    let mut paths = BTreeSet::new();
    let mut marker = None;
    let mut invalidations = 0;
    loop {
        let listed = cloudfront
            .list_invalidations()
            .distribution_id(&distribution)
            .set_marker(marker.clone())
            .max_items(1000)
            .send()
            .await?;
        let list = listed.invalidation_list();
        for summary in list.map(|l| l.items()).unwrap_or_default() {
            invalidations += 1;
            let got = cloudfront
                .get_invalidation()
                .distribution_id(&distribution)
                .id(summary.id())
                .send()
                .await?;
            let batch = got.invalidation().and_then(|i| i.invalidation_batch());
            if let Some(items) = batch.and_then(|b| b.paths()).map(|p| p.items()) {
                paths.extend(items.iter().cloned());
            }
        }
        match list.and_then(|l| l.next_marker()) {
            Some(next) if list.is_some_and(|l| l.is_truncated()) => marker = Some(next.to_owned()),
            _ => break,
        }
    }
    let pages = ledger
        .pages
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let covered = |page: &String| {
        let path = format!("/{page}");
        paths.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => *p == path,
        })
    };
    let lost = pages.iter().filter(|p| !covered(p)).count() as u64;
    report.lines.push(format!(
        "P5 website    pages {:>4}  invalidations {invalidations}  paths {}",
        pages.len(),
        paths.len()
    ));
    report.tally("P5 invalidations", lost, 0, 0);
    Ok(())
}

/// Every message of every DLQ, matched to the bad file it names.
async fn dead_letters(rig: &Rig, inputs: &[Input], report: &mut Report) -> Result<()> {
    let sqs = rig.stack.sqs();
    let bad: Vec<&Input> = inputs.iter().filter(|i| i.bad).collect();
    let mut named = BTreeSet::new();
    let mut unexplained = Vec::new();
    for dlq in DEAD_LETTER_QUEUES {
        let url = rig.stack.resource(dlq);
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .message_attribute_names("All")
                .send()
                .await?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                report.dlq_messages += 1;
                let body = message.body().unwrap_or_default();
                match bad.iter().find(|i| body.contains(&i.name)) {
                    Some(input) => {
                        named.insert(input.name.clone());
                    }
                    None => {
                        let reason = message
                            .message_attributes()
                            .and_then(|a| a.get("landfall-error"))
                            .and_then(|v| v.string_value())
                            .unwrap_or(
                                "(no landfall-error: dead-lettered by SQS after the receives)",
                            );
                        unexplained.push(format!("{dlq}: {reason} — {}", truncate(body, 300)))
                    }
                }
            }
        }
    }
    report.dlq_expected = bad.len() as u64;
    report.dlq_actual = named.len() as u64 + unexplained.len() as u64;
    for input in &bad {
        if !named.contains(&input.name) {
            report
                .problems
                .push(format!("the bad file {} reached no DLQ", input.key));
        }
    }
    for message in unexplained {
        report
            .problems
            .push(format!("a dead letter no bad file explains: {message}"));
    }
    report.lines.push(format!(
        "dead letters  messages {:>4}  bad files {:>3}  named by them {}",
        report.dlq_messages,
        bad.len(),
        named.len()
    ));
    Ok(())
}

/// p95 of upload → target complete over the good files, and P4's worst lag; a good file
/// never complete is a problem.
fn timing(ledger: &Ledger, inputs: &[Input], report: &mut Report) {
    let mut seconds: Vec<f64> = Vec::new();
    for input in inputs.iter().filter(|i| !i.bad) {
        match input.done {
            Some(done) => seconds.push((done - input.uploaded).as_secs_f64()),
            None => report
                .problems
                .push(format!("{} never showed complete in its target", input.key)),
        }
    }
    seconds.sort_by(f64::total_cmp);
    if !seconds.is_empty() {
        let at = ((seconds.len() as f64) * 0.95).ceil() as usize;
        report.p95_file_s = seconds[at.clamp(1, seconds.len()) - 1];
    }
    report.p4_lag_max_s = ledger
        .lags
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .copied()
        .fold(0.0, f64::max);
}

pub(crate) fn found_total(found: &BTreeMap<Result<u32, String>, u64>) -> u64 {
    found.values().sum()
}

fn truncate(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
