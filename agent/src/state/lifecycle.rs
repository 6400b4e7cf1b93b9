//! The graceful end of a host that is not a shutdown (yet): an Auto Scaling termination held by
//! the `clawster-final-sync` lifecycle hook, or a spot interruption notice.
//!
//! [`Watcher`] polls IMDSv2 every [`POLL_SECONDS`] from inside `state run`:
//! `autoscaling/target-lifecycle-state` (`Terminated` once the group terminates this instance;
//! 404 outside a group) and `spot/instance-action` (404 until a notice). When either says the
//! instance is going, `run` stops the bot's ECS-managed container itself ([`stop_bot`], with its
//! own stop timeout, so the gateway closes its databases; ECS's managed draining may do the same
//! in parallel, and nothing here depends on it), takes the final pass, releases the lease, and
//! for the lifecycle hook completes the action ([`complete`], CONTINUE). Spot: no Auto Scaling
//! call (the notice gives two minutes, not a hook).
//!
//! Failure policy: an IMDS error other than 404 is recorded (once per distinct error) and polled
//! again, never fatal for replication. A failed container stop is recorded and the final pass is
//! taken anyway (it is consistent in any case; only writes after it could be missed). A failed
//! completion is retried with backoff until the hook's heartbeat would expire, then recorded:
//! the hook's DefaultResult CONTINUE lets the instance go then anyway.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawster_core::imds::{Imds, ImdsError};
use clawster_core::logging::{health, Status};
use serde::Deserialize;

use crate::host::autoscaling::{ActionResult, Autoscaling, AutoscalingError};
use crate::host::docker::{Docker, DockerError, DEFAULT_STOP_TIMEOUT};

/// The name of the bot group's terminate lifecycle hook (ctl creates it with this name,
/// `autoscaling:EC2_INSTANCE_TERMINATING`, HeartbeatTimeout [`HEARTBEAT_SECONDS`], DefaultResult
/// CONTINUE).
pub const LIFECYCLE_HOOK: &str = "clawster-final-sync";
/// The hook's heartbeat timeout: how long the group waits for the completion.
pub const HEARTBEAT_SECONDS: u64 = 300;
/// The bot's container name in its task definition (ctl's `bot::CONTAINER_NAME`).
pub const BOT_CONTAINER: &str = "openclaw";
/// Seconds between two looks at IMDS.
pub const POLL_SECONDS: u64 = 5;

/// What `autoscaling/target-lifecycle-state` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// The group is terminating this instance.
    Terminated,
    /// Any other documented state (`InService`, `Standby`, `Detached`, `Warmed:*`).
    Other(String),
}

/// Reads a `target-lifecycle-state` value.
pub fn parse_target_state(body: &str) -> Result<TargetState, String> {
    let v = body.trim();
    match v {
        "Terminated" => Ok(TargetState::Terminated),
        "InService" | "Standby" | "Detached" | "Warmed:Stopped" | "Warmed:Running"
        | "Warmed:Hibernated" | "Warmed:Terminated" => Ok(TargetState::Other(v.to_string())),
        _ => Err(format!(
            "autoscaling/target-lifecycle-state: unknown value {:?}",
            v.chars().take(64).collect::<String>()
        )),
    }
}

/// What a spot interruption notice asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotAction {
    /// The instance will be terminated.
    Terminate,
    /// Stopped.
    Stop,
    /// Hibernated.
    Hibernate,
}

/// A spot interruption notice (`spot/instance-action`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotNotice {
    /// What happens.
    pub action: SpotAction,
    /// When (UTC, as EC2 writes it).
    pub time: String,
}

/// Reads a `spot/instance-action` answer.
pub fn parse_spot(body: &str) -> Result<SpotNotice, String> {
    serde_json::from_str(body.trim()).map_err(|e| {
        format!(
            "spot/instance-action: not a notice ({e}): {:?}",
            body.trim().chars().take(80).collect::<String>()
        )
    })
}

/// Why this host is ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The Auto Scaling group terminates it (held by the lifecycle hook).
    Terminating,
    /// A spot interruption notice.
    Spot(SpotNotice),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Terminating => f.write_str(
                "the Auto Scaling group is terminating this instance (target-lifecycle-state Terminated)",
            ),
            Self::Spot(n) => write!(
                f,
                "spot interruption notice: {:?} at {}",
                n.action, n.time
            ),
        }
    }
}

