//! Shared library of the Clawster host programs.
//!
//! The binaries (`clawster-agent`, `clawster-nat-agent`, `clawsterctl`) stay thin: they parse
//! arguments, call [`logging::init`], run one library function and map its error to an exit code.
//! Everything two programs need lives here:
//!
//! - [`fs`]: the one atomic write helper for files under /etc and /var, and [`fs::HostRoot`], which
//!   turns every absolute host path into a path under a root directory (`--root DIR`).
//! - [`sysctl`]: read, raise-only write and persistence of kernel parameters.
//! - [`logging`]: tracing to journald (structured `CLAWSTER_*` fields) or stderr, and the health
//!   record helpers that make `journalctl -o json` the health API.
//! - [`window_rules`]: the maintenance window's input rules (package names, lists, TTLs, reasons)
//!   and the SSM `allowedPattern`s rendered from them, shared by the agent and the control client.
//! - [`timefmt`]: UTC timestamps for records and people.

pub mod cli;
pub mod fs;
pub mod imds;
pub mod logging;
pub mod netlink;
pub mod nft;
pub mod sdnotify;
pub mod sysctl;
pub mod timefmt;
pub mod window_rules;

/// Version of this workspace, reported by every binary's `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
