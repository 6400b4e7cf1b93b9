//! End to end: `clawster-agent state` (the release binary) against S3 in the moto emulator.
//!
//! `replica_cycle` runs on this machine's loopback: a new bot is refused without `init.json` and
//! starts empty with it; a live WAL database (its rows only in the WAL, a writer holding it open)
//! and plain files are replicated, scratch is not; an idle pass writes nothing; a host that
//! vanished without releasing is taken over once its lease expires, and the restore has every row
//! and file with owner and mode; a live holder is waited for and named; a graceful stop releases
//! at once; `--at` restores the earlier generation; a torn replica fails naming the file and
//! leaves the state directory as it was. It also prints the restore time of a 50 MB state.
//!
//! `openclaw_host_replaced` (in `state_openclaw.rs`) does the same with the real gateway on
//! booted hosts.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clawster_e2e::bins::host_binary;
use clawster_e2e::moto::{Moto, REGION};
use clawster_e2e::prereq::require_root;
use clawster_e2e::process::{run, Output};

const BUCKET: &str = "clawster-artifacts-123456789012-us-east-1";
const BOT: &str = "replica-bot";

/// The agent with the moto environment.
struct Agent<'a> {
    bin: PathBuf,
    moto: &'a Moto,
    root: PathBuf,
}

impl Agent<'_> {
    /// `clawster-agent state SUB` of bot `bot` as host `host` on directory `dir` (under the
    /// test's root), with the moto environment.
    fn command(&self, sub: &str, bot: &str, host: &str, dir: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.args([
            "state", sub, "--bot", bot, "--bucket", BUCKET, "--region", REGION,
        ])
        .args(["--endpoint", &self.moto.endpoint, "--instance-id", host])
        // Loopback only: no IMDS (the end of the host is `state_lifecycle.rs`).
        .args(["--imds-endpoint", "off"])
        .arg("--dir")
        .arg(self.root.join(dir))
        .arg("--work")
        .arg(self.root.join(format!("work-{bot}-{host}")));
        for (k, v) in self.moto.env() {
            c.env(k, v);
        }
        c
    }

    fn state(&self, sub: &str, host: &str, dir: &str, extra: &[&str]) -> Result<Output> {
        let mut c = self.command(sub, BOT, host, dir);
        c.args(extra);
        let t = Instant::now();
        let out = run(&mut c, Duration::from_secs(120))?;
        eprintln!(
            "state {sub} as {host} ({dir}) {} -> {} in {:.2} s\n{}{}",
            extra.join(" "),
            out.status,
            t.elapsed().as_secs_f64(),
            out.stdout,
            out.stderr
        );
        Ok(out)
    }

    fn spawn_run(&self, host: &str, dir: &str) -> Result<Child> {
        let mut c = self.command("run", BOT, host, dir);
        c.args([
            "--interval",
            "1",
            "--lease-ttl",
            "3",
            "--log-target",
            "stderr",
        ]);
        for (k, v) in self.moto.env() {
            c.env(k, v);
        }
        Ok(c.stdin(Stdio::null()).spawn()?)
    }
}

