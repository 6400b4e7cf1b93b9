//! The bot stack's host group: the host's own instance role (its state prefix and nothing of
//! another bot's), the launch template whose UserData hands the boot to `clawster-agent`, the
//! one-host Auto Scaling group (desired 0), and the ECS cluster with its capacity provider over
//! that group.

use serde_json::{json, Value};

use super::{Ctx, ROOT_VOLUME_GB};
use crate::cfn::{self, get_att, import_shared, r, resource, sub_with, Resources};
use crate::manifest::ARTIFACTS_PREFIX;
use crate::shared::{assume_role, managed_policy, ASSUME_EC2};
use crate::userdata;

/// An ARN in the shared artifacts bucket: `arn:<partition>:s3:::<bucket><rest>`.
fn bucket_arn(rest: &str) -> Value {
    sub_with(
        &format!("arn:${{AWS::Partition}}:s3:::${{Bucket}}{rest}"),
        json!({ "Bucket": import_shared("ArtifactsBucketName") }),
    )
}

/// The host's inline policy: read the release binaries; read, write and delete the objects of
/// its own bot's state prefix (and read their older versions, for `restore --at`); list only
/// that prefix. No `s3:DeleteObjectVersion`: a host can replace its state but not erase its
/// history, which the bucket's lifecycle rule expires after the retention.
///
/// No KMS statement: the bucket encrypts with the account's AWS-managed `aws/s3` key, whose key
/// policy lets every principal of the account use it through S3 (`kms:ViaService`); IAM grants
/// would be needed only for a customer-managed key.
pub fn host_policy(bot: &str) -> Value {
    let prefix = format!("{}/{bot}/", crate::state::STATE_PREFIX);
    json!({
        "PolicyName": "release-artifacts-and-own-state",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadReleaseArtifacts",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": bucket_arn(&format!("/{ARTIFACTS_PREFIX}/*"))
                },
                {
                    "Sid": "ThisBotsStateObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": bucket_arn(&format!("/{prefix}*"))
                },
                {
                    "Sid": "ListOnlyThisBotsState",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                    "Resource": bucket_arn(""),
                    "Condition": { "StringLike": { "s3:prefix": [prefix.clone(), format!("{prefix}*")] } }
                }
            ]
        }
    })
}

/// The terminate lifecycle hook of the bot's group; `clawster-agent state run` completes it (the
/// agent names the same hook).
pub const LIFECYCLE_HOOK: &str = "clawster-final-sync";
/// How long a terminating host may take for its final state pass before the group lets it go:
/// the task's stop timeout (120 s) plus a full state pass with room to spare.
pub const LIFECYCLE_HOOK_TIMEOUT_SECONDS: u32 = 300;

/// The host role's second policy, apart from the role because it names the group, which
/// (through the launch template and the instance profile) depends on the role: find its own
/// group (DescribeAutoScalingInstances has no resource-level permissions) and complete the
/// terminate hook of that group only.
fn lifecycle_policy() -> Value {
    json!({
        "PolicyName": "complete-own-terminate-hook",
        "Roles": [r("HostRole")],
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "FindOwnGroup",
                    "Effect": "Allow",
                    "Action": "autoscaling:DescribeAutoScalingInstances",
                    "Resource": "*"
                },
                {
                    "Sid": "CompleteOwnGroupsHook",
                    "Effect": "Allow",
                    "Action": "autoscaling:CompleteLifecycleAction",
                    "Resource": crate::cfn::sub(
                        "arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*:autoScalingGroupName/${AutoScalingGroup}"
                    )
                }
            ]
        }
    })
}

/// Adds the host's instance role and profile: the managed policies of an ECS container instance
/// administered through SSM, plus [`host_policy`]. The bot's task runs with the shared, empty
/// task role and gets none of it.
pub(super) fn identity(c: &Ctx<'_>, res: &mut Resources) {
    let bot = c.bot;
    res.add(
        "HostRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": format!("Clawster bot {bot}'s host: ECS container instance, SSM administration, the release artifacts, and its own state under state/{bot}/ only"),
                "AssumeRolePolicyDocument": assume_role(ASSUME_EC2),
                "ManagedPolicyArns": [
                    managed_policy("service-role/AmazonEC2ContainerServiceforEC2Role"),
                    managed_policy("AmazonSSMManagedInstanceCore")
                ],
                "Policies": [host_policy(bot)]
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "HostInstanceProfile",
        resource(
            "AWS::IAM::InstanceProfile",
            json!({ "Roles": [r("HostRole")] }),
            &[],
            &[],
        ),
    );
}

