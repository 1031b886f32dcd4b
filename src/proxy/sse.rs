//! The legacy transport's first event names where to POST messages
//! (`event: endpoint`, `data: /messages?sessionId=…` on the downstream). The
//! gateway reads that event before answering, seals the endpoint for the
//! user, and sends its own (`/sse/message?sessionId=<sealed>`) instead; every
//! later byte passes through untouched.

/// The most read while looking for the endpoint event.
pub const MAX_PRELUDE: usize = 16 * 1024;

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// No complete event yet: read more.
    More,
    /// The endpoint event's data, and the bytes after that event.
    Endpoint { endpoint: String, rest: Vec<u8> },
    /// The stream does not start the way the legacy transport does.
    NotMcp,
}

/// Finds the first event of a stream fed in chunks.
#[derive(Debug, Default)]
pub struct EndpointScan {
    buf: Vec<u8>,
}

impl EndpointScan {
    pub fn feed(&mut self, chunk: &[u8]) -> Scan {
        self.buf.extend_from_slice(chunk);
        let scan = self.scan();
        if scan == Scan::More && self.buf.len() > MAX_PRELUDE {
            return Scan::NotMcp;
        }
        scan
    }

    fn scan(&self) -> Scan {
        let buf = &self.buf;
        let (mut event, mut data): (Option<String>, Option<String>) = (None, None);
        let mut pos = 0;
        loop {
            // One line, ended by \n, \r\n or \r (a \r at the end may be half of \r\n).
            let Some(rel) = buf[pos..].iter().position(|b| *b == b'\n' || *b == b'\r') else { return Scan::More };
            let end = pos + rel;
            let next = match buf[end] {
                b'\r' if end + 1 == buf.len() => return Scan::More,
                b'\r' if buf[end + 1] == b'\n' => end + 2,
                _ => end + 1,
            };
            let Ok(line) = std::str::from_utf8(&buf[pos..end]) else { return Scan::NotMcp };
            pos = next;
            if line.is_empty() {
                match (event.as_deref(), data.take()) {
                    // A block of comments only (keep-alives): not an event.
                    (None, None) => continue,
                    (Some("endpoint"), Some(d)) if !d.is_empty() => {
                        return Scan::Endpoint { endpoint: d, rest: buf[pos..].to_vec() }
                    }
                    _ => return Scan::NotMcp,
                }
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) =
                line.split_once(':').map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v))).unwrap_or((line, ""));
            match field {
                "event" => event = Some(value.to_owned()),
                "data" => {
                    let d = data.get_or_insert_with(String::new);
                    if !d.is_empty() {
                        d.push('\n');
                    }
                    d.push_str(value);
                }
                "id" | "retry" => {}
                // No field of SSE: an HTML page or the like.
                _ => return Scan::NotMcp,
            }
        }
    }
}

/// The endpoint event this gateway sends instead of the downstream's.
pub fn endpoint_event(sealed_session: &str) -> Vec<u8> {
    let encoded: String = url::form_urlencoded::byte_serialize(sealed_session.as_bytes()).collect();
    format!("event: endpoint\ndata: /sse/message?sessionId={encoded}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_event_is_found_across_chunks() {
        let stream = b": hello\n\nevent: endpoint\r\ndata: /messages?sessionId=abc\r\n\r\nevent: message\ndata: {}\n\n";
        for split in 1..stream.len() {
            let mut s = EndpointScan::default();
            let got = match s.feed(&stream[..split]) {
                Scan::More => s.feed(&stream[split..]),
                // Found in the first chunk: the second one follows the rest.
                Scan::Endpoint { endpoint, mut rest } => {
                    rest.extend_from_slice(&stream[split..]);
                    Scan::Endpoint { endpoint, rest }
                }
                other => other,
            };
            assert_eq!(
                got,
                Scan::Endpoint {
                    endpoint: "/messages?sessionId=abc".into(),
                    rest: b"event: message\ndata: {}\n\n".to_vec()
                },
                "split at {split}"
            );
        }
    }

    #[test]
    fn streams_that_do_not_start_with_an_endpoint_are_not_mcp() {
        let scan = |b: &[u8]| EndpointScan::default().feed(b);
        assert_eq!(scan(b"event: message\ndata: {}\n\n"), Scan::NotMcp);
        assert_eq!(scan(b"data: /messages\n\n"), Scan::NotMcp);
        assert_eq!(scan(b"event: endpoint\n\n"), Scan::NotMcp);
        assert_eq!(scan(b"<html>\n\n"), Scan::NotMcp);
        assert_eq!(scan(b"event: endpoint\ndata: /m"), Scan::More);
        let mut s = EndpointScan::default();
        assert_eq!(s.feed(&[b'x'; MAX_PRELUDE + 1]), Scan::NotMcp, "bounded");
    }

    #[test]
    fn our_endpoint_event_names_the_sealed_session() {
        assert_eq!(endpoint_event("g1.a+b"), b"event: endpoint\ndata: /sse/message?sessionId=g1.a%2Bb\n\n".to_vec());
    }
}
