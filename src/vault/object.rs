//! The `TokenVault` Durable Object (one per user, named by the PingOne
//! `sub`) and the Worker's calls to it. Its storage holds one record list
//! (`entries`), each entry sealed for the user and its resource.
//!
//! Refreshes run one at a time per user: a caller that finds the token due
//! takes the refresh lock, reads the entry again (a refresh that finished
//! while it waited is used as it is) and refreshes only if still due, saving
//! the rotated tokens before answering. So concurrent calls cost the
//! downstream one refresh, and a server that ends the token family when a
//! rotated refresh token is presented twice never sees that.

use super::model::{most_specific, Record, Secret};
use super::oauth::{refresh_request, revoke_request, tokens_from, TokenError};
use super::seal;
use crate::outbound::HttpClient;
use crate::platform::fetch::FetchClient;
use crate::util::time::now_secs;
use aes_gcm::Aes256Gcm;
use futures_util::lock::Mutex;
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// The Durable Object namespace binding in `wrangler.toml`.
pub const BINDING: &str = "TOKEN_VAULT";
const ENTRIES: &str = "entries";

/// What the vault answers for a token request (as JSON `{"status": …}`,
/// written and read by hand: serde's tagged enums cost the Wasm bundle more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A usable access token, and the resource of the entry it came from.
    Token { access_token: String, resource: String },
    /// Nothing stored for that resource.
    None,
    /// There was one, but the downstream refused its refresh (`invalid_grant`):
    /// it is gone, the user must connect again.
    Reconnect,
    /// The downstream's server no longer knows this worker's client
    /// (`invalid_client` at the refresh): the entry is gone, and the client's
    /// registration must be made again before the user connects again.
    ClientGone,
    /// The downstream's token endpoint failed; try again later.
    Unavailable,
}

/// A call from the Worker: `{"user", "resource"?, "grant"?, "secret"?, "access_token"?}`.
struct Call {
    user: String,
    resource: String,
    grant: String,
    secret: Option<Secret>,
    access_token: Option<String>,
}

impl Call {
    fn from_json(mut v: Value) -> Option<Self> {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let user = v.get("user")?.as_str()?.to_owned();
        let secret = v.get_mut("secret").map(Value::take).and_then(|s| serde_json::from_value(s).ok());
        let access_token = v.get("access_token").and_then(Value::as_str).map(str::to_owned);
        Some(Self { user, resource: text(&v, "resource"), grant: text(&v, "grant"), secret, access_token })
    }
}

#[durable_object]
pub struct TokenVault {
    state: State,
    env: Env,
    refreshing: Mutex<()>,
}

impl Lookup {
    fn to_json(&self) -> Value {
        match self {
            Lookup::Token { access_token, resource } => {
                json!({"status": "token", "access_token": access_token, "resource": resource})
            }
            Lookup::None => json!({"status": "none"}),
            Lookup::Reconnect => json!({"status": "reconnect"}),
            Lookup::ClientGone => json!({"status": "client_gone"}),
            Lookup::Unavailable => json!({"status": "unavailable"}),
        }
    }

    /// The answer read back; `None` when unreadable.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(match v["status"].as_str()? {
            "token" => Lookup::Token {
                access_token: v["access_token"].as_str()?.to_owned(),
                resource: v["resource"].as_str()?.to_owned(),
            },
            "none" => Lookup::None,
            "reconnect" => Lookup::Reconnect,
            "client_gone" => Lookup::ClientGone,
            "unavailable" => Lookup::Unavailable,
            _ => return None,
        })
    }
}

impl DurableObject for TokenVault {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, refreshing: Mutex::new(()) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Some(call) = req.json::<Value>().await.ok().and_then(Call::from_json) else {
            return Response::error("Bad request", 400);
        };
        let Some(key) = crate::platform::env::text(&self.env, "COOKIE_ENCRYPTION_KEY").map(|k| seal::key(k.as_bytes()))
        else {
            return Response::error("COOKIE_ENCRYPTION_KEY is missing", 500);
        };
        let v = Vault { storage: self.state.storage(), key, user: call.user.clone() };
        match req.path().as_str() {
            "/token" => Response::from_json(&self.token(&v, &call.resource, &call.grant).await?.to_json()),
            "/put" => {
                let Some(secret) = call.secret else { return Response::error("Bad request", 400) };
                v.put(&call.resource, &secret).await?;
                Response::from_json(&json!({"ok": true}))
            }
            "/claim" => Response::from_json(&json!({"usable": v.claim(&call.resource).await?})),
            // What the user has connected (no tokens): for the connections page.
            "/list" => {
                let list: Vec<Value> = v
                    .load()
                    .await?
                    .iter()
                    .map(|r| json!({"resource": r.resource, "claimed_at": r.claimed_at}))
                    .collect();
                Response::from_json(&json!({ "entries": list }))
            }
            "/refused" => {
                let refused = call.access_token.as_deref().unwrap_or_default();
                Response::from_json(&self.refused(&v, &call.resource, refused).await?.to_json())
            }
            "/drop" => Response::from_json(&json!({"dropped": v.drop_entry(&call.resource).await?})),
            "/grant-ended" => {
                v.grant_ended(&call.grant).await?;
                Response::from_json(&json!({"ok": true}))
            }
            _ => Response::error("Not found", 404),
        }
    }
}

