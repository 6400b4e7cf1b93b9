//! A real booted test host: Debian bookworm with systemd as PID 1, D-Bus, journald and dockerd,
//! in a systemd-nspawn container.
//!
//! The root filesystem is built once with debootstrap and cached under
//! `$CLAWSTER_CACHE/rootfs/<layout>-<hash>`, where the hash covers the whole recipe (release,
//! packages, layout, build steps), so changing the recipe builds a new image and an unchanged
//! one boots in seconds. Each boot runs on a fresh overlay (the cached image is the read-only
//! lower layer), so tests never see each other's changes and never damage the cache.
//! `/var/lib/docker` is a plain directory bound in, because overlay2 cannot nest on overlayfs.
//!
//! Cleanup is guaranteed three ways: [`TestHost`]'s `Drop` powers the container off and removes
//! its work directory (also when a test panics); nspawn gets SIGTERM from the kernel if the test
//! process dies (parent-death signal); and every boot first reaps work directories left by
//! processes that no longer exist.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::process::{run, run_ok, Output};

/// Layout of `/usr` in the test host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `/bin`, `/sbin`, `/lib` are symlinks into `/usr` (Debian 12, Amazon Linux 2023).
    MergedUsr,
    /// `/bin`, `/sbin`, `/lib` are real directories (older systems; catches code that assumes symlinks).
    SplitUsr,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::MergedUsr => "merged-usr",
            Layout::SplitUsr => "split-usr",
        }
    }

    fn debootstrap_flag(self) -> &'static str {
        match self {
            Layout::MergedUsr => "--merged-usr",
            Layout::SplitUsr => "--no-merged-usr",
        }
    }
}

/// Debian release of the test host.
const SUITE: &str = "bookworm";
/// Installed by debootstrap itself: what it takes to boot systemd with a system bus.
const BASE_PACKAGES: &[&str] = &["systemd", "systemd-sysv", "dbus"];
/// Installed afterwards with apt: a real dockerd and what Sysbox and our agents expect on a host.
const EXTRA_PACKAGES: &[&str] = &[
    "docker.io",
    "iptables",
    "rsync",
    "fuse",
    "kmod",
    "openssh-server",
    "ca-certificates",
    "procps",
    "python3",
    "xz-utils",
    "binutils",
    // Node from npm (the real OpenClaw gateway's runtime) links libatomic.so.1, which Ubuntu and
    // Amazon Linux hosts ship.
    "libatomic1",
];
/// Bump when the build steps below change in a way the package lists do not show.
const RECIPE_REVISION: &str = "1";

