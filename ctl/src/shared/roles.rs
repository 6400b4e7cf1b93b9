//! The shared stack's IAM group: the bot hosts' instance role and profile, and the task roles every
//! bot stack imports.

use serde_json::json;

use super::{assume_role, managed_policy, read_artifacts_policy, ASSUME_EC2};
use crate::cfn::{r, resource, Resources};

/// Adds the roles the bot stacks import.
pub(super) fn build(res: &mut Resources) {
    res.add(
        "EcsInstanceRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster bot hosts: ECS container instance, SSM administration, reading the release artifacts",
                "AssumeRolePolicyDocument": assume_role(ASSUME_EC2),
                "ManagedPolicyArns": [
                    managed_policy("service-role/AmazonEC2ContainerServiceforEC2Role"),
                    managed_policy("AmazonSSMManagedInstanceCore")
                ],
                "Policies": [read_artifacts_policy()]
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "EcsInstanceProfile",
        resource(
            "AWS::IAM::InstanceProfile",
            json!({ "Roles": [r("EcsInstanceRole")] }),
            &[],
            &[],
        ),
    );
    res.add(
        "TaskExecutionRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster ECS task execution (image pull, logs) for tasks without secrets; each bot stack has its own execution role for its secrets",
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                "ManagedPolicyArns": [managed_policy("service-role/AmazonECSTaskExecutionRolePolicy")]
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "TaskRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster bot tasks at run time: deliberately no permissions, so a compromised bot cannot call AWS",
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com")
            }),
            &[],
            &[],
        ),
    );
}
