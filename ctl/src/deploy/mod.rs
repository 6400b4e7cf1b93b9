//! `clawsterctl deploy`: from nothing to a running bot, in the order of seed 002 §2.
//!
//! Order of work, and the failure policy of each step:
//! 1. **Local checks** (no AWS call): the release manifest and the binaries it lists (size and
//!    SHA256), the operator's OpenClaw file merged with the owned settings, the templates, the
//!    bot image's OCI layout for the host's architecture (every blob's size and SHA256; [`image`]).
//!    Failure: exit 2, nothing touched.
//! 2. **Read** the shared stack, the bot stack and the region's other bots, the stored
//!    configuration, whether ECR has the bot image, and the bot stack's template, to decide what
//!    changes ([`changes`]: the configuration, the task definition, the host, or nothing).
//!    Read-only.
//!    Failure: exit 1, nothing touched.
//! 3. **Confirm**: the plan's resources and monthly cost, what changes for the running bot, and
//!    any recovery this run would do (a shared stack in a failed state is deleted and made again
//!    only with consent). Without a terminal and without `--yes` the run stops here (exit 2).
//!    Nothing is created before this.
//!
//!    Then the **bot image** (unless `--image` names one by digest): the region's ECR repository
//!    is created when absent, the image pushed unless its digest is already there ([`image`]).
//!    Failure: exit 1; no stack was touched, and none ever names a digest the registry lacks.
//! 4. **Shared stack** `clawster-shared-<region>`: created when absent (the artifacts bucket is
//!    watched for and the uploads start as soon as it exists: the NAT instance is already polling
//!    for its agent), reused when complete with its exports, updated through a change set (after
//!    consent, which names the NAT restart a new NAT agent causes) when its template differs from
//!    this release's, recreated after consent when failed.
//!    Failure or Ctrl-C during its creation: it is deleted (unless `--keep-on-failure`).
//! 5. **Uploads** of the host binaries not already in the bucket with the same SHA256.
//!    For a bot without a stack (a first deploy), `state/<bot>/init.json` is written unless it or
//!    a manifest is there ([`crate::state`]): it tells the agent that starting this bot on empty
//!    state is intended. Never on a redeploy, never over an existing one. Failure: exit 1; the
//!    bot stack is not created (its host would refuse to start the bot without it).
//! 6. **Secret** `clawster/<bot>/config`: created, or given a new version when its value
//!    changed; its full ARN goes to the bot stack. Its value never appears anywhere else.
//! 7. **Bot stack** `clawster-bot-<bot>`: created, or updated through a change set whose changes
//!    are listed ("no changes" is not an error); a stack left failed by an earlier run is
//!    recovered first (seed 002 §5: deleted and made again after a failed create, the rollback
//!    continued past stuck resources after `UPDATE_ROLLBACK_FAILED`, deleted with its stuck
//!    resources retained after `DELETE_FAILED`). Failure or Ctrl-C during its creation: it is
//!    deleted (unless `--keep-on-failure`); during an update: the update is cancelled and rolls
//!    back.
//! 8. **NAT route**: the private default route is active through the running NAT instance,
//!    polled with bounded backoff (at most 5 minutes).
//! 9. **Host** (when the launch template changed, or `--replace-host`): the running host is
//!    replaced, its state carried over ([`host`]: old task draining, final state sync, old host
//!    terminated, new host in service); a failed final sync leaves the old host (exit 1).
//!    **Start**: `UpdateService(desiredCount=1)`, or, for a running bot whose configuration alone
//!    changed, one forced new deployment (the time until the new task is healthy is printed: the
//!    most the bot was unreachable); with `--detach` the run ends here; otherwise it
//!    follows the rollout (service events and stopped tasks' reasons inline) until the target is
//!    healthy, and prints the URL. The stacks are complete by then, so a failure here leaves
//!    them and says how to look (`status`) or take them away (`destroy`).
//!
//! `--timeout` bounds the whole run; reaching it is a failure (exit 1) handled like one.

pub mod changes;
pub mod config;
pub mod host;
pub mod image;
pub mod nat;
pub mod secret;
pub mod service;
pub mod upload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::aws::{Aws, AwsError, ErrorKind};
use crate::bot::layout::SHARED_PORTS;
use crate::bot::{self, BotOptions, Entry, Layout};
use crate::consolidate;
use crate::manifest::Release;
use crate::names::BotName;
use crate::pace::human;
use crate::plan::{self, PlanInput, Prices};
use crate::progress::{Event, Mark, Ui};
use crate::shared;
use crate::stack::{self, Health, Op, StackError, StackInfo, Watch};

/// Exit codes of deploy, status and destroy (documented in `--help`).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// Failed (AWS said no, a stack failed, the timeout passed).
    pub const FAILED: u8 = 1;
    /// Bad usage or input; nothing was changed.
    pub const USAGE: u8 = 2;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
}

