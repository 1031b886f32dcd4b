//! Lifetimes, scopes and registration policy of the authorization server.
//! Every lifetime has the original provider's default and can be changed with
//! a variable; [`Config::validate`] refuses lifetimes KV cannot honour.

use crate::resource::ProtectedResource;
use crate::store::MIN_TTL_SECS;

/// Longest lifetime accepted for any setting (10 years).
pub const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
/// Shortest admin token accepted (`OAUTH_ADMIN_TOKEN`).
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; compare it with [`crate::crypto::constant_time_eq`].
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Settings of the authorization server.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Access token lifetime in seconds (default 1 hour, at least 60).
    pub access_token_ttl: u64,
    /// Refresh token lifetime in seconds (default 30 days; 0 issues none).
    pub refresh_token_ttl: u64,
    /// How long a dynamically registered client stays registered (default 90 days).
    pub client_ttl: u64,
    /// How long an authorization code can be exchanged (10 minutes).
    pub code_ttl: u64,
    /// The catalogue of grantable scopes (`MCP_SCOPES`): the authorization
    /// server metadata's `scopes_supported`. Requested scopes outside it are
    /// dropped from an authorization request (and reported in
    /// [`AuthRequest::dropped_scopes`](crate::AuthRequest)). What a resource
    /// needs is [`ProtectedResource::required_scopes`].
    pub scopes_supported: Vec<String>,
    /// A new grant, once its code is exchanged, revokes the user's older grants for that client.
    pub revoke_existing_grants: bool,
    /// Development only: Client ID Metadata Document URLs may point at
    /// loopback addresses (`CIMD_ALLOW_LOOPBACK=true`), as a local test
    /// server needs. Private and other special-use addresses stay refused.
    pub cimd_allow_loopback: bool,
    /// Client ID Metadata Document clients may authenticate with
    /// `private_key_jwt` (RFC 7523 assertions signed with a key their document
    /// publishes; see [`crate::client_assertion`]) when their document offers
    /// it (`OAUTH_PRIVATE_KEY_JWT`, default on). Off, a document offering only
    /// `private_key_jwt` is refused, one also offering `none` gets `none`, and
    /// the metadata does not advertise it.
    pub private_key_jwt: bool,
    /// `POST /register` (RFC 7591) is open (`OAUTH_DYNAMIC_REGISTRATION`,
    /// default on). Off: it answers 403 and the metadata omits
    /// `registration_endpoint`; clients are then created with
    /// [`Provider::register_client_admin`](super::Provider::register_client_admin).
    pub dynamic_registration: bool,
    /// Public clients (`token_endpoint_auth_method=none`, and Client ID
    /// Metadata Document clients, which are always public) may register and
    /// be used (`OAUTH_ALLOW_PUBLIC_CLIENTS`, default on).
    pub allow_public_clients: bool,
    /// Redirect URIs with a private-use scheme of a native app (RFC 8252
    /// §7.1: `cursor://…`, `claude://…`, `com.example.app:/cb`) may be used
    /// (`OAUTH_ALLOW_PRIVATE_USE_SCHEMES`, default on, because desktop MCP
    /// clients sign in through them; workers-oauth-provider 1.2 refuses them
    /// unless `allowPrivateUseRedirectUris`). Off, such a URI may still be
    /// listed beside a usable one, but an authorization request using it is
    /// refused.
    pub allow_private_use_schemes: bool,
    /// How long a dynamic registration that never got a token lasts
    /// (`OAUTH_UNUSED_CLIENT_TTL`, seconds, default 1 day; 0: the full
    /// `client_ttl` from the start). Its first successful token request
    /// promotes it to `client_ttl`. Clients that register again on every
    /// start, or abandon a sign-in, leave records that go away after this
    /// instead of `client_ttl`. At least 3600 s.
    pub unused_client_ttl: u64,
    /// At most this many dynamic registrations per source address and hour
    /// (`OAUTH_REGISTRATION_LIMIT`, default 30; 0: no limit). The source is
    /// the `CF-Connecting-IP` header (an IPv6 address counts by its /64); a
    /// request without one is not limited. Counted in KV
    /// (`registration_rate:` keys), which is eventually consistent: requests
    /// at several Cloudflare locations at once may pass the bound a little.
    /// Over it: `429` with `Retry-After` and `temporarily_unavailable`.
    pub registration_limit: u32,
    /// Bearer token of the admin endpoint `POST /admin/clients`
    /// (`OAUTH_ADMIN_TOKEN`, a secret of at least 32 characters); unset, the
    /// endpoint does not exist.
    pub admin_token: Option<Secret>,

    // --- Protected resources and endpoint paths (resource.rs, metadata.rs, router.rs) ---
    /// The registry of protected resources tokens are issued for. Default:
    /// `/mcp` with the alias `/sse`, requiring the catalogue's scopes.
    pub resources: Vec<ProtectedResource>,
    /// The `resource` of the registered resource an authorization request
    /// that names none is for (`OAUTH_DEFAULT_RESOURCE`); `None`: the only
    /// registered resource, and with several a request must name one
    /// (`invalid_target` otherwise, as workers-oauth-provider 1.2 without
    /// `defaultResource`). Grants stored without a resource (from clients
    /// that never sent one) count as this one's, else the first registered.
    pub default_resource: Option<String>,
    /// The bare origin (`https://host` or `https://host/`) may be requested as
    /// a resource: its token is good at every resource on that origin, and
    /// `/.well-known/oauth-protected-resource` describes it (default on).
    pub origin_resource: bool,
    /// Paths of the endpoints.
    pub endpoints: Endpoints,
    /// Shared secret of the internal token validation endpoint that resource
    /// servers in other workers call over a service binding
    /// (`OAUTH_VALIDATION_SECRET`, at least 32 characters); unset, that
    /// endpoint does not exist. See [`crate::resource_server`].
    pub validation_secret: Option<Secret>,

    // --- Grant and client lifecycle (grants.rs, token.rs, register.rs) ---
    /// Sliding expiry (`OAUTH_REFRESH_TOKEN_IDLE_TTL`, seconds; default unset,
    /// or 0: a grant ends `refresh_token_ttl` after the code exchange however
    /// often it is refreshed). Set, each refresh moves the grant's end (and
    /// its record's KV expiry) to this many seconds after that refresh, so a
    /// grant lives while it is used and ends once idle. As in
    /// workers-oauth-provider 1.x (`refreshTokenIdleTTL`) there is no absolute
    /// maximum. At least 120 s and the access token lifetime.
    pub refresh_token_idle_ttl: Option<u64>,
    /// Dynamically registered clients are renewed while in use
    /// (`OAUTH_CLIENT_RENEWAL`, default off): once less than half of
    /// `client_ttl` is left, a successful token request extends the
    /// registration to a full `client_ttl` again (one KV write per client per
    /// half TTL), so a client that keeps refreshing never loses its
    /// `client_id`. Only registrations stamped with their expiry
    /// (`registrationExpiresAt`, written by this version and by 1.x) qualify.
    pub renew_clients_in_use: bool,
    /// RFC 8693 token exchange at the token endpoint (`OAUTH_TOKEN_EXCHANGE`,
    /// default off; workers-oauth-provider's `allowTokenExchangeGrant`): a
    /// client trades one of its own access tokens (`subject_token`) for a new
    /// one with fewer scopes, another resource its grant covers, or a shorter
    /// life; never more scopes, never a longer life, never a refresh token.
    /// Clients must register [`crate::TOKEN_EXCHANGE_GRANT`] in their
    /// `grant_types` (the default of registrations while this is on).
    pub token_exchange: bool,
    /// Enterprise-Managed Authorization (see [`crate::enterprise`]): the IdP
    /// whose ID-JAGs the jwt-bearer grant redeems (`OAUTH_EMA_ISSUER`,
    /// `OAUTH_EMA_JWKS_URL` or `OAUTH_EMA_JWKS`, `OAUTH_EMA_CLIENTS`); `None`
    /// (the default): the grant is `unsupported_grant_type`.
    pub enterprise: Option<crate::EnterpriseIdp>,

    // --- Bearer validation (bearer.rs, token_cache.rs) ---
    /// How long a worker keeps a validated access token in its
    /// [`crate::TokenCache`] (`OAUTH_TOKEN_CACHE_TTL`, seconds, default
    /// [`crate::TokenCache::DEFAULT_TTL_SECS`], at most
    /// [`crate::TokenCache::MAX_TTL_SECS`]; 0 turns the cache off). Revocation
    /// through this worker's isolate takes effect at once; elsewhere it may
    /// take this long.
    pub token_cache_ttl: u64,
}

