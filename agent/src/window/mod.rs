//! `clawster-agent window`: the package maintenance window. An operator (root, through SSM)
//! opens a window for named packages and a time; during it the bot (user `openclaw`, member of
//! the client group) asks the root service over a Unix socket to install one of them.
//!
//! Pieces, in the order a request meets them:
//!
//! 1. [`units`]: `clawster-window.socket` (0660 root:clawster-window) and the socket-activated
//!    `Type=notify` service; the sysusers.d line for the group.
//! 2. [`client`]: `window install PKG` sends one request line and streams the reply.
//! 3. [`service`]: peer credentials from the kernel, the group check, [`protocol`] parsing, the
//!    package-name rule ([`clawster_core::window_rules`], shared with `clawsterctl`), the window
//!    [`state`] (CLOCK_BOOTTIME + boot id, fails closed), the allowlist, one install at a time
//!    through `host::packages::WindowInstaller`, the expiry timer.
//! 4. [`ops`]: `window open`, `close` (root) and `status` (anyone).
//! 5. [`audit`]: one journal record per event.
//!
//! Failure policy: anything unexpected refuses (the window counts as locked); nothing the bot or
//! the operator sends reaches a shell; every decision is a journal record. Operator input errors
//! (`--pkgs`, `--ttl`, `--reason`; rules in [`clawster_core::window_rules`]) stop `open` before
//! anything is stored.

pub mod audit;
pub mod client;
pub mod ops;
pub mod protocol;
pub mod service;
pub mod state;
mod sys;
pub mod units;

pub use clawster_core::window_rules::{validate_name, validate_name_bytes};
pub use protocol::parse_request;
