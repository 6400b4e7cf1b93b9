//! The command line of `clawster-agent`, in the library so that the release build generates the
//! man pages and shell completions from the same definition (packaging/docgen).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clawster_core::cli::LogArgs;

use crate::baseline::Profile;
use crate::bootstrap::Arch;
use crate::window;

/// The Clawster bot-host agent.
///
/// Runs on each host that runs an OpenClaw bot. It is downloaded by the launch template's
/// UserData (which checks its SHA256 first) and replaces the old shell UserData with native,
/// idempotent steps. Every step writes a structured record to the systemd journal
/// (`journalctl -t clawster-agent -o json`; fields CLAWSTER_CHECK and CLAWSTER_STATUS).
#[derive(Debug, Parser)]
#[command(name = "clawster-agent", version = clawster_core::VERSION, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install Sysbox natively, register it with Docker, write ecs.config (first boot).
    ///
    /// Gets the pinned Sysbox v0.6.7 package (cache, local file or download with bounded
    /// retries), verifies its SHA256 before reading a byte of it, and installs only the files it
    /// expects, each to an explicit destination, atomically (never unpacking onto /). Then: units
    /// in /etc/systemd/system plus a docker.service drop-in that pulls Sysbox in whenever Docker
    /// starts; the sysbox user; /var/lib/sysboxfs; sysctls (raise only, persisted); the
    /// sysbox-runc runtime in /etc/docker/daemon.json (never the default runtime; a running
    /// dockerd gets SIGHUP, never a restart); /etc/ecs/ecs.config; missing rsync, modprobe,
    /// iptables or fusermount installed with dnf or apt-get while the package downloads; systemd
    /// enable/reload/start over D-Bus without waiting. With --baseline ecs-host, also the host
    /// security baseline's ECS subset (SSM agent, SSH masked, firewall). A completion marker is
    /// written last. Re-running changes nothing; a killed run converges on the next one.
    ///
    /// Exit status: 0 done (a degraded step, e.g. a missing prerequisite or a sysctl the kernel
    /// refused, is reported in the journal and by `health`, not fatal), 1 failed.
    #[command(
        after_help = "Examples:\n  clawster-agent bootstrap --cluster clawster-my-bot                # what the UserData runs\n  clawster-agent bootstrap --root /mnt/image --sysbox-deb sysbox-ce_0.6.7.linux_amd64.deb --sysbox-sha256 HEX"
    )]
    Bootstrap(BootstrapArgs),

    /// Check everything bootstrap is responsible for.
    ///
    /// Exit status: 0 healthy, 1 degraded (a check does not hold), 2 could not check.
    #[command(
        after_help = "Examples:\n  clawster-agent health\n  clawster-agent health --json | jq '.checks[] | select(.status != \"ok\")'"
    )]
    Health(HealthArgs),

    /// The host security baseline (seed 000): apply it, audit it, prepare an image, enable the gateway.
    #[command(
        subcommand,
        after_help = "Examples:\n  clawster-agent baseline apply && clawster-agent baseline audit\n  clawster-agent baseline prepare-image --json"
    )]
    Baseline(BaselineCommand),
    /// The package maintenance window: time-limited, allowlisted installs for the bot.
    ///
    /// An operator (root, e.g. through SSM) opens a window for named packages and a time; while
    /// it is open the bot (a member of the client group) runs `window install PKG`, and the root
    /// service installs PKG if it is on the list. The window locks itself at its expiry (also
    /// across service restarts; never across a reboot) and can be closed at once. Every event is
    /// a journal record (CLAWSTER_CHECK=window.*).
    #[command(
        subcommand,
        after_help = "Examples:\n  clawster-agent window open --pkgs nginx --ttl 10m   # operator, as root\n  clawster-agent window install nginx                 # the bot"
    )]
    Window(WindowCommand),
    /// The bot's Docker socket: a filtering Docker Engine API proxy.
    ///
    /// The bot's task gets /run/clawster/docker.sock (socket unit clawster-docker-guard.socket,
    /// installed by bootstrap) instead of the host's Docker socket; see `docker-guard serve --help`
    /// for what passes.
    #[command(
        subcommand,
        after_help = "Example:\n  clawster-agent docker-guard serve --listen /tmp/guard.sock"
    )]
    DockerGuard(DockerGuardCommand),

    /// The bot's state replica: restore before the bot starts, replicate while it runs.
    ///
    /// The state directory (/var/lib/clawster/openclaw) is replicated to the region's shared
    /// bucket under state/<bot>/: SQLite databases through consistent snapshots (never a raw copy
    /// of a live WAL database), other files as they are, every --interval when they changed;
    /// tmp/, logs/, caches and -wal/-shm files never. One host writes at a time (a lease in the
    /// bucket). Settings come from /etc/clawster/state.json (written by bootstrap from
    /// --state-bucket and --bot) unless --bot and --bucket are given.
    #[command(
        subcommand,
        after_help = "Examples:\n  clawster-agent state status\n  clawster-agent state sync --json                       # a backup now\n  clawster-agent state restore --at 2026-12-07T12:00:00Z  # the bot's task stopped first"
    )]
    State(StateCommand),

    /// Write one test record to the journal and say where logging goes.
    ///
    /// Use it on a new host to check that health records reach the journal:
    /// `clawster-agent log-test && journalctl -t clawster-agent -o json -n 1`.
    #[command(
        after_help = "Example:\n  clawster-agent log-test && journalctl -t clawster-agent -o json -n 1"
    )]
    LogTest,
}

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    /// Work offline on the root filesystem at DIR (a test root or an image being baked), like
    /// `systemctl --root`: files only; never the running kernel, package manager, D-Bus or
    /// processes. Prints what it left for boot.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// ECS cluster name for /etc/ecs/ecs.config (without it ecs.config is left alone).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// Package architecture (default: this machine's).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,

    /// Use this local .deb instead of downloading (still verified against the SHA256).
    #[arg(long, value_name = "FILE", conflicts_with = "sysbox_url")]
    pub sysbox_deb: Option<PathBuf>,

    /// Download from this URL instead of the official release URL and its mirror.
    #[arg(long, value_name = "URL")]
    pub sysbox_url: Option<String>,

    /// Expected SHA256 of the package (default: the pinned v0.6.7 hash for --arch).
    #[arg(long, value_name = "HEX")]
    pub sysbox_sha256: Option<String>,

    /// On the live host, do not use D-Bus or signals: enable units as files, start nothing.
    #[arg(long)]
    pub no_start: bool,

    /// Overall download deadline in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub download_deadline: u64,

    /// Download attempts (rounds over the URLs).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub download_attempts: u32,

    /// Upper bound for the package manager, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub prereq_timeout: u64,

    /// Also apply the host security baseline with this profile (`ecs-host` on ECS bot hosts:
    /// SSM agent, SSH masked, firewall); see `clawster-agent baseline apply --help`.
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub baseline: Option<Profile>,

    /// Replicate the bot's state to this bucket (the region's shared bucket, under
    /// state/<bot>/); needs --bot. Installs clawster-state-restore.service (ecs.service waits
    /// for it) and clawster-state.service; see `clawster-agent state --help`.
    #[arg(long, value_name = "BUCKET", requires = "bot")]
    pub state_bucket: Option<String>,

    /// The bot this host runs (with --state-bucket).
    #[arg(long, value_name = "NAME", requires = "state_bucket")]
    pub bot: Option<String>,

    /// Package manager program called as `PROGRAM install -y -- PKGS` instead of dnf/apt-get
    /// (benchmarks and tests).
    #[arg(long, value_name = "PROGRAM", hide = true)]
    pub package_manager: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Converge the host to the security baseline, idempotently.
    ///
    /// openclaw-host (default, seed 000 in full): SSM agent enabled and running; SSH stopped,
    /// disabled and masked (socket activation and aliases too) over D-Bus; firewall (UFW's own
    /// files where UFW is installed, else the nf_tables table inet clawster_hostfw over netlink,
    /// reloaded at boot by clawster-firewall.service); users openclaw and linuxbrew; owner-only
    /// state, workspace and logs; the gateway config in /etc/openclaw/openclaw.json (loopback
    /// :18789, token from a 0600 file, mDNS, web terminal, update checks and catalog refresh off,
    /// read-only for the gateway); the /usr/local/bin/openclaw wrapper; the sandboxed
    /// openclaw-gateway.service, installed but disabled and stopped. ecs-host: SSM, SSH, firewall.
    ///
    /// A malformed existing config (OpenClaw's JSON, UFW's files) stops the run before anything
    /// is written, naming the file, which is left byte for byte.
    /// Exit status: 0 done, 1 some control failed (see the report).
    #[command(
        after_help = "Examples:\n  clawster-agent baseline apply\n  clawster-agent baseline apply --root /mnt/image --profile ecs-host"
    )]
    Apply(BaselineApplyArgs),

    /// Check every control: id, status (ok, failed, not-applicable, could-not-check), evidence, fix.
    ///
    /// The same checks go to the journal as health records (CLAWSTER_CHECK=baseline.<id>).
    /// Exit status: 0 all ok, 1 some failed, 2 could not check.
    #[command(
        after_help = "Examples:\n  clawster-agent baseline audit\n  clawster-agent baseline audit --json --root /mnt/image"
    )]
    Audit(BaselineAuditArgs),

    /// Clean the host for a shared image, scan it for secrets, re-check permissions, audit.
    ///
    /// Removes OpenClaw identity, device key and pairings (state/openclaw.sqlite), agents,
    /// transcripts, caches, token files and logs (keeping only the config and skills/), shell
    /// histories, ~/.aws, authorized_keys, SSH host keys, cloud-init instance state, SSM
    /// registration and ECS agent state, and the systemd journal (which holds the gateway's own
    /// output; on a running host journald rotates first and the archived files go); truncates
    /// machine-id; stops and disables the gateway.
    /// Then scans /etc /home /root /var /opt /srv /usr/local /tmp for Telegram bot tokens, AWS
    /// keys, LLM API keys and private keys, and fails naming file and line (value masked) for
    /// any left. Exit status: 0 ready to share, 1 not.
    #[command(
        after_help = "Examples:\n  clawster-agent baseline prepare-image\n  clawster-agent baseline prepare-image --root /mnt/image --remove /root/build-notes.txt"
    )]
    PrepareImage(BaselineImageArgs),

    /// Enable and start the gateway after a passing audit (the operator's explicit step).
    ///
    /// Creates the gateway token (/var/lib/openclaw/secrets/gateway-token, 0600 openclaw) if
    /// there is none. Refuses while any other control fails. Live host only.
    #[command(
        after_help = "Example:\n  clawster-agent baseline enable-gateway && curl -s http://127.0.0.1:18789/health"
    )]
    EnableGateway,

    /// Load the nf_tables table inet clawster_hostfw (what clawster-firewall.service runs at boot).
    #[command(hide = true)]
    Firewall(BaselineProfileArg),
}

