//! A minimal incremental parser of server-sent events (`data:` lines, comments, blank-line dispatch).

/// Feeds bytes in, takes complete events' data out.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    /// Consumes a chunk; answers the data of every event it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in chunk {
            if b != b'\n' {
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
                }
            } else if line.starts_with(':') {
                // A comment: keep-alive.
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
            // `event:`, `id:` and `retry:` fields are not used by the queue protocol.
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks_comments_and_crlf() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\ndata: {\"status\":").is_empty());
        assert_eq!(p.feed(b"\"IN_QUEUE\"}\r\n\r\ndata: a\ndata: b\n\n"), vec!["{\"status\":\"IN_QUEUE\"}".to_string(), "a\nb".to_string()]);
        assert_eq!(p.feed(b"event: x\ndata:tight\n\n"), vec!["tight".to_string()]);
    }
}
