//! `clawster-nat-agent`: keeps the NAT instance translating.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clawster_core::cli::finish;
use clawster_nat_agent::cli::{Cli, Command};
use clawster_nat_agent::{apply_once, remove, run, status, Report};

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(body(cli), 1)
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    println!("healthy:          {}", yn(report.healthy));
    println!("table:            ip {}", report.table);
    println!("ruleset verified: {}", yn(report.ruleset_verified));
    println!(
        "egress interface: {}",
        report.egress_interface.as_deref().unwrap_or("-")
    );
    println!("vpc cidrs:        {}", report.vpc_cidrs.join(", "));
    println!(
        "ip forwarding:    {}",
        report.ip_forward.map(yn).unwrap_or("unknown")
    );
    if report.fast_path {
        println!(
            "fast path:        on ({})",
            report.fast_path_devices.join(", ")
        );
    } else if let Some(why) = &report.fast_path_off {
        println!("fast path:        off: {why}");
    }
    if let Some((n, max)) = report.conntrack {
        println!("conntrack:        {n} / {max}");
    }
    for c in &report.foreign_drop_chains {
        println!(
            "foreign drop chain: {} {} {} (hook forward, priority {}, policy drop)",
            c.family, c.table, c.chain, c.priority
        );
    }
    for p in &report.problems {
        println!("problem:          {p}");
    }
    Ok(())
}

fn body(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.log.init("clawster-nat-agent")?;
    match cli.command {
        Command::Run { opts, interval } => {
            run(&opts, Duration::from_secs(interval.max(1)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            opts,
            once: _,
            json,
        } => {
            let report = apply_once(&opts)?;
            if json {
                print(&report, true)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { opts, json } => {
            let report = status(&opts)?;
            print(&report, json)?;
            Ok(if report.healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Remove { opts } => {
            remove(&opts)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
