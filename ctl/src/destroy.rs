//! `clawsterctl destroy BOT` and `clawsterctl destroy --shared`: take things away without orphans.
//!
//! Order of work for a bot, and the failure policy of each step:
//! 1. Read the bot stack and its secret; nothing there: say so, exit 0 (destroy is idempotent).
//! 2. Confirm (or `--yes`); no terminal and no `--yes`: stop, exit 2, nothing changed.
//! 3. Service to 0 tasks, so the task stops before its host goes; a service already gone is fine.
//! 4. Delete the bot stack and wait; `DELETE_FAILED` is retried once with the stuck resources
//!    retained, and those are listed for deleting by hand. Failure: exit 1, the secret is kept
//!    (the stack may still reference it).
//! 5. Delete the secret `clawster/<bot>/config` without a recovery window.
//! 6. The bot's state replica `state/<bot>/` in the artifacts bucket ([`crate::state`]): by
//!    default its current objects are deleted (each gets a delete marker), so it stays
//!    restorable as noncurrent versions for the retention and then the bucket's lifecycle rule
//!    removes it; with `--delete-state` every version and delete marker under the prefix is
//!    deleted at once (ListObjectVersions page by page, DeleteObjects). Only after the stack is
//!    gone, so no host writes it any more. No shared stack (no bucket): nothing to do. Failure:
//!    exit 1, naming the prefix; everything before it is done.
//!
//! For the shared stack:
//! 1. Read it; absent: exit 0.
//! 2. Find the stacks importing its exports (`ListImports`; where an endpoint does not implement
//!    it, the region's `clawster-bot-*` stacks); any: refuse, naming them, exit 1.
//! 3. Confirm.
//! 4. Empty the artifacts bucket (every version: it is versioned; release binaries and every
//!    bot's state replica), since CloudFormation cannot delete a bucket that holds objects.
//! 5. Delete the stack and wait; CloudFormation's silent return to `*_COMPLETE` when an export is
//!    still in use is reported as the failure it is.

use std::time::Duration;

use crate::aws::{Aws, AwsError};
use crate::deploy::service::{set_desired, ServiceRef};
use crate::deploy::{consent, delete_stack, exit, secret, Confirm, Fail};
use crate::names::BotName;
use crate::progress::{Event, Mark, Ui};
use crate::shared;
use crate::stack;
use crate::state::bucket::{delete_all_versions, delete_current};
use crate::state::{self, RETENTION_DAYS};

/// How `destroy BOT` runs.
#[derive(Debug, Clone)]
pub struct BotDestroy {
    /// Agree without asking.
    pub yes: bool,
    /// Delete every version of the bot's state at once instead of keeping it for the retention.
    pub delete_state: bool,
    /// Bound of the whole run.
    pub timeout: Duration,
}