fn mirror() -> String {
    std::env::var("CLAWSTER_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

fn recipe(layout: Layout) -> String {
    format!(
        "revision={RECIPE_REVISION}\nsuite={SUITE}\nlayout={}\nbase={}\nextra={}\nmirror={}\n",
        layout.name(),
        BASE_PACKAGES.join(","),
        EXTRA_PACKAGES.join(","),
        mirror()
    )
}

/// The cache path of the image for `layout`, keyed by a hash of its recipe.
pub fn rootfs_path(layout: Layout) -> PathBuf {
    let hash = hex::encode(Sha256::digest(recipe(layout).as_bytes()));
    crate::cache_dir()
        .join("rootfs")
        .join(format!("{}-{}", layout.name(), &hash[..16]))
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Returns the cached root filesystem for `layout`, building it first if needed.
///
/// Safe to call from parallel tests and parallel processes: an in-process mutex plus an
/// exclusive file lock serialise builders, and the image appears only by an atomic rename of
/// a finished build.
pub fn ensure_rootfs(layout: Layout) -> Result<PathBuf> {
    let path = rootfs_path(layout);
    if path.join(".clawster-rootfs-complete").exists() {
        return Ok(path);
    }
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let parent = path.parent().expect("rootfs path has a parent");
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let lock = fs::File::create(parent.join(".build.lock")).context("create rootfs build lock")?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .context("lock rootfs build")?;
    if path.join(".clawster-rootfs-complete").exists() {
        return Ok(path);
    }
    let started = Instant::now();
    let tmp = parent.join(format!(".build-{}-{}", layout.name(), std::process::id()));
    let _ = remove_tree(&tmp);
    build_rootfs(layout, &tmp).with_context(|| {
        format!(
            "build the {} test host image in {} (recipe: {:?})",
            layout.name(),
            tmp.display(),
            recipe(layout)
        )
    })?;
    fs::write(tmp.join(".clawster-rootfs-complete"), recipe(layout))
        .context("mark rootfs complete")?;
    fs::rename(&tmp, &path)
        .with_context(|| format!("move finished image to {}", path.display()))?;
    prune_old_images(layout, &path);
    eprintln!(
        "testhost: built {} image {} in {:.1} s",
        layout.name(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// Removes images of this layout built from other recipes, so the cache holds one per layout.
fn prune_old_images(layout: Layout, keep: &Path) {
    let Some(parent) = keep.parent() else { return };
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let prefix = format!("{}-", layout.name());
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && path != keep {
            match remove_tree(&path) {
                Ok(()) => eprintln!("testhost: removed outdated image {}", path.display()),
                Err(e) => eprintln!(
                    "testhost: could not remove outdated image {}: {e:#}",
                    path.display()
                ),
            }
        }
    }
}

fn build_rootfs(layout: Layout, dir: &Path) -> Result<()> {
    crate::prereq::require_tools("test host image", &["debootstrap", "chroot"])?;
    let long = Duration::from_secs(900);
    run_ok(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", BASE_PACKAGES.join(",")))
            .arg(layout.debootstrap_flag())
            .arg(SUITE)
            .arg(dir)
            .arg(mirror()),
        long,
    )?;
    // Keep maintainer scripts from starting services inside the chroot.
    let policy = dir.join("usr/sbin/policy-rc.d");
    fs::write(&policy, "#!/bin/sh\nexit 101\n").context("write policy-rc.d")?;
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755)).context("chmod policy-rc.d")?;
    let apt = |args: &[&str]| -> Result<Output> {
        run_ok(
            Command::new("chroot")
                .arg(dir)
                .args([
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "LC_ALL=C",
                    "apt-get",
                    "-q",
                    "-y",
                ])
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            long,
        )
    };
    apt(&["update"])?;
    let mut install = vec!["install", "--no-install-recommends"];
    install.extend_from_slice(EXTRA_PACKAGES);
    apt(&install)?;
    apt(&["clean"])?;
    fs::remove_file(&policy).context("remove policy-rc.d")?;
    let _ = remove_tree(&dir.join("var/lib/apt/lists"));
    fs::create_dir_all(dir.join("var/lib/apt/lists/partial")).context("recreate apt lists dir")?;
    fs::write(dir.join("etc/hostname"), "clawster-testhost\n").context("write hostname")?;
    // Units that only slow a container's boot down or fail in one.
    for unit in [
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "fstrim.timer",
    ] {
        let link = dir.join("etc/systemd/system").join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).with_context(|| format!("mask {unit}"))?;
    }
    Ok(())
}

/// Options of one boot.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// The `/usr` layout.
    pub layout: Layout,
    /// Give the container its own network namespace with only loopback (default: true). Without it
    /// the container shares the machine's network, and dockerd would add bridges and firewall
    /// rules to the machine itself.
    pub private_network: bool,
    /// How long to wait for systemd to finish booting.
    pub boot_timeout: Duration,
    /// Mount `/proc/sys` (and `/sys`) writable (default: false). Needed to test code that sets
    /// kernel parameters; writes to non-namespaced keys (e.g. `kernel.pid_max`) then change the
    /// machine's own kernel, so only use it for raise-only settings.
    pub writable_proc_sys: bool,
    /// Directories of the machine bound read-only into the container, as (source, guest path):
    /// large cached trees (e.g. the real OpenClaw from npm) without copying them into each overlay.
    pub binds_ro: Vec<(PathBuf, String)>,
}

impl BootOptions {
    /// Defaults for `layout`.
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            private_network: true,
            boot_timeout: Duration::from_secs(120),
            writable_proc_sys: false,
            binds_ro: Vec::new(),
        }
    }
}

/// A booted container. Dropping it powers it off and removes everything it left behind.
#[derive(Debug)]
pub struct TestHost {
    name: String,
    layout: Layout,
    opts: BootOptions,
    nspawn: Option<Child>,
    leader: u32,
    work: PathBuf,
    root: PathBuf,
}