/// A Python process holding a WAL database open, committing on request; with automatic
/// checkpoints off, committed rows live only in the WAL until it closes.
struct Writer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Writer {
    fn open(db: &Path) -> Result<Self> {
        let code = "import sqlite3,sys\n\
            c=sqlite3.connect(sys.argv[1], isolation_level=None)\n\
            c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')\n\
            c.execute('CREATE TABLE IF NOT EXISTS pairing(v TEXT)')\n\
            print('ready', flush=True)\n\
            for line in sys.stdin:\n\
            \x20   c.execute('INSERT INTO pairing VALUES (?)', (line.strip(),)); print('ok', flush=True)\n";
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(code)
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("python3 writer")?;
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ready", "writer: {line:?}");
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn insert(&mut self, v: &str) -> Result<()> {
        writeln!(self.stdin, "{v}")?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ok", "writer: {line:?}");
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rows(db: &Path) -> Result<Vec<String>> {
    let out = run(
        Command::new("python3").arg("-c").arg(
            "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print('\\n'.join(r[0] for r in c.execute('SELECT v FROM pairing ORDER BY rowid')))",
        ).arg(db),
        Duration::from_secs(30),
    )?;
    anyhow::ensure!(out.success(), "reading {}: {}", db.display(), out.stderr);
    Ok(out.stdout.lines().map(str::to_string).collect())
}

fn manifests(moto: &Moto) -> Result<usize> {
    Ok(moto
        .versions(BUCKET, &format!("state/{BOT}/manifest.json"))?
        .len())
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

#[test]
fn replica_cycle() -> Result<()> {
    require_root("state e2e")?;
    let bin = host_binary("clawster-agent")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let moto = Moto::start(None, "127.0.0.1", port)?;
    moto.versioned_bucket(BUCKET)?;
    let t = tempfile::tempdir()?;
    let a = Agent {
        bin,
        moto: &moto,
        root: t.path().to_path_buf(),
    };

    // A bot with neither a replica nor ctl's new-bot marker must not start on empty state.
    let out = a.state("restore", "i-first", "a", &[])?;
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stderr.contains("replica missing"), "{}", out.stderr);
    assert!(!t.path().join("a").exists(), "nothing was made");
    moto.put(BUCKET, &format!("state/{BOT}/init.json"), "{\"version\":1}")?;
    let out = a.state("restore", "i-first", "a", &["--json"])?;
    assert!(out.success(), "{out:?}");
    assert_eq!(json(&out)["outcome"], "new");

    // The bot's state: a live WAL database and plain files; scratch that must not travel.
    let dir = t.path().join("a");
    fs::create_dir_all(dir.join("state"))?;
    fs::create_dir_all(dir.join("credentials"))?;
    fs::create_dir_all(dir.join("tmp"))?;
    fs::create_dir_all(dir.join("logs"))?;
    fs::write(dir.join("credentials/whatsapp.json"), b"{\"creds\":1}")?;
    fs::set_permissions(
        dir.join("credentials/whatsapp.json"),
        fs::Permissions::from_mode(0o600),
    )?;
    std::os::unix::fs::chown(
        dir.join("credentials/whatsapp.json"),
        Some(1000),
        Some(1000),
    )?;
    fs::write(dir.join("config-journal-fingerprint.key"), [7u8; 32])?;
    fs::write(dir.join("tmp/lock"), b"x")?;
    fs::write(dir.join("logs/gateway.log"), b"x")?;
    std::os::unix::fs::symlink("credentials/whatsapp.json", dir.join("creds-link"))?;
    let db = dir.join("state/openclaw.sqlite");
    let mut w = Writer::open(&db)?;
    w.insert("device-1")?;
    assert!(fs::metadata(format!("{}-wal", db.display()))?.len() > 0);

    let out = a.state("sync", "i-first", "a", &["--json"])?;
    assert!(out.success(), "{out:?}");
    assert_eq!(json(&out)["generation"], 1);
    let keys: Vec<String> = moto
        .versions(BUCKET, &format!("state/{BOT}/files/"))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let prefix = format!("state/{BOT}/files/");
    let mut names: Vec<&str> = keys.iter().map(|k| k.trim_start_matches(&prefix)).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "config-journal-fingerprint.key",
            "credentials/whatsapp.json",
            "state/openclaw.sqlite"
        ],
        "no tmp/, logs/, -wal or -shm"
    );
    // Idle: nothing changed, nothing written.
    let out = a.state("sync", "i-first", "a", &["--json"])?;
    assert_eq!(json(&out)["generation"], 1);
    assert_eq!(manifests(&moto)?, 1, "an idle pass writes no manifest");
    std::thread::sleep(Duration::from_millis(1100));
    let between = clawster_core_time_now();
    std::thread::sleep(Duration::from_millis(1100));
    w.insert("pairing-2")?;
    let out = a.state("sync", "i-first", "a", &["--json"])?;
    assert_eq!(json(&out)["generation"], 2);
    assert_eq!(manifests(&moto)?, 2);

    // i-first vanishes without releasing (a hard power-off): a new host waits for the lease
    // to expire, then restores everything.
    drop(w);
    let t0 = Instant::now();
    let out = a.state("restore", "i-second", "b", &["--lease-ttl", "3", "--json"])?;
    assert!(out.success(), "{out:?}");
    assert_eq!(json(&out)["outcome"], "restored");
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "waited for the lease to expire"
    );
    let b = t.path().join("b");
    assert_eq!(
        rows(&b.join("state/openclaw.sqlite"))?,
        ["device-1", "pairing-2"]
    );
    assert!(!b.join("state/openclaw.sqlite-wal").exists());
    assert!(!b.join("tmp").exists() && !b.join("logs").exists());
    let c = fs::metadata(b.join("credentials/whatsapp.json"))?;
    assert_eq!((c.uid(), c.gid(), c.mode() & 0o7777), (1000, 1000, 0o600));
    assert_eq!(
        fs::read(b.join("credentials/whatsapp.json"))?,
        b"{\"creds\":1}"
    );
    assert_eq!(
        fs::read_link(b.join("creds-link"))?,
        Path::new("credentials/whatsapp.json")
    );

