//! Cutting a CSV file into parts on record boundaries, streamed: a quoted field may hold
//! delimiters and newlines, so a boundary is a newline outside quotes. Each part starts
//! with the file's header. Only the header is held in memory.

/// What the caller does with the bytes of one chunk, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes of the current part.
    Data(&'a [u8]),
    /// The current part is complete; the next starts (the caller writes the header first).
    NextPart,
}

pub struct Splitter {
    quote: u8,
    in_quotes: bool,
    /// The header record including its newline, once complete.
    header: Vec<u8>,
    header_done: bool,
    has_header: bool,
    /// Data bytes in the current part since its header.
    part_bytes: u64,
    limit: u64,
}

impl Splitter {
    /// `limit`: a part ends at the first record boundary after this many data bytes.
    pub fn new(quote: u8, has_header: bool, limit: u64) -> Splitter {
        Splitter {
            quote,
            in_quotes: false,
            header: Vec::new(),
            header_done: !has_header,
            has_header,
            part_bytes: 0,
            limit: limit.max(1),
        }
    }

    /// The header record (with its newline) to repeat at the start of every part after the first.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> Vec<Piece<'a>> {
        let mut pieces = Vec::new();
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if b == self.quote {
                self.in_quotes = !self.in_quotes;
                continue;
            }
            if b != b'\n' || self.in_quotes {
                continue;
            }
            // a record ends at i
            if !self.header_done {
                self.header.extend_from_slice(&chunk[start..=i]);
                pieces.push(Piece::Data(&chunk[start..=i]));
                self.header_done = true;
                start = i + 1;
                continue;
            }
            self.part_bytes += (i + 1 - start) as u64;
            pieces.push(Piece::Data(&chunk[start..=i]));
            start = i + 1;
            if self.part_bytes >= self.limit {
                pieces.push(Piece::NextPart);
                self.part_bytes = 0;
            }
        }
        if start < chunk.len() {
            if !self.header_done {
                self.header.extend_from_slice(&chunk[start..]);
            } else {
                self.part_bytes += (chunk.len() - start) as u64;
            }
            pieces.push(Piece::Data(&chunk[start..]));
        }
        pieces
    }

    pub fn has_header(&self) -> bool {
        self.has_header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `input` fed in `chunk`-byte pieces; returns the parts as written.
    fn split(input: &str, chunk: usize, limit: u64) -> Vec<String> {
        let mut splitter = Splitter::new(b'"', true, limit);
        let mut parts = vec![Vec::new()];
        for piece_source in input.as_bytes().chunks(chunk) {
            for piece in splitter.feed(piece_source) {
                match piece {
                    Piece::Data(d) => parts.last_mut().unwrap().extend_from_slice(d),
                    Piece::NextPart => parts.push(Vec::new()),
                }
            }
        }
        let header = splitter.header().to_vec();
        let mut out: Vec<String> = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let mut bytes = if i == 0 { Vec::new() } else { header.clone() };
                bytes.extend(p);
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        // A boundary right at the end leaves an empty last part (header only): dropped by callers.
        if out.len() > 1 && out.last().unwrap().as_bytes() == header.as_slice() {
            out.pop();
        }
        out
    }

    #[test]
    fn parts_end_on_records_and_repeat_the_header() {
        let input = "h1,h2\n1,\"a\nb\"\n2,\"x,y\"\n3,z\n4,w";
        for chunk in [1, 2, 5, 100] {
            let parts = split(input, chunk, 8);
            assert_eq!(
                parts,
                [
                    "h1,h2\n1,\"a\nb\"\n",
                    "h1,h2\n2,\"x,y\"\n",
                    "h1,h2\n3,z\n4,w"
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_quoted_newline_is_never_a_boundary() {
        let input = "h\n\"line\nline\nline\nline\"\nnext\n";
        let parts = split(input, 3, 1);
        assert_eq!(parts, ["h\n\"line\nline\nline\nline\"\n", "h\nnext\n"]);
    }

    #[test]
    fn under_the_limit_the_file_is_one_part() {
        let input = "h\n1\n2\n";
        assert_eq!(split(input, 4, 1 << 20), [input]);
    }
}
