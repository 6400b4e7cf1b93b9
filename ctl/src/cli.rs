//! The command line of `clawsterctl`, in the library so that the release build generates the man
//! pages and shell completions from the same definition (packaging/docgen).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clawster_core::cli::LogArgs;

use crate::bot::{BotOptions, DEFAULT_INSTANCE_TYPE};
use crate::names::{BotName, CertificateArn, Domain, GatewayPort, ImageRef, InstanceType, Region};

/// The Clawster operator client.
///
/// Runs on the operator's machine. It renders and deploys the shared (per-region) and per-bot
/// CloudFormation stacks that run OpenClaw bots on ECS, starts a bot only when its NAT route is
/// live, and opens or closes package maintenance windows on bot hosts through SSM.
#[derive(Debug, Parser)]
#[command(name = "clawsterctl", version = clawster_core::VERSION, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a CloudFormation template as JSON (to stdout, or to a file with -o).
    #[command(subcommand)]
    Template(TemplateCommand),

    /// Show what deploying a bot would create or reuse, its monthly cost and its timeline.
    ///
    /// Costs come from the dated price list compiled into clawsterctl (ctl/prices.json). The
    /// region table adds whole-dollar subtotals like the architecture's cost model and shows the
    /// exact amounts next to them. A second table prices both load-balancing layouts (each bot
    /// its own load balancer, or all on the region's shared one) on Graviton and x86 hosts at
    /// --bots N bots; from two bots on a one-line suggestion names the saving of the shared one.
    #[command(
        after_help = "Examples:\n  clawsterctl plan my-bot --region us-east-1\n  clawsterctl plan my-bot --region eu-west-1 --instance-type t3.medium --bots-in-region 3\n  clawsterctl plan my-bot --region us-east-1 --bots 10 --shared-lb"
    )]
    Plan {
        #[command(flatten)]
        bot: BotArgs,

        /// Bots in the region once this one is deployed, counting it (1 = the first bot, which
        /// also creates the shared stack): the costs, the layout table and the suggestion are
        /// priced at this count.
        #[arg(long, visible_alias = "bots", value_name = "N", default_value = "1", value_parser = crate::plan::parse_bots)]
        bots_in_region: u32,

        /// Price the bot on the region's shared load balancer (as `deploy --shared-lb` would
        /// place it) instead of on its own.
        #[arg(long)]
        shared_lb: bool,

        #[command(flatten)]
        artifacts: ArtifactsArg,
    },

    /// Deploy a bot to AWS: shared stack, uploads, config secret, bot stack, NAT check, start.
    ///
    /// Shows the plan's resources and monthly cost and asks before creating anything (--yes
    /// agrees). Then, in order: the region's shared stack clawster-shared-REGION is created (or
    /// reused; one in a failed state is deleted and made again only with consent); the release
    /// binaries of --artifacts are uploaded to its bucket as soon as the bucket exists; the
    /// OpenClaw configuration (your --openclaw-config file merged with the settings clawsterctl
    /// owns) is stored in the secret clawster/BOT/config; the bot stack clawster-bot-BOT is
    /// created, or updated through a change set (its changes are listed); once the NAT route is
    /// live the service is raised to one task and followed until the load balancer's target is
    /// healthy; the bot's URL is printed last. A bot deployed for the first time gets
    /// state/BOT/init.json in the bucket (starting on empty state is intended). When the host's
    /// launch template changed (agent release, AMI, instance type), the running host is replaced
    /// with the bot's state carried over: the old task stops, the old host takes a final state
    /// sync, a new host starts and restores it, the task starts there; the downtime is printed.
    ///
    /// Ctrl-C or a failure while a stack is being created deletes that stack again (unless
    /// --keep-on-failure); a second Ctrl-C exits at once. Credentials come from the standard AWS
    /// chain (environment, --profile/AWS_PROFILE, SSO, roles); AWS_ENDPOINT_URL is honoured.
    ///
    /// Exit codes: 0 deployed, 1 failed, 2 bad usage or input (nothing changed), 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl deploy my-bot --region us-east-1 --openclaw-config openclaw.json\n  clawsterctl deploy my-bot --region eu-west-1 --certificate-arn arn:aws:acm:eu-west-1:123456789012:certificate/ID --yes --json"
    )]
    Deploy(DeployArgs),

    /// Move every bot of a region onto the region's shared load balancer (one ALB instead of one
    /// per bot), or with --undo back onto its own; no bot's task is restarted.
    ///
    /// The shared load balancer is created in the shared stack when first needed. Without
    /// --domain each bot gets a listener port of its own on it (8001-8050, plain HTTP, kept
    /// while the bot is there); with --domain and --certificate-arn (a wildcard certificate for
    /// *.DOMAIN) each bot is reached as https://BOT.DOMAIN through a host-name rule (point
    /// *.DOMAIN at the load balancer's DNS name yourself).
    ///
    /// Per bot: its new entry is created first (answering 503), then its old load balancer lets
    /// go of its target group, then the stack switches the new one to forward and removes the old;
    /// the time it was unreachable (until its target is healthy behind the new one) is printed.
    /// After --undo, the shared load balancer's stack is deleted once no bot is left on it.
    /// Each step is recorded (SSM parameter /clawster/BOT/load-balancer-move): after Ctrl-C or a
    /// failure the next run finishes the move, and --undo reverts it. Running it again once done
    /// changes nothing.
    ///
    /// Exit codes: 0 done (or nothing to do), 1 failed, 2 bad usage, 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl consolidate --region us-east-1\n  clawsterctl consolidate --region us-east-1 --domain bots.example.com --certificate-arn arn:aws:acm:us-east-1:123456789012:certificate/ID\n  clawsterctl consolidate --undo --region us-east-1 --yes"
    )]
    Consolidate(ConsolidateArgs),

    /// Show every bot of a region (stack, tasks, target health, URL, last failure), or one bot
    /// in detail with its recent service events. Read-only.
    ///
    /// Exit codes: 0 every bot shown is healthy, 1 some are not (or there are none), 2 bad
    /// usage.
    #[command(
        after_help = "Examples:\n  clawsterctl status --region us-east-1\n  clawsterctl status my-bot --region us-east-1 --json | jq .bots[0].last_failure"
    )]
    Status(StatusArgs),

    /// Remove a bot (service to 0, its stack, its config secret), or with --shared the region's
    /// shared stack once no bot stack imports its exports (its bucket is emptied first).
    ///
    /// The bot's state replica (state/BOT/ in the region's artifacts bucket) is deleted too but
    /// stays restorable for 14 days, after which the bucket's lifecycle rule removes it; with
    /// --delete-state every version of it is deleted at once, after the stack is gone.
    ///
    /// Asks before deleting (--yes agrees). A stack stuck in DELETE_FAILED is deleted again with
    /// the stuck resources retained, and those are listed for deleting by hand. Running it again
    /// after it finished is harmless.
    ///
    /// Exit codes: 0 removed (or nothing was there), 1 failed, 2 bad usage, 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl destroy my-bot --region us-east-1\n  clawsterctl destroy my-bot --delete-state --yes\n  clawsterctl destroy --shared --region us-east-1 --yes"
    )]
    Destroy(DestroyArgs),

    /// Open, close or show the package maintenance window of a bot's host, through SSM.
    ///
    /// The bot cannot install OS packages unless an operator opens a time-limited window for
    /// named packages. These commands run the shared stack's window document (output
    /// WindowDocumentName) on the host with checked parameters; SSM Run Command is free.
    #[command(subcommand)]
    Window(WindowCommand),

    /// Check a bot's host (`clawster-agent health`) or, with --nat, the region's NAT instance
    /// (`clawster-nat-agent status`), through SSM.
    ///
    /// Runs the shared stack's operations document (output OpsDocumentName) and shows each check
    /// with its status and message, or the host's JSON with --json. Read-only; free.
    ///
    /// Exit codes: 0 healthy, 1 degraded, 2 could not check (bad usage, the host cannot be
    /// reached through SSM, no answer within --timeout), 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl health my-bot --region us-east-1\n  clawsterctl health --nat --region us-east-1 --json"
    )]
    Health(HealthArgs),

    /// Show the agent's journal records of a bot's host (or only the maintenance window's audit
    /// records, with --window), oldest first, through SSM.
    ///
    /// Runs the shared stack's operations document (output OpsDocumentName): at most the 30
    /// newest records since --since ago. Read-only; free.
    ///
    /// Exit codes: 0 shown, 1 journalctl failed on the host, 2 bad usage or the host could not
    /// be reached (or gave no answer within --timeout), 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl logs my-bot --region us-east-1\n  clawsterctl logs my-bot --window --since 2d"
    )]
    Logs(LogsArgs),

    /// Take a sync of a bot's state now: `clawster-agent state sync` on its host, through SSM.
    ///
    /// The agent replicates the bot's state (device identity, pairings, sessions, credentials,
    /// workspace) to the region's artifacts bucket under state/BOT/ continuously; this takes one
    /// consistent generation at once and prints its number and time. Free (SSM Run Command).
    ///
    /// Exit codes: 0 done, 1 failed on the host, 2 bad usage or the host could not be reached
    /// through SSM (or gave no answer within --timeout), 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl backup my-bot --region us-east-1\n  clawsterctl backup my-bot --json"
    )]
    Backup(BackupArgs),

    /// Restore a bot's state as of a time: stop its task, restore the state on its host, start it.
    ///
    /// --at is an RFC3339 time (2026-12-07T09:30:00Z, or with an offset) or how long ago (90s,
    /// 30m, 2h, 3d), at most the retention (14 days: the bucket keeps replaced state that long).
    /// The newest generation taken at or before it is restored. Refused while the bot is healthy
    /// unless --yes. The service goes to 0, and once its task has stopped the host runs
    /// `clawster-agent state restore` through SSM; then the service goes back to 1 and is
    /// followed until healthy, and the downtime is printed. If the restore fails the bot stays
    /// stopped and the next steps are printed.
    ///
    /// Exit codes: 0 restored and healthy, 1 failed, 2 bad usage (a refused --at, a healthy bot
    /// without --yes; nothing changed) or the host could not be reached, 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl restore my-bot --at 2h --yes\n  clawsterctl restore my-bot --at 2026-12-07T09:30:00Z --region us-east-1"
    )]
    Restore(RestoreArgs),
}

