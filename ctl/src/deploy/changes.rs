//! What a deploy of an existing bot changes, decided before the operator is asked: the
//! configuration secret's value, the task definition, the host (launch template or Auto Scaling
//! group: agent release, AMI, instance type), other resources, or nothing; and what each means
//! for the running bot.
//!
//! Why this exists: ECS reads secrets only when a task starts, and the bot stack names the
//! secret by its ARN, which a new secret version does not change. So a new configuration alone
//! changes no resource, and without a forced deployment the gateway would keep the old one.
//!
//! Policy, per change:
//! - configuration changed (or could not be compared) and the task definition unchanged: one
//!   new ECS deployment of the running service (the old task drains first: the service allows
//!   0% healthy during a deployment, one host has room for one gateway);
//! - task definition changed: the stack update itself starts the new deployment (which also
//!   reads the newest secret), so nothing more is forced;
//! - host changed: the running host is replaced after the stack update ([`super::host`]), its
//!   state carried over through the bucket (old task stopped, final sync, new host);
//! - nothing changed: nothing is stored, updated or restarted.

use serde_json::Value;

/// Logical ids of the bot stack's host group: a change here reaches only a new host.
const HOST_RESOURCES: [&str; 2] = ["LaunchTemplate", "AutoScalingGroup"];
/// Logical id of the task definition.
const TASK_DEFINITION: &str = "TaskDefinition";

/// The configuration secret's value compared with what this run would store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// No secret yet (or one scheduled for deletion): this run creates or restores it.
    New,
    /// The stored value differs.
    Changed,
    /// The stored value is byte for byte what this run would store.
    Unchanged,
}

/// How the bot stack's template differs from the one CloudFormation holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackChanges {
    /// No bot stack yet (or one this run recreates).
    pub create: bool,
    /// The task definition changes.
    pub task: bool,
    /// The launch template or the Auto Scaling group changes (or the AMI parameter's default).
    pub host: bool,
    /// Other resources that are added, removed or changed, by logical id.
    pub other: Vec<String>,
}

impl StackChanges {
    /// True when the template holds no change.
    pub fn none(&self) -> bool {
        !self.create && !self.task && !self.host && self.other.is_empty()
    }
}

/// Everything a deploy changes for a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The configuration.
    pub config: ConfigChange,
    /// The bot stack.
    pub stack: StackChanges,
}

impl Changes {
    /// True when the running service needs a forced deployment to pick up the configuration.
    pub fn force_new_deployment(&self) -> bool {
        self.config == ConfigChange::Changed && !self.stack.create && !self.stack.task
    }

    /// True when neither the configuration nor the stack changes.
    pub fn nothing(&self) -> bool {
        self.config == ConfigChange::Unchanged && self.stack.none()
    }

    /// The plan's lines: what changes and what that does to the running bot.
    pub fn lines(&self) -> Vec<String> {
        if self.stack.create {
            return vec!["new bot: everything is created".into()];
        }
        if self.nothing() {
            return vec!["nothing changed: nothing is stored, updated or restarted".into()];
        }
        let mut out = Vec::new();
        match &self.config {
            ConfigChange::New => out.push("configuration: stored anew".to_string()),
            ConfigChange::Changed => out.push("configuration: changed".to_string()),
            ConfigChange::Unchanged => out.push("configuration: unchanged".to_string()),
        }
        if self.stack.task {
            out.push(
                "task definition: changed; the stack update starts a new task with it".to_string(),
            );
        }
        if self.force_new_deployment() {
            out.push(
                "the bot task restarts once to read the new configuration (the old task stops first)"
                    .to_string(),
            );
        }
        if self.stack.host {
            out.push(
                "host: the launch template changes (agent release, AMI or instance type); the running host is replaced: its task stops, its state is synced to the bucket, a new host starts and restores it, the task starts there"
                    .to_string(),
            );
        }
        if !self.stack.other.is_empty() {
            out.push(format!("other resources: {}", self.stack.other.join(", ")));
        }
        out
    }
}

