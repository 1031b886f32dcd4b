//! Outbound HTTP behind a small trait, for every module that calls out
//! (PingOne sign-in, the Todo API tools): the Workers fetch API or a service
//! binding in production (`platform::fetch`), a scripted fake in native tests.

use async_trait::async_trait;
use std::fmt;

/// Every outbound request gives up after this long.
pub const TIMEOUT_MS: u32 = 10_000;
/// Largest response body read (PingOne discovery, JWKS, tokens, userinfo; Todo API answers).
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// Why an outbound request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// No answer within [`TIMEOUT_MS`].
    Timeout,
    /// Connection refused, DNS failure, oversized body and the like.
    Unreachable(String),
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundError::Timeout => write!(f, "no answer within {} s", TIMEOUT_MS / 1000),
            OutboundError::Unreachable(m) => write!(f, "unreachable: {m}"),
        }
    }
}

impl std::error::Error for OutboundError {}

#[async_trait(?Send)]
pub trait HttpClient {
    /// Sends `req` and returns the whole response, whatever its status.
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, OutboundError>;
}

/// A GET with `Accept: application/json` (and optionally a bearer token).
pub fn get_json_request(url: &str, bearer: Option<&str>) -> Result<http::Request<Vec<u8>>, OutboundError> {
    let mut b = http::Request::get(url).header(http::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        b = b.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    b.body(Vec::new()).map_err(|_| OutboundError::Unreachable("invalid URL".into()))
}

#[cfg(test)]
pub mod fake {
    //! A scripted [`HttpClient`]: answers by exact URL (without query), and
    //! records every request so tests can assert what was sent.

    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    type Answer = Result<(u16, String), OutboundError>;

    #[derive(Default)]
    pub struct FakeHttp {
        routes: RefCell<HashMap<String, Answer>>,
        pub requests: RefCell<Vec<http::Request<Vec<u8>>>>,
    }

    impl FakeHttp {
        pub fn json(&self, url: &str, status: u16, body: serde_json::Value) {
            self.routes.borrow_mut().insert(url.to_owned(), Ok((status, body.to_string())));
        }
        pub fn fail(&self, url: &str, e: OutboundError) {
            self.routes.borrow_mut().insert(url.to_owned(), Err(e));
        }
        pub fn calls_to(&self, url: &str) -> usize {
            self.requests.borrow().iter().filter(|r| strip_query(&r.uri().to_string()) == url).count()
        }
    }

    fn strip_query(u: &str) -> String {
        u.split('?').next().unwrap_or(u).to_owned()
    }

    #[async_trait(?Send)]
    impl HttpClient for FakeHttp {
        async fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, OutboundError> {
            let key = strip_query(&req.uri().to_string());
            self.requests.borrow_mut().push(req);
            match self.routes.borrow().get(&key).cloned() {
                Some(Ok((status, body))) => Ok(http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body.into_bytes())
                    .map_err(|e| OutboundError::Unreachable(e.to_string()))?),
                Some(Err(e)) => Err(e),
                None => Err(OutboundError::Unreachable(format!("no fake route for {key}"))),
            }
        }
    }
}
