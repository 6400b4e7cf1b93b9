//! One writer at a time: a lease object in the bucket.
//!
//! `state/<bot>/lease.json` says which host may write the replica. The writer renews it every
//! third of its lifetime and, after its final sync at a graceful stop, marks it `released`.
//! A new host takes the lease only when it is absent, released, its own, or expired (not
//! renewed for a whole lifetime: the old host is gone, e.g. powered off hard); while another
//! host still renews it, the new host waits, and gives up with an error naming that host
//! instead of restoring a replica someone else is still writing.
//!
//! Ages are measured on S3's clock (the object's `Last-Modified` against the response's
//! `Date`), so a host with a wrong clock can neither steal nor keep a lease. After writing,
//! the taker reads the lease back once and yields if another host's write won the race.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::host::s3::{Bucket, S3Error};

/// The lease's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The holder's instance id.
    pub instance: String,
    /// When the holder last wrote it, by its own clock (for people; ages use S3's clock).
    pub renewed_at: String,
    /// True once the holder took its final sync and let go.
    pub released: bool,
}

/// What acquiring found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// No lease existed (a new bot, or the first replica).
    Fresh,
    /// Released by its last holder: a graceful handover.
    Released {
        /// The previous holder.
        from: String,
    },
    /// Already ours (a reboot of the same host).
    Ours,
    /// The holder stopped renewing without releasing (a crash or hard power-off).
    Expired {
        /// The previous holder.
        from: String,
        /// Seconds since its last renewal, by S3's clock.
        age: i64,
    },
}

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another host still renews it.
    #[error("host {holder} still holds the state lease (renewed {age} s ago, lifetime {ttl} s); refusing to restore or write while it may still write; waited {waited} s")]
    Held {
        /// The holder.
        holder: String,
        /// Seconds since its renewal.
        age: i64,
        /// The lease lifetime.
        ttl: u64,
        /// How long we waited.
        waited: u64,
    },
    /// Another host took it from us.
    #[error("host {0} took the state lease: this host stops writing the replica")]
    Lost(String),
    /// The lease object is not ours to read.
    #[error("the lease object is unreadable: {0}")]
    Corrupt(String),
    /// S3 failed.
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// The lease of one bot.
#[derive(Debug)]
pub struct LeaseKeeper<'a> {
    bucket: &'a Bucket,
    key: String,
    instance: String,
    /// Lifetime: a lease not renewed for this long is expired.
    pub ttl: Duration,
    /// How long a new host waits for a live holder before giving up.
    pub max_wait: Duration,
    /// Pause between looks while waiting.
    pub poll: Duration,
}

impl<'a> LeaseKeeper<'a> {
    /// A keeper for `key` on behalf of `instance`.
    pub fn new(bucket: &'a Bucket, key: String, instance: &str, ttl: Duration) -> Self {
        Self {
            bucket,
            key,
            instance: instance.to_string(),
            ttl,
            max_wait: ttl * 3,
            poll: Duration::from_secs(5)
                .min(ttl / 3)
                .max(Duration::from_millis(200)),
        }
    }

    /// Reads the lease and its age by S3's clock; `None` when absent.
    pub fn read(&self) -> Result<Option<(Lease, i64)>, LeaseError> {
        let Some(head) = self.bucket.head(&self.key)? else {
            return Ok(None);
        };
        let Some(body) = self.bucket.get(&self.key, None)? else {
            return Ok(None);
        };
        let lease: Lease = serde_json::from_slice(&body)
            .map_err(|e| LeaseError::Corrupt(format!("{}: {e}", self.key)))?;
        Ok(Some((lease, (head.server_now - head.last_modified).max(0))))
    }

    fn write(&self, released: bool) -> Result<(), LeaseError> {
        let body = serde_json::to_vec(&Lease {
            instance: self.instance.clone(),
            renewed_at: clawster_core::timefmt::fmt_utc(crate::host::s3::unix_now()),
            released,
        })
        .map_err(|e| LeaseError::Corrupt(e.to_string()))?;
        self.bucket.put(&self.key, &body, "application/json")?;
        Ok(())
    }

    /// Takes the lease, waiting up to `max_wait` for a live holder to release or expire.
    pub fn acquire(&self) -> Result<Taken, LeaseError> {
        let start = std::time::Instant::now();
        let ttl = self.ttl.as_secs() as i64;
        loop {
            let taken = match self.read()? {
                None => Taken::Fresh,
                Some((l, _)) if l.instance == self.instance => Taken::Ours,
                Some((l, _)) if l.released => Taken::Released { from: l.instance },
                Some((l, age)) if age > ttl => Taken::Expired {
                    from: l.instance,
                    age,
                },
                Some((l, age)) => {
                    let waited = start.elapsed();
                    if waited >= self.max_wait {
                        return Err(LeaseError::Held {
                            holder: l.instance,
                            age,
                            ttl: self.ttl.as_secs(),
                            waited: waited.as_secs(),
                        });
                    }
                    std::thread::sleep(self.poll);
                    continue;
                }
            };
            self.write(false)?;
            // Two new hosts racing: the later write wins; the loser sees it and backs off.
            std::thread::sleep(Duration::from_millis(500));
            match self.read()? {
                Some((l, _)) if l.instance == self.instance => return Ok(taken),
                Some((l, _)) => return Err(LeaseError::Lost(l.instance)),
                None => return Err(LeaseError::Corrupt("vanished after writing".into())),
            }
        }
    }

    /// Renews the lease; fails with [`LeaseError::Lost`] if another host holds it now.
    pub fn renew(&self) -> Result<(), LeaseError> {
        match self.read()? {
            Some((l, _)) if l.instance != self.instance && !l.released => {
                Err(LeaseError::Lost(l.instance))
            }
            _ => self.write(false),
        }
    }

    /// Lets go after the final sync, if it is still ours.
    pub fn release(&self) -> Result<(), LeaseError> {
        match self.read()? {
            Some((l, _)) if l.instance != self.instance => Err(LeaseError::Lost(l.instance)),
            _ => self.write(true),
        }
    }
}
