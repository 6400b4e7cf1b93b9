//! Library of `clawsterctl`, the Clawster operator client.
//!
//! Rendering is pure: [`shared::template`] and [`bot::template`] turn validated options
//! ([`names`]) and the release manifest ([`manifest`]) into CloudFormation JSON; [`plan`] prices
//! and times a deployment. The binary parses arguments and calls [`commands`]. [`ops`] holds the
//! pure half of the commands that run on hosts through SSM (what to send, what the answer means).

pub mod aws;
pub mod backup;
pub mod bot;
pub mod cfn;
pub mod cli;
pub mod commands;
pub mod consolidate;
pub mod deploy;
pub mod destroy;
pub mod image;
pub mod manifest;
pub mod names;
pub mod openclaw;
pub mod ops;
pub mod pace;
pub mod plan;
pub mod progress;
pub mod shared;
pub mod ssm;
pub mod stack;
pub mod state;
pub mod status;
pub mod userdata;
