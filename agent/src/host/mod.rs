//! The process boundaries every capability of the agent shares, in one place: systemd over D-Bus
//! ([`systemd`]), the package manager ([`packages`]), users and groups ([`accounts`]), and the
//! Unix sockets our services listen on (socket activation, peer credentials: [`socket`]), S3
//! for the bot's state replica ([`s3`]), Auto Scaling for the end of a host ([`autoscaling`]),
//! both signed by [`sigv4`], and dockerd to stop the bot's container then ([`docker`]). nf_tables
//! lives in `clawster_core::nft` because the NAT agent needs it too.
//!
//! Each boundary is a trait or a small set of functions with its real implementation here and
//! test doubles in the tests; capabilities (`bootstrap`, `window`, `baseline`, `docker_guard`)
//! call these and never spawn `systemctl`, `useradd` or a package manager themselves.

pub mod accounts;
pub mod autoscaling;
pub mod docker;
pub mod packages;
pub mod s3;
pub mod sigv4;
pub mod socket;
pub mod systemd;