static BOOT_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestHost {
    /// Boots a host with default options and waits until systemd reports it has finished booting.
    pub fn boot(layout: Layout) -> Result<Self> {
        Self::boot_with(BootOptions::new(layout))
    }

    /// Boots a host with `opts`.
    pub fn boot_with(opts: BootOptions) -> Result<Self> {
        crate::prereq::require_root("test host")?;
        crate::prereq::require_tools(
            "test host",
            &["systemd-nspawn", "nsenter", "mount", "umount"],
        )?;
        let image = ensure_rootfs(opts.layout)?;
        let hosts = crate::cache_dir().join("hosts");
        fs::create_dir_all(&hosts).with_context(|| format!("create {}", hosts.display()))?;
        reap_stale(&hosts);

        let name = format!(
            "clawster-{}-{}-{}",
            opts.layout.name(),
            std::process::id(),
            BOOT_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let work = hosts.join(&name);
        let root = work.join("root");
        for d in ["upper", "ovl-work", "root", "docker"] {
            fs::create_dir_all(work.join(d))
                .with_context(|| format!("create {}", work.join(d).display()))?;
        }
        let mut host = TestHost {
            name,
            layout: opts.layout,
            opts: opts.clone(),
            nspawn: None,
            leader: 0,
            work,
            root,
        };
        run_ok(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o"])
                .arg(format!(
                    "lowerdir={},upperdir={},workdir={}",
                    image.display(),
                    host.work.join("upper").display(),
                    host.work.join("ovl-work").display()
                ))
                .arg(&host.root),
            Duration::from_secs(30),
        )
        .context("mount the overlay root of the test host")?;

        host.start()?;
        Ok(host)
    }

    /// Starts systemd-nspawn on the (already mounted) overlay root and waits for the boot.
    fn start(&mut self) -> Result<()> {
        let host = self;
        let opts = host.opts.clone();
        let console =
            fs::File::create(host.work.join("console.log")).context("create console log")?;
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args([
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--capability=all",
            "--boot",
            "--console=passive",
        ])
        .arg(format!("--machine={}", host.name))
        .arg("--directory")
        .arg(&host.root)
        .arg(format!(
            "--bind={}:/var/lib/docker",
            host.work.join("docker").display()
        ));
        if opts.private_network {
            cmd.arg("--private-network");
        }
        for (src, dest) in &opts.binds_ro {
            if !src.is_dir() {
                bail!("bind source {} is not a directory", src.display());
            }
            cmd.arg(format!("--bind-ro={}:{dest}", src.display()));
        }
        if opts.writable_proc_sys {
            cmd.env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "1");
        }
        cmd.stdin(Stdio::null())
            .stdout(console.try_clone().context("dup console log")?)
            .stderr(console);
        pdeathsig::set_on(&mut cmd);
        host.nspawn = Some(cmd.spawn().context("start systemd-nspawn")?);
        host.leader = host.wait_leader(Duration::from_secs(30))?;
        host.wait_booted(opts.boot_timeout)
    }

    /// Reboots the host: powers it off cleanly and boots it again on the same root filesystem
    /// (what the host wrote to disk stays; `/run` and every process are new).
    pub fn reboot(&mut self) -> Result<()> {
        self.power_off();
        self.start()
    }

    /// The container's name (also its hostname).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `/usr` layout it was booted with.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The container's `/` as seen from the machine, for assertions on files.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// A path inside the container, as seen from the machine.
    pub fn path(&self, guest_path: &str) -> PathBuf {
        self.root.join(guest_path.trim_start_matches('/'))
    }

    /// The machine-side PID of the container's systemd.
    pub fn leader_pid(&self) -> u32 {
        self.leader
    }

    fn nspawn_pid(&self) -> u32 {
        self.nspawn.as_ref().map(Child::id).unwrap_or(0)
    }

    fn console_tail(&self) -> String {
        let text = fs::read_to_string(self.work.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn wait_leader(&mut self, timeout: Duration) -> Result<u32> {
        let deadline = Instant::now() + timeout;
        let pid = self.nspawn_pid();
        loop {
            if let Some(status) = self
                .nspawn
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "systemd-nspawn exited ({status}) before the container started:\n{}",
                    self.console_tail()
                );
            }
            let children =
                fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                let exe = fs::read_link(format!("/proc/{child}/exe")).unwrap_or_default();
                if exe.file_name().is_some_and(|n| n == "systemd") {
                    return Ok(child);
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the container's systemd did not start within {timeout:?}:\n{}",
                    self.console_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_booted(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.exec(&["systemctl", "is-system-running"])?;
            match out.stdout.trim() {
                "running" => return Ok(()),
                "degraded" => {
                    let failed = self.exec(&["systemctl", "--failed", "--no-legend", "--plain"])?;
                    eprintln!(
                        "testhost {}: booted degraded; failed units:\n{}",
                        self.name, failed.stdout
                    );
                    return Ok(());
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                bail!(
                    "test host {} did not finish booting within {timeout:?} (state {:?}):\n{}",
                    self.name,
                    out.stdout.trim(),
                    self.console_tail()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a command inside the container (all its namespaces, a clean environment, root) and
    /// returns its exit code and output. Times out after 5 minutes.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        self.exec_timeout(argv, Duration::from_secs(300))
    }

    /// Like [`TestHost::exec`] with a deadline.
    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> Result<Output> {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.leader.to_string())
            .args(["--all", "--", "/usr/bin/env", "-i"])
            .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .arg("LANG=C.UTF-8")
            .args(argv)
            .env_clear();
        run(&mut cmd, timeout)
    }

    /// Runs a command inside and fails, with its output, unless it exits 0; returns stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> Result<String> {
        let out = self.exec(argv)?;
        if !out.success() {
            bail!(
                "{argv:?} in {} exited {}:\n{}{}",
                self.name,
                out.status,
                out.stdout,
                out.stderr
            );
        }
        Ok(out.stdout)
    }

    /// Copies a file from the machine into the container, owned by root with `mode`.
    pub fn copy_in(&self, src: &Path, guest_path: &str, mode: u32) -> Result<()> {
        let bytes = fs::read(src).with_context(|| format!("read {}", src.display()))?;
        self.write_file(guest_path, &bytes, mode)
    }

    /// Writes a file inside the container, owned by root with `mode`, creating parent directories.
    pub fn write_file(&self, guest_path: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let dest = self.path(guest_path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
        }
        fs::write(&dest, bytes).with_context(|| format!("write {}", dest.display()))?;
        std::os::unix::fs::chown(&dest, Some(0), Some(0))
            .with_context(|| format!("chown {}", dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", dest.display()))?;
        Ok(())
    }

    /// The container's journal as JSON records (`journalctl -o json` plus `args`, e.g. `-t NAME`).
    pub fn journal_json(&self, args: &[&str]) -> Result<Vec<serde_json::Value>> {
        let mut argv = vec!["journalctl", "--no-pager", "-o", "json"];
        argv.extend_from_slice(args);
        let out = self.exec_ok(&argv)?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| anyhow!("journal line {l:?}: {e}")))
            .collect()
    }

    /// Waits until the journal (filtered by `args`) holds a record for which `pred` is true.
    pub fn wait_journal(
        &self,
        args: &[&str],
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let mut found = None;
        crate::process::wait_for(
            &format!("a matching journal record for {args:?}"),
            timeout,
            || {
                found = self.journal_json(args)?.into_iter().find(|r| pred(r));
                Ok(found.is_some())
            },
        )?;
        Ok(found.expect("wait_for returned only once a record was found"))
    }

    /// Boots a merged-/usr host whose dockerd really runs containers: `agent` installed as
    /// /usr/local/bin/clawster-agent, the cgroup v1 hierarchies made writable, dockerd's cgroups
    /// under a parent named after this host, `sysbox-runc` mapped to runc (Sysbox itself is not
    /// what the docker suites test), dockerd restarted and answering.
    ///
    /// runc gives every container its own session keyring, which nspawn's default seccomp filter
    /// refuses (EPERM), so this boots without that filter (`SYSTEMD_SECCOMP=0`, read only by this
    /// test binary's own nspawn children).
    pub fn boot_with_dockerd(agent: &Path) -> Result<Self> {
        std::env::set_var("SYSTEMD_SECCOMP", "0");
        let host = Self::boot(Layout::MergedUsr)?;
        host.copy_in(agent, "/usr/local/bin/clawster-agent", 0o755)?;
        host.exec_ok(&[
            "sh",
            "-c",
            "if [ \"$(stat -fc %T /sys/fs/cgroup)\" = tmpfs ]; then \
               for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw \"$d\"; done; fi",
        ])?;
        host.write_file(
            "/etc/docker/daemon.json",
            format!(
                r#"{{"runtimes":{{"sysbox-runc":{{"path":"/usr/sbin/runc"}}}},"cgroup-parent":"/{}"}}"#,
                host.name()
            )
            .as_bytes(),
            0o644,
        )?;
        host.exec_ok(&["systemctl", "restart", "docker.service"])?;
        crate::process::wait_for("dockerd answers", Duration::from_secs(60), || {
            Ok(host.exec(&["docker", "version"])?.success())
        })?;
        Ok(host)
    }

    /// Cuts the power: SIGKILL to the container's init (every process of the container dies at
    /// once, nothing is stopped or flushed), then nspawn; the work directory stays until drop.
    pub fn power_off_hard(&mut self) {
        self.kill_leader();
        if let Some(mut child) = self.nspawn.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Powers the container off and removes its work directory, reporting any failure.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        self.power_off();
        cleanup_work_dir(&self.work)
    }

    /// Powers the container off (SIGTERM to nspawn; killed after 20 s), keeping its work dir.
    fn power_off(&mut self) {
        if let Some(mut child) = self.nspawn.take() {
            let pid =
                rustix::process::Pid::from_raw(child.id() as i32).expect("child pid is positive");
            // SIGTERM asks nspawn to power the container off cleanly.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        // A host that cannot power off (a test broke its /lib, say): kill its
                        // init, which takes every process of the container with it, then nspawn.
                        eprintln!(
                            "testhost {}: no clean poweroff in 20 s; killing it",
                            self.name
                        );
                        self.kill_leader();
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
            // nspawn gone but its init still there would be an orphaned container.
            self.kill_leader();
        }
    }

    /// SIGKILLs the container's init if it still runs (killing a PID namespace's init kills
    /// the whole namespace). Checked by identity, so a reused pid is never hit.
    fn kill_leader(&self) {
        let proc = PathBuf::from(format!("/proc/{}", self.leader));
        let is_ours = fs::read_link(proc.join("exe"))
            .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "systemd"))
            && fs::read_link(proc.join("ns/pid")).ok() != fs::read_link("/proc/self/ns/pid").ok();
        if let (true, Some(pid)) = (is_ours, rustix::process::Pid::from_raw(self.leader as i32)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let deadline = Instant::now() + Duration::from_secs(10);
            while proc.exists() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("testhost {}: cleanup failed: {e:#}", self.name);
        }
    }
}

fn cleanup_work_dir(work: &Path) -> Result<()> {
    let root = work.join("root");
    if is_mount_point(&root) {
        // Lazy unmount: a process that escaped the container must not keep the work dir alive.
        run_ok(
            Command::new("umount").arg("--lazy").arg(&root),
            Duration::from_secs(30),
        )?;
    }
    remove_tree(work)
}

fn is_mount_point(path: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(path) else {
        return false;
    };
    let want = canon.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}

/// The pid in a work directory's name `clawster-<layout>-<pid>-<n>`.
fn owner_pid(name: &str) -> Option<u32> {
    name.rsplit('-').nth(1)?.parse().ok()
}

/// Removes work directories of boots whose owning process no longer exists. The owner's pid is
/// part of the directory's name (`clawster-<layout>-<pid>-<n>`), so a directory is never seen
/// without its owner, even while another test is still setting it up.
fn reap_stale(hosts: &Path) {
    let Ok(entries) = fs::read_dir(hosts) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive = owner_pid(&name).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            if let Err(e) = cleanup_work_dir(&entry.path()) {
                eprintln!("testhost: could not reap {}: {e:#}", entry.path().display());
            }
        }
    }
}

