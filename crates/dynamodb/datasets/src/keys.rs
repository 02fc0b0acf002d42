//! Duplicate keys, caught before an import: DynamoDB keeps the last item of a key and says
//! nothing, so a file with two rows of one key would lose a row silently.
//!
//! Each key is held as a 96-bit hash and its line (16 bytes a row, not the key itself); the
//! chance that two different keys of a 50-million-row file share a hash is below 1e-13. A
//! part's keys are sorted into a run when the part ends; runs beyond [`MEMORY_ROWS`] rows in
//! all go to a file in the temporary directory, and the duplicate check merges the runs, so
//! memory stays flat however big the file is (disk: 16 bytes a row).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use xxhash_rust::xxh3::xxh3_128;

/// Keys kept in memory across all runs (16 MiB); the rest are spilled to disk.
pub const MEMORY_ROWS: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    high: u64,
    low: u32,
    line: u32,
}

impl Seen {
    fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.high.to_be_bytes());
        bytes[8..12].copy_from_slice(&self.low.to_be_bytes());
        bytes[12..].copy_from_slice(&self.line.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: [u8; 16]) -> Seen {
        let word = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
        };
        Seen {
            high: word(0..8),
            low: word(8..12) as u32,
            line: word(12..16) as u32,
        }
    }
}

/// The keys of one part of a file, with the line each is on.
#[derive(Debug, Default)]
pub struct KeyIndex {
    seen: Vec<Seen>,
}

/// Two rows with one key: the lines of the file they are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateKey {
    pub first_line: u64,
    pub second_line: u64,
}

impl KeyIndex {
    pub fn insert(&mut self, key: &str, line: u64) {
        let hash = xxh3_128(key.as_bytes());
        self.seen.push(Seen {
            high: (hash >> 64) as u64,
            low: hash as u32,
            // Lines past 4 billion (a file of 2-byte rows over 8 GB) share the last value:
            // only the message would name the wrong line.
            line: u32::try_from(line).unwrap_or(u32::MAX),
        });
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The part's keys sorted, kept in memory while `budget` (rows in memory across the
    /// file's runs) allows, else written to a file.
    pub fn into_run(mut self, budget: &AtomicUsize) -> std::io::Result<Run> {
        self.seen.sort_unstable();
        let rows = self.seen.len();
        let kept = budget.fetch_add(rows, Ordering::Relaxed) + rows <= MEMORY_ROWS;
        if kept {
            return Ok(Run(Held::Memory(self.seen)));
        }
        budget.fetch_sub(rows, Ordering::Relaxed);
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "landfall-keys-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let spill = Spill(path);
        let mut out = BufWriter::new(std::fs::File::create(&spill.0)?);
        for seen in &self.seen {
            out.write_all(&seen.to_bytes())?;
        }
        out.flush()?;
        Ok(Run(Held::File(spill, rows)))
    }
}

/// A file of sorted keys, removed when dropped.
#[derive(Debug)]
struct Spill(PathBuf);

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One part's keys, sorted.
#[derive(Debug)]
pub struct Run(Held);

#[derive(Debug)]
enum Held {
    Memory(Vec<Seen>),
    File(Spill, usize),
}

impl Run {
    pub fn len(&self) -> usize {
        match &self.0 {
            Held::Memory(seen) => seen.len(),
            Held::File(_, rows) => *rows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> std::io::Result<Box<dyn Iterator<Item = std::io::Result<Seen>> + '_>> {
        Ok(match &self.0 {
            Held::Memory(seen) => Box::new(seen.iter().copied().map(Ok)),
            Held::File(spill, _) => {
                let mut reader = BufReader::with_capacity(64 << 10, std::fs::File::open(&spill.0)?);
                Box::new(std::iter::from_fn(move || {
                    let mut bytes = [0; 16];
                    match reader.read_exact(&mut bytes) {
                        Ok(()) => Some(Ok(Seen::from_bytes(bytes))),
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
                        Err(e) => Some(Err(e)),
                    }
                }))
            }
        })
    }
}

/// The duplicate that comes first in the file (by its second occurrence), across every
/// part's run: a merge of the sorted runs, one key of each in memory at a time.
pub fn first_duplicate(runs: &[Run]) -> std::io::Result<Option<DuplicateKey>> {
    let mut iterators = runs.iter().map(Run::iter).collect::<Result<Vec<_>, _>>()?;
    let mut heap = BinaryHeap::new();
    for (index, iterator) in iterators.iter_mut().enumerate() {
        if let Some(seen) = iterator.next().transpose()? {
            heap.push(Reverse((seen, index)));
        }
    }
    let mut previous: Option<Seen> = None;
    let mut first: Option<DuplicateKey> = None;
    while let Some(Reverse((seen, index))) = heap.pop() {
        if let Some(next) = iterators[index].next().transpose()? {
            heap.push(Reverse((next, index)));
        }
        if let Some(before) = previous.filter(|p| (p.high, p.low) == (seen.high, seen.low)) {
            let found = DuplicateKey {
                first_line: u64::from(before.line),
                second_line: u64::from(seen.line),
            };
            if first.is_none_or(|f| found.second_line < f.second_line) {
                first = Some(found);
            }
        }
        previous = Some(seen);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_duplicate_is_named_by_both_lines_across_parts() {
        let mut part1 = KeyIndex::default();
        part1.insert("a#1", 2);
        part1.insert("b#1", 3);
        part1.insert("c#1", 4);
        let mut part2 = KeyIndex::default();
        part2.insert("c#1", 9);
        part2.insert("a#1", 7);
        part2.insert("d#1", 8);
        assert_eq!(part2.len(), 3);
        // One run in memory, one spilled to disk: the budget is full.
        let budget = AtomicUsize::new(MEMORY_ROWS - 3);
        let runs = [
            part1.into_run(&budget).unwrap(),
            part2.into_run(&budget).unwrap(),
        ];
        assert!(matches!(runs[0].0, Held::Memory(_)) && matches!(runs[1].0, Held::File(..)));
        assert_eq!(
            first_duplicate(&runs).unwrap(),
            Some(DuplicateKey {
                first_line: 2,
                second_line: 7
            })
        );
        let Held::File(spill, _) = &runs[1].0 else {
            unreachable!()
        };
        let path = spill.0.clone();
        drop(runs);
        assert!(!path.exists(), "the spill file goes with its run");
        let mut unique = KeyIndex::default();
        unique.insert("a", 2);
        unique.insert("b", 3);
        let run = unique.into_run(&AtomicUsize::new(0)).unwrap();
        assert_eq!(first_duplicate(&[run]).unwrap(), None);
    }
}
