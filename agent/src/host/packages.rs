//! The package manager boundary: finding tools on the standard PATH, running dnf or apt-get as
//! argv (never a shell) with a deadline, and the trait that lets tests put a fake in its place.
//!
//! Callers: bootstrap's prerequisites ([`crate::bootstrap::prereqs`]) and the maintenance window.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clawster_core::fs::HostRoot;

/// A tool and the package that provides it on Debian/Ubuntu and on Amazon Linux.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The command.
    pub name: &'static str,
    /// Debian/Ubuntu package.
    pub apt: &'static str,
    /// Amazon Linux / Fedora package.
    pub dnf: &'static str,
}

pub const BIN_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Where `tool` is under `root`, if anywhere on the standard PATH.
pub fn find_tool(root: &HostRoot, tool: &str) -> Option<PathBuf> {
    BIN_DIRS
        .iter()
        .map(|d| root.path(d).join(tool))
        .find(|p| p.is_file())
}

/// The package manager boundary.
pub trait PackageManager: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;
    /// Package names for these tools.
    fn packages(&self, tools: &[Tool]) -> Vec<String>;
    /// Installs the packages, giving up after `timeout`.
    fn install(&self, packages: &[String], timeout: Duration) -> Result<(), String>;
}

/// Which command-line package manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// `dnf install -y -- PKGS`
    Dnf,
    /// `apt-get install -y --no-install-recommends -- PKGS` (with `apt-get update` on failure)
    Apt,
    /// Another program called as `PROGRAM install -y -- PKGS` (benchmarks and tests).
    Custom,
}

/// A package manager run as a child process (argv only, never a shell).
#[derive(Debug, Clone)]
pub struct CommandPackageManager {
    /// The program.
    pub program: PathBuf,
    /// How to call it.
    pub flavor: Flavor,
}

impl CommandPackageManager {
    /// The host's dnf or apt-get, if either exists.
    pub fn detect() -> Option<Self> {
        let root = HostRoot::new("/");
        if let Some(p) = find_tool(&root, "dnf") {
            return Some(Self {
                program: p,
                flavor: Flavor::Dnf,
            });
        }
        find_tool(&root, "apt-get").map(|p| Self {
            program: p,
            flavor: Flavor::Apt,
        })
    }
}

/// Runs a command with a deadline; kills it when the deadline passes.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<(), String> {
    let shown = format!("{:?}", cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{shown}: {status}")),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown}: still running after {timeout:?}, killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
    }
}

impl PackageManager for CommandPackageManager {
    fn name(&self) -> String {
        self.program.display().to_string()
    }

    fn packages(&self, tools: &[Tool]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in tools {
            let p = if self.flavor == Flavor::Dnf {
                t.dnf
            } else {
                t.apt
            };
            if !out.iter().any(|x| x == p) {
                out.push(p.to_string());
            }
        }
        out
    }

    fn install(&self, packages: &[String], timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let install = |extra: &[&str]| {
            let mut c = Command::new(&self.program);
            c.arg("install")
                .arg("-y")
                .args(extra)
                .arg("--")
                .args(packages);
            c.env("DEBIAN_FRONTEND", "noninteractive");
            run_bounded(&mut c, timeout.saturating_sub(start.elapsed()))
        };
        match self.flavor {
            Flavor::Dnf => install(&["--setopt=install_weak_deps=False"]),
            Flavor::Custom => install(&[]),
            Flavor::Apt => install(&["--no-install-recommends"]).or_else(|first| {
                // A fresh image may have no package lists yet.
                let mut up = Command::new(&self.program);
                up.arg("update").env("DEBIAN_FRONTEND", "noninteractive");
                run_bounded(&mut up, timeout.saturating_sub(start.elapsed()))
                    .and_then(|()| install(&["--no-install-recommends"]))
                    .map_err(|second| format!("{first}; after apt-get update: {second}"))
            }),
        }
    }
}

/// Checks a custom package manager path given on the command line.
pub fn custom(program: &Path) -> CommandPackageManager {
    CommandPackageManager {
        program: program.to_path_buf(),
        flavor: Flavor::Custom,
    }
}