/// `clawsterctl backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The bot whose state is synced.
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: BotName,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// The agent's JSON answer (generation, taken_at, bytes) instead of the sentence.
    #[arg(long)]
    pub json: bool,

    /// Bound of the whole run, e.g. 5m or 90s.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,
}

/// `clawsterctl restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The bot whose state is restored.
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: BotName,

    /// The time to go back to: RFC3339 (e.g. 2026-12-07T09:30:00Z) or how long ago (e.g. 2h).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: String,

    /// Restore even though the bot is healthy (it stops while its state is restored).
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// Bound of the whole run, e.g. 30m.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,

    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WindowCommand {
    /// Open (or replace) the window for the named packages, for a time.
    ///
    /// Every value is checked here with the agent's own rules before anything is sent: package
    /// names (letters, digits and . _ + -, starting with a letter or digit; at most 20,
    /// separated by commas or spaces), a TTL from 5s to 4h, a reason of at most 200 printable
    /// characters. The agent prints the window's id, expiry and packages.
    ///
    /// Exit codes: 0 done, 1 failed on the host, 2 bad usage (a refused value: nothing was sent)
    /// or the host could not be reached through SSM (or gave no answer within --timeout), 3 the
    /// agent on the host refused the request, 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl window open my-bot --pkgs nginx --ttl 10m\n  clawsterctl window open --instance-id i-0123456789abcdef0 --pkgs nginx,htop --ttl 1h --reason \"ticket 42\""
    )]
    Open(WindowOpenArgs),

    /// Lock the window at once. Harmless when it is already locked.
    ///
    /// Exit codes: 0 done, 1 failed on the host, 2 bad usage (a refused value: nothing was sent)
    /// or the host could not be reached through SSM (or gave no answer within --timeout), 3 the
    /// agent on the host refused the request, 130 interrupted.
    #[command(after_help = "Example:\n  clawsterctl window close my-bot --region us-east-1")]
    Close(WindowCloseArgs),

    /// Show whether the window is open, its packages, time left and what was installed in it.
    ///
    /// Exit codes: 0 done, 1 failed on the host, 2 bad usage (a refused value: nothing was sent)
    /// or the host could not be reached through SSM (or gave no answer within --timeout), 3 the
    /// agent on the host refused the request, 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl window status my-bot\n  clawsterctl window status --instance-id i-0123456789abcdef0 --json"
    )]
    Status(WindowStatusArgs),
}

