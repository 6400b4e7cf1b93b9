//! Threads for the guard's connections and stream pumps, kept for reuse.
//!
//! A connection used to get a thread of its own, started on accept, and an exec stream a second
//! one for its stdin. Starting a thread costs little CPU, but on a busy host the scheduler lets a
//! new thread wait for its first turn much longer than a sleeping one that is woken, and an exec
//! round trip through the guard started three. Here a job goes to an idle thread if there is one,
//! else to a new thread, which afterwards waits [`IDLE_EXIT`] for more work; at most [`MAX_IDLE`]
//! wait at once. There is no upper bound on busy threads here: the caller bounds its jobs
//! (`MAX_CONNECTIONS`, one stdin pump per connection).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Most threads kept waiting for work.
pub const MAX_IDLE: usize = 16;
/// How long an idle thread waits for work before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(60);

/// Work for a pooled thread.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool of reusable threads.
#[derive(Debug)]
pub struct Pool {
    name: &'static str,
    state: Mutex<Waiting>,
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    idle: usize,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("jobs", &self.jobs.len())
            .field("idle", &self.idle)
            .finish()
    }
}

impl Pool {
    /// An empty pool whose threads are called `name`.
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            state: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on an idle thread, or on a new one. An error means no thread could be started;
    /// the job was dropped without running.
    pub fn run(self: &Arc<Self>, job: Job) -> io::Result<()> {
        {
            let mut st = self.lock();
            // Idle threads not yet claimed by queued jobs.
            if st.idle > st.jobs.len() {
                st.jobs.push_back(job);
                drop(st);
                self.wake.notify_one();
                return Ok(());
            }
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || me.work(job))
            .map(|_| ())
    }

    /// How many threads wait for work now.
    pub fn idle(&self) -> usize {
        self.lock().idle
    }

    fn work(&self, first: Job) {
        first();
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
                st = self.lock();
                continue;
            }
            if st.idle >= MAX_IDLE {
                return;
            }
            st.idle += 1;
            let (guard, waited) = self
                .wake
                .wait_timeout(st, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if waited.timed_out() && st.jobs.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    fn wait_idle(p: &Pool, n: usize) {
        let t = Instant::now();
        while p.idle() != n {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "idle {} != {n}",
                p.idle()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_finished_thread_takes_the_next_job() {
        let p = Pool::new("test-pool");
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let tx = tx.clone();
            p.run(Box::new(move || {
                tx.send(std::thread::current().id()).expect("send");
            }))
            .expect("run");
            rx.recv_timeout(Duration::from_secs(5)).expect("ran");
            wait_idle(&p, 1);
        }
        let ids: Vec<_> = (0..3)
            .map(|_| {
                let tx = tx.clone();
                p.run(Box::new(move || {
                    tx.send(std::thread::current().id()).expect("send");
                }))
                .expect("run");
                let id = rx.recv_timeout(Duration::from_secs(5)).expect("ran");
                wait_idle(&p, 1);
                id
            })
            .collect();
        assert!(
            ids.iter().all(|i| *i == ids[0]),
            "one thread reused: {ids:?}"
        );
    }

    #[test]
    fn jobs_that_wait_for_each_other_all_get_a_thread() {
        // Eight jobs that each wait until all eight run: only possible with eight threads, also
        // when some of them were idle in the pool before.
        let p = Pool::new("test-pool");
        let warm = Arc::new(std::sync::Barrier::new(3));
        for _ in 0..3 {
            let b = Arc::clone(&warm);
            p.run(Box::new(move || {
                b.wait();
            }))
            .expect("run");
        }
        wait_idle(&p, 3);
        let n = 8;
        let barrier = Arc::new(std::sync::Barrier::new(n + 1));
        for _ in 0..n {
            let b = Arc::clone(&barrier);
            p.run(Box::new(move || {
                b.wait();
            }))
            .expect("run");
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            barrier.wait();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("all jobs ran at once");
        wait_idle(&p, n);
    }

    #[test]
    fn idle_threads_are_bounded() {
        let p = Pool::new("test-pool");
        let n = MAX_IDLE + 4;
        let barrier = Arc::new(std::sync::Barrier::new(n));
        for _ in 0..n {
            let b = Arc::clone(&barrier);
            p.run(Box::new(move || {
                b.wait();
            }))
            .expect("run");
        }
        wait_idle(&p, MAX_IDLE);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(p.idle(), MAX_IDLE);
    }
}
