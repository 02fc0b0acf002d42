//! `LOAD DATA LOCAL INFILE` from a checked stream: the statement, the stream the
//! connection's infile handler serves, and the server's account of what it read.

use super::*;

/// Where a `LOAD DATA` writes.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    /// The dataset's table, rows with an existing key replaced.
    Table(&'a Ident),
    /// A stage table, each row tagged with its batch and part.
    Stage(StagePart<'a>),
}

/// One part of a file in a stage table.
#[derive(Clone, Copy)]
pub(crate) struct StagePart<'a> {
    pub(crate) table: &'a Ident,
    pub(crate) batch: &'a BatchId,
    pub(crate) part: u32,
}

/// Stages one part inside the caller's transaction; returns its rows once the stage table
/// holds exactly the checker's count of them.
pub(crate) async fn stage_checked(
    conn: &mut Conn,
    dataset: &Dataset,
    stage: StagePart<'_>,
    origin: Origin,
    body: BoxStream<'static, std::io::Result<Bytes>>,
) -> Result<u64, MysqlError> {
    let StagePart { table, batch, part } = stage;
    let (load, verdict) = load_statement(conn, dataset, Target::Stage(stage), origin, body);
    let rows = load_checked(conn, &load, &verdict).await?;
    let staged: Option<u64> = conn
        .exec_first(
            format!(
                "SELECT COUNT(*) FROM {} WHERE landfall_batch = ? AND landfall_part = ?",
                table.quoted()
            ),
            (batch.as_str(), part),
        )
        .await?;
    let staged = staged.unwrap_or(0);
    if staged != rows {
        return Err(MysqlError::CountMismatch {
            expected: rows,
            staged,
        });
    }
    Ok(rows)
}

/// Runs `load`; returns the file's rows as the checker counted them, or why nothing of it
/// may be kept: the checker's first bad record, the server's warnings, a stream cut short.
pub(crate) async fn load_checked(
    conn: &mut Conn,
    load: &str,
    verdict: &Mutex<Verdict>,
) -> Result<u64, MysqlError> {
    let loaded = conn.query_drop(load).await;
    let verdict = verdict.lock().expect("not poisoned").clone();
    if let Some(bad) = verdict.bad_input {
        return Err(MysqlError::BadInput(bad));
    }
    loaded?;
    if conn.get_warnings() > 0 {
        let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS LIMIT 3").await?;
        let text: Vec<String> = warnings
            .iter()
            .map(|(level, code, msg)| format!("{level} {code}: {msg}"))
            .collect();
        // MySQL counts rows from the start of what it was sent: say which file that was.
        let within = match &verdict.origin.part {
            Some((part, first_line)) => {
                format!(" (rows counted in part {part}, which starts at line {first_line})")
            }
            None => String::new(),
        };
        return Err(MysqlError::Warnings(format!(
            "{}{within}: {}",
            verdict.origin.file,
            text.join("; ")
        )));
    }
    verdict.rows.ok_or(MysqlError::Incomplete)
}

/// The server's account of a `LOAD DATA`: "Records: 3  Deleted: 0  Skipped: 0  Warnings: 0".
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadInfo {
    pub(crate) records: u64,
    pub(crate) deleted: u64,
    pub(crate) skipped: u64,
}

impl LoadInfo {
    /// Missing figures read as 0, so an unreadable answer fails the count check.
    pub(crate) fn parse(info: &str) -> LoadInfo {
        let mut read = LoadInfo::default();
        let mut words = info.split_whitespace();
        while let (Some(name), Some(value)) = (words.next(), words.next()) {
            let value = value.parse().unwrap_or(0);
            match name {
                "Records:" => read.records = value,
                "Deleted:" => read.deleted = value,
                "Skipped:" => read.skipped = value,
                _ => {}
            }
        }
        read
    }
}