    // i-second replicates; a third host waits for it and names it.
    let mut runner = a.spawn_run("i-second", "b")?;
    std::thread::sleep(Duration::from_secs(2));
    let out = a.state("restore", "i-third", "c", &["--lease-ttl", "3"])?;
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("host i-second still holds the state lease"),
        "{}",
        out.stderr
    );
    assert!(!t.path().join("c").exists());
    // A graceful stop: final pass, lease released, the next host takes over at once.
    fs::write(
        b.join("credentials/late.json"),
        b"written just before the stop",
    )?;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(runner.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )?;
    let st = runner.wait()?;
    assert!(st.success(), "state run after SIGTERM: {st:?}");
    let lease: serde_json::Value =
        serde_json::from_str(&moto.get(BUCKET, &format!("state/{BOT}/lease.json"))?)?;
    assert_eq!(lease["released"], true, "{lease}");
    let t0 = Instant::now();
    let out = a.state("restore", "i-third", "c", &["--lease-ttl", "3"])?;
    assert!(out.success(), "{out:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "no wait after a release"
    );
    assert_eq!(
        fs::read(t.path().join("c/credentials/late.json"))?,
        b"written just before the stop"
    );

    // --at: the generation current between the two syncs.
    let out = a.state("restore", "i-third", "c", &["--at", &between, "--json"])?;
    assert!(out.success(), "{out:?}");
    assert_eq!(
        rows(&t.path().join("c/state/openclaw.sqlite"))?,
        ["device-1"]
    );
    assert!(
        t.path().join("c.before-restore").is_dir(),
        "the replaced state is kept once"
    );
    let out = a.state("restore", "i-third", "c", &["--at", "yesterday"])?;
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("--at \"yesterday\""), "{}", out.stderr);

    // A torn replica: the database's object version the manifest names is gone.
    let manifest: serde_json::Value =
        serde_json::from_str(&moto.get(BUCKET, &format!("state/{BOT}/manifest.json"))?)?;
    let entry = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "state/openclaw.sqlite")
        .unwrap();
    moto.delete_version(
        BUCKET,
        &format!("state/{BOT}/files/state/openclaw.sqlite"),
        entry["version_id"].as_str().unwrap(),
    )?;
    let out = a.state("restore", "i-fourth", "d", &["--lease-ttl", "3"])?;
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.stderr.contains("torn replica: state/openclaw.sqlite"),
        "{}",
        out.stderr
    );
    assert!(!t.path().join("d").exists(), "nothing half-restored");
    assert!(!t.path().join("d.restoring").exists(), "staging removed");

    restore_time_50mb(&a, t.path())?;
    Ok(())
}

/// Unix time now as the agent's `--at` reads it.
fn clawster_core_time_now() -> String {
    let out = run(
        Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        Duration::from_secs(5),
    )
    .unwrap();
    out.stdout.trim().to_string()
}

/// A 50 MB state (a 40 MB database of random rows and 10 MB of files) replicated, then
/// restored on a new host: prints the times (numbers for the closing note, not asserted).
fn restore_time_50mb(a: &Agent<'_>, root: &Path) -> Result<()> {
    let dir = root.join("big");
    fs::create_dir_all(dir.join("state"))?;
    fs::create_dir_all(dir.join("workspace"))?;
    let out = run(
        Command::new("python3").arg("-c").arg(
            "import sqlite3,sys,os\n\
             c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=WAL')\n\
             c.execute('CREATE TABLE s(k INTEGER PRIMARY KEY, v BLOB)')\n\
             c.executemany('INSERT INTO s(v) VALUES (?)', ((os.urandom(2048),) for _ in range(10000)))\n\
             c.commit()\n\
             for i in range(10): open(sys.argv[2]+'/f%d.bin'%i,'wb').write(os.urandom(1<<20))\n",
        )
        .arg(dir.join("state/openclaw.sqlite"))
        .arg(dir.join("workspace")),
        Duration::from_secs(120),
    )?;
    anyhow::ensure!(out.success(), "{}", out.stderr);
    let bot = "big-bot";
    let cmd = |sub: &str, host: &str, dir: &str| {
        let mut c = a.command(sub, bot, host, dir);
        c.arg("--json");
        c
    };
    a.moto
        .put(BUCKET, &format!("state/{bot}/init.json"), "{\"version\":1}")?;
    let t0 = Instant::now();
    let out = run(&mut cmd("sync", "i-big-1", "big"), Duration::from_secs(300))?;
    anyhow::ensure!(out.success(), "{out:?}");
    let sync_s = t0.elapsed().as_secs_f64();
    let bytes = json(&out)["bytes"].as_u64().unwrap_or(0);
    // Released, as after a graceful stop, so the restore measures only the restore.
    a.moto.put(
        BUCKET,
        &format!("state/{bot}/lease.json"),
        "{\"instance\":\"i-big-1\",\"renewed_at\":\"2026-01-01T00:00:00Z\",\"released\":true}",
    )?;
    let t0 = Instant::now();
    let out = run(
        &mut cmd("restore", "i-big-2", "big-restored"),
        Duration::from_secs(300),
    )?;
    anyhow::ensure!(out.success(), "{out:?}");
    let restore_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "state numbers: {:.1} MB of state; first sync {sync_s:.2} s; restore on a new host {restore_s:.2} s (moto on loopback)",
        bytes as f64 / 1e6
    );
    anyhow::ensure!(bytes > 45_000_000, "the state was {bytes} bytes");
    Ok(())
}
