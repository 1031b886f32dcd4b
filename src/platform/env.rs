//! Settings from the Worker's environment.

use worker::Env;

/// The var or secret `name` as text (in workers-rs both are the same string
/// binding); `None` when it is unset or not a string.
pub fn text(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}
