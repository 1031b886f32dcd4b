//! Protected resources (RFC 8707 resource indicators, RFC 9728) and audience
//! checks, driven by the registry in [`Config::resources`](crate::Config).
//!
//! A resource is named by a path on the authorization server's own origin
//! (`/mcp`, resolved against the origin a request came to) or by an absolute
//! URL (a resource served elsewhere, e.g. by another worker that validates
//! tokens over a service binding). A token is good at its audience's path and
//! below, on path-segment boundaries (`/mcp` covers `/mcp/x`, not
//! `/mcp-other`), except below another registered resource (with `/mcp/x`
//! registered too, it is a resource of its own and the most specific one
//! serves its URLs), and a token for a resource is also good at that resource's
//! aliases (`/sse`, the legacy transport of the MCP server at `/mcp`). With
//! [`Config::origin_resource`](crate::Config) the bare origin may be asked
//! for too: its token is good at every resource on that origin.

use crate::config::{Config, ConfigError};
use url::Url;

/// One protected resource of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The canonical resource: a path on the server's own origin (`/mcp`)
    /// or an absolute `http(s)` URL without query or fragment.
    pub resource: String,
    /// Further paths on the resource's origin where its tokens are good too
    /// (e.g. `/sse`, the legacy transport of the same MCP server). Each has
    /// its own protected resource metadata document naming that path.
    pub aliases: Vec<String>,
    /// Scopes any access needs: the resource metadata's `scopes_supported`
    /// and the `scope` of its 401 challenge (never `offline_access`). Empty:
    /// the challenge names none and clients ask for what they like.
    pub required_scopes: Vec<String>,
    /// Human-readable `resource_name` of its metadata.
    pub name: String,
}

impl ProtectedResource {
    /// A resource with no aliases, no required scopes and its identifier as name.
    pub fn new(resource: impl Into<String>) -> Self {
        let resource = resource.into();
        Self { name: resource.clone(), resource, aliases: Vec::new(), required_scopes: Vec::new() }
    }
    /// Adds an alias path.
    pub fn with_alias(mut self, path: impl Into<String>) -> Self {
        self.aliases.push(path.into());
        self
    }
    /// Sets the required scopes.
    pub fn with_required_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        crate::config::dedup_in_place(&mut self.required_scopes);
        self
    }
    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Named by a path on the server's own origin (else an absolute URL).
    pub fn is_local(&self) -> bool {
        self.resource.starts_with('/')
    }

    /// The canonical resource URL; `origin` is the server's own (used for local ones).
    pub fn url(&self, origin: &str) -> String {
        if self.is_local() {
            format!("{origin}{}", self.resource)
        } else {
            self.resource.clone()
        }
    }

    /// The origin serving the resource.
    pub fn origin(&self, own_origin: &str) -> String {
        if self.is_local() {
            own_origin.to_owned()
        } else {
            Url::parse(&self.resource).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
        }
    }

    /// The resource's path (`/` for a bare origin).
    pub fn path(&self) -> String {
        if self.is_local() {
            self.resource.clone()
        } else {
            Url::parse(&self.resource).map(|u| u.path().to_owned()).unwrap_or_default()
        }
    }

    /// Of the resource's canonical path and aliases, the one `path` is at or
    /// below (the canonical one first).
    pub fn prefix_of(&self, path: &str) -> Option<String> {
        std::iter::once(self.path()).chain(self.aliases.iter().cloned()).find(|p| path_within(path, p))
    }

    /// `url` is at or below the resource or one of its aliases, on its origin.
    pub fn covers(&self, own_origin: &str, url: &Url) -> bool {
        url.origin().ascii_serialization() == self.origin(own_origin) && self.prefix_of(url.path()).is_some()
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |why: &str| Err(ConfigError(format!("protected resource '{}': {why}", self.resource)));
        if self.is_local() {
            if !path_ok(&self.resource) {
                return bad("must be a path like /mcp (no query, fragment, dot segments or '//')");
            }
        } else {
            let Ok(u) = Url::parse(&self.resource) else { return bad("must be a path or an absolute URL") };
            if !matches!(u.scheme(), "http" | "https")
                || u.host().is_none()
                || !u.username().is_empty()
                || u.password().is_some()
                || u.query().is_some()
                || u.fragment().is_some()
                || self.resource.contains('#')
            {
                return bad("must be an http(s) URL without userinfo, query or fragment");
            }
            if u.as_str().trim_end_matches('/') != self.resource.trim_end_matches('/') {
                return bad("must be written in canonical form (lowercase scheme and host, no default port)");
            }
        }
        for a in &self.aliases {
            if !path_ok(a) || a == "/" {
                return bad("aliases must be paths like /sse");
            }
        }
        if self.required_scopes.iter().any(|s| s == "offline_access") {
            return bad("offline_access cannot be a required scope");
        }
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return bad("needs a name without control characters");
        }
        Ok(())
    }
}

