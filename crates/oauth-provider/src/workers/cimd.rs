//! The Workers fetch behind [`crate::cimd`]: GET a client metadata document
//! without following redirects, reading the body as a stream and stopping as
//! soon as it passes the size limit, the whole exchange (body included)
//! bounded by a timer that aborts the request.

use crate::cimd::{FetchFailure, FetchedDocument, MetadataFetcher};
use async_trait::async_trait;
use futures_util::future::{select, Either};
use std::time::Duration;
use url::Url;
use worker::{AbortController, Delay, Fetch, Headers, Request, RequestInit, RequestRedirect};

/// The [`MetadataFetcher`] for Workers: the platform `fetch`, no redirects,
/// the size and time limits enforced while the body streams in.
pub struct WorkersMetadataFetcher;

fn unreachable(e: impl std::fmt::Display) -> FetchFailure {
    FetchFailure::Unreachable(e.to_string().chars().take(200).collect())
}

async fn fetch(url: &Url, max_bytes: usize, controller: &AbortController) -> Result<FetchedDocument, FetchFailure> {
    let headers = Headers::new();
    headers.set("accept", "application/json").map_err(unreachable)?;
    let mut init = RequestInit::new();
    init.with_headers(headers).with_redirect(RequestRedirect::Manual);
    let request = Request::new_with_init(url.as_str(), &init).map_err(unreachable)?;
    let mut res = Fetch::Request(request).send_with_signal(&controller.signal()).await.map_err(unreachable)?;
    let status = res.status_code();
    let cache_control = res.headers().get("cache-control").ok().flatten();
    if status != 200 {
        return Ok(FetchedDocument { status, cache_control, body: Vec::new() });
    }
    let declared = res.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(FetchFailure::TooLarge);
    }
    match crate::body::collect_capped(res.stream().map_err(unreachable)?, max_bytes).await {
        Ok(Some(body)) => Ok(FetchedDocument { status, cache_control, body }),
        Ok(None) => Err(FetchFailure::TooLarge),
        Err(e) => Err(unreachable(e)),
    }
}

#[async_trait(?Send)]
impl MetadataFetcher for WorkersMetadataFetcher {
    async fn get(&self, url: &Url, max_bytes: usize, timeout_ms: u32) -> Result<FetchedDocument, FetchFailure> {
        let controller = AbortController::default();
        let result = {
            let work = std::pin::pin!(fetch(url, max_bytes, &controller));
            let timer = std::pin::pin!(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
            match select(work, timer).await {
                Either::Left((result, _)) => result,
                Either::Right(_) => Err(FetchFailure::Timeout),
            }
        };
        // Ends the request and its body stream if they are still going.
        controller.abort();
        result
    }
}
