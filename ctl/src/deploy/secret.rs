//! The bot's configuration secret `clawster/<bot>/config` in Secrets Manager.
//!
//! The value is the merged OpenClaw configuration, which holds the operator's API keys: it is
//! sent in the request body and nowhere else (no log, no error, no template). The bot stack gets
//! the secret's full ARN, with the random suffix Secrets Manager appends, because ECS resolves a
//! partial ARN only by a prefix search that another secret could win.

use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::types::Tag;

use crate::aws::{Aws, AwsError};
use crate::names::BotName;

/// The secret's name for a bot.
pub fn name(bot: &BotName) -> String {
    format!("clawster/{bot}/config")
}

/// What [`put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Full ARN.
    pub arn: String,
    /// True when this run created the secret.
    pub created: bool,
    /// True when it had been scheduled for deletion and was restored.
    pub restored: bool,
    /// True when the stored value was already this one and no version was added.
    pub unchanged: bool,
}

/// The secret's current value (`AWSCURRENT`), to compare with a new one in memory: `None` when
/// there is no secret or it is scheduled for deletion. The value is never shown or logged.
pub async fn current(aws: &Aws, bot: &BotName) -> Result<Option<String>, AwsError> {
    value(aws, &name(bot)).await
}

/// The current value of the secret `id` (name or ARN): `None` when there is none or it is
/// scheduled for deletion.
async fn value(aws: &Aws, id: &str) -> Result<Option<String>, AwsError> {
    match aws.secrets.get_secret_value().secret_id(id).send().await {
        Ok(out) => Ok(out.secret_string().map(str::to_string)),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(
                    GetSecretValueError::ResourceNotFoundException(_)
                        // Scheduled for deletion: put restores it.
                        | GetSecretValueError::InvalidRequestException(_)
                )
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::from_sdk(&format!("GetSecretValue {id}"), e)),
    }
}

/// Creates the secret or stores a new version of it; with `unchanged` (the caller compared the
/// stored value with `value`) an existing, live secret keeps its version.
pub async fn put(
    aws: &Aws,
    bot: &BotName,
    value: &str,
    unchanged: bool,
) -> Result<Stored, AwsError> {
    let name = name(bot);
    let existing = match aws.secrets.describe_secret().secret_id(&name).send().await {
        Ok(d) => Some(d),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeSecretError::ResourceNotFoundException(_))
            ) =>
        {
            None
        }
        Err(e) => return Err(AwsError::from_sdk(&format!("DescribeSecret {name}"), e)),
    };
    match existing {
        Some(d) if unchanged && d.deleted_date().is_none() && d.arn().is_some() => Ok(Stored {
            arn: d.arn().unwrap_or_default().to_string(),
            created: false,
            restored: false,
            unchanged: true,
        }),
        Some(d) => {
            let mut restored = false;
            if d.deleted_date().is_some() {
                aws.secrets
                    .restore_secret()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&format!("RestoreSecret {name}"), e))?;
                restored = true;
            }
            let out = aws
                .secrets
                .put_secret_value()
                .secret_id(&name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&format!("PutSecretValue {name}"), e))?;
            let arn = out.arn().or(d.arn()).unwrap_or_default().to_string();
            Ok(Stored {
                arn,
                created: false,
                restored,
                unchanged: false,
            })
        }
        None => {
            let out = aws
                .secrets
                .create_secret()
                .name(&name)
                .description(format!(
                    "OpenClaw configuration of the Clawster bot {bot} (written by clawsterctl deploy)"
                ))
                .secret_string(value)
                .tags(Tag::builder().key("clawster:managed-by").value("clawsterctl").build())
                .tags(Tag::builder().key("clawster:bot").value(bot.as_str()).build())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&format!("CreateSecret {name}"), e))?;
            Ok(Stored {
                arn: out.arn().unwrap_or_default().to_string(),
                created: true,
                restored: false,
                unchanged: false,
            })
        }
    }
}