/// Compares two bot-stack templates (`old` is `None` when there is no stack).
pub fn diff(old: Option<&Value>, new: &Value) -> StackChanges {
    let Some(old) = old else {
        return StackChanges {
            create: true,
            ..StackChanges::default()
        };
    };
    let empty = serde_json::Map::new();
    let resources = |t: &Value| t.get("Resources").and_then(Value::as_object).cloned();
    let (o, n) = (
        resources(old).unwrap_or_else(|| empty.clone()),
        resources(new).unwrap_or_else(|| empty.clone()),
    );
    let mut ch = StackChanges::default();
    let ids: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for id in ids {
        if o.get(id) == n.get(id) {
            continue;
        }
        if id == TASK_DEFINITION {
            ch.task = true;
        } else if HOST_RESOURCES.contains(&id.as_str()) {
            ch.host = true;
        } else {
            ch.other.push(id.clone());
        }
    }
    // The AMI is a parameter whose default names the architecture's SSM path.
    let ami = |t: &Value| t.pointer("/Parameters/EcsAmiId/Default").cloned();
    if ami(old) != ami(new) {
        ch.host = true;
    }
    let rest = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("Resources");
            if let Some(p) = m
                .get_mut("Parameters")
                .and_then(|p| p.pointer_mut("/EcsAmiId"))
                .and_then(Value::as_object_mut)
            {
                p.remove("Default");
                p.remove("Description");
            }
            // The description names the instance type and release: covered above.
            m.remove("Description");
        }
        t
    };
    if rest(old) != rest(new) {
        ch.other.push("template parameters or outputs".into());
    }
    ch
}

/// Compares the stored configuration with the one this run would store.
pub fn compare_config(stored: Option<&str>, new: &str) -> ConfigChange {
    match stored {
        None => ConfigChange::New,
        Some(s) if s == new => ConfigChange::Unchanged,
        Some(_) => ConfigChange::Changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(task_image: &str, agent: &str, sg: &str) -> Value {
        json!({
            "Description": format!("bot on {agent}"),
            "Parameters": { "EcsAmiId": { "Type": "x", "Default": "/ami/arm64", "Description": "arm64" } },
            "Resources": {
                "TaskDefinition": { "Properties": { "Image": task_image } },
                "LaunchTemplate": { "Properties": { "UserData": agent } },
                "AutoScalingGroup": { "Properties": {} },
                "TaskSecurityGroup": { "Properties": { "GroupDescription": sg } }
            },
            "Outputs": { "Url": "u" }
        })
    }

    #[test]
    fn nothing_changed_restarts_nothing() {
        let t = template("node", "agent-1", "sg");
        let c = Changes {
            config: compare_config(Some("{\"a\":1}"), "{\"a\":1}"),
            stack: diff(Some(&t), &t),
        };
        assert!(c.nothing());
        assert!(!c.force_new_deployment());
        assert_eq!(
            c.lines(),
            ["nothing changed: nothing is stored, updated or restarted"]
        );
    }

    #[test]
    fn a_new_configuration_alone_forces_one_deployment() {
        let t = template("node", "agent-1", "sg");
        let c = Changes {
            config: compare_config(Some("{\"a\":1}"), "{\"a\":2}"),
            stack: diff(Some(&t), &t),
        };
        assert_eq!(c.config, ConfigChange::Changed);
        assert!(c.force_new_deployment());
        assert!(c.lines().iter().any(|l| l.contains("restarts once")));
    }

    #[test]
    fn a_new_task_definition_deploys_by_itself() {
        let old = template("node", "agent-1", "sg");
        let new = template("node:24", "agent-1", "sg");
        let c = Changes {
            config: ConfigChange::Changed,
            stack: diff(Some(&old), &new),
        };
        assert!(c.stack.task && !c.stack.host && c.stack.other.is_empty());
        assert!(!c.force_new_deployment(), "the stack update deploys it");
    }

    #[test]
    fn a_new_release_or_ami_is_a_host_change() {
        let old = template("node", "agent-1", "sg");
        let new = template("node", "agent-2", "sg");
        let d = diff(Some(&old), &new);
        assert!(d.host && !d.task && d.other.is_empty(), "{d:?}");
        let mut arm = old.clone();
        arm["Parameters"]["EcsAmiId"]["Default"] = json!("/ami/x86_64");
        arm["Parameters"]["EcsAmiId"]["Description"] = json!("x86_64");
        let d = diff(Some(&old), &arm);
        assert!(d.host && d.other.is_empty(), "{d:?}");
        let c = Changes {
            config: ConfigChange::Unchanged,
            stack: d,
        };
        assert!(!c.force_new_deployment());
        assert!(c.lines().iter().any(|l| l.starts_with("host:")));
    }

    #[test]
    fn other_resources_are_named_and_a_missing_stack_is_a_create() {
        let old = template("node", "agent-1", "sg");
        let mut new = template("node", "agent-1", "sg2");
        new["Resources"]["Extra"] = json!({});
        let d = diff(Some(&old), &new);
        assert_eq!(d.other, ["Extra", "TaskSecurityGroup"]);
        new["Outputs"]["More"] = json!("x");
        let d = diff(Some(&old), &new);
        assert!(d
            .other
            .contains(&"template parameters or outputs".to_string()));
        let created = diff(None, &new);
        assert!(created.create);
        let c = Changes {
            config: ConfigChange::New,
            stack: created,
        };
        assert!(!c.force_new_deployment());
        assert_eq!(c.lines(), ["new bot: everything is created"]);
    }
}
