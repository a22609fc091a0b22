//! Reading a `text/event-stream` body: bytes in, the `data` of each whole event out.
//!
//! Lines end with CRLF, LF or CR (as the HTML specification's event-stream grammar
//! says); a blank line ends an event; `data:` lines join with `\n`; comments (`:`) and the
//! other fields (`event`, `id`, `retry`) are skipped, since wirecall's events carry
//! JSON-RPC messages only. Bytes are kept as they come and decoded only as whole events,
//! so a character split across chunks arrives intact; each byte is looked at once.
//!
//! (A hand-written reader rather than a crate: the established one, `eventsource-stream`,
//! has had no release since 2022, decodes text chunk by chunk and bounds nothing; its
//! forks are young. This is the part of the grammar a JSON-RPC client needs, with a size
//! limit.)

use std::fmt;

use bytes::{Bytes, BytesMut};

/// An event (or a line) longer than the limit.
#[derive(Debug)]
pub(crate) struct TooLarge(usize);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an event exceeded the limit of {} bytes", self.0)
    }
}

/// Splits a body's chunks into events.
#[derive(Debug)]
pub(crate) struct EventReader {
    limit: usize,
    /// The line read so far (without its end).
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF at the start of this one belongs to it.
    after_cr: bool,
    /// The `data` of the event read so far.
    data: BytesMut,
    has_data: bool,
}

impl EventReader {
    /// A reader that refuses events (and lines) over `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        EventReader {
            limit,
            line: Vec::new(),
            after_cr: false,
            data: BytesMut::new(),
            has_data: false,
        }
    }

    /// Read `chunk`; every event it completes goes to `events` (its data, not decoded).
    pub(crate) fn push(
        &mut self,
        mut chunk: &[u8],
        events: &mut Vec<Bytes>,
    ) -> Result<(), TooLarge> {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.line.extend_from_slice(&chunk[..end]);
            let cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.end_line(events)?;
        }
        if self.line.len() + chunk.len() > self.limit {
            return Err(TooLarge(self.limit));
        }
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    fn end_line(&mut self, events: &mut Vec<Bytes>) -> Result<(), TooLarge> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                self.has_data = false;
                events.push(self.data.split().freeze());
            }
        } else if let Some(value) = field(&line, b"data") {
            if self.has_data {
                self.data.extend_from_slice(b"\n");
            }
            if self.data.len() + value.len() > self.limit {
                return Err(TooLarge(self.limit));
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // Reuse the line's buffer.
        self.line = line;
        self.line.clear();
        Ok(())
    }
}

/// The value of `line` if it is the field `name` (`name`, `name:` or `name: value`).
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    match rest {
        [] => Some(rest),
        [b':', value @ ..] => Some(value.strip_prefix(b" ").unwrap_or(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<String> {
        let mut reader = EventReader::new(1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk, &mut out).unwrap();
        }
        out.iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_character_split_across_chunks_arrives_whole() {
        let text = "data: {\"x\":\"héllo 😀\"}\n\n".as_bytes();
        // Split at every byte: the é and the emoji are cut everywhere.
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(read(&chunks), ["{\"x\":\"héllo 😀\"}"]);
    }

    #[test]
    fn every_line_end_is_recognised() {
        assert_eq!(
            read(&[b"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata:d\n\n"]),
            ["a", "b", "c", "d"]
        );
        // A CRLF cut between its two bytes is one line end, not two.
        assert_eq!(
            read(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]),
            ["a\nb"]
        );
    }

    #[test]
    fn comments_and_other_fields_are_skipped_and_data_lines_join() {
        assert_eq!(
            read(&[b": keep-alive\n\nevent: x\nid: 3\ndata: one\ndata\ndata:two\n\n"]),
            ["one\n\ntwo"]
        );
    }

    #[test]
    fn an_event_over_the_limit_is_refused() {
        let mut reader = EventReader::new(8);
        let mut out = Vec::new();
        assert!(reader.push(b"data: 0123456789\n\n", &mut out).is_err());
        // A line still being read counts too.
        let mut reader = EventReader::new(12);
        assert!(reader.push(b"data: 01234", &mut out).is_ok());
        assert!(reader.push(b"56789", &mut out).is_err());
    }
}
