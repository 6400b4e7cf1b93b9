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
//!
//! For the shared stack:
//! 1. Read it; absent: exit 0.
//! 2. Find the stacks importing its exports (`ListImports`; where an endpoint does not implement
//!    it, the region's `clawster-bot-*` stacks); any: refuse, naming them, exit 1.
//! 3. Confirm.
//! 4. Empty the artifacts bucket (every version: it is versioned), since CloudFormation cannot
//!    delete a bucket that holds objects.
//! 5. Delete the stack and wait; CloudFormation's silent return to `*_COMPLETE` when an export is
//!    still in use is reported as the failure it is.

use std::time::Duration;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::aws::{Aws, AwsError};
use crate::deploy::service::{set_desired, ServiceRef};
use crate::deploy::{consent, delete_stack, exit, secret, Confirm, Fail};
use crate::names::BotName;
use crate::progress::{Event, Mark, Ui};
use crate::shared;
use crate::stack;

/// Removes one bot.
pub async fn bot(
    aws: &Aws,
    ui: &Ui,
    name: &BotName,
    yes: bool,
    timeout: Duration,
    confirm: Confirm<'_>,
) -> Result<String, Fail> {
    let stack_name = crate::bot::stack_name(name);
    let found = stack::describe(aws, &stack_name).await?;
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
    if found.is_none() && !secret_exists {
        return Ok(format!(
            "nothing to destroy: no bot {name} in {}",
            aws.region
        ));
    }
    let q = format!(
            "Destroy bot {name} in {}? Its service stops, stack {stack_name} and everything in it (host, load balancer, \
             logs, the bot's state on the host) are deleted, and so is the secret {secret_name}.",
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
    Ok(format!("bot {name} destroyed; the shared stack stays (`clawsterctl destroy --shared --region {}` removes it once no bot is left)", aws.region))
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

/// Deletes every object version and delete marker of a bucket.
async fn empty_bucket(aws: &Aws, bucket: &str) -> Result<usize, AwsError> {
    let mut removed = 0;
    loop {
        let out = aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("ListObjectVersions {bucket}"), e))?;
        let mut ids = Vec::new();
        for v in out.versions() {
            if let Some(k) = v.key() {
                ids.push((k.to_string(), v.version_id().map(str::to_string)));
            }
        }
        for m in out.delete_markers() {
            if let Some(k) = m.key() {
                ids.push((k.to_string(), m.version_id().map(str::to_string)));
            }
        }
        if ids.is_empty() {
            return Ok(removed);
        }
        let objects: Vec<ObjectIdentifier> = ids
            .iter()
            .filter_map(|(k, v)| {
                ObjectIdentifier::builder()
                    .key(k)
                    .set_version_id(v.clone())
                    .build()
                    .ok()
            })
            .collect();
        let n = objects.len();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| {
                AwsError::new(
                    crate::aws::ErrorKind::Service,
                    format!("DeleteObjects {bucket}: {e}"),
                )
            })?;
        let res = aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("DeleteObjects {bucket}"), e))?;
        if let Some(err) = res.errors().first() {
            return Err(AwsError::new(
                crate::aws::ErrorKind::Service,
                format!(
                    "DeleteObjects {bucket}: {} {}",
                    err.key().unwrap_or("?"),
                    err.message().unwrap_or("could not be deleted")
                ),
            ));
        }
        removed += n;
    }
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
            "Destroy the shared stack {name} (VPC, NAT instance, roles, flow logs, artifacts bucket and its contents){}?",
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
        match empty_bucket(aws, bucket).await {
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
