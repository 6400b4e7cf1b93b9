//! The shared stack's network group: the VPC, two public and two private subnets in two AZs, the
//! internet gateway and the route tables (the private table's default route is the NAT group's),
//! and the free S3 gateway endpoint through which hosts fetch their agents.

use serde_json::{json, Value};

use super::{SUBNET_CIDRS, VPC_CIDR};
use crate::cfn::{self, r, resource, sub, Resources};

fn subnet(index: usize, public: bool, az: u32) -> Value {
    let kind = if public { "public" } else { "private" };
    resource(
        "AWS::EC2::Subnet",
        json!({
            "VpcId": r("Vpc"),
            "CidrBlock": SUBNET_CIDRS[index],
            "AvailabilityZone": { "Fn::Select": [az, { "Fn::GetAZs": "" }] },
            "MapPublicIpOnLaunch": false,
            "Tags": cfn::tags(sub(&format!("${{AWS::StackName}}-{kind}-{}", az + 1)))
        }),
        &[],
        &[],
    )
}

/// Adds the network resources.
pub(super) fn build(res: &mut Resources) {
    res.add(
        "Vpc",
        resource(
            "AWS::EC2::VPC",
            json!({
                "CidrBlock": VPC_CIDR,
                "EnableDnsSupport": true,
                "EnableDnsHostnames": true,
                "Tags": cfn::tags(sub("${AWS::StackName}-vpc"))
            }),
            &[],
            &[],
        ),
    );
    res.add("PublicSubnet1", subnet(0, true, 0));
    res.add("PublicSubnet2", subnet(1, true, 1));
    res.add("PrivateSubnet1", subnet(2, false, 0));
    res.add("PrivateSubnet2", subnet(3, false, 1));
    res.add(
        "InternetGateway",
        resource(
            "AWS::EC2::InternetGateway",
            json!({ "Tags": cfn::tags(sub("${AWS::StackName}-igw")) }),
            &[],
            &[],
        ),
    );
    res.add(
        "InternetGatewayAttachment",
        resource(
            "AWS::EC2::VPCGatewayAttachment",
            json!({ "VpcId": r("Vpc"), "InternetGatewayId": r("InternetGateway") }),
            &[],
            &[],
        ),
    );
    for kind in ["Public", "Private"] {
        res.add(
            &format!("{kind}RouteTable"),
            resource(
                "AWS::EC2::RouteTable",
                json!({
                    "VpcId": r("Vpc"),
                    "Tags": cfn::tags(sub(&format!("${{AWS::StackName}}-{}", kind.to_lowercase())))
                }),
                &[],
                &[],
            ),
        );
        for n in 1..=2 {
            res.add(
                &format!("{kind}Subnet{n}RouteTableAssociation"),
                resource(
                    "AWS::EC2::SubnetRouteTableAssociation",
                    json!({
                        "SubnetId": r(&format!("{kind}Subnet{n}")),
                        "RouteTableId": r(&format!("{kind}RouteTable"))
                    }),
                    &[],
                    &[],
                ),
            );
        }
    }
    res.add(
        "PublicDefaultRoute",
        cfn::depends_on(
            resource(
                "AWS::EC2::Route",
                json!({
                    "RouteTableId": r("PublicRouteTable"),
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "GatewayId": r("InternetGateway")
                }),
                &[],
                &[],
            ),
            &["InternetGatewayAttachment"],
        ),
    );
    res.add(
        "PrivateDefaultRoute",
        resource(
            "AWS::EC2::Route",
            json!({
                "RouteTableId": r("PrivateRouteTable"),
                "DestinationCidrBlock": "0.0.0.0/0",
                "InstanceId": r("NatInstance")
            }),
            &[],
            &[],
        ),
    );
    // Gateway endpoints are free. It sits on both route tables: bot hosts fetch their agent before
    // the NAT route exists, and the NAT instance fetches its agent before its Elastic IP is
    // attached. The default (full) endpoint policy is kept on purpose: the AL2023 package
    // repositories and ECR image layers are S3 buckets too, and this endpoint carries that traffic.
    res.add(
        "S3GatewayEndpoint",
        resource(
            "AWS::EC2::VPCEndpoint",
            json!({
                "VpcEndpointType": "Gateway",
                "VpcId": r("Vpc"),
                "ServiceName": sub("com.amazonaws.${AWS::Region}.s3"),
                "RouteTableIds": [r("PrivateRouteTable"), r("PublicRouteTable")]
            }),
            &[],
            &[],
        ),
    );
}
