//! The Todo API's settings (`[vars]` in `todo-api/wrangler.toml`, or `.dev.vars`).
//! Errors name the setting, never its value.

use std::fmt;

pub const ISSUER_VAR: &str = "API_ISSUER";
pub const AUDIENCE_VAR: &str = "API_AUDIENCE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The PingOne issuer, e.g. `https://auth.pingone.com/<env>/as` (no trailing slash);
    /// tokens' `iss` must equal it and its keys are at `{issuer}/jwks`.
    pub issuer: String,
    /// What tokens' `aud` must contain (PingOne's resource audience, = `API_IDENTIFIER`).
    pub audience: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing(&'static str),
    Malformed(&'static str, &'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(name) => write!(f, "the setting {name} is missing"),
            ConfigError::Malformed(name, why) => write!(f, "the setting {name} is malformed: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// https, or http for a local development issuer.
fn check_issuer(issuer: &str) -> Result<(), &'static str> {
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err("it must be an https URL (http only for 127.0.0.1 or localhost)");
        }
        rest
    } else {
        return Err("it must be an https URL");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || issuer.contains(['?', '#']) || issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it must be an https URL without query or fragment");
    }
    Ok(())
}

impl Config {
    /// Reads the settings through `lookup` (the Workers env, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| {
            lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name))
        };
        let issuer = get(ISSUER_VAR)?.trim_end_matches('/').to_owned();
        check_issuer(&issuer).map_err(|why| ConfigError::Malformed(ISSUER_VAR, why))?;
        let audience = get(AUDIENCE_VAR)?;
        Ok(Config { issuer, audience })
    }

    /// PingOne publishes an environment's keys at `{issuer}/jwks`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: Option<&str>, audience: Option<&str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| match name {
            ISSUER_VAR => issuer.map(str::to_owned),
            AUDIENCE_VAR => audience.map(str::to_owned),
            _ => None,
        })
    }

    #[test]
    fn reads_both_settings() {
        let c = config(Some("https://auth.pingone.com/env/as/"), Some(" https://api.example ")).unwrap();
        assert_eq!(c.issuer, "https://auth.pingone.com/env/as");
        assert_eq!(c.audience, "https://api.example");
        assert_eq!(c.jwks_url(), "https://auth.pingone.com/env/as/jwks");
        assert!(config(Some("http://127.0.0.1:9000/as"), Some("a")).is_ok());
        assert!(config(Some("http://localhost:9000/as"), Some("a")).is_ok());
    }

    #[test]
    fn names_what_is_missing_or_malformed_without_the_value() {
        assert_eq!(config(None, Some("a")), Err(ConfigError::Missing(ISSUER_VAR)));
        assert_eq!(config(Some("  "), Some("a")), Err(ConfigError::Missing(ISSUER_VAR)));
        assert_eq!(config(Some("https://i"), None), Err(ConfigError::Missing(AUDIENCE_VAR)));
        for bad in
            ["http://evil.example/as", "ftp://x", "https://", "https://x/as?q=1", "https://x /as", "secret-value"]
        {
            let err = config(Some(bad), Some("a")).unwrap_err();
            assert!(matches!(err, ConfigError::Malformed(ISSUER_VAR, _)), "{bad}");
            assert!(!err.to_string().contains(bad), "{err}");
            assert!(err.to_string().contains(ISSUER_VAR));
        }
    }
}
