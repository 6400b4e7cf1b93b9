//! The S3 calls on a bot's state: `init.json` at a first deploy, the last sync for `status`, and
//! the deletes of `destroy`.

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::{init_body, init_key, manifest_key, parse_manifest};
use crate::aws::{Aws, AwsError, ErrorKind};
use crate::names::BotName;

/// What a first deploy found or did about `init.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// Written now: the agent starts this bot on empty state.
    Written,
    /// One was there already and was left alone.
    AlreadyThere,
    /// A manifest of an earlier bot of this name is there: its state is restored, no
    /// `init.json` is written.
    ManifestFound,
}

/// Writes `state/<bot>/init.json` unless it or a manifest exists. The write is conditional
/// (`If-None-Match: *`), so a concurrent or earlier one is never overwritten.
pub async fn ensure_init(
    aws: &Aws,
    bucket: &str,
    bot: &BotName,
    created_at: &str,
) -> Result<Init, AwsError> {
    let manifest = manifest_key(bot);
    match aws
        .s3
        .head_object()
        .bucket(bucket)
        .key(&manifest)
        .send()
        .await
    {
        Ok(_) => return Ok(Init::ManifestFound),
        Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {}
        Err(e) => {
            let e = AwsError::from_sdk(&format!("HeadObject s3://{bucket}/{manifest}"), e);
            if e.kind != ErrorKind::NotFound && e.http_status != Some(404) {
                return Err(e);
            }
        }
    }
    let key = init_key(bot);
    match aws
        .s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .if_none_match("*")
        .content_type("application/json")
        .body(init_body(bot, created_at).into_bytes().into())
        .send()
        .await
    {
        Ok(_) => Ok(Init::Written),
        Err(e) => {
            let e = AwsError::from_sdk(&format!("PutObject s3://{bucket}/{key}"), e);
            if e.has_code("PreconditionFailed") || e.http_status == Some(412) {
                Ok(Init::AlreadyThere)
            } else {
                Err(e)
            }
        }
    }
}

/// The last successful sync of a bot, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastSync {
    /// No manifest: the bot never synced (or its state was deleted).
    Never,
    /// The caller may not read the manifest.
    NoAccess,
    /// The newest generation and when it was taken (seconds since the epoch).
    At {
        /// Generation number.
        generation: u64,
        /// `taken_at` as written by the agent.
        taken_at: String,
        /// The same, in seconds since the epoch.
        unix: i64,
    },
    /// The manifest could not be read or understood (why).
    Unreadable(String),
}

impl LastSync {
    /// One cell: `2026-12-07T11:59:30Z (3m ago)`, `never`, `(no access)`.
    pub fn show(&self, now: i64) -> String {
        match self {
            Self::Never => "never".into(),
            Self::NoAccess => "(no access)".into(),
            Self::At { taken_at, unix, .. } => {
                format!("{taken_at} ({} ago)", super::time::age(now - unix))
            }
            Self::Unreadable(_) => "(unreadable)".into(),
        }
    }
}

/// Reads `state/<bot>/manifest.json` (GetObject).
pub async fn last_sync(aws: &Aws, bucket: &str, bot: &BotName) -> LastSync {
    let key = manifest_key(bot);
    let out = match aws.s3.get_object().bucket(bucket).key(&key).send().await {
        Ok(o) => o,
        Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
            return LastSync::Never
        }
        Err(e) => {
            let e = AwsError::from_sdk(&format!("GetObject s3://{bucket}/{key}"), e);
            return match e.kind {
                ErrorKind::NotFound => LastSync::Never,
                ErrorKind::Denied => LastSync::NoAccess,
                _ if e.http_status == Some(404) => LastSync::Never,
                _ if e.http_status == Some(403) => LastSync::NoAccess,
                _ => LastSync::Unreadable(e.message),
            };
        }
    };
    let body = match out.body.collect().await {
        Ok(b) => b.into_bytes(),
        Err(e) => return LastSync::Unreadable(format!("reading s3://{bucket}/{key}: {e}")),
    };
    match parse_manifest(bot, &body) {
        Ok((m, unix)) => LastSync::At {
            generation: m.generation,
            taken_at: m.taken_at,
            unix,
        },
        Err(e) => LastSync::Unreadable(e.to_string()),
    }
}

/// The most keys one DeleteObjects call takes.
const DELETE_BATCH: usize = 1000;

async fn delete_batch(
    aws: &Aws,
    bucket: &str,
    ids: Vec<(String, Option<String>)>,
) -> Result<usize, AwsError> {
    let mut n = 0;
    for chunk in ids.chunks(DELETE_BATCH) {
        let objects: Vec<ObjectIdentifier> = chunk
            .iter()
            .filter_map(|(k, v)| {
                ObjectIdentifier::builder()
                    .key(k)
                    .set_version_id(v.clone())
                    .build()
                    .ok()
            })
            .collect();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| {
                AwsError::new(ErrorKind::Service, format!("DeleteObjects {bucket}: {e}"))
            })?;
        let res = aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("DeleteObjects {bucket}"), e))?;
        if let Some(err) = res.errors().first() {
            return Err(AwsError::new(
                ErrorKind::Service,
                format!(
                    "DeleteObjects {bucket}: {} {}",
                    crate::ops::clean(err.key().unwrap_or("?")),
                    crate::ops::clean(err.message().unwrap_or("could not be deleted"))
                ),
            ));
        }
        n += chunk.len();
    }
    Ok(n)
}

/// Deletes every version and delete marker under `prefix` (all of the bucket for `""`), page by
/// page (ListObjectVersions answers at most 1,000 per page); returns how many went.
pub async fn delete_all_versions(aws: &Aws, bucket: &str, prefix: &str) -> Result<usize, AwsError> {
    let mut removed = 0;
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let out = aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .set_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(&format!("ListObjectVersions s3://{bucket}/{prefix}"), e)
            })?;
        let mut ids: Vec<(String, Option<String>)> = Vec::new();
        for v in out.versions() {
            if let Some(k) = v.key() {
                ids.push((k.to_string(), v.version_id().map(str::to_string)));
            }
        }
        for m in out.delete_markers() {
            if let Some(k) = m.key() {
                ids.push((k.to_string(), m.version_id().map(str::to_string)));
            }
        }
        removed += delete_batch(aws, bucket, ids).await?;
        if out.is_truncated() != Some(true) {
            return Ok(removed);
        }
        key_marker = out.next_key_marker().map(str::to_string);
        version_marker = out.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            return Ok(removed);
        }
    }
}

/// Deletes the current objects under `prefix` without version ids: each gets a delete marker
/// and stays restorable as a noncurrent version until the lifecycle rule expires it.
pub async fn delete_current(aws: &Aws, bucket: &str, prefix: &str) -> Result<usize, AwsError> {
    let mut removed = 0;
    let mut token = None::<String>;
    loop {
        let out = aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("ListObjectsV2 s3://{bucket}/{prefix}"), e))?;
        let ids = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(|k| (k.to_string(), None)))
            .collect();
        removed += delete_batch(aws, bucket, ids).await?;
        token = out.next_continuation_token().map(str::to_string);
        if out.is_truncated() != Some(true) || token.is_none() {
            return Ok(removed);
        }
    }
}
