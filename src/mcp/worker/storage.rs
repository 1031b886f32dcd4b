//! Durable Object storage as [`SessionStorage`]: one JSON record, and an
//! alarm at its expiry so abandoned sessions are erased.

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
        let at = worker::js_sys::Date::new(&((state.expires_at as f64) * 1000.0).into());
        self.0.set_alarm(ScheduledTime::new(at)).await.map_err(unavailable)
    }

    async fn erase(&self) -> Result<(), StoreError> {
        self.0.delete_alarm().await.map_err(unavailable)?;
        self.0.delete_all().await.map_err(unavailable)
    }
}
