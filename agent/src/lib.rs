//! Library of `clawster-agent`, the agent on each Clawster bot host. The binary (`main.rs`) only
//! parses arguments, sets up logging and maps results to exit codes.
//!
//! - [`bootstrap`]: the first-boot install of Sysbox (verified download, native hostile-safe
//!   package reading), its Docker runtime registration, sysctls, units and ecs.config.
//! - [`docker_guard`]: `docker-guard serve`, the filtering Docker API proxy the bot's task gets
//!   instead of the host's Docker socket.
//! - [`health`]: the checks behind `clawster-agent health`.
//! - [`host`]: the process boundaries the capabilities share (systemd over D-Bus, the package
//!   manager, users and groups).

pub mod bootstrap;
pub mod docker_guard;
pub mod health;
pub mod host;
