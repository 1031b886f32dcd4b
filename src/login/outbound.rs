//! The `oauth2` crate's view of the shared outbound HTTP client.

use crate::outbound::{HttpClient, OutboundError};
use std::future::Future;
use std::pin::Pin;

/// Adapts an [`HttpClient`] to `oauth2::AsyncHttpClient`.
pub struct OAuth2Http<'a>(pub &'a dyn HttpClient);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuth2Http<'_> {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, OutboundError>> + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.0.send(request))
    }
}
