//! Splitting a CSV file into parts on record boundaries: every byte is handed out once and in
//! order, whatever the chunking, and the parts end at the same places whatever the chunking.
#![no_main]

use landfall_csv_check::split::{Piece, Splitter};
use libfuzzer_sys::fuzz_target;

/// The bytes handed out, and the byte offsets at which a part ended.
fn split(data: &[u8], chunk: usize, limit: u64, header: bool) -> (Vec<u8>, Vec<usize>) {
    let mut splitter = Splitter::new(b'"', header, limit);
    let (mut out, mut ends) = (Vec::new(), Vec::new());
    for piece in data.chunks(chunk.max(1)) {
        for handed in splitter.feed(piece) {
            match handed {
                Piece::Data(bytes) => out.extend_from_slice(bytes),
                Piece::NextPart { .. } => ends.push(out.len()),
            }
        }
    }
    (out, ends)
}

fuzz_target!(|data: &[u8]| {
    let [cut, limit, header, file @ ..] = data else {
        return;
    };
    let header = header % 2 == 0;
    let limit = u64::from(*limit) + 1;
    let (whole, whole_ends) = split(file, file.len(), limit, header);
    assert_eq!(whole, file, "bytes lost, repeated or reordered");
    let (chunked, chunked_ends) = split(file, usize::from(cut % 32) + 1, limit, header);
    assert_eq!(chunked, file);
    assert_eq!(
        whole_ends, chunked_ends,
        "parts ended elsewhere with another chunking"
    );
    for end in whole_ends {
        // A part ends at a line end outside quotes.
        let before = &file[..end];
        assert!(matches!(before.last(), Some(b'\n' | b'\r')) || end == 0);
        assert_eq!(before.iter().filter(|b| **b == b'"').count() % 2, 0);
    }
});
