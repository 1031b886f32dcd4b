//! The downstream's `WWW-Authenticate`, parsed (RFC 9110 §11.6.1, §11.2)
//! and rebuilt so that the client is sent to this worker for tokens.
//!
//! The header is a list of challenges, each an auth-scheme followed by a
//! token68 or by comma-separated auth-params (`name=token` or
//! `name="quoted string"`, `\` escapes inside quotes, commas inside quotes
//! are text); the commas between challenges and between parameters are the
//! same character, so a parameter ends a challenge only where the next item
//! is not `name=value`.
//!
//! What the client gets: every `Bearer` challenge of the downstream with
//! only the parameters RFC 6750 §3 and RFC 9728 §5.1 define (`realm`,
//! `scope`, `error`, `error_description`, `error_uri`, each once, values
//! re-quoted), and `resource_metadata` set to this worker's, first (the
//! downstream's own is dropped; one is added when it gave none). Other schemes
//! are dropped: the client can only use this worker's Bearer tokens. A header
//! that does not parse, or holds no Bearer challenge, becomes a bare
//! `Bearer resource_metadata="…"`. So no parameter of the downstream's
//! choosing (`x_resource_metadata`, a second `resource_metadata`, a quoted
//! `error_description` holding the text) can point a client elsewhere, even
//! one that reads the header with a regular expression.

/// One challenge: its scheme and its parameters (names as sent, values
/// unquoted). A token68 challenge has no parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as sent (compared case-insensitively).
    pub scheme: String,
    /// `(name, value)` in order; values with quotes and escapes removed.
    pub params: Vec<(String, String)>,
    /// The token68, when the challenge has one instead of parameters.
    pub token68: Option<String>,
}

/// Why a header did not parse (a byte offset, for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub usize);

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }
    /// Skips OWS and any number of commas (empty list elements are allowed).
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }
    fn quoted(&mut self) -> Result<String, Malformed> {
        // At the opening quote.
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(Malformed(self.at)),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let Some(c) = self.s.get(self.at + 1).copied().filter(|&c| qd_ok(c) || c == b'"' || c == b'\\')
                    else {
                        return Err(Malformed(self.at));
                    };
                    out.push(c);
                    self.at += 2;
                }
                Some(c) if qd_ok(c) => {
                    out.push(c);
                    self.at += 1;
                }
                Some(_) => return Err(Malformed(self.at)),
            }
        }
    }
    /// `name BWS "=" BWS (token / quoted-string)` at the cursor, or `None`
    /// (cursor unchanged) when what follows is not an auth-param.
    fn auth_param(&mut self) -> Result<Option<(String, String)>, Malformed> {
        let start = self.at;
        let Some(name) = self.token() else { return Ok(None) };
        self.skip_ows();
        if self.peek() != Some(b'=') {
            self.at = start;
            return Ok(None);
        }
        self.at += 1;
        self.skip_ows();
        let value = match self.peek() {
            Some(b'"') => self.quoted()?,
            _ => match self.token() {
                Some(v) => v,
                None => {
                    // `abc=` or `abc==`: a token68, not a parameter.
                    self.at = start;
                    return Ok(None);
                }
            },
        };
        Ok(Some((name, value)))
    }
    /// `1*token68char *"="` followed by the end of the item.
    fn token68(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_token68_char) {
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.at += 1;
        }
        let value = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        let end = self.at;
        self.skip_ows();
        if matches!(self.peek(), None | Some(b',')) {
            self.at = end;
            Some(value)
        } else {
            self.at = start;
            None
        }
    }
}

/// qdtext (RFC 9110 §5.6.4) without obs-text: HTAB, SP and visible ASCII but `"` and `\`.
fn qd_ok(c: u8) -> bool {
    c == b'\t' || c == b' ' || c == 0x21 || (0x23..=0x5b).contains(&c) || (0x5d..=0x7e).contains(&c)
}

