//! An ingestion object's JSON lines read into records: one thread reads, others parse batches,
//! and every bad line is named by its table, object sequence and line.

use super::*;

/// A bad line of an ingestion object, named the way an operator finds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} sequence {sequence}, {error}")]
pub struct ObjectError {
    pub table: &'static str,
    pub sequence: u64,
    pub error: RecordError,
}

/// Lines handed to a parsing thread at a time.
const BATCH_LINES: usize = 4096;

/// One batch of lines: its first line's number and the lines, concatenated.
struct Batch {
    index: usize,
    first_line: usize,
    text: String,
}

/// The records of one ingestion object (JSON lines, already decompressed), numbered from 1.
pub fn read_lines(
    table: SourceTable,
    sequence: u64,
    lines: impl std::io::BufRead + Send,
) -> Result<Vec<(usize, Record)>, ObjectError> {
    with_lines(table, sequence, lines, |records| records.collect())
}

/// Hands an object's records, in line order, to `consume` while later lines are still being
/// read and parsed: one thread reads (and decompresses), the others parse batches of lines,
/// and the caller's thread consumes — so a transform overlaps with its own input, and memory
/// holds a few batches rather than the whole object. A bad line ends the records early and
/// fails the object naming the first bad line, whatever `consume` returned.
pub fn with_lines<T>(
    table: SourceTable,
    sequence: u64,
    mut lines: impl std::io::BufRead + Send,
    consume: impl FnOnce(&mut dyn Iterator<Item = (usize, Record)>) -> T,
) -> Result<T, ObjectError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::sync_channel;
    let fail = |line: usize, column: String, reason: String| ObjectError {
        table: table.name(),
        sequence,
        error: RecordError {
            line,
            column,
            reason,
            retryable: false,
        },
    };
    let parse_batch = |batch: &Batch| {
        let mut records = Vec::with_capacity(BATCH_LINES);
        for (offset, line) in batch.text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let number = batch.first_line + offset;
            let record = crate::row::SourceRow::parse(line)
                .and_then(|row| Record::parse(table, &row))
                .map_err(|e| fail(number, e.column, e.reason))?;
            records.push((number, record));
        }
        Ok(records)
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (to_parse, batches) = sync_channel::<Batch>(workers * 2);
    let batches = std::sync::Mutex::new(batches);
    let (to_consume, parsed) = sync_channel::<Parsed>(workers * 2);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let to_consume = to_consume.clone();
            let (batches, parse_batch) = (&batches, &parse_batch);
            scope.spawn(move || {
                let mut consumer_gone = false;
                loop {
                    let next = batches.lock().map(|b| b.recv());
                    let Ok(Ok(batch)) = next else { break };
                    // Once the consumer is gone, keep taking batches (unparsed) so the
                    // reader is never left blocked on a full channel.
                    consumer_gone = consumer_gone
                        || to_consume.send((batch.index, parse_batch(&batch))).is_err();
                }
            });
        }
        let stopping = &stop;
        // Moves `to_parse` in: the parsers end when the reader does.
        let reader = scope.spawn(move || {
            let mut number = 1;
            for index in 0.. {
                if stopping.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let mut text = String::new();
                let first_line = number;
                let mut unreadable = None;
                while number - first_line < BATCH_LINES {
                    match lines.read_line(&mut text) {
                        Ok(0) => break,
                        Ok(_) => number += 1,
                        Err(e) => {
                            unreadable = Some(fail(number, "-".into(), format!("unreadable: {e}")));
                            break;
                        }
                    }
                }
                let last = number - first_line < BATCH_LINES || unreadable.is_some();
                let batch = Batch {
                    index,
                    first_line,
                    text,
                };
                if !batch.text.is_empty() && to_parse.send(batch).is_err() {
                    return Ok(());
                }
                if let Some(err) = unreadable {
                    return Err(err);
                }
                if last {
                    return Ok(());
                }
            }
            Ok(())
        });
        drop(to_consume);
        let mut records = InOrder {
            parsed: &parsed,
            waiting: std::collections::BTreeMap::new(),
            next: 0,
            current: Vec::new().into_iter(),
            failed: None,
        };
        let consumed = consume(&mut records);
        let failed = records.failed.take();
        // Stop the reader and the parsers if `consume` finished early.
        stop.store(true, Ordering::Relaxed);
        drop(records);
        drop(parsed);
        let read = reader.join().expect("the reading thread panicked");
        match (failed, read) {
            (Some(err), _) => Err(err),
            (None, Err(err)) => Err(err),
            (None, Ok(())) => Ok(consumed),
        }
    })
}

/// A batch's records (or its first bad line), by batch index.
type Parsed = (usize, ParsedBatch);
type ParsedBatch = Result<Vec<(usize, Record)>, ObjectError>;

/// Parsed batches back in line order.
struct InOrder<'a> {
    parsed: &'a std::sync::mpsc::Receiver<Parsed>,
    waiting: std::collections::BTreeMap<usize, ParsedBatch>,
    next: usize,
    current: std::vec::IntoIter<(usize, Record)>,
    failed: Option<ObjectError>,
}

impl Iterator for InOrder<'_> {
    type Item = (usize, Record);

    fn next(&mut self) -> Option<(usize, Record)> {
        loop {
            if let Some(record) = self.current.next() {
                return Some(record);
            }
            if self.failed.is_some() {
                return None;
            }
            let batch = loop {
                if let Some(batch) = self.waiting.remove(&self.next) {
                    break batch;
                }
                match self.parsed.recv() {
                    Ok((index, batch)) => {
                        self.waiting.insert(index, batch);
                    }
                    // Every parser is done: no more batches.
                    Err(_) => return None,
                }
            };
            self.next += 1;
            match batch {
                Ok(records) => self.current = records.into_iter(),
                Err(err) => {
                    self.failed = Some(err);
                    return None;
                }
            }
        }
    }
}
