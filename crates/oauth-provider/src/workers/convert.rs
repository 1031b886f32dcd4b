//! Conversions between `worker` requests/responses and the `http` types the
//! provider speaks, so everything but this glue runs natively.

use worker::{Headers, Request, Response, Result};

/// Largest request body any endpoint reads (DCR and MCP limits are lower and
/// enforced by their handlers). A larger declared `Content-Length` is refused
/// before reading; any body (chunked ones too) is read as a stream and
/// refused as soon as it passes the cap.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Reads a Workers request into an `http::Request` with its whole body.
/// Returns `Ok(None)` when the body is larger than `MAX_BODY_BYTES`.
pub async fn into_http(mut req: Request) -> Result<Option<http::Request<Vec<u8>>>> {
    let declared = req.headers().get("content-length")?.and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Ok(None);
    }
    let mut builder = http::Request::builder().method(req.method().as_ref()).uri(req.url()?.as_str());
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = match req.method() {
        worker::Method::Get | worker::Method::Head | worker::Method::Options => Vec::new(),
        _ if req.inner().body().is_none() => Vec::new(),
        // A declared length within the cap: the runtime delivers exactly that
        // many bytes, read in one go (one call, not a reader loop through JS).
        _ if declared.is_some() => {
            let body = req.bytes().await?;
            if body.len() > MAX_BODY_BYTES {
                return Ok(None);
            }
            body
        }
        // Chunked: counted while read, refused as soon as it passes the cap.
        _ => match crate::body::collect_capped(req.stream()?, MAX_BODY_BYTES).await? {
            Some(body) => body,
            None => return Ok(None),
        },
    };
    builder.body(body).map(Some).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Turns an `http::Response` into a Workers response.
pub fn from_http(res: http::Response<Vec<u8>>) -> Result<Response> {
    let (parts, body) = res.into_parts();
    let headers = Headers::new();
    for (name, value) in parts.headers.iter() {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    let res = if body.is_empty() { Response::empty()? } else { Response::from_bytes(body)? };
    Ok(res.with_status(parts.status.as_u16()).with_headers(headers))
}
