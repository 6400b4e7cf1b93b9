//! Scripted AWS for `restore` (and the SSM side of `backup`): the two stacks' outputs, the
//! bot's Auto Scaling group, its ECS service and target on a virtual clock (the task stops a few
//! seconds after `desired 0`, starts and turns healthy some seconds after `desired 1`), and SSM
//! answers per document action. Every call that changes something is logged in order.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation as cfn;
use aws_sdk_ecs as ecs;
use aws_sdk_ssm as ssm;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use clawsterctl::aws::Aws;
use clawsterctl::pace::Pace;

use super::sim::{bot_outputs, shared_outputs};
use super::ssm_sim::{HOST, OPS_DOC};

/// One final SSM answer: status, response code, stdout, stderr.
pub type Answer = (&'static str, i32, String, String);

/// The scripted world.
#[derive(Debug, Clone)]
pub struct StateWorld {
    /// Desired count of the service.
    pub desired: i32,
    /// Tasks running before anything changed.
    pub running_at_start: i32,
    /// When the desired count last changed (virtual time).
    pub changed: Option<Duration>,
    /// Seconds a task takes to stop after `desired 0`.
    pub stop_secs: u64,
    /// Seconds a task takes to run after `desired 1`.
    pub start_secs: u64,
    /// Seconds until the target is healthy after `desired 1`.
    pub healthy_secs: u64,
    /// SSM answers by document action (absent: Success, exit 0, no output).
    pub answers: BTreeMap<String, Answer>,
    /// The action of the last SendCommand.
    pub last_action: String,
    /// Calls that change something, and SendCommands with their parameters, in order.
    pub calls: Vec<String>,
    /// The group's instances in service.
    pub hosts: Vec<String>,
    /// When TerminateInstanceInAutoScalingGroup was called.
    pub terminated: Option<Duration>,
    /// Seconds until the replacement host is in service after a terminate.
    pub launch_secs: u64,
}

/// The id of the host the group launches after a terminate.
pub const NEW_HOST: &str = "i-0c0ffee0c0ffee0c0";

impl Default for StateWorld {
    fn default() -> Self {
        Self {
            desired: 1,
            running_at_start: 1,
            changed: None,
            stop_secs: 20,
            start_secs: 40,
            healthy_secs: 70,
            answers: BTreeMap::new(),
            last_action: String::new(),
            calls: Vec::new(),
            hosts: vec![HOST.to_string()],
            terminated: None,
            launch_secs: 90,
        }
    }
}

impl StateWorld {
    /// (running, pending, target healthy) at `now`.
    fn service(&self, now: Duration) -> (i32, i32, bool) {
        let Some(changed) = self.changed else {
            return (self.running_at_start, 0, self.running_at_start > 0);
        };
        let since = now.saturating_sub(changed).as_secs();
        if self.desired == 0 {
            let r = i32::from(since < self.stop_secs);
            (r, 0, false)
        } else {
            let r = i32::from(since >= self.start_secs);
            (r, 1 - r, since >= self.healthy_secs)
        }
    }
}

/// The world and its clock.
#[derive(Clone)]
pub struct StateSim {
    /// The world.
    pub world: Arc<Mutex<StateWorld>>,
    /// The run's virtual clock.
    pub pace: Pace,
}

fn meta(code: &str, msg: &str) -> cfn::error::ErrorMetadata {
    cfn::error::ErrorMetadata::builder()
        .code(code)
        .message(msg)
        .build()
}

fn stack(name: &str, outputs: Vec<(String, String)>) -> cfn::types::Stack {
    let mut b = cfn::types::Stack::builder()
        .stack_name(name)
        .stack_id(format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/0f0e0d0c-1111-2222-3333-444455556666"
        ))
        .stack_status(cfn::types::StackStatus::CreateComplete)
        .creation_time(cfn::primitives::DateTime::from_secs(super::sim::T0));
    for (k, v) in outputs {
        b = b.outputs(
            cfn::types::Output::builder()
                .output_key(k)
                .output_value(v)
                .build(),
        );
    }
    b.build()
}

impl StateSim {
    /// A world on a virtual clock polling every 5 s.
    pub fn new(world: StateWorld) -> Self {
        Self {
            world: Arc::new(Mutex::new(world)),
            pace: Pace::virtual_time(Duration::from_secs(5)),
        }
    }

    /// The calls logged.
    pub fn calls(&self) -> Vec<String> {
        self.world.lock().unwrap().calls.clone()
    }

