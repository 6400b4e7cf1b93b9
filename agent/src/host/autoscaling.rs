//! EC2 Auto Scaling, the boundary the end of a host talks to: the two Query-protocol calls the
//! state capability needs to let a terminating instance go (`DescribeAutoScalingInstances` to
//! find this instance's group, `CompleteLifecycleAction` once the final sync is taken).
//!
//! Query protocol: `POST /` with a form body (`Action=...&Version=2011-01-01&...`), signed with
//! SigV4 for service `autoscaling` ([`super::sigv4`], the signer S3 uses), an XML answer.
//! Endpoint `https://autoscaling.<region>.amazonaws.com` (reached through the NAT), or an
//! explicit one (a stand-in on loopback in tests).

use std::io::Read;
use std::time::Duration;

use clawster_core::timefmt::fmt_amz;

use super::s3::xml_text;
use super::sigv4::{payload_hash, sign, uri_encode, Canonical, KeyRing, Scope};
pub use super::sigv4::{unix_now, CredentialSource};

/// The API version of every call.
pub const API_VERSION: &str = "2011-01-01";
/// Largest answer read.
const MAX_BODY: u64 = 1 << 20;
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// A failed Auto Scaling call.
#[derive(Debug, thiserror::Error)]
pub enum AutoscalingError {
    /// Auto Scaling answered with an error status.
    #[error("autoscaling {action}: HTTP {status} {code}: {message}")]
    Status {
        /// The action (`CompleteLifecycleAction`, ...).
        action: &'static str,
        /// HTTP status.
        status: u16,
        /// The error code (`ValidationError`, `Throttling`, ...), empty when the body had none.
        code: String,
        /// The message.
        message: String,
    },
    /// The request did not complete.
    #[error("autoscaling {action}: {message}")]
    Transport {
        /// The action.
        action: &'static str,
        /// What went wrong.
        message: String,
    },
    /// No credentials could be found.
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// A region or endpoint that cannot be right.
    #[error("invalid autoscaling setting: {0}")]
    Invalid(String),
    /// The instance is in no Auto Scaling group.
    #[error("autoscaling DescribeAutoScalingInstances: instance {0} is in no Auto Scaling group")]
    NotInGroup(String),
}

impl AutoscalingError {
    /// True when trying again may succeed: no answer, a server error, throttling.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, code, .. } => {
                *status >= 500 || *status == 429 || code.contains("Throttl")
            }
            Self::Credentials(_) => true,
            Self::Invalid(_) | Self::NotInGroup(_) => false,
        }
    }
}

/// The outcome a lifecycle action is completed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionResult {
    /// Let the instance go on (terminate).
    Continue,
    /// Abandon (for a terminating instance, also terminate, without later hooks).
    Abandon,
}

impl ActionResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::Abandon => "ABANDON",
        }
    }
}

/// The form body of one call: `Action`, `Version` and the parameters, encoded and sorted.
pub fn form_body(action: &str, params: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = [("Action", action), ("Version", API_VERSION)]
        .iter()
        .chain(params)
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A client for one region.
#[derive(Debug)]
pub struct Autoscaling {
    region: String,
    /// (scheme, host[:port]) requests go to.
    target: (String, String),
    keys: KeyRing,
    agent: ureq::Agent,
}

impl Autoscaling {
    /// A client for `region`; `endpoint` (`http://127.0.0.1:9000`) replaces AWS's.
    pub fn new(
        region: &str,
        endpoint: Option<&str>,
        creds: CredentialSource,
    ) -> Result<Self, AutoscalingError> {
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AutoscalingError::Invalid(format!(
                "region {region:?}: must be like us-east-1"
            )));
        }
        let target = match endpoint {
            Some(e) => {
                let e = e.trim_end_matches('/');
                let (scheme, host) = e.split_once("://").ok_or_else(|| {
                    AutoscalingError::Invalid(format!(
                        "endpoint {e:?}: expected http://HOST:PORT or https://HOST"
                    ))
                })?;
                if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
                    return Err(AutoscalingError::Invalid(format!(
                        "endpoint {e:?}: expected http://HOST:PORT or https://HOST"
                    )));
                }
                (scheme.to_string(), host.to_string())
            }
            None => (
                "https".to_string(),
                format!("autoscaling.{region}.amazonaws.com"),
            ),
        };
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(20)))
            .http_status_as_error(false)
            .user_agent(format!("clawster-agent/{}", clawster_core::VERSION))
            .build()
            .into();
        Ok(Self {
            region: region.to_string(),
            target,
            keys: KeyRing::new(creds),
            agent,
        })
    }

    /// Sends one signed call; the answer's body on HTTP 200.
    fn call(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<String, AutoscalingError> {
        let transport = |m: String| AutoscalingError::Transport { action, message: m };
        let creds = self
            .keys
            .get()
            .map_err(|e| AutoscalingError::Credentials(e.0))?;
        let body = form_body(action, params);
        let hash = payload_hash(body.as_bytes());
        let amz_date = fmt_amz(unix_now());
        let (scheme, host) = &self.target;
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), FORM.into()),
            ("host".into(), host.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(t) = &creds.token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        headers.sort();
        let auth = sign(
            &creds,
            Scope {
                region: &self.region,
                service: "autoscaling",
            },
            &amz_date,
            Canonical {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                payload_hash: &hash,
            },
        );
        let mut req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{scheme}://{host}/"));
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let req = req
            .header("authorization", auth)
            .body(body.into_bytes())
            .map_err(|e| transport(e.to_string()))?;
        let resp = self.agent.run(req).map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        resp.into_body()
            .into_with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut out)
            .map_err(|e| transport(format!("reading the answer: {e}")))?;
        let text = String::from_utf8_lossy(&out).into_owned();
        if status == 200 {
            Ok(text)
        } else {
            Err(parse_error(action, status, &text))
        }
    }

    /// The Auto Scaling group `instance` belongs to.
    pub fn group_of(&self, instance: &str) -> Result<String, AutoscalingError> {
        let action = "DescribeAutoScalingInstances";
        let xml = self.call(action, &[("InstanceIds.member.1", instance)])?;
        parse_group(&xml).ok_or_else(|| AutoscalingError::NotInGroup(instance.to_string()))
    }

    /// Completes the pending lifecycle action of hook `hook` for `instance` in `group`.
    pub fn complete_lifecycle_action(
        &self,
        group: &str,
        hook: &str,
        instance: &str,
        result: ActionResult,
    ) -> Result<(), AutoscalingError> {
        self.call(
            "CompleteLifecycleAction",
            &[
                ("AutoScalingGroupName", group),
                ("LifecycleHookName", hook),
                ("InstanceId", instance),
                ("LifecycleActionResult", result.as_str()),
            ],
        )
        .map(|_| ())
    }
}

