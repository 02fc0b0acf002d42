//! Duplicate keys, caught before an import: DynamoDB keeps the last item of a key and says
//! nothing, so a file with two rows of one key would lose a row silently.
//!
//! Each key is held as a 96-bit hash and its line (16 bytes a row, not the key itself), so
//! a file of 50 million rows needs 800 MB at most; the chance that two different keys of
//! such a file share a hash is below 1e-13.

use xxhash_rust::xxh3::xxh3_128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    high: u64,
    low: u32,
    line: u32,
}

/// The keys of one file (or one part of it), with the line each is on.
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

    /// Adds another part's keys.
    pub fn merge(&mut self, other: KeyIndex) {
        self.seen.extend(other.seen);
    }

    /// The duplicate that comes first in the file (by its second occurrence), if any.
    pub fn first_duplicate(mut self) -> Option<DuplicateKey> {
        self.seen.sort_unstable();
        self.seen
            .windows(2)
            .filter(|pair| (pair[0].high, pair[0].low) == (pair[1].high, pair[1].low))
            .map(|pair| DuplicateKey {
                first_line: u64::from(pair[0].line),
                second_line: u64::from(pair[1].line),
            })
            .min_by_key(|d| d.second_line)
    }
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
        part1.merge(part2);
        assert_eq!(
            part1.first_duplicate(),
            Some(DuplicateKey {
                first_line: 2,
                second_line: 7
            })
        );
        let mut unique = KeyIndex::default();
        unique.insert("a", 2);
        unique.insert("b", 3);
        assert_eq!(unique.first_duplicate(), None);
    }
}
