//! End-to-end tests of the pure MCP server: HTTP requests through the
//! gateway, envelopes through JSON to in-memory session objects, tools against
//! a fake Todo API.

mod fakes;
mod modern;
mod stream_watch;
mod tools;
mod transport;