    /// Clients answering from this world.
    pub fn aws(&self) -> Aws {
        let stacks = mock!(cfn::Client::describe_stacks).then_compute_response(move |i| {
            let name = i.stack_name().unwrap_or_default().to_string();
            let mut shared = shared_outputs();
            shared.push(("OpsDocumentName".into(), OPS_DOC.into()));
            let found = match name.as_str() {
                "clawster-shared-us-east-1" => Some(stack(&name, shared)),
                "clawster-bot-demo" => Some(stack(&name, bot_outputs("demo"))),
                _ => None,
            };
            match found {
                Some(st) => MockResponse::Output(
                    cfn::operation::describe_stacks::DescribeStacksOutput::builder()
                        .stacks(st)
                        .build(),
                ),
                None => MockResponse::Error(
                    cfn::operation::describe_stacks::DescribeStacksError::generic(meta(
                        "ValidationError",
                        &format!("Stack with id {name} does not exist"),
                    )),
                ),
            }
        });
        let cfnc = mock_client!(cfn, RuleMode::MatchAny, [&stacks], |c| c
            .retry_config(cfn::config::retry::RetryConfig::disabled()));

        use aws_sdk_autoscaling as asg;
        let s = self.clone();
        let groups = mock!(asg::Client::describe_auto_scaling_groups).then_compute_output(move |i| {
            let now = s.pace.elapsed();
            let w = s.world.lock().unwrap();
            let mut hosts = w.hosts.clone();
            if w.terminated.is_some_and(|t| now.saturating_sub(t).as_secs() >= w.launch_secs) {
                hosts.push(NEW_HOST.to_string());
            }
            let mut g = asg::types::AutoScalingGroup::builder()
                .auto_scaling_group_name(i.auto_scaling_group_names().first().cloned().unwrap_or_default())
                .min_size(0)
                .max_size(1)
                .desired_capacity(1);
            for h in hosts {
                g = g.instances(
                    asg::types::Instance::builder()
                        .instance_id(h)
                        .lifecycle_state(asg::types::LifecycleState::InService)
                        .health_status("Healthy")
                        .availability_zone("us-east-1a")
                        .protected_from_scale_in(true)
                        .build(),
                );
            }
            asg::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(g.build())
                .build()
        });
        let s = self.clone();
        let terminate = mock!(asg::Client::terminate_instance_in_auto_scaling_group).then_compute_output(move |i| {
            let now = s.pace.elapsed();
            let mut w = s.world.lock().unwrap();
            let id = i.instance_id().unwrap_or_default().to_string();
            w.calls.push(format!(
                "autoscaling.TerminateInstanceInAutoScalingGroup {id} decrement {:?}",
                i.should_decrement_desired_capacity()
            ));
            w.hosts.retain(|h| h != &id);
            w.terminated = Some(now);
            asg::operation::terminate_instance_in_auto_scaling_group::TerminateInstanceInAutoScalingGroupOutput::builder().build()
        });
        let asgc = mock_client!(asg, RuleMode::MatchAny, [&groups, &terminate], |c| c
            .retry_config(asg::config::retry::RetryConfig::disabled()));

        let info = mock!(ssm::Client::describe_instance_information).then_output(|| {
            ssm::operation::describe_instance_information::DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    ssm::types::InstanceInformation::builder()
                        .instance_id(HOST)
                        .ping_status(ssm::types::PingStatus::Online)
                        .build(),
                )
                .build()
        });
        let s = self.clone();
        let send = mock!(ssm::Client::send_command).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            let params: BTreeMap<String, Vec<String>> = i
                .parameters()
                .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            w.last_action = params
                .get("action")
                .and_then(|v| v.first().cloned())
                .unwrap_or_default();
            w.calls.push(format!(
                "ssm.SendCommand {} {} {:?}",
                i.document_name().unwrap_or_default(),
                i.instance_ids().join(","),
                params
            ));
            ssm::operation::send_command::SendCommandOutput::builder()
                .command(
                    ssm::types::Command::builder()
                        .command_id("5b1e7c2a-93d4-4f60-8a1b-2c3d4e5f6a7b")
                        .build(),
                )
                .build()
        });
        let s = self.clone();
        let get = mock!(ssm::Client::get_command_invocation).then_compute_output(move |i| {
            let w = s.world.lock().unwrap();
            let (status, code, stdout, stderr) = w
                .answers
                .get(&w.last_action)
                .cloned()
                .unwrap_or(("Success", 0, String::new(), String::new()));
            ssm::operation::get_command_invocation::GetCommandInvocationOutput::builder()
                .command_id(i.command_id().unwrap_or_default())
                .instance_id(i.instance_id().unwrap_or_default())
                .status(ssm::types::CommandInvocationStatus::from(status))
                .status_details(status)
                .response_code(code)
                .standard_output_content(stdout)
                .standard_error_content(stderr)
                .build()
        });
        let ssmc = mock_client!(ssm, RuleMode::MatchAny, [&info, &send, &get], |c| c
            .retry_config(ssm::config::retry::RetryConfig::disabled()));

        let s = self.clone();
        let update = mock!(ecs::Client::update_service).then_compute_output(move |i| {
            let now = s.pace.elapsed();
            let mut w = s.world.lock().unwrap();
            let d = i.desired_count().unwrap_or(w.desired);
            w.calls.push(format!("ecs.UpdateService desired {d}"));
            if d != w.desired {
                w.desired = d;
                w.changed = Some(now);
            }
            ecs::operation::update_service::UpdateServiceOutput::builder().build()
        });
        let s = self.clone();
        let services = mock!(ecs::Client::describe_services).then_compute_output(move |i| {
            let now = s.pace.elapsed();
            let w = s.world.lock().unwrap();
            let (running, pending, _) = w.service(now);
            let rollout = if running == w.desired && pending == 0 {
                ecs::types::DeploymentRolloutState::Completed
            } else {
                ecs::types::DeploymentRolloutState::InProgress
            };
            ecs::operation::describe_services::DescribeServicesOutput::builder()
                .services(
                    ecs::types::Service::builder()
                        .service_name(i.services().first().cloned().unwrap_or_default())
                        .desired_count(w.desired)
                        .running_count(running)
                        .pending_count(pending)
                        .deployments(
                            ecs::types::Deployment::builder()
                                .id("ecs-svc/1")
                                .status("PRIMARY")
                                .rollout_state(rollout)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let list_tasks = mock!(ecs::Client::list_tasks)
            .then_output(|| ecs::operation::list_tasks::ListTasksOutput::builder().build());
        let ecsc = mock_client!(
            ecs,
            RuleMode::MatchAny,
            [&update, &services, &list_tasks],
            |c| c.retry_config(ecs::config::retry::RetryConfig::disabled())
        );

        use aws_sdk_elasticloadbalancingv2 as elb;
        let s = self.clone();
        let health = mock!(elb::Client::describe_target_health).then_compute_output(move |_| {
            let now = s.pace.elapsed();
            let w = s.world.lock().unwrap();
            let (running, _, healthy) = w.service(now);
            let mut b =
                elb::operation::describe_target_health::DescribeTargetHealthOutput::builder();
            if running > 0 {
                b = b.target_health_descriptions(
                    elb::types::TargetHealthDescription::builder()
                        .target_health(
                            elb::types::TargetHealth::builder()
                                .state(if healthy {
                                    elb::types::TargetHealthStateEnum::Healthy
                                } else {
                                    elb::types::TargetHealthStateEnum::Initial
                                })
                                .build(),
                        )
                        .build(),
                );
            }
            b.build()
        });
        let elbc = mock_client!(elb, RuleMode::MatchAny, [&health], |c| c
            .retry_config(elb::config::retry::RetryConfig::disabled()));

        // S3: the bot's replica has a manifest; puts are logged.
        use aws_sdk_s3 as s3;
        let head = mock!(s3::Client::head_object)
            .then_output(|| s3::operation::head_object::HeadObjectOutput::builder().build());
        let s = self.clone();
        let put = mock!(s3::Client::put_object).then_compute_output(move |i| {
            s.world
                .lock()
                .unwrap()
                .calls
                .push(format!("s3.PutObject {}", i.key().unwrap_or_default()));
            s3::operation::put_object::PutObjectOutput::builder().build()
        });
        let s3c = mock_client!(s3, RuleMode::MatchAny, [&head, &put], |c| c
            .retry_config(s3::config::retry::RetryConfig::disabled()));

        let no_rules: [&Rule; 0] = [];
        Aws {
            region: "us-east-1".parse().unwrap(),
            cfn: cfnc,
            s3: s3c,
            secrets: mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, no_rules),
            ecr: mock_client!(aws_sdk_ecr, RuleMode::MatchAny, no_rules),
            ecs: ecsc,
            elb: elbc,
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, no_rules),
            ssm: ssmc,
            autoscaling: asgc,
        }
    }
}