impl TokenVault {
    /// A usable token for `resource` (the most specific entry), refreshed
    /// once when due; `grant` is noted as using the entry.
    async fn token(&self, v: &Vault, resource: &str, grant: &str) -> Result<Lookup> {
        let mut records = v.load().await?;
        let Some(at) = pick(&records, resource) else { return Ok(Lookup::None) };
        let Some(secret) = v.open(&records[at]) else {
            // Sealed under another key (COOKIE_ENCRYPTION_KEY changed): unusable.
            records.remove(at);
            v.save(&records).await?;
            return Ok(Lookup::None);
        };
        let now = now_secs();
        let secret = if secret.tokens.needs_refresh(now) {
            let _one_at_a_time = self.refreshing.lock().await;
            // Read again: the refresh this caller waited for may have done it.
            records = v.load().await?;
            let Some(again) = pick(&records, resource) else { return Ok(Lookup::None) };
            let Some(secret) = v.open(&records[again]) else { return Ok(Lookup::None) };
            if secret.tokens.needs_refresh(now_secs()) {
                match v.refresh(&mut records, again, secret).await? {
                    Ok(s) => s,
                    Err(lookup) => return Ok(lookup),
                }
            } else {
                secret
            }
        } else {
            secret
        };
        let Some(at) = pick(&records, resource) else { return Ok(Lookup::None) };
        if records[at].used_by(grant) {
            v.save(&records).await?;
        }
        Ok(Lookup::Token { access_token: secret.tokens.access_token, resource: records[at].resource.clone() })
    }

    /// The downstream refused `refused`, the access token of the entry of
    /// `resource`, although it had not run out (revoked, or the server lost
    /// its access tokens): the entry is refreshed at once. A working refresh
    /// gives the token to retry with; `invalid_grant` and `invalid_client`
    /// tell a revoked grant (the registration stays) from a forgotten client.
    async fn refused(&self, v: &Vault, resource: &str, refused: &str) -> Result<Lookup> {
        let _one_at_a_time = self.refreshing.lock().await;
        let mut records = v.load().await?;
        let Some(at) = records.iter().position(|r| r.resource == resource) else { return Ok(Lookup::Reconnect) };
        let Some(secret) = v.open(&records[at]) else { return Ok(Lookup::Reconnect) };
        if secret.tokens.access_token != refused {
            // Another call refreshed it meanwhile: that token is the one to try.
            return Ok(Lookup::Token { access_token: secret.tokens.access_token, resource: resource.to_owned() });
        }
        Ok(match v.refresh(&mut records, at, secret).await? {
            Ok(secret) => Lookup::Token { access_token: secret.tokens.access_token, resource: resource.to_owned() },
            Err(lookup) => lookup,
        })
    }
}

fn pick(records: &[Record], resource: &str) -> Option<usize> {
    let r = most_specific(records.iter().map(|r| r.resource.as_str()), resource)?;
    records.iter().position(|x| x.resource == r)
}

struct Vault {
    storage: worker::Storage,
    key: Aes256Gcm,
    user: String,
}

fn log(line: &str) {
    worker::console_log!("vault: {line}");
}

