//! CloudFormation stacks: read them, create, update through a change set, delete, recover, and
//! watch an operation resource by resource until it settles.
//!
//! Watching follows what CloudFormation's own event stream says: `DescribeStackEvents` newest
//! first, paged until the newest event seen before the operation began, shown oldest first: a
//! resource's line starts at its first in-progress event and ends with its complete or failed
//! event (with CloudFormation's reason under a failure); the stopwatch is the time between the
//! two events' own timestamps. The stack's status decides when the operation is over, and a
//! delete that lands back on `*_COMPLETE` (CloudFormation's answer when an export is still
//! imported) is the failure it is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, Parameter, StackEvent, Tag,
};
use serde_json::Value;

use crate::aws::{Aws, AwsError, ErrorKind};
use crate::pace::{human, Pace};
use crate::progress::{Event, Mark, Ui};

/// A stack as `DescribeStacks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInfo {
    /// Name.
    pub name: String,
    /// ARN (stack id).
    pub id: String,
    /// Status, e.g. `CREATE_COMPLETE`.
    pub status: String,
    /// CloudFormation's reason for the status.
    pub reason: Option<String>,
    /// Outputs by key.
    pub outputs: BTreeMap<String, String>,
    /// Parameters by key.
    pub parameters: BTreeMap<String, String>,
}

impl StackInfo {
    /// An output, or an error naming the stack and the output.
    pub fn output(&self, key: &str) -> Result<&str, StackError> {
        self.outputs.get(key).map(String::as_str).ok_or_else(|| {
            StackError::Other(format!(
                "stack {} has no output {key}: it was not made by this version of clawsterctl; \
                 destroy and deploy it again",
                self.name
            ))
        })
    }
}

/// What state a stack is in, for the decisions deploy and destroy make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Complete and usable (`CREATE_COMPLETE`, `UPDATE_COMPLETE`, `UPDATE_ROLLBACK_COMPLETE`, ...).
    Ready,
    /// An operation is running.
    Busy,
    /// A create that failed: the stack must be deleted and made again.
    FailedCreate,
    /// `UPDATE_ROLLBACK_FAILED`: needs ContinueUpdateRollback.
    RollbackFailed,
    /// `UPDATE_FAILED` with rollback disabled: needs RollbackStack.
    UpdateFailed,
    /// `DELETE_FAILED`: needs DeleteStack with retained resources.
    DeleteFailed,
    /// `REVIEW_IN_PROGRESS` (a change set that created nothing yet) or anything else.
    Other,
}

/// Classifies a stack status.
pub fn health(status: &str) -> Health {
    match status {
        "CREATE_COMPLETE"
        | "UPDATE_COMPLETE"
        | "UPDATE_ROLLBACK_COMPLETE"
        | "IMPORT_COMPLETE"
        | "IMPORT_ROLLBACK_COMPLETE" => Health::Ready,
        "CREATE_FAILED" | "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => Health::FailedCreate,
        "UPDATE_ROLLBACK_FAILED" => Health::RollbackFailed,
        "UPDATE_FAILED" => Health::UpdateFailed,
        "DELETE_FAILED" => Health::DeleteFailed,
        s if s.ends_with("_IN_PROGRESS") && s != "REVIEW_IN_PROGRESS" => Health::Busy,
        _ => Health::Other,
    }
}

/// Why a stack operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The operation ended in a failed state.
    #[error("{0}")]
    Failed(Failure),
    /// The run's deadline passed.
    #[error("gave up waiting for stack {stack} after {}: it is still {status}", human(*waited))]
    Timeout {
        /// Stack name.
        stack: String,
        /// Its last status.
        status: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Ctrl-C.
    #[error("interrupted while stack {0} was changing")]
    Interrupted(String),
    /// Anything else, already a full sentence.
    #[error("{0}")]
    Other(String),
}

/// A failed stack operation: where it ended and what CloudFormation said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stack name.
    pub stack: String,
    /// Final status.
    pub status: String,
    /// The stack's own reason.
    pub reason: Option<String>,
    /// Resources that failed, with their reasons (root causes first, cancellations last).
    pub resources: Vec<(String, String)>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stack {} ended in {}", self.stack, self.status)?;
        if let Some((id, reason)) = self.resources.first() {
            write!(f, ": {id}: {reason}")?;
        } else if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