/// Paths of the authorization server's endpoints on its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the application serves the authorization endpoint (advertised
    /// in the metadata; the application routes it, default `/authorize`).
    pub authorize: String,
    /// Token endpoint (default `/token`).
    pub token: String,
    /// Dynamic client registration (default `/register`).
    pub register: String,
    /// Token revocation (default `/revoke`).
    pub revoke: String,
    /// Admin endpoint for pre-registered clients (default `/admin/clients`).
    pub admin_clients: String,
    /// Internal token validation for resource servers in other workers
    /// (default `/internal/oauth/validate`; only with a validation secret).
    pub validate: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            authorize: "/authorize".into(),
            token: "/token".into(),
            register: "/register".into(),
            revoke: "/revoke".into(),
            admin_clients: "/admin/clients".into(),
            validate: "/internal/oauth/validate".into(),
        }
    }
}

/// Space-separated scope names, each once, in their first order.
/// Keeps the first of each repeated entry, in order.
pub(crate) fn dedup_in_place(v: &mut Vec<String>) {
    let mut seen: Vec<String> = Vec::with_capacity(v.len());
    v.retain(|s| {
        let first = !seen.contains(s);
        if first {
            seen.push(s.clone());
        }
        first
    });
}

fn scope_list(s: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in s.split_whitespace() {
        if !scopes.iter().any(|x| x == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

impl Endpoints {
    fn all(&self) -> [(&'static str, &str); 6] {
        [
            ("OAUTH_AUTHORIZE_PATH", &self.authorize),
            ("OAUTH_TOKEN_PATH", &self.token),
            ("OAUTH_REGISTER_PATH", &self.register),
            ("OAUTH_REVOKE_PATH", &self.revoke),
            ("OAUTH_ADMIN_CLIENTS_PATH", &self.admin_clients),
            ("OAUTH_VALIDATE_PATH", &self.validate),
        ]
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            client_ttl: 90 * 24 * 3600,
            code_ttl: 600,
            scopes_supported: vec!["todo_api:read".into(), "todo_api:write".into()],
            revoke_existing_grants: true,
            cimd_allow_loopback: false,
            private_key_jwt: true,
            dynamic_registration: true,
            allow_public_clients: true,
            allow_private_use_schemes: true,
            unused_client_ttl: 24 * 3600,
            registration_limit: 30,
            admin_token: None,
            resources: vec![ProtectedResource::new("/mcp")
                .with_alias("/sse")
                .with_required_scopes(["todo_api:read", "todo_api:write"])
                .with_name("PingOne Todo MCP server")],
            default_resource: None,
            origin_resource: true,
            endpoints: Endpoints::default(),
            validation_secret: None,
            refresh_token_idle_ttl: None,
            renew_clients_in_use: false,
            token_exchange: false,
            enterprise: None,
            token_cache_ttl: crate::TokenCache::DEFAULT_TTL_SECS,
        }
    }
}

/// `OAUTH_EMA_*`: the enterprise IdP, if `OAUTH_EMA_ISSUER` is set.
fn enterprise_idp(get: &impl Fn(&str) -> Option<String>) -> Result<Option<crate::EnterpriseIdp>, ConfigError> {
    let val = |n: &str| get(n).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(issuer) = val("OAUTH_EMA_ISSUER") else {
        if ["OAUTH_EMA_JWKS_URL", "OAUTH_EMA_JWKS", "OAUTH_EMA_CLIENTS"].iter().any(|n| val(n).is_some()) {
            return Err(ConfigError("OAUTH_EMA_* settings need OAUTH_EMA_ISSUER".into()));
        }
        return Ok(None);
    };
    let jwks = match val("OAUTH_EMA_JWKS") {
        Some(j) => Some(
            serde_json::from_str(&j)
                .map_err(|_| ConfigError("OAUTH_EMA_JWKS must be a JSON key set ({\"keys\": [...]})".into()))?,
        ),
        None => None,
    };
    Ok(Some(crate::EnterpriseIdp {
        issuer,
        jwks_uri: val("OAUTH_EMA_JWKS_URL"),
        jwks,
        allowed_clients: val("OAUTH_EMA_CLIENTS").map(|c| scope_list(&c)).unwrap_or_default(),
    }))
}

fn check_enterprise(idp: &crate::EnterpriseIdp) -> Result<(), ConfigError> {
    if url::Url::parse(&idp.issuer).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        return Err(ConfigError("OAUTH_EMA_ISSUER must be an http(s) URL".into()));
    }
    match (&idp.jwks, &idp.jwks_uri) {
        (Some(set), _) => {
            crate::client_assertion::parse_jwks(set)
                .map_err(|_| ConfigError("OAUTH_EMA_JWKS must be a public JSON key set ({\"keys\": [...]})".into()))?;
        }
        (None, Some(u)) if url::Url::parse(u).is_ok() => {}
        _ => return Err(ConfigError("OAUTH_EMA_JWKS_URL (an URL) or OAUTH_EMA_JWKS is needed".into())),
    }
    if idp.allowed_clients.is_empty() {
        return Err(ConfigError("OAUTH_EMA_CLIENTS must name at least one client_id".into()));
    }
    Ok(())
}

/// A setting that could not be read; names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ConfigError(format!("{name} must be true or false"))),
    }
}

