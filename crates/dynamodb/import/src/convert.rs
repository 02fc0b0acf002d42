//! A landing file → gzipped DynamoDB JSON parts, streamed: the file is read once, cut on
//! record boundaries into parts of about `split_bytes` (the landing crate's splitter), and
//! each part is checked, encoded and compressed by its own task, `concurrency` at a time,
//! into its own output object. The reader runs ahead of a part that converts slower than
//! the file arrives, so that the next part can start beside it: at most `concurrency` parts
//! are in flight, each holding at most its own bytes. Memory per part besides: the current record, a compression buffer
//! of one upload part, and the part's keys for the duplicate check (16 bytes a row, sorted
//! and spilled to the temporary directory when the part ends, beyond 16 MiB in all).

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::{Stream, StreamExt};
use landfall_aws::s3_stream::ByteSink;
use landfall_dynamodb_datasets::{first_duplicate, BadInput, Dataset, Origin, Run};
use landfall_failure::{Classify, Disposition};
use landfall_landing::split::{Piece, Splitter};
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Compressed bytes handed to the output at a time (one S3 upload part).
const FLUSH_BYTES: usize = 8 * 1024 * 1024;

/// Where the parts go: S3 objects under the import prefix, or files in the benchmark.
pub trait Output: Clone + Send + Sync + 'static {
    type Part: ByteSink + 'static;
    type Error: std::error::Error + Classify + Send + Sync + 'static;
    fn create(&self, part: u32) -> impl Future<Output = Result<Self::Part, Self::Error>> + Send;
}

/// What a converted file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub rows: u64,
    pub parts: u32,
    /// Compressed bytes written, to size the wait for the import.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    BadInput(#[from] BadInput),
    #[error("reading the file")]
    Read(#[source] std::io::Error),
    /// The temporary directory is full or gone (Lambda's /tmp: size it to 16 bytes a row).
    #[error("spilling keys for the duplicate check to the temporary directory")]
    Spill(#[source] std::io::Error),
    #[error("writing part {part}")]
    Write {
        part: u32,
        disposition: Disposition,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Classify for ConvertError {
    fn disposition(&self) -> Disposition {
        match self {
            ConvertError::BadInput(_) => Disposition::Permanent,
            ConvertError::Read(_) | ConvertError::Spill(_) => Disposition::Retryable,
            ConvertError::Write { disposition, .. } => *disposition,
        }
    }
}

fn write_error<E: std::error::Error + Classify + Send + Sync + 'static>(
    part: u32,
) -> impl FnOnce(E) -> ConvertError {
    move |source| ConvertError::Write {
        part,
        disposition: source.disposition(),
        source: Box::new(source),
    }
}

/// Converts `body` (the file named `file`) into parts written to `output`, and checks that
/// no two rows share a key. On success every part is complete; on failure the earliest
/// failure in file order is returned (the first bad line), and parts already written stay
/// for the caller to discard.
pub async fn convert<S, O>(
    mut body: S,
    dataset: &Dataset,
    file: &str,
    output: &O,
    split_bytes: u64,
    concurrency: usize,
) -> Result<Converted, ConvertError>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    O: Output,
{
    let mut splitter = Splitter::new(dataset.csv.quote as u8, dataset.csv.header, split_bytes);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let in_memory = Arc::new(AtomicUsize::new(0));
    // Set by a part that failed: reading on cannot change the outcome.
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut current: Option<mpsc::UnboundedSender<Bytes>> = None;
    let mut read_error = None;
    // The first part starts at the file's first byte; each later one where the splitter says.
    let mut next_start: Option<u64> = Some(0);
    'reading: while let Some(chunk) = body.next().await {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                read_error = Some(err);
                break;
            }
        };
        for piece in splitter.feed(&chunk) {
            let bytes = match piece {
                Piece::NextPart { first_line } => {
                    current = None; // the part's task ends with the bytes it has
                    next_start = Some(first_line);
                    continue;
                }
                Piece::Data(bytes) => bytes,
            };
            if let Some(first_line) = next_start.take() {
                let permit = Arc::clone(&permits)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let index = tasks.len() as u32;
                let origin = if first_line == 0 {
                    Origin::from(file)
                } else {
                    Origin::part(file, (index + 1).to_string(), first_line)
                };
                let (sender, receiver) = mpsc::unbounded_channel();
                if first_line != 0 {
                    // Every later part starts with the header, as the checker expects.
                    let _ = sender.send(Bytes::copy_from_slice(splitter.header()));
                }
                tasks.push(spawn_part(
                    index,
                    dataset.checker(origin),
                    receiver,
                    output,
                    &in_memory,
                    &failed,
                    Some(permit),
                ));
                current = Some(sender);
            }
            let sender = current.as_ref().expect("a part is open");
            if sender.send(Bytes::copy_from_slice(bytes)).is_err() {
                break 'reading; // the part failed: its error says why
            }
        }
    }
    drop(current);
    if tasks.is_empty() {
        // An empty file: one part, so that the checker says what is wrong with it.
        let (_, receiver) = mpsc::unbounded_channel();
        let checker = dataset.checker(file);
        tasks.push(spawn_part(
            0, checker, receiver, output, &in_memory, &failed, None,
        ));
    }
    let (converted, runs) = joined(tasks).await?;
    if let Some(err) = read_error {
        return Err(ConvertError::Read(err));
    }
    no_key_twice(&runs, dataset, file)?;
    Ok(converted)
}

