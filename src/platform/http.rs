//! Workers request glue: the `worker` ↔ `http` conversions come from the
//! OAuth crate; handing a request on to a Durable Object is ours.

pub use crate::oauth::workers::{from_http, into_http, MAX_BODY_BYTES};
use worker::{Headers, Method, Request, RequestInit, Result};

/// Turns an `http::Request` back into a Workers request (to hand it to a
/// Durable Object unchanged).
pub fn to_worker(req: &http::Request<Vec<u8>>) -> Result<Request> {
    let headers = Headers::new();
    for (name, value) in req.headers() {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(req.method().as_str().to_owned())).with_headers(headers);
    if !req.body().is_empty() {
        init.with_body(Some(worker::js_sys::Uint8Array::from(req.body().as_slice()).into()));
    }
    Request::new_with_init(&req.uri().to_string(), &init)
}
