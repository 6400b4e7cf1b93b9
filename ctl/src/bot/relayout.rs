//! A bot stack's template moved to another [`Layout`], starting from the template CloudFormation
//! holds: only the layout's resources, parameters, outputs and the service's `DependsOn` change,
//! so nothing that would restart the bot's task (service, task definition, host, task security
//! group, target group) is touched, and no release manifest or deploy options are needed.

use serde_json::{json, Value};

use super::{layout_parameters, load_balancing, network, url, url_description, BotOptions, Layout};
use crate::cfn::{r, Resources};
use crate::names::{BotName, CertificateArn, GatewayPort, InstanceType, Region};

/// Resources whose presence or properties depend on the layout.
pub const LAYOUT_RESOURCES: [&str; 8] = [
    "AlbSecurityGroup",
    "TaskIngressFromAlb",
    "TaskIngressFromSharedAlb",
    "LoadBalancer",
    "HttpsListener",
    "HttpListener",
    "SharedListener",
    "SharedRule",
];

/// Parameters that record the layout.
pub const LAYOUT_PARAMETERS: [&str; 5] = [
    "LoadBalancing",
    "SharedLbStackName",
    "SharedListenerPort",
    "SharedHostName",
    "SharedRulePriority",
];

/// The options the layout's builders read, recovered from a stored bot template.
fn options_of(
    stored: &Value,
    name: &BotName,
    region: &Region,
    layout: &Layout,
) -> Result<BotOptions, String> {
    let res = &stored["Resources"];
    let port = res["TargetGroup"]["Properties"]["Port"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .ok_or("its template has no TargetGroup with a Port")?;
    let gateway_port = GatewayPort::try_from(port).map_err(|e| e.to_string())?;
    let instance_type: InstanceType = res["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
        ["InstanceType"]
        .as_str()
        .ok_or("its template has no LaunchTemplate with an InstanceType")?
        .parse()
        .map_err(|e: crate::names::NameError| e.to_string())?;
    let cert = stored["Metadata"]["clawster"]["certificate"]
        .as_str()
        .or_else(|| {
            res["HttpsListener"]["Properties"]["Certificates"][0]["CertificateArn"].as_str()
        });
    let certificate = cert
        .map(|c| c.parse::<CertificateArn>().map_err(|e| e.to_string()))
        .transpose()?;
    Ok(BotOptions {
        name: name.clone(),
        region: region.clone(),
        instance_type,
        certificate,
        gateway_port,
        layout: layout.clone(),
    })
}

/// The stored template of bot `name` with its load balancing in `layout`.
pub fn relayout(
    stored: &Value,
    name: &BotName,
    region: &Region,
    layout: &Layout,
) -> Result<Value, String> {
    let bot_stack = super::stack_name(name);
    let o = options_of(stored, name, region, layout)
        .map_err(|e| format!("{bot_stack} was not made by this version of clawsterctl: {e}"))?;
    let mut part = Resources::default();
    network::build(&o, &mut part);
    let listeners = load_balancing::build(&o, &mut part);
    let part = part.into_value();

    let mut t = stored.clone();
    let Some(resources) = t["Resources"].as_object_mut() else {
        return Err(format!("{bot_stack} has a template without Resources"));
    };
    for id in LAYOUT_RESOURCES {
        resources.shift_remove(id);
    }
    for id in LAYOUT_RESOURCES {
        if let Some(r) = part.get(id) {
            resources.insert(id.to_string(), r.clone());
        }
    }
    let Some(service) = resources.get_mut("Service") else {
        return Err(format!("{bot_stack} has no Service in its template"));
    };
    let mut deps = listeners;
    deps.push("ClusterCapacityProviders");
    service["DependsOn"] = json!(deps);

    if let Some(params) = t["Parameters"].as_object_mut() {
        for p in LAYOUT_PARAMETERS {
            params.shift_remove(p);
        }
    }
    layout_parameters(layout, region, &mut t["Parameters"]);
    t["Outputs"]["Url"] = json!({ "Description": url_description(&o), "Value": url(&o) });
    t["Outputs"]["LoadBalancing"] = json!({
        "Description": "Which load balancer forwards to the bot (dedicated, shared, or joining/returning while clawsterctl consolidate moves it)",
        "Value": r("LoadBalancing")
    });
    match super::metadata(&o) {
        Some(m) => t["Metadata"] = m,
        None => {
            if let Some(obj) = t.as_object_mut() {
                obj.shift_remove("Metadata");
            }
        }
    }
    Ok(t)
}