mod pdeathsig {
    //! Parent-death signal for the nspawn child.
    #![allow(unsafe_code)]
    //! `Command::pre_exec` is `unsafe` because the closure runs between fork and exec, where only
    //! async-signal-safe calls are allowed. The closure makes exactly one such call, the
    //! `prctl(PR_SET_PDEATHSIG)` system call, so the container is powered off even if the test
    //! process is killed before `Drop` can run.

    use std::os::unix::process::CommandExt;
    use std::process::Command;

    pub(super) fn set_on(cmd: &mut Command) {
        // SAFETY: the closure only issues one prctl system call and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))
                .map_err(std::io::Error::from)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_dir_names_carry_their_owner() {
        assert_eq!(owner_pid("clawster-split-usr-6449-0"), Some(6449));
        assert_eq!(owner_pid("clawster-merged-usr-17-12"), Some(17));
        assert_eq!(owner_pid("stray"), None);
    }

    #[test]
    fn image_path_changes_with_recipe_and_layout() {
        let merged = rootfs_path(Layout::MergedUsr);
        let split = rootfs_path(Layout::SplitUsr);
        assert_ne!(merged, split);
        assert!(merged.to_string_lossy().contains("merged-usr-"));
        assert!(recipe(Layout::MergedUsr).contains("docker.io"));
        assert_eq!(
            rootfs_path(Layout::MergedUsr),
            merged,
            "stable for the same recipe"
        );
    }
}