/// Removes one bot.
pub async fn bot(
    aws: &Aws,
    ui: &Ui,
    name: &BotName,
    o: &BotDestroy,
    confirm: Confirm<'_>,
) -> Result<String, Fail> {
    let (yes, timeout) = (o.yes, o.timeout);
    let stack_name = crate::bot::stack_name(name);
    let found = stack::describe(aws, &stack_name).await?;
    let bucket = stack::describe(aws, &shared::stack_name(&aws.region))
        .await?
        .and_then(|s| s.outputs.get("ArtifactsBucketName").cloned());
    let replica = bucket
        .as_ref()
        .map(|b| format!("s3://{b}/{}", state::prefix(name)));
    let secret_name = secret::name(name);
    let secret_exists = match aws.secrets.describe_secret().secret_id(&secret_name).send().await {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError::ResourceNotFoundException(_))
            ) =>
        {
            false
        }
        Err(e) => return Err(AwsError::from_sdk(&format!("DescribeSecret {secret_name}"), e).into()),
    };
    if found.is_none() && !secret_exists && !(o.delete_state && replica.is_some()) {
        return Ok(format!(
            "nothing to destroy: no bot {name} in {}",
            aws.region
        ));
    }
    let state_words = match (&replica, o.delete_state) {
        (None, _) => String::new(),
        (Some(r), false) => format!(
            " Its state replica {r} is deleted but stays restorable for {RETENTION_DAYS} days (--delete-state deletes every version at once)."
        ),
        (Some(r), true) => format!(
            " Every version of its state replica {r} is deleted for good (--delete-state): its device identity, pairings and sessions cannot be restored."
        ),
    };
    let q = format!(
            "Destroy bot {name} in {}? Its service stops, stack {stack_name} and everything in it (host, load balancer, \
             logs) are deleted, and so is the secret {secret_name}.{state_words}",
            aws.region
        );
    consent(confirm, yes, &q, "destroy")?;
    ui.emit(Event::Begin {
        title: format!("Destroying bot {name} in {}", aws.region),
        eta: None,
    });
    if let Some(s) = &found {
        if let (Some(cluster), Some(service)) =
            (s.outputs.get("ClusterName"), s.outputs.get("ServiceName"))
        {
            let svc = ServiceRef {
                cluster: cluster.clone(),
                service: service.clone(),
                target_group: None,
            };
            ui.step(
                "service",
                "bot service",
                Mark::Running,
                Some("desired 0".into()),
            );
            match set_desired(aws, &svc, 0).await {
                Ok(()) => ui.step(
                    "service",
                    "bot service",
                    Mark::Done,
                    Some("desired 0".into()),
                ),
                Err(e) if e.kind == crate::aws::ErrorKind::NotFound => ui.step(
                    "service",
                    "bot service",
                    Mark::Skipped,
                    Some("already gone".into()),
                ),
                Err(e) => return Err(e.into()),
            }
        }
        ui.step(
            "stack",
            &format!("bot stack {stack_name}"),
            Mark::Running,
            Some("delete".into()),
        );
        let deadline = ui.pace().elapsed() + timeout;
        match delete_stack(aws, ui, s, deadline).await {
            Ok(kept) => ui.step(
                "stack",
                &format!("bot stack {stack_name}"),
                Mark::Done,
                Some(if kept.is_empty() {
                    "deleted".into()
                } else {
                    format!("deleted, {} resource(s) kept (listed above)", kept.len())
                }),
            ),
            Err(e) => {
                ui.step(
                    "stack",
                    &format!("bot stack {stack_name}"),
                    Mark::Failed,
                    None,
                );
                return Err(Fail::from(e).next(format!(
                    "the secret {secret_name} was kept; run `clawsterctl destroy {name} --region {}` again",
                    aws.region
                )));
            }
        }
    }
    ui.step(
        "secret",
        &format!("secret {secret_name}"),
        Mark::Running,
        None,
    );
    let had = secret::delete(aws, name).await?;
    ui.step(
        "secret",
        &format!("secret {secret_name}"),
        if had { Mark::Done } else { Mark::Skipped },
        Some(if had { "deleted" } else { "was not there" }.into()),
    );
    let kept = match (&bucket, &replica) {
        (Some(bucket), Some(replica)) => {
            remove_state(aws, ui, bucket, name, replica, o.delete_state).await?
        }
        _ => String::new(),
    };
    Ok(format!("bot {name} destroyed{kept}; the shared stack stays (`clawsterctl destroy --shared --region {}` removes it once no bot is left)", aws.region))
}

/// Step 6: the bot's state replica, kept for the retention or (`--delete-state`) deleted for
/// good; what the summary says about it.
async fn remove_state(
    aws: &Aws,
    ui: &Ui,
    bucket: &str,
    name: &BotName,
    replica: &str,
    delete_all: bool,
) -> Result<String, Fail> {
    let label = format!("state replica {replica}");
    let prefix = state::prefix(name);
    ui.step("state", &label, Mark::Running, None);
    let result = if delete_all {
        delete_all_versions(aws, bucket, &prefix).await
    } else {
        delete_current(aws, bucket, &prefix).await
    };
    let n = result.map_err(|e| {
        ui.step("state", &label, Mark::Failed, None);
        Fail::from(e).next(format!(
            "the bot's stack and secret are gone; `clawsterctl destroy {name} --delete-state --region {}` deletes what is left of its state",
            aws.region
        ))
    })?;
    let (detail, kept) = if delete_all {
        (
            format!("{n} object version(s) deleted for good"),
            format!("; its state replica is deleted for good ({n} object versions)"),
        )
    } else {
        (
            format!(
                "{n} object(s) deleted, restorable for {RETENTION_DAYS} days as noncurrent versions"
            ),
            format!(
                "; its state stays restorable for {RETENTION_DAYS} days in {replica} (`destroy {name} --delete-state` deletes it at once)"
            ),
        )
    };
    ui.step("state", &label, Mark::Done, Some(detail));
    Ok(kept)
}

