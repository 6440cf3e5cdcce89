//! A minimal incremental parser of server-sent events (`data:` lines, comments, blank-line dispatch).

/// Feeds bytes in, takes complete events' data out.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
    data_len: usize,
    max: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(1 << 20)
    }
}

/// An event (or a line) longer than the parser's limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong(pub usize);

impl SseParser {
    /// A parser refusing events and lines over `max` bytes (a stream with no newline
    /// would otherwise grow without limit).
    pub fn with_limit(max: usize) -> Self {
        Self { line: Vec::new(), data: Vec::new(), data_len: 0, max }
    }

    /// Consumes a chunk; answers the data of every event it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, TooLong> {
        let mut events = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                if self.line.len() >= self.max {
                    return Err(TooLong(self.max));
                }
                self.line.push(b);
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data).join("\n"));
                    self.data_len = 0;
                }
            } else if line.starts_with(':') {
                // A comment: keep-alive.
            } else if let Some(rest) = line.strip_prefix("data:") {
                let d = rest.strip_prefix(' ').unwrap_or(rest).to_string();
                self.data_len += d.len();
                if self.data_len > self.max {
                    return Err(TooLong(self.max));
                }
                self.data.push(d);
            }
            // `event:`, `id:` and `retry:` fields are not used by the queue protocol.
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks_comments_and_crlf() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\ndata: {\"status\":").unwrap().is_empty());
        assert_eq!(
            p.feed(b"\"IN_QUEUE\"}\r\n\r\ndata: a\ndata: b\n\n").unwrap(),
            vec!["{\"status\":\"IN_QUEUE\"}".to_string(), "a\nb".to_string()]
        );
        assert_eq!(p.feed(b"event: x\ndata:tight\n\n").unwrap(), vec!["tight".to_string()]);
    }

    #[test]
    fn a_line_without_end_is_refused_at_the_limit() {
        let mut p = SseParser::with_limit(16);
        assert_eq!(p.feed(b"data: 0123456789").unwrap(), Vec::<String>::new());
        assert_eq!(p.feed(b"abcdef"), Err(TooLong(16)));
        let mut p = SseParser::with_limit(16);
        assert_eq!(p.feed(b"data: 0123456789\ndata: 0123456789\n"), Err(TooLong(16)), "many data lines of one event count together");
    }
}
