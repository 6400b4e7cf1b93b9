//! Scripted AWS for what moto cannot do: per-resource CloudFormation events with reasons,
//! failures, rollbacks, "export in use", throttling, slow NAT routes, crash-looping tasks and
//! unhealthy targets.
//!
//! The answers are the SDK's own types served by aws-smithy-mocks, with shapes taken from real
//! AWS output (../shared/facts/aws-deploy.md §2). A stack is a script of steps at seconds after
//! the operation that started it (create, delete, update); what a call returns depends on the
//! run's virtual clock ([`clawsterctl::pace::Pace`]), so a scenario reads like a timeline and no
//! test sleeps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation as cfn;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use cfn::error::ErrorMetadata;
use cfn::primitives::DateTime;
use clawsterctl::aws::Aws;
use clawsterctl::pace::Pace;

/// Wall-clock time of virtual second 0 (event timestamps are this plus the step's second).
pub const T0: i64 = 1_796_205_600; // 2026-12-02T10:00:00Z

/// One CloudFormation event of a script.
#[derive(Debug, Clone)]
pub struct Step {
    /// Seconds after the operation started.
    pub at: u64,
    /// Logical id (the stack's name for stack-level events).
    pub logical: String,
    /// Resource type.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Reason.
    pub reason: Option<String>,
}

/// A resource step.
pub fn res(at: u64, logical: &str, kind: &str, status: &str, reason: Option<&str>) -> Step {
    Step {
        at,
        logical: logical.into(),
        kind: kind.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
    }
}

/// What one stack does.
#[derive(Debug, Clone, Default)]
pub struct SimStack {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Virtual time of CreateStack (`Some(ZERO)` with `exists` for a stack there from the start).
    pub created: Option<Duration>,
    /// Virtual time of DeleteStack calls.
    pub deletes: Vec<Duration>,
    /// The create script (resource steps and stack-level steps, by `at`).
    pub create: Vec<Step>,
    /// The delete script, per DeleteStack call (the last one repeats).
    pub delete: Vec<Vec<Step>>,
    /// The operation run by ContinueUpdateRollback.
    pub continue_rollback: Vec<Step>,
    /// When ContinueUpdateRollback was called.
    pub continued: Option<Duration>,
    /// The operation run by ExecuteChangeSet.
    pub update: Vec<Step>,
    /// When ExecuteChangeSet was called.
    pub updated: Option<Duration>,
    /// The changes a change set shows (empty: "didn't contain changes").
    pub changes: Vec<(&'static str, &'static str, &'static str, &'static str)>,
    /// Outputs once complete.
    pub outputs: Vec<(String, String)>,
    /// Parameters it was created with.
    pub parameters: BTreeMap<String, String>,
    /// Template it was created with.
    pub template: String,
    /// RetainResources of each DeleteStack call.
    pub retained: Vec<Vec<String>>,
    /// Resources skipped by ContinueUpdateRollback.
    pub skipped: Vec<String>,
}

impl SimStack {
    /// A stack that does not exist yet and will run `create` once created.
    pub fn new(name: &str, create: Vec<Step>) -> Self {
        Self {
            name: name.into(),
            arn: format!(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/0f0e0d0c-1111-2222-3333-444455556666"
            ),
            create,
            delete: vec![vec![
                stack_step(0, name, "DELETE_IN_PROGRESS", Some("User Initiated")),
                stack_step(20, name, "DELETE_COMPLETE", None),
            ]],
            ..Self::default()
        }
    }

    /// The stack exists from the start, its create script already played.
    pub fn existing(mut self) -> Self {
        self.created = Some(Duration::ZERO);
        for s in &mut self.create {
            s.at = 0;
        }
        self
    }

    fn happened(&self, now: Duration) -> Vec<(u64, &Step)> {
        let mut v = Vec::new();
        if let Some(c) = self.created {
            let base = c.as_secs();
            for s in &self.create {
                if base + s.at <= now.as_secs() {
                    v.push((base + s.at, s));
                }
            }
        }
        if let Some(c) = self.continued {
            let base = c.as_secs();
            for s in &self.continue_rollback {
                if base + s.at <= now.as_secs() {
                    v.push((base + s.at, s));
                }
            }
        }
        if let Some(c) = self.updated {
            let base = c.as_secs();
            for s in &self.update {
                if base + s.at <= now.as_secs() {
                    v.push((base + s.at, s));
                }
            }
        }
        for (i, d) in self.deletes.iter().enumerate() {
            let script = self.delete.get(i).or(self.delete.last()).unwrap();
            let base = d.as_secs();
            for s in script {
                if base + s.at <= now.as_secs() {
                    v.push((base + s.at, s));
                }
            }
        }
        v.sort_by_key(|(t, _)| *t);
        v
    }

    /// The stack status at `now` (`None`: it does not exist).
    pub fn status(&self, now: Duration) -> Option<(String, Option<String>)> {
        self.created?;
        self.happened(now)
            .iter()
            .rev()
            .find(|(_, s)| s.kind == "AWS::CloudFormation::Stack")
            .map(|(_, s)| (s.status.clone(), s.reason.clone()))
            .or(Some(("CREATE_IN_PROGRESS".into(), None)))
    }

