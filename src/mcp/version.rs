//! MCP protocol revisions this server speaks, and negotiation.

/// The session-era revisions, newest first (the modern one is served by
/// [`super::stateless`]; the list is `mcp_request`'s, which the gateway shares).
pub const SUPPORTED: [&str; 4] = crate::mcp_request::SESSION_ERA_VERSIONS;
pub const LATEST: &str = SUPPORTED[0];
/// What a Streamable HTTP request without `MCP-Protocol-Version` and without a
/// negotiated session version is assumed to speak (the spec's fallback).
pub const DEFAULT_HTTP: &str = "2025-03-26";

pub fn is_supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// The version to answer `initialize` with: the client's when supported,
/// otherwise our newest (the client then decides whether it can go on).
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED.iter().copied().find(|v| *v == requested).unwrap_or(LATEST)
}

/// JSON-RPC batches exist in 2025-03-26 (and were tolerated before); 2025-06-18
/// removed them.
pub fn allows_batches(version: &str) -> bool {
    // Revision strings are ISO dates, so they compare chronologically.
    version < "2025-06-18"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_negotiation_echoes_supported_and_falls_back_to_latest() {
        for v in SUPPORTED {
            assert_eq!(negotiate(v), v);
        }
        assert_eq!(negotiate("2099-01-01"), LATEST);
        assert_eq!(negotiate("1.0"), LATEST);
        assert_eq!(LATEST, "2025-11-25");
    }

    #[test]
    fn mcp_batches_only_before_2025_06_18() {
        assert!(allows_batches("2024-11-05"));
        assert!(allows_batches("2025-03-26"));
        assert!(!allows_batches("2025-06-18"));
        assert!(!allows_batches("2025-11-25"));
    }
}