/// Which host a command runs on, where, and for how long at most.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("host").required(true).args(["name", "instance_id"])))]
pub struct HostArgs {
    /// The bot whose host runs the command (its one running instance).
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: Option<BotName>,

    /// Run on this SSM-managed instance instead of a bot's host (e.g. i-0123456789abcdef0).
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<crate::ssm::InstanceId>,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// Bound of the whole run, e.g. 2m or 90s.
    #[arg(long, value_name = "DURATION", default_value = crate::ssm::DEFAULT_TIMEOUT, value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,
}

impl HostArgs {
    /// The host named.
    pub fn host(&self) -> crate::ssm::Host {
        match (&self.instance_id, &self.name) {
            (Some(i), _) => crate::ssm::Host::Instance(i.clone()),
            (None, Some(b)) => crate::ssm::Host::Bot(b.clone()),
            // clap requires one of them.
            (None, None) => crate::ssm::Host::Nat,
        }
    }
}

/// `clawsterctl window open`.
#[derive(Debug, Args)]
pub struct WindowOpenArgs {
    #[command(flatten)]
    pub host: HostArgs,

    /// Packages the window allows, separated by commas (e.g. nginx,htop): at most 20.
    #[arg(long, value_name = "PKGS", allow_hyphen_values = true)]
    pub pkgs: String,

