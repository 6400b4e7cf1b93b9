//! The shared stack's artifacts group: the private, versioned bucket holding the release binaries
//! under `artifacts/` and each bot's replicated state under `state/<bot>/` ([`crate::state`]),
//! readable only over TLS.

use serde_json::json;

use crate::cfn::{self, get_att, r, resource, sub, Resources, Skip};
use crate::manifest::ARTIFACTS_PREFIX;
use crate::state::{RETENTION_DAYS, STATE_PREFIX};

/// Days a replaced release binary stays as a noncurrent version.
const RELEASE_RETENTION_DAYS: u32 = 90;

/// Adds the artifacts bucket and its policy.
pub(super) fn build(res: &mut Resources) {
    res.add(
        "ArtifactsBucket",
        resource(
            "AWS::S3::Bucket",
            json!({
                "BucketName": sub("clawster-artifacts-${AWS::AccountId}-${AWS::Region}"),
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "aws:kms" },
                        "BucketKeyEnabled": true
                    }]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": true,
                    "BlockPublicPolicy": true,
                    "IgnorePublicAcls": true,
                    "RestrictPublicBuckets": true
                },
                "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
                "VersioningConfiguration": { "Status": "Enabled" },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-replaced-releases",
                            "Status": "Enabled",
                            "Prefix": format!("{ARTIFACTS_PREFIX}/"),
                            "NoncurrentVersionExpiration": { "NoncurrentDays": RELEASE_RETENTION_DAYS },
                            "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                        },
                        {
                            // Replaced or deleted state stays restorable (`restore --at`) this
                            // long, then goes: an idle bot's replica does not grow without bound.
                            // Delete markers left alone by then go too.
                            "Id": "expire-replaced-state",
                            "Status": "Enabled",
                            "Prefix": format!("{STATE_PREFIX}/"),
                            "NoncurrentVersionExpiration": { "NoncurrentDays": RETENTION_DAYS },
                            "ExpiredObjectDeleteMarker": true,
                            "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 1 }
                        }
                    ]
                },
                "Tags": cfn::tags(sub("${AWS::StackName}-artifacts"))
            }),
            &[
                Skip {
                    id: "CKV_AWS_18",
                    reason: "Holds release binaries whose SHA256 is pinned in the templates and the bots' state replicas, each written only by its own bot host's role; server access logs would need a second bucket and add cost without protecting them.",
                },
            ],
            &[],
        ),
    );
    res.add(
        "ArtifactsBucketPolicy",
        resource(
            "AWS::S3::BucketPolicy",
            json!({
                "Bucket": r("ArtifactsBucket"),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "DenyPlainHttp",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [get_att("ArtifactsBucket", "Arn"), sub("${ArtifactsBucket.Arn}/*")],
                        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
                    }]
                }
            }),
            &[],
            &[],
        ),
    );
}
