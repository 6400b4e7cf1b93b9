//! The region's ECR repository for the bot image, and the registry login ECR hands out.
//!
//! One repository per region, [`REPOSITORY`], made once by the first deploy that pushes: tags
//! immutable (a tag never moves to other bytes), every push scanned, encrypted with AES256 (no KMS
//! key to pay for). It is read first (DescribeRepositories) and created only when absent; a
//! concurrent deploy that creates it between the read and the create is no failure.
//!
//! The login is ECR's authorization token: base64 of `AWS:<password>`, valid for 12 hours, used
//! as HTTP Basic credentials on the registry endpoint the same answer names.

use aws_sdk_ecr::operation::create_repository::CreateRepositoryError;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};
use base64::Engine as _;

use crate::aws::{Aws, AwsError, ErrorKind};

/// The bot image's repository in each region.
pub const REPOSITORY: &str = "clawster-openclaw";

/// The repository as ECR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `<account>.dkr.ecr.<region>.amazonaws.com/clawster-openclaw`: what a task names.
    pub uri: String,
    /// Tags cannot be moved (`IMMUTABLE`).
    pub immutable: bool,
    /// Every push is scanned.
    pub scan_on_push: bool,
}

/// Credentials for the registry API (its `Debug` leaves the password out).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The registry's base URL (`https://<account>.dkr.ecr.<region>.amazonaws.com`).
    pub endpoint: String,
    /// Basic user (`AWS`).
    pub user: String,
    /// Basic password (the token's second half).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn from_sdk(r: &aws_sdk_ecr::types::Repository) -> Repository {
    Repository {
        uri: r.repository_uri().unwrap_or_default().to_string(),
        immutable: r.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        scan_on_push: r
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
    }
}

/// The repository, or `None` when this region has none yet (read-only).
pub async fn find(aws: &Aws) -> Result<Option<Repository>, AwsError> {
    match aws
        .ecr
        .describe_repositories()
        .repository_names(REPOSITORY)
        .send()
        .await
    {
        Ok(out) => Ok(out.repositories().first().map(from_sdk)),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeRepositoriesError::RepositoryNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::from_sdk(
            &format!("DescribeRepositories {REPOSITORY}"),
            e,
        )),
    }
}

/// The repository, created when absent (`true`: this call created it).
pub async fn ensure(aws: &Aws) -> Result<(Repository, bool), AwsError> {
    if let Some(r) = find(aws).await? {
        return Ok((r, false));
    }
    let created = aws
        .ecr
        .create_repository()
        .repository_name(REPOSITORY)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(
            EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Aes256)
                .build()
                .map_err(|e| AwsError::new(ErrorKind::Usage, e.to_string()))?,
        )
        .tags(
            Tag::builder()
                .key("clawster")
                .value("bot-image")
                .build()
                .map_err(|e| AwsError::new(ErrorKind::Usage, e.to_string()))?,
        )
        .send()
        .await;
    match created {
        Ok(out) => Ok((
            out.repository().map(from_sdk).ok_or_else(|| {
                AwsError::new(
                    ErrorKind::Service,
                    format!("CreateRepository {REPOSITORY} answered without the repository"),
                )
            })?,
            true,
        )),
        // Another deploy made it between our read and our create: the same repository.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateRepositoryError::RepositoryAlreadyExistsException(_))
            ) =>
        {
            let r = find(aws).await?.ok_or_else(|| {
                AwsError::new(
                    ErrorKind::Service,
                    format!(
                        "{REPOSITORY} exists by CreateRepository and not by DescribeRepositories"
                    ),
                )
            })?;
            Ok((r, false))
        }
        Err(e) => Err(AwsError::from_sdk(
            &format!("CreateRepository {REPOSITORY}"),
            e,
        )),
    }
}

/// Decodes an authorization token (base64 of `user:password`) and pairs it with its endpoint.
pub fn parse_token(token: &str, endpoint: &str) -> Result<Login, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|e| format!("the ECR authorization token is not base64 ({e})"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "the ECR authorization token is not text".to_string())?;
    let (user, password) = text
        .split_once(':')
        .filter(|(u, p)| !u.is_empty() && !p.is_empty())
        .ok_or_else(|| "the ECR authorization token is not `user:password`".to_string())?;
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(format!(
            "the ECR registry endpoint {endpoint:?} is not an http(s) URL"
        ));
    }
    Ok(Login {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// GetAuthorizationToken, decoded. `registry_url` replaces the endpoint ECR names (a test's local
/// registry, or a pull-through proxy): the credentials stay ECR's.
pub async fn login(aws: &Aws, registry_url: Option<&str>) -> Result<Login, AwsError> {
    if let Some(u) =
        registry_url.filter(|u| !u.starts_with("http://") && !u.starts_with("https://"))
    {
        return Err(AwsError::new(
            ErrorKind::Usage,
            format!("--registry-url {u:?} is not an http:// or https:// URL"),
        ));
    }
    let out = aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetAuthorizationToken", e))?;
    let data = out.authorization_data().first().ok_or_else(|| {
        AwsError::new(
            ErrorKind::Service,
            "GetAuthorizationToken answered without authorization data".to_string(),
        )
    })?;
    let endpoint = registry_url.or(data.proxy_endpoint()).unwrap_or_default();
    parse_token(data.authorization_token().unwrap_or_default(), endpoint)
        .map_err(|m| AwsError::new(ErrorKind::Service, format!("GetAuthorizationToken: {m}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_base64_of_user_and_password() {
        let l = parse_token(
            "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu",
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
        )
        .unwrap();
        assert_eq!(l.user, "AWS");
        assert_eq!(l.password, "123456789012-auth-token");
        assert_eq!(
            l.endpoint,
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn bad_tokens_and_endpoints_say_what_is_wrong() {
        let e = parse_token("not base64!", "https://x").unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        // base64("nocolon")
        let e = parse_token("bm9jb2xvbg==", "https://x").unwrap_err();
        assert!(e.contains("user:password"), "{e}");
        let e = parse_token("QVdTOnB3", "ftp://x").unwrap_err();
        assert!(e.contains("not an http(s) URL"), "{e}");
    }
}