/// The longest the NAT route may take once the shared stack is complete.
const NAT_LIMIT: Duration = Duration::from_secs(300);
/// The output naming the gateway-token secret of bot stacks made before the token moved into
/// the configuration secret: its value is taken over so the bot's clients keep working.
const FORMER_TOKEN_OUTPUT: &str = "GatewayTokenSecretArn";

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// The bot and its template options.
    pub bot: BotOptions,
    /// Directory with manifest.json and the binaries.
    pub artifacts: PathBuf,
    /// The operator's OpenClaw configuration file.
    pub openclaw_config: Option<PathBuf>,
    /// The bot image: a layout to push to the region's ECR repository, or a reference by digest.
    pub image: image::ImageSource,
    /// Push to this registry URL instead of the endpoint ECR names (tests, proxies).
    pub registry_url: Option<String>,
    /// Agree to the plan (and to recreating a failed shared stack) without asking.
    pub yes: bool,
    /// Return right after asking ECS for the task.
    pub detach: bool,
    /// Bound of the whole run.
    pub timeout: Duration,
    /// Leave failed stacks in place for inspection.
    pub keep_on_failure: bool,
    /// Replace the running host even when its launch template did not change.
    pub replace_host: bool,
    /// Replace the host even when its final state sync fails.
    pub without_final_sync: bool,
    /// Place a new bot on the region's shared load balancer.
    pub shared_lb: bool,
    /// With `shared_lb`: bots by host name under this domain (wildcard certificate).
    pub https: Option<consolidate::Https>,
}

/// A run that did not end well: the exit code, the sentence, the next steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Exit code ([`exit`]).
    pub code: u8,
    /// What went wrong, one sentence (or a few).
    pub message: String,
    /// What to do next.
    pub next: Vec<String>,
}

impl Fail {
    /// A failure with exit code `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            next: Vec::new(),
        }
    }

    /// Adds a next step.
    pub fn next(mut self, step: impl Into<String>) -> Self {
        self.next.push(step.into());
        self
    }
}

impl From<AwsError> for Fail {
    fn from(e: AwsError) -> Self {
        let code = if e.kind == ErrorKind::Usage {
            exit::USAGE
        } else {
            exit::FAILED
        };
        Fail::new(code, e.message)
    }
}

impl From<StackError> for Fail {
    fn from(e: StackError) -> Self {
        match e {
            StackError::Aws(a) => a.into(),
            StackError::Interrupted(_) => Fail::new(exit::INTERRUPTED, e.to_string()),
            other => Fail::new(exit::FAILED, other.to_string()),
        }
    }
}

/// Asks the operator a yes/no question: `Some(answer)`, or `None` when there is no terminal.
pub type Confirm<'a> = &'a (dyn Fn(&str) -> Option<bool> + Sync);

/// Asks for consent unless `yes`: refused is exit 1, no terminal to ask on is exit 2; either way
/// nothing was changed (`verb` names the command in the message).
pub fn consent(confirm: Confirm<'_>, yes: bool, question: &str, verb: &str) -> Result<(), Fail> {
    if yes {
        return Ok(());
    }
    match confirm(question) {
        Some(true) => Ok(()),
        Some(false) => Err(Fail::new(
            exit::FAILED,
            format!("not done: the operator declined, nothing was changed ({verb})"),
        )),
        None => Err(Fail::new(
            exit::USAGE,
            format!("{verb} needs the operator's consent and there is no terminal to ask on: nothing was changed"),
        )
        .next(format!("read what {verb} will do, then run it again with --yes"))),
    }
}

/// What the run found before changing anything.
#[derive(Debug, Clone)]
struct Found {
    shared: Option<StackInfo>,
    bot: Option<StackInfo>,
    other_bots: usize,
}

/// A finished deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// Where the bot answers.
    pub url: String,
    /// True when the run returned after asking for the task (`--detach`).
    pub detached: bool,
}

