//! `clawster-agent window`: the package maintenance window. An operator (root, through SSM)
//! opens a window for named packages and a time; during it the bot (user `openclaw`, member of
//! the client group) asks the root service over a Unix socket to install one of them.
//!
//! Pieces, in the order a request meets them:
//!
//! 1. [`units`]: `clawster-window.socket` (0660 root:clawster-window) and the socket-activated
//!    `Type=notify` service; the sysusers.d line for the group.
//!
//! Failure policy: anything unexpected refuses (the window counts as locked); nothing the bot
//! sends reaches a shell; every decision is a journal record.

pub mod name;
pub mod units;