/// Installs the checked stream as the connection's one LOCAL INFILE source and returns
/// the `LOAD DATA` statement for it, with the verdict the checker will fill in. Set just
/// before the statement runs: a handler left unused would stay on the pooled connection.
pub(crate) fn load_statement(
    conn: &mut Conn,
    dataset: &Dataset,
    into: Target<'_>,
    origin: Origin,
    body: BoxStream<'static, std::io::Result<Bytes>>,
) -> (String, Arc<Mutex<Verdict>>) {
    let verdict = Arc::new(Mutex::new(Verdict {
        origin: origin.clone(),
        rows: None,
        bad_input: None,
    }));
    let checked = checked_stream(body, dataset.checker(origin), verdict.clone());
    // The handler future must be Sync; the stream inside is only Send.
    let cell = Mutex::new(Some(checked));
    conn.set_infile_handler(async move {
        Ok(cell
            .lock()
            .expect("not poisoned")
            .take()
            .expect("used once"))
    });
    let columns: Vec<String> = dataset.columns.iter().map(|c| c.name.quoted()).collect();
    let columns = columns.join(", ");
    let load = match into {
        Target::Table(table) => format!(
            "LOAD DATA LOCAL INFILE 'landfall-stream' REPLACE INTO TABLE {} CHARACTER SET utf8mb4 {LOAD_DATA_FORMAT} ({columns})",
            table.quoted(),
        ),
        Target::Stage(StagePart { table, batch, part }) => format!(
            "LOAD DATA LOCAL INFILE 'landfall-stream' INTO TABLE {} CHARACTER SET utf8mb4 {LOAD_DATA_FORMAT} ({columns}) SET landfall_batch = '{}', landfall_part = {part}",
            table.quoted(),
            batch.as_str(),
        ),
    };
    (load, verdict)
}

/// What the checker concluded about the stream it saw.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    origin: Origin,
    /// Data rows, once the whole file passed.
    rows: Option<u64>,
    bad_input: Option<BadInput>,
}

/// Checked chunks waiting for the database: the checker runs ahead on its own task (the
/// other core) by at most this many S3 chunks, so memory stays flat whatever the file.
pub(crate) const CHECKED_CHUNKS_AHEAD: usize = 2;

/// Passes `body` through `checker` on a task of its own, so checking overlaps the server's
/// work instead of adding to it; the first bad record ends the stream with an error and is
/// kept in `verdict`, so the caller reports it rather than the driver's I/O error. When the
/// load ends early (the connection lost), the task stops at its next chunk.
pub(crate) fn checked_stream(
    body: BoxStream<'static, std::io::Result<Bytes>>,
    checker: CsvChecker<LoadDataEncoder>,
    verdict: Arc<Mutex<Verdict>>,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(CHECKED_CHUNKS_AHEAD);
    let mut checked = stream::unfold(Some((body, checker, verdict)), |state| async move {
        let (mut body, mut checker, verdict) = state?;
        let fail = |verdict: &Mutex<Verdict>, bad: BadInput| {
            let message = bad.to_string();
            verdict.lock().expect("not poisoned").bad_input = Some(bad);
            std::io::Error::new(std::io::ErrorKind::InvalidData, message)
        };
        loop {
            match body.next().await {
                Some(Ok(chunk)) => match checker.feed(&chunk) {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Some((Ok(Bytes::from(out)), Some((body, checker, verdict)))),
                    Err(bad) => return Some((Err(fail(&verdict, bad)), None)),
                },
                Some(Err(err)) => return Some((Err(err), None)),
                None => {
                    return match checker.finish() {
                        Ok(out) => {
                            verdict.lock().expect("not poisoned").rows = Some(checker.rows());
                            Some((Ok(Bytes::from(out)), None))
                        }
                        Err(bad) => Some((Err(fail(&verdict, bad)), None)),
                    }
                }
            }
        }
    })
    .boxed();
    tokio::spawn(async move {
        while let Some(chunk) = checked.next().await {
            if sender.send(chunk).await.is_err() {
                return;
            }
        }
    });
    stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((chunk, receiver))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::LoadInfo;

    #[test]
    fn the_servers_account_of_a_load_is_read_and_anything_else_counts_nothing() {
        assert_eq!(
            LoadInfo::parse("Records: 1000  Deleted: 3  Skipped: 0  Warnings: 0"),
            LoadInfo {
                records: 1000,
                deleted: 3,
                skipped: 0
            }
        );
        assert_eq!(LoadInfo::parse(""), LoadInfo::default());
        assert_eq!(LoadInfo::parse("Rows matched: 1"), LoadInfo::default());
    }
}
