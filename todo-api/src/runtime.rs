//! Workers glue (Wasm only): the fetch handler and the per-user Durable Object.
//!
//! The Worker routes the request, checks the settings, verifies the bearer
//! token (JWKS cached per isolate), checks the scope and validates the body;
//! then it sends the resulting [`Command`] — nothing else of the client's
//! request — to the Durable Object named after the token's `sub`. That object
//! keeps the user's list in memory and in its storage under one key, and
//! applies each command synchronously before saving, so concurrent writes by
//! one user cannot lose each other's todos.

use crate::auth::{self, Claims};
use crate::config::Config;
use crate::jwks::{self, JwksCache};
use crate::routes::{self, Reply, Route};
use crate::todos::{self, Command, TodoList as List};
use crate::verified::{self, VerifiedTokens};
use futures_util::StreamExt;
use jsonwebtoken::jwk::JwkSet;
use std::cell::RefCell;
use worker::{
    durable_object, event, AbortSignal, Context, Date, DurableObject, Env, Fetch, Headers, Method, Request,
    RequestInit, Response, Result, State,
};

/// The Durable Object namespace binding in `todo-api/wrangler.toml`.
const BINDING: &str = "TODO_LISTS";
/// The one storage key of a user's object.
const STORAGE_KEY: &str = "todos";
/// URL of the Worker → object requests (only the body matters).
const INTERNAL_URL: &str = "https://todo-list.internal/";
/// How long fetching the issuer's JWKS may take.
const JWKS_TIMEOUT_MS: u32 = 5_000;

thread_local! {
    /// The issuer's keys, per isolate.
    static JWKS: RefCell<JwksCache> = const { RefCell::new(JwksCache::new()) };
    /// Tokens verified with those keys, per isolate (emptied when they are fetched again).
    static VERIFIED: RefCell<VerifiedTokens> = RefCell::new(VerifiedTokens::new());
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// A [`Reply`] as a Workers response (always JSON, never cached).
fn respond(reply: Reply) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    for (name, value) in &reply.headers {
        headers.set(name, value)?;
    }
    let body = serde_json::to_vec(&reply.body)?;
    Ok(Response::from_bytes(body)?.with_status(reply.status).with_headers(headers))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let method = req.method().to_string();
    let route = routes::route(&method, &req.path());
    if let Some(reply) = route.early_reply(&method) {
        return respond(reply);
    }
    let api = match route {
        Route::Api(api) => api,
        Route::Health => return respond(Reply::health()),
        _ => return respond(Reply::not_found()),
    };

    let config = match Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())) {
        Ok(c) => c,
        Err(e) => {
            worker::console_error!("todo-api: configuration: {e}");
            return respond(Reply::config(&e));
        }
    };
    let authorization = req.headers().get("authorization").ok().flatten();
    let claims = match authenticate(authorization.as_deref(), &config).await {
        Ok(c) => c,
        Err(reply) => return respond(reply),
    };
    if let Err(e) = claims.require(api.scope()) {
        return respond(Reply::auth(&e));
    }

    let body = if api.has_body() {
        match read_body(&mut req).await {
            Ok(b) => b,
            Err(reply) => return respond(reply),
        }
    } else {
        Vec::new()
    };
    match routes::command(&api, &body) {
        Ok(command) => forward(&env, &claims.sub, &command).await,
        Err(reply) => respond(reply),
    }
}

/// The body, read up to [`routes::MAX_BODY_BYTES`] (one byte more makes it a 413).
async fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, Reply> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > routes::MAX_BODY_BYTES as u64) {
        return Err(Reply::too_large());
    }
    // No stream: no body.
    let Ok(mut stream) = req.stream() else { return Ok(Vec::new()) };
    let mut body = Vec::new();
    let mut too_large = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Reply::bad_request("The request body could not be read"))?;
        // Past the cap the rest is read and dropped, not kept.
        too_large = too_large || body.len() + chunk.len() > routes::MAX_BODY_BYTES;
        if !too_large {
            body.extend_from_slice(&chunk);
        }
    }
    if too_large {
        return Err(Reply::too_large());
    }
    Ok(body)
}

