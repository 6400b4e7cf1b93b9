//! AWS access for `clawsterctl deploy|status|destroy|window|health|logs`.
//!
//! One [`Aws`] value holds a client per service ctl calls, built the ecosystem's way: aws-config's
//! standard chain for credentials (environment, `--profile`/`AWS_PROFILE`, SSO, web identity,
//! container and instance roles), `--region`/`AWS_REGION`/the profile's region, and
//! `AWS_ENDPOINT_URL` (which is how the tests point ctl at the moto emulator). TLS is rustls with
//! ring. The fields are public so tests can build an `Aws` from scripted clients
//! (aws-smithy-mocks) instead.
//!
//! Every SDK error leaves this module as an [`AwsError`]: one sentence that says what went wrong
//! and what to do (credentials, region, permission, throttling, the network), never an SDK dump.

mod error;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region as SdkRegion};

pub use error::{is_throttling, AwsError, ErrorKind};

use crate::names::Region;

/// How to reach AWS: the operator's `--profile` and `--region` (both optional: the standard
/// environment variables and config files are read when absent).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Named profile of ~/.aws/config (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// Region (else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile's).
    pub region: Option<Region>,
}

/// The HTTPS client every AWS call goes through: rustls with ring (the SDK's default would pull
/// aws-lc's C build into ctl).
pub fn https_client() -> aws_sdk_cloudformation::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// One client per AWS service ctl calls, all for one region.
#[derive(Debug, Clone)]
pub struct Aws {
    /// The region every client talks to.
    pub region: Region,
    /// CloudFormation: the shared and bot stacks.
    pub cfn: aws_sdk_cloudformation::Client,
    /// S3: the release binaries in the artifacts bucket.
    pub s3: aws_sdk_s3::Client,
    /// Secrets Manager: the bot's OpenClaw configuration.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// ECR: the bot image's repository and the registry login.
    pub ecr: aws_sdk_ecr::Client,
    /// ECS: starting and watching the bot's service.
    pub ecs: aws_sdk_ecs::Client,
    /// ELBv2: the health of the bot's target.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// EC2: the NAT route and instance.
    pub ec2: aws_sdk_ec2::Client,
    /// SSM: commands on hosts.
    pub ssm: aws_sdk_ssm::Client,
    /// Auto Scaling: the bot's host.
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl Aws {
    /// Loads the configuration from the standard chain and builds the clients.
    ///
    /// Credentials are resolved lazily by the SDK; the first call reports missing or expired ones
    /// through [`AwsError`]. A missing region is reported here.
    pub async fn connect(options: &AwsOptions) -> Result<Self, AwsError> {
        // Upload stall protection measures the time to the response as if the request body were
        // stalled: a CreateStack answered after a few seconds (an emulator creating everything
        // synchronously) was retried and created twice. Request bodies here are small.
        let stall = aws_config::stalled_stream_protection::StalledStreamProtectionConfig::enabled()
            .upload_enabled(false)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .stalled_stream_protection(stall)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &options.region {
            loader = loader.region(SdkRegion::new(region.as_str().to_string()));
        }
        let conf = loader.load().await;
        let region = match conf.region() {
            Some(r) => r.as_ref().parse::<Region>().map_err(|_| {
                AwsError::new(
                    ErrorKind::Usage,
                    format!(
                        "the configured region {:?} is not an AWS region name: pass --region, e.g. --region us-east-1",
                        r.as_ref()
                    ),
                )
            })?,
            None => {
                return Err(AwsError::new(
                    ErrorKind::Usage,
                    "no AWS region: pass --region (e.g. --region us-east-1), set AWS_REGION, or set a region in your AWS profile".to_string(),
                ))
            }
        };
        Ok(Self::from_config(&conf, region))
    }

    /// Builds every client from one loaded configuration.
    pub fn from_config(conf: &aws_config::SdkConfig, region: Region) -> Self {
        // S3 in path style: virtual-host style needs DNS for every bucket name, which endpoints
        // given by address (an emulator, a VPC endpoint by IP) do not have.
        let s3 = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(conf.endpoint_url().is_some())
            .build();
        Self {
            region,
            cfn: aws_sdk_cloudformation::Client::new(conf),
            s3: aws_sdk_s3::Client::from_conf(s3),
            secrets: aws_sdk_secretsmanager::Client::new(conf),
            ecr: aws_sdk_ecr::Client::new(conf),
            ecs: aws_sdk_ecs::Client::new(conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(conf),
            ec2: aws_sdk_ec2::Client::new(conf),
            ssm: aws_sdk_ssm::Client::new(conf),
            autoscaling: aws_sdk_autoscaling::Client::new(conf),
        }
    }
}
