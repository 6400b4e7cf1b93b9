//! The bot stack's service group: the ECS service, created with DesiredCount 0 (`clawsterctl
//! deploy` raises it once the NAT route is live), behind the load balancer's target group.

use serde_json::json;

use super::{Ctx, CONTAINER_NAME};
use crate::cfn::{self, r, resource, Resources};

/// Adds the service; it depends on the listeners and the cluster's capacity providers.
pub(super) fn build(c: &Ctx<'_>, res: &mut Resources, listeners: &[&'static str]) {
    let bot = c.bot;
    let port = c.port;
    let private_subnets = c.private_subnets();
    let mut service_deps = listeners.to_vec();
    service_deps.push("ClusterCapacityProviders");
    res.add(
        "Service",
        cfn::depends_on(
            resource(
                "AWS::ECS::Service",
                json!({
                    "ServiceName": format!("clawster-{bot}"),
                    "Cluster": r("Cluster"),
                    "TaskDefinition": r("TaskDefinition"),
                    "DesiredCount": 0,
                    "CapacityProviderStrategy": [{ "CapacityProvider": r("CapacityProvider"), "Weight": 1 }],
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "Subnets": private_subnets,
                            "SecurityGroups": [r("TaskSecurityGroup")],
                            "AssignPublicIp": "DISABLED"
                        }
                    },
                    "LoadBalancers": [{
                        "ContainerName": CONTAINER_NAME,
                        "ContainerPort": port,
                        "TargetGroupArn": r("TargetGroup")
                    }],
                    "HealthCheckGracePeriodSeconds": 300,
                    "DeploymentConfiguration": {
                        "DeploymentCircuitBreaker": { "Enable": true, "Rollback": true },
                        "MinimumHealthyPercent": 0,
                        "MaximumPercent": 100
                    },
                    "PropagateTags": "SERVICE",
                    "Tags": cfn::tags(json!(format!("clawster-{bot}")))
                }),
                &[],
                &[],
            ),
            &service_deps,
        ),
    );
}