// ---- One package for the maintenance window -------------------------------------------------

/// The environment every package manager run by the window gets (everything else is cleared:
/// `APT_CONFIG` or `DNF_VAR_*` from a caller could point it at another configuration).
pub const CLEAN_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LC_ALL", "C"),
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
    ("NEEDRESTART_SUSPEND", "1"),
    ("NEEDRESTART_MODE", "l"),
    ("HOME", "/root"),
];

/// Bounds of one window install.
#[derive(Debug, Clone, Copy)]
pub struct InstallLimits {
    /// Overall deadline for everything (update, checks, install).
    pub timeout: Duration,
    /// apt's `DPkg::Lock::Timeout` (seconds to wait for another apt/dpkg).
    pub lock_timeout: Duration,
}

impl Default for InstallLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            lock_timeout: Duration::from_secs(60),
        }
    }
}

/// What a successful window install did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallReport {
    /// Nothing to do: the package was installed and current.
    pub already_installed: bool,
    /// Packages installed (`name version`) or upgraded (`name old -> new`).
    pub changes: Vec<String>,
}

/// Why a window install did not happen or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// No package of exactly this name (after an update of the lists).
    #[error(
        "no package is named exactly {0:?} (virtual packages, provides and patterns do not count)"
    )]
    NotFound(String),
    /// The transaction would remove packages.
    #[error("installing {package} would remove {}; refused", removals.join(", "))]
    WouldRemove {
        /// The package asked for.
        package: String,
        /// What would go.
        removals: Vec<String>,
    },
    /// Refreshing the package lists failed (e.g. an unreachable repository).
    #[error("updating the package lists failed: {0}")]
    Update(String),
    /// The deadline passed; the process group was killed.
    #[error("{0} still running after {1:?}; killed")]
    TimedOut(String, Duration),
    /// The package manager failed.
    #[error("{0}")]
    Failed(String),
}

/// Installs one package for the window, streaming its output.
pub trait WindowInstaller: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> String;
    /// Checks `package` exists as exactly that name, refuses removals, installs it, and reports
    /// what changed. `out` gets each output line as it comes.
    fn install_one(
        &self,
        package: &str,
        limits: &InstallLimits,
        out: &mut dyn FnMut(&str),
    ) -> Result<InstallReport, InstallError>;
}

