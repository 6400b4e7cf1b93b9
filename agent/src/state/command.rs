//! The `state` subcommands: settings resolved, the work done, the answer printed.

use std::process::ExitCode;
use std::time::Duration;

use clawster_core::logging::{health, Status};
use clawster_core::timefmt::fmt_utc;
use serde_json::json;

use super::{
    hold_run_lock, parse_at, run, sync_now, EndOptions, Replica, RestoreOutcome, RunOptions,
    Settings, SyncStatus,
};
use crate::cli::{EndArgs, StateArgs, StateCommand};
use crate::host::autoscaling::Autoscaling;
use crate::host::docker::Docker;
use crate::host::s3::{unix_now, CredentialSource};

fn settings(a: &StateArgs) -> Result<Settings, String> {
    let mut s = match (&a.bot, &a.bucket) {
        (Some(bot), Some(bucket)) => Settings {
            bot: bot.clone(),
            bucket: bucket.clone(),
            region: String::new(),
            endpoint: None,
        },
        _ => Settings::load(&a.config)?,
    };
    if let Some(r) = &a.region {
        s.region.clone_from(r);
    }
    if a.endpoint.is_some() {
        s.endpoint.clone_from(&a.endpoint);
    }
    super::check_bot(&s.bot)?;
    Ok(s)
}

/// The end-of-host watch of `run`; None with `--imds-endpoint off`.
fn end_options(a: &StateArgs, e: &EndArgs, r: &Replica) -> Result<Option<EndOptions>, String> {
    if a.imds_endpoint.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let imds = clawster_core::imds::Imds::new(&a.imds_endpoint)
        .map_err(|err| format!("--imds-endpoint: {err}"))?;
    let creds = CredentialSource::from_env_or_instance().map_err(|err| err.to_string())?;
    let autoscaling = Autoscaling::new(&r.region, e.autoscaling_endpoint.as_deref(), creds)
        .map_err(|err| err.to_string())?;
    Ok(Some(EndOptions {
        imds,
        poll: Duration::from_secs(e.lifecycle_poll),
        docker: Docker::new(&e.docker_socket),
        autoscaling,
        heartbeat: Duration::from_secs(e.lifecycle_heartbeat),
    }))
}

fn open(a: &StateArgs) -> Result<Replica, String> {
    Replica::open(
        &settings(a)?,
        a.instance_id.clone(),
        &a.imds_endpoint,
        a.dir.clone(),
        a.work.clone(),
        Duration::from_secs(a.lease_ttl),
        CredentialSource::from_env_or_instance().map_err(|e| e.to_string())?,
    )
}