    /// How long the window stays open: 5s to 4h, a number with unit s, m or h (e.g. 10m).
    #[arg(long, value_name = "TTL", allow_hyphen_values = true)]
    pub ttl: String,

    /// Why, recorded in the window's audit record (at most 200 printable characters).
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub reason: Option<String>,
}

/// `clawsterctl window close`.
#[derive(Debug, Args)]
pub struct WindowCloseArgs {
    #[command(flatten)]
    pub host: HostArgs,
}

/// `clawsterctl window status`.
#[derive(Debug, Args)]
pub struct WindowStatusArgs {
    #[command(flatten)]
    pub host: HostArgs,

    /// The agent's JSON instead of its text.
    #[arg(long)]
    pub json: bool,
}

/// `clawsterctl health`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("host").required(true).args(["name", "instance_id", "nat"])))]
pub struct HealthArgs {
    /// The bot whose host is checked.
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: Option<BotName>,

    /// Check this SSM-managed instance instead of a bot's host.
    #[arg(long, value_name = "ID", conflicts_with = "name")]
    pub instance_id: Option<crate::ssm::InstanceId>,

    /// Check the region's NAT instance (shared stack output NatInstanceId) instead.
    #[arg(long, conflicts_with = "instance_id")]
    pub nat: bool,

    /// The host's JSON report instead of the table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// Bound of the whole run, e.g. 2m or 90s.
    #[arg(long, value_name = "DURATION", default_value = crate::ssm::DEFAULT_TIMEOUT, value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,
}

/// `clawsterctl logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub host: HostArgs,

    /// How far back: 1 to 9999 with unit s, m, h or d (e.g. 30m, 2d).
    #[arg(long, value_name = "DUR", default_value = crate::ops::reads::DEFAULT_SINCE, allow_hyphen_values = true)]
    pub since: String,

    /// Only the maintenance window's audit records (opens, closes, requests, installs).
    #[arg(long)]
    pub window: bool,
}

/// Where the AWS calls go.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS region (else AWS_REGION, AWS_DEFAULT_REGION, or the profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<Region>,

    /// Named profile of ~/.aws/config and ~/.aws/credentials (else AWS_PROFILE, else default).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl AwsArgs {
    /// As the AWS layer takes them.
    pub fn options(&self) -> crate::aws::AwsOptions {
        crate::aws::AwsOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
        }
    }
}

