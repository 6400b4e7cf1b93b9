//! Steps 2 to 4 of the order of work ([`super`]): the `run` loop. It replicates every interval,
//! renews the lease, and ends one of two ways: SIGTERM (a shutdown: final pass, lease released,
//! exit) or the end of the host seen in IMDS ([`lifecycle`]: the bot's container stopped, final
//! pass, lease released, the lifecycle action completed, then idle without writing until
//! SIGTERM).

use std::fs;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clawster_core::imds::Imds;
use clawster_core::logging::{health, Status};

use super::lifecycle::{self, Ending};
use super::{lease, signals, Replica, Tracker};
use crate::host::autoscaling::Autoscaling;
use crate::host::docker::Docker;

/// The `run` loop's knobs.
#[derive(Debug)]
pub struct RunOptions {
    /// Between passes (files).
    pub interval: Duration,
    /// Between database snapshots (a changed database waits at most this long).
    pub db_interval: Duration,
    /// Watching for the end of the host (None: only SIGTERM ends `run`).
    pub end: Option<EndOptions>,
}

/// How `run` watches for and handles the end of its host.
#[derive(Debug)]
pub struct EndOptions {
    /// Where to look (IMDSv2).
    pub imds: Imds,
    /// Between two looks.
    pub poll: Duration,
    /// dockerd, to stop the bot's container.
    pub docker: Docker,
    /// Auto Scaling, to complete the lifecycle action.
    pub autoscaling: Autoscaling,
    /// How long the hook waits for the completion (retries stop then).
    pub heartbeat: Duration,
}

/// An end seen in IMDS, in progress.
struct Draining {
    why: Ending,
    since: Instant,
    /// The bot's container being stopped (None once it has been).
    stop: Option<JoinHandle<Result<String, String>>>,
    /// After a failed final pass: when to try again.
    retry_at: Option<Instant>,
}

impl Draining {
    fn begin(r: &Replica, why: Ending, docker: &Docker) -> Self {
        health(
            "state.lifecycle",
            Status::Ok,
            &format!("{why}: stopping the bot's container, then the final sync"),
        );
        r.set_end(Some(format!("draining: {why}")));
        let docker = docker.clone();
        Self {
            why,
            since: Instant::now(),
            stop: Some(std::thread::spawn(move || lifecycle::stop_bot(&docker))),
            retry_at: None,
        }
    }

