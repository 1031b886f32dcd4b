//! [`HttpClient`] over the Workers fetch API, bounded by a timeout
//! (`AbortSignal.timeout`) and a response size limit. Wasm only.

use crate::outbound::{HttpClient, OutboundError, MAX_RESPONSE_BYTES, TIMEOUT_MS};
use async_trait::async_trait;
use worker::{AbortSignal, Fetch, Headers, Method, Request, RequestInit};

pub struct FetchClient;

fn unreachable(e: impl std::fmt::Display) -> OutboundError {
    OutboundError::Unreachable(e.to_string())
}

#[async_trait(?Send)]
impl HttpClient for FetchClient {
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, OutboundError> {
        let (parts, body) = req.into_parts();
        let headers = Headers::new();
        for (name, value) in parts.headers.iter() {
            if let Ok(v) = value.to_str() {
                headers.append(name.as_str(), v).map_err(unreachable)?;
            }
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(parts.method.as_str().to_owned())).with_headers(headers);
        if !body.is_empty() {
            init.with_body(Some(worker::js_sys::Uint8Array::from(body.as_slice()).into()));
        }
        let request = Request::new_with_init(&parts.uri.to_string(), &init).map_err(unreachable)?;
        // The signal also bounds reading the body.
        let signal = AbortSignal::from(worker::web_sys::AbortSignal::timeout_with_u32(TIMEOUT_MS));
        let classify = |e: worker::Error| if signal.aborted() { OutboundError::Timeout } else { unreachable(e) };

        let res = Fetch::Request(request).send_with_signal(&signal).await.map_err(classify)?;
        read_whole(res, classify).await
    }
}

/// A Workers response read whole into an `http::Response`, refusing bodies
/// over [`MAX_RESPONSE_BYTES`]; `classify` names what a read error means.
pub async fn read_whole(
    mut res: worker::Response,
    classify: impl Fn(worker::Error) -> OutboundError,
) -> Result<http::Response<Vec<u8>>, OutboundError> {
    let declared =
        res.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    if declared > MAX_RESPONSE_BYTES {
        return Err(unreachable("response too large"));
    }
    // A fetched body is a stream: read in one go by the runtime rather than
    // chunk by chunk through JS (`Response::bytes` runs a reader loop).
    let bytes = match res.body() {
        worker::ResponseBody::Stream(stream) => {
            let whole = worker::web_sys::Response::new_with_opt_readable_stream(Some(stream))
                .and_then(|r| r.array_buffer())
                .map_err(|e| classify(e.into()))?;
            let buffer = worker::wasm_bindgen_futures::JsFuture::from(whole).await.map_err(|e| classify(e.into()))?;
            worker::js_sys::Uint8Array::new(&buffer).to_vec()
        }
        _ => res.bytes().await.map_err(classify)?,
    };
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(unreachable("response too large"));
    }
    let mut out = http::Response::builder().status(res.status_code());
    for (name, value) in res.headers().entries() {
        out = out.header(name, value);
    }
    out.body(bytes).map_err(unreachable)
}
