//! Running a command with a deadline and capturing what it printed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What a finished command returned.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; 128+N when killed by signal N.
    pub status: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// True when the exit code is 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` (stdin closed), killing it if it is still running after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {shown}"))?;
    let out = reader(child.stdout.take().expect("piped"));
    let err = reader(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("wait for {shown}"))?
        {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    };
    Ok(Output {
        status: code,
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    })
}

/// Runs `cmd` and fails, with its output, unless it exits 0.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = run(cmd, timeout)?;
    if !out.success() {
        bail!(
            "{shown} exited {}:\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
    }
    Ok(out)
}

/// Polls `f` every 50 ms until it returns true, failing after `limit`; returns how long it took.
pub fn wait_for(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= limit {
            bail!("{what} did not happen within {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_code() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .expect("run");
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        assert!(run_ok(&mut Command::new("false"), Duration::from_secs(5)).is_err());
    }

    #[test]
    fn wait_for_reports_success_and_timeout() {
        let mut n = 0;
        wait_for("third call", Duration::from_secs(5), || {
            n += 1;
            Ok(n == 3)
        })
        .expect("succeeds on the third call");
        assert_eq!(n, 3);
        let err =
            wait_for("never", Duration::from_millis(100), || Ok(false)).expect_err("times out");
        assert!(err.to_string().contains("never did not happen"), "{err}");
    }

    #[test]
    fn kills_on_timeout() {
        let start = Instant::now();
        let err =
            run(Command::new("sleep").arg("30"), Duration::from_millis(200)).expect_err("timeout");
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