/// Parses one `WWW-Authenticate` field value into its challenges.
pub fn parse(header: &str) -> Result<Vec<Challenge>, Malformed> {
    let mut c = Cursor { s: header.as_bytes(), at: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_separators();
        if c.peek().is_none() {
            return Ok(out);
        }
        let scheme = c.token().ok_or(Malformed(c.at))?;
        let mut challenge = Challenge { scheme, params: Vec::new(), token68: None };
        // The scheme is followed by the end, a comma, or 1*SP and its credentials.
        let before = c.at;
        c.skip_ows();
        let spaced = c.at > before;
        match c.peek() {
            None | Some(b',') => {}
            Some(_) if !spaced => return Err(Malformed(c.at)),
            Some(_) => {
                if let Some(first) = c.auth_param()? {
                    challenge.params.push(first);
                    // More parameters while the next item is `name=value`.
                    loop {
                        c.skip_ows();
                        match c.peek() {
                            None => break,
                            Some(b',') => {}
                            Some(_) => return Err(Malformed(c.at)),
                        }
                        let mark = c.at;
                        c.skip_separators();
                        match c.auth_param()? {
                            Some(p) => challenge.params.push(p),
                            None => {
                                c.at = mark;
                                break;
                            }
                        }
                    }
                } else if let Some(t) = c.token68() {
                    challenge.token68 = Some(t);
                } else {
                    return Err(Malformed(c.at));
                }
            }
        }
        out.push(challenge);
        c.skip_ows();
        match c.peek() {
            None | Some(b',') => {}
            Some(_) => return Err(Malformed(c.at)),
        }
    }
}

/// The Bearer parameters passed on (RFC 6750 §3), besides `resource_metadata`.
const KEPT: [&str; 5] = ["realm", "scope", "error", "error_description", "error_uri"];

fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for ch in v.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// One Bearer challenge: `resource_metadata` = `ours` first (so even a
/// reader taking the first match of any pattern finds it), then the kept
/// parameters in their order, each once.
fn bearer(c: &Challenge, ours: &str) -> String {
    let mut parts: Vec<String> = vec![format!("resource_metadata={}", quote(ours))];
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in &c.params {
        let lower = name.to_ascii_lowercase();
        if KEPT.contains(&lower.as_str()) && !seen.contains(&lower) {
            parts.push(format!("{lower}={}", quote(value)));
            seen.push(lower);
        }
    }
    format!("Bearer {}", parts.join(", "))
}