/// Runs a deploy (see the module documentation for the order and the failure policy).
pub async fn run(
    aws: &Aws,
    ui: &Ui,
    opts: &DeployOptions,
    confirm: Confirm<'_>,
) -> Result<Deployed, Fail> {
    let pace = ui.pace().clone();
    let o = &opts.bot;
    let deadline = opts.timeout;

    // 1. Local checks.
    if let Some(cert) = &o.certificate {
        cert.check_region(&o.region)
            .map_err(|e| Fail::new(exit::USAGE, e.to_string()))?;
    }
    let release =
        Release::load(&opts.artifacts).map_err(|e| Fail::new(exit::USAGE, e.to_string()))?;
    let files =
        upload::prepare(&opts.artifacts, &release).map_err(|e| Fail::new(exit::USAGE, e))?;
    let merged = config::load(
        opts.openclaw_config.as_deref(),
        o.gateway_port,
        shared::VPC_CIDR,
    )
    .map_err(|e| Fail::new(exit::USAGE, e.to_string()))?;
    let local_image = match &opts.image {
        image::ImageSource::Layout(dir) => Some(image::open(dir, o.instance_type.arch())?),
        image::ImageSource::Given(_) => None,
    };
    let shared_template = shared::template(&o.region, &release);
    let shared_name = shared::stack_name(&o.region);
    let bot_name = bot::stack_name(&o.name);

    // 2. Read.
    let found = Found {
        shared: stack::describe(aws, &shared_name).await?,
        bot: stack::describe(aws, &bot_name).await?,
        other_bots: stack::list(aws, "clawster-bot-")
            .await?
            .iter()
            .filter(|s| s.name != bot_name)
            .count(),
    };
    // The layout a bot keeps: an existing stack's (a deploy never moves a bot, consolidate
    // does), else its own load balancer or, with --shared-lb, an entry on the shared one
    // (allocated once the shared stack is there; the first port stands in until then).
    let mut bot_opts = opts.bot.clone();
    bot_opts.layout = match &found.bot {
        Some(b) => {
            let l = Layout::from_parameters(&b.parameters)
                .map_err(|e| Fail::new(exit::FAILED, format!("{bot_name}: {e}")))?;
            if opts.shared_lb && l == Layout::Dedicated {
                return Err(Fail::new(
                    exit::USAGE,
                    format!("bot {} already has its own load balancer: --shared-lb only places new bots", o.name),
                )
                .next(format!("`clawsterctl consolidate --region {}` moves the region's bots onto the shared one", o.region)));
            }
            l
        }
        None if opts.shared_lb => Layout::Shared(Entry::Port(*SHARED_PORTS.start())),
        None => Layout::Dedicated,
    };
    let new_on_shared = found.bot.is_none() && opts.shared_lb;
    let o = &bot_opts;
    let bot_template = bot::template(o, &release);
    // The stored configuration: its gateway token is kept (a deploy that cannot read it stops
    // rather than hand the bot's clients a new token), and it is compared with the new one.
    let stored = secret::current(aws, &o.name).await?;
    let (token, token_source) = secret::gateway_token(
        aws,
        stored.as_deref(),
        found
            .bot
            .as_ref()
            .and_then(|b| b.outputs.get(FORMER_TOKEN_OUTPUT))
            .map(String::as_str),
    )
    .await?;
    let value = serde_json::to_string(&secret::with_token(merged, &token)).unwrap_or_default();
    let config_change = changes::compare_config(stored.as_deref(), &value);
    // What changes for a bot whose stack is complete (a busy or failed one is recovered first).
    let mut bot_changes = match &found.bot {
        Some(b) if stack::health(&b.status) == Health::Ready => Some(changes::Changes {
            config: config_change.clone(),
            stack: changes::diff(stack::template_of(aws, b).await?.as_ref(), &bot_template),
        }),
        _ => None,
    };
    let shared_health = found.shared.as_ref().map(|s| stack::health(&s.status));
    // A complete shared stack made by another release is updated (its lifecycle rules, SSM
    // documents, roles, the NAT agent): the bots' state replication needs this release's.
    let shared_stale = match &found.shared {
        Some(s) if shared_health == Some(Health::Ready) => {
            !stack::unchanged(aws, s, &shared_template, &BTreeMap::new()).await?
        }
        _ => false,
    };
    let recreate_shared = matches!(
        shared_health,
        Some(
            Health::FailedCreate
                | Health::RollbackFailed
                | Health::UpdateFailed
                | Health::DeleteFailed
                | Health::Other
        )
    );
    if recreate_shared && found.other_bots > 0 {
        let s = found
            .shared
            .as_ref()
            .map(|s| s.status.clone())
            .unwrap_or_default();
        return Err(Fail::new(
            exit::FAILED,
            format!(
                "the shared stack {shared_name} is in {s} and {} other bot stack(s) import its exports, so it cannot be recreated",
                found.other_bots
            ),
        )
        .next(format!(
            "look at it in the CloudFormation console; `clawsterctl destroy BOT --region {}` for each bot, then deploy again",
            o.region
        )));
    }

    let remote_image = match &local_image {
        Some(l) => Some(image::survey(aws, l, opts.registry_url.as_deref()).await?),
        None => None,
    };
    // A new image changes the task definition through its parameter, not the template.
    if let (Some(c), Some(b)) = (bot_changes.as_mut(), &found.bot) {
        let planned =
            image::planned_reference(&opts.image, local_image.as_ref(), remote_image.as_ref());
        if b.parameters
            .get(crate::bot::IMAGE_PARAMETER)
            .map(String::as_str)
            != planned.as_deref()
        {
            c.stack.task = true;
        }
    }

    // 3. Confirm.
    let first_in_region = found.shared.is_none() || recreate_shared;
    let plan_text = plan::render(&PlanInput {
        bot: o,
        bots_in_region: u32::try_from(found.other_bots + 1).unwrap_or(u32::MAX),
        release: &release,
        prices: &Prices::builtin(),
        shared_lb: o.layout.shared().is_some(),
    })
    .map_err(|e| Fail::new(exit::USAGE, e))?;
    let image_line = match (&local_image, &remote_image, &opts.image) {
        (Some(l), Some(r), _) => image::plan_line(l, r),
        (_, _, image::ImageSource::Given(i)) => {
            format!("The bot image is {i} (--image: not pushed by this deploy).")
        }
        _ => String::new(),
    };
    let mut question = String::new();
    if let (true, Some(s)) = (recreate_shared, &found.shared) {
        question.push_str(&format!(
            "The shared stack {shared_name} is in {}{}: this deploy deletes it and creates it again.\n",
            s.status,
            s.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    if shared_stale {
        question.push_str(&format!(
            "The shared stack {shared_name} differs from this release's: this deploy updates it through a change set (listed as it runs). \
             If the NAT agent's release changed, the NAT instance restarts, which interrupts every bot's outbound traffic for a minute or two.\n"
        ));
    }
    match found.bot.as_ref().map(|b| (stack::health(&b.status), b)) {
        Some((Health::Ready, b)) => question.push_str(&format!(
            "The bot stack {bot_name} exists ({}): this deploy updates it if anything changed.\n",
            b.status
        )),
        Some((h, b)) if h != Health::Busy => question.push_str(&format!(
            "The bot stack {bot_name} is in {}: this deploy recovers it first.\n",
            b.status
        )),
        _ => {}
    }
    if let Some(c) = &bot_changes {
        question.push_str("What changes for the running bot:\n");
        for l in c.lines() {
            question.push_str(&format!("  - {l}\n"));
        }
    }
    question.push_str(&format!(
        "Deploy bot {} to {}? AWS bills the resources above from now on.",
        o.name, o.region
    ));
    if !opts.yes {
        // The plan and the question go to stderr: stdout stays the progress stream (or JSON).
        ui.suspend(|| eprintln!("{plan_text}\n{image_line}\n"));
    }
    consent(confirm, opts.yes, &question, "deploy")?;

    let (lo, hi) = plan::timeline_total(&plan::timeline(first_in_region));
    ui.emit(Event::Begin {
        title: format!("Deploying bot {} to {}", o.name, o.region),
        eta: Some((lo, hi)),
    });
    // From the second bot of a region on: what one shared load balancer would save (a note,
    // never a question; nothing moves unless the operator runs consolidate).
    if let Some(line) = plan::layouts::suggestion(
        &Prices::builtin(),
        &o.instance_type,
        u32::try_from(found.other_bots + 1).unwrap_or(u32::MAX),
        &o.region,
        o.layout.shared().is_some(),
    ) {
        ui.note(line);
    }
    // Also with --yes, where the plan above was not shown.
    ui.note(image_line);
    for l in bot_changes.iter().flat_map(changes::Changes::lines) {
        if !(opts.replace_host && l.starts_with("nothing changed")) {
            ui.note(format!("change: {l}"));
        }
    }
    if opts.replace_host && found.bot.is_some() {
        ui.note("change: host: replaced on request (--replace-host)");
    }

    // 3b. The bot image, complete in the registry before any stack names it.
    let bot_image = match (&opts.image, &local_image) {
        (image::ImageSource::Given(i), _) => i.clone(),
        (_, Some(l)) => {
            image::push(aws, ui, l, opts.registry_url.as_deref())
                .await?
                .0
        }
        (image::ImageSource::Layout(_), None) => {
            return Err(Fail::new(exit::FAILED, "the bot image layout was not read"))
        }
    };

    // 4. Shared stack (and 5. uploads as soon as the bucket exists).
    let mut uploaded = None;
    let shared_info = match (&found.shared, recreate_shared) {
        (Some(s), true) => {
            ui.step(
                "shared",
                &format!("shared stack {shared_name}"),
                Mark::Running,
                Some(format!("deleting it ({})", s.status)),
            );
            delete_stack(aws, ui, s, deadline).await.map_err(|e| {
                Fail::from(e).next(format!(
                    "see the CloudFormation console for {shared_name}; `clawsterctl destroy --shared --region {}` retries the delete",
                    o.region
                ))
            })?;
            None
        }
        (None, _) => None,
        (Some(s), false) => Some({
            let s = if stack::health(&s.status) == Health::Busy {
                ui.step(
                    "shared",
                    &format!("shared stack {shared_name}"),
                    Mark::Running,
                    Some(format!("waiting for {}", s.status)),
                );
                settle(aws, ui, s, deadline).await?
            } else {
                s.clone()
            };
            let s = if shared_stale {
                update_shared(aws, ui, &s, &shared_template, deadline).await?
            } else {
                s
            };
            check_exports(aws, &s).await?;
            ui.step(
                "shared",
                "network ready (shared)",
                Mark::Skipped,
                Some(format!("{shared_name} {}", s.status)),
            );
            s
        }),
    };
    let shared_info = match shared_info {
        Some(s) => s,
        None => {
            create_shared(
                aws,
                ui,
                opts,
                &shared_name,
                &shared_template,
                &files,
                &mut uploaded,
            )
            .await?
        }
    };
    let bucket = shared_info.output("ArtifactsBucketName")?.to_string();
    let up = match uploaded {
        Some(u) => u,
        None => {
            ui.step(
                "upload",
                "release binaries",
                Mark::Running,
                Some(format!("s3://{bucket}")),
            );
            upload::upload_all(aws, &bucket, &files).await?
        }
    };
    ui.step(
        "upload",
        "release binaries",
        Mark::Done,
        Some(format!(
            "{} uploaded, {} already there (s3://{bucket}/{}/{}/)",
            up.sent,
            up.skipped,
            crate::manifest::ARTIFACTS_PREFIX,
            release.version
        )),
    );

    // 5b. State: a bot deployed for the first time starts on empty state on purpose.
    if found.bot.is_none() {
        first_state(aws, ui, &bucket, &o.name).await?;
    }

    // 6. Secret.
    let secret_name = secret::name(&o.name);
    ui.step(
        "secret",
        &format!("configuration secret {secret_name}"),
        Mark::Running,
        None,
    );
    let unchanged = config_change == changes::ConfigChange::Unchanged;
    let stored = secret::put(aws, &o.name, &value, unchanged).await?;
    ui.step(
        "secret",
        &format!("configuration secret {secret_name}"),
        Mark::Done,
        Some(format!(
            "{}{}",
            match (stored.created, stored.restored, stored.unchanged) {
                (true, _, _) => "created",
                (false, true, _) => "restored from scheduled deletion and updated",
                (false, false, true) => "unchanged (no new version)",
                (false, false, false) => "new version stored",
            },
            match token_source {
                secret::TokenSource::Kept => "",
                secret::TokenSource::Migrated =>
                    "; gateway token taken over from the former token secret",
                secret::TokenSource::Generated => "; new gateway token generated",
            }
        )),
    );

    // 7. Bot stack (a new bot on the shared load balancer gets its entry first).
    let (layout, bot_template) = if new_on_shared {
        let lb = consolidate::shared_lb::ensure(aws, ui, &o.region, opts.https.as_ref(), deadline)
            .await?;
        let bots = stack::list(aws, "clawster-bot-").await?;
        let entry = consolidate::shared_lb::allocate(aws, &lb, &o.name, &bots, &[]).await?;
        ui.note(format!("its entry on the shared load balancer: {entry}"));
        let mut placed = o.clone();
        placed.layout = Layout::Shared(entry);
        let t = bot::template(&placed, &release);
        (placed.layout, t)
    } else {
        (o.layout.clone(), bot_template)
    };
    let mut params = BTreeMap::from([
        (
            crate::bot::IMAGE_PARAMETER.to_string(),
            bot_image.to_string(),
        ),
        ("OpenClawConfigSecretArn".to_string(), stored.arn.clone()),
        ("SharedStackName".to_string(), shared_name.clone()),
    ]);
    params.extend(layout.parameters());
    let bot_info = bot_stack(aws, ui, opts, &found, &bot_name, &bot_template, &params).await?;

    // 8. NAT route.
    let route_table = shared_info.output("PrivateRouteTableId")?.to_string();
    let nat_instance = shared_info.output("NatInstanceId")?.to_string();
    ui.step(
        "nat",
        "NAT route",
        Mark::Running,
        Some(format!("{route_table} via {nat_instance}")),
    );
    let nat = nat::wait_ready(aws, &pace, &route_table, &nat_instance, NAT_LIMIT, deadline)
        .await
        .map_err(|e| {
            ui.step("nat", "NAT route", Mark::Failed, None);
            Fail::from(e).next(format!(
                "the stacks are in place; run `clawsterctl deploy {} --region {}` again once the NAT instance is up",
                o.name, o.region
            ))
        })?;
    ui.step("nat", "NAT route", Mark::Done, Some(nat.seen));

    // 9. Start.
    let url = bot_info.output("Url")?.to_string();
    let svc = service::ServiceRef {
        cluster: bot_info.output("ClusterName")?.to_string(),
        service: bot_info.output("ServiceName")?.to_string(),
        target_group: bot_info.outputs.get("TargetGroupArn").cloned(),
    };
    let mut rollout = service::Rollout::default();
    let before = rollout.baseline(aws, &svc).await?;
    // 9a. A changed launch template reaches the running bot through a new host.
    let host_changed = bot_changes.as_ref().is_some_and(|c| c.stack.host);
    let replaced = if found.bot.is_some() && (host_changed || opts.replace_host) {
        host::replace(
            aws,
            ui,
            &host::Replace {
                bot: &o.name,
                service: &svc,
                group: bot_info.output("AutoScalingGroupName")?,
                bucket: &bucket,
                without_final_sync: opts.without_final_sync,
                deadline,
            },
        )
        .await?
    } else {
        None
    };
    let restart = before.desired >= 1
        && replaced.is_none()
        && bot_changes
            .as_ref()
            .is_some_and(|c| c.force_new_deployment());
    if restart {
        ui.step(
            "start",
            "bot service",
            Mark::Running,
            Some(format!(
                "{}: new deployment for the new configuration (the old task stops first)",
                svc.service
            )),
        );
        service::force_new_deployment(aws, &svc).await?;
    } else {
        ui.step(
            "start",
            "bot service",
            Mark::Running,
            Some(format!("{} desired 1", svc.service)),
        );
        service::set_desired(aws, &svc, 1).await?;
    }
    let started = pace.elapsed();
    if opts.detach {
        ui.step(
            "start",
            "bot service",
            Mark::Done,
            Some("task requested (--detach)".into()),
        );
        return Ok(Deployed {
            url,
            detached: true,
        });
    }
    let next_on_failure = |f: Fail| {
        f.next(format!(
            "`clawsterctl status {} --region {}` shows the service, its events and stopped tasks",
            o.name, o.region
        ))
        .next(format!(
            "`clawsterctl destroy {} --region {}` removes the bot (the stacks are complete and stay until then)",
            o.name, o.region
        ))
    };
    match service::wait_healthy(aws, ui, &pace, &svc, &mut rollout, deadline).await {
        Ok(state) => {
            let mut detail = state.summary();
            if restart {
                detail.push_str(&format!(
                    "; restarted with the new configuration in {} (the most the bot was unreachable)",
                    human(pace.elapsed().saturating_sub(started))
                ));
            }
            if let Some(r) = &replaced {
                detail.push_str(&format!(
                    "; on its new host {} in {} from the old task's stop (the most the bot was unreachable)",
                    r.new,
                    human(pace.elapsed().saturating_sub(r.stopped_at))
                ));
            }
            ui.step("start", "bot service", Mark::Done, Some(detail));
            Ok(Deployed {
                url,
                detached: false,
            })
        }
        Err(e) => {
            ui.step("start", "bot service", Mark::Failed, None);
            Err(next_on_failure(e.into()))
        }
    }
}

/// Step 4 for a shared stack made by another release: a change set, listed, executed and
/// followed. "No changes" is not an error; a failed update rolls back by itself and the bots keep
/// the shared stack as it was.
async fn update_shared(
    aws: &Aws,
    ui: &Ui,
    current: &StackInfo,
    template: &serde_json::Value,
    deadline: Duration,
) -> Result<StackInfo, Fail> {
    let pace = ui.pace().clone();
    let label = format!("shared stack {}", current.name);
    let none = BTreeMap::new();
    ui.step(
        "shared",
        &label,
        Mark::Running,
        Some("update to this release: preparing a change set".into()),
    );
    let Some(set) = stack::change_set(aws, &pace, current, template, &none, deadline).await? else {
        ui.step("shared", &label, Mark::Skipped, Some("no changes".into()));
        return Ok(current.clone());
    };
    for c in &set.changes {
        ui.note(c.clone());
    }
    let stop = stack::newest_event(aws, &current.id).await?;
    stack::execute(aws, current, &set).await?;
    ui.step(
        "shared",
        &label,
        Mark::Running,
        Some(format!("update ({} changes)", set.changes.len())),
    );
    let mut w = Watch::new(&current.name, &current.id, Op::Update, stop);
    match w.wait(aws, ui, &pace, deadline).await {
        Ok(info) => {
            ui.step("shared", &label, Mark::Done, Some("updated".into()));
            Ok(info)
        }
        Err(e) => {
            ui.step("shared", &label, Mark::Failed, None);
            Err(Fail::from(e).next(
                "CloudFormation rolls a failed update back: the bots keep the shared stack as it was; fix the cause and deploy again",
            ))
        }
    }
}

/// Step 5b: `state/<bot>/init.json` for a bot deployed for the first time.
async fn first_state(aws: &Aws, ui: &Ui, bucket: &str, bot: &BotName) -> Result<(), Fail> {
    use crate::state::bucket::{ensure_init, Init};
    let created_at = clawster_core::timefmt::fmt_utc(crate::state::time::now());
    let label = "bot state";
    let key = crate::state::init_key(bot);
    let detail = match ensure_init(aws, bucket, bot, &created_at).await {
        Ok(Init::Written) => format!("new bot, starts empty (s3://{bucket}/{key} written)"),
        Ok(Init::AlreadyThere) => format!("s3://{bucket}/{key} was there already: kept"),
        Ok(Init::ManifestFound) => format!(
            "a replica of an earlier bot {bot} is in s3://{bucket}/{}: its host restores it",
            crate::state::prefix(bot)
        ),
        Err(e) => {
            ui.step("state", label, Mark::Failed, None);
            return Err(Fail::from(e).next(format!(
                "nothing of the bot was created yet; run `clawsterctl deploy {bot}` again once s3://{bucket} is writable"
            )));
        }
    };
    ui.step("state", label, Mark::Done, Some(detail));
    Ok(())
}

/// Waits until the operation a stack is busy with settles (from its newest event on).
async fn settle(
    aws: &Aws,
    ui: &Ui,
    s: &StackInfo,
    deadline: Duration,
) -> Result<StackInfo, StackError> {
    let stop = stack::newest_event(aws, &s.id).await?;
    Watch::new(&s.name, &s.id, busy_op(&s.status), stop)
        .wait(aws, ui, ui.pace(), deadline)
        .await
}

/// Waits for a rollback started after the event `stop` to end in `UPDATE_ROLLBACK_COMPLETE`
/// (which a watch of an update reports as a failure) and reads the stack again.
async fn rolled_back(
    aws: &Aws,
    ui: &Ui,
    s: &StackInfo,
    stop: Option<String>,
    deadline: Duration,
) -> Result<Option<StackInfo>, Fail> {
    let mut w = Watch::new(&s.name, &s.id, Op::Update, stop);
    match w.wait(aws, ui, ui.pace(), deadline).await {
        Ok(_) => {}
        Err(StackError::Failed(f)) if f.status == "UPDATE_ROLLBACK_COMPLETE" => {}
        Err(e) => return Err(e.into()),
    }
    Ok(stack::describe(aws, &s.id).await?)
}

/// The kind of operation a busy status belongs to.
fn busy_op(status: &str) -> Op {
    if status.starts_with("DELETE") {
        Op::Delete
    } else if status.starts_with("CREATE") || status.starts_with("ROLLBACK") {
        Op::Create
    } else {
        Op::Update
    }
}

/// The shared stack's exports exist (a stack made by another version may lack some).
async fn check_exports(aws: &Aws, s: &StackInfo) -> Result<(), Fail> {
    let mut names = std::collections::HashSet::new();
    let mut token = None;
    loop {
        let out = aws
            .cfn
            .list_exports()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListExports", e))?;
        names.extend(
            out.exports()
                .iter()
                .filter_map(|e| e.name())
                .map(str::to_string),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let missing: Vec<String> = shared::EXPORTS
        .iter()
        .map(|e| format!("{}-{e}", s.name))
        .filter(|n| !names.contains(n))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Fail::new(
            exit::FAILED,
            format!(
                "the shared stack {} lacks the exports {}: it was made by another version of clawsterctl",
                s.name,
                missing.join(", ")
            ),
        )
        .next("destroy its bots and the shared stack (`clawsterctl destroy --shared`), then deploy again"))
    }
}

/// Deletes a stack and waits; a delete that fails is retried once with the stuck resources
/// retained, and those are listed.
pub async fn delete_stack(
    aws: &Aws,
    ui: &Ui,
    s: &StackInfo,
    deadline: Duration,
) -> Result<Vec<(String, String, String)>, StackError> {
    let pace = ui.pace().clone();
    let mut retained = Vec::new();
    if s.status == "DELETE_FAILED" {
        retained = stack::resources_in(aws, &s.id, "DELETE_FAILED").await?;
    }
    for attempt in 0..2 {
        let stop = stack::newest_event(aws, &s.id).await?;
        let ids: Vec<String> = retained.iter().map(|r| r.0.clone()).collect();
        stack::delete(aws, &s.id, &ids).await?;
        let mut w = Watch::new(&s.name, &s.id, Op::Delete, stop);
        match w.wait(aws, ui, &pace, deadline).await {
            Ok(_) => {
                for (id, kind, physical) in &retained {
                    ui.warn(format!(
                        "{} kept {id} ({kind}) {physical}: CloudFormation could not delete it; delete it by hand",
                        s.name
                    ));
                }
                return Ok(retained);
            }
            Err(StackError::Failed(f)) if f.status == "DELETE_FAILED" && attempt == 0 => {
                retained = stack::resources_in(aws, &s.id, "DELETE_FAILED").await?;
                ui.warn(format!(
                    "{} could not delete {}; deleting the stack again and keeping them",
                    s.name,
                    retained
                        .iter()
                        .map(|r| r.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Err(StackError::Other(format!(
        "{} could not be deleted",
        s.name
    )))
}

/// Creates the shared stack, uploading as soon as its bucket exists; deletes it again when the
/// create fails or is interrupted (unless `--keep-on-failure`).
async fn create_shared(
    aws: &Aws,
    ui: &Ui,
    opts: &DeployOptions,
    name: &str,
    template: &serde_json::Value,
    files: &[upload::Upload],
    uploaded: &mut Option<upload::Uploaded>,
) -> Result<StackInfo, Fail> {
    let pace = ui.pace().clone();
    let label = format!("shared stack {name}");
    ui.step(
        "shared",
        &label,
        Mark::Running,
        Some("create (first bot in this region)".into()),
    );
    let id = stack::create(aws, name, template, &BTreeMap::new(), opts.keep_on_failure).await?;
    let mut w = Watch::new(name, &id, Op::Create, None);
    let result: Result<StackInfo, StackError> = async {
        loop {
            let done = w.poll(aws, ui, &pace).await?;
            if uploaded.is_none() {
                if let Some(bucket) = stack::resource_ready(aws, &id, "ArtifactsBucket").await? {
                    ui.step(
                        "upload",
                        "release binaries",
                        Mark::Running,
                        Some(format!("s3://{bucket} (while the stack continues)")),
                    );
                    *uploaded = Some(upload::upload_all(aws, &bucket, files).await?);
                }
            }
            if let Some(info) = done {
                return Ok(info);
            }
            if pace.elapsed() >= opts.timeout {
                return Err(w.timeout(&pace));
            }
            if !pace.sleep(pace.poll).await {
                return Err(StackError::Interrupted(name.to_string()));
            }
        }
    }
    .await;
    match result {
        Ok(info) => {
            ui.step(
                "shared",
                &label,
                Mark::Done,
                Some(format!("created ({})", info.status)),
            );
            Ok(info)
        }
        Err(e) => Err(clean_up_create(aws, ui, opts, "shared", &label, name, &id, e).await),
    }
}

/// After a create failed, timed out or was interrupted: deletes the stack this run created
/// (unless `--keep-on-failure`), saying so, and returns the failure to report.
#[allow(clippy::too_many_arguments)]
async fn clean_up_create(
    aws: &Aws,
    ui: &Ui,
    opts: &DeployOptions,
    step: &str,
    label: &str,
    name: &str,
    id: &str,
    e: StackError,
) -> Fail {
    let detail = match &e {
        StackError::Failed(f) => Some(f.status.clone()),
        StackError::Timeout { .. } => Some("timed out".to_string()),
        StackError::Interrupted(_) => Some("interrupted".to_string()),
        _ => None,
    };
    ui.step(step, label, Mark::Failed, detail);
    let mut fail = Fail::from(e);
    let region = &opts.bot.region;
    if opts.keep_on_failure {
        fail = fail.next(format!(
            "{name} was kept for inspection (--keep-on-failure); `clawsterctl destroy {} --region {region}` removes it",
            opts.bot.name
        ));
        return fail;
    }
    // The clean-up runs even after Ctrl-C (a second Ctrl-C exits at once).
    let pace = ui.pace().clone();
    pace.interrupt.clear();
    ui.step(
        &format!("{step}-cleanup"),
        &format!("delete {name} (created by this run, incomplete)"),
        Mark::Running,
        None,
    );
    let clean_deadline = pace.elapsed() + Duration::from_secs(1800);
    let info = StackInfo {
        name: name.to_string(),
        id: id.to_string(),
        status: String::new(),
        reason: None,
        outputs: BTreeMap::new(),
        parameters: BTreeMap::new(),
    };
    match delete_stack(aws, ui, &info, clean_deadline).await {
        Ok(_) => {
            ui.step(
                &format!("{step}-cleanup"),
                &format!("delete {name} (created by this run, incomplete)"),
                Mark::Done,
                Some("nothing of it is left".into()),
            );
            fail.next(format!(
                "fix the cause above, then run `clawsterctl deploy {} --region {region}` again",
                opts.bot.name
            ))
        }
        Err(de) => {
            ui.step(
                &format!("{step}-cleanup"),
                &format!("delete {name}"),
                Mark::Failed,
                Some(de.to_string()),
            );
            fail.next(format!(
                "{name} could not be deleted: `clawsterctl destroy {} --region {region}` retries",
                opts.bot.name
            ))
        }
    }
}

/// Creates, updates or recovers the bot stack.
async fn bot_stack(
    aws: &Aws,
    ui: &Ui,
    opts: &DeployOptions,
    found: &Found,
    name: &str,
    template: &serde_json::Value,
    params: &BTreeMap<String, String>,
) -> Result<StackInfo, Fail> {
    let pace = ui.pace().clone();
    let deadline = opts.timeout;
    let label = format!("bot stack {name}");
    let mut existing = found.bot.clone();
    if let Some(s) = existing
        .clone()
        .filter(|s| stack::health(&s.status) == Health::Busy)
    {
        ui.step(
            "bot",
            &label,
            Mark::Running,
            Some(format!("waiting for {}", s.status)),
        );
        match settle(aws, ui, &s, deadline).await {
            Ok(i) => existing = Some(i).filter(|i| i.status != "DELETE_COMPLETE"),
            Err(StackError::Failed(f)) => {
                existing = stack::describe(aws, &s.id).await?;
                ui.warn(format!("the earlier operation on {name} failed: {f}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(s) = existing.clone() {
        match stack::health(&s.status) {
            Health::FailedCreate | Health::Other | Health::DeleteFailed => {
                ui.step(
                    "bot",
                    &label,
                    Mark::Running,
                    Some(format!(
                        "{} from an earlier run: deleting it first",
                        s.status
                    )),
                );
                delete_stack(aws, ui, &s, deadline).await?;
                existing = None;
            }
            Health::RollbackFailed => {
                let stuck = stack::resources_in(aws, &s.id, "UPDATE_FAILED").await?;
                ui.step(
                    "bot",
                    &label,
                    Mark::Running,
                    Some(format!(
                        "UPDATE_ROLLBACK_FAILED: continuing the rollback{}",
                        if stuck.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", skipping {}",
                                stuck
                                    .iter()
                                    .map(|r| r.0.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    )),
                );
                for (id, kind, physical) in &stuck {
                    ui.warn(format!("{name}: rollback skips {id} ({kind}) {physical}: it may differ from the template until the next update"));
                }
                let stop = stack::newest_event(aws, &s.id).await?;
                aws.cfn
                    .continue_update_rollback()
                    .stack_name(&s.id)
                    .set_resources_to_skip(
                        (!stuck.is_empty()).then(|| stuck.iter().map(|r| r.0.clone()).collect()),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        AwsError::from_sdk(&format!("ContinueUpdateRollback {name}"), e)
                    })?;
                existing = rolled_back(aws, ui, &s, stop, deadline).await?;
            }
            Health::UpdateFailed => {
                ui.step(
                    "bot",
                    &label,
                    Mark::Running,
                    Some("UPDATE_FAILED: rolling back first".into()),
                );
                let stop = stack::newest_event(aws, &s.id).await?;
                aws.cfn
                    .rollback_stack()
                    .stack_name(&s.id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&format!("RollbackStack {name}"), e))?;
                existing = rolled_back(aws, ui, &s, stop, deadline).await?;
            }
            Health::Ready | Health::Busy => {}
        }
    }
    let Some(current) = existing else {
        ui.step("bot", &label, Mark::Running, Some("create".into()));
        let id = stack::create(aws, name, template, params, opts.keep_on_failure).await?;
        let mut w = Watch::new(name, &id, Op::Create, None);
        return match w.wait(aws, ui, &pace, deadline).await {
            Ok(info) => {
                ui.step("bot", &label, Mark::Done, Some("created".into()));
                Ok(info)
            }
            Err(e) => Err(clean_up_create(aws, ui, opts, "bot", &label, name, &id, e).await),
        };
    };
    if stack::unchanged(aws, &current, template, params).await? {
        ui.step("bot", &label, Mark::Skipped, Some("no changes".into()));
        return Ok(current);
    }
    ui.step(
        "bot",
        &label,
        Mark::Running,
        Some("preparing a change set".into()),
    );
    let Some(set) = stack::change_set(aws, &pace, &current, template, params, deadline).await?
    else {
        ui.step("bot", &label, Mark::Skipped, Some("no changes".into()));
        return Ok(current);
    };
    for c in &set.changes {
        ui.note(c.clone());
    }
    let stop = stack::newest_event(aws, &current.id).await?;
    stack::execute(aws, &current, &set).await?;
    ui.step(
        "bot",
        &label,
        Mark::Running,
        Some(format!("update ({} changes)", set.changes.len())),
    );
    let mut w = Watch::new(name, &current.id, Op::Update, stop);
    match w.wait(aws, ui, &pace, deadline).await {
        Ok(info) => {
            ui.step("bot", &label, Mark::Done, Some("updated".into()));
            Ok(info)
        }
        Err(StackError::Interrupted(_)) => {
            pace.interrupt.clear();
            ui.step(
                "bot",
                &label,
                Mark::Failed,
                Some("interrupted: cancelling the update".into()),
            );
            let _ = aws
                .cfn
                .cancel_update_stack()
                .stack_name(&current.id)
                .send()
                .await;
            let stop = stack::newest_event(aws, &current.id).await.ok().flatten();
            let mut w = Watch::new(name, &current.id, Op::Update, stop);
            let end = w
                .wait(aws, ui, &pace, pace.elapsed() + Duration::from_secs(1800))
                .await;
            let how = match end {
                Err(StackError::Failed(f)) => f.status,
                Ok(i) => i.status,
                Err(e) => e.to_string(),
            };
            Err(Fail::new(
                exit::INTERRUPTED,
                format!("interrupted: the update of {name} was cancelled ({how})"),
            ))
        }
        Err(e) => {
            ui.step("bot", &label, Mark::Failed, None);
            Err(Fail::from(e).next(format!(
                "the stack rolled back to its previous state; fix the cause and deploy again (`clawsterctl status {} --region {}` shows it)",
                opts.bot.name, opts.bot.region
            )))
        }
    }
}

/// How long the plan says, for messages.
pub fn plan_eta(first_in_region: bool) -> String {
    let (lo, hi) = plan::timeline_total(&plan::timeline(first_in_region));
    format!(
        "{}-{}",
        human(Duration::from_secs(u64::from(lo))),
        human(Duration::from_secs(u64::from(hi)))
    )
}
