//! The UserData scripts of the NAT instance and the bot hosts.
//!
//! Both are a few lines of bash that do one thing: download one binary from the shared artifacts
//! bucket, refuse it unless its SHA256 equals the hash pinned at render time, install it, and hand
//! over. No package is installed at boot (a t4g.nano runs dnf out of memory; see the NAT facts).
//!
//! How the download works, and why this way: `curl` signs the S3 GET itself (`--aws-sigv4`)
//! with the instance role's temporary credentials read from IMDSv2. The bucket stays private
//! (public access blocked, no anonymous or presigned path) and only the two instance roles may
//! read `artifacts/*`. The request goes to the regional S3 endpoint, which the VPC routes through
//! the S3 gateway endpoint, so a bot host can fetch its agent before the NAT route exists and the
//! NAT instance before its Elastic IP is attached. We do not use `aws s3 cp` because the
//! ECS-optimized AL2023 AMI is built from AL2023 minimal, which ships curl and python3 but not
//! the AWS CLI. The credentials reach curl through its config on stdin, never its argv, and the
//! script never runs with `set -x`, so they land in no log.
//!
//! Every value embedded here is validated first (bot name, manifest path and hash alphabets in
//! [`crate::names`] and [`crate::manifest`]), so the scripts hold no operator-controlled text.

use serde_json::{json, Value};

use crate::cfn;

/// The systemd unit the NAT UserData writes for `clawster-nat-agent run`: the one we ship.
pub const NAT_AGENT_UNIT: &str = include_str!("../../systemd/clawster-nat-agent.service");

/// Where each host installs the binary it downloads.
pub const AGENT_PATH: &str = "/usr/local/bin/clawster-agent";
/// Where the NAT instance installs its agent.
pub const NAT_AGENT_PATH: &str = "/usr/local/bin/clawster-nat-agent";
/// Name of the NAT agent's unit.
pub const NAT_AGENT_UNIT_NAME: &str = "clawster-nat-agent.service";

/// Download attempts (10 s apart) before the bot host gives up: about 10 minutes.
const BOT_TRIES: u32 = 60;
/// Download attempts for the NAT instance: about 20 minutes, because its stack also creates the
/// bucket and `clawsterctl deploy` uploads the artifacts only once the bucket exists.
const NAT_TRIES: u32 = 120;

/// The SHA256 of an empty body: S3 wants `x-amz-content-sha256` on every signed request.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The shared download-and-verify part. `${Bucket}` and `${AWS::Region}` are left for `Fn::Sub`.
fn fetch_and_verify(dst: &str, key: &str, sha256: &str, tries: u32) -> String {
    format!(
        r#"set -euo pipefail
dst={dst}
url=https://${{Bucket}}.s3.${{AWS::Region}}.amazonaws.com/{key}
md=http://169.254.169.254/latest
fetch() {{
  tok=$(curl -sf -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' $md/api/token) || return 1
  role=$(curl -sf -m 5 -H "X-aws-ec2-metadata-token: $tok" $md/meta-data/iam/security-credentials/) || return 1
  curl -sf -m 5 -H "X-aws-ec2-metadata-token: $tok" "$md/meta-data/iam/security-credentials/$role" |
    python3 -c 'import json,sys; c=json.load(sys.stdin); print("user = \"%s:%s\"\nheader = \"x-amz-security-token: %s\"" % (c["AccessKeyId"], c["SecretAccessKey"], c["Token"]))' |
    curl -sf -m 300 -K - --aws-sigv4 aws:amz:${{AWS::Region}}:s3 -H 'x-amz-content-sha256: {EMPTY_SHA256}' -o "$dst.part" "$url"
}}
for try in $(seq {tries}); do fetch && break; sleep 10; done
echo "{sha256}  $dst.part" | sha256sum --check --status || {{ echo "clawster: $url is missing or does not match the pinned SHA256" >&2; rm -f "$dst.part"; exit 1; }}
chmod 0755 "$dst.part" && mv -f "$dst.part" "$dst"
"#
    )
}

/// The bot host's script: fetch and verify `clawster-agent`, then `exec` its bootstrap with the
/// host security baseline's ECS subset (SSM agent checked, SSH masked, inbound firewall; the
/// task's own traffic arrives on its awsvpc interface, not through the host's input chain), and
/// where the bot's state replica lives (the artifacts bucket, `state/<bot>/`).
pub fn bot_script(key: &str, sha256: &str, cluster: &str, bot: &str) -> String {
    format!(
        "#!/bin/bash\n# Clawster bot host: fetch clawster-agent, check its pinned SHA256, hand the boot to it.\n{}exec \"$dst\" bootstrap --cluster {cluster} --baseline ecs-host --state-bucket ${{Bucket}} --bot {bot}\n",
        fetch_and_verify(AGENT_PATH, key, sha256, BOT_TRIES)
    )
}

/// The NAT instance's script: fetch and verify `clawster-nat-agent`, write and start its unit.
pub fn nat_script(key: &str, sha256: &str) -> String {
    format!(
        "#!/bin/bash\n# Clawster NAT instance: fetch clawster-nat-agent, check its pinned SHA256, install and start it.\n{}cat > /etc/systemd/system/{NAT_AGENT_UNIT_NAME} <<'UNIT'\n{}UNIT\nchmod 0644 /etc/systemd/system/{NAT_AGENT_UNIT_NAME}\nsystemctl daemon-reload\nsystemctl enable {NAT_AGENT_UNIT_NAME}\nsystemctl start --no-block {NAT_AGENT_UNIT_NAME}\n",
        fetch_and_verify(NAT_AGENT_PATH, key, sha256, NAT_TRIES),
        // The script goes through Fn::Sub, which spells a literal `${x}` as `${!x}`.
        NAT_AGENT_UNIT.replace("${", "${!")
    )
}

/// `Fn::Base64` of `Fn::Sub` of a script, with `${Bucket}` bound to `bucket`.
pub fn encode(script: &str, bucket: Value) -> Value {
    json!({ "Fn::Base64": cfn::sub_with(script, json!({ "Bucket": bucket })) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_pin_the_hash_and_leave_only_known_sub_variables() {
        let sha = "ab".repeat(32);
        for script in [
            bot_script(
                "artifacts/0.1.0/x/clawster-agent",
                &sha,
                "clawster-demo",
                "demo",
            ),
            nat_script("k", &sha),
        ] {
            assert!(script.contains(&format!("echo \"{sha}  $dst.part\" | sha256sum --check")));
            let vars: Vec<&str> = script
                .split("${")
                .skip(1)
                .map(|s| &s[..s.find('}').unwrap_or(0)])
                .collect();
            assert!(
                vars.iter().all(|v| *v == "Bucket" || *v == "AWS::Region"),
                "{vars:?}"
            );
            assert!(!script.contains("set -x"));
        }
    }

    #[test]
    fn unit_runs_the_agent_and_fits_in_the_heredoc() {
        assert!(NAT_AGENT_UNIT.contains("ExecStart=/usr/local/bin/clawster-nat-agent run"));
        assert!(NAT_AGENT_UNIT.contains("Type=notify"));
        assert!(NAT_AGENT_UNIT.ends_with('\n'));
        assert!(
            !NAT_AGENT_UNIT.lines().any(|l| l == "UNIT"),
            "the heredoc delimiter must not occur"
        );
    }
}