/// Adds the launch template, the Auto Scaling group, the cluster and its capacity provider.
pub(super) fn build(c: &Ctx<'_>, res: &mut Resources) {
    let bot = c.bot;
    let cluster = &c.cluster;
    let o = c.o;
    let release = c.release;
    let private_subnets = c.private_subnets();
    let agent = release.agent(o.instance_type.arch());
    res.add(
        "LaunchTemplate",
        resource(
            "AWS::EC2::LaunchTemplate",
            json!({
                "LaunchTemplateName": format!("clawster-{bot}"),
                "LaunchTemplateData": {
                    "ImageId": r("EcsAmiId"),
                    "InstanceType": o.instance_type.as_str(),
                    "IamInstanceProfile": { "Arn": get_att("HostInstanceProfile", "Arn") },
                    "SecurityGroupIds": [r("InstanceSecurityGroup")],
                    "MetadataOptions": {
                        "HttpEndpoint": "enabled",
                        "HttpTokens": "required",
                        "HttpPutResponseHopLimit": 2
                    },
                    "BlockDeviceMappings": [{
                        "DeviceName": "/dev/xvda",
                        "Ebs": { "Encrypted": true, "VolumeType": "gp3", "VolumeSize": ROOT_VOLUME_GB, "DeleteOnTermination": true }
                    }],
                    "UserData": userdata::encode(
                        &userdata::bot_script(&release.object_key(agent), &agent.sha256, cluster, bot),
                        import_shared("ArtifactsBucketName")
                    ),
                    "TagSpecifications": [
                        { "ResourceType": "instance", "Tags": cfn::tags(json!(format!("clawster-{bot}-host"))) },
                        { "ResourceType": "volume", "Tags": cfn::tags(json!(format!("clawster-{bot}-host"))) }
                    ]
                }
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "AutoScalingGroup",
        resource(
            "AWS::AutoScaling::AutoScalingGroup",
            json!({
                "MinSize": "0",
                "MaxSize": "1",
                "DesiredCapacity": "0",
                "VPCZoneIdentifier": private_subnets,
                "LaunchTemplate": {
                    "LaunchTemplateId": r("LaunchTemplate"),
                    "Version": get_att("LaunchTemplate", "LatestVersionNumber")
                },
                "NewInstancesProtectedFromScaleIn": true,
                // Every termination (scale-in, instance refresh, a replacement, destroy) waits in
                // Terminating:Wait until the host's agent has stopped the bot, taken its final
                // state pass and released the lease, then completes this hook; an agent that
                // never answers lets the instance go after the timeout.
                "LifecycleHookSpecificationList": [{
                    "LifecycleHookName": LIFECYCLE_HOOK,
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "HeartbeatTimeout": LIFECYCLE_HOOK_TIMEOUT_SECONDS,
                    "DefaultResult": "CONTINUE"
                }],
                "Tags": [
                    { "Key": "Name", "Value": format!("clawster-{bot}-host"), "PropagateAtLaunch": true },
                    { "Key": "clawster:managed-by", "Value": "clawsterctl", "PropagateAtLaunch": true }
                ]
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "HostLifecyclePolicy",
        resource("AWS::IAM::Policy", lifecycle_policy(), &[], &[]),
    );
    res.add(
        "Cluster",
        resource(
            "AWS::ECS::Cluster",
            json!({
                "ClusterName": cluster,
                "ClusterSettings": [{ "Name": "containerInsights", "Value": "enabled" }],
                "Tags": cfn::tags(json!(cluster))
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "CapacityProvider",
        resource(
            "AWS::ECS::CapacityProvider",
            json!({
                "AutoScalingGroupProvider": {
                    "AutoScalingGroupArn": r("AutoScalingGroup"),
                    "ManagedScaling": { "Status": "ENABLED", "TargetCapacity": 100 },
                    "ManagedTerminationProtection": "ENABLED",
                    "ManagedDraining": "ENABLED"
                },
                "Tags": cfn::tags(json!(format!("clawster-{bot}")))
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "ClusterCapacityProviders",
        resource(
            "AWS::ECS::ClusterCapacityProviderAssociations",
            json!({
                "Cluster": r("Cluster"),
                "CapacityProviders": [r("CapacityProvider")],
                "DefaultCapacityProviderStrategy": [{ "CapacityProvider": r("CapacityProvider"), "Weight": 1 }]
            }),
            &[],
            &[],
        ),
    );
}
