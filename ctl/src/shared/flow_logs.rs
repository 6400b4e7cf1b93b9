//! The shared stack's flow-log group: VPC flow logs of rejected traffic, kept
//! [`LOG_RETENTION_DAYS`](super::LOG_RETENTION_DAYS) days.

use serde_json::json;

use super::LOG_RETENTION_DAYS;
use crate::cfn::{self, get_att, r, resource, sub, Resources, Skip};

/// Adds the flow log, its log group and role.
pub(super) fn build(res: &mut Resources) {
    res.add(
        "FlowLogGroup",
        resource(
            "AWS::Logs::LogGroup",
            json!({
                "LogGroupName": sub("/clawster/${AWS::StackName}/vpc-flow-rejects"),
                "RetentionInDays": LOG_RETENTION_DAYS
            }),
            &[
                Skip {
                    id: "CKV_AWS_158",
                    reason: "Log groups are encrypted at rest by CloudWatch; a customer-managed KMS key adds about $1/month per key and is on the hardening backlog.",
                },
            ],
            &[],
        ),
    );
    res.add(
        "FlowLogRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Delivery of the Clawster VPC flow logs to CloudWatch Logs",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "Service": "vpc-flow-logs.amazonaws.com" },
                        "Action": "sts:AssumeRole",
                        "Condition": { "StringEquals": { "aws:SourceAccount": r("AWS::AccountId") } }
                    }]
                },
                "Policies": [{
                    "PolicyName": "deliver-flow-logs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            "Resource": [get_att("FlowLogGroup", "Arn"), sub("${FlowLogGroup.Arn}:*")]
                        }]
                    }
                }]
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "VpcFlowLog",
        resource(
            "AWS::EC2::FlowLog",
            json!({
                "ResourceId": r("Vpc"),
                "ResourceType": "VPC",
                "TrafficType": "REJECT",
                "LogDestinationType": "cloud-watch-logs",
                "LogGroupName": r("FlowLogGroup"),
                "DeliverLogsPermissionArn": get_att("FlowLogRole", "Arn"),
                "Tags": cfn::tags(sub("${AWS::StackName}-rejects"))
            }),
            &[],
            &[],
        ),
    );
}