    fn events(&self, now: Duration) -> Vec<cfn::types::StackEvent> {
        let mut v: Vec<cfn::types::StackEvent> = self
            .happened(now)
            .iter()
            .enumerate()
            .map(|(i, (t, s))| {
                cfn::types::StackEvent::builder()
                    .stack_id(&self.arn)
                    .stack_name(&self.name)
                    .event_id(format!("{}-{}-{i:04}", s.logical, s.status))
                    .logical_resource_id(&s.logical)
                    .resource_type(&s.kind)
                    .resource_status(cfn::types::ResourceStatus::from(s.status.as_str()))
                    .set_resource_status_reason(s.reason.clone())
                    .set_physical_resource_id(
                        (s.status != "CREATE_IN_PROGRESS" || s.reason.is_some())
                            .then(|| format!("{}-phys", s.logical.to_lowercase())),
                    )
                    .timestamp(DateTime::from_secs(T0 + *t as i64))
                    .build()
            })
            .collect();
        v.reverse();
        v
    }

    fn resource_status(&self, now: Duration, logical: &str) -> Option<String> {
        self.happened(now)
            .iter()
            .rev()
            .find(|(_, s)| s.logical == logical)
            .map(|(_, s)| s.status.clone())
    }

    fn stack(&self, now: Duration) -> Option<cfn::types::Stack> {
        let (status, reason) = self.status(now)?;
        let mut b = cfn::types::Stack::builder()
            .stack_name(&self.name)
            .stack_id(&self.arn)
            .stack_status(cfn::types::StackStatus::from(status.as_str()))
            .set_stack_status_reason(reason)
            .creation_time(DateTime::from_secs(T0));
        if status.ends_with("_COMPLETE") && !status.starts_with("DELETE") {
            for (k, v) in &self.outputs {
                b = b.outputs(
                    cfn::types::Output::builder()
                        .output_key(k)
                        .output_value(v)
                        .build(),
                );
            }
        }
        for (k, v) in &self.parameters {
            b = b.parameters(
                cfn::types::Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build(),
            );
        }
        Some(b.build())
    }
}

/// A stack-level step.
pub fn stack_step(at: u64, name: &str, status: &str, reason: Option<&str>) -> Step {
    res(at, name, "AWS::CloudFormation::Stack", status, reason)
}

/// (second after UpdateService, desired, running, pending, rollout state, service event).
pub type ServiceStep = (u64, i32, i32, i32, &'static str, Option<&'static str>);

/// The scripted world of one test.
#[derive(Debug, Default)]
pub struct World {
    /// Stacks by name.
    pub stacks: BTreeMap<String, SimStack>,
    /// Every call made, in order (`Service.Operation target`).
    pub calls: Vec<String>,
    /// Seconds at which the NAT route turns active (None: never).
    pub nat_active_at: Option<u64>,
    /// Service script: (second after UpdateService, desired, running, pending, rollout state, event).
    pub service: Vec<ServiceStep>,
    /// Stopped tasks: (second after UpdateService, id, stopped reason).
    pub stopped: Vec<(u64, &'static str, &'static str)>,
    /// Target health script: (second after UpdateService, state, reason).
    pub targets: Vec<(u64, &'static str, Option<&'static str>)>,
    /// When UpdateService(desired 1) was called.
    pub started: Option<Duration>,
    /// The service already runs one healthy task before this deploy (a running bot).
    pub running_before: bool,
    /// DescribeStacks calls (by ARN) answered with Throttling, at these call numbers.
    pub throttle_calls: Vec<usize>,
    describe_calls: usize,
    /// Virtual times of the DescribeStacks calls by ARN (the watch's polls).
    pub poll_times: Vec<Duration>,
    /// Secrets by name: (ARN, value).
    pub secrets: BTreeMap<String, (String, String)>,
    /// Objects put: key.
    pub objects: Vec<String>,
    /// Objects deleted without a version id (they have a delete marker now).
    pub deleted: Vec<String>,
    /// ListImports answers by export name (absent: "not imported").
    pub imports: BTreeMap<String, Vec<String>>,
    /// The bot group's instances in service.
    pub hosts: Vec<String>,
    /// When TerminateInstanceInAutoScalingGroup was called; the group's new host
    /// (`i-0bbb0000000000002`) is in service 60 s later.
    pub terminated: Option<Duration>,
    /// What `clawster-agent state sync --json` prints on the host (SSM Success, exit 0).
    pub sync_answer: String,
}

/// The shared world, the clients built on it and the clock.
#[derive(Clone)]
pub struct Sim {
    /// The world.
    pub world: Arc<Mutex<World>>,
    /// The run's virtual clock.
    pub pace: Pace,
}

fn meta(code: &str, msg: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(msg).build()
}

fn stack_name_of(input: Option<&str>, w: &World) -> Option<String> {
    let i = input?;
    w.stacks
        .values()
        .find(|s| s.name == i || s.arn == i)
        .map(|s| s.name.clone())
}