/// Deletes the secret at once (no recovery window, so a later deploy of the same bot can create
/// it again); true when there was one.
pub async fn delete(aws: &Aws, bot: &BotName) -> Result<bool, AwsError> {
    let name = name(bot);
    match aws
        .secrets
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DeleteSecretError::ResourceNotFoundException(_))
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(AwsError::from_sdk(&format!("DeleteSecret {name}"), e)),
    }
}

/// Where the gateway token came from, for the plan and the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The stored configuration already holds it.
    Kept,
    /// Taken over from the bot stack's former `GatewayTokenSecret` (stacks made before the token
    /// moved into the configuration secret): clients keep working across the upgrade.
    Migrated,
    /// A new bot: Secrets Manager generated it.
    Generated,
}

/// The token a stored configuration holds at `gateway.auth.token`, if it is a non-empty string.
pub fn stored_token(stored: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(stored).ok()?;
    v.pointer("/gateway/auth/token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The bot's gateway token: kept from the stored configuration, else taken over from the former
/// token secret the existing bot stack names (`former`: its `GatewayTokenSecretArn` output),
/// else a new one from Secrets Manager's generator (48 letters and digits, as the former secret
/// had). A token is never printed or logged.
pub async fn gateway_token(
    aws: &Aws,
    stored: Option<&str>,
    former: Option<&str>,
) -> Result<(String, TokenSource), AwsError> {
    if let Some(t) = stored.and_then(stored_token) {
        return Ok((t, TokenSource::Kept));
    }
    // Already gone (a stack updated halfway before): the token is lost, so a new one is made,
    // as for a new bot.
    if let Some(t) = match former {
        Some(arn) => value(aws, arn).await?.filter(|t| !t.is_empty()),
        None => None,
    } {
        return Ok((t, TokenSource::Migrated));
    }
    let out = aws
        .secrets
        .get_random_password()
        .password_length(48)
        .exclude_punctuation(true)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetRandomPassword (the gateway token)", e))?;
    match out.random_password() {
        Some(t) if t.len() == 48 => Ok((t.to_string(), TokenSource::Generated)),
        _ => Err(AwsError::new(
            crate::aws::ErrorKind::Service,
            "GetRandomPassword (the gateway token): no 48-character password in the answer".into(),
        )),
    }
}

/// `config` with the gateway token at `gateway.auth.token` (the merged configuration always has
/// `gateway.auth`, which ctl owns).
pub fn with_token(mut config: serde_json::Value, token: &str) -> serde_json::Value {
    if let Some(auth) = config
        .pointer_mut("/gateway/auth")
        .and_then(serde_json::Value::as_object_mut)
    {
        auth.insert("token".into(), serde_json::Value::String(token.to_string()));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_token_is_found_only_where_ctl_puts_it() {
        let c = json!({ "gateway": { "auth": { "mode": "token", "token": "abc" } } });
        assert_eq!(stored_token(&c.to_string()).as_deref(), Some("abc"));
        for other in [
            json!({ "gateway": { "auth": { "mode": "token" } } }).to_string(),
            json!({ "gateway": { "auth": { "token": "" } } }).to_string(),
            json!({ "gateway": { "auth": { "token": { "source": "file" } } } }).to_string(),
            json!({ "token": "abc" }).to_string(),
            "not json".to_string(),
        ] {
            assert_eq!(stored_token(&other), None, "{other}");
        }
    }

    #[test]
    fn the_token_lands_in_the_owned_auth_section_only() {
        let merged = crate::deploy::config::merge(
            "f",
            json!({ "models": { "m": 1 } }),
            crate::openclaw::config(crate::names::GatewayPort::DEFAULT, "10.0.0.0/16"),
        )
        .unwrap();
        let out = with_token(merged.clone(), "t0ken");
        assert_eq!(
            out["gateway"]["auth"],
            json!({ "mode": "token", "token": "t0ken" })
        );
        assert_eq!(out["models"], merged["models"]);
        assert_eq!(stored_token(&out.to_string()).as_deref(), Some("t0ken"));
    }
}