/// What kind of operation is being watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// CreateStack or a CREATE change set.
    Create,
    /// An update (change set) or a rollback continued.
    Update,
    /// DeleteStack.
    Delete,
}

/// Reads one stack by name or ARN; `None` when it does not exist (or was deleted).
pub async fn describe(aws: &Aws, name: &str) -> Result<Option<StackInfo>, AwsError> {
    let out = match aws.cfn.describe_stacks().stack_name(name).send().await {
        Ok(o) => o,
        Err(e) => {
            let e = AwsError::from_sdk(&format!("DescribeStacks {name}"), e);
            if e.has_code("ValidationError") && e.message_contains("does not exist") {
                return Ok(None);
            }
            return Err(e);
        }
    };
    let Some(s) = out.stacks().first() else {
        return Ok(None);
    };
    let info = stack_info(s);
    if info.status == "DELETE_COMPLETE" {
        return Ok(None);
    }
    Ok(Some(info))
}

fn stack_info(s: &aws_sdk_cloudformation::types::Stack) -> StackInfo {
    StackInfo {
        name: s.stack_name().unwrap_or_default().to_string(),
        id: s.stack_id().unwrap_or_default().to_string(),
        status: s
            .stack_status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        reason: s.stack_status_reason().map(str::to_string),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect(),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.parameter_value()?.to_string(),
                ))
            })
            .collect(),
    }
}

/// Every stack of the region whose name starts with `prefix` (not deleted ones).
pub async fn list(aws: &Aws, prefix: &str) -> Result<Vec<StackInfo>, AwsError> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .cfn
            .describe_stacks()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeStacks", e))?;
        all.extend(
            out.stacks()
                .iter()
                .map(stack_info)
                .filter(|s| s.name.starts_with(prefix) && s.status != "DELETE_COMPLETE"),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// The newest event id of a stack, so a watch shows only what comes after it.
pub async fn newest_event(aws: &Aws, stack: &str) -> Result<Option<String>, AwsError> {
    let out = aws
        .cfn
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("DescribeStackEvents {stack}"), e))?;
    Ok(out
        .stack_events()
        .first()
        .and_then(|e| e.event_id())
        .map(str::to_string))
}

fn parameters(params: &BTreeMap<String, String>) -> Vec<Parameter> {
    params
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

fn tags() -> Vec<Tag> {
    vec![Tag::builder()
        .key("clawster:managed-by")
        .value("clawsterctl")
        .build()]
}

/// Starts creating a stack; returns its ARN. `keep_on_failure` disables the rollback so failed
/// resources stay for inspection.
pub async fn create(
    aws: &Aws,
    name: &str,
    template: &Value,
    params: &BTreeMap<String, String>,
    keep_on_failure: bool,
) -> Result<String, AwsError> {
    let out = aws
        .cfn
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .set_parameters(Some(parameters(params)))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .disable_rollback(keep_on_failure)
        // One token per run and stack: a retried CreateStack is recognised as the same request.
        .client_request_token(format!("clawster-{name}-{}", unix_secs()))
        .set_tags(Some(tags()))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("CreateStack {name}"), e))?;
    Ok(out.stack_id().unwrap_or(name).to_string())
}

