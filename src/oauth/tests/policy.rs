//! Configuration and registration policy: lifetimes checked when the
//! configuration is built.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn config_err(pairs: &[(&str, &str)]) -> String {
    Config::from_lookup(vars(pairs)).expect_err("refused").0
}

#[test]
fn lifetimes_under_sixty_seconds_are_refused_naming_the_setting() {
    for (name, value) in [
        ("OAUTH_ACCESS_TOKEN_TTL", "59"),
        ("OAUTH_ACCESS_TOKEN_TTL", "0"),
        ("OAUTH_REFRESH_TOKEN_TTL", "30"),
        ("OAUTH_REFRESH_TOKEN_TTL", "119"),
        ("OAUTH_CLIENT_TTL", "59"),
        ("OAUTH_ACCESS_TOKEN_TTL", "-5"),
        ("OAUTH_ACCESS_TOKEN_TTL", "1e3"),
        ("OAUTH_CLIENT_TTL", "999999999999"),
    ] {
        let err = config_err(&[(name, value)]);
        assert!(err.starts_with(name), "{name}={value}: {err}");
        assert!(!err.contains(&format!(" {value}")), "never echoes the value: {err}");
    }
    // The boundaries themselves are accepted.
    let c = Config::from_lookup(vars(&[("OAUTH_ACCESS_TOKEN_TTL", "60"), ("OAUTH_REFRESH_TOKEN_TTL", "120")])).unwrap();
    assert_eq!((c.access_token_ttl, c.refresh_token_ttl), (60, 120));
}

#[test]
fn refresh_tokens_must_outlive_access_tokens() {
    let err = config_err(&[("OAUTH_ACCESS_TOKEN_TTL", "7200"), ("OAUTH_REFRESH_TOKEN_TTL", "3600")]);
    assert!(err.contains("OAUTH_REFRESH_TOKEN_TTL") && err.contains("OAUTH_ACCESS_TOKEN_TTL"), "{err}");
    // Equal is fine; 0 (no refresh tokens) is fine whatever the access lifetime.
    Config::from_lookup(vars(&[("OAUTH_ACCESS_TOKEN_TTL", "7200"), ("OAUTH_REFRESH_TOKEN_TTL", "7200")])).unwrap();
    let c = Config::from_lookup(vars(&[("OAUTH_ACCESS_TOKEN_TTL", "7200"), ("OAUTH_REFRESH_TOKEN_TTL", "0")])).unwrap();
    assert_eq!(c.refresh_token_ttl, 0);
}

#[test]
fn a_configuration_built_in_code_is_checked_the_same_way() {
    assert_eq!(Config::default().validate(), Ok(()));
    let bad = |f: fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        c.validate().expect_err("refused").0
    };
    assert!(bad(|c| c.access_token_ttl = 10).starts_with("OAUTH_ACCESS_TOKEN_TTL"));
    assert!(bad(|c| c.refresh_token_ttl = 100).starts_with("OAUTH_REFRESH_TOKEN_TTL"));
    assert!(bad(|c| c.refresh_token_ttl = 1800).starts_with("OAUTH_REFRESH_TOKEN_TTL"));
    assert!(bad(|c| c.code_ttl = 30).contains("code_ttl"));
    assert!(bad(|c| c.scopes_supported.clear()).starts_with("MCP_SCOPES"));
}
