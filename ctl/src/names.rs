//! Validated operator inputs: bot names, regions, instance types, certificate ARNs, ports.
//!
//! Every value that ends up in a rendered template (and from there in a UserData script or a
//! resource name) passes through one of these types first, so a template can only ever contain
//! strings from a small, known alphabet. Each error message says the rule that was broken.

use std::fmt;
use std::str::FromStr;

/// Longest bot name: ALB and target group names are limited to 32 characters and we name them
/// `clawster-<bot>` and `clawster-<bot>-tg` (12 extra characters).
pub const BOT_NAME_MAX: usize = 20;

/// An input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The bot name breaks the naming rule.
    #[error(
        "invalid bot name {0:?}: a bot name has 1 to {BOT_NAME_MAX} characters, only lowercase \
         letters a-z, digits 0-9 and hyphens, and does not start or end with a hyphen"
    )]
    BotName(String),
    /// Not an AWS region name.
    #[error("invalid region {0:?}: expected an AWS region name such as us-east-1 or eu-west-2")]
    Region(String),
    /// Not an EC2 instance type.
    #[error("invalid instance type {0:?}: expected an EC2 instance type such as t3.small")]
    InstanceType(String),
    /// The instance type has too little memory for the OpenClaw gateway.
    #[error(
        "instance type {0:?} is too small for a bot host: an idle OpenClaw {gw} gateway uses about \
         {GATEWAY_IDLE_GIB} GiB (measured), and the host also runs the ECS agent, Docker and Sysbox, so \
         a bot host needs at least {MIN_HOST_GIB} GiB; nano and micro sizes have 1 GiB or less. \
         Pick t4g.small (arm64, the default) or t3.small (x86_64)",
        gw = crate::bot::OPENCLAW_VERSION
    )]
    InstanceTooSmall(String),
    /// Not an ACM certificate ARN.
    #[error(
        "invalid certificate ARN {0:?}: expected arn:aws:acm:<region>:<12-digit account>:certificate/<id>"
    )]
    CertificateArn(String),
    /// The certificate lives in another region than the stack.
    #[error(
        "certificate {arn:?} is in region {cert_region}, but the bot stack is in {region}: an ALB can \
         only use an ACM certificate from its own region"
    )]
    CertificateRegion {
        /// The ARN given.
        arn: String,
        /// Region inside the ARN.
        cert_region: String,
        /// Region of the stack.
        region: String,
    },
    /// The gateway port is outside the usable range.
    #[error(
        "invalid gateway port {0}: expected 1024-65535 (the OpenClaw gateway runs unprivileged)"
    )]
    GatewayPort(u32),
    /// Not an image reference by digest.
    #[error(
        "invalid bot image {0:?}: expected REGISTRY/REPOSITORY@sha256:<64 hex digits>, e.g. \
         123456789012.dkr.ecr.us-east-1.amazonaws.com/clawster-openclaw@sha256:... (the image \
         packaging/build-image wrote, pushed, named by digest: a tag could move under the task)"
    )]
    ImageRef(String),
    /// Not a DNS domain the bots' host names can be made under.
    #[error(
        "invalid domain {0:?}: expected a DNS name such as example.com (lowercase letters, digits \
         and hyphens in dot-separated labels of 1 to 63 characters, at least two labels, at most \
         {DOMAIN_MAX} characters so that <bot>.<domain> fits an ALB host-header condition)"
    )]
    Domain(String),
}

/// Longest `--domain`: an ALB host-header value has at most 128 characters and a bot's host name
/// is `<bot>.<domain>` (at most 21 more).
pub const DOMAIN_MAX: usize = 100;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A bot name: 1 to 20 of `[a-z0-9-]`, no leading or trailing hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BotName(String);

impl BotName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BotName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= BOT_NAME_MAX
            && s.chars().all(|c| is_lower_alnum(c) || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::BotName(s.to_string()))
        }
    }
}