/// Every part's outcome, in order: the file's totals and each part's keys, or the first
/// part's error.
async fn joined(tasks: Vec<Part>) -> Result<(Converted, Vec<Run>), ConvertError> {
    let mut converted = Converted {
        rows: 0,
        parts: tasks.len() as u32,
        bytes: 0,
    };
    let mut runs = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok((rows, bytes, keys))) => {
                converted.rows += rows;
                converted.bytes += bytes;
                runs.push(keys);
            }
            Ok(Err(err)) => {
                first_error.get_or_insert(err);
            }
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok((converted, runs)),
    }
}

/// Refuses the file when two of its rows share a key, across all parts: DynamoDB would keep
/// one of them.
fn no_key_twice(runs: &[Run], dataset: &Dataset, file: &str) -> Result<(), ConvertError> {
    match first_duplicate(runs).map_err(ConvertError::Spill)? {
        None => Ok(()),
        Some(duplicate) => Err(ConvertError::BadInput(BadInput {
            file: file.to_owned(),
            line: duplicate.second_line,
            part: None,
            column: None,
            field: None,
            reason: format!(
                "the same key ({}) as line {}: DynamoDB would keep only one of the two rows",
                dataset.key_names().join(", "),
                duplicate.first_line
            ),
        })),
    }
}

type Checker =
    landfall_dynamodb_datasets::CsvChecker<landfall_dynamodb_datasets::DynamoJsonEncoder>;

type Part = tokio::task::JoinHandle<Result<(u64, u64, Run), ConvertError>>;

/// Starts part `index`'s task; it gives its permit back and says whether it failed when done.
fn spawn_part<O: Output>(
    index: u32,
    checker: Checker,
    receiver: mpsc::UnboundedReceiver<Bytes>,
    output: &O,
    in_memory: &Arc<AtomicUsize>,
    failed: &Arc<AtomicBool>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Part {
    let output = output.clone();
    let in_memory = Arc::clone(in_memory);
    let failed = Arc::clone(failed);
    tokio::spawn(async move {
        let converted = convert_part(index, checker, receiver, &output, &in_memory).await;
        if converted.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        drop(permit);
        converted
    })
}

/// One part: checks and encodes what arrives, compresses it, writes it out.
async fn convert_part<O: Output>(
    index: u32,
    mut checker: Checker,
    mut receiver: mpsc::UnboundedReceiver<Bytes>,
    output: &O,
    in_memory: &AtomicUsize,
) -> Result<(u64, u64, Run), ConvertError> {
    let mut writer = output.create(index).await.map_err(write_error(index))?;
    let mut gzip = GzEncoder::new(
        Vec::with_capacity(FLUSH_BYTES + 64 * 1024),
        Compression::fast(),
    );
    let mut written = 0u64;
    let outcome = async {
        while let Some(chunk) = receiver.recv().await {
            let encoded = checker.feed(&chunk)?;
            compress(&mut gzip, &encoded, index)?;
            if gzip.get_ref().len() >= FLUSH_BYTES {
                let full =
                    std::mem::replace(gzip.get_mut(), Vec::with_capacity(FLUSH_BYTES + 64 * 1024));
                written += full.len() as u64;
                writer.write(&full).await.map_err(write_error(index))?;
            }
        }
        let encoded = checker.finish()?;
        compress(&mut gzip, &encoded, index)?;
        Ok::<_, ConvertError>(())
    }
    .await;
    if let Err(err) = outcome {
        receiver.close();
        writer.abort().await;
        return Err(err);
    }
    let rest = gzip.finish().map_err(|e| ConvertError::Write {
        part: index,
        disposition: Disposition::Permanent,
        source: Box::new(e),
    })?;
    written += rest.len() as u64;
    writer.write(&rest).await.map_err(write_error(index))?;
    writer.finish().await.map_err(write_error(index))?;
    let rows = checker.rows();
    let keys = checker
        .into_encoder()
        .into_keys()
        .into_run(in_memory)
        .map_err(ConvertError::Spill)?;
    Ok((rows, written, keys))
}

/// Compression into memory cannot fail short of running out of it.
fn compress(gzip: &mut GzEncoder<Vec<u8>>, bytes: &[u8], part: u32) -> Result<(), ConvertError> {
    gzip.write_all(bytes).map_err(|e| ConvertError::Write {
        part,
        disposition: Disposition::Retryable,
        source: Box::new(e),
    })
}