impl Sim {
    /// A world on a virtual clock polling every 5 s.
    pub fn new(world: World) -> Self {
        Self {
            world: Arc::new(Mutex::new(world)),
            pace: Pace::virtual_time(Duration::from_secs(5)),
        }
    }

    fn now(&self) -> Duration {
        self.pace.elapsed()
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<String> {
        self.world.lock().unwrap().calls.clone()
    }

    fn log(&self, what: String) {
        self.world.lock().unwrap().calls.push(what);
    }

    fn cfn_rules(&self) -> Vec<Rule> {
        use cfn::operation::describe_stacks::{DescribeStacksError, DescribeStacksOutput};
        let mut rules = Vec::new();
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::describe_stacks).then_compute_response(move |i| {
                let now = s.now();
                let mut w = s.world.lock().unwrap();
                let name = i.stack_name().map(str::to_string);
                w.calls.push(format!(
                    "cfn.DescribeStacks {}",
                    name.as_deref().unwrap_or("*")
                ));
                let by_arn = name.as_deref().is_some_and(|n| n.starts_with("arn:"));
                if by_arn {
                    w.describe_calls += 1;
                    w.poll_times.push(now);
                    if w.throttle_calls.contains(&w.describe_calls) {
                        return MockResponse::Error(DescribeStacksError::generic(meta(
                            "Throttling",
                            "Rate exceeded",
                        )));
                    }
                }
                match name {
                    None => {
                        let mut b = DescribeStacksOutput::builder();
                        for st in w.stacks.values() {
                            if let Some(x) = st.stack(now) {
                                if x.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE") {
                                    b = b.stacks(x);
                                }
                            }
                        }
                        MockResponse::Output(b.build())
                    }
                    Some(n) => {
                        let found =
                            stack_name_of(Some(&n), &w).and_then(|k| w.stacks[&k].stack(now));
                        match found {
                            Some(x)
                                if by_arn
                                    || x.stack_status().map(|s| s.as_str())
                                        != Some("DELETE_COMPLETE") =>
                            {
                                MockResponse::Output(
                                    DescribeStacksOutput::builder().stacks(x).build(),
                                )
                            }
                            _ => MockResponse::Error(DescribeStacksError::generic(meta(
                                "ValidationError",
                                &format!("Stack with id {n} does not exist"),
                            ))),
                        }
                    }
                }
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::describe_stack_events).then_compute_output(move |i| {
                let now = s.now();
                let w = s.world.lock().unwrap();
                let evs = stack_name_of(i.stack_name(), &w)
                    .map(|k| w.stacks[&k].events(now))
                    .unwrap_or_default();
                cfn::operation::describe_stack_events::DescribeStackEventsOutput::builder()
                    .set_stack_events(Some(evs))
                    .build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::create_stack).then_compute_output(move |i| {
                let now = s.now();
                let mut w = s.world.lock().unwrap();
                let name = i.stack_name().unwrap().to_string();
                w.calls.push(format!("cfn.CreateStack {name}"));
                let st = w.stacks.get_mut(&name).expect("a scripted stack");
                st.created = Some(now);
                st.template = i.template_body().unwrap_or_default().to_string();
                st.parameters = i
                    .parameters()
                    .iter()
                    .map(|p| {
                        (
                            p.parameter_key().unwrap().to_string(),
                            p.parameter_value().unwrap().to_string(),
                        )
                    })
                    .collect();
                cfn::operation::create_stack::CreateStackOutput::builder()
                    .stack_id(&st.arn)
                    .build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::delete_stack).then_compute_output(move |i| {
                let now = s.now();
                let mut w = s.world.lock().unwrap();
                let name = stack_name_of(i.stack_name(), &w).expect("a scripted stack");
                w.calls.push(format!("cfn.DeleteStack {name}"));
                let st = w.stacks.get_mut(&name).unwrap();
                st.deletes.push(now);
                st.retained.push(i.retain_resources().to_vec());
                cfn::operation::delete_stack::DeleteStackOutput::builder().build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::list_stack_resources).then_compute_output(move |i| {
                let now = s.now();
                let w = s.world.lock().unwrap();
                let mut b =
                    cfn::operation::list_stack_resources::ListStackResourcesOutput::builder();
                if let Some(k) = stack_name_of(i.stack_name(), &w) {
                    let mut latest: BTreeMap<String, (String, String)> = BTreeMap::new();
                    for (_, step) in w.stacks[&k].happened(now) {
                        if step.kind != "AWS::CloudFormation::Stack" {
                            latest.insert(
                                step.logical.clone(),
                                (step.kind.clone(), step.status.clone()),
                            );
                        }
                    }
                    for (l, (kind, status)) in latest {
                        let physical = if l == "ArtifactsBucket" {
                            "clawster-artifacts-123456789012-us-east-1".to_string()
                        } else {
                            format!("{}-phys", l.to_lowercase())
                        };
                        b = b.stack_resource_summaries(
                            cfn::types::StackResourceSummary::builder()
                                .logical_resource_id(&l)
                                .physical_resource_id(physical)
                                .resource_type(kind)
                                .resource_status(cfn::types::ResourceStatus::from(status.as_str()))
                                .last_updated_timestamp(DateTime::from_secs(T0))
                                .build(),
                        );
                    }
                }
                b.build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::describe_stack_resources).then_compute_output(move |i| {
                let now = s.now();
                let w = s.world.lock().unwrap();
                let mut b =
                    cfn::operation::describe_stack_resources::DescribeStackResourcesOutput::builder(
                    );
                if let Some(k) = stack_name_of(i.stack_name(), &w) {
                    let st = &w.stacks[&k];
                    let mut latest: BTreeMap<String, (String, String)> = BTreeMap::new();
                    for (_, step) in st.happened(now) {
                        if step.kind != "AWS::CloudFormation::Stack" {
                            latest.insert(
                                step.logical.clone(),
                                (step.kind.clone(), step.status.clone()),
                            );
                        }
                    }
                    for (l, (kind, status)) in latest {
                        b = b.stack_resources(
                            cfn::types::StackResource::builder()
                                .logical_resource_id(&l)
                                .physical_resource_id(format!("{}-phys", l.to_lowercase()))
                                .resource_type(kind)
                                .resource_status(cfn::types::ResourceStatus::from(status.as_str()))
                                .timestamp(DateTime::from_secs(T0))
                                .build(),
                        );
                    }
                }
                b.build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::list_exports).then_compute_output(move |_| {
                let now = s.now();
                let w = s.world.lock().unwrap();
                let mut b = cfn::operation::list_exports::ListExportsOutput::builder();
                if let Some(sh) = w
                    .stacks
                    .values()
                    .find(|st| st.name.starts_with("clawster-shared-"))
                {
                    if sh.stack(now).is_some() {
                        for e in clawsterctl::shared::EXPORTS {
                            b = b.exports(
                                cfn::types::Export::builder()
                                    .name(format!("{}-{e}", sh.name))
                                    .value("x")
                                    .exporting_stack_id(&sh.arn)
                                    .build(),
                            );
                        }
                    }
                }
                b.build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::list_imports).then_compute_response(move |i| {
                let w = s.world.lock().unwrap();
                let export = i.export_name().unwrap_or_default();
                match w.imports.get(export) {
                    Some(v) => MockResponse::Output(
                        cfn::operation::list_imports::ListImportsOutput::builder()
                            .set_imports(Some(v.clone()))
                            .build(),
                    ),
                    None => MockResponse::Error(
                        cfn::operation::list_imports::ListImportsError::generic(meta(
                            "ValidationError",
                            &format!("Export '{export}' is not imported by any stack."),
                        )),
                    ),
                }
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::get_template).then_compute_output(move |i| {
                let w = s.world.lock().unwrap();
                let body = stack_name_of(i.stack_name(), &w)
                    .map(|k| w.stacks[&k].template.clone())
                    .unwrap_or_default();
                cfn::operation::get_template::GetTemplateOutput::builder()
                    .template_body(body)
                    .build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::continue_update_rollback).then_compute_output(move |i| {
                let now = s.now();
                let mut w = s.world.lock().unwrap();
                let name = stack_name_of(i.stack_name(), &w).unwrap();
                w.calls.push(format!(
                    "cfn.ContinueUpdateRollback {name} skip {:?}",
                    i.resources_to_skip()
                ));
                let st = w.stacks.get_mut(&name).unwrap();
                st.continued = Some(now);
                st.skipped = i.resources_to_skip().to_vec();
                cfn::operation::continue_update_rollback::ContinueUpdateRollbackOutput::builder()
                    .build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::create_change_set).then_compute_output(move |i| {
                let mut w = s.world.lock().unwrap();
                let name = stack_name_of(i.stack_name(), &w).unwrap();
                w.calls.push(format!("cfn.CreateChangeSet {name}"));
                cfn::operation::create_change_set::CreateChangeSetOutput::builder()
                    .id(format!(
                        "arn:aws:cloudformation:us-east-1:123456789012:changeSet/{}/1",
                        i.change_set_name().unwrap_or_default()
                    ))
                    .stack_id(&w.stacks[&name].arn)
                    .build()
            }),
        );
        let s = self.clone();
        rules.push(mock!(cfn::Client::describe_change_set).then_compute_output(move |i| {
            let w = s.world.lock().unwrap();
            let name = stack_name_of(i.stack_name(), &w).unwrap();
            let st = &w.stacks[&name];
            let b = cfn::operation::describe_change_set::DescribeChangeSetOutput::builder();
            if st.changes.is_empty() {
                return b
                    .status(cfn::types::ChangeSetStatus::Failed)
                    .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                    .build();
            }
            let mut b = b.status(cfn::types::ChangeSetStatus::CreateComplete);
            for (action, logical, kind, replacement) in &st.changes {
                b = b.changes(
                    cfn::types::Change::builder()
                        .r#type(cfn::types::ChangeType::Resource)
                        .resource_change(
                            cfn::types::ResourceChange::builder()
                                .action(cfn::types::ChangeAction::from(*action))
                                .logical_resource_id(*logical)
                                .resource_type(*kind)
                                .replacement(cfn::types::Replacement::from(*replacement))
                                .build(),
                        )
                        .build(),
                );
            }
            b.build()
        }));
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::delete_change_set).then_compute_output(move |_| {
                s.world
                    .lock()
                    .unwrap()
                    .calls
                    .push("cfn.DeleteChangeSet".into());
                cfn::operation::delete_change_set::DeleteChangeSetOutput::builder().build()
            }),
        );
        let s = self.clone();
        rules.push(
            mock!(cfn::Client::execute_change_set).then_compute_output(move |i| {
                let now = s.now();
                let mut w = s.world.lock().unwrap();
                let name = stack_name_of(i.stack_name(), &w).unwrap();
                w.calls.push(format!("cfn.ExecuteChangeSet {name}"));
                w.stacks.get_mut(&name).unwrap().updated = Some(now);
                cfn::operation::execute_change_set::ExecuteChangeSetOutput::builder().build()
            }),
        );
        rules
    }

    /// The clients of every service, answering from this world.
    pub fn aws(&self) -> Aws {
        let cfn_rules = self.cfn_rules();
        let cfn = mock_client!(cfn, RuleMode::MatchAny, &cfn_rules, |c| c
            .retry_config(cfn::config::retry::RetryConfig::disabled()));

        // S3: nothing there until put.
        use aws_sdk_s3 as s3;
        let s = self.clone();
        let head = mock!(s3::Client::head_object).then_compute_response(move |i| {
            let w = s.world.lock().unwrap();
            if w.objects.iter().any(|k| Some(k.as_str()) == i.key()) {
                MockResponse::Output(
                    s3::operation::head_object::HeadObjectOutput::builder().build(),
                )
            } else {
                MockResponse::Error(s3::operation::head_object::HeadObjectError::NotFound(
                    s3::types::error::NotFound::builder().build(),
                ))
            }
        });
        let s = self.clone();
        let put = mock!(s3::Client::put_object).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            let k = i.key().unwrap_or_default().to_string();
            w.calls.push(format!("s3.PutObject {k}"));
            w.objects.push(k);
            s3::operation::put_object::PutObjectOutput::builder().build()
        });
        // Every object has one version ("v1"); a delete without a version id leaves a marker.
        let s = self.clone();
        let versions = mock!(s3::Client::list_object_versions).then_compute_output(move |i| {
            let w = s.world.lock().unwrap();
            let prefix = i.prefix().unwrap_or_default();
            let mut b = s3::operation::list_object_versions::ListObjectVersionsOutput::builder();
            for k in w.objects.iter().filter(|k| k.starts_with(prefix)) {
                b = b.versions(
                    s3::types::ObjectVersion::builder()
                        .key(k)
                        .version_id("v1")
                        .build(),
                );
            }
            b.build()
        });
        let s = self.clone();
        let list = mock!(s3::Client::list_objects_v2).then_compute_output(move |i| {
            let w = s.world.lock().unwrap();
            let prefix = i.prefix().unwrap_or_default();
            let mut b = s3::operation::list_objects_v2::ListObjectsV2Output::builder();
            for k in w
                .objects
                .iter()
                .filter(|k| k.starts_with(prefix) && !w.deleted.contains(k))
            {
                b = b.contents(s3::types::Object::builder().key(k).build());
            }
            b.build()
        });
        let s = self.clone();
        let delete = mock!(s3::Client::delete_objects).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            let objects = i.delete().map(|d| d.objects().to_vec()).unwrap_or_default();
            for o in &objects {
                let k = o.key().to_string();
                match o.version_id() {
                    Some(v) => {
                        w.calls.push(format!("s3.DeleteObjects {k} version {v}"));
                        w.objects.retain(|x| x != &k);
                    }
                    None => {
                        w.calls.push(format!("s3.DeleteObjects {k} (marker)"));
                        w.deleted.push(k);
                    }
                }
            }
            s3::operation::delete_objects::DeleteObjectsOutput::builder().build()
        });
        let s3c = mock_client!(
            s3,
            RuleMode::MatchAny,
            [&head, &put, &versions, &list, &delete],
            |c| c.retry_config(s3::config::retry::RetryConfig::disabled())
        );

        // Secrets Manager.
        use aws_sdk_secretsmanager as sm;
        let s = self.clone();
        let describe = mock!(sm::Client::describe_secret).then_compute_response(move |i| {
            let w = s.world.lock().unwrap();
            match w.secrets.get(i.secret_id().unwrap_or_default()) {
                Some((arn, _)) => MockResponse::Output(
                    sm::operation::describe_secret::DescribeSecretOutput::builder()
                        .arn(arn)
                        .name(i.secret_id().unwrap_or_default())
                        .build(),
                ),
                None => MockResponse::Error(
                    sm::operation::describe_secret::DescribeSecretError::ResourceNotFoundException(
                        sm::types::error::ResourceNotFoundException::builder()
                            .message("Secrets Manager can't find the specified secret.")
                            .build(),
                    ),
                ),
            }
        });
        let s = self.clone();
        let get_value = mock!(sm::Client::get_secret_value).then_compute_response(move |i| {
            let mut w = s.world.lock().unwrap();
            let name = i.secret_id().unwrap_or_default().to_string();
            w.calls.push(format!("secrets.GetSecretValue {name}"));
            match w.secrets.get(&name) {
                Some((arn, value)) => MockResponse::Output(
                    sm::operation::get_secret_value::GetSecretValueOutput::builder()
                        .arn(arn)
                        .name(&name)
                        .secret_string(value)
                        .build(),
                ),
                None => MockResponse::Error(
                    sm::operation::get_secret_value::GetSecretValueError::ResourceNotFoundException(
                        sm::types::error::ResourceNotFoundException::builder()
                            .message("Secrets Manager can't find the specified secret.")
                            .build(),
                    ),
                ),
            }
        });
        let s = self.clone();
        let create = mock!(sm::Client::create_secret).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            let name = i.name().unwrap().to_string();
            let arn = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf");
            w.calls.push(format!("secrets.CreateSecret {name}"));
            w.secrets.insert(
                name.clone(),
                (
                    arn.clone(),
                    i.secret_string().unwrap_or_default().to_string(),
                ),
            );
            sm::operation::create_secret::CreateSecretOutput::builder()
                .arn(arn)
                .name(name)
                .build()
        });
        let s = self.clone();
        let put_value = mock!(sm::Client::put_secret_value).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            let name = i.secret_id().unwrap().to_string();
            w.calls.push(format!("secrets.PutSecretValue {name}"));
            let arn = w
                .secrets
                .get(&name)
                .map(|x| x.0.clone())
                .unwrap_or_default();
            w.secrets.insert(
                name.clone(),
                (
                    arn.clone(),
                    i.secret_string().unwrap_or_default().to_string(),
                ),
            );
            sm::operation::put_secret_value::PutSecretValueOutput::builder()
                .arn(arn)
                .name(name)
                .build()
        });
        let s = self.clone();
        let delete = mock!(sm::Client::delete_secret).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            let name = i.secret_id().unwrap().to_string();
            w.calls.push(format!(
                "secrets.DeleteSecret {name} force={:?}",
                i.force_delete_without_recovery()
            ));
            w.secrets.remove(&name);
            sm::operation::delete_secret::DeleteSecretOutput::builder().build()
        });
        let s = self.clone();
        let random = mock!(sm::Client::get_random_password).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            w.calls.push("secrets.GetRandomPassword".to_string());
            let n = usize::try_from(i.password_length().unwrap_or(32)).unwrap_or(32);
            let token = format!("scripted{}", w.calls.len());
            sm::operation::get_random_password::GetRandomPasswordOutput::builder()
                .random_password(format!("{token:x<n$}"))
                .build()
        });
        let secrets = mock_client!(
            sm,
            RuleMode::MatchAny,
            [&describe, &get_value, &create, &put_value, &delete, &random],
            |c| c.retry_config(sm::config::retry::RetryConfig::disabled())
        );

        // EC2: the NAT route turns active at a scripted second.
        use aws_sdk_ec2 as ec2;
        let s = self.clone();
        let routes = mock!(ec2::Client::describe_route_tables).then_compute_output(move |_| {
            let now = s.now().as_secs();
            let w = s.world.lock().unwrap();
            let active = w.nat_active_at.is_some_and(|t| now >= t);
            ec2::operation::describe_route_tables::DescribeRouteTablesOutput::builder()
                .route_tables(
                    ec2::types::RouteTable::builder()
                        .route_table_id("rtb-0private")
                        .routes(
                            ec2::types::Route::builder()
                                .destination_cidr_block("10.0.0.0/16")
                                .gateway_id("local")
                                .state(ec2::types::RouteState::Active)
                                .build(),
                        )
                        .routes(
                            ec2::types::Route::builder()
                                .destination_cidr_block("0.0.0.0/0")
                                .instance_id("i-0nat")
                                .state(if active {
                                    ec2::types::RouteState::Active
                                } else {
                                    ec2::types::RouteState::Blackhole
                                })
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let s = self.clone();
        let instances = mock!(ec2::Client::describe_instances).then_compute_output(move |_| {
            let now = s.now().as_secs();
            let w = s.world.lock().unwrap();
            let running = w.nat_active_at.is_some_and(|t| now >= t);
            ec2::operation::describe_instances::DescribeInstancesOutput::builder()
                .reservations(
                    ec2::types::Reservation::builder()
                        .instances(
                            ec2::types::Instance::builder()
                                .instance_id("i-0nat")
                                .state(
                                    ec2::types::InstanceState::builder()
                                        .name(if running {
                                            ec2::types::InstanceStateName::Running
                                        } else {
                                            ec2::types::InstanceStateName::Pending
                                        })
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let ec2c = mock_client!(ec2, RuleMode::MatchAny, [&routes, &instances], |c| c
            .retry_config(ec2::config::retry::RetryConfig::disabled()));

        // ECS and the target: scripted after UpdateService(desired 1).
        use aws_sdk_ecs as ecs;
        let s = self.clone();
        let update = mock!(ecs::Client::update_service).then_compute_output(move |i| {
            let now = s.now();
            let mut w = s.world.lock().unwrap();
            w.calls.push(format!(
                "ecs.UpdateService {} desired {:?}{}",
                i.service().unwrap_or_default(),
                i.desired_count(),
                if i.force_new_deployment() == Some(true) {
                    " force new deployment"
                } else {
                    ""
                }
            ));
            if i.desired_count() == Some(1) {
                w.started = Some(now);
            }
            ecs::operation::update_service::UpdateServiceOutput::builder().build()
        });
        let s = self.clone();
        let services = mock!(ecs::Client::describe_services).then_compute_output(move |i| {
            let now = s.now();
            let w = s.world.lock().unwrap();
            let since = w.started.map(|t| now.saturating_sub(t).as_secs());
            let before = i32::from(w.running_before);
            let mut svc = ecs::types::Service::builder()
                .service_name(i.services().first().cloned().unwrap_or_default())
                .desired_count(before)
                .running_count(before)
                .pending_count(0);
            if let Some(since) = since {
                let cur = w.service.iter().rfind(|x| x.0 <= since);
                if let Some((_, d, r, p, rollout, _)) = cur {
                    svc = svc
                        .desired_count(*d)
                        .running_count(*r)
                        .pending_count(*p)
                        .deployments(
                            ecs::types::Deployment::builder()
                                .id("ecs-svc/1")
                                .status("PRIMARY")
                                .rollout_state(ecs::types::DeploymentRolloutState::from(*rollout))
                                .build(),
                        );
                }
                let mut events: Vec<_> = w
                    .service
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| x.0 <= since && x.5.is_some())
                    .map(|(n, x)| {
                        ecs::types::ServiceEvent::builder()
                            .id(format!("ev-{n}"))
                            .message(x.5.unwrap())
                            .created_at(aws_sdk_ecs::primitives::DateTime::from_secs(
                                T0 + x.0 as i64,
                            ))
                            .build()
                    })
                    .collect();
                events.reverse();
                svc = svc.set_events(Some(events));
            }
            ecs::operation::describe_services::DescribeServicesOutput::builder()
                .services(svc.build())
                .build()
        });
        let s = self.clone();
        let list_tasks = mock!(ecs::Client::list_tasks).then_compute_output(move |_| {
            let now = s.now();
            let w = s.world.lock().unwrap();
            let since = w.started.map(|t| now.saturating_sub(t).as_secs());
            let arns = w
                .stopped
                .iter()
                .filter(|x| since.is_some_and(|s| x.0 <= s))
                .map(|x| {
                    format!(
                        "arn:aws:ecs:us-east-1:123456789012:task/clawster-demo/{}",
                        x.1
                    )
                })
                .collect();
            ecs::operation::list_tasks::ListTasksOutput::builder()
                .set_task_arns(Some(arns))
                .build()
        });
        let s = self.clone();
        let describe_tasks = mock!(ecs::Client::describe_tasks).then_compute_output(move |i| {
            let w = s.world.lock().unwrap();
            let mut b = ecs::operation::describe_tasks::DescribeTasksOutput::builder();
            for arn in i.tasks() {
                let id = arn.rsplit('/').next().unwrap_or_default();
                if let Some(t) = w.stopped.iter().find(|x| x.1 == id) {
                    b = b.tasks(
                        ecs::types::Task::builder()
                            .task_arn(arn)
                            .last_status("STOPPED")
                            .stopped_reason(t.2)
                            .build(),
                    );
                }
            }
            b.build()
        });
        let ecsc = mock_client!(
            ecs,
            RuleMode::MatchAny,
            [&update, &services, &list_tasks, &describe_tasks],
            |c| c.retry_config(ecs::config::retry::RetryConfig::disabled())
        );

        use aws_sdk_elasticloadbalancingv2 as elb;
        let s = self.clone();
        let health = mock!(elb::Client::describe_target_health).then_compute_output(move |_| {
            let now = s.now();
            let w = s.world.lock().unwrap();
            let since = w.started.map(|t| now.saturating_sub(t).as_secs());
            let mut b =
                elb::operation::describe_target_health::DescribeTargetHealthOutput::builder();
            if let Some((_, state, reason)) =
                since.and_then(|s| w.targets.iter().rfind(|x| x.0 <= s))
            {
                b = b.target_health_descriptions(
                    elb::types::TargetHealthDescription::builder()
                        .target(
                            elb::types::TargetDescription::builder()
                                .id("10.0.16.20")
                                .port(18789)
                                .build(),
                        )
                        .target_health(
                            elb::types::TargetHealth::builder()
                                .state(elb::types::TargetHealthStateEnum::from(*state))
                                .set_reason(reason.map(elb::types::TargetHealthReasonEnum::from))
                                .build(),
                        )
                        .build(),
                );
            }
            b.build()
        });
        let elbc = mock_client!(elb, RuleMode::MatchAny, [&health], |c| c
            .retry_config(elb::config::retry::RetryConfig::disabled()));

        Aws {
            region: "us-east-1".parse().unwrap(),
            cfn,
            s3: s3c,
            secrets,
            // Deploys here name their image by digest: ECR is never called.
            ecr: mock_client!(aws_sdk_ecr, RuleMode::MatchAny, [] as [&Rule; 0]),
            ecs: ecsc,
            elb: elbc,
            ec2: ec2c,
            ssm: self.ssm_client(),
            autoscaling: self.autoscaling_client(),
        }
    }

    /// The bot's group: `hosts` in service; after a terminate, a new host 60 s later.
    fn autoscaling_client(&self) -> aws_sdk_autoscaling::Client {
        use aws_sdk_autoscaling as asg;
        let s = self.clone();
        let groups = mock!(asg::Client::describe_auto_scaling_groups).then_compute_output(move |_| {
            let now = s.now();
            let w = s.world.lock().unwrap();
            let mut hosts = w.hosts.clone();
            if w.terminated.is_some_and(|t| now.saturating_sub(t).as_secs() >= 60) {
                hosts.push("i-0bbb0000000000002".into());
            }
            let mut g = asg::types::AutoScalingGroup::builder().auto_scaling_group_name("g");
            for h in hosts {
                g = g.instances(
                    asg::types::Instance::builder()
                        .instance_id(h)
                        .lifecycle_state(asg::types::LifecycleState::InService)
                        .build(),
                );
            }
            asg::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(g.build())
                .build()
        });
        let s = self.clone();
        let terminate = mock!(asg::Client::terminate_instance_in_auto_scaling_group)
            .then_compute_output(move |i| {
                let now = s.now();
                let mut w = s.world.lock().unwrap();
                let id = i.instance_id().unwrap_or_default().to_string();
                w.calls.push(format!("autoscaling.TerminateInstanceInAutoScalingGroup {id}"));
                w.hosts.retain(|h| h != &id);
                w.terminated = Some(now);
                asg::operation::terminate_instance_in_auto_scaling_group::TerminateInstanceInAutoScalingGroupOutput::builder().build()
            });
        mock_client!(asg, RuleMode::MatchAny, [&groups, &terminate], |c| c
            .retry_config(asg::config::retry::RetryConfig::disabled()))
    }

    /// SSM: every host online; every command answers Success with `sync_answer`.
    fn ssm_client(&self) -> aws_sdk_ssm::Client {
        use aws_sdk_ssm as ssm;
        let info = mock!(ssm::Client::describe_instance_information).then_compute_output(|i| {
            let id = i
                .filters()
                .first()
                .and_then(|f| f.values().first().cloned())
                .unwrap_or_default();
            ssm::operation::describe_instance_information::DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    ssm::types::InstanceInformation::builder()
                        .instance_id(id)
                        .ping_status(ssm::types::PingStatus::Online)
                        .build(),
                )
                .build()
        });
        let s = self.clone();
        let send = mock!(ssm::Client::send_command).then_compute_output(move |i| {
            s.world.lock().unwrap().calls.push(format!(
                "ssm.SendCommand {} {:?}",
                i.instance_ids().join(","),
                i.parameters()
                    .and_then(|p| p.get("action").cloned())
                    .unwrap_or_default()
            ));
            ssm::operation::send_command::SendCommandOutput::builder()
                .command(ssm::types::Command::builder().command_id("c-1").build())
                .build()
        });
        let s = self.clone();
        let get = mock!(ssm::Client::get_command_invocation).then_compute_output(move |_| {
            let w = s.world.lock().unwrap();
            ssm::operation::get_command_invocation::GetCommandInvocationOutput::builder()
                .status(ssm::types::CommandInvocationStatus::Success)
                .response_code(0)
                .standard_output_content(w.sync_answer.clone())
                .build()
        });
        mock_client!(ssm, RuleMode::MatchAny, [&info, &send, &get], |c| c
            .retry_config(ssm::config::retry::RetryConfig::disabled()))
    }
}

/// The shared stack's outputs.
pub fn shared_outputs() -> Vec<(String, String)> {
    [
        ("ArtifactsBucketName", "clawster-shared-artifacts-abc123"),
        ("PrivateRouteTableId", "rtb-0private"),
        ("NatInstanceId", "i-0nat"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The bot stack's outputs.
pub fn bot_outputs(bot: &str) -> Vec<(String, String)> {
    [
        ("Url", format!("http://clawster-{bot}-1234567890.us-east-1.elb.amazonaws.com")),
        ("ClusterName", format!("clawster-{bot}")),
        ("ServiceName", format!("clawster-{bot}")),
        ("TargetGroupArn", format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/clawster-{bot}/0123456789abcdef")),
        ("AutoScalingGroupName", format!("clawster-bot-{bot}-AutoScalingGroup-ABC")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
