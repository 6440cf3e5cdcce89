//! A minimal incremental parser of server-sent events (`data:` lines, comments, blank-line dispatch).

/// Feeds bytes in, takes complete events' data out.
#[derive(Debug)]
pub struct SseParser {
    /// No line has ended yet: the stream's first may begin with a byte-order mark.
    first: bool,
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
        Self { first: true, line: Vec::new(), data: Vec::new(), data_len: 0, max }
    }

    /// Consumes a chunk; answers the data of every event it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, TooLong> {
        let mut events = Vec::new();
        let mut rest = chunk;
        while !rest.is_empty() {
            let (part, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], true),
                None => (rest, false),
            };
            rest = if ended { &rest[part.len() + 1..] } else { &[] };
            if self.line.len() + part.len() > self.max {
                return Err(TooLong(self.max));
            }
            if !ended {
                self.line.extend_from_slice(part);
                break;
            }
            // A line whole in this chunk is read where it lies; one begun in an earlier
            // chunk is read from what was kept.
            let kept = std::mem::take(&mut self.line);
            let line = if kept.is_empty() { part } else { &[kept.as_slice(), part].concat()[..] };
            self.line_done(line.strip_suffix(b"\r").unwrap_or(line), &mut events)?;
        }
        Ok(events)
    }

    /// One line, its end taken off; a byte-order mark before the stream's first is not
    /// part of it (the event-stream format says to ignore one).
    fn line_done(&mut self, line: &[u8], events: &mut Vec<String>) -> Result<(), TooLong> {
        let line = match std::mem::take(&mut self.first) {
            true => line.strip_prefix(crate::http::BOM).unwrap_or(line),
            false => line,
        };
        if line.is_empty() {
            if !self.data.is_empty() {
                events.push(std::mem::take(&mut self.data).join("\n"));
                self.data_len = 0;
            }
        } else if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            // Valid UTF-8 (every event a relay sends) is checked at the speed of
            // `from_utf8`; only a broken line pays for the lossy reading.
            let d = match std::str::from_utf8(rest) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(rest).into_owned(),
            };
            self.data_len += d.len();
            if self.data_len > self.max {
                return Err(TooLong(self.max));
            }
            self.data.push(d);
        }
        // A comment (`:`, a keep-alive), and the `event:`, `id:` and `retry:` fields the
        // queue protocol does not use, are passed over.
        Ok(())
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
    fn a_stream_cut_anywhere_gives_the_events_it_gives_whole() {
        let stream: &[u8] =
            b": hi\r\n\ndata: {\"a\":1}\r\n\nevent: x\nid: 7\ndata: one\ndata:two\n\ndata: \xff\xfe\n\n:\n\ndata: last\r\n\r\n";
        let whole = SseParser::default().feed(stream).unwrap();
        assert_eq!(whole, ["{\"a\":1}", "one\ntwo", "\u{fffd}\u{fffd}", "last"]);
        for cut in 0..=stream.len() {
            for second in cut..=stream.len() {
                let mut p = SseParser::default();
                let mut got = p.feed(&stream[..cut]).unwrap();
                got.extend(p.feed(&stream[cut..second]).unwrap());
                got.extend(p.feed(&stream[second..]).unwrap());
                assert_eq!(got, whole, "cut at {cut} and {second}");
            }
        }
        let mut p = SseParser::default();
        let one_by_one: Vec<String> = stream.iter().flat_map(|b| p.feed(std::slice::from_ref(b)).unwrap()).collect();
        assert_eq!(one_by_one, whole);
    }

    #[test]
    fn a_byte_order_mark_before_the_stream_is_ignored_wherever_the_chunks_cut_it() {
        let stream = b"\xEF\xBB\xBFdata: {\"a\":1}\n\n\xEF\xBB\xBFdata: b\n\n";
        for cut in 0..=stream.len() {
            let mut p = SseParser::default();
            let mut got = p.feed(&stream[..cut]).unwrap();
            got.extend(p.feed(&stream[cut..]).unwrap());
            // Only the stream's first: a mark later is a line's own (and not a `data:` line).
            assert_eq!(got, ["{\"a\":1}"], "cut at {cut}");
        }
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