/// `clawsterctl deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Bot name: at most 20 characters, lowercase letters, digits and hyphens, no hyphen at
    /// either end.
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: BotName,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(flatten)]
    pub artifacts: ArtifactsArg,

    /// Your OpenClaw configuration (a JSON object: model provider, keys, channels). It is merged
    /// with the settings clawsterctl owns; a value contradicting one of them is refused.
    #[arg(long, value_name = "FILE")]
    pub openclaw_config: Option<PathBuf>,

    /// The bot image's OCI layout, as `packaging/build-image` writes it (default
    /// ARTIFACTS/image/<arch>/ for the host type's architecture). Deploy creates the region's ECR
    /// repository clawster-openclaw once (immutable tags, scan on push) and pushes the image
    /// unless its digest is already there; the task names it by digest.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub image_layout: Option<PathBuf>,

    /// Instead of pushing: an image you pushed yourself, by digest,
    /// REGISTRY/REPOSITORY@sha256:<64 hex>, in a registry the host can pull from. The task runs
    /// exactly these bytes; a tag is refused.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<ImageRef>,

    /// Test and expert knob: send the image push to this registry URL (e.g. a local registry,
    /// http://127.0.0.1:5000) instead of the endpoint ECR names; the credentials are still ECR's
    /// token, and the task still names the ECR repository.
    #[arg(
        long,
        value_name = "URL",
        env = "CLAWSTER_REGISTRY_URL",
        hide_env_values = true,
        value_parser = registry_url
    )]
    pub registry_url: Option<String>,

    /// ACM certificate ARN (same region) for HTTPS on 443. Without it the load balancer serves
    /// plain HTTP and the gateway token travels unencrypted.
    #[arg(long, value_name = "ARN")]
    pub certificate_arn: Option<CertificateArn>,

    /// EC2 instance type of the bot host: Graviton (arm64, e.g. t4g.small, the default) or x86_64
    /// (e.g. t3.small); the AMI and the agent follow its architecture. At least 2 GiB: nano and
    /// micro sizes are refused (an idle gateway uses about 0.94 GiB).
    #[arg(long, value_name = "TYPE", default_value = DEFAULT_INSTANCE_TYPE)]
    pub instance_type: InstanceType,

    /// TCP port of the OpenClaw gateway inside the task (1024-65535).
    #[arg(long, value_name = "PORT", default_value = "18789")]
    pub gateway_port: GatewayPort,

    /// Agree to the plan (and to recreating a failed shared stack) without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Return right after asking ECS for the bot's task (`status` follows it later).
    #[arg(long)]
    pub detach: bool,

    /// Bound of the whole run, e.g. 30m or 1h.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,

    /// Leave a stack whose creation failed in place for inspection instead of deleting it.
    #[arg(long)]
    pub keep_on_failure: bool,

    /// Replace the bot's running host even when its launch template did not change (e.g. to
    /// retry a replacement that stopped): old task stopped, final state sync, new host.
    #[arg(long)]
    pub replace_host: bool,

    /// When the old host cannot take its final state sync (unreachable, or an agent from before
    /// state replication), replace it anyway: the new host restores the newest replica in the
    /// bucket, or starts empty when there is none. Writes made since that replica are lost.
    #[arg(long)]
    pub without_final_sync: bool,
    /// Place a new bot on the region's shared load balancer (created on first use as the stack
    /// clawster-shared-lb-REGION) instead of giving it its own: a listener port of its own
    /// (8001-8050, HTTP), or with --domain https://BOT.DOMAIN. An existing bot keeps where it
    /// is; `clawsterctl consolidate` moves bots.
    #[arg(long)]
    pub shared_lb: bool,

    /// With --shared-lb: reach the bot as https://BOT.DOMAIN; --certificate-arn is then the
    /// wildcard certificate for *.DOMAIN of the shared HTTPS listener.
    #[arg(long, value_name = "DOMAIN", requires_all = ["shared_lb", "certificate_arn"])]
    pub domain: Option<Domain>,

    /// One JSON object per line (progress events and the result) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `clawsterctl consolidate`.
#[derive(Debug, Args)]
pub struct ConsolidateArgs {
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Move every bot back onto its own load balancer instead.
    #[arg(long, conflicts_with_all = ["domain", "certificate_arn"])]
    pub undo: bool,

    /// Reach bots as https://BOT.DOMAIN (needs --certificate-arn for *.DOMAIN).
    #[arg(long, value_name = "DOMAIN", requires = "certificate_arn")]
    pub domain: Option<Domain>,

    /// Wildcard ACM certificate (same region) for *.DOMAIN on the shared HTTPS listener.
    #[arg(long, value_name = "ARN", requires = "domain")]
    pub certificate_arn: Option<CertificateArn>,

