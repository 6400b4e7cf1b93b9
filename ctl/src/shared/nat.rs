//! The shared stack's NAT group: the NAT instance (arm64, `clawster-nat-agent` from the artifacts
//! bucket), its role, security group and address, and the private subnets' default route through it.

use serde_json::json;

use super::{
    assume_role, managed_policy, read_artifacts_policy, ASSUME_EC2, NAT_INSTANCE_TYPE, VPC_CIDR,
};
use crate::cfn::{self, r, resource, sub, Resources};
use crate::manifest::Release;
use crate::userdata;

/// Adds the NAT instance and everything it needs.
pub(super) fn build(release: &Release, res: &mut Resources) {
    let nat = &release.nat_agent;
    res.add(
        "NatSecurityGroup",
        resource(
            "AWS::EC2::SecurityGroup",
            json!({
                "GroupDescription": "Clawster NAT instance: HTTP and HTTPS from inside the VPC, to be forwarded out",
                "VpcId": r("Vpc"),
                "SecurityGroupIngress": [
                    { "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": VPC_CIDR, "Description": "HTTP from the VPC" },
                    { "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": VPC_CIDR, "Description": "HTTPS from the VPC" }
                ],
                "SecurityGroupEgress": [
                    { "IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "Forwarded traffic to the internet" }
                ],
                "Tags": cfn::tags(sub("${AWS::StackName}-nat"))
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "NatInstanceRole",
        resource(
            "AWS::IAM::Role",
            json!({
                "Description": "Clawster NAT instance: SSM administration and reading the release artifacts",
                "AssumeRolePolicyDocument": assume_role(ASSUME_EC2),
                "ManagedPolicyArns": [managed_policy("AmazonSSMManagedInstanceCore")],
                "Policies": [read_artifacts_policy()]
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "NatInstanceProfile",
        resource(
            "AWS::IAM::InstanceProfile",
            json!({ "Roles": [r("NatInstanceRole")] }),
            &[],
            &[],
        ),
    );
    res.add(
        "NatInstance",
        resource(
            "AWS::EC2::Instance",
            json!({
                "ImageId": r("NatAmiId"),
                "InstanceType": NAT_INSTANCE_TYPE,
                "SubnetId": r("PublicSubnet1"),
                "SecurityGroupIds": [r("NatSecurityGroup")],
                "IamInstanceProfile": r("NatInstanceProfile"),
                "SourceDestCheck": false,
                "DisableApiTermination": true,
                "EbsOptimized": true,
                "MetadataOptions": {
                    "HttpEndpoint": "enabled",
                    "HttpTokens": "required",
                    "HttpPutResponseHopLimit": 1
                },
                "BlockDeviceMappings": [{
                    "DeviceName": "/dev/xvda",
                    "Ebs": { "Encrypted": true, "VolumeType": "gp3", "VolumeSize": 8, "DeleteOnTermination": true }
                }],
                "UserData": userdata::encode(
                    &userdata::nat_script(&release.object_key(nat), &nat.sha256),
                    r("ArtifactsBucket")
                ),
                "Tags": cfn::tags(sub("${AWS::StackName}-nat"))
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "NatElasticIp",
        resource(
            "AWS::EC2::EIP",
            json!({
                "Domain": "vpc",
                "InstanceId": r("NatInstance"),
                "Tags": cfn::tags(sub("${AWS::StackName}-nat"))
            }),
            &[],
            &[],
        ),
    );
    res.add(
        "NatRecoveryAlarm",
        resource(
            "AWS::CloudWatch::Alarm",
            json!({
                "AlarmDescription": "Recover the Clawster NAT instance (same ID, IP and ENI) when its host fails the system status check",
                "Namespace": "AWS/EC2",
                "MetricName": "StatusCheckFailed_System",
                "Dimensions": [{ "Name": "InstanceId", "Value": r("NatInstance") }],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 2,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "AlarmActions": [sub("arn:${AWS::Partition}:automate:${AWS::Region}:ec2:recover")]
            }),
            &[],
            &[],
        ),
    );
}
