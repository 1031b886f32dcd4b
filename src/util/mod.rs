//! Small pieces every module needs, written once: time, randomness, hashing,
//! constant-time comparison, HTML escaping, displayable text. Nothing here knows about Workers.

pub mod html;
pub mod origin;
pub mod time;

// Hashing, randomness and displayable text are shared with the OAuth server.
pub use oauth_provider::{crypto, text};
