//! Cutting a CSV file into parts on record boundaries, streamed: a quoted field may hold
//! delimiters and newlines, so a boundary is a line end outside quotes (`\n`, `\r\n`, or a
//! lone `\r`). Each part starts with the file's header. Only the header is held in memory.
//! Lines are counted as the checker counts them, so an error in a part can name the line
//! of the file the user dropped.

/// What the caller does with the bytes of one chunk, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes of the current part.
    Data(&'a [u8]),
    /// The current part is complete; the next starts (the caller writes the header first)
    /// with the record on this line of the file.
    NextPart {
        /// The line of the whole file the next part's first data record is on.
        first_line: u64,
    },
}

/// Cuts a CSV stream into parts of about a size, on record boundaries.
pub struct Splitter {
    quote: u8,
    in_quotes: bool,
    /// The header record including its line end, once complete.
    header: Vec<u8>,
    header_done: bool,
    has_header: bool,
    /// Data bytes in the current part since its header.
    part_bytes: u64,
    limit: u64,
    /// The line the next byte is on, and whether the byte before was `\r`.
    line: u64,
    after_cr: bool,
    /// A `\r` outside quotes was the last byte: a record ends there unless `\n` follows.
    cr_pending: bool,
    first_data_line: u64,
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
            line: 1,
            after_cr: false,
            cr_pending: false,
            first_data_line: 1,
        }
    }

    /// The header record (with its line end) to repeat at the start of every part after the first.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The line the first part's first data record is on (the line after the header).
    pub fn first_data_line(&self) -> u64 {
        self.first_data_line
    }

    /// The pieces `chunk` makes: bytes of the current part, and where a new part starts.
    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> Vec<Piece<'a>> {
        let mut pieces = Vec::new();
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if std::mem::take(&mut self.cr_pending) && b != b'\n' {
                self.record_end(chunk, &mut start, i, &mut pieces);
            }
            match b {
                b'\n' if self.after_cr => {}
                b'\n' | b'\r' => self.line += 1,
                _ => {}
            }
            self.after_cr = b == b'\r';
            if b == self.quote {
                self.in_quotes = !self.in_quotes;
            } else if !self.in_quotes && b == b'\n' {
                self.record_end(chunk, &mut start, i + 1, &mut pieces);
            } else if !self.in_quotes && b == b'\r' {
                self.cr_pending = true;
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

    /// A record ends before `end` (bytes before `start` were handed out already). Bytes are
    /// handed out only where something happens — the header ends, a part ends — or at the
    /// end of the chunk, so a consumer gets one piece per chunk, not one per record.
    fn record_end<'a>(
        &mut self,
        chunk: &'a [u8],
        start: &mut usize,
        end: usize,
        pieces: &mut Vec<Piece<'a>>,
    ) {
        let pending = &chunk[*start..end];
        if !self.header_done {
            self.header.extend_from_slice(pending);
            self.header_done = true;
            self.first_data_line = self.line;
        } else if self.part_bytes + pending.len() as u64 >= self.limit {
            pieces.push(Piece::Data(pending));
            pieces.push(Piece::NextPart {
                first_line: self.line,
            });
            self.part_bytes = 0;
            *start = end;
            return;
        } else {
            return;
        }
        if !pending.is_empty() {
            pieces.push(Piece::Data(pending));
        }
        *start = end;
    }

    /// Whether the file's first record is a header (repeated at the top of every part).
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
                    Piece::NextPart { .. } => parts.push(Vec::new()),
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

    /// Where each part's first data record is in the file, for every line ending.
    fn first_lines(input: &str, chunk: usize, limit: u64) -> Vec<u64> {
        let mut splitter = Splitter::new(b'"', true, limit);
        let mut lines = Vec::new();
        for piece_source in input.as_bytes().chunks(chunk) {
            for piece in splitter.feed(piece_source) {
                if let Piece::NextPart { first_line } = piece {
                    if lines.is_empty() {
                        lines.push(splitter.first_data_line());
                    }
                    lines.push(first_line);
                }
            }
        }
        lines
    }

    #[test]
    fn parts_know_the_file_line_they_start_on_for_lf_crlf_and_cr() {
        for ending in ["\n", "\r\n", "\r"] {
            // line 1 header, line 2 a, lines 3-4 a quoted field with a line end inside, 5 c, 6 d
            let input = ["h", "aaaaaaaaa", "\"b1", "b2\"", "ccccccccc", "ddddddddd"].join(ending);
            for chunk in [1, 2, 3, 100] {
                assert_eq!(
                    first_lines(&input, chunk, 5),
                    [2, 3, 5, 6],
                    "ending {ending:?}, chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn a_lone_cr_ends_a_record_and_crlf_stays_whole() {
        let parts = split("h\r1\r2\r3", 1, 1);
        assert_eq!(parts, ["h\r1\r", "h\r2\r", "h\r3"]);
        let parts = split("h\r\n1\r\n2\r\n", 1, 1);
        assert_eq!(parts, ["h\r\n1\r\n", "h\r\n2\r\n"]);
    }
}
