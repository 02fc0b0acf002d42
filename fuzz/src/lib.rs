//! What more than one fuzz target does.

use landfall_csv_check::{CsvChecker, Encode};

/// Everything the checker writes for `data` fed in `chunk`-byte pieces, or its refusal.
pub fn check_in_chunks<E: Encode>(
    mut checker: CsvChecker<E>,
    data: &[u8],
    chunk: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        out.extend(checker.feed(piece).map_err(|e| e.to_string())?);
    }
    out.extend(checker.finish().map_err(|e| e.to_string())?);
    Ok(out)
}
