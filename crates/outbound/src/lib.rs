//! Outbound IVR calls: Switchboard calls people, through the 8x8 Callflows API.
//!
//! # Layout
//! * [`client`]: [`CallflowsClient`], `POST /api/v1/subaccounts/{id}/callflows` with typed
//!   errors for every answer the platform gives, and retries only where one is safe.
//! * [`list`]: a campaign's call list (CSV), validated whole before any call.
//! * [`schedule`]: the campaign's pacing (calls per second, concurrency), calling windows and
//!   retry policy, as plain state machines that take the time as an argument.
//!
//! Nothing here knows about sessions or flows: the server registers the session (see
//! `switchboard_runtime::outbound`) and hands this crate the callflow to send.

pub mod client;
pub mod list;
pub mod schedule;

pub use client::{ApiConfig, ApiError, CallflowsClient, CreateRequest, Created};
