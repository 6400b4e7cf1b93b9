//! The command line of `clawsterctl`, in the library so that the release build generates the man
//! pages and shell completions from the same definition (packaging/docgen).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clawster_core::cli::LogArgs;

use crate::bot::{BotOptions, DEFAULT_INSTANCE_TYPE};
use crate::names::{BotName, CertificateArn, GatewayPort, InstanceType, Region};

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
    /// exact amounts next to them.
    #[command(
        after_help = "Examples:\n  clawsterctl plan my-bot --region us-east-1\n  clawsterctl plan my-bot --region eu-west-1 --instance-type t3.medium --bots-in-region 3"
    )]
    Plan {
        #[command(flatten)]
        bot: BotArgs,

        /// Bots in the region once this one is deployed, counting it (1 = the first bot, which
        /// also creates the shared stack).
        #[arg(long, value_name = "N", default_value = "1", value_parser = crate::plan::parse_bots)]
        bots_in_region: u32,

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
    /// healthy; the bot's URL is printed last.
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
    /// Asks before deleting (--yes agrees). A stack stuck in DELETE_FAILED is deleted again with
    /// the stuck resources retained, and those are listed for deleting by hand. Running it again
    /// after it finished is harmless.
    ///
    /// Exit codes: 0 removed (or nothing was there), 1 failed, 2 bad usage, 130 interrupted.
    #[command(
        after_help = "Examples:\n  clawsterctl destroy my-bot --region us-east-1\n  clawsterctl destroy --shared --region us-east-1 --yes"
    )]
    Destroy(DestroyArgs),
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

    /// ACM certificate ARN (same region) for HTTPS on 443. Without it the load balancer serves
    /// plain HTTP and the gateway token travels unencrypted.
    #[arg(long, value_name = "ARN")]
    pub certificate_arn: Option<CertificateArn>,

    /// EC2 instance type of the bot host (x86_64 only).
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

    /// One JSON object per line (progress events and the result) instead of text.
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

    /// EC2 instance type of the bot host (x86_64 only).
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