/// Runs argv with the clean environment in its own process group, sending each line of
/// stdout+stderr to `out` (and collecting them); kills the whole group at `deadline`.
pub fn run_streaming(
    program: &Path,
    args: &[&str],
    deadline: Instant,
    out: &mut dyn FnMut(&str),
) -> Result<(std::process::ExitStatus, Vec<String>), InstallError> {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let shown = format!(
        "{} {}",
        program.file_name().unwrap_or_default().to_string_lossy(),
        args.join(" ")
    );
    let (reader, writer) =
        std::io::pipe().map_err(|e| InstallError::Failed(format!("pipe: {e}")))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| InstallError::Failed(format!("pipe: {e}")))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(CLEAN_ENV.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| InstallError::Failed(format!("starting {shown}: {e}")))?;
    drop(cmd); // closes our copies of the write end
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader_thread = std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut lines = Vec::new();
    let pgid = rustix::process::Pid::from_child(&child);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                out(&line);
                lines.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            let _ = child.wait();
            let _ = reader_thread.join();
            return Err(InstallError::TimedOut(
                shown,
                deadline.saturating_duration_since(Instant::now()),
            ));
        }
    }
    let _ = reader_thread.join();
    let status = child
        .wait()
        .map_err(|e| InstallError::Failed(format!("waiting for {shown}: {e}")))?;
    Ok((status, lines))
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Parses `apt-get -s` plan lines: (installs/upgrades, removals).
pub fn parse_apt_plan(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let mut inst = Vec::new();
    let mut remv = Vec::new();
    for l in lines {
        if let Some(rest) = l.strip_prefix("Inst ") {
            // `hello (2.10-3 Debian:12/stable [amd64])` or `perl-base [old] (new ...)`
            let mut it = rest.split_whitespace();
            let name = it.next().unwrap_or_default();
            let (old, newv) = match it.next() {
                Some(o) if o.starts_with('[') => (
                    Some(o.trim_matches(['[', ']'])),
                    it.next().map(|n| n.trim_start_matches('(')),
                ),
                Some(n) => (None, Some(n.trim_start_matches('('))),
                None => (None, None),
            };
            let newv = newv.unwrap_or("?");
            inst.push(match old {
                Some(o) => format!("{name} {o} -> {newv}"),
                None => format!("{name} {newv}"),
            });
        } else if let Some(rest) = l.strip_prefix("Remv ") {
            remv.push(
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    (inst, remv)
}

impl CommandPackageManager {
    fn sibling(&self, tool: &str) -> PathBuf {
        self.program
            .parent()
            .map(|d| d.join(tool))
            .filter(|p| p.is_file())
            .or_else(|| find_tool(&HostRoot::new("/"), tool))
            .unwrap_or_else(|| PathBuf::from(tool))
    }

    fn apt_exists(&self, package: &str, deadline: Instant) -> Result<bool, InstallError> {
        let cache = self.sibling("apt-cache");
        let (st, lines) =
            run_streaming(&cache, &["pkgnames", "--", package], deadline, &mut |_| {})?;
        // pkgnames exits 0 with no output when nothing matches; it never falls back to regex.
        if !st.success() && !lines.is_empty() {
            return Err(InstallError::Failed(format!(
                "apt-cache pkgnames: {st}: {}",
                tail(&lines)
            )));
        }
        Ok(lines.iter().any(|l| l == package))
    }

    fn apt_install(
        &self,
        package: &str,
        limits: &InstallLimits,
        out: &mut dyn FnMut(&str),
    ) -> Result<InstallReport, InstallError> {
        let deadline = Instant::now() + limits.timeout;
        if !self.apt_exists(package, deadline)? {
            out(&format!(
                "clawster: {package} is not in the package lists; running apt-get update"
            ));
            let (st, lines) = run_streaming(
                &self.program,
                &["update", "-q", "-o", "APT::Update::Error-Mode=any"],
                deadline,
                out,
            )?;
            if !st.success() {
                return Err(InstallError::Update(format!(
                    "apt-get update: {st}: {}",
                    tail(&lines)
                )));
            }
            if !self.apt_exists(package, deadline)? {
                return Err(InstallError::NotFound(package.into()));
            }
        }
        let lock = format!("DPkg::Lock::Timeout={}", limits.lock_timeout.as_secs());
        let common = [
            "install",
            "-y",
            "-q",
            "--no-remove",
            "--no-install-recommends",
            "-o",
            lock.as_str(),
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ];
        let mut sim: Vec<&str> = common.to_vec();
        sim.extend(["-s", "--", package]);
        let (st, lines) = run_streaming(&self.program, &sim, deadline, &mut |_| {})?;
        let (changes, removals) = parse_apt_plan(&lines);
        if !removals.is_empty() || lines.iter().any(|l| l.contains("remove is disabled")) {
            return Err(InstallError::WouldRemove {
                package: package.into(),
                removals: if removals.is_empty() {
                    vec!["packages".into()]
                } else {
                    removals
                },
            });
        }
        if !st.success() {
            return Err(InstallError::Failed(format!(
                "apt-get install -s: {st}: {}",
                tail(&lines)
            )));
        }
        for c in &changes {
            out(&format!("clawster: plan: {c}"));
        }
        if changes.is_empty() {
            out(&format!(
                "clawster: {package} is already installed and current"
            ));
            return Ok(InstallReport {
                already_installed: true,
                changes,
            });
        }
        let mut real: Vec<&str> = common.to_vec();
        real.extend(["--", package]);
        let (st, lines) = run_streaming(&self.program, &real, deadline, out)?;
        if !st.success() {
            return Err(InstallError::Failed(format!(
                "apt-get install: {st}: {}",
                tail(&lines)
            )));
        }
        Ok(InstallReport {
            already_installed: false,
            changes,
        })
    }

    fn dnf_install(
        &self,
        package: &str,
        limits: &InstallLimits,
        out: &mut dyn FnMut(&str),
    ) -> Result<InstallReport, InstallError> {
        let deadline = Instant::now() + limits.timeout;
        // repoquery matches names and NEVRA forms, not plain provides; demand exactly NAME.
        let (st, lines) = run_streaming(
            &self.program,
            &["repoquery", "-q", "--qf", "%{name}", "--", package],
            deadline,
            &mut |_| {},
        )?;
        if !st.success() {
            return Err(InstallError::Update(format!(
                "dnf repoquery: {st}: {}",
                tail(&lines)
            )));
        }
        if !lines.iter().any(|l| l == package) {
            return Err(InstallError::NotFound(package.into()));
        }
        let rpm = self.sibling("rpm");
        let q = |deadline| {
            run_streaming(
                &rpm,
                &[
                    "-q",
                    "--qf",
                    "%{NAME} %{VERSION}-%{RELEASE}\\n",
                    "--",
                    package,
                ],
                deadline,
                &mut |_| {},
            )
        };
        let before = q(deadline)
            .ok()
            .filter(|(s, _)| s.success())
            .map(|(_, l)| l);
        // install-n: names only (no NEVRA, file or group forms); no --allowerasing, so a
        // transaction that would erase packages fails; exit_on_lock instead of waiting forever.
        let (st, lines) = run_streaming(
            &self.program,
            &[
                "install-n",
                "-y",
                "--setopt=install_weak_deps=False",
                "--setopt=exit_on_lock=True",
                "--",
                package,
            ],
            deadline,
            out,
        )?;
        if !st.success() {
            return Err(InstallError::Failed(format!(
                "dnf install-n: {st}: {}",
                tail(&lines)
            )));
        }
        let after = q(deadline)
            .ok()
            .filter(|(s, _)| s.success())
            .map(|(_, l)| l);
        let already = before.is_some() && before == after;
        Ok(InstallReport {
            already_installed: already,
            changes: if already {
                Vec::new()
            } else {
                after.unwrap_or_default()
            },
        })
    }
}

impl WindowInstaller for CommandPackageManager {
    fn name(&self) -> String {
        self.program.display().to_string()
    }

    fn install_one(
        &self,
        package: &str,
        limits: &InstallLimits,
        out: &mut dyn FnMut(&str),
    ) -> Result<InstallReport, InstallError> {
        match self.flavor {
            Flavor::Apt => self.apt_install(package, limits, out),
            Flavor::Dnf => self.dnf_install(package, limits, out),
            Flavor::Custom => {
                let deadline = Instant::now() + limits.timeout;
                let (st, lines) = run_streaming(
                    &self.program,
                    &["install", "-y", "--", package],
                    deadline,
                    out,
                )?;
                if !st.success() {
                    return Err(InstallError::Failed(format!(
                        "{} install: {st}: {}",
                        self.program.display(),
                        tail(&lines)
                    )));
                }
                Ok(InstallReport {
                    already_installed: false,
                    changes: vec![package.to_string()],
                })
            }
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn apt_plan_lines() {
        let lines: Vec<String> = [
            "Reading package lists...",
            "Inst hello (2.10-3 Debian:12.5/stable [amd64])",
            "Inst perl-base [5.36.0-7] (5.36.0-7+deb12u1 Debian:12.5/stable [amd64])",
            "Conf hello (2.10-3 Debian:12.5/stable [amd64])",
            "Remv bash [5.2.15-2+b2]",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (inst, remv) = parse_apt_plan(&lines);
        assert_eq!(
            inst,
            vec!["hello 2.10-3", "perl-base 5.36.0-7 -> 5.36.0-7+deb12u1"]
        );
        assert_eq!(remv, vec!["bash"]);
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("pm");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    #[test]
    fn custom_program_gets_exact_argv_clean_env_and_streams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("argv");
        let p = script(
            dir.path(),
            &format!(
                "printf '%s\\n' \"$@\" > {}; echo \"env:$(env | sort | tr '\\n' ' ')\"; echo done >&2",
                log.display()
            ),
        );
        std::env::set_var("APT_CONFIG", "/tmp/evil.conf");
        let mut seen = Vec::new();
        let r = custom(&p)
            .install_one("hello", &InstallLimits::default(), &mut |l| {
                seen.push(l.to_string())
            })
            .expect("install");
        assert_eq!(r.changes, vec!["hello"]);
        assert_eq!(
            std::fs::read_to_string(&log).expect("argv"),
            "install\n-y\n--\nhello\n"
        );
        let env = seen
            .iter()
            .find(|l| l.starts_with("env:"))
            .expect("env line");
        assert!(!env.contains("APT_CONFIG"), "{env}");
        assert!(
            env.contains("DEBIAN_FRONTEND=noninteractive") && env.contains("LC_ALL=C"),
            "{env}"
        );
        assert!(
            seen.iter().any(|l| l == "done"),
            "stderr is streamed too: {seen:?}"
        );
    }

    #[test]
    fn failures_and_timeouts_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = script(dir.path(), "echo 'E: broken'; exit 100");
        let e = custom(&p)
            .install_one("hello", &InstallLimits::default(), &mut |_| {})
            .expect_err("fails");
        assert!(
            matches!(&e, InstallError::Failed(m) if m.contains("E: broken")),
            "{e}"
        );
        // A child that forks a grandchild holding the pipe: the whole group is killed.
        let p = script(dir.path(), "sleep 30 & sleep 30");
        let t = Instant::now();
        let e = custom(&p)
            .install_one(
                "hello",
                &InstallLimits {
                    timeout: Duration::from_millis(500),
                    lock_timeout: Duration::from_secs(1),
                },
                &mut |_| {},
            )
            .expect_err("times out");
        assert!(matches!(e, InstallError::TimedOut(..)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    /// A fake apt-get/apt-cache pair in one directory that logs every argv to `log` and
    /// behaves per the files in its directory (`known`: pkgnames output; `plan`: -s output;
    /// `update-fails`).
    fn fake_apt(dir: &Path) -> CommandPackageManager {
        use std::os::unix::fs::PermissionsExt;
        let d = dir.display();
        let apt_get = format!(
            "#!/bin/sh\necho \"apt-get $*\" >> {d}/log\n\
             case \"$1\" in\n\
               update) [ -e {d}/update-fails ] && {{ echo 'E: Failed to fetch'; exit 100; }}; cp {d}/after-update {d}/known 2>/dev/null; exit 0;;\n\
             esac\n\
             for a in \"$@\"; do [ \"$a\" = -s ] && {{ cat {d}/plan; exit 0; }}; done\n\
             echo 'Setting up hello (2.10-3) ...'\n"
        );
        let apt_cache = format!(
            "#!/bin/sh\necho \"apt-cache $*\" >> {d}/log\ncat {d}/known 2>/dev/null\nexit 0\n"
        );
        for (n, t) in [("apt-get", apt_get), ("apt-cache", apt_cache)] {
            std::fs::write(dir.join(n), t).expect("write");
            std::fs::set_permissions(dir.join(n), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        CommandPackageManager {
            program: dir.join("apt-get"),
            flavor: Flavor::Apt,
        }
    }

    #[test]
    fn apt_checks_existence_updates_once_and_refuses_removals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let pm = fake_apt(d);
        let lim = InstallLimits::default();
        let log = || std::fs::read_to_string(d.join("log")).unwrap_or_default();

        // Unknown even after the update: not found, never installed. pkgnames output that only
        // starts with the name (hello-traditional) does not count.
        std::fs::write(d.join("after-update"), "hello-traditional\n").expect("w");
        let e = pm
            .install_one("hello", &lim, &mut |_| {})
            .expect_err("absent");
        assert_eq!(e, InstallError::NotFound("hello".into()));
        let l = log();
        assert!(l.contains("apt-cache pkgnames -- hello\n"), "{l}");
        assert!(
            l.contains("apt-get update -q -o APT::Update::Error-Mode=any\n"),
            "{l}"
        );
        assert!(!l.contains("install"), "{l}");

        // An unreachable repository fails the request.
        std::fs::remove_file(d.join("known")).expect("rm");
        std::fs::write(d.join("update-fails"), "").expect("w");
        let e = pm
            .install_one("hello", &lim, &mut |_| {})
            .expect_err("update");
        assert!(
            matches!(&e, InstallError::Update(m) if m.contains("Failed to fetch")),
            "{e}"
        );
        std::fs::remove_file(d.join("update-fails")).expect("rm");

        // Known; a plan that removes something is refused before the real install.
        std::fs::write(d.join("known"), "hello\nhello-traditional\n").expect("w");
        std::fs::write(d.join("log"), "").expect("w");
        std::fs::write(
            d.join("plan"),
            "Inst hello (2.10-3 x [amd64])\nRemv bash [5.2]\n",
        )
        .expect("w");
        let e = pm
            .install_one("hello", &lim, &mut |_| {})
            .expect_err("removal");
        assert!(
            matches!(&e, InstallError::WouldRemove { removals, .. } if removals == &["bash"]),
            "{e}"
        );
        let l = log();
        assert!(!l.contains("update"), "known names need no update: {l}");
        assert_eq!(
            l.lines().filter(|x| x.contains(" install ")).count(),
            1,
            "{l}"
        );

        // A clean plan: installed with the exact argv, changes recorded from the plan.
        std::fs::write(d.join("log"), "").expect("w");
        std::fs::write(
            d.join("plan"),
            "Inst hello (2.10-3 x [amd64])\nInst libc6 [2.36-9] (2.36-9+deb12u4 x [amd64])\n",
        )
        .expect("w");
        let mut out = Vec::new();
        let r = pm
            .install_one("hello", &lim, &mut |l| out.push(l.to_string()))
            .expect("install");
        assert_eq!(
            r.changes,
            vec!["hello 2.10-3", "libc6 2.36-9 -> 2.36-9+deb12u4"]
        );
        assert!(
            out.iter().any(|l| l == "Setting up hello (2.10-3) ..."),
            "{out:?}"
        );
        let real = log()
            .lines()
            .find(|l| l.starts_with("apt-get install") && !l.contains(" -s "))
            .expect("real install")
            .to_string();
        assert_eq!(
            real,
            "apt-get install -y -q --no-remove --no-install-recommends -o DPkg::Lock::Timeout=60 \
             -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -- hello"
        );

        // Nothing planned: already installed, no install run.
        std::fs::write(d.join("log"), "").expect("w");
        std::fs::write(d.join("plan"), "").expect("w");
        let r = pm.install_one("hello", &lim, &mut |_| {}).expect("noop");
        assert!(r.already_installed);
        assert_eq!(
            log()
                .lines()
                .filter(|l| l.starts_with("apt-get install"))
                .count(),
            1
        );
    }

    #[test]
    fn dnf_demands_an_exact_repoquery_name_and_uses_install_n() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let dnf = d.join("dnf");
        std::fs::write(
            &dnf,
            format!(
                "#!/bin/sh\necho \"dnf $*\" >> {0}/log\n[ \"$1\" = repoquery ] && {{ cat {0}/provides; exit 0; }}\nexit 0\n",
                d.display()
            ),
        )
        .expect("w");
        std::fs::set_permissions(&dnf, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let pm = CommandPackageManager {
            program: dnf,
            flavor: Flavor::Dnf,
        };
        // `webserver` resolves only through a Provides: repoquery names another package.
        std::fs::write(d.join("provides"), "httpd\n").expect("w");
        let e = pm
            .install_one("webserver", &InstallLimits::default(), &mut |_| {})
            .expect_err("provide");
        assert_eq!(e, InstallError::NotFound("webserver".into()));
        std::fs::write(d.join("provides"), "mod_ssl\n").expect("w");
        pm.install_one("mod_ssl", &InstallLimits::default(), &mut |_| {})
            .expect("install");
        let log = std::fs::read_to_string(d.join("log")).expect("log");
        assert!(
            log.contains("dnf repoquery -q --qf %{name} -- mod_ssl\n"),
            "{log}"
        );
        assert!(
            log.contains("dnf install-n -y --setopt=install_weak_deps=False --setopt=exit_on_lock=True -- mod_ssl\n"),
            "{log}"
        );
        assert!(!log.contains("allowerasing"), "{log}");
    }
}
