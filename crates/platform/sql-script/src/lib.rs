//! Statements of a `.sql` script as the `mariadb` command-line client (or `psql`) would
//! send them.
//!
//! The client, not the server, understands `DELIMITER`: stored procedures contain `;`
//! inside `BEGIN … END`, so scripts switch the delimiter around them. A driver sends one
//! statement at a time, so the script must be split here. Written by hand because no
//! maintained crate splits MySQL scripts with `DELIMITER` (SQL parsers reject it: it is
//! not SQL). Comments and quoted text never end a statement; nor does a PostgreSQL or
//! Redshift dollar-quoted body (`$$ … $$`, `$body$ … $body$`), as psql splits them.
#![warn(missing_docs)]

use landfall_failure::{Classify, Disposition};

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its SQL, without the delimiter.
    pub sql: String,
    /// 1-based line of the statement's first character in the script.
    pub line: usize,
}

/// Why a script cannot be split into statements.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScriptError {
    /// A quote or comment never closed.
    #[error("line {line}: {what} is never closed")]
    Unterminated {
        /// A quoted string, an identifier or a comment.
        what: &'static str,
        /// The line it starts on.
        line: usize,
    },
    /// `DELIMITER` without a delimiter.
    #[error("line {line}: DELIMITER needs a delimiter")]
    EmptyDelimiter {
        /// The line of the `DELIMITER`.
        line: usize,
    },
}

impl Classify for ScriptError {
    fn disposition(&self) -> Disposition {
        Disposition::Permanent
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted(u8),
    LineComment,
    BlockComment,
    /// Inside `$tag$ … $tag$`; the tag is in `dollar_tag`.
    Dollar,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `$$` or `$tag$` (tag: letters, digits, `_`, not starting with a digit) at the start of
/// `text`: the opening of a dollar-quoted string.
fn dollar_quote_at(text: &str) -> Option<&str> {
    let rest = text.get(1..)?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let tag = &rest[..end];
    if rest[end..].starts_with('$') && !tag.starts_with(|c: char| c.is_ascii_digit()) {
        Some(&text[..end + 2])
    } else {
        None
    }
}

/// Splits `script` into its statements.
pub fn split(script: &str) -> Result<Vec<Statement>, ScriptError> {
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let mut delimiter = ";".to_owned();
    let mut state = State::Code;
    let mut start = 0; // start of the current statement
    let mut opened_at = 0; // line where the current quote or comment opened
    let mut line = 1;
    let mut i = 0;
    let mut at_line_start = true;
    let mut dollar_tag = String::new();

    let finish = |from: usize, to: usize, statements: &mut Vec<Statement>| {
        let text = &script[from..to];
        if has_code(text) {
            let leading = text.len() - text.trim_start().len();
            let line = 1 + script[..from + leading].matches('\n').count();
            statements.push(Statement {
                sql: text.trim().to_owned(),
                line,
            });
        }
    };

    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::Code => {
                if at_line_start {
                    let rest_of_line = script[i..].split('\n').next().unwrap_or_default();
                    let trimmed = rest_of_line.trim_start();
                    if trimmed
                        .get(..10)
                        .is_some_and(|p| p.eq_ignore_ascii_case("DELIMITER "))
                        || trimmed.eq_ignore_ascii_case("DELIMITER")
                    {
                        if !script[start..i].trim().is_empty() && has_code(&script[start..i]) {
                            // Text before DELIMITER without a closing delimiter: a statement.
                            finish(start, i, &mut statements);
                        }
                        let new = trimmed.get(10..).unwrap_or_default().trim();
                        if new.is_empty() {
                            return Err(ScriptError::EmptyDelimiter { line });
                        }
                        delimiter = new.to_owned();
                        i += rest_of_line.len();
                        start = i;
                        continue;
                    }
                }
                // Bytes, not `script[i..]`: `i` walks bytes and may be inside a character.
                if bytes[i..].starts_with(delimiter.as_bytes()) {
                    finish(start, i, &mut statements);
                    i += delimiter.len();
                    start = i;
                    at_line_start = false;
                    continue;
                }
                match b {
                    b'\'' | b'"' | b'`' => {
                        state = State::Quoted(b);
                        opened_at = line;
                    }
                    b'#' => state = State::LineComment,
                    b'-' if bytes[i..].starts_with(b"--")
                        && bytes.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
                    {
                        state = State::LineComment
                    }
                    b'/' if bytes.get(i + 1) == Some(&b'*') => {
                        state = State::BlockComment;
                        opened_at = line;
                        i += 1;
                    }
                    b'$' if i == 0 || !is_word(bytes[i - 1]) => {
                        if let Some(tag) = dollar_quote_at(&script[i..]) {
                            dollar_tag = tag.to_owned();
                            state = State::Dollar;
                            opened_at = line;
                            i += tag.len() - 1;
                        }
                    }
                    _ => {}
                }
            }
            State::Quoted(quote) => {
                if b == b'\\' && quote != b'`' {
                    // skip the escaped character (it may be a newline)
                    if bytes.get(i + 1) == Some(&b'\n') {
                        line += 1;
                    }
                    i += 2;
                    continue;
                }
                if b == quote {
                    // a doubled quote stays inside: it closes and at once reopens
                    state = State::Code;
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if b == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    state = State::Code;
                    i += 1;
                }
            }
            State::Dollar => {
                if bytes[i..].starts_with(dollar_tag.as_bytes()) {
                    state = State::Code;
                    i += dollar_tag.len() - 1;
                }
            }
        }
        if bytes.get(i) == Some(&b'\n') {
            line += 1;
            at_line_start = true;
        } else if !bytes
            .get(i)
            .is_some_and(|c| *c == b' ' || *c == b'\t' || *c == b'\r')
        {
            at_line_start = false;
        }
        i += 1;
    }
    match state {
        State::Quoted(q) => {
            return Err(ScriptError::Unterminated {
                what: match q {
                    b'\'' => "a '…' string",
                    b'"' => "a \"…\" string",
                    _ => "a `…` identifier",
                },
                line: opened_at,
            })
        }
        State::BlockComment => {
            return Err(ScriptError::Unterminated {
                what: "a /* comment",
                line: opened_at,
            })
        }
        State::Dollar => {
            return Err(ScriptError::Unterminated {
                what: "a $…$ quoted body",
                line: opened_at,
            })
        }
        _ => {}
    }
    finish(start, bytes.len(), &mut statements);
    Ok(statements)
}

/// True when `text` holds anything but white space and comments.
fn has_code(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return false;
        }
        if rest.starts_with('#')
            || rest.starts_with("-- ")
            || rest.starts_with("--\n")
            || rest == "--"
        {
            rest = rest
                .split_once('\n')
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else if rest.starts_with("/*") && !rest.starts_with("/*!") {
            match rest.find("*/") {
                Some(end) => rest = rest[end + 2..].trim_start(),
                None => return false,
            }
        } else {
            return true;
        }
    }
}

#[cfg(test)]
mod tests;
