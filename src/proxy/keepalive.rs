//! Keep-alive comments on idle event streams: proxies, load balancers and
//! client libraries cut connections that carry nothing for a minute or two,
//! and an MCP event stream (the legacy `/sse` stream, the standalone `GET /mcp`
//! stream, a long tool call's answer) may be silent far longer. When the
//! downstream has sent nothing for `DOWNSTREAM_KEEPALIVE_SECS`, the gateway
//! sends an SSE comment line, which every SSE parser ignores.
//!
//! The comment is a single line (`: keep-alive\n`, no blank line after it), so
//! it can never end an event the downstream is halfway through sending; and it
//! is only sent where a line starts (after a `\n`), never inside a line. After
//! a lone `\r` it waits: that `\r` may be the first half of a `\r\n`, and the
//! `\n` arriving after our comment would then be a blank line that dispatches
//! the downstream's event early.

/// The comment sent while the downstream is silent.
pub const COMMENT: &[u8] = b": keep-alive\n";

/// Where the bytes passed on so far left the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineState {
    at_line_start: bool,
}

impl Default for LineState {
    fn default() -> Self {
        Self { at_line_start: true }
    }
}

impl LineState {
    /// Notes a chunk passed on to the client.
    pub fn saw(&mut self, chunk: &[u8]) {
        if let Some(&last) = chunk.last() {
            self.at_line_start = last == b'\n';
        }
    }

    /// The comment to send now, if one may be sent here.
    pub fn comment(&self) -> Option<&'static [u8]> {
        self.at_line_start.then_some(COMMENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events an SSE parser (per the HTML spec) dispatches from `bytes`: (event, data).
    fn events(bytes: &[u8]) -> Vec<(String, String)> {
        let text = String::from_utf8(bytes.to_vec()).unwrap().replace("\r\n", "\n").replace('\r', "\n");
        let (mut out, mut event, mut data) = (Vec::new(), String::new(), Vec::<String>::new());
        for line in text.split('\n') {
            if line.is_empty() {
                if !data.is_empty() {
                    out.push((std::mem::take(&mut event), data.join("\n")));
                }
                data.clear();
                event.clear();
            } else if line.starts_with(':') {
                continue;
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.into();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push(v.into());
            }
        }
        out
    }

    #[test]
    fn comments_go_only_where_a_line_starts() {
        let mut s = LineState::default();
        assert_eq!(s.comment(), Some(COMMENT), "before anything was sent");
        s.saw(b"event: message\ndata: {\"a\":");
        assert_eq!(s.comment(), None, "not inside a line");
        s.saw(b"1}\n");
        assert_eq!(s.comment(), Some(COMMENT), "between the lines of one event");
        s.saw(b"");
        assert_eq!(s.comment(), Some(COMMENT), "an empty chunk changes nothing");
        s.saw(b"\n\r");
        assert_eq!(s.comment(), None, "a lone \\r may be half of \\r\\n");
        s.saw(b"\n");
        assert_eq!(s.comment(), Some(COMMENT));
    }

    #[test]
    fn a_stream_with_comments_wherever_allowed_parses_to_the_same_events() {
        let stream: &[u8] =
            b"event: endpoint\r\ndata: /messages?sessionId=1\r\n\r\nevent: message\ndata: {\"id\":1}\ndata: more\n\n: theirs\n\ndata: x\r\r";
        for split in 0..stream.len() {
            for split2 in split..stream.len() {
                let chunks = [&stream[..split], &stream[split..split2], &stream[split2..]];
                let (mut out, mut s) = (Vec::new(), LineState::default());
                for chunk in chunks {
                    out.extend_from_slice(chunk);
                    s.saw(chunk);
                    // The downstream goes quiet here: a keep-alive, if allowed.
                    if let Some(c) = s.comment() {
                        out.extend_from_slice(c);
                    }
                }
                assert_eq!(events(&out), events(stream), "split at {split}, {split2}");
            }
        }
    }
}