/// The `WWW-Authenticate` value to send the client for the downstream's
/// `values` (one per header line): its Bearer challenges pointing at `ours`,
/// or a bare Bearer challenge when none could be read. `None` when the
/// downstream sent no `WWW-Authenticate`.
pub fn rewrite(values: &[&str], ours: &str) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let Ok(challenges) = parse(v) else { continue };
        out.extend(challenges.iter().filter(|c| c.scheme.eq_ignore_ascii_case("bearer")).map(|c| bearer(c, ours)));
    }
    if out.is_empty() {
        out.push(format!("Bearer resource_metadata={}", quote(ours)));
    }
    Some(out.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://gw.example.com/.well-known/oauth-protected-resource/mcp";
    const EVIL: &str = "https://evil.example.com/prm";

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn one(h: &str) -> String {
        rewrite(&[h], OURS).unwrap()
    }

    /// What a client reading the rewritten header properly finds: each Bearer
    /// challenge's `resource_metadata`.
    fn pointers(h: &str) -> Vec<String> {
        parse(h)
            .unwrap()
            .into_iter()
            .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
            .map(|c| {
                let rm: Vec<_> = c.params.iter().filter(|(n, _)| n.eq_ignore_ascii_case("resource_metadata")).collect();
                assert_eq!(rm.len(), 1, "{h}");
                rm[0].1.clone()
            })
            .collect()
    }

    /// What a client reading it by pattern finds: the MCP TypeScript SDK
    /// takes the first `resource_metadata="…"` anywhere; a laxer reader the
    /// first `resource_metadata=`, quoted or not.
    fn regex_reader(h: &str) -> Option<String> {
        let at = h.find("resource_metadata=\"")? + "resource_metadata=\"".len();
        Some(h[at..].split('"').next().unwrap().to_owned())
    }
    fn lax_reader(h: &str) -> Option<String> {
        let at = h.find("resource_metadata=")? + "resource_metadata=".len();
        Some(h[at..].trim_start_matches('"').split(['"', ',', ' ']).next().unwrap().to_owned())
    }

    #[test]
    fn challenges_parse_per_rfc_9110() {
        let h = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#;
        let c = parse(h).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Newauth");
        assert_eq!(c[0].params, params(&[("realm", "apps"), ("type", "1"), ("title", "Login to \"apps\"")]));
        assert_eq!(c[1].params, params(&[("realm", "simple")]));
        let c = parse("Negotiate abc+/de==, Bearer, Basic").unwrap();
        assert_eq!(c[0].token68.as_deref(), Some("abc+/de=="));
        assert_eq!((c[1].scheme.as_str(), c[1].params.len()), ("Bearer", 0));
        assert_eq!(c[2].scheme, "Basic");
        let c = parse(r#"Bearer a="x, y=z", b = c ,, , Basic realm=r"#).unwrap();
        assert_eq!(c[0].params, params(&[("a", "x, y=z"), ("b", "c")]));
        assert_eq!(c[1].params, params(&[("realm", "r")]));
        for bad in
            [r#"Bearer a="open"#, "Bearer a=\"x\\\u{1}\"", "Bearer a=b c", "=x", "Bearer a=\"x\" y", "Bearer\"x\""]
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_real_resource_metadata_of_bearer_challenges_is_rewritten() {
        // The downstream's own pointer, as a token or quoted, any case: ours instead, first.
        assert_eq!(
            one(r#"Bearer error="invalid_token", resource_metadata="https://d/prm", scope="files:read""#),
            format!(r#"Bearer resource_metadata="{OURS}", error="invalid_token", scope="files:read""#)
        );
        assert_eq!(
            one("Bearer Resource_Metadata=prm, scope=a"),
            format!(r#"Bearer resource_metadata="{OURS}", scope="a""#)
        );
        // An unquoted URL is not a token (RFC 9110 §11.2): the header does not
        // parse, and the client gets a bare challenge rather than a guess.
        assert_eq!(
            one("Bearer resource_metadata=https://d/y, scope=a"),
            format!(r#"Bearer resource_metadata="{OURS}""#)
        );
        // Absent: added.
        assert_eq!(one(r#"Bearer realm="a""#), format!(r#"Bearer resource_metadata="{OURS}", realm="a""#));
        assert_eq!(one("Bearer"), format!(r#"Bearer resource_metadata="{OURS}""#));
    }

    #[test]
    fn hostile_challenges_never_point_elsewhere() {
        let hostile = [
            // A look-alike parameter before the real one (the old substring rewrite changed it instead).
            format!(r#"Bearer x_resource_metadata="{EVIL}", resource_metadata="{EVIL}""#),
            format!(r#"Bearer x_resource_metadata="{EVIL}""#),
            // The text inside a quoted description.
            format!(r#"Bearer error_description="see resource_metadata=\"{EVIL}\"", resource_metadata="{EVIL}""#),
            format!(r#"Bearer error_description="resource_metadata={EVIL}, scope=x", resource_metadata={EVIL}"#),
            // Twice, the second one hostile.
            format!(r#"Bearer resource_metadata="https://d/prm", resource_metadata="{EVIL}""#),
            // In another scheme's challenge, before and after the Bearer one.
            format!(r#"Foo resource_metadata="{EVIL}", Bearer realm="x""#),
            format!(r#"Bearer realm="x", DPoP resource_metadata="{EVIL}", algs="ES256""#),
            // Comma inside quotes pretending to start a new parameter.
            format!(r#"Bearer realm="x, resource_metadata={EVIL}", scope="a""#),
            // Unparseable: replaced entirely.
            format!(r#"Bearer resource_metadata="{EVIL}" junk"#),
            format!(r#"Bearer resource_metadata="{EVIL}"#),
            format!("Basic realm=\"{EVIL}\""),
        ];
        for h in &hostile {
            let out = one(h);
            assert!(pointers(&out).iter().all(|p| p == OURS) && !pointers(&out).is_empty(), "{h} -> {out}");
            assert_eq!(regex_reader(&out).as_deref(), Some(OURS), "{h} -> {out}");
            assert_eq!(lax_reader(&out).as_deref(), Some(OURS), "{h} -> {out}");
            assert!(!out.contains("x_resource_metadata") && !out.contains("Foo") && !out.contains("DPoP"), "{out}");
            assert!(http::HeaderValue::from_str(&out).is_ok(), "{out}");
        }
        // The description's text survives as text, quotes escaped.
        let out = one(&hostile[2]);
        assert_eq!(
            parse(&out).unwrap()[0].params[1],
            ("error_description".to_string(), format!("see resource_metadata=\"{EVIL}\""))
        );
        // Several header lines and several Bearer challenges: each rewritten.
        let out = rewrite(
            &[r#"Basic realm="b""#, &format!(r#"Bearer realm="a", Bearer realm="c", resource_metadata="{EVIL}""#)],
            OURS,
        )
        .unwrap();
        assert_eq!(pointers(&out), [OURS, OURS]);
        assert_eq!(rewrite(&[], OURS), None);
    }
}
