//! The commands behind the CLI: each takes checked arguments and returns what to print.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clawster_core::fs::{write_atomic, Ownership};
use serde_json::Value;

use crate::bot::{self, BotOptions};
use crate::manifest::Release;
use crate::names::{GatewayPort, Region};
use crate::plan::{self, PlanInput, Prices};
use crate::{openclaw, shared};

/// Pretty JSON with a final newline: the form templates are written and compared in.
pub fn to_pretty(v: &Value) -> String {
    // Serialising a Value built from strings, numbers, arrays and maps cannot fail.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// `template shared`.
pub fn template_shared(region: &Region, artifacts: &Path) -> anyhow::Result<String> {
    let release = Release::load(artifacts)?;
    Ok(to_pretty(&shared::template(region, &release)))
}

/// `template bot`.
pub fn template_bot(options: &BotOptions, artifacts: &Path) -> anyhow::Result<String> {
    if let Some(cert) = &options.certificate {
        cert.check_region(&options.region)?;
    }
    let release = Release::load(artifacts)?;
    Ok(to_pretty(&bot::template(options, &release)))
}

/// `template openclaw-config`.
pub fn template_openclaw_config(port: GatewayPort) -> String {
    to_pretty(&openclaw::config(port, shared::VPC_CIDR))
}

/// `plan`.
pub fn plan(options: &BotOptions, bots_in_region: u32, artifacts: &Path) -> anyhow::Result<String> {
    if let Some(cert) = &options.certificate {
        cert.check_region(&options.region)?;
    }
    let release = Release::load(artifacts)?;
    let prices = Prices::builtin();
    plan::render(&PlanInput {
        bot: options,
        bots_in_region,
        release: &release,
        prices: &prices,
    })
    .map_err(anyhow::Error::msg)
}

/// Writes `text` to `out` (atomically, mode 0644, owned by the caller) or to stdout.
pub fn emit(text: &str, out: Option<&PathBuf>) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            let me =
                std::fs::metadata("/proc/self").context("cannot read own uid from /proc/self")?;
            let own = Ownership {
                mode: 0o644,
                uid: me.uid(),
                gid: me.gid(),
            };
            write_atomic(path, text.as_bytes(), own)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(())
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")
        }
    }
}
