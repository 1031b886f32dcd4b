//! Durable Object storage as [`SessionStorage`]: one JSON record, and an
//! alarm at its expiry (or earlier) so abandoned sessions are erased.

use crate::mcp::session::{SessionState, SessionStorage};
use crate::store::StoreError;
use async_trait::async_trait;
use worker::{ScheduledTime, Storage};

const KEY: &str = "session";

pub struct DoStorage(pub Storage);

fn unavailable(e: worker::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[async_trait(?Send)]
impl SessionStorage for DoStorage {
    async fn load(&self) -> Result<Option<SessionState>, StoreError> {
        let raw: Option<String> = self.0.get(KEY).await.map_err(unavailable)?;
        // A record this version cannot read is treated as no session (404 → re-initialize).
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn save(&self, state: &SessionState) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.0.put(KEY, json).await.map_err(unavailable)?;
        // An earlier alarm stays (an open legacy stream is watched more often;
        // the alarm handler always schedules the next one).
        let expires_ms = (state.expires_at as i64).saturating_mul(1000);
        if self.0.get_alarm().await.map_err(unavailable)?.is_some_and(|at| at <= expires_ms) {
            return Ok(());
        }
        let at = worker::js_sys::Date::new(&(expires_ms as f64).into());
        self.0.set_alarm(ScheduledTime::new(at)).await.map_err(unavailable)
    }

    async fn erase(&self) -> Result<(), StoreError> {
        self.0.delete_alarm().await.map_err(unavailable)?;
        self.0.delete_all().await.map_err(unavailable)
    }
}