/// The error of a non-200 answer: its `<Code>` and `<Message>` when the body is the Query
/// protocol's `<ErrorResponse>`, else the start of the body.
pub fn parse_error(action: &'static str, status: u16, body: &str) -> AutoscalingError {
    let code = xml_text(body, "Code").unwrap_or_default();
    let message = xml_text(body, "Message").unwrap_or_else(|| {
        let t: String = body.trim().chars().take(200).collect();
        if t.is_empty() {
            "(empty answer)".into()
        } else {
            t
        }
    });
    AutoscalingError::Status {
        action,
        status,
        code,
        message,
    }
}

/// The group name of a `DescribeAutoScalingInstances` answer (its first instance).
pub fn parse_group(xml: &str) -> Option<String> {
    let start = xml.find("<AutoScalingInstances>")?;
    xml_text(&xml[start..], "AutoScalingGroupName").filter(|g| !g.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_encoded_and_sorted() {
        assert_eq!(
            form_body(
                "CompleteLifecycleAction",
                &[
                    ("LifecycleHookName", "clawster-final-sync"),
                    ("AutoScalingGroupName", "clawster my/bot"),
                    ("InstanceId", "i-0abc"),
                    ("LifecycleActionResult", "CONTINUE"),
                ]
            ),
            "Action=CompleteLifecycleAction&AutoScalingGroupName=clawster%20my%2Fbot\
             &InstanceId=i-0abc&LifecycleActionResult=CONTINUE\
             &LifecycleHookName=clawster-final-sync&Version=2011-01-01"
        );
        assert_eq!(
            form_body(
                "DescribeAutoScalingInstances",
                &[("InstanceIds.member.1", "i-1")]
            ),
            "Action=DescribeAutoScalingInstances&InstanceIds.member.1=i-1&Version=2011-01-01"
        );
    }

    #[test]
    fn reads_the_group_of_an_instance() {
        let xml = r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingInstancesResult><AutoScalingInstances><member>
    <AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>Terminating:Wait</LifecycleState>
    <InstanceId>i-0abc</InstanceId><AutoScalingGroupName>clawster-my-bot-Hosts-1X&amp;Y</AutoScalingGroupName>
  </member></AutoScalingInstances></DescribeAutoScalingInstancesResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>"#;
        assert_eq!(
            parse_group(xml).as_deref(),
            Some("clawster-my-bot-Hosts-1X&Y")
        );
        let none = "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>\
            <AutoScalingInstances/></DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>";
        assert_eq!(parse_group(none), None);
        assert_eq!(parse_group("garbage"), None);
    }

    #[test]
    fn reads_query_errors() {
        let xml = "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
            <Error><Type>Sender</Type><Code>ValidationError</Code>\
            <Message>No active Lifecycle Action found with instance ID i-0abc</Message></Error>\
            <RequestId>r2</RequestId></ErrorResponse>";
        let e = parse_error("CompleteLifecycleAction", 400, xml);
        assert_eq!(
            e.to_string(),
            "autoscaling CompleteLifecycleAction: HTTP 400 ValidationError: No active Lifecycle Action found with instance ID i-0abc"
        );
        assert!(!e.retryable());
        let throttled = parse_error(
            "CompleteLifecycleAction",
            400,
            "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        );
        assert!(throttled.retryable());
        let e = parse_error("CompleteLifecycleAction", 503, "");
        assert!(e.retryable());
        assert!(
            e.to_string().contains("HTTP 503") && e.to_string().contains("(empty answer)"),
            "{e}"
        );
        let e = parse_error("CompleteLifecycleAction", 502, "<html>bad gateway</html>");
        assert!(e.to_string().contains("<html>bad gateway</html>"), "{e}");
    }

    #[test]
    fn refuses_bad_settings() {
        let creds =
            || CredentialSource::Static(super::super::sigv4::Credentials::fixed("a", "b", None));
        for (region, endpoint, want) in [
            ("us east", None, "region"),
            ("us-east-1", Some("127.0.0.1:9000"), "endpoint"),
            ("us-east-1", Some("ftp://x"), "endpoint"),
            ("us-east-1", Some("http://x/path"), "endpoint"),
        ] {
            let e = Autoscaling::new(region, endpoint, creds()).expect_err(want);
            assert!(e.to_string().contains(want), "{e}");
        }
        let ok = Autoscaling::new("eu-west-1", None, creds()).expect("aws");
        assert_eq!(ok.target.1, "autoscaling.eu-west-1.amazonaws.com");
        let ok = Autoscaling::new("eu-west-1", Some("http://127.0.0.1:9000/"), creds())
            .expect("override");
        assert_eq!(ok.target, ("http".into(), "127.0.0.1:9000".into()));
    }
}
