//! The bot stack's network group: security groups of the bot's own load balancer (when its layout
//! has one), the task ENI and the host. The task admits the gateway port only from the load
//! balancers of its layout (its own, the region's shared one, or both while it moves); the host
//! admits nothing.

use serde_json::json;

use super::BotOptions;
use crate::cfn::{self, import_shared, import_shared_lb, r, resource, Resources, Skip};

/// Adds the security groups and the task's ingress rule.
pub(super) fn build(o: &BotOptions, res: &mut Resources) {
    let bot = o.name.as_str();
    let port = o.gateway_port.get();
    let https = o.certificate.is_some();
    let dedicated = o.layout.dedicated().is_some();
    if dedicated {
        res.add(
        "AlbSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": format!("Clawster bot {bot}: load balancer, HTTP and HTTPS from anywhere"),
                "VpcId": import_shared("VpcId"),
                "SecurityGroupIngress": [
                    { "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": if https { "HTTP, redirected to HTTPS" } else { "HTTP" } },
                    { "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS" }
                ],
                "SecurityGroupEgress": [
                    { "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "DestinationSecurityGroupId": r("TaskSecurityGroup"), "Description": "To the OpenClaw gateway only" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-alb")))
            }),
            &[
                Skip { id: "CKV_AWS_260", reason: "The load balancer is the bot's only public entry point: port 80 serves HTTP when no certificate is configured and otherwise only redirects to HTTPS." },
            ],
            &[],
        ),
    );
    }
    res.add(
        "TaskSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": format!("Clawster bot {bot}: task ENI, gateway port from the load balancer only"),
                "VpcId": import_shared("VpcId"),
                "SecurityGroupEgress": [
                    { "IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "Outbound through the NAT instance (which admits only 80/443)" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-task")))
            }),
            &[],
            &[],
        ),
    );
    if dedicated {
        res.add(
            "TaskIngressFromAlb",
            resource(
                "AWS::EC2::SecurityGroupIngress",
                json!({
                    "GroupId": r("TaskSecurityGroup"),
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "SourceSecurityGroupId": r("AlbSecurityGroup"),
                    "Description": "OpenClaw gateway from the load balancer"
                }),
                &[],
                &[],
            ),
        );
    }
    if o.layout.shared().is_some() {
        res.add(
            "TaskIngressFromSharedAlb",
            resource(
                "AWS::EC2::SecurityGroupIngress",
                json!({
                    "GroupId": r("TaskSecurityGroup"),
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "SourceSecurityGroupId": import_shared_lb("SharedAlbSecurityGroupId"),
                    "Description": "OpenClaw gateway from the region's shared load balancer"
                }),
                &[],
                &[],
            ),
        );
    }
    res.add(
        "InstanceSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": format!("Clawster bot {bot}: host primary ENI, no inbound at all (administration via SSM)"),
                "VpcId": import_shared("VpcId"),
                "SecurityGroupEgress": [
                    { "IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "ECS agent, image pulls, SSM and S3, through the NAT instance or the S3 gateway endpoint" }
                ],
                "Tags": cfn::tags(json!(format!("clawster-{bot}-host")))
            }),
            &[],
            &[],
        ),
    );
}
