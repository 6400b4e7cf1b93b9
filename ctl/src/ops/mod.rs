//! Operations on hosts through SSM Run Command, as pure functions: what to send, and what the
//! answer means. No AWS call is made here; [`crate::ssm`] (`window`, `health`, `logs`) calls
//! these, in this order:
//!
//! 1. Build the request, which refuses bad input before any AWS call, naming the value and why:
//!    [`window::WindowArgs`] (`window open|close|status`, the shared stack's output
//!    `WindowDocumentName`), [`reads::ReadArgs`] (`health`, `health --nat`, `logs`, `logs
//!    --window`, output `OpsDocumentName`) or [`state::StateArgs`] (`backup`, `restore`, the
//!    deploy's host replacement; output `OpsDocumentName`). `.document()` names the output whose value is the
//!    document to run, `.parameters()` is SendCommand's `Parameters` map, and `.command()` says
//!    what runs on the host. `nat-status` targets the NAT instance (output `NatInstanceId`), every
//!    other command the bot's host.
//! 2. SendCommand, then GetCommandInvocation until [`invocation::SsmStatus::is_final`].
//! 3. [`invocation::interpret`] the status, response code, stdout and stderr: an
//!    [`invocation::Outcome`], the exit code of `clawsterctl` and a message;
//!    [`invocation::truncation_note`] says when SSM cut the output at 24,000 characters.
//! 4. Render stdout: [`health::agent_health`] and [`health::nat_status`] (table and exit code),
//!    [`journal::render_journal`] (`logs`), and the window commands' stdout as the agent wrote it.
//!
//! Everything a host prints passes through [`clean`] before it reaches the operator's terminal.

pub mod health;
pub mod invocation;
pub mod journal;
pub mod reads;
pub mod state;
pub mod window;

use std::collections::BTreeMap;

/// SendCommand's `Parameters`: parameter name to its values (one each here).
pub type Parameters = BTreeMap<String, Vec<String>>;

/// Host text made safe for a terminal: control characters (escape sequences, carriage returns,
/// newlines inside one value) become visible escapes, so output from a host can neither redraw
/// the operator's screen nor forge a line.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn params<const N: usize>(pairs: [(&str, String); N]) -> Parameters {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_makes_control_characters_visible() {
        assert_eq!(clean("ok ünï ✓"), "ok ünï ✓");
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("line\nforged"), "line\\nforged");
        assert_eq!(clean("x\r\ty\u{85}\u{7f}"), "x\\r\\ty\\u{85}\\u{7f}");
    }
}
