//! Scripted AWS for `window`, `health` and `logs`: the two stacks' outputs, the bot's Auto
//! Scaling group, SSM's view of the host and a script of GetCommandInvocation answers, one per
//! poll (the last repeats). Everything SendCommand receives is recorded.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudformation as cfn;
use aws_sdk_ssm as ssm;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use cfn::error::ErrorMetadata;
use clawsterctl::aws::Aws;

use super::sim::{bot_outputs, shared_outputs};

/// The bot host's instance id.
pub const HOST: &str = "i-0b07a1c3e5f7d9b21";
/// The window document's name (shared stack output `WindowDocumentName`).
pub const WINDOW_DOC: &str = "clawster-shared-us-east-1-WindowDocument-Xy12Ab34Cd56";
/// The operations document's name (output `OpsDocumentName`).
pub const OPS_DOC: &str = "clawster-shared-us-east-1-OpsDocument-Ef78Gh90Ij12";

/// What DescribeInstanceInformation says about the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// Registered, with this PingStatus (`Online`, `ConnectionLost`, `Inactive`).
    Status(&'static str),
    /// Not registered with SSM.
    Absent,
    /// HTTP 500 NotImplemented, as moto answers.
    NotImplemented,
}

/// One GetCommandInvocation answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// `InvocationDoesNotExist`.
    Missing,
    /// An answer.
    Inv {
        /// Status.
        status: &'static str,
        /// StatusDetails.
        details: &'static str,
        /// ResponseCode.
        code: i32,
        /// StandardOutputContent.
        stdout: String,
        /// StandardErrorContent.
        stderr: String,
    },
}

/// An answer still in progress.
pub fn pending(status: &'static str) -> Poll {
    Poll::Inv {
        status,
        details: status,
        code: -1,
        stdout: String::new(),
        stderr: String::new(),
    }
}

