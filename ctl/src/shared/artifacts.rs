//! The shared stack's artifacts group: the private, versioned bucket holding the release binaries
//! under `artifacts/`, readable only over TLS.

use serde_json::json;

use crate::cfn::{self, get_att, r, resource, sub, Resources, Skip};

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
                    "Rules": [{
                        "Id": "expire-replaced-releases",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": { "NoncurrentDays": 90 },
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 }
                    }]
                },
                "Tags": cfn::tags(sub("${AWS::StackName}-artifacts"))
            }),
            &[
                Skip {
                    id: "CKV_AWS_18",
                    reason: "Holds only release binaries whose SHA256 is pinned in the templates; server access logs would need a second bucket and add cost without protecting them.",
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