/// One look at IMDS: the ending, if any, and the errors met (404 is no error: the path is
/// absent outside a group or before a notice).
pub fn look(imds: &Imds) -> (Option<Ending>, Vec<String>) {
    let mut errors = Vec::new();
    let mut read = |path: &str| match imds.get(path) {
        Ok(body) => Some(body),
        Err(ImdsError::Status { status: 404, .. }) => None,
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let target = read("autoscaling/target-lifecycle-state");
    let spot = read("spot/instance-action");
    let mut ending = None;
    match target.as_deref().map(parse_target_state) {
        Some(Ok(TargetState::Terminated)) => ending = Some(Ending::Terminating),
        Some(Err(e)) => errors.push(e),
        _ => {}
    }
    if ending.is_none() {
        match spot.as_deref().map(parse_spot) {
            Some(Ok(n)) => ending = Some(Ending::Spot(n)),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    (ending, errors)
}

/// The IMDS poller: a thread that looks every `every` until it finds an ending.
#[derive(Debug)]
pub struct Watcher {
    found: Arc<Mutex<Option<Ending>>>,
}

impl Watcher {
    /// Starts polling `imds`.
    pub fn spawn(imds: Imds, every: Duration) -> Self {
        let found = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&found);
        std::thread::spawn(move || {
            let mut last_errors: Vec<String> = Vec::new();
            loop {
                let (ending, errors) = look(&imds);
                if errors != last_errors {
                    if errors.is_empty() {
                        health("state.lifecycle", Status::Ok, "IMDS answers again");
                    } else {
                        health(
                            "state.lifecycle",
                            Status::Degraded,
                            &format!(
                                "watching for the end of this host: {}; asked again every {} s (replication goes on)",
                                errors.join("; "),
                                every.as_secs()
                            ),
                        );
                    }
                    last_errors = errors;
                }
                if let Some(e) = ending {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return;
                }
                std::thread::sleep(every);
            }
        });
        Self { found }
    }

    /// The ending, once found (then `None` again).
    pub fn take(&self) -> Option<Ending> {
        self.found.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Stops the bot's running container(s) with their own stop timeout (or
/// [`DEFAULT_STOP_TIMEOUT`]) and checks none runs any more. dockerd not running: nothing to
/// stop. Returns what was done, for the journal.
pub fn stop_bot(docker: &Docker) -> Result<String, String> {
    let running = match docker.running_ecs_containers(BOT_CONTAINER) {
        Ok(r) => r,
        Err(e @ DockerError::Unreachable { .. }) => {
            return Ok(format!("no bot container to stop ({e})"))
        }
        Err(e) => return Err(e.to_string()),
    };
    if running.is_empty() {
        return Ok("the bot's container is not running".into());
    }
    let mut done = Vec::new();
    for c in &running {
        let t = c.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
        let started = Instant::now();
        docker.stop(&c.id, t).map_err(|e| e.to_string())?;
        done.push(format!(
            "{} stopped in {:.1} s (stop timeout {t} s)",
            c.name,
            started.elapsed().as_secs_f64()
        ));
    }
    let left = docker
        .running_ecs_containers(BOT_CONTAINER)
        .map_err(|e| e.to_string())?;
    if let Some(c) = left.first() {
        return Err(format!(
            "{} still runs after the stop (ECS started it again?)",
            c.name
        ));
    }
    Ok(done.join(", "))
}

/// Completes the hook's lifecycle action for `instance` (its group found first), retrying
/// with backoff (1 s doubling, at most 30 s) while the error may pass and `deadline` is ahead.
/// Returns the group and the attempts it took.
pub fn complete(
    asg: &Autoscaling,
    instance: &str,
    deadline: Instant,
) -> Result<(String, u32), String> {
    let mut group: Option<String> = None;
    let mut pause = Duration::from_secs(1);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = complete_once(asg, instance, &mut group);
        match outcome {
            Ok(g) => return Ok((g, attempt)),
            // SIGTERM: the instance is going anyway (systemd stops `run`); stop retrying.
            Err(e) if e.retryable() && Instant::now() + pause < deadline && !super::signals::stopping() => {
                health(
                    "state.lifecycle",
                    Status::Degraded,
                    &format!(
                        "attempt {attempt} failed, retrying in {} s: {e}",
                        pause.as_secs()
                    ),
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                return Err(format!(
                    "{e} (gave up after {attempt} attempt(s); the hook's default result CONTINUE lets the instance go when its heartbeat expires)"
                ))
            }
        }
    }
}

/// One try: the group (looked up once, then remembered), then the completion.
fn complete_once(
    asg: &Autoscaling,
    instance: &str,
    group: &mut Option<String>,
) -> Result<String, AutoscalingError> {
    let g = match group {
        Some(g) => g.clone(),
        None => group.insert(asg.group_of(instance)?).clone(),
    };
    asg.complete_lifecycle_action(&g, LIFECYCLE_HOOK, instance, ActionResult::Continue)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_target_state() {
        assert_eq!(
            parse_target_state("Terminated\n"),
            Ok(TargetState::Terminated)
        );
        for v in [
            "InService",
            "Standby",
            "Detached",
            "Warmed:Stopped",
            "Warmed:Running",
            "Warmed:Hibernated",
            "Warmed:Terminated",
        ] {
            assert_eq!(
                parse_target_state(v),
                Ok(TargetState::Other(v.into())),
                "{v}"
            );
        }
        for bad in [
            "",
            "terminated",
            "Terminated:Wait",
            "<html>",
            "InService InService",
        ] {
            let e = parse_target_state(bad).expect_err(bad);
            assert!(e.contains("unknown value"), "{e}");
        }
    }

    #[test]
    fn reads_spot_notices() {
        let n = parse_spot(r#"{"action": "terminate", "time": "2026-12-07T16:00:00Z"}"#)
            .expect("notice");
        assert_eq!(n.action, SpotAction::Terminate);
        assert_eq!(n.time, "2026-12-07T16:00:00Z");
        assert_eq!(
            parse_spot(r#"{"action":"stop","time":"t"}"#)
                .expect("stop")
                .action,
            SpotAction::Stop
        );
        assert_eq!(
            parse_spot(r#"{"action":"hibernate","time":"t"}"#)
                .expect("hibernate")
                .action,
            SpotAction::Hibernate
        );
        for bad in [
            "",
            "terminate",
            r#"{"action":"reboot","time":"t"}"#,
            r#"{"action":"terminate"}"#,
            r#"{"action":"terminate","time":"t","extra":1}"#,
        ] {
            let e = parse_spot(bad).expect_err(bad);
            assert!(e.starts_with("spot/instance-action: not a notice"), "{e}");
        }
    }

    #[test]
    fn stops_the_bot_with_its_own_timeout_or_says_why_not() {
        use crate::host::docker::fake;
        let d = tempfile::tempdir().expect("tmp");
        let (sock, seen) = fake::dockerd(d.path(), Some(90), 204);
        let done = stop_bot(&Docker::new(&sock)).expect("stopped");
        assert!(
            done.contains("ecs-bot-1-openclaw-e2f stopped") && done.contains("stop timeout 90 s"),
            "{done}"
        );
        assert!(seen
            .lock()
            .expect("log")
            .iter()
            .any(|l| l == "POST /containers/abc123/stop?t=90 HTTP/1.0"));
        assert_eq!(
            stop_bot(&Docker::new(&sock)).expect("none"),
            "the bot's container is not running"
        );

        let d = tempfile::tempdir().expect("tmp");
        let (sock, seen) = fake::dockerd(d.path(), None, 204);
        stop_bot(&Docker::new(&sock)).expect("stopped");
        assert!(
            seen.lock()
                .expect("log")
                .iter()
                .any(|l| l
                    == &format!("POST /containers/abc123/stop?t={DEFAULT_STOP_TIMEOUT} HTTP/1.0")),
            "no StopTimeout of its own: the default"
        );

        let d = tempfile::tempdir().expect("tmp");
        let (sock, _) = fake::dockerd(d.path(), Some(5), 500);
        let e = stop_bot(&Docker::new(&sock)).expect_err("500");
        assert!(e.contains("HTTP 500: cannot stop container"), "{e}");

        let none = stop_bot(&Docker::new(&d.path().join("absent.sock"))).expect("no dockerd");
        assert!(
            none.starts_with("no bot container to stop (dockerd at "),
            "{none}"
        );
    }

    /// A fake IMDS on loopback (the process boundary): token, then the two paths.
    fn fake(target: Option<&'static str>, spot: Option<&'static str>, status: u16) -> Imds {
        use std::io::{BufRead, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                r.read_line(&mut line).expect("read");
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).expect("read") == 0 || h == "\r\n" {
                        break;
                    }
                }
                let body = if line.starts_with("PUT") {
                    Some("token")
                } else if line.contains("target-lifecycle-state") {
                    target
                } else {
                    spot
                };
                let answer = match body {
                    _ if status != 200 && !line.starts_with("PUT") => {
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n")
                    }
                    Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{b}", b.len()),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
                };
                let _ = s.write_all(answer.as_bytes());
            }
        });
        let mut imds = Imds::new(&addr).expect("imds");
        imds.backoff = Duration::from_millis(10);
        imds
    }

    #[test]
    fn looks_at_both_paths() {
        assert_eq!(
            look(&fake(None, None, 200)),
            (None, vec![]),
            "outside a group, no notice"
        );
        assert_eq!(look(&fake(Some("InService"), None, 200)), (None, vec![]));
        assert_eq!(
            look(&fake(Some("Terminated"), None, 200)).0,
            Some(Ending::Terminating)
        );
        let (e, errs) = look(&fake(
            Some("InService"),
            Some(r#"{"action":"stop","time":"2026-12-07T16:00:00Z"}"#),
            200,
        ));
        assert!(errs.is_empty(), "{errs:?}");
        assert!(
            matches!(
                e,
                Some(Ending::Spot(SpotNotice {
                    action: SpotAction::Stop,
                    ..
                }))
            ),
            "{e:?}"
        );
        let (e, errs) = look(&fake(Some("Bogus"), Some("nonsense"), 200));
        assert_eq!(e, None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        let (e, errs) = look(&fake(None, None, 500));
        assert_eq!(e, None);
        assert!(
            errs.iter().all(|x| x.contains("HTTP 500")) && errs.len() == 2,
            "{errs:?}"
        );
    }
}
