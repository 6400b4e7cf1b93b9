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
    let name = name(bot);
    match aws.secrets.get_secret_value().secret_id(&name).send().await {
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
        Err(e) => Err(AwsError::from_sdk(&format!("GetSecretValue {name}"), e)),
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
