//! Small pieces every module needs, written once: time, randomness, hashing,
//! constant-time comparison, HTML escaping, displayable text. Nothing here knows about Workers.

pub mod body;
pub mod crypto;
pub mod html;
pub mod origin;
pub mod text;
pub mod time;
