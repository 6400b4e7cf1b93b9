//! Library of `clawster-agent`, the agent on each Clawster bot host. The binary (`main.rs`) only
//! parses arguments, sets up logging and maps results to exit codes.
//!
//! - [`baseline`]: the host security baseline of seed 000 (apply, audit, prepare-image,
//!   enable-gateway) and its `ecs-host` subset.
//! - [`bootstrap`]: the first-boot install of Sysbox (verified download, native hostile-safe
//!   package reading), its Docker runtime registration, sysctls, units and ecs.config.
//! - [`docker_guard`]: `docker-guard serve`, the filtering Docker API proxy the bot's task gets
//!   instead of the host's Docker socket.
//! - [`health`]: the checks behind `clawster-agent health`.
//! - [`host`]: the process boundaries the capabilities share (systemd over D-Bus, the package
//!   manager, users and groups).
//! - [`window`]: the package maintenance window (time-limited, allowlisted installs for the bot).

pub mod baseline;
pub mod bootstrap;
pub mod cli;
pub mod docker_guard;
pub mod health;
pub mod host;
pub mod state;
pub mod window;
