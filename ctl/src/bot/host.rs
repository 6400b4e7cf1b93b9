//! The bot stack's host group: the launch template whose UserData hands the boot to
//! `clawster-agent`, the one-host Auto Scaling group (desired 0), and the ECS cluster with its
//! capacity provider over that group.

use serde_json::json;

use super::{Ctx, ROOT_VOLUME_GB};
use crate::cfn::{self, get_att, import_shared, r, resource, Resources};
use crate::userdata;

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
                    "IamInstanceProfile": { "Arn": import_shared("EcsInstanceProfileArn") },
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
                        &userdata::bot_script(&release.object_key(agent), &agent.sha256, cluster),
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