/// Stacks importing any of the shared stack's exports.
async fn importers(aws: &Aws, ui: &Ui, shared_name: &str) -> Result<Vec<String>, Fail> {
    let mut found = std::collections::BTreeSet::new();
    let mut fallback = false;
    for e in shared::EXPORTS {
        let export = format!("{shared_name}-{e}");
        match aws.cfn.list_imports().export_name(&export).send().await {
            Ok(out) => found.extend(out.imports().iter().cloned()),
            Err(err) => {
                let err = AwsError::from_sdk(&format!("ListImports {export}"), err);
                if err.message_contains("is not imported") {
                    continue;
                }
                if err.kind == crate::aws::ErrorKind::Network
                    || err.has_code("InternalFailure")
                    || err.message.contains("NotImplemented")
                    || err.message.contains("not yet implemented")
                {
                    fallback = true;
                    break;
                }
                if err.has_code("ValidationError") {
                    // The export does not exist (a stack from another version): nothing imports it.
                    continue;
                }
                return Err(err.into());
            }
        }
    }
    if fallback {
        ui.warn("this endpoint does not implement ListImports: treating every clawster-bot-* stack of the region as an importer");
        for s in stack::list(aws, "clawster-bot-").await? {
            found.insert(s.name);
        }
    }
    Ok(found.into_iter().collect())
}

/// Removes the region's shared stack once no bot uses it.
pub async fn shared(
    aws: &Aws,
    ui: &Ui,
    yes: bool,
    timeout: Duration,
    confirm: Confirm<'_>,
) -> Result<String, Fail> {
    let name = shared::stack_name(&aws.region);
    let Some(s) = stack::describe(aws, &name).await? else {
        return Ok(format!(
            "nothing to destroy: no shared stack in {}",
            aws.region
        ));
    };
    // The shared load balancer's stack imports the shared stack's network; it goes first, once
    // no bot uses it (a bot on it is a bot stack importing the shared stack too).
    let lb_name = shared::load_balancer::stack_name(&aws.region);
    let lb = stack::describe(aws, &lb_name).await?;
    let users: Vec<String> = importers(aws, ui, &name)
        .await?
        .into_iter()
        .filter(|u| u != &lb_name)
        .collect();
    if !users.is_empty() {
        return Err(Fail::new(
            exit::FAILED,
            format!(
                "the shared stack {name} is still used: {} import(s) its exports",
                users.join(", ")
            ),
        )
        .next(format!(
            "destroy those bots first (`clawsterctl destroy BOT --region {}`), then run this again",
            aws.region
        )));
    }
    let q = format!(
            "Destroy the shared stack {name} (VPC, NAT instance, roles, flow logs, artifacts bucket and its contents: the release binaries and what is left of every destroyed bot's state){}?",
            if lb.is_some() { format!(" and the shared load balancer stack {lb_name}") } else { String::new() }
        );
    consent(confirm, yes, &q, "destroy")?;
    ui.emit(Event::Begin {
        title: format!("Destroying the shared stack of {}", aws.region),
        eta: None,
    });
    if let Some(lb) = &lb {
        let label = format!("shared load balancer stack {lb_name}");
        ui.step("shared-lb", &label, Mark::Running, Some("delete".into()));
        let deadline = ui.pace().elapsed() + timeout;
        delete_stack(aws, ui, lb, deadline).await.map_err(|e| {
            ui.step("shared-lb", &label, Mark::Failed, None);
            Fail::from(e).next(format!(
                "`clawsterctl destroy --shared --region {}` tries again",
                aws.region
            ))
        })?;
        ui.step("shared-lb", &label, Mark::Done, Some("deleted".into()));
    }
    if let Some(bucket) = s.outputs.get("ArtifactsBucketName") {
        ui.step(
            "bucket",
            &format!("artifacts bucket {bucket}"),
            Mark::Running,
            Some("emptying".into()),
        );
        match delete_all_versions(aws, bucket, "").await {
            Ok(n) => ui.step(
                "bucket",
                &format!("artifacts bucket {bucket}"),
                Mark::Done,
                Some(format!("{n} object version(s) deleted")),
            ),
            Err(e) if e.has_code("NoSuchBucket") || e.kind == crate::aws::ErrorKind::NotFound => ui
                .step(
                    "bucket",
                    &format!("artifacts bucket {bucket}"),
                    Mark::Skipped,
                    Some("already gone".into()),
                ),
            Err(e) => return Err(e.into()),
        }
    }
    ui.step(
        "stack",
        &format!("shared stack {name}"),
        Mark::Running,
        Some("delete".into()),
    );
    let deadline = ui.pace().elapsed() + timeout;
    match delete_stack(aws, ui, &s, deadline).await {
        Ok(_) => {
            ui.step(
                "stack",
                &format!("shared stack {name}"),
                Mark::Done,
                Some("deleted".into()),
            );
            Ok(format!("the shared stack of {} is gone", aws.region))
        }
        Err(e) => {
            ui.step("stack", &format!("shared stack {name}"), Mark::Failed, None);
            Err(Fail::from(e).next(format!(
                "the stack's events in the CloudFormation console name what could not be deleted; \
                 `clawsterctl destroy --shared --region {}` tries again",
                aws.region
            )))
        }
    }
}