/// Runs one `state` subcommand.
pub fn command(cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Restore { args, at } => {
            let at = at
                .as_deref()
                .map(parse_at)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let r = open(&args).map_err(anyhow::Error::msg)?;
            let started = std::time::Instant::now();
            let outcome = r.restore(at);
            let secs = started.elapsed().as_secs_f64();
            match outcome {
                Ok(o) => {
                    let (what, detail) = match &o {
                        RestoreOutcome::KeptLocal { generation, lease } => (
                            "kept",
                            format!("this host already holds generation {generation} (lease: {lease:?})"),
                        ),
                        RestoreOutcome::Restored { restored, lease } => (
                            "restored",
                            format!(
                                "generation {} taken {}: {} files, {} bytes in {secs:.2} s (lease: {lease:?})",
                                restored.generation, restored.taken_at, restored.files, restored.bytes
                            ),
                        ),
                        RestoreOutcome::NewBot { lease } => (
                            "new",
                            format!("a new bot (init.json): starting with empty state (lease: {lease:?})"),
                        ),
                    };
                    health("state.restore", Status::Ok, &format!("{what}: {detail}"));
                    if args.json {
                        let (generation, taken_at, files, bytes) = match &o {
                            RestoreOutcome::Restored { restored, .. } => (
                                restored.generation,
                                Some(restored.taken_at.clone()),
                                restored.files,
                                restored.bytes,
                            ),
                            RestoreOutcome::KeptLocal { generation, .. } => {
                                (*generation, None, 0, 0)
                            }
                            RestoreOutcome::NewBot { .. } => (0, None, 0, 0),
                        };
                        println!(
                            "{}",
                            json!({"outcome": what, "generation": generation, "taken_at": taken_at, "files": files, "bytes": bytes, "seconds": secs})
                        );
                    } else {
                        println!("{what}: {detail}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    health("state.restore", Status::Failed, &e);
                    anyhow::bail!("state restore: {e}")
                }
            }
        }
        StateCommand::Run {
            args,
            interval,
            db_interval,
            end,
        } => {
            let r = open(&args).map_err(anyhow::Error::msg)?;
            let _lock = hold_run_lock(&r.work).map_err(anyhow::Error::msg)?;
            let end = end_options(&args, &end, &r).map_err(anyhow::Error::msg)?;
            run(
                &r,
                RunOptions {
                    interval: Duration::from_secs(interval),
                    db_interval: Duration::from_secs(db_interval),
                    end,
                },
            )
            .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Sync { args, wait } => {
            let r = open(&args).map_err(anyhow::Error::msg)?;
            let s = sync_now(&r, Duration::from_secs(wait)).map_err(anyhow::Error::msg)?;
            if args.json {
                println!(
                    "{}",
                    json!({"generation": s.generation, "taken_at": fmt_utc(s.last_sync), "bytes": s.bytes})
                );
            } else {
                println!(
                    "synced: generation {} at {} ({} bytes of state)",
                    s.generation,
                    fmt_utc(s.last_sync),
                    s.bytes
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Status { args } => {
            let s = SyncStatus::load(&args.work);
            let now = unix_now();
            let code = status_code(s.as_ref(), now);
            if args.json {
                let v = match &s {
                    Some(s) => json!({
                        "bot": s.bot,
                        "last_sync": (s.last_sync > 0).then(|| fmt_utc(s.last_sync)),
                        "lag_seconds": s.lag(now),
                        "generation": s.generation,
                        "bytes": s.bytes,
                        "last_error": s.last_error,
                        "skipped": s.skipped,
                        "end": s.end,
                    }),
                    None => json!({"last_sync": null, "lag_seconds": null, "generation": 0}),
                };
                println!("{v}");
            } else {
                match &s {
                    Some(s) if s.last_sync > 0 => println!(
                        "bot {}: generation {}, last sync {} ({} s ago), {} bytes{}",
                        s.bot,
                        s.generation,
                        fmt_utc(s.last_sync),
                        s.lag(now).unwrap_or(0),
                        s.bytes,
                        s.notes()
                    ),
                    _ => println!("never synced"),
                }
            }
            Ok(ExitCode::from(code))
        }
    }
}

/// Lag above which replication counts as behind: two default intervals plus an upload.
pub const LAG_LIMIT: i64 = 60;

/// 0 in sync (or released for termination: the replica is final), 1 lagging or failing, 2
/// never synced.
pub fn status_code(s: Option<&SyncStatus>, now: i64) -> u8 {
    match s {
        Some(s)
            if s.last_sync > 0 && s.end.as_deref().is_some_and(|e| e.starts_with("released")) =>
        {
            0
        }
        Some(s) if s.last_sync > 0 => {
            u8::from(s.lag(now).unwrap_or(i64::MAX) > LAG_LIMIT || s.last_error.is_some())
        }
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_lag_failure_and_the_end_of_the_host() {
        let now = 1_000_000;
        let synced = |ago: i64| SyncStatus {
            bot: "b".into(),
            last_sync: now - ago,
            generation: 3,
            last_attempt: now - ago,
            ..SyncStatus::default()
        };
        assert_eq!(status_code(None, now), 2, "never synced");
        assert_eq!(status_code(Some(&synced(10)), now), 0);
        assert_eq!(status_code(Some(&synced(LAG_LIMIT + 1)), now), 1, "lagging");
        let failed = SyncStatus {
            last_error: Some("S3 PUT: timeout".into()),
            ..synced(10)
        };
        assert_eq!(status_code(Some(&failed), now), 1, "failing");
        let draining = SyncStatus {
            end: Some("draining: spot interruption notice".into()),
            ..synced(LAG_LIMIT + 1)
        };
        assert_eq!(
            status_code(Some(&draining), now),
            1,
            "draining is still replicating"
        );
        let released = SyncStatus {
            end: Some("released for termination: spot interruption notice".into()),
            last_error: Some("this host released the state for termination".into()),
            ..synced(3600)
        };
        assert_eq!(status_code(Some(&released), now), 0, "the replica is final");
    }
}