/// Verifies the bearer token (or finds it verified already), fetching the
/// issuer's keys first when the cache says so (first use, stale, or an unknown
/// `kid` after the cooldown).
async fn authenticate(authorization: Option<&str>, config: &Config) -> std::result::Result<Claims, Reply> {
    let token = auth::bearer_token(authorization).map_err(|e| Reply::auth(&e))?;
    let header = auth::inspect(token).map_err(|e| Reply::auth(&e))?;
    let now = now_ms();
    let fetch_now = JWKS.with(|c| {
        let mut cache = c.borrow_mut();
        let fetch = cache.should_fetch(header.kid.as_deref(), now);
        if fetch {
            cache.attempt(now);
        }
        fetch
    });
    if fetch_now {
        match fetch_jwks(&config.jwks_url()).await {
            Ok(keys) => {
                JWKS.with(|c| c.borrow_mut().store(keys, now_ms()));
                VERIFIED.with(|v| v.borrow_mut().clear());
            }
            Err(e) => worker::console_error!("todo-api: fetching the issuer's JWKS failed: {e}"),
        }
    }
    JWKS.with(|c| match c.borrow().keys() {
        None => Err(Reply::keys_unavailable()),
        Some(keys) => VERIFIED
            .with(|v| verified::verify_cached(&mut v.borrow_mut(), token, keys, config, now / 1000))
            .map_err(|e| Reply::auth(&e)),
    })
}

async fn fetch_jwks(url: &str) -> std::result::Result<JwkSet, String> {
    let headers = Headers::new();
    headers.set("accept", "application/json").map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    // The signal also bounds reading the body.
    let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(JWKS_TIMEOUT_MS));
    let mut res = Fetch::Request(req).send_with_signal(&signal).await.map_err(|e| e.to_string())?;
    if res.status_code() != 200 {
        return Err(format!("HTTP {}", res.status_code()));
    }
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    jwks::parse(&body).ok_or_else(|| "the answer is not a JWKS".into())
}

/// Sends `command` to the user's object and returns its answer.
async fn forward(env: &Env, sub: &str, command: &Command) -> Result<Response> {
    let sent = async {
        let stub = env.durable_object(BINDING)?.get_by_name(sub)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(serde_json::to_string(command)?.into()));
        stub.fetch_with_request(Request::new_with_init(INTERNAL_URL, &init)?).await
    };
    match sent.await {
        Ok(res) => Ok(res),
        Err(e) => {
            worker::console_error!("todo-api: the user's list object failed: {e}");
            respond(Reply::internal())
        }
    }
}

/// One user's todo list (one object per `sub`).
#[durable_object]
pub struct TodoList {
    state: State,
    /// The list as last loaded or saved; `None` until loaded (or after a failed save).
    list: RefCell<Option<List>>,
}

impl TodoList {
    /// Loads the list into memory unless it is there already.
    async fn load(&self) -> std::result::Result<(), Reply> {
        if self.list.borrow().is_some() {
            return Ok(());
        }
        let loaded = match self.state.storage().get::<String>(STORAGE_KEY).await {
            Ok(None) => List::default(),
            Ok(Some(raw)) => serde_json::from_str(&raw).map_err(|e| {
                worker::console_error!("todo-api: stored list is unreadable: {e}");
                Reply::internal()
            })?,
            Err(e) => {
                worker::console_error!("todo-api: reading the list failed: {e}");
                return Err(Reply::internal());
            }
        };
        // Another request may have loaded (and changed) it meanwhile: keep that one.
        self.list.borrow_mut().get_or_insert(loaded);
        Ok(())
    }

    async fn run(&self, command: &Command) -> std::result::Result<Reply, Reply> {
        self.load().await?;
        // Change and snapshot in one synchronous step: no other request can
        // interleave between reading the list and writing it back.
        let (todos, snapshot) = {
            let mut slot = self.list.borrow_mut();
            let list = slot.as_mut().ok_or_else(Reply::internal)?;
            todos::apply(list, command, now_ms()).map_err(|e| Reply::list_error(&e))?;
            let snapshot =
                if command.writes() { Some(serde_json::to_string(list).map_err(|_| Reply::internal())?) } else { None };
            (list.sorted(), snapshot)
        };
        if let Some(json) = snapshot {
            // Writes are applied in the order they are issued; the answer waits for the write.
            if let Err(e) = self.state.storage().put(STORAGE_KEY, json).await {
                worker::console_error!("todo-api: saving the list failed: {e}");
                self.list.borrow_mut().take();
                return Err(Reply::internal());
            }
        }
        Ok(Reply::todos(&todos))
    }
}

impl DurableObject for TodoList {
    fn new(state: State, _env: Env) -> Self {
        Self { state, list: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.bytes().await.unwrap_or_default();
        let Ok(command) = serde_json::from_slice::<Command>(&body) else {
            return respond(Reply::error(400, "invalid_request", "Bad internal request"));
        };
        match self.run(&command).await {
            Ok(reply) | Err(reply) => respond(reply),
        }
    }
}
