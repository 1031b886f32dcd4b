//! Wall-clock time in whole seconds since the Unix epoch.
//!
//! `std::time::SystemTime::now()` panics on `wasm32-unknown-unknown`, so the
//! Wasm build asks JavaScript's `Date.now()` instead.

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_millis() / 1000
}

/// Milliseconds since the Unix epoch.
#[cfg(target_arch = "wasm32")]
pub fn now_millis() -> u64 {
    worker::js_sys::Date::now() as u64
}

/// Milliseconds since the Unix epoch.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
