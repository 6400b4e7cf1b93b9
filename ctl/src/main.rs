//! `clawsterctl`: the operator's client.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use clawster_core::cli::{finish, LogArgs};
use clawsterctl::bot::{BotOptions, DEFAULT_INSTANCE_TYPE};
use clawsterctl::commands;
use clawsterctl::names::{BotName, CertificateArn, GatewayPort, InstanceType, Region};

/// The Clawster operator client.
///
/// Runs on the operator's machine. It renders and deploys the shared (per-region) and per-bot
/// CloudFormation stacks that run OpenClaw bots on ECS, starts a bot only when its NAT route is
/// live, and opens or closes package maintenance windows on bot hosts through SSM.
#[derive(Debug, Parser)]
#[command(name = "clawsterctl", version = clawster_core::VERSION, arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render a CloudFormation template as JSON (to stdout, or to a file with -o).
    #[command(subcommand)]
    Template(TemplateCommand),

    /// Show what deploying a bot would create or reuse, its monthly cost and its timeline.
    ///
    /// Costs come from the dated price list compiled into clawsterctl (ctl/prices.json). The
    /// region table adds whole-dollar subtotals like the architecture's cost model and shows the
    /// exact amounts next to them.
    Plan {
        #[command(flatten)]
        bot: BotArgs,

        /// Bots in the region once this one is deployed, counting it (1 = the first bot, which
        /// also creates the shared stack).
        #[arg(long, value_name = "N", default_value = "1", value_parser = clawsterctl::plan::parse_bots)]
        bots_in_region: u32,

        #[command(flatten)]
        artifacts: ArtifactsArg,
    },
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// The shared stack of a region (VPC, NAT instance, IAM roles, flow logs, artifacts bucket,
    /// maintenance-window SSM document), deployed once per region as clawster-shared-<REGION>.
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
    OpenclawConfig {
        /// TCP port of the OpenClaw gateway.
        #[arg(long, value_name = "PORT", default_value = "18789")]
        gateway_port: GatewayPort,

        #[command(flatten)]
        output: OutputArg,
    },
}

#[derive(Debug, Args)]
struct BotArgs {
    /// Bot name: at most 20 characters, lowercase letters, digits and hyphens, no hyphen at
    /// either end (it names the load balancer, cluster, secrets and log group).
    #[arg(value_name = "NAME", allow_hyphen_values = true)]
    name: BotName,

    /// AWS region of the bot, e.g. us-east-1.
    #[arg(long, value_name = "REGION")]
    region: Region,

    /// EC2 instance type of the bot host (x86_64 only).
    #[arg(long, value_name = "TYPE", default_value = DEFAULT_INSTANCE_TYPE)]
    instance_type: InstanceType,

    /// ACM certificate ARN (same region) for HTTPS on 443 with an HTTP-to-HTTPS redirect on 80.
    /// Without it the load balancer serves plain HTTP and the gateway token travels unencrypted.
    #[arg(long, value_name = "ARN")]
    certificate_arn: Option<CertificateArn>,

    /// TCP port of the OpenClaw gateway inside the task (1024-65535).
    #[arg(long, value_name = "PORT", default_value = "18789")]
    gateway_port: GatewayPort,
}

impl BotArgs {
    fn options(self) -> BotOptions {
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
struct ArtifactsArg {
    /// Directory with the release manifest (manifest.json) written by packaging/build-release;
    /// the templates pin the SHA256 of the agents listed there.
    #[arg(long, value_name = "DIR", default_value = "dist")]
    artifacts: PathBuf,
}

#[derive(Debug, Args)]
struct OutputArg {
    /// Write to this file (replaced atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli), 1)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.log.init("clawsterctl")?;
    match cli.command {
        Command::Template(TemplateCommand::Shared {
            region,
            artifacts,
            output,
        }) => {
            let text = commands::template_shared(&region, &artifacts.artifacts)?;
            commands::emit(&text, output.output.as_ref())?;
        }
        Command::Template(TemplateCommand::Bot {
            bot,
            artifacts,
            output,
        }) => {
            let options = bot.options();
            if options.certificate.is_none() {
                tracing::warn!(
                    "no --certificate-arn: the load balancer serves HTTP only and the gateway token travels in plaintext"
                );
            }
            let text = commands::template_bot(&options, &artifacts.artifacts)?;
            commands::emit(&text, output.output.as_ref())?;
        }
        Command::Template(TemplateCommand::OpenclawConfig {
            gateway_port,
            output,
        }) => {
            commands::emit(
                &commands::template_openclaw_config(gateway_port),
                output.output.as_ref(),
            )?;
        }
        Command::Plan {
            bot,
            bots_in_region,
            artifacts,
        } => {
            let text = commands::plan(&bot.options(), bots_in_region, &artifacts.artifacts)?;
            commands::emit(&text, None)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
