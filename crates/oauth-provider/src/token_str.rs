//! Token and code strings: `{userId}:{grantId}:{secret}`, the format of
//! workers-oauth-provider. The user and grant ids name the KV records; only
//! the SHA-256 of the whole string is stored.

use crate::crypto::{random_token, sha256_hex};

/// Length of grant and client ids.
pub const ID_LEN: usize = 16;
/// Length of the random part of tokens, codes and client secrets.
pub const SECRET_LEN: usize = 32;
/// Longest token string we look at (anything longer is not ours).
const MAX_TOKEN_LEN: usize = 1024;

/// The parts of a token string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParts<'a> {
    pub user_id: &'a str,
    pub grant_id: &'a str,
}

/// Splits a token into its ids; `None` when it cannot be one of ours.
pub fn parse(token: &str) -> Option<TokenParts<'_>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut it = token.split(':');
    let (u, g, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || u.is_empty() || g.is_empty() || s.is_empty() {
        return None;
    }
    Some(TokenParts { user_id: u, grant_id: g })
}

/// A new token or code for a grant.
pub fn mint(user_id: &str, grant_id: &str) -> String {
    format!("{user_id}:{grant_id}:{}", random_token(SECRET_LEN))
}

/// The id under which a token, code or secret is stored: lowercase SHA-256 hex.
pub fn hash(token: &str) -> String {
    sha256_hex(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_to_their_ids() {
        let t = mint("user-1", "grant-1");
        let p = parse(&t).unwrap();
        assert_eq!((p.user_id, p.grant_id), ("user-1", "grant-1"));
        assert_eq!(t.len(), "user-1:grant-1:".len() + SECRET_LEN);
    }

    #[test]
    fn strings_that_are_not_tokens_are_refused() {
        for bad in ["", "a:b", "a:b:c:d", "::x", "a::c", &"x".repeat(2000)] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