/// A final answer.
pub fn done(status: &'static str, code: i32, stdout: &str, stderr: &str) -> Poll {
    Poll::Inv {
        status,
        details: status,
        code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

/// What one SendCommand carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// DocumentName.
    pub document: String,
    /// InstanceIds.
    pub instances: Vec<String>,
    /// Number of Targets (must stay 0).
    pub targets: usize,
    /// Parameters.
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Comment.
    pub comment: String,
    /// TimeoutSeconds.
    pub timeout: Option<i32>,
}

/// The scripted world.
#[derive(Debug, Clone)]
pub struct SsmWorld {
    /// The bot stack `clawster-bot-demo` exists.
    pub bot_stack: bool,
    /// The group's instances: (id, lifecycle state).
    pub hosts: Vec<(String, String)>,
    /// SSM's view of the target instance.
    pub ping: Ping,
    /// GetCommandInvocation answers, one per poll; the last repeats.
    pub answers: Vec<Poll>,
    /// Polls so far.
    pub polls: usize,
    /// SendCommand calls.
    pub sent: Vec<Sent>,
}

impl Default for SsmWorld {
    fn default() -> Self {
        Self {
            bot_stack: true,
            hosts: vec![(HOST.into(), "InService".into())],
            ping: Ping::Status("Online"),
            answers: vec![done("Success", 0, "", "")],
            polls: 0,
            sent: Vec::new(),
        }
    }
}

/// The world behind scripted clients.
#[derive(Debug, Clone)]
pub struct SsmSim {
    /// Shared with the clients.
    pub world: Arc<Mutex<SsmWorld>>,
}

fn meta(code: &str, msg: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(msg).build()
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

impl SsmSim {
    /// A world.
    pub fn new(world: SsmWorld) -> Self {
        Self {
            world: Arc::new(Mutex::new(world)),
        }
    }

    /// What was sent.
    pub fn sent(&self) -> Vec<Sent> {
        self.world.lock().unwrap().sent.clone()
    }

    /// Polls made.
    pub fn polls(&self) -> usize {
        self.world.lock().unwrap().polls
    }

    /// Clients answering from this world.
    pub fn aws(&self) -> Aws {
        let s = self.clone();
        let stacks = mock!(cfn::Client::describe_stacks).then_compute_response(move |i| {
            let w = s.world.lock().unwrap();
            let name = i.stack_name().unwrap_or_default().to_string();
            let mut shared = shared_outputs();
            shared.push(("WindowDocumentName".into(), WINDOW_DOC.into()));
            shared.push(("OpsDocumentName".into(), OPS_DOC.into()));
            let found = match name.as_str() {
                "clawster-shared-us-east-1" => Some(stack(&name, shared)),
                "clawster-bot-demo" if w.bot_stack => Some(stack(&name, bot_outputs("demo"))),
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
        let groups = mock!(asg::Client::describe_auto_scaling_groups).then_compute_output(
            move |i| {
                let w = s.world.lock().unwrap();
                let name = i
                    .auto_scaling_group_names()
                    .first()
                    .cloned()
                    .unwrap_or_default();
                let mut g = asg::types::AutoScalingGroup::builder()
                    .auto_scaling_group_name(&name)
                    .min_size(0)
                    .max_size(1)
                    .desired_capacity(i32::try_from(w.hosts.len()).unwrap());
                for (id, state) in &w.hosts {
                    g = g.instances(
                        asg::types::Instance::builder()
                            .instance_id(id)
                            .lifecycle_state(asg::types::LifecycleState::from(state.as_str()))
                            .health_status("Healthy")
                            .availability_zone("us-east-1a")
                            .protected_from_scale_in(false)
                            .build(),
                    );
                }
                asg::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder()
                    .auto_scaling_groups(g.build())
                    .build()
            },
        );
        let asgc = mock_client!(asg, RuleMode::MatchAny, [&groups], |c| c
            .retry_config(asg::config::retry::RetryConfig::disabled()));

        let s = self.clone();
        let info = mock!(ssm::Client::describe_instance_information).then_compute_response(
            move |i| {
                let w = s.world.lock().unwrap();
                let id = i
                    .filters()
                    .iter()
                    .find(|f| f.key() == "InstanceIds")
                    .and_then(|f| f.values().first().cloned())
                    .unwrap_or_default();
                let out = ssm::operation::describe_instance_information::DescribeInstanceInformationOutput::builder();
                match w.ping {
                    Ping::NotImplemented => MockResponse::Http(
                        ssm::config::http::HttpResponse::new(
                            500.try_into().unwrap(),
                            aws_sdk_s3::primitives::ByteStream::from_static(
                                b"{\"__type\":\"NotImplemented\",\"message\":\"The describe_instance_information action has not been implemented\"}",
                            )
                            .into_inner(),
                        ),
                    ),
                    Ping::Absent => MockResponse::Output(out.build()),
                    Ping::Status(p) => MockResponse::Output(
                        out.instance_information_list(
                            ssm::types::InstanceInformation::builder()
                                .instance_id(id)
                                .ping_status(ssm::types::PingStatus::from(p))
                                .last_ping_date_time(ssm::primitives::DateTime::from_secs(
                                    super::sim::T0,
                                ))
                                .platform_type(ssm::types::PlatformType::Linux)
                                .build(),
                        )
                        .build(),
                    ),
                }
            },
        );
        let s = self.clone();
        let send = mock!(ssm::Client::send_command).then_compute_output(move |i| {
            let mut w = s.world.lock().unwrap();
            w.sent.push(Sent {
                document: i.document_name().unwrap_or_default().into(),
                instances: i.instance_ids().to_vec(),
                targets: i.targets().len(),
                parameters: i
                    .parameters()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                comment: i.comment().unwrap_or_default().into(),
                timeout: i.timeout_seconds(),
            });
            ssm::operation::send_command::SendCommandOutput::builder()
                .command(
                    ssm::types::Command::builder()
                        .command_id("5b1e7c2a-93d4-4f60-8a1b-2c3d4e5f6a7b")
                        .status(ssm::types::CommandStatus::Pending)
                        .build(),
                )
                .build()
        });
        let s = self.clone();
        let get = mock!(ssm::Client::get_command_invocation).then_compute_response(move |i| {
            let mut w = s.world.lock().unwrap();
            let n = w.polls.min(w.answers.len() - 1);
            w.polls += 1;
            match w.answers[n].clone() {
                Poll::Missing => MockResponse::Error(
                    ssm::operation::get_command_invocation::GetCommandInvocationError::InvocationDoesNotExist(
                        ssm::types::error::InvocationDoesNotExist::builder()
                            .meta(meta("InvocationDoesNotExist", ""))
                            .build(),
                    ),
                ),
                Poll::Inv {
                    status,
                    details,
                    code,
                    stdout,
                    stderr,
                } => MockResponse::Output(
                    ssm::operation::get_command_invocation::GetCommandInvocationOutput::builder()
                        .command_id(i.command_id().unwrap_or_default())
                        .instance_id(i.instance_id().unwrap_or_default())
                        .plugin_name("window")
                        .status(ssm::types::CommandInvocationStatus::from(status))
                        .status_details(details)
                        .response_code(code)
                        .standard_output_content(stdout)
                        .standard_error_content(stderr)
                        .build(),
                ),
            }
        });
        let ssmc = mock_client!(ssm, RuleMode::MatchAny, [&info, &send, &get], |c| c
            .retry_config(ssm::config::retry::RetryConfig::disabled()));

        let no_rules: [&Rule; 0] = [];
        Aws {
            region: "us-east-1".parse().unwrap(),
            cfn: cfnc,
            s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, no_rules),
            secrets: mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, no_rules),
            ecr: mock_client!(aws_sdk_ecr, RuleMode::MatchAny, no_rules),
            ecs: mock_client!(aws_sdk_ecs, RuleMode::MatchAny, no_rules),
            elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, no_rules),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, no_rules),
            ssm: ssmc,
            autoscaling: asgc,
        }
    }
}