impl fmt::Display for BotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `us-east-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    /// The region as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = NameError;

    /// Accepts `<letters>(-<letters>)+-<digits>`, at most 25 characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('-').collect();
        let ok = s.len() <= 25
            && parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1].len() <= 2
            && !parts[parts.len() - 1].is_empty()
            && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::Region(s.to_string()))
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Idle memory of an OpenClaw gateway (2026.9.6), measured: about 0.94 GiB.
pub const GATEWAY_IDLE_GIB: f64 = 0.94;
/// The least memory a bot host may have.
pub const MIN_HOST_GIB: u32 = 2;

/// CPU architecture of a bot host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Intel and AMD types (t3, m6i, ...).
    X86_64,
    /// Graviton types (t4g, m7g, ...).
    Arm64,
}

impl Arch {
    /// The name AWS uses (`x86_64`, `arm64`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The Rust target of the host binaries for this architecture.
    pub fn target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-musl",
            Self::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

/// An EC2 instance type for bot hosts, such as `t4g.small` (arm64) or `t3.small` (x86_64), with
/// at least [`MIN_HOST_GIB`] GiB of memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceType(String);

impl InstanceType {
    /// The instance type as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The architecture of the type: Graviton families have a `g` among the attribute letters
    /// after the generation digit (t4g, m7g, c7gn, r8gd), and `a1` is the first Graviton.
    pub fn arch(&self) -> Arch {
        let family = self.0.split('.').next().unwrap_or_default();
        let attributes: String = family
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .skip(1)
            .collect();
        if attributes.contains('g') || family == "a1" {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }
}

impl FromStr for InstanceType {
    type Err = NameError;

    /// Accepts `<family>.<size>` in lowercase letters, digits and hyphens, and refuses the sizes
    /// with less memory than a bot host needs (`nano` and `micro`: 0.5 and 1 GiB in every family
    /// that has them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((family, size)) = s.split_once('.') else {
            return Err(NameError::InstanceType(s.to_string()));
        };
        let well_formed = s.len() <= 32
            && family.starts_with(|c: char| c.is_ascii_lowercase())
            && family.chars().all(|c| is_lower_alnum(c) || c == '-')
            && !size.is_empty()
            && size.chars().all(is_lower_alnum);
        if !well_formed {
            return Err(NameError::InstanceType(s.to_string()));
        }
        if matches!(size, "nano" | "micro") {
            return Err(NameError::InstanceTooSmall(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for InstanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ACM certificate ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateArn {
    arn: String,
    region: String,
}

impl CertificateArn {
    /// The ARN as a string.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The region named inside the ARN.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Refuses a certificate from another region than `region`.
    pub fn check_region(&self, region: &Region) -> Result<(), NameError> {
        if self.region == region.as_str() {
            Ok(())
        } else {
            Err(NameError::CertificateRegion {
                arn: self.arn.clone(),
                cert_region: self.region.clone(),
                region: region.to_string(),
            })
        }
    }
}

impl FromStr for CertificateArn {
    type Err = NameError;

    /// Accepts `arn:<partition>:acm:<region>:<12 digits>:certificate/<hex and hyphens>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NameError::CertificateArn(s.to_string());
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        let id = resource.strip_prefix("certificate/").ok_or_else(bad)?;
        let ok = arn == "arn"
            && partition.starts_with("aws")
            && partition
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
            && service == "acm"
            && region.parse::<Region>().is_ok()
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if ok {
            Ok(Self {
                arn: s.to_string(),
                region: region.to_string(),
            })
        } else {
            Err(bad())
        }
    }
}

/// The TCP port the OpenClaw gateway listens on inside the task (default 18789).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPort(u16);

impl GatewayPort {
    /// The port OpenClaw uses unless told otherwise.
    pub const DEFAULT: GatewayPort = GatewayPort(18789);

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u32> for GatewayPort {
    type Error = NameError;

    fn try_from(p: u32) -> Result<Self, Self::Error> {
        match u16::try_from(p) {
            Ok(p) if p >= 1024 => Ok(Self(p)),
            _ => Err(NameError::GatewayPort(p)),
        }
    }
}

impl FromStr for GatewayPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("invalid gateway port {s:?}: expected a number 1024-65535"))?;
        GatewayPort::try_from(n).map_err(|e| e.to_string())
    }
}

impl fmt::Display for GatewayPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The DNS domain under which bots on the shared load balancer are reached by host name
/// (`<bot>.<domain>`, served by a wildcard certificate for `*.<domain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain(String);

impl Domain {
    /// The domain as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host name of `bot` under this domain.
    pub fn host(&self, bot: &BotName) -> String {
        format!("{bot}.{}", self.0)
    }
}

