//! Workers entry point: routes each request to the module that owns it.

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    match path.as_str() {
        "/health" => Response::from_json(&serde_json::json!({
            "name": crate::SERVER_NAME,
            "version": crate::SERVER_VERSION,
            "status": "ok",
        })),
        _ => Ok(Response::from_json(&serde_json::json!({
            "error": "not_found",
            "error_description": "No such endpoint",
        }))?
        .with_status(404)),
    }
}