/// A path: starts with `/`, no query, fragment, dot segments, empty segments or whitespace.
pub(crate) fn path_ok(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains("//")
        && !p.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"?#\\".contains(&b))
        && !p.split('/').any(|s| s == "." || s == "..")
}

/// `path` is `prefix` or below it on a segment boundary.
pub fn path_within(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

impl Config {
    /// The resource grants stored without one count as, and whose name the
    /// authorization server metadata shows ([`Config::default_resource`], else
    /// the first registered). What an authorization request naming none is
    /// for is [`Config::authorization_default_resource`].
    pub fn default_protected_resource(&self) -> &ProtectedResource {
        self.default_resource
            .as_deref()
            .and_then(|d| self.resources.iter().find(|r| r.resource == d))
            .or(self.resources.first())
            .expect("validated configuration has a resource")
    }

    /// The resource an authorization request that names none is for:
    /// [`Config::default_resource`] when set, else the only registered
    /// resource; `None` when several are registered and none is the default
    /// (such a request is then refused with `invalid_target`, as
    /// workers-oauth-provider 1.2 refuses it without `defaultResource`).
    pub fn authorization_default_resource(&self) -> Option<&ProtectedResource> {
        match (&self.default_resource, self.resources.as_slice()) {
            (Some(d), _) => self.resources.iter().find(|r| &r.resource == d),
            (None, [only]) => Some(only),
            (None, _) => None,
        }
    }

    /// The registered resource whose canonical URL is `resource`.
    pub fn find_resource(&self, own_origin: &str, resource: &str) -> Option<&ProtectedResource> {
        let want = Url::parse(resource).ok()?;
        self.resources.iter().find(|r| Url::parse(&r.url(own_origin)).is_ok_and(|u| u == want))
    }

    /// The registered resource serving `url` (at or below its path or an
    /// alias). Resources may nest (`/mcp` and `/mcp/notes`): the most specific
    /// one, whose matching path is longest, serves the URL.
    pub fn resource_at(&self, own_origin: &str, url: &Url) -> Option<&ProtectedResource> {
        let origin = url.origin().ascii_serialization();
        self.resources
            .iter()
            .filter(|r| r.origin(own_origin) == origin)
            .filter_map(|r| r.prefix_of(url.path()).map(|p| (p.trim_end_matches('/').len(), r)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, r)| r)
    }

    /// Whether a request path on this server's own origin is protected by a
    /// bearer token (a local resource's path or alias, or below).
    pub fn is_protected_path(&self, path: &str) -> bool {
        self.resources.iter().filter(|r| r.is_local()).any(|r| r.prefix_of(path).is_some())
    }

    /// The paths on this server's origin that are protected (each resource's
    /// path and aliases; requests at or below them need a bearer token).
    pub fn protected_paths(&self) -> Vec<&str> {
        self.resources
            .iter()
            .filter(|r| r.is_local())
            .flat_map(|r| std::iter::once(r.resource.as_str()).chain(r.aliases.iter().map(String::as_str)))
            .collect()
    }

    /// Scopes a request at `url` needs (the serving resource's required
    /// scopes; at the bare origin, those of every resource on it).
    pub fn required_scopes_at(&self, own_origin: &str, url: &Url) -> Vec<String> {
        match self.resource_at(own_origin, url) {
            Some(r) => r.required_scopes.clone(),
            None => self.origin_required_scopes(own_origin, &url.origin().ascii_serialization()),
        }
    }

    /// The required scopes of every resource on `origin`, without repeats.
    pub(crate) fn origin_required_scopes(&self, own_origin: &str, origin: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.resources.iter().filter(|r| r.origin(own_origin) == origin) {
            for s in &r.required_scopes {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// Checks the registry (see [`Config::validate`]).
    pub(crate) fn validate_resources(&self) -> Result<(), ConfigError> {
        if self.resources.is_empty() {
            return Err(ConfigError("at least one protected resource is needed".into()));
        }
        let mut seen: Vec<String> = Vec::new();
        for r in &self.resources {
            r.check()?;
            for s in &r.required_scopes {
                if !self.scopes_supported.contains(s) {
                    return Err(ConfigError(format!(
                        "protected resource '{}' requires scope '{s}', which is not in the grantable scopes (MCP_SCOPES)",
                        r.resource
                    )));
                }
            }
            // Relative paths compared as if on one origin; absolute URLs as they are.
            for p in std::iter::once(r.path()).chain(r.aliases.iter().cloned()) {
                let key = format!("{}{p}", r.origin("local:"));
                if seen.contains(&key) {
                    return Err(ConfigError(format!("protected resource path {p} is registered twice")));
                }
                seen.push(key);
            }
        }
        if let Some(d) = &self.default_resource {
            if !self.resources.iter().any(|r| &r.resource == d) {
                return Err(ConfigError(format!("default resource '{d}' is not a registered resource")));
            }
        }
        Ok(())
    }
}

/// Checks a `resource` parameter a client sent (RFC 8707): absolute http(s),
/// no fragment or query, and naming a registered resource (at or below its
/// path or an alias) or, with [`Config::origin_resource`], the bare origin
/// of this server. A value with a query is refused here; see
/// [`map_requested`] for what a request's value is taken as.
pub fn check_requested(config: &Config, resource: &str, origin: &str) -> Result<(), &'static str> {
    let url = Url::parse(resource).map_err(|_| "resource must be an absolute URI")?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() || resource.contains('#') {
        return Err("resource must be an http(s) URI without a fragment");
    }
    if url.query().is_some() {
        return Err("resource is not served by this server");
    }
    let own = url.origin().ascii_serialization() == origin;
    if own && url.path() == "/" && config.origin_resource {
        return Ok(());
    }
    if config.resource_at(origin, &url).is_some() {
        return Ok(());
    }
    Err("resource is not served by this server")
}

/// What an authorization or token request's `resource` value is taken as
/// (workers-oauth-provider 1.2.3, RFC 8707 §2.2): a value with a query is the
/// URL a client uses at the resource (`https://mcp.example.com/mcp?mode=direct`),
/// and since no registered resource constrains the query (resources have
/// none), every query parameter is ignored and the value maps to the same URL
/// without its query; a value without one is kept as sent. The result is then
/// held to [`check_requested`]. A fragment is never ignored (it makes the
/// value invalid), nor is anything but the query.
pub fn map_requested(resource: &str) -> String {
    match Url::parse(resource) {
        Ok(mut u) if u.query().is_some() && u.fragment().is_none() && !resource.contains('#') => {
            u.set_query(None);
            u.to_string()
        }
        _ => resource.to_owned(),
    }
}

/// Whether a token for `audience` may be used at `request_url`: the request
/// is at or below the audience's path, or the audience is a registered
/// resource and the request at one of its aliases. A resource registered
/// below another one (`/mcp/notes` under `/mcp`) is a resource of its own:
/// the outer one's token is not good there (only the bare origin's is).
pub fn audience_allows(config: &Config, audience: &str, request_url: &Url) -> bool {
    let own = request_url.origin().ascii_serialization();
    let aliases = config.find_resource(&own, audience).map(|r| r.aliases.as_slice()).unwrap_or(&[]);
    if !audience_allows_at(audience, aliases, request_url) {
        return false;
    }
    // A single resource nests nothing: the bearer check of the usual setup stays as it was.
    if config.resources.len() < 2 {
        return true;
    }
    let Ok(aud) = Url::parse(audience) else { return false };
    if aud.path() == "/" {
        return true;
    }
    match config.resource_at(&own, request_url) {
        // The request is at the audience's own resource, or at one no more
        // specific than the audience.
        Some(serving) => {
            Url::parse(&serving.url(&own)).is_ok_and(|s| s == aud)
                || serving
                    .prefix_of(request_url.path())
                    .is_some_and(|p| p.trim_end_matches('/').len() <= aud.path().trim_end_matches('/').len())
        }
        None => true,
    }
}

/// [`audience_allows`] for a resource server that knows the `aliases` of the
/// resource `audience` names (none when it is not that resource).
pub fn audience_allows_at(audience: &str, aliases: &[String], request_url: &Url) -> bool {
    let Ok(aud) = Url::parse(audience) else { return false };
    if aud.origin() != request_url.origin() {
        return false;
    }
    let path = request_url.path();
    path_within(path, aud.path()) || aliases.iter().any(|a| path_within(path, a))
}

/// Whether a token for `audience` belongs to `resource` (what the
/// authorization server checks before telling a resource server about a
/// token): the audience is the resource, an ancestor of it on its origin (the
/// bare origin), or at or below it or one of its aliases.
pub fn audience_belongs_to(audience: &str, resource: &ProtectedResource, own_origin: &str) -> bool {
    let (Ok(aud), Ok(res)) = (Url::parse(audience), Url::parse(&resource.url(own_origin))) else { return false };
    if aud.origin() != res.origin() {
        return false;
    }
    resource.prefix_of(aud.path()).is_some() || path_within(res.path(), aud.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn audiences_match_on_path_boundaries() {
        let c = Config::default();
        let mcp = "https://mcp.example.com/mcp";
        assert!(audience_allows(&c, mcp, &u("https://mcp.example.com/mcp")));
        assert!(audience_allows(&c, mcp, &u("https://mcp.example.com/mcp/sub")));
        assert!(audience_allows(&c, mcp, &u("https://mcp.example.com/sse/message?sessionId=1")));
        assert!(!audience_allows(&c, mcp, &u("https://mcp.example.com/mcp-other")));
        assert!(!audience_allows(&c, mcp, &u("https://other.example.com/mcp")));
        assert!(audience_allows(&c, "https://mcp.example.com/", &u("https://mcp.example.com/sse")));
        assert!(!audience_allows(&c, "https://mcp.example.com/sse", &u("https://mcp.example.com/mcp")));
    }

    #[test]
    fn nested_resources_are_resources_of_their_own() {
        let mut c = Config {
            resources: vec![
                ProtectedResource::new("/mcp").with_alias("/sse"),
                ProtectedResource::new("/mcp/notes").with_name("Notes"),
                ProtectedResource::new("/mcp/cal"),
            ],
            ..Config::default()
        };
        c.validate().unwrap();
        let o = "https://mcp.example.com";
        assert_eq!(c.resource_at(o, &u("https://mcp.example.com/mcp/notes")).unwrap().name, "Notes");
        assert_eq!(c.resource_at(o, &u("https://mcp.example.com/mcp")).unwrap().resource, "/mcp");
        assert_eq!(c.resource_at(o, &u("https://mcp.example.com/mcp/other")).unwrap().resource, "/mcp");
        let (mcp, notes) = ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp/notes");
        assert!(audience_allows(&c, notes, &u(notes)));
        assert!(!audience_allows(&c, notes, &u("https://mcp.example.com/mcp/cal")));
        assert!(!audience_allows(&c, mcp, &u(notes)), "the outer resource's token is not good below");
        assert!(!audience_allows(&c, notes, &u(mcp)));
        assert!(audience_allows(&c, mcp, &u("https://mcp.example.com/sse")));
        assert!(audience_allows(&c, "https://mcp.example.com/", &u(notes)), "the origin's token is good everywhere");
        assert_eq!(
            crate::bearer::resource_metadata_url(&c, &u(notes)),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/notes"
        );
    }

    #[test]
    fn requested_resources_must_name_this_server() {
        let c = Config::default();
        let o = "https://mcp.example.com";
        assert!(check_requested(&c, "https://mcp.example.com/mcp", o).is_ok());
        assert!(check_requested(&c, "https://mcp.example.com/sse", o).is_ok());
        assert!(check_requested(&c, "https://mcp.example.com/", o).is_ok());
        assert!(check_requested(&c, "https://mcp.example.com", o).is_ok());
        assert!(check_requested(&c, "https://mcp.example.com/mcp#x", o).is_err());
        assert!(check_requested(&c, "https://mcp.example.com/mcp-other", o).is_err());
        assert!(check_requested(&c, "https://evil.example.com/mcp", o).is_err());
        assert!(check_requested(&c, "urn:x", o).is_err());
        let closed = Config { origin_resource: false, ..Config::default() };
        assert!(check_requested(&closed, "https://mcp.example.com/", o).is_err());
    }

    #[test]
    fn a_registry_of_several_resources_drives_every_check() {
        let mut c = Config {
            resources: vec![
                ProtectedResource::new("/mcp").with_alias("/sse").with_required_scopes(["todo_api:read"]),
                ProtectedResource::new("https://calendar.example.net/mcp").with_name("Calendar"),
            ],
            ..Config::default()
        };
        c.validate().unwrap();
        let o = "https://mcp.example.com";
        assert!(check_requested(&c, "https://calendar.example.net/mcp", o).is_ok());
        assert!(check_requested(&c, "https://calendar.example.net/other", o).is_err());
        assert!(c.is_protected_path("/sse/message"));
        assert!(!c.is_protected_path("/calendar"));
        assert_eq!(c.protected_paths(), ["/mcp", "/sse"]);
        let cal = &c.resources[1];
        assert!(audience_belongs_to("https://calendar.example.net/mcp", cal, o));
        assert!(!audience_belongs_to("https://mcp.example.com/mcp", cal, o));
        assert!(!audience_belongs_to("https://mcp.example.com/", cal, o));
        assert!(audience_belongs_to("https://mcp.example.com/", &c.resources[0], o));
        assert!(audience_belongs_to("https://mcp.example.com/sse", &c.resources[0], o));
        assert_eq!(c.required_scopes_at(o, &u("https://mcp.example.com/sse")), ["todo_api:read"]);
        assert_eq!(c.default_protected_resource().resource, "/mcp");
    }

    #[test]
    fn bad_registries_are_refused_when_the_configuration_is_built() {
        let with = |rs: Vec<ProtectedResource>| Config { resources: rs, ..Config::default() }.validate();
        assert!(with(vec![]).is_err());
        for bad in
            ["mcp", "/mcp?x=1", "/a/../b", "//x", "https://u@x.example/mcp", "https://X.example/mcp", "ftp://x/y"]
        {
            assert!(with(vec![ProtectedResource::new(bad)]).is_err(), "{bad}");
        }
        assert!(with(vec![ProtectedResource::new("/mcp"), ProtectedResource::new("/x").with_alias("/mcp")]).is_err());
        assert!(with(vec![ProtectedResource::new("/mcp").with_required_scopes(["nope"])]).is_err());
        assert!(with(vec![ProtectedResource::new("/mcp").with_required_scopes(["offline_access"])]).is_err());
        let mut c = Config { default_resource: Some("/other".into()), ..Config::default() };
        assert!(c.validate().is_err());
    }
}