impl FromStr for Domain {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let labels: Vec<&str> = s.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| is_lower_alnum(c) || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if s.len() <= DOMAIN_MAX && labels.len() >= 2 && labels.iter().all(label_ok) {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::Domain(s.to_string()))
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bot's container image, by digest: `REGISTRY/REPOSITORY@sha256:<64 hex>`.
///
/// The registry is a host name (with an optional port); repository path components are lowercase
/// letters and digits separated by `.`, `_`, `-` (the OCI distribution grammar). No tag: the task
/// must run exactly the image that was built and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef(String);

/// The CloudFormation AllowedPattern equivalent of [`ImageRef`]'s check.
pub const IMAGE_REF_PATTERN: &str = "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*@sha256:[0-9a-f]{64}$";

impl ImageRef {
    /// The reference as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `sha256:...` digest part.
    pub fn digest(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl FromStr for ImageRef {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NameError::ImageRef(s.to_string());
        let (name, digest) = s.rsplit_once('@').ok_or_else(bad)?;
        let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        let (registry, repo) = name.split_once('/').ok_or_else(bad)?;
        let (host, port) = match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| is_lower_alnum(c) || c == '.' || c == '-')
            && host.starts_with(is_lower_alnum)
            && host.ends_with(is_lower_alnum);
        let port_ok = port
            .is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
        // Each path component: alphanumeric runs joined by single separators.
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.starts_with(is_lower_alnum)
                && c.ends_with(is_lower_alnum)
                && c.chars()
                    .all(|ch| is_lower_alnum(ch) || matches!(ch, '.' | '_' | '-'))
                && !c
                    .as_bytes()
                    .windows(2)
                    .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
        };
        if host_ok && port_ok && repo.split('/').all(component_ok) {
            Ok(Self(s.to_string()))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern_matches(s: &str) -> bool {
        regex::Regex::new(IMAGE_REF_PATTERN)
            .expect("pattern")
            .is_match(s)
    }

    #[test]
    fn image_refs_need_a_registry_a_repository_and_a_digest() {
        let d = "0123456789abcdef".repeat(4);
        for good in [
            format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/clawster-openclaw@sha256:{d}"),
            format!("localhost:5000/clawster/openclaw@sha256:{d}"),
            format!("127.0.0.1:5000/a.b_c-d@sha256:{d}"),
        ] {
            let r: ImageRef = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(r.digest(), format!("sha256:{d}"));
            assert!(pattern_matches(&good), "{good} fails the template pattern");
        }
        for bad in [
            format!("clawster-openclaw@sha256:{d}"),
            "registry.example/openclaw:2026.9.6".to_string(),
            format!("registry.example/openclaw@sha256:{}", &d[1..]),
            format!("registry.example/openclaw@sha256:{}", d.to_uppercase()),
            format!("registry.example/OpenClaw@sha256:{d}"),
            format!("registry.example/open__claw@sha256:{d}"),
            format!("registry.example/openclaw@sha512:{d}"),
            format!("registry.example:99999999/openclaw@sha256:{d}"),
            format!("-registry/openclaw@sha256:{d}"),
            format!("registry.example/openclaw@sha256:{d}\n"),
        ] {
            let e = bad.parse::<ImageRef>().expect_err(&bad);
            assert!(e.to_string().contains("REGISTRY/REPOSITORY@sha256"), "{e}");
            assert!(!pattern_matches(&bad), "{bad} passes the template pattern");
        }
    }

    #[test]
    fn domains_are_checked_and_name_hosts() {
        let d: Domain = "bots.example.com".parse().expect("domain");
        let bot: BotName = "alpha".parse().expect("bot");
        assert_eq!(d.host(&bot), "alpha.bots.example.com");
        let long = format!("{}.{}.com", "a".repeat(63), "b".repeat(DOMAIN_MAX - 68));
        assert_eq!(long.len(), DOMAIN_MAX);
        assert!(long.parse::<Domain>().is_ok(), "{long}");
        for bad in [
            "",
            "com",
            "Example.com",
            "-a.com",
            "a-.com",
            "a..com",
            "*.example.com",
            "a b.com",
            "exa_mple.com",
            &format!("{}.{}.com", "a".repeat(63), "b".repeat(DOMAIN_MAX - 67)),
            &format!("{}.com", "a".repeat(64)),
        ] {
            let e = bad.parse::<Domain>().expect_err(bad).to_string();
            assert!(
                e.contains("invalid domain") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
    }

    #[test]
    fn bot_names_follow_the_rule() {
        for good in ["a", "my-bot", "bot1", "a-b-c", "x1234567890123456789", "0"] {
            assert_eq!(good.parse::<BotName>().expect(good).as_str(), good);
        }
        for bad in [
            "",
            "-bot",
            "bot-",
            "My-Bot",
            "bot_1",
            "bot.1",
            "bot 1",
            "x12345678901234567890",
            "bøt",
            "bot;rm",
        ] {
            let e = bad.parse::<BotName>().expect_err(bad).to_string();
            assert!(e.contains("20 characters") && e.contains("hyphen"), "{e}");
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn regions_are_checked() {
        for good in [
            "us-east-1",
            "eu-west-2",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-2",
        ] {
            assert_eq!(good.parse::<Region>().expect(good).as_str(), good);
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-1a",
            "us_east_1",
            "useast1",
            "us--1",
            "us-east-123",
        ] {
            let e = bad.parse::<Region>().expect_err(bad).to_string();
            assert!(e.contains("region"), "{e}");
        }
    }

    #[test]
    fn instance_types_know_their_arch_and_refuse_too_little_memory() {
        for (good, arch) in [
            ("t4g.small", Arch::Arm64),
            ("m7g.large", Arch::Arm64),
            ("c7gn.xlarge", Arch::Arm64),
            ("r8gd.medium", Arch::Arm64),
            ("a1.large", Arch::Arm64),
            ("t3.small", Arch::X86_64),
            ("t3a.medium", Arch::X86_64),
            ("m6i.large", Arch::X86_64),
            ("c5n.xlarge", Arch::X86_64),
            ("m5d.metal", Arch::X86_64),
        ] {
            let t: InstanceType = good.parse().expect(good);
            assert_eq!(t.arch(), arch, "{good}");
        }
        assert_eq!(Arch::Arm64.target(), "aarch64-unknown-linux-musl");
        assert_eq!(Arch::X86_64.target(), "x86_64-unknown-linux-musl");
        for bad in ["t3", "T3.small", "t3.", ".small", "t3.small;x", "t3 small"] {
            assert!(
                matches!(bad.parse::<InstanceType>(), Err(NameError::InstanceType(_))),
                "{bad}"
            );
        }
        for small in ["t4g.micro", "t4g.nano", "t3.micro", "t2.nano"] {
            let e = small.parse::<InstanceType>().expect_err(small);
            assert!(matches!(e, NameError::InstanceTooSmall(_)), "{small}");
            let text = e.to_string();
            for word in ["0.94 GiB", "at least 2 GiB", "t4g.small", small] {
                assert!(text.contains(word), "{word:?} missing in {text}");
            }
        }
    }

    #[test]
    fn certificate_arns_are_checked_with_their_region() {
        let arn =
            "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666";
        let c: CertificateArn = arn.parse().expect("arn");
        assert_eq!(c.region(), "us-east-1");
        assert!(c
            .check_region(&"us-east-1".parse().expect("region"))
            .is_ok());
        let e = c
            .check_region(&"eu-west-1".parse().expect("region"))
            .expect_err("other region");
        assert!(e.to_string().contains("eu-west-1") && e.to_string().contains("us-east-1"));
        for bad in [
            "arn:aws:iam::123456789012:server-certificate/x",
            "arn:aws:acm:us-east-1:12345:certificate/abc",
            "arn:aws:acm:us-east-1:123456789012:certificate/",
            "arn:aws:acm:us-east-1:123456789012:certificate/abc;reboot",
            "not-an-arn",
        ] {
            let e = bad.parse::<CertificateArn>().expect_err(bad).to_string();
            assert!(e.contains("certificate ARN"), "{e}");
        }
    }

    #[test]
    fn gateway_ports_are_unprivileged() {
        assert_eq!("18789".parse::<GatewayPort>().expect("port").get(), 18789);
        assert_eq!(GatewayPort::DEFAULT.get(), 18789);
        for bad in ["80", "0", "70000", "x", "-1"] {
            let e = bad.parse::<GatewayPort>().expect_err(bad);
            assert!(e.contains("1024-65535"), "{e}");
        }
    }
}