impl Config {
    /// Reads the optional `OAUTH_ACCESS_TOKEN_TTL`, `OAUTH_REFRESH_TOKEN_TTL`,
    /// `OAUTH_CLIENT_TTL`, `OAUTH_UNUSED_CLIENT_TTL` (seconds), `OAUTH_REGISTRATION_LIMIT`
    /// (per source and hour), `MCP_SCOPES` (space-separated),
    /// `OAUTH_DYNAMIC_REGISTRATION`, `OAUTH_ALLOW_PUBLIC_CLIENTS`, `OAUTH_ALLOW_PRIVATE_USE_SCHEMES`,
    /// `OAUTH_PRIVATE_KEY_JWT`,
    /// `CIMD_ALLOW_LOOPBACK` (`true`/`false`, the last development only),
    /// `OAUTH_REFRESH_TOKEN_IDLE_TTL` (seconds, sliding expiry),
    /// `OAUTH_CLIENT_RENEWAL`, `OAUTH_TOKEN_EXCHANGE` (`true`/`false`), `OAUTH_TOKEN_CACHE_TTL`
    /// (seconds) and `OAUTH_ADMIN_TOKEN` (secret), then [validates](Self::validate) them.
    /// Errors name the setting, never its value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Config::default();
        let secs = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| ConfigError(format!("{name} must be a number of seconds"))),
            }
        };
        c.access_token_ttl = secs("OAUTH_ACCESS_TOKEN_TTL", c.access_token_ttl)?;
        c.refresh_token_ttl = secs("OAUTH_REFRESH_TOKEN_TTL", c.refresh_token_ttl)?;
        c.client_ttl = secs("OAUTH_CLIENT_TTL", c.client_ttl)?;
        c.unused_client_ttl = secs("OAUTH_UNUSED_CLIENT_TTL", c.unused_client_ttl)?;
        c.registration_limit = match get("OAUTH_REGISTRATION_LIMIT")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
        {
            None => c.registration_limit,
            Some(v) => v.parse::<u32>().map_err(|_| {
                ConfigError("OAUTH_REGISTRATION_LIMIT must be a number of registrations per hour (0: no limit)".into())
            })?,
        };
        c.cimd_allow_loopback = flag(&get, "CIMD_ALLOW_LOOPBACK", false)?;
        c.private_key_jwt = flag(&get, "OAUTH_PRIVATE_KEY_JWT", true)?;
        c.dynamic_registration = flag(&get, "OAUTH_DYNAMIC_REGISTRATION", true)?;
        c.allow_public_clients = flag(&get, "OAUTH_ALLOW_PUBLIC_CLIENTS", true)?;
        c.allow_private_use_schemes = flag(&get, "OAUTH_ALLOW_PRIVATE_USE_SCHEMES", true)?;
        if let Some(s) = get("MCP_SCOPES") {
            let scopes = scope_list(&s);
            if scopes.is_empty()
                || scopes.iter().any(|s| !s.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\'))
            {
                return Err(ConfigError("MCP_SCOPES must be space-separated scope names".into()));
            }
            c.scopes_supported = scopes.clone();
            c.resources[0].required_scopes = scopes;
        }
        c.read_resource_settings(&get)?;
        c.refresh_token_idle_ttl = Some(secs("OAUTH_REFRESH_TOKEN_IDLE_TTL", 0)?).filter(|&t| t != 0);
        c.renew_clients_in_use = flag(&get, "OAUTH_CLIENT_RENEWAL", false)?;
        c.token_exchange = flag(&get, "OAUTH_TOKEN_EXCHANGE", false)?;
        c.enterprise = enterprise_idp(&get)?;
        c.token_cache_ttl = secs("OAUTH_TOKEN_CACHE_TTL", c.token_cache_ttl)?;
        c.admin_token = get("OAUTH_ADMIN_TOKEN").filter(|t| !t.trim().is_empty()).map(Secret);
        c.validate()?;
        Ok(c)
    }

    /// Checks settings built in code as [`Self::from_lookup`] checks
    /// variables: no lifetime under KV's 60 s minimum expiry (refresh tokens:
    /// 0 = none, else also at least 120 s, since a refresh needs 60 s of grant
    /// life left), refresh tokens outliving access tokens, nothing over 10
    /// years, and an admin token long enough to resist guessing. Scopes
    /// given more than once (in [`Self::scopes_supported`] or a resource's
    /// required scopes) are kept once, in their first place, as
    /// [`Self::from_lookup`] does with `MCP_SCOPES`: metadata and challenges
    /// list each scope once.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        dedup_in_place(&mut self.scopes_supported);
        for r in &mut self.resources {
            dedup_in_place(&mut r.required_scopes);
        }
        let range = |name: &str, v: u64, min: u64| {
            if v < min || v > MAX_TTL_SECS {
                Err(ConfigError(format!("{name} must be a number of seconds between {min} and {MAX_TTL_SECS}")))
            } else {
                Ok(())
            }
        };
        range("OAUTH_ACCESS_TOKEN_TTL", self.access_token_ttl, MIN_TTL_SECS)?;
        if self.refresh_token_ttl != 0 {
            range("OAUTH_REFRESH_TOKEN_TTL", self.refresh_token_ttl, 2 * MIN_TTL_SECS).map_err(|_| {
                ConfigError(format!(
                    "OAUTH_REFRESH_TOKEN_TTL must be 0 (no refresh tokens) or between {} and {MAX_TTL_SECS} seconds",
                    2 * MIN_TTL_SECS
                ))
            })?;
            if self.refresh_token_ttl < self.access_token_ttl {
                return Err(ConfigError(
                    "OAUTH_REFRESH_TOKEN_TTL must be at least OAUTH_ACCESS_TOKEN_TTL (or 0 for no refresh tokens)"
                        .into(),
                ));
            }
        }
        if let Some(idle) = self.refresh_token_idle_ttl {
            if self.refresh_token_ttl == 0 {
                return Err(ConfigError(
                    "OAUTH_REFRESH_TOKEN_IDLE_TTL needs refresh tokens (OAUTH_REFRESH_TOKEN_TTL is 0)".into(),
                ));
            }
            range("OAUTH_REFRESH_TOKEN_IDLE_TTL", idle, 2 * MIN_TTL_SECS)?;
            if idle < self.access_token_ttl {
                return Err(ConfigError("OAUTH_REFRESH_TOKEN_IDLE_TTL must be at least OAUTH_ACCESS_TOKEN_TTL".into()));
            }
        }
        range("OAUTH_CLIENT_TTL", self.client_ttl, 3600)?;
        if self.unused_client_ttl != 0 {
            range("OAUTH_UNUSED_CLIENT_TTL", self.unused_client_ttl, 3600)?;
        }
        if self.token_cache_ttl > crate::TokenCache::MAX_TTL_SECS {
            return Err(ConfigError(format!(
                "OAUTH_TOKEN_CACHE_TTL must be a number of seconds between 0 and {}",
                crate::TokenCache::MAX_TTL_SECS
            )));
        }
        range("authorization code lifetime (code_ttl)", self.code_ttl, MIN_TTL_SECS)?;
        if self.scopes_supported.is_empty() {
            return Err(ConfigError("MCP_SCOPES must name at least one scope".into()));
        }
        if self.admin_token.as_ref().is_some_and(|t| t.0.len() < MIN_ADMIN_TOKEN_LEN) {
            return Err(ConfigError(format!("OAUTH_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LEN} characters")));
        }
        self.validate_resources()?;
        self.validate_endpoints()?;
        if let Some(idp) = &self.enterprise {
            check_enterprise(idp)?;
        }
        Ok(())
    }

    /// `MCP_REQUIRED_SCOPES` (what the default resource needs; default
    /// `MCP_SCOPES`), the endpoint paths (`OAUTH_*_PATH`),
    /// `OAUTH_EXTRA_RESOURCES` (space-separated absolute URLs of resources
    /// in other workers, registered with no required scopes: their own
    /// metadata says what they need), `OAUTH_DEFAULT_RESOURCE` (the resource of
    /// a request naming none, among several) and `OAUTH_VALIDATION_SECRET`.
    fn read_resource_settings(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(s) = get("MCP_REQUIRED_SCOPES").filter(|s| !s.trim().is_empty()) {
            let scopes = scope_list(&s);
            if scopes.iter().any(|scope| !self.scopes_supported.contains(scope)) {
                return Err(ConfigError("MCP_REQUIRED_SCOPES must name scopes of MCP_SCOPES".into()));
            }
            self.resources[0].required_scopes = scopes;
        }
        let e = &mut self.endpoints;
        for (name, field) in [
            ("OAUTH_AUTHORIZE_PATH", &mut e.authorize),
            ("OAUTH_TOKEN_PATH", &mut e.token),
            ("OAUTH_REGISTER_PATH", &mut e.register),
            ("OAUTH_REVOKE_PATH", &mut e.revoke),
            ("OAUTH_ADMIN_CLIENTS_PATH", &mut e.admin_clients),
            ("OAUTH_VALIDATE_PATH", &mut e.validate),
        ] {
            if let Some(v) = get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                *field = v;
            }
        }
        // Resources served by other workers, which validate tokens over a service binding.
        for url in get("OAUTH_EXTRA_RESOURCES").unwrap_or_default().split_whitespace() {
            if url.starts_with('/') || self.resources.iter().any(|r| r.resource == url) {
                return Err(ConfigError("OAUTH_EXTRA_RESOURCES must be distinct absolute http(s) URLs".into()));
            }
            self.resources.push(ProtectedResource::new(url));
        }
        if let Some(d) = get("OAUTH_DEFAULT_RESOURCE").map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()) {
            // Validated with the registry: it must be a registered resource.
            self.default_resource = Some(d);
        }
        self.validation_secret = get("OAUTH_VALIDATION_SECRET").filter(|t| !t.trim().is_empty()).map(Secret);
        Ok(())
    }

    /// The grant types the token endpoint takes (AS metadata `grant_types_supported`).
    pub fn grant_types_supported(&self) -> Vec<&'static str> {
        let mut g = vec!["authorization_code", "refresh_token"];
        g.extend(self.extra_grant_types());
        if self.enterprise.is_some() {
            g.push(crate::JWT_BEARER_GRANT);
        }
        g
    }

    /// Grant types clients may register besides `authorization_code` and
    /// `refresh_token` (and are registered by default): the token exchange
    /// when it is on.
    pub(crate) fn extra_grant_types(&self) -> Vec<&'static str> {
        if self.token_exchange {
            vec![crate::TOKEN_EXCHANGE_GRANT]
        } else {
            Vec::new()
        }
    }

    /// Checks that none of the application's own routes (`paths`: a sign-in
    /// callback, a health check) is an endpoint path or a protected resource
    /// path, where the application's router and this server would both claim
    /// it and one of them would never be reached.
    pub fn check_app_routes(&self, paths: &[&str]) -> Result<(), ConfigError> {
        for &path in paths {
            if let Some((name, _)) = self.endpoints.all().into_iter().find(|&(_, p)| p == path) {
                return Err(ConfigError(format!("{name} must not be {path}, a route of the application")));
            }
            if self.is_protected_path(path) {
                return Err(ConfigError(format!(
                    "the protected resources must not cover {path}, a route of the application"
                )));
            }
        }
        Ok(())
    }

    fn validate_endpoints(&self) -> Result<(), ConfigError> {
        let all = self.endpoints.all();
        for (i, (name, path)) in all.iter().enumerate() {
            // A resource path's rules, and neither `/` alone, a trailing `/` nor an escape.
            let ok = crate::resource::path_ok(path) && path.len() > 1 && !path.ends_with('/') && !path.contains('%');
            if !ok {
                return Err(ConfigError(format!("{name} must be a path like /token")));
            }
            if all[..i].iter().any(|(_, p)| p == path) {
                return Err(ConfigError(format!("{name} is the path of another endpoint")));
            }
            if path.starts_with("/.well-known/") || self.is_protected_path(path) {
                return Err(ConfigError(format!("{name} must not be a well-known or protected resource path")));
            }
        }
        if self.validation_secret.as_ref().is_some_and(|t| t.0.len() < MIN_ADMIN_TOKEN_LEN) {
            return Err(ConfigError(format!(
                "OAUTH_VALIDATION_SECRET must be at least {MIN_ADMIN_TOKEN_LEN} characters"
            )));
        }
        Ok(())
    }
}
