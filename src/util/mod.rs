//! Small pieces every module needs, written once: time, randomness, hashing,
//! constant-time comparison, HTML escaping. Nothing here knows about Workers.

pub mod crypto;
pub mod html;
pub mod origin;
pub mod time;
