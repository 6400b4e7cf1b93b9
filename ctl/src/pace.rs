//! Time for the AWS loops: a clock, the poll interval and backoff, and Ctrl-C.
//!
//! Every wait in deploy, status and destroy goes through [`Pace::sleep`], so tests run the same
//! loops on a virtual clock: a sleep advances virtual time and returns at once, stopwatches and
//! timeouts read virtual time, and an interrupt can be scheduled at a virtual instant. No test
//! sleeps, and golden output is deterministic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Where time comes from.
#[derive(Debug, Clone)]
enum Clock {
    /// Wall time since the run started.
    Real(tokio::time::Instant),
    /// Virtual time, advanced only by sleeps.
    Virtual(Arc<Mutex<Virtual>>),
}

#[derive(Debug, Default)]
struct Virtual {
    now: Duration,
    interrupt_at: Option<Duration>,
}

/// Wall-clock milliseconds of virtual time 0 (2026-12-02T10:00:00Z), so moments recorded by one
/// virtual run can be read by the next.
pub const VIRTUAL_EPOCH_MS: u64 = 1_796_205_600_000;

/// The operator asked to stop (Ctrl-C).
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// Marks the run interrupted and wakes any sleeper.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// True once interrupted.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Clears the flag (the clean-up after an interrupt runs its own waits).
    pub fn clear(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    /// Listens for Ctrl-C: the first one triggers this interrupt so the run can clean up; the
    /// second exits the process at once with 130.
    pub fn listen_for_ctrl_c(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!(
                "\ninterrupted: cleaning up what this run created (press Ctrl-C again to exit at once)"
            );
            me.trigger();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted again: exiting without cleaning up");
                std::process::exit(130);
            }
        });
    }
}

/// The clock, the poll cadence and the interrupt of one run.
#[derive(Debug, Clone)]
pub struct Pace {
    clock: Clock,
    /// Interval between polls of a stack, a service or a route.
    pub poll: Duration,
    /// Upper bound of the backoff after throttling or while waiting for a route.
    pub max_backoff: Duration,
    /// Ctrl-C.
    pub interrupt: Interrupt,
}

impl Pace {
    /// Wall time with the production cadence: a poll every 3 s, backoff up to 30 s.
    pub fn real() -> Self {
        Self {
            clock: Clock::Real(tokio::time::Instant::now()),
            poll: Duration::from_secs(3),
            max_backoff: Duration::from_secs(30),
            interrupt: Interrupt::default(),
        }
    }

    /// Virtual time for tests: polls every `poll` of virtual time, sleeps return at once.
    pub fn virtual_time(poll: Duration) -> Self {
        Self {
            clock: Clock::Virtual(Arc::new(Mutex::new(Virtual::default()))),
            poll,
            max_backoff: Duration::from_secs(30),
            interrupt: Interrupt::default(),
        }
    }

    /// Virtual time only: the run is interrupted once virtual time reaches `at`, as if the
    /// operator pressed Ctrl-C then.
    pub fn interrupt_at(&self, at: Duration) {
        if let Clock::Virtual(v) = &self.clock {
            if let Ok(mut v) = v.lock() {
                v.interrupt_at = Some(at);
            }
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        match &self.clock {
            Clock::Real(start) => start.elapsed(),
            Clock::Virtual(v) => v.lock().map(|v| v.now).unwrap_or_default(),
        }
    }

    /// Wall-clock time in milliseconds since the Unix epoch, for moments recorded across runs
    /// (on a virtual clock: [`VIRTUAL_EPOCH_MS`] plus virtual time).
    pub fn unix_ms(&self) -> u64 {
        match &self.clock {
            Clock::Real(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or_default(),
            Clock::Virtual(_) => {
                VIRTUAL_EPOCH_MS + u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX)
            }
        }
    }

    /// Sleeps `d`; returns early, with `false`, when interrupted.
    pub async fn sleep(&self, d: Duration) -> bool {
        if self.interrupt.is_set() {
            return false;
        }
        match &self.clock {
            Clock::Real(_) => {
                let notified = self.interrupt.notify.notified();
                tokio::select! {
                    () = tokio::time::sleep(d) => !self.interrupt.is_set(),
                    () = notified => false,
                }
            }
            Clock::Virtual(v) => {
                let fire = match v.lock() {
                    Ok(mut v) => {
                        v.now += d;
                        match v.interrupt_at {
                            Some(at) if v.now >= at => {
                                v.interrupt_at = None;
                                true
                            }
                            _ => false,
                        }
                    }
                    Err(_) => false,
                };
                if fire {
                    self.interrupt.trigger();
                }
                // Let other tasks of the run (uploads next to a stack watch) make progress.
                tokio::task::yield_now().await;
                !self.interrupt.is_set()
            }
        }
    }

    /// The delay before retry number `attempt` (0-based) of a backoff: the poll interval doubled
    /// each time, capped at [`Pace::max_backoff`].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.poll.saturating_mul(factor).min(self.max_backoff)
    }
}

/// `1:05`, `12s`, `1:02:03`: a duration for people.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    }
}

/// Parses `--timeout` values: `90s`, `30m`, `1h`, or plain seconds.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {s:?}: expected a number with unit s, m or h, e.g. 30m (at most 24h)"
        )
    };
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        Some(_) => (s, 's'),
        None => return Err(bad()),
    };
    if num.is_empty() || num.len() > 6 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => n,
        'm' => n * 60,
        'h' => n * 3600,
        _ => return Err(bad()),
    };
    if secs == 0 || secs > 24 * 3600 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn virtual_sleep_advances_and_interrupts() {
        let p = Pace::virtual_time(Duration::from_secs(5));
        p.interrupt_at(Duration::from_secs(12));
        assert!(p.sleep(Duration::from_secs(5)).await);
        assert!(p.sleep(Duration::from_secs(5)).await);
        assert!(
            !p.sleep(Duration::from_secs(5)).await,
            "third sleep crosses 12 s"
        );
        assert_eq!(p.elapsed(), Duration::from_secs(15));
        assert!(!p.sleep(Duration::from_secs(5)).await, "stays interrupted");
        p.interrupt.clear();
        assert!(p.sleep(Duration::from_secs(1)).await);
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let p = Pace::virtual_time(Duration::from_secs(2));
        let d: Vec<u64> = (0..6).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(d, vec![2, 4, 8, 16, 30, 30]);
        assert_eq!(p.backoff(1000), Duration::from_secs(30));
    }

    #[test]
    fn timeouts_parse_and_refuse() {
        assert_eq!(parse_timeout("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_timeout("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timeout("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "0s", "25h", "m", "-5m", "5x", "1.5h", "９m"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_secs(65)), "1:05");
        assert_eq!(human(Duration::from_secs(3723)), "1:02:03");
    }
}
