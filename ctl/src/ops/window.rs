//! `clawsterctl window open|close|status BOT`: the request to the window document
//! ([`crate::shared::window_document`]), checked with the agent's own rules
//! ([`clawster_core::window_rules`]) before anything is sent, and sent in the wire form the
//! document's `allowedPattern`s admit.

use clawster_core::window_rules::{self, OpenError, OpenRequest, DEFAULT_MAX_TTL};

use super::invocation::HostCommand;
use super::{params, Parameters};

/// The shared stack's output naming the window document.
pub const DOCUMENT_OUTPUT: &str = "WindowDocumentName";
/// The document's `action` values.
pub const ACTIONS: [&str; 3] = ["open", "close", "status"];
/// The document's `format` values (`status` only).
pub const FORMATS: [&str; 2] = ["text", "json"];
/// The TTL cap the document's agent applies: the document passes no `--max-ttl`.
pub const DOCUMENT_MAX_TTL: std::time::Duration = DEFAULT_MAX_TTL;

/// A window request refused before it was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowArgsError {
    /// The agent's rules refuse it (the same message the agent would give).
    #[error(transparent)]
    Input(#[from] OpenError),
    /// SSM would replace `{{ssm:NAME}}` in a parameter value with a Parameter Store value, so a
    /// reason would not be recorded as typed.
    #[error("--reason must not contain \"{{{{\": SSM would replace {{{{ssm:NAME}}}} in it with a Parameter Store value")]
    ReasonTemplate,
}

/// A checked `window` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowArgs {
    /// Open (or replace) the window.
    Open(OpenRequest),
    /// Lock it at once.
    Close,
    /// Show it, as the agent's text or its JSON.
    Status {
        /// `--json`.
        json: bool,
    },
}

impl WindowArgs {
    /// `window open --pkgs PKGS --ttl TTL [--reason TEXT]`, with the agent's rules (packages
    /// separated by commas and/or spaces, duplicates dropped; TTL up to the document's cap).
    pub fn open(pkgs: &str, ttl: &str, reason: Option<&str>) -> Result<Self, WindowArgsError> {
        let reason = reason.unwrap_or("");
        let req = OpenRequest::parse(pkgs, ttl, reason, DOCUMENT_MAX_TTL)?;
        if req.reason.contains("{{") {
            return Err(WindowArgsError::ReasonTemplate);
        }
        Ok(Self::Open(req))
    }

    /// The shared stack output whose value is the document to run.
    pub fn document(&self) -> &'static str {
        DOCUMENT_OUTPUT
    }

    /// What runs on the host (for [`super::invocation::interpret`]).
    pub fn command(&self) -> HostCommand {
        match self {
            Self::Open(_) => HostCommand::WindowOpen,
            Self::Close => HostCommand::WindowClose,
            Self::Status { .. } => HostCommand::WindowStatus,
        }
    }

    /// SendCommand's parameters: every parameter the action reads, in the wire form.
    pub fn parameters(&self) -> Parameters {
        match self {
            Self::Open(r) => params([
                ("action", "open".into()),
                ("pkgs", r.pkgs_param()),
                ("ttl", r.ttl_param()),
                ("reason", r.reason.clone()),
            ]),
            Self::Close => params([("action", "close".into())]),
            Self::Status { json } => params([
                ("action", "status".into()),
                ("format", if *json { "json" } else { "text" }.into()),
            ]),
        }
    }
}

/// The `allowedPattern` of a parameter whose values are a fixed list.
pub fn one_of(values: &[&str]) -> String {
    format!("^({})$", values.join("|"))
}

/// The window document's `allowedPattern`s, by parameter, rendered from the agent's rules.
pub fn patterns() -> [(&'static str, String); 5] {
    [
        ("action", one_of(&ACTIONS)),
        ("pkgs", window_rules::pkgs_pattern()),
        ("ttl", window_rules::ttl_pattern(DOCUMENT_MAX_TTL)),
        ("reason", window_rules::reason_pattern()),
        ("format", one_of(&FORMATS)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(pkgs: &str, ttl: &str, reason: Option<&str>) -> String {
        let e = WindowArgs::open(pkgs, ttl, reason).expect_err("refused");
        format!("{:#}", anyhow::Error::new(e))
    }

    #[test]
    fn open_produces_the_wire_form() {
        let a = WindowArgs::open("nginx, htop nginx", "010m", Some("ticket 42")).expect("ok");
        let want: Parameters = [
            ("action", "open"),
            ("pkgs", "nginx,htop"),
            ("ttl", "10m"),
            ("reason", "ticket 42"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect();
        assert_eq!(a.parameters(), want);
        assert_eq!(a.command(), HostCommand::WindowOpen);
        assert_eq!(a.document(), "WindowDocumentName");
        let a = WindowArgs::open("Nginx", "3600s", None).expect("ok");
        assert_eq!(a.parameters()["ttl"], ["1h"]);
        assert_eq!(a.parameters()["reason"], [""]);
    }

    #[test]
    fn close_and_status() {
        assert_eq!(
            WindowArgs::Close.parameters(),
            Parameters::from([("action".into(), vec!["close".into()])])
        );
        let s = WindowArgs::Status { json: true };
        assert_eq!(s.parameters()["format"], ["json"]);
        assert_eq!(s.command(), HostCommand::WindowStatus);
        assert_eq!(
            WindowArgs::Status { json: false }.parameters()["format"],
            ["text"]
        );
    }

    #[test]
    fn refusals_name_the_value_and_why() {
        assert_eq!(
            error("nginx;id", "10m", None),
            "--pkgs: package name \"nginx;id\" has ';' at position 5: only letters, digits and . _ + - are allowed"
        );
        assert!(error("-oAPT::x=y", "10m", None).contains("':' at position 5"));
        assert!(error("-y", "10m", None).contains("must start with a letter or digit"));
        assert!(error("$(id)", "10m", None).contains("'$' at position 0"));
        assert!(error("evil.deb", "10m", None).contains("ends in .deb or .rpm"));
        let many: Vec<String> = (0..21).map(|i| format!("p{i:02}")).collect();
        assert_eq!(
            error(&many.join(","), "10m", None),
            "--pkgs names 21 packages; at most 20"
        );
        assert_eq!(error(" , ", "10m", None), "--pkgs names no package");
        assert_eq!(
            error("nginx", "25h", None),
            "--ttl 25h is longer than the cap of 4h"
        );
        assert_eq!(
            error("nginx", "0s", None),
            "--ttl 0s is too short: at least 5s"
        );
        assert!(error("nginx", "", None).starts_with("--ttl \"\" is not a duration"));
        assert!(error("nginx", "10d", None).starts_with("--ttl \"10d\" is not a duration"));
        assert_eq!(
            error("nginx", "10m", Some("a\u{1b}[2J")),
            "--reason must be at most 200 printable characters"
        );
        assert_eq!(
            error("nginx", "10m", Some("see {{ssm:/clawster/x}}")),
            "--reason must not contain \"{{\": SSM would replace {{ssm:NAME}} in it with a Parameter Store value"
        );
    }
}
