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