    /// Agree without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Bound of the whole run, e.g. 30m.
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,

    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `clawsterctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One bot in detail (default: every bot of the region).
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: Option<BotName>,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// One JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `clawsterctl destroy`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "shared"])))]
pub struct DestroyArgs {
    /// The bot to remove.
    #[arg(value_name = "BOT", allow_hyphen_values = true)]
    pub name: Option<BotName>,

    /// Remove the region's shared stack instead (only when no bot uses it).
    #[arg(long)]
    pub shared: bool,

    /// Also delete every version of the bot's state replica (state/BOT/ in the artifacts bucket)
    /// at once, after its stack is gone. Without it the state is deleted but stays restorable
    /// for 14 days.
    #[arg(long, conflicts_with = "shared")]
    pub delete_state: bool,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// Agree without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Bound of the whole run, e.g. 30m.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::pace::parse_timeout)]
    pub timeout: std::time::Duration,

    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// The shared stack of a region (VPC, NAT instance, IAM roles, flow logs, artifacts bucket,
    /// the SSM documents for maintenance windows and for health and logs), deployed once per
    /// region as clawster-shared-<REGION>.
    #[command(
        after_help = "Examples:\n  clawsterctl template shared --region us-east-1 -o shared.json\n  clawsterctl template shared --region us-east-1 --artifacts dist | jq .Outputs"
    )]
    Shared {
        /// AWS region the stack is for, e.g. us-east-1 (the template refuses other regions).
        #[arg(long, value_name = "REGION")]
        region: Region,

        #[command(flatten)]
        artifacts: ArtifactsArg,

        #[command(flatten)]
        output: OutputArg,
    },
    /// The stack of one bot (load balancer, ECS cluster, host, task, service), deployed as
    /// clawster-bot-<NAME>.
    #[command(
        after_help = "Examples:\n  clawsterctl template bot my-bot --region us-east-1 -o bot.json\n  clawsterctl template bot my-bot --region us-east-1 --certificate-arn arn:aws:acm:us-east-1:123456789012:certificate/ID"
    )]
    Bot {
        #[command(flatten)]
        bot: BotArgs,

        #[command(flatten)]
        artifacts: ArtifactsArg,

        #[command(flatten)]
        output: OutputArg,
    },
    /// The OpenClaw configuration a bot runs with (stored in its secret clawster/<NAME>/config
    /// by deploy): gateway mode local, bound to the LAN, trusting only the VPC as proxy.
    #[command(
        after_help = "Example:\n  clawsterctl template openclaw-config --gateway-port 18789 | jq .gateway"
    )]
    OpenclawConfig {
        /// TCP port of the OpenClaw gateway.
        #[arg(long, value_name = "PORT", default_value = "18789")]
        gateway_port: GatewayPort,

        #[command(flatten)]
        output: OutputArg,
    },
}

#[derive(Debug, Args)]
pub struct BotArgs {
    /// Bot name: at most 20 characters, lowercase letters, digits and hyphens, no hyphen at
    /// either end (it names the load balancer, cluster, secrets and log group).
    #[arg(value_name = "NAME", allow_hyphen_values = true)]
    pub name: BotName,

    /// AWS region of the bot, e.g. us-east-1.
    #[arg(long, value_name = "REGION")]
    pub region: Region,

    /// EC2 instance type of the bot host: Graviton (arm64, e.g. t4g.small, the default) or x86_64
    /// (e.g. t3.small); the AMI and the agent follow its architecture. At least 2 GiB: nano and
    /// micro sizes are refused (an idle gateway uses about 0.94 GiB).
    #[arg(long, value_name = "TYPE", default_value = DEFAULT_INSTANCE_TYPE)]
    pub instance_type: InstanceType,

    /// ACM certificate ARN (same region) for HTTPS on 443 with an HTTP-to-HTTPS redirect on 80.
    /// Without it the load balancer serves plain HTTP and the gateway token travels unencrypted.
    #[arg(long, value_name = "ARN")]
    pub certificate_arn: Option<CertificateArn>,

    /// TCP port of the OpenClaw gateway inside the task (1024-65535).
    #[arg(long, value_name = "PORT", default_value = "18789")]
    pub gateway_port: GatewayPort,
}

impl BotArgs {
    /// The options the templates take.
    pub fn options(self) -> BotOptions {
        BotOptions {
            name: self.name,
            region: self.region,
            instance_type: self.instance_type,
            certificate: self.certificate_arn,
            gateway_port: self.gateway_port,
            layout: crate::bot::Layout::Dedicated,
        }
    }
}

#[derive(Debug, Args)]
pub struct ArtifactsArg {
    /// Directory with the release manifest (manifest.json) written by packaging/build-release;
    /// the templates pin the SHA256 of the agents listed there.
    #[arg(long, value_name = "DIR", default_value = "dist")]
    pub artifacts: PathBuf,
}

#[derive(Debug, Args)]
pub struct OutputArg {
    /// Write to this file (replaced atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `--registry-url`: an http:// or https:// URL.
fn registry_url(s: &str) -> Result<String, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an http:// or https:// URL"))
    }
}