    /// True when the final pass is due: the container stop is over (recorded once), and a
    /// failed final pass waited its interval.
    fn final_due(&mut self) -> bool {
        if self.stop.as_ref().is_some_and(|h| !h.is_finished()) {
            return false;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        if let Some(h) = self.stop.take() {
            match h.join() {
                Ok(Ok(done)) => health(
                    "state.lifecycle",
                    Status::Ok,
                    &format!("bot container: {done}"),
                ),
                Ok(Err(e)) => health(
                    "state.lifecycle",
                    Status::Failed,
                    &format!(
                        "stopping the bot's container failed, taking the final sync anyway: {e}"
                    ),
                ),
                Err(_) => health(
                    "state.lifecycle",
                    Status::Failed,
                    "the container stop panicked",
                ),
            }
        }
        true
    }
}

/// Step 2 to 4: replicate until SIGTERM or the end of the host, then a final pass and the
/// lease released.
pub fn run(r: &Replica, opts: RunOptions) -> Result<(), String> {
    signals::install();
    let lease = r.lease();
    lease.acquire().map_err(|e| e.to_string())?;
    r.set_end(None);
    let mut tracker = r.tracker()?;
    let watcher = opts
        .end
        .as_ref()
        .map(|e| lifecycle::Watcher::spawn(e.imds.clone(), e.poll));
    let mut draining: Option<Draining> = None;
    let renew_every = r.lease_ttl / 3;
    let mut last_renew = Instant::now();
    let mut next_pass = Instant::now();
    let mut last_db = Instant::now() - opts.db_interval;
    let request = r.work.join("sync-request");
    loop {
        let stopping = signals::stopping();
        if draining.is_none() {
            if let (Some(w), Some(end)) = (&watcher, &opts.end) {
                draining = w.take().map(|why| Draining::begin(r, why, &end.docker));
            }
        }
        let final_due = draining.as_mut().is_some_and(Draining::final_due);
        let last = stopping || final_due;
        let asked = signals::take_sync_request() || request.exists();
        if last || asked || Instant::now() >= next_pass {
            let _ = fs::remove_file(&request);
            let db_round = last || asked || last_db.elapsed() >= opts.db_interval;
            if db_round {
                last_db = Instant::now();
            }
            let ok = one_pass(r, &mut tracker, db_round, opts.interval);
            match (ok, stopping) {
                (Err(e), true) => {
                    // The final pass failed: keep the lease, so a new host waits for it to
                    // expire rather than restoring an older generation as if it were the last.
                    return Err(format!("final sync failed, lease kept: {e}"));
                }
                (Ok(()), true) => {
                    lease.release().map_err(|e| e.to_string())?;
                    health("state.stop", Status::Ok, "final sync taken, lease released");
                    return Ok(());
                }
                (Ok(()), false) if final_due => {
                    if let (Some(d), Some(end)) = (draining.take(), &opts.end) {
                        lease.release().map_err(|e| e.to_string())?;
                        finish(r, &d, end);
                        return idle_released(r, &request, end);
                    }
                }
                // A failed final pass at the end of the host is retried after an interval, the
                // lease still held and renewed.
                (Err(_), false) if final_due => {
                    if let Some(d) = draining.as_mut() {
                        d.retry_at = Some(Instant::now() + opts.interval);
                    }
                }
                _ => {}
            }
            next_pass = Instant::now() + opts.interval;
        }
        if last_renew.elapsed() >= renew_every {
            match lease.renew() {
                Ok(()) => last_renew = Instant::now(),
                Err(lease::LeaseError::Lost(by)) => {
                    let msg = format!(
                        "host {by} took the state lease: this host stops writing the replica"
                    );
                    health("state.lease", Status::Failed, &msg);
                    return Err(msg);
                }
                Err(e) => health(
                    "state.lease",
                    Status::Degraded,
                    &format!("renewal failed, retrying: {e}"),
                ),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One pass, recorded; the error when it failed.
fn one_pass(r: &Replica, t: &mut Tracker, dbs: bool, interval: Duration) -> Result<(), String> {
    match r.pass_with(t, dbs) {
        Ok(p) => {
            if p.wrote {
                health(
                    "state.sync",
                    Status::Ok,
                    &format!(
                        "generation {} written: {} objects uploaded ({} bytes: {}), {} deleted; state {} bytes",
                        p.generation,
                        p.uploaded,
                        p.uploaded_bytes,
                        p.uploaded_paths.join(", "),
                        p.deleted,
                        p.bytes
                    ),
                );
            }
            Ok(())
        }
        Err(e) => {
            r.record_failure(&e);
            health(
                "state.sync",
                Status::Failed,
                &format!("pass failed, retried in {} s: {e}", interval.as_secs()),
            );
            Err(e)
        }
    }
}

/// After the final pass at the end of the host: recorded, and the lifecycle action completed
/// (not for spot).
fn finish(r: &Replica, d: &Draining, end: &EndOptions) {
    let why = &d.why;
    r.set_end(Some(format!("released for termination: {why}")));
    health(
        "state.stop",
        Status::Ok,
        &format!(
            "final sync taken, lease released ({why}); {:.1} s after the end was seen",
            d.since.elapsed().as_secs_f64()
        ),
    );
    if !matches!(why, Ending::Terminating) {
        return;
    }
    let deadline = d.since + end.heartbeat;
    match lifecycle::complete(&end.autoscaling, &r.instance, deadline) {
        Ok((group, attempts)) => health(
            "state.lifecycle",
            Status::Ok,
            &format!(
                "lifecycle action of hook {} completed (CONTINUE) for {} in group {group} after {attempts} attempt(s), {:.1} s after the end was seen",
                lifecycle::LIFECYCLE_HOOK,
                r.instance,
                d.since.elapsed().as_secs_f64()
            ),
        ),
        Err(e) => health(
            "state.lifecycle",
            Status::Failed,
            &format!("completing the lifecycle action failed: {e}"),
        ),
    }
}

/// The lease is released: write nothing more, never take it back; a `state sync` asked now
/// is answered with why. The bot's container must not run any more either (its writes would be
/// lost, and a new host may already run the bot): if it is started again on this host (ECS
/// without managed draining), it is stopped again and that is recorded. Returns at SIGTERM.
fn idle_released(r: &Replica, request: &std::path::Path, end: &EndOptions) -> Result<(), String> {
    let mut next_look = Instant::now() + end.poll;
    loop {
        if signals::stopping() {
            health(
                "state.stop",
                Status::Ok,
                "stopped; the state was released before",
            );
            return Ok(());
        }
        if signals::take_sync_request() || request.exists() {
            let _ = fs::remove_file(request);
            r.record_failure(
                "this host released the state for termination: it no longer writes the replica",
            );
        }
        if Instant::now() >= next_look {
            next_look = Instant::now() + end.poll;
            let running = end
                .docker
                .running_ecs_containers(lifecycle::BOT_CONTAINER)
                .unwrap_or_default();
            if !running.is_empty() {
                let outcome = lifecycle::stop_bot(&end.docker);
                health(
                    "state.lifecycle",
                    Status::Failed,
                    &format!(
                        "the bot's container started again after the state was released (is the capacity provider's managed draining on?); its writes would be lost: {}",
                        match outcome {
                            Ok(done) => format!("stopped again: {done}"),
                            Err(e) => format!("stopping it failed: {e}"),
                        }
                    ),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