#[derive(Debug, clap::Args)]
pub struct BaselineProfileArg {
    /// Which controls (default: the profile the last apply recorded, else openclaw-host).
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
}

#[derive(Debug, clap::Args)]
pub struct BaselineApplyArgs {
    /// Work offline on the root filesystem at DIR (an image being baked): files only; prints what
    /// it left for boot.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Which controls.
    #[arg(long, value_enum, default_value_t = Profile::OpenclawHost)]
    pub profile: Profile,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BaselineAuditArgs {
    /// Check the root filesystem at DIR instead of the live host (files only).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Which controls (default: the profile the last apply recorded, else openclaw-host).
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct BaselineImageArgs {
    /// Work on the root filesystem at DIR instead of the live host.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Which controls the final audit checks (default: the recorded profile, else openclaw-host).
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,

    /// Also remove this path (repeatable).
    #[arg(long, value_name = "PATH")]
    pub remove: Vec<String>,

    /// Do not scan this path (repeatable): material that is not a secret of this image.
    #[arg(long, value_name = "PATH")]
    pub allow: Vec<String>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunDirArg {
    /// Directory of the window's socket and state.
    #[arg(long, value_name = "DIR", default_value = window::state::DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum WindowCommand {
    /// Open (or replace) the window for these packages (root only).
    ///
    /// Every name must pass the package-name rule (letters, digits and . _ + -; no options,
    /// paths, patterns, versions or architectures) before anything is stored. Prints the window,
    /// its expiry (UTC and local) and the packages. Opening while a window is open replaces it.
    #[command(
        after_help = "Examples:\n  clawster-agent window open --pkgs nginx --ttl 10m\n  clawster-agent window open --pkgs nginx,curl --ttl 1h --reason \"ticket 42\""
    )]
    Open {
        #[command(flatten)]
        dir: RunDirArg,
        /// Packages the bot may install, separated by commas (at most 20).
        #[arg(long, value_name = "A,B")]
        pkgs: String,
        /// How long the window stays open: a whole number with s, m or h (5s up to --max-ttl).
        #[arg(long, value_name = "TTL")]
        ttl: String,
        /// Why (recorded in the audit record).
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        /// Longest TTL accepted (at most 24h).
        #[arg(long, value_name = "TTL", default_value = "4h")]
        max_ttl: String,
    },
    /// Lock the window at once (root only). Idempotent.
    #[command(after_help = "Example:\n  clawster-agent window close")]
    Close {
        #[command(flatten)]
        dir: RunDirArg,
    },
    /// Show whether the window is open, its packages, time left and what was installed in it.
    #[command(
        after_help = "Examples:\n  clawster-agent window status\n  clawster-agent window status --json"
    )]
    Status {
        #[command(flatten)]
        dir: RunDirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The root service (started by clawster-window.socket).
    ///
    /// Takes its listening socket from systemd (socket activation) or binds DIR/window.sock
    /// itself (0660, root and the client group). Checks every request's caller by its kernel
    /// credentials, the window and the allowlist; runs one install at a time with apt-get or dnf
    /// (an exact-name existence check first, removals refused); locks the window at its expiry.
    #[command(
        after_help = "Examples:\n  clawster-agent window serve\n  clawster-agent window serve --run-dir /tmp/w --package-manager /usr/local/bin/fake-pm"
    )]
    Serve {
        #[command(flatten)]
        dir: RunDirArg,
        /// The group whose members may ask for installs.
        #[arg(long, value_name = "NAME", default_value = window::units::CLIENT_GROUP)]
        client_group: String,
        /// Program called as `PROGRAM install -y -- NAME` instead of apt-get/dnf (tests,
        /// benchmarks); it replaces the existence check and the plan too.
        #[arg(long, value_name = "PROGRAM")]
        package_manager: Option<PathBuf>,
        /// Upper bound of one install, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        install_timeout: u64,
        /// How long apt waits for another apt/dpkg to release its lock, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        lock_timeout: u64,
        /// How long a request waits for another install to finish, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        queue_timeout: u64,
    },
    /// Ask the service to install PKG (the bot runs this) and stream the output.
    ///
    /// Exit status: 0 installed (or already installed), 3 refused (no window, expired, package
    /// not allowed, invalid name, caller not allowed), 1 the install itself failed.
    #[command(after_help = "Example:\n  clawster-agent window install nginx")]
    Install {
        #[command(flatten)]
        dir: RunDirArg,
        /// The package, exactly as the window lists it. (Anything else, even an option-like
        /// value, is sent as it is and refused by the service, with an audit record.)
        #[arg(allow_hyphen_values = true)]
        package: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DockerGuardCommand {
    /// Serve the filtered Docker API (normally started by clawster-docker-guard.socket).
    ///
    /// The bot's task gets this socket instead of the host's Docker socket. OpenClaw's sandbox
    /// calls pass: ping/version/info; inspect of the image allowlist and of containers the guard
    /// created (or the caller's own container); create under the `openclaw-sbx-` prefix with the
    /// `openclaw.sandbox=1` label, no privilege, capabilities, host namespaces, devices, ports,
    /// mounts or sysctls, binds only inside the bot's state directory (no symlinks), with the
    /// sysbox-runc runtime and memory/CPU/pids limits forced; start, pause, exec and forced
    /// delete of containers it created; exec follow-ups of execs it created; the gateway's exact
    /// self-probe exec. Everything else gets 403 (404 for lookups) with a JSON message naming
    /// the rule. Bodies are judged as dockerd reads them (duplicate keys and keys that differ
    /// only in case are refused) and forwarded exactly as judged. Every refusal and every
    /// container created is a journal record (CLAWSTER_CHECK=docker_guard.refused /
    /// docker_guard.created with METHOD, PATH, RULE, CALLER_PID).
    ///
    /// Socket-activated by systemd (the socket unit's ListenStream=); without activation it
    /// binds --listen itself.
    #[command(verbatim_doc_comment)]
    #[command(
        after_help = "Examples:\n  clawster-agent docker-guard serve\n  clawster-agent docker-guard serve --listen /tmp/guard.sock --policy /etc/clawster/docker-guard.json"
    )]
    Serve(GuardServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct GuardServeArgs {
    /// Socket to listen on when not socket-activated.
    #[arg(long, value_name = "PATH", env = "CLAWSTER_GUARD_LISTEN", default_value = crate::docker_guard::DEFAULT_LISTEN)]
    pub listen: PathBuf,

    /// dockerd's socket.
    #[arg(long, value_name = "PATH", env = "CLAWSTER_GUARD_UPSTREAM", default_value = crate::docker_guard::DEFAULT_UPSTREAM)]
    pub upstream: PathBuf,

    /// Policy file (JSON; keys: images, container_prefix, required_label, owner, bind_root,
    /// networks, runtime, memory_max, nano_cpus_max, pids_max, probe_node_paths, probe_sha256,
    /// max_body). Without it the built-in allowlist applies (bind_root /var/lib/clawster/openclaw).
    #[arg(long, value_name = "FILE", env = "CLAWSTER_GUARD_POLICY")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Check the root filesystem at DIR instead of the live host (files only).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// Settings file (bot, bucket, region, endpoint), written by bootstrap.
    #[arg(long, value_name = "FILE", default_value = crate::state::CONFIG_PATH)]
    pub config: PathBuf,
    /// The bot (with --bucket: no settings file needed).
    #[arg(long, value_name = "NAME", requires = "bucket")]
    pub bot: Option<String>,
    /// The shared bucket.
    #[arg(long, value_name = "BUCKET", requires = "bot")]
    pub bucket: Option<String>,
    /// The bucket's region (default: the settings', else this instance's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// An S3 endpoint other than AWS's, path-style (tests, emulators).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// This host's id in the lease (default: the EC2 instance id from IMDS).
    #[arg(long, value_name = "ID", env = "CLAWSTER_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// The instance metadata service (IMDSv2) as HOST:PORT; `off` (run only) never asks it,
    /// so nothing watches for the end of the host.
    #[arg(long, value_name = "HOST:PORT", env = "CLAWSTER_IMDS_ENDPOINT", default_value = clawster_core::imds::DEFAULT_ENDPOINT)]
    pub imds_endpoint: String,
    /// The state directory.
    #[arg(long, value_name = "DIR", default_value = crate::state::STATE_DIR)]
    pub dir: PathBuf,
    /// The agent's work directory (snapshots, status).
    #[arg(long, value_name = "DIR", default_value = crate::state::WORK_DIR)]
    pub work: PathBuf,
    /// Lease lifetime in seconds: a host that has not renewed for this long is taken over.
    #[arg(long, value_name = "SECS", env = "CLAWSTER_STATE_LEASE_TTL", default_value_t = 90, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_ttl: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// How `state run` handles the end of its host (defaults fit AWS; tests point them at
/// stand-ins).
#[derive(Debug, clap::Args)]
pub struct EndArgs {
    /// Seconds between two looks at IMDS for the end of the host.
    #[arg(long, value_name = "SECS", default_value_t = crate::state::lifecycle::POLL_SECONDS, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub lifecycle_poll: u64,
    /// The lifecycle hook's heartbeat timeout: completing the action is retried until then.
    #[arg(long, value_name = "SECS", default_value_t = crate::state::lifecycle::HEARTBEAT_SECONDS, value_parser = clap::value_parser!(u64).range(1..=7200))]
    pub lifecycle_heartbeat: u64,
    /// An Auto Scaling endpoint other than AWS's (http://HOST:PORT: tests).
    #[arg(long, value_name = "URL")]
    pub autoscaling_endpoint: Option<String>,
    /// dockerd's socket (the bot's container is stopped through it).
    #[arg(long, value_name = "PATH", default_value = crate::host::docker::DEFAULT_SOCKET)]
    pub docker_socket: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Take the lease and put the replica in place before the bot starts (unit
    /// clawster-state-restore.service, which ecs.service requires).
    ///
    /// A reboot keeps the local state; a new host restores the current generation; a new bot
    /// (init.json from `clawsterctl deploy`) starts empty. With --at, the generation current at
    /// that time replaces the local state (kept once as <dir>.before-restore); stop the bot's
    /// task first. Exit status: 0 done, 1 failed (a held lease, a missing or torn replica: the
    /// bot must not start).
    #[command(
        after_help = "Examples:\n  clawster-agent state restore                                # what clawster-state-restore.service runs\n  clawster-agent state restore --at 2026-12-07T12:00:00Z --json"
    )]
    Restore {
        #[command(flatten)]
        args: StateArgs,
        /// Restore the generation current at this UTC time (2026-12-07T12:00:00Z).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Replicate until stopped (unit clawster-state.service); on SIGTERM take a final pass and
    /// release the lease. SIGUSR1 asks for a pass now.
    ///
    /// It also watches IMDS every 5 s for the end of the host: an Auto Scaling termination
    /// (target-lifecycle-state Terminated, held by the group's clawster-final-sync lifecycle
    /// hook) or a spot interruption notice. Then it stops the bot's ECS container (label
    /// com.amazonaws.ecs.container-name=openclaw) with its stop timeout, takes the final pass,
    /// releases the lease, completes the lifecycle action (CONTINUE; not for spot), and idles
    /// without writing until stopped.
    #[command(
        after_help = "Example:\n  clawster-agent state run     # what clawster-state.service runs"
    )]
    Run {
        #[command(flatten)]
        args: StateArgs,
        /// Seconds between passes.
        #[arg(long, value_name = "SECS", env = "CLAWSTER_STATE_INTERVAL", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
        interval: u64,
        /// Seconds between database snapshots: a changed database waits at most this long
        /// (what a crash can lose), so an idle gateway's steady writes are uploaded once per
        /// round, not every pass.
        #[arg(long, value_name = "SECS", env = "CLAWSTER_STATE_DB_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
        db_interval: u64,
        #[command(flatten)]
        end: EndArgs,
    },
    /// Take a pass now (a backup): through the running service, or itself if none runs.
    #[command(after_help = "Example:\n  clawster-agent state sync --json")]
    Sync {
        #[command(flatten)]
        args: StateArgs,
        /// How long to wait for the service's pass, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 120)]
        wait: u64,
    },
    /// The last successful sync, its generation and the lag (local only, no S3 call).
    ///
    /// Exit status: 0 in sync (the last successful pass under 60 s ago, the last pass not
    /// failed), 1 lagging or failing, 2 never synced.
    #[command(after_help = "Example:\n  clawster-agent state status --json")]
    Status {
        #[command(flatten)]
        args: StateArgs,
    },
}