/// Starts a direct update of a stack (no change set: for updates whose content the caller already
/// knows, e.g. a bot moving between load balancers); `false` when CloudFormation says there is
/// nothing to update.
pub async fn update(
    aws: &Aws,
    stack: &StackInfo,
    template: &Value,
    params: &BTreeMap<String, String>,
) -> Result<bool, AwsError> {
    match aws
        .cfn
        .update_stack()
        .stack_name(&stack.id)
        .template_body(template.to_string())
        .set_parameters(Some(parameters(params)))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .set_tags(Some(tags()))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = AwsError::from_sdk(&format!("UpdateStack {}", stack.name), e);
            if e.has_code("ValidationError") && e.message_contains("No updates are to be performed")
            {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Starts deleting a stack, keeping `retain` (logical ids that failed to delete before).
pub async fn delete(aws: &Aws, stack: &str, retain: &[String]) -> Result<(), AwsError> {
    aws.cfn
        .delete_stack()
        .stack_name(stack)
        .set_retain_resources((!retain.is_empty()).then(|| retain.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("DeleteStack {stack}"), e))?;
    Ok(())
}

/// Resources of a stack whose status is `status` (logical id, type, physical id).
pub async fn resources_in(
    aws: &Aws,
    stack: &str,
    status: &str,
) -> Result<Vec<(String, String, String)>, AwsError> {
    let out = aws
        .cfn
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("DescribeStackResources {stack}"), e))?;
    Ok(out
        .stack_resources()
        .iter()
        .filter(|r| r.resource_status().map(|s| s.as_str()) == Some(status))
        .map(|r| {
            (
                r.logical_resource_id().unwrap_or_default().to_string(),
                r.resource_type().unwrap_or_default().to_string(),
                r.physical_resource_id().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// The physical id of a resource once it is `CREATE_COMPLETE` (or `UPDATE_COMPLETE`).
pub async fn resource_ready(
    aws: &Aws,
    stack: &str,
    logical_id: &str,
) -> Result<Option<String>, AwsError> {
    let mut token = None;
    loop {
        let out = aws
            .cfn
            .list_stack_resources()
            .stack_name(stack)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("ListStackResources {stack}"), e))?;
        for r in out.stack_resource_summaries() {
            if r.logical_resource_id() == Some(logical_id) {
                let done = matches!(
                    r.resource_status().map(|s| s.as_str()),
                    Some("CREATE_COMPLETE" | "UPDATE_COMPLETE")
                );
                return Ok(if done {
                    r.physical_resource_id().map(str::to_string)
                } else {
                    None
                });
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// The stack's current template and parameters equal these (so an update would change nothing).
pub async fn unchanged(
    aws: &Aws,
    current: &StackInfo,
    template: &Value,
    params: &BTreeMap<String, String>,
) -> Result<bool, AwsError> {
    // Only the parameters ctl passes: the others keep their template defaults, and CloudFormation
    // reports an SSM-typed one (the AMI) by its path or, in some emulators, its resolved value.
    if params
        .iter()
        .any(|(k, v)| current.parameters.get(k) != Some(v))
    {
        return Ok(false);
    }
    Ok(template_of(aws, current).await?.as_ref() == Some(template))
}

/// The template CloudFormation holds for a stack (`None` when it is not JSON we can read).
pub async fn template_of(aws: &Aws, current: &StackInfo) -> Result<Option<Value>, AwsError> {
    let out = aws
        .cfn
        .get_template()
        .stack_name(&current.id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("GetTemplate {}", current.name), e))?;
    let body = out.template_body().unwrap_or_default();
    Ok(serde_json::from_str::<Value>(body).ok())
}

/// One line per change of a change set: `Modify LaunchTemplate (EC2::LaunchTemplate), replaces it`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// Change set ARN.
    pub id: String,
    /// The changes, as lines.
    pub changes: Vec<String>,
}

/// Creates an UPDATE change set and waits until it is ready; `None` when it contains no changes
/// (the change set is then deleted).
pub async fn change_set(
    aws: &Aws,
    pace: &Pace,
    stack: &StackInfo,
    template: &Value,
    params: &BTreeMap<String, String>,
    deadline: Duration,
) -> Result<Option<ChangeSet>, StackError> {
    let name = format!("clawster-{}", unix_secs());
    let out = aws
        .cfn
        .create_change_set()
        .stack_name(&stack.name)
        .change_set_name(&name)
        .change_set_type(ChangeSetType::Update)
        .template_body(template.to_string())
        .set_parameters(Some(parameters(params)))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("CreateChangeSet {}", stack.name), e))?;
    let id = out.id().unwrap_or(&name).to_string();
    let mut throttled = 0;
    loop {
        let d = match aws
            .cfn
            .describe_change_set()
            .change_set_name(&id)
            .stack_name(&stack.name)
            .send()
            .await
        {
            Ok(d) => d,
            Err(e) => {
                let e = AwsError::from_sdk(&format!("DescribeChangeSet {}", stack.name), e);
                backoff_or_fail(pace, e, &mut throttled).await?;
                continue;
            }
        };
        match d.status() {
            Some(ChangeSetStatus::CreateComplete) => {
                let changes = d
                    .changes()
                    .iter()
                    .filter_map(|c| c.resource_change())
                    .map(|rc| {
                        let replacement = match rc.replacement().map(|r| r.as_str()) {
                            Some("True") => ", replaces it",
                            Some("Conditional") => ", may replace it",
                            _ => "",
                        };
                        format!(
                            "{} {} ({}){replacement}",
                            rc.action().map(|a| a.as_str()).unwrap_or("Change"),
                            rc.logical_resource_id().unwrap_or("?"),
                            rc.resource_type()
                                .unwrap_or("?")
                                .trim_start_matches("AWS::")
                        )
                    })
                    .collect();
                return Ok(Some(ChangeSet { id, changes }));
            }
            Some(ChangeSetStatus::Failed) => {
                let reason = d.status_reason().unwrap_or_default().to_string();
                let _ = aws
                    .cfn
                    .delete_change_set()
                    .change_set_name(&id)
                    .stack_name(&stack.name)
                    .send()
                    .await;
                if reason.contains("didn't contain changes")
                    || reason.contains("No updates are to be performed")
                {
                    return Ok(None);
                }
                return Err(StackError::Other(format!(
                    "CloudFormation could not prepare the update of {}: {reason}",
                    stack.name
                )));
            }
            _ => {}
        }
        if pace.elapsed() >= deadline {
            return Err(StackError::Timeout {
                stack: stack.name.clone(),
                status: "change set pending".into(),
                waited: pace.elapsed(),
            });
        }
        if !pace.sleep(pace.poll).await {
            let _ = aws
                .cfn
                .delete_change_set()
                .change_set_name(&id)
                .stack_name(&stack.name)
                .send()
                .await;
            return Err(StackError::Interrupted(stack.name.clone()));
        }
    }
}

/// Executes a ready change set.
pub async fn execute(aws: &Aws, stack: &StackInfo, set: &ChangeSet) -> Result<(), AwsError> {
    aws.cfn
        .execute_change_set()
        .change_set_name(&set.id)
        .stack_name(&stack.name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("ExecuteChangeSet {}", stack.name), e))?;
    Ok(())
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Sleeps with backoff after throttling; any other error is returned.
pub async fn backoff_or_fail(
    pace: &Pace,
    e: AwsError,
    throttled: &mut u32,
) -> Result<(), StackError> {
    if e.kind != ErrorKind::Throttled || *throttled >= 8 {
        return Err(e.into());
    }
    let wait = pace.backoff(*throttled + 1);
    *throttled += 1;
    tracing::debug!("throttled ({e}); next poll in {}", human(wait));
    if pace.sleep(wait).await {
        Ok(())
    } else {
        Err(StackError::Interrupted("a throttled call".into()))
    }
}

/// Follows one operation on one stack.
#[derive(Debug)]
pub struct Watch {
    stack_name: String,
    stack_id: String,
    op: Op,
    stop_at: Option<String>,
    seen: HashSet<String>,
    started: HashMap<String, DateTime>,
    failures: Vec<(String, String)>,
    saw_delete: bool,
    last_status: String,
    throttled: u32,
    /// (logical id, physical id) of every resource that completed so far.
    pub completed: Vec<(String, String)>,
}

impl Watch {
    /// A watch of `op` on the stack `id` (ARN), showing only events after `stop_at`.
    pub fn new(name: &str, id: &str, op: Op, stop_at: Option<String>) -> Self {
        Self {
            stack_name: name.to_string(),
            stack_id: id.to_string(),
            op,
            stop_at,
            seen: HashSet::new(),
            started: HashMap::new(),
            failures: Vec::new(),
            saw_delete: false,
            last_status: String::new(),
            throttled: 0,
            completed: Vec::new(),
        }
    }

    /// Fetches new events and shows them.
    pub async fn poll_events(&mut self, aws: &Aws, ui: &Ui) -> Result<(), AwsError> {
        let mut fresh: Vec<StackEvent> = Vec::new();
        let mut token = None;
        'pages: loop {
            let out = aws
                .cfn
                .describe_stack_events()
                .stack_name(&self.stack_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk(&format!("DescribeStackEvents {}", self.stack_name), e)
                })?;
            for e in out.stack_events() {
                let id = e.event_id().unwrap_or_default();
                if self.stop_at.as_deref() == Some(id) || self.seen.contains(id) {
                    break 'pages;
                }
                fresh.push(e.clone());
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        fresh.reverse();
        for e in fresh {
            self.seen
                .insert(e.event_id().unwrap_or_default().to_string());
            self.show(ui, &e);
        }
        Ok(())
    }

    fn show(&mut self, ui: &Ui, e: &StackEvent) {
        let logical = e.logical_resource_id().unwrap_or_default().to_string();
        let status = e
            .resource_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let reason = e.resource_status_reason().map(str::to_string);
        let kind = e.resource_type().unwrap_or_default();
        if kind == "AWS::CloudFormation::Stack" && logical == self.stack_name {
            if status.starts_with("DELETE") {
                self.saw_delete = true;
            }
            // The stack's own rollback reason names the failed resources: worth a line.
            if status.contains("ROLLBACK_IN_PROGRESS") || status.ends_with("_FAILED") {
                if let Some(r) = &reason {
                    ui.warn(format!("{}: {}", self.stack_name, r.trim()));
                }
            }
            return;
        }
        let key = logical.clone();
        let (mark, took) = if status.ends_with("_IN_PROGRESS") {
            if self.started.contains_key(&key) {
                // Second in-progress event of the same phase ("Resource creation Initiated").
                return;
            }
            if let Some(t) = e.timestamp() {
                self.started.insert(key.clone(), *t);
            }
            (Mark::Running, None)
        } else {
            let took = match (self.started.remove(&key), e.timestamp()) {
                (Some(a), Some(b)) => Some(Duration::from_secs_f64(
                    (b.as_secs_f64() - a.as_secs_f64()).max(0.0),
                )),
                _ => None,
            };
            let mark = if status.ends_with("_FAILED") {
                Mark::Failed
            } else if status == "DELETE_SKIPPED" {
                Mark::Skipped
            } else {
                Mark::Done
            };
            if mark == Mark::Done {
                if let Some(p) = e.physical_resource_id() {
                    self.completed.push((key.clone(), p.to_string()));
                }
            }
            (mark, took)
        };
        let reason = if mark == Mark::Failed { reason } else { None };
        if let Some(r) = &reason {
            self.failures.push((logical.clone(), r.clone()));
        }
        ui.emit(Event::Resource {
            stack: self.stack_name.clone(),
            id: logical,
            kind: kind.trim_start_matches("AWS::").to_string(),
            status,
            mark,
            reason,
            took,
        });
    }

    /// One poll: new events, then the stack's status. `Some` when the operation succeeded,
    /// `None` while it runs (or after a throttled call, having backed off), an error when it
    /// failed.
    pub async fn poll(
        &mut self,
        aws: &Aws,
        ui: &Ui,
        pace: &Pace,
    ) -> Result<Option<StackInfo>, StackError> {
        if let Err(e) = self.poll_events(aws, ui).await {
            backoff_or_fail(pace, e, &mut self.throttled).await?;
            return Ok(None);
        }
        let info = match self.current(aws).await {
            Ok(i) => i,
            Err(e) => {
                backoff_or_fail(pace, e, &mut self.throttled).await?;
                return Ok(None);
            }
        };
        self.throttled = 0;
        self.last_status = info.status.clone();
        self.settled(info)
    }

    /// The stack's last status seen.
    pub fn last_status(&self) -> &str {
        &self.last_status
    }

    /// The error for giving up at the deadline.
    pub fn timeout(&self, pace: &Pace) -> StackError {
        StackError::Timeout {
            stack: self.stack_name.clone(),
            status: self.last_status.clone(),
            waited: pace.elapsed(),
        }
    }

    /// Polls until the operation settles, the deadline passes or the run is interrupted.
    pub async fn wait(
        &mut self,
        aws: &Aws,
        ui: &Ui,
        pace: &Pace,
        deadline: Duration,
    ) -> Result<StackInfo, StackError> {
        loop {
            if let Some(done) = self.poll(aws, ui, pace).await? {
                return Ok(done);
            }
            if pace.elapsed() >= deadline {
                return Err(self.timeout(pace));
            }
            if !pace.sleep(pace.poll).await {
                return Err(StackError::Interrupted(self.stack_name.clone()));
            }
        }
    }

    async fn current(&self, aws: &Aws) -> Result<StackInfo, AwsError> {
        let out = aws
            .cfn
            .describe_stacks()
            .stack_name(&self.stack_id)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.stacks().first().map(stack_info).unwrap_or(StackInfo {
                name: self.stack_name.clone(),
                id: self.stack_id.clone(),
                status: "DELETE_COMPLETE".into(),
                reason: None,
                outputs: BTreeMap::new(),
                parameters: BTreeMap::new(),
            })),
            Err(e) => {
                let e = AwsError::from_sdk(&format!("DescribeStacks {}", self.stack_name), e);
                if self.op == Op::Delete
                    && e.has_code("ValidationError")
                    && e.message_contains("does not exist")
                {
                    return Ok(StackInfo {
                        name: self.stack_name.clone(),
                        id: self.stack_id.clone(),
                        status: "DELETE_COMPLETE".into(),
                        reason: None,
                        outputs: BTreeMap::new(),
                        parameters: BTreeMap::new(),
                    });
                }
                Err(e)
            }
        }
    }

    fn failure(&self, info: &StackInfo) -> StackError {
        // Root causes first: "Resource creation cancelled" only says a sibling failed.
        let mut resources = self.failures.clone();
        resources.sort_by_key(|(_, r)| r.contains("cancelled"));
        StackError::Failed(Failure {
            stack: self.stack_name.clone(),
            status: info.status.clone(),
            reason: info.reason.clone(),
            resources,
        })
    }

    /// `Some(info)` when the operation succeeded, `None` while it runs, an error when it failed.
    fn settled(&self, info: StackInfo) -> Result<Option<StackInfo>, StackError> {
        let s = info.status.as_str();
        if s.ends_with("_IN_PROGRESS") && s != "REVIEW_IN_PROGRESS" {
            return Ok(None);
        }
        match self.op {
            Op::Create if s == "CREATE_COMPLETE" => Ok(Some(info)),
            Op::Create if s == "REVIEW_IN_PROGRESS" => Ok(None),
            Op::Update if matches!(s, "UPDATE_COMPLETE") => Ok(Some(info)),
            Op::Delete if s == "DELETE_COMPLETE" => Ok(Some(info)),
            Op::Delete if health(s) == Health::Ready => {
                // DeleteStack was accepted, then the stack went back to where it was: an export
                // of it is still imported (CloudFormation says so only in the reason).
                let why = info
                    .reason
                    .clone()
                    .unwrap_or_else(|| "CloudFormation kept the stack".into());
                if self.saw_delete || info.reason.is_some() {
                    Err(StackError::Failed(Failure {
                        stack: self.stack_name.clone(),
                        status: format!("{s} (not deleted)"),
                        reason: Some(why),
                        resources: Vec::new(),
                    }))
                } else {
                    Ok(None)
                }
            }
            _ => Err(self.failure(&info)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_classes() {
        assert_eq!(health("CREATE_COMPLETE"), Health::Ready);
        assert_eq!(health("UPDATE_ROLLBACK_COMPLETE"), Health::Ready);
        assert_eq!(health("ROLLBACK_COMPLETE"), Health::FailedCreate);
        assert_eq!(health("UPDATE_ROLLBACK_FAILED"), Health::RollbackFailed);
        assert_eq!(health("DELETE_FAILED"), Health::DeleteFailed);
        assert_eq!(health("UPDATE_IN_PROGRESS"), Health::Busy);
        assert_eq!(health("REVIEW_IN_PROGRESS"), Health::Other);
    }

    #[test]
    fn failure_shows_the_root_cause_first() {
        let f = Failure {
            stack: "s".into(),
            status: "ROLLBACK_COMPLETE".into(),
            reason: None,
            resources: vec![("A".into(), "boom".into())],
        };
        assert_eq!(f.to_string(), "stack s ended in ROLLBACK_COMPLETE: A: boom");
    }
}
