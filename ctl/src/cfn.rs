//! Small builders for CloudFormation JSON: intrinsic functions, tags and linter metadata.
//!
//! Templates are plain `serde_json::Value`s (with key order preserved), built by the resource-group
//! builders of [`crate::shared`] and [`crate::bot`]. These helpers keep those functions readable.

use serde_json::{json, Map, Value};

/// A template's `Resources`, in the order they were added (each resource group of a stack has a
/// builder that adds its own).
#[derive(Debug, Default)]
pub struct Resources(Map<String, Value>);

impl Resources {
    /// Adds (or replaces) the resource with logical id `id`.
    pub fn add(&mut self, id: &str, resource: Value) {
        self.0.insert(id.to_string(), resource);
    }

    /// The `Resources` object.
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// `{"Ref": name}`.
pub fn r(name: &str) -> Value {
    json!({ "Ref": name })
}

/// `{"Fn::GetAtt": [resource, attribute]}`.
pub fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

/// `{"Fn::Sub": text}`.
pub fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

/// `{"Fn::Sub": [text, vars]}`.
pub fn sub_with(text: &str, vars: Value) -> Value {
    json!({ "Fn::Sub": [text, vars] })
}

/// `{"Fn::ImportValue": {"Fn::Sub": "${SharedStackName}-<export>"}}`: a value exported by the
/// shared stack, whose name the bot stack takes as its `SharedStackName` parameter.
pub fn import_shared(export: &str) -> Value {
    json!({ "Fn::ImportValue": { "Fn::Sub": format!("${{SharedStackName}}-{export}") } })
}

/// `{"Fn::ImportValue": {"Fn::Sub": "${SharedLbStackName}-<export>"}}`: a value exported by the
/// region's shared load balancer stack (only bot stacks placed on it take that parameter).
pub fn import_shared_lb(export: &str) -> Value {
    json!({ "Fn::ImportValue": { "Fn::Sub": format!("${{SharedLbStackName}}-{export}") } })
}

/// The export name of a shared-stack output: `<stack name>-<export>`.
pub fn export_name(export: &str) -> Value {
    sub(&format!("${{AWS::StackName}}-{export}"))
}

/// An `Outputs` entry that is exported under `<stack name>-<key>`.
pub fn exported_output(description: &str, value: Value, key: &str) -> Value {
    json!({ "Description": description, "Value": value, "Export": { "Name": export_name(key) } })
}

/// Tags every resource we create carries: `Name` plus the owning product.
pub fn tags(name: Value) -> Value {
    json!([
        { "Key": "Name", "Value": name },
        { "Key": "clawster:managed-by", "Value": "clawsterctl" }
    ])
}

/// A checkov skip with its reason, for a resource's `Metadata`.
#[derive(Debug, Clone, Copy)]
pub struct Skip {
    /// Check id, e.g. `CKV_AWS_18`.
    pub id: &'static str,
    /// Why the check does not apply or is accepted.
    pub reason: &'static str,
}

/// Builds a resource: `{"Type", "Properties", ...}` plus `Metadata` holding checkov skips
/// (with reasons) and cfn-lint ignores when any are given.
pub fn resource(kind: &str, properties: Value, checkov: &[Skip], cfn_lint: &[&str]) -> Value {
    let mut r = Map::new();
    r.insert("Type".into(), Value::String(kind.into()));
    let mut meta = Map::new();
    if !checkov.is_empty() {
        let skips: Vec<Value> = checkov
            .iter()
            .map(|s| json!({ "id": s.id, "comment": s.reason }))
            .collect();
        meta.insert("checkov".into(), json!({ "skip": skips }));
    }
    if !cfn_lint.is_empty() {
        meta.insert(
            "cfn-lint".into(),
            json!({ "config": { "ignore_checks": cfn_lint } }),
        );
    }
    if !meta.is_empty() {
        r.insert("Metadata".into(), Value::Object(meta));
    }
    r.insert("Properties".into(), properties);
    Value::Object(r)
}

/// Adds `DependsOn` to a resource built by [`resource`].
pub fn depends_on(mut resource: Value, on: &[&str]) -> Value {
    if let Some(obj) = resource.as_object_mut() {
        obj.insert("DependsOn".into(), json!(on));
    }
    resource
}

/// Every checkov skip in a template: `(logical id, check id, reason)`, in template order.
pub fn checkov_skips(template: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    if let Some(resources) = template.get("Resources").and_then(Value::as_object) {
        for (id, r) in resources {
            let skips = r
                .pointer("/Metadata/checkov/skip")
                .and_then(Value::as_array);
            for s in skips.into_iter().flatten() {
                out.push((
                    id.clone(),
                    s["id"].as_str().unwrap_or_default().to_string(),
                    s["comment"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_carries_skips_with_reasons() {
        let r = resource(
            "AWS::S3::Bucket",
            json!({}),
            &[Skip {
                id: "CKV_AWS_18",
                reason: "because",
            }],
            &["W3005"],
        );
        assert_eq!(r["Metadata"]["checkov"]["skip"][0]["comment"], "because");
        assert_eq!(
            r["Metadata"]["cfn-lint"]["config"]["ignore_checks"][0],
            "W3005"
        );
        let t = json!({ "Resources": { "B": r } });
        assert_eq!(
            checkov_skips(&t),
            vec![("B".into(), "CKV_AWS_18".into(), "because".into())]
        );
        let plain = resource("AWS::S3::Bucket", json!({}), &[], &[]);
        assert!(plain.get("Metadata").is_none());
    }

    #[test]
    fn imports_use_the_shared_stack_parameter() {
        assert_eq!(
            import_shared("VpcId"),
            json!({ "Fn::ImportValue": { "Fn::Sub": "${SharedStackName}-VpcId" } })
        );
    }
}