impl Vault {
    async fn load(&self) -> Result<Vec<Record>> {
        let raw: Option<String> = self.storage.get(ENTRIES).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()).unwrap_or_default())
    }

    async fn save(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return self.storage.delete_all().await;
        }
        self.storage.put(ENTRIES, serde_json::to_string(records)?).await
    }

    fn open(&self, r: &Record) -> Option<Secret> {
        seal::open(&self.key, &r.sealed, &self.user, &r.resource)
    }

    /// Refreshes entry `at`, saving the rotated tokens (or dropping the entry
    /// on `invalid_grant`); `Err` is the answer to give instead of a token.
    /// `records` is read again after the downstream answered (this object
    /// serves other calls meanwhile: a Disconnect, a grant's end, a new
    /// connection) and only this entry is changed, if it is still the one
    /// refreshed; `records` is left as saved.
    async fn refresh(
        &self,
        records: &mut Vec<Record>,
        at: usize,
        mut secret: Secret,
    ) -> Result<std::result::Result<Secret, Lookup>> {
        let resource = records[at].resource.clone();
        let Some(rt) = secret.tokens.refresh_token.clone() else {
            log("a downstream token is no longer usable and there is no refresh token; the user must connect again");
            records.remove(at);
            self.save(records).await?;
            return Ok(Err(Lookup::Reconnect));
        };
        let refreshed = records[at].sealed.clone();
        let answer = match refresh_request(&secret.client, &rt, &resource) {
            Ok(req) => FetchClient.send(req).await.map_err(|e| TokenError::Failed(e.to_string())),
            Err(e) => Err(e),
        };
        let tokens = answer.and_then(|res| tokens_from(res.status().as_u16(), res.body(), now_secs(), Some(&rt)));
        *records = self.load().await?;
        let here = records.iter().position(|r| r.resource == resource);
        let unchanged = here.filter(|&i| records[i].sealed == refreshed);
        match tokens {
            Ok(tokens) => {
                secret.tokens = tokens;
                let Some(at) = unchanged else {
                    // Dropped or connected anew meanwhile: these tokens are nobody's.
                    log("a downstream entry changed while it was refreshed; the new tokens are revoked");
                    self.revoke_secret(&secret).await;
                    return Ok(match here.and_then(|i| self.open(&records[i])) {
                        Some(newer) => Ok(newer),
                        None => Err(Lookup::Reconnect),
                    });
                };
                records[at].sealed = seal::seal(&self.key, &secret, &self.user, &resource);
                self.save(records).await?;
                log("refreshed a downstream token");
                Ok(Ok(secret))
            }
            Err(e @ (TokenError::InvalidGrant | TokenError::InvalidClient)) => {
                log(&format!("the downstream refused the refresh ({e:?}); the entry is dropped"));
                if let Some(at) = unchanged {
                    records.remove(at);
                    self.save(records).await?;
                }
                Ok(Err(if e == TokenError::InvalidClient { Lookup::ClientGone } else { Lookup::Reconnect }))
            }
            Err(TokenError::Failed(why)) => {
                log(&format!("refreshing a downstream token failed: {why}"));
                Ok(Err(Lookup::Unavailable))
            }
        }
    }

    async fn put(&self, resource: &str, secret: &Secret) -> Result<()> {
        let mut records = self.load().await?;
        records.retain(|r| r.resource != resource);
        records.push(Record {
            resource: resource.to_owned(),
            sealed: seal::seal(&self.key, secret, &self.user, resource),
            grants: Vec::new(),
            claimed_at: now_secs(),
        });
        self.save(&records).await
    }

    /// Whether a usable entry exists for `resource`; if so, a sign-in claims
    /// it (its grace starts again, see `model::UNCLAIMED_GRACE_SECS`).
    async fn claim(&self, resource: &str) -> Result<bool> {
        let mut records = self.load().await?;
        let Some(at) = pick(&records, resource) else { return Ok(false) };
        if !self.open(&records[at]).is_some_and(|s| s.tokens.usable(now_secs())) {
            return Ok(false);
        }
        records[at].claimed_at = now_secs();
        self.save(&records).await?;
        Ok(true)
    }

    /// Drops the entry of exactly `resource` (revoked at the downstream, best
    /// effort); `false` when there was none.
    async fn drop_entry(&self, resource: &str) -> Result<bool> {
        let mut records = self.load().await?;
        let Some(at) = records.iter().position(|r| r.resource == resource) else { return Ok(false) };
        let gone = records.remove(at);
        self.save(&records).await?;
        self.revoke(&gone).await;
        Ok(true)
    }

    async fn grant_ended(&self, grant: &str) -> Result<()> {
        let records = self.load().await?;
        let used = records.iter().any(|r| r.grants.iter().any(|g| g == grant));
        let now = now_secs();
        let (mut gone, mut kept) = (Vec::new(), Vec::new());
        for mut r in records {
            if r.orphaned_after(grant, now) {
                gone.push(r);
            } else {
                kept.push(r);
            }
        }
        if used || !gone.is_empty() {
            self.save(&kept).await?;
        }
        for r in &gone {
            log("no MCP grant uses a downstream token any more; dropped");
            self.revoke(r).await;
        }
        Ok(())
    }

    /// Best effort: the downstream's revocation endpoint, if it has one.
    async fn revoke(&self, r: &Record) {
        if let Some(secret) = self.open(r) {
            self.revoke_secret(&secret).await;
        }
    }

    async fn revoke_secret(&self, secret: &Secret) {
        if let Some(req) = revoke_request(&secret.client, &secret.tokens) {
            if let Err(e) = FetchClient.send(req).await {
                log(&format!("revoking a downstream token failed: {e}"));
            }
        }
    }
}

/// Calls the user's vault (`op`: `token`, `refused`, `put`, `claim`, `list`,
/// `drop`, `grant-ended`) with `body` (`user` added).
pub async fn call(env: &Env, user: &str, op: &str, mut body: Value) -> Result<Value> {
    let namespace = env.durable_object(BINDING)?;
    body["user"] = json!(user);
    let stub = namespace.id_from_name(user)?.get_stub()?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post).with_body(Some(body.to_string().into()));
    let req = Request::new_with_init(&format!("https://vault/{op}"), &init)?;
    let mut res = stub.fetch_with_request(req).await?;
    if res.status_code() != 200 {
        return Err(worker::Error::RustError(format!("the token vault answered {}", res.status_code())));
    }
    res.json().await
}
