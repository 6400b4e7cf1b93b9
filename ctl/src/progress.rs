//! What a long AWS command shows while it runs: steps, stack resources, notes and the end.
//!
//! The commands emit [`Event`]s; one [`Ui`] renders them in one of three ways:
//! - **terminal**: redrawn in place (indicatif): a header with the elapsed time and what is left
//!   of the plan's timeline, a spinner line per running step and per resource with a stopwatch,
//!   `✓`/`✗` when they end, the failing resource's reason right under its line;
//! - **plain**: append-only lines, each stamped with the time since the start, for logs and CI
//!   (chosen when stdout is not a terminal or `CI` is set);
//! - **json**: one JSON object per line (`{"t":12.0,"event":"resource",...}`) for scripts.
//!
//! The same events drive all three, so the golden tests of the plain form cover what the
//! terminal form shows.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::pace::{human, Pace};

/// State of a step or a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Started, not finished.
    Running,
    /// Finished well.
    Done,
    /// Finished badly.
    Failed,
    /// Nothing to do (reused, unchanged).
    Skipped,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Running => "…",
            Mark::Done => "✓",
            Mark::Failed => "✗",
            Mark::Skipped => "=",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mark::Running => "running",
            Mark::Done => "done",
            Mark::Failed => "failed",
            Mark::Skipped => "skipped",
        }
    }
}

/// Something worth showing.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The run begins: what it does and, when known, how long the plan expects.
    Begin {
        /// E.g. `Deploying bot demo to us-east-1`.
        title: String,
        /// The plan's range in seconds.
        eta: Option<(u32, u32)>,
    },
    /// A step of the run changed state.
    Step {
        /// Stable id (`shared`, `upload`, `secret`, `bot`, `nat`, `start`, ...).
        id: String,
        /// What the step is about.
        label: String,
        /// New state.
        mark: Mark,
        /// One line of detail (`reused`, `3 uploaded, 1 already there`, ...).
        detail: Option<String>,
    },
    /// A CloudFormation resource changed state.
    Resource {
        /// Stack name.
        stack: String,
        /// Logical id.
        id: String,
        /// Resource type without `AWS::`.
        kind: String,
        /// CloudFormation status, e.g. `CREATE_COMPLETE`.
        status: String,
        /// New state.
        mark: Mark,
        /// CloudFormation's reason, for failures.
        reason: Option<String>,
        /// Time from the resource's first in-progress event to this one.
        took: Option<Duration>,
    },
    /// A line of information under the current step (service events, change-set entries).
    Note {
        /// The text.
        text: String,
    },
    /// Something the operator should know that is not fatal.
    Warn {
        /// The text.
        text: String,
    },
    /// The end of the run.
    Finish {
        /// True when the command did what it was asked.
        ok: bool,
        /// One line: the URL, or what failed.
        summary: String,
        /// What to do next, one command or sentence per entry.
        next: Vec<String>,
    },
}

/// How events are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Redrawn in place on a terminal.
    Terminal,
    /// Append-only lines.
    Plain,
    /// One JSON object per line.
    Json,
}

impl Style {
    /// `--json` wins; otherwise a terminal gets the live display unless `CI` is set.
    pub fn detect(json: bool) -> Self {
        if json {
            Style::Json
        } else if std::io::stdout().is_terminal() && std::env::var_os("CI").is_none() {
            Style::Terminal
        } else {
            Style::Plain
        }
    }
}

/// A shared writer (stdout, or a buffer in tests).
pub type Sink = Arc<Mutex<dyn Write + Send>>;

/// The renderer; cheap to clone, safe to use from concurrent tasks of one run.
#[derive(Clone)]
pub struct Ui {
    inner: Arc<Mutex<Inner>>,
    pace: Pace,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui").finish_non_exhaustive()
    }
}

enum Inner {
    Lines { out: Sink, json: bool },
    Live(Box<Live>),
}

struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    title: String,
    eta: Option<(u32, u32)>,
    steps: HashMap<String, ProgressBar>,
    /// Last bar under each step, so the next resource goes after it.
    last_under: HashMap<String, ProgressBar>,
    resources: HashMap<(String, String), ProgressBar>,
    current_step: Option<String>,
}

impl Ui {
    /// A renderer of `style` writing to stdout, stamping events with `pace`'s clock.
    pub fn stdout(style: Style, pace: Pace) -> Self {
        let inner = match style {
            Style::Terminal => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
                let header = multi.add(ProgressBar::new_spinner());
                header.set_style(spinner_style("{spinner:.cyan} {msg} {elapsed:.dim}"));
                header.enable_steady_tick(Duration::from_millis(120));
                Inner::Live(Box::new(Live {
                    multi,
                    header,
                    title: String::new(),
                    eta: None,
                    steps: HashMap::new(),
                    last_under: HashMap::new(),
                    resources: HashMap::new(),
                    current_step: None,
                }))
            }
            Style::Plain | Style::Json => Inner::Lines {
                out: Arc::new(Mutex::new(std::io::stdout())),
                json: style == Style::Json,
            },
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
            pace,
        }
    }

    /// A line renderer (plain or json) into `out`: for tests and golden files.
    pub fn lines(out: Sink, json: bool, pace: Pace) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::Lines { out, json })),
            pace,
        }
    }

    /// The run's clock.
    pub fn pace(&self) -> &Pace {
        &self.pace
    }

    /// True when the live terminal display is in use.
    pub fn is_live(&self) -> bool {
        self.inner
            .lock()
            .map(|i| matches!(*i, Inner::Live(_)))
            .unwrap_or(false)
    }

    /// Renders one event.
    pub fn emit(&self, event: Event) {
        let t = self.pace.elapsed();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        match &mut *inner {
            Inner::Lines { out, json } => {
                let text = if *json {
                    format!("{}\n", json_line(t, &event))
                } else {
                    plain_lines(t, &event)
                };
                if let Ok(mut w) = out.lock() {
                    // A closed stdout (e.g. `| head`) must not stop a deploy halfway.
                    let _ = w.write_all(text.as_bytes());
                    let _ = w.flush();
                }
            }
            Inner::Live(live) => live.show(t, &event),
        }
    }

    /// Shorthand for a step event.
    pub fn step(&self, id: &str, label: &str, mark: Mark, detail: Option<String>) {
        self.emit(Event::Step {
            id: id.to_string(),
            label: label.to_string(),
            mark,
            detail,
        });
    }

    /// Shorthand for a note.
    pub fn note(&self, text: impl Into<String>) {
        self.emit(Event::Note { text: text.into() });
    }

    /// Shorthand for a warning.
    pub fn warn(&self, text: impl Into<String>) {
        self.emit(Event::Warn { text: text.into() });
    }

    /// Runs `f` with the live display hidden (for prompts), or directly.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let multi = self.inner.lock().ok().and_then(|i| match &*i {
            Inner::Live(l) => Some(l.multi.clone()),
            Inner::Lines { .. } => None,
        });
        match multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }
}

fn spinner_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

fn plain_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `0:07`-style stamp, right-aligned.
fn stamp(t: Duration) -> String {
    let s = t.as_secs();
    format!("{:>2}:{:02}", s / 60, s % 60)
}

/// `: detail`, or nothing.
fn detail_text(detail: Option<&str>) -> String {
    detail.map(|d| format!(": {d}")).unwrap_or_default()
}

/// The mark's symbol, green or red.
fn colored(mark: Mark) -> String {
    match mark {
        Mark::Failed => console::style(mark.symbol()).red().to_string(),
        _ => console::style(mark.symbol()).green().to_string(),
    }
}

fn took_text(took: Option<Duration>) -> String {
    took.map(|d| format!(" ({})", human(d))).unwrap_or_default()
}

/// Wraps `text` at about `width` columns, prefixing every line with `indent`.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn resource_text(id: &str, kind: &str, status: &str) -> String {
    format!(
        "{id} ({kind}) {}",
        status.to_ascii_lowercase().replace('_', " ")
    )
}

/// The plain, append-only rendering of one event (one or more lines, each ending in `\n`).
pub fn plain_lines(t: Duration, event: &Event) -> String {
    let at = stamp(t);
    match event {
        Event::Begin { title, eta } => match eta {
            Some((lo, hi)) => format!(
                "{at}  {title} (the plan expects {}-{})\n",
                human(Duration::from_secs(u64::from(*lo))),
                human(Duration::from_secs(u64::from(*hi)))
            ),
            None => format!("{at}  {title}\n"),
        },
        Event::Step {
            label,
            mark,
            detail,
            ..
        } => format!(
            "{at}  {} {label}{}\n",
            mark.symbol(),
            detail_text(detail.as_deref())
        ),
        Event::Resource {
            stack: _,
            id,
            kind,
            status,
            mark,
            reason,
            took,
        } => {
            let mut s = format!(
                "{at}      {} {}{}\n",
                mark.symbol(),
                resource_text(id, kind, status),
                if *mark == Mark::Running {
                    String::new()
                } else {
                    took_text(*took)
                }
            );
            if let Some(r) = reason {
                s.push_str(&wrap(r, "              ", 90));
            }
            s
        }
        Event::Note { text } => wrap(text, &format!("{at}      · "), 200),
        Event::Warn { text } => format!("{at}  ! {text}\n"),
        Event::Finish { ok, summary, next } => {
            let mut s = format!("{at}  {} {summary}\n", if *ok { "✓" } else { "✗" });
            for n in next {
                s.push_str(&format!("        next: {n}\n"));
            }
            s
        }
    }
}

/// The JSON rendering of one event.
pub fn json_line(t: Duration, event: &Event) -> serde_json::Value {
    let t = (t.as_secs_f64() * 10.0).round() / 10.0;
    match event {
        Event::Begin { title, eta } => json!({
            "t": t, "event": "begin", "title": title,
            "eta_seconds": eta.map(|(lo, hi)| json!([lo, hi])),
        }),
        Event::Step {
            id,
            label,
            mark,
            detail,
        } => json!({
            "t": t, "event": "step", "id": id, "label": label, "state": mark.name(), "detail": detail,
        }),
        Event::Resource {
            stack,
            id,
            kind,
            status,
            mark,
            reason,
            took,
        } => json!({
            "t": t, "event": "resource", "stack": stack, "logical_id": id, "type": kind,
            "status": status, "state": mark.name(), "reason": reason,
            "seconds": took.map(|d| d.as_secs()),
        }),
        Event::Note { text } => json!({ "t": t, "event": "note", "text": text }),
        Event::Warn { text } => json!({ "t": t, "event": "warning", "text": text }),
        Event::Finish { ok, summary, next } => json!({
            "t": t, "event": "finish", "ok": ok, "summary": summary, "next": next,
        }),
    }
}

impl Live {
    fn header_text(&self, t: Duration) -> String {
        match self.eta {
            Some((_, hi)) => {
                let hi = Duration::from_secs(u64::from(hi));
                if t < hi {
                    format!("{} (about {} left)", self.title, human(hi - t))
                } else {
                    format!("{} (taking longer than planned)", self.title)
                }
            }
            None => self.title.clone(),
        }
    }

    fn bar_after(&mut self, step: &str) -> ProgressBar {
        let bar = ProgressBar::new_spinner();
        let bar = match self
            .last_under
            .get(step)
            .or_else(|| self.steps.get(step))
            .cloned()
        {
            Some(after) => self.multi.insert_after(&after, bar),
            None => self.multi.add(bar),
        };
        self.last_under.insert(step.to_string(), bar.clone());
        bar
    }

    fn show(&mut self, t: Duration, event: &Event) {
        match event {
            Event::Begin { title, eta } => {
                self.title = title.clone();
                self.eta = *eta;
                self.header.set_message(self.header_text(t));
            }
            Event::Step {
                id,
                label,
                mark,
                detail,
            } => {
                let detail = detail_text(detail.as_deref());
                let bar = match self.steps.get(id) {
                    Some(b) => b.clone(),
                    None => {
                        let b = self.multi.add(ProgressBar::new_spinner());
                        self.steps.insert(id.clone(), b.clone());
                        b
                    }
                };
                if *mark == Mark::Running {
                    self.current_step = Some(id.clone());
                    bar.set_style(spinner_style("{spinner:.cyan} {msg} {elapsed:.dim}"));
                    bar.set_message(format!("{label}{detail}"));
                    bar.enable_steady_tick(Duration::from_millis(120));
                } else {
                    bar.set_style(plain_style());
                    bar.finish_with_message(format!("{} {label}{detail}", colored(*mark)));
                }
                self.header.set_message(self.header_text(t));
            }
            Event::Resource {
                stack,
                id,
                kind,
                status,
                mark,
                reason,
                took,
            } => {
                let key = (stack.clone(), id.clone());
                let step = self.current_step.clone().unwrap_or_default();
                let bar = match self.resources.get(&key) {
                    Some(b) => b.clone(),
                    None => {
                        let b = self.bar_after(&step);
                        self.resources.insert(key, b.clone());
                        b
                    }
                };
                let text = resource_text(id, kind, status);
                if *mark == Mark::Running {
                    bar.set_style(spinner_style("    {spinner:.cyan} {msg} {elapsed:.dim}"));
                    bar.set_message(text);
                    bar.enable_steady_tick(Duration::from_millis(120));
                } else {
                    bar.set_style(plain_style());
                    bar.finish_with_message(format!(
                        "    {} {text}{}",
                        colored(*mark),
                        took_text(*took)
                    ));
                    if let Some(r) = reason {
                        let under = self.bar_after(&step);
                        under.set_style(plain_style());
                        under.finish_with_message(
                            console::style(wrap(r, "        ", 90).trim_end().to_string())
                                .red()
                                .to_string(),
                        );
                    }
                }
            }
            Event::Note { text } => {
                let step = self.current_step.clone().unwrap_or_default();
                let bar = self.bar_after(&step);
                bar.set_style(plain_style());
                bar.finish_with_message(
                    console::style(format!("      · {text}")).dim().to_string(),
                );
            }
            Event::Warn { text } => {
                let _ = self
                    .multi
                    .println(console::style(format!("! {text}")).yellow().to_string());
            }
            Event::Finish { ok, summary, next } => {
                self.header.set_style(plain_style());
                let sym = if *ok {
                    console::style("✓").green().to_string()
                } else {
                    console::style("✗").red().to_string()
                };
                self.header
                    .finish_with_message(format!("{} ({})", self.title, human(t)));
                for bar in self.steps.values().chain(self.resources.values()) {
                    if !bar.is_finished() {
                        bar.abandon();
                    }
                }
                let mut end = format!("{sym} {summary}");
                for n in next {
                    end.push_str(&format!("\n  next: {n}"));
                }
                let _ = self.multi.println(end);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_resource_failure_puts_the_reason_under_the_line() {
        let s = plain_lines(
            Duration::from_secs(75),
            &Event::Resource {
                stack: "s".into(),
                id: "Service".into(),
                kind: "ECS::Service".into(),
                status: "CREATE_FAILED".into(),
                mark: Mark::Failed,
                reason: Some("Resource handler returned message: \"boom\"".into()),
                took: Some(Duration::from_secs(12)),
            },
        );
        assert_eq!(
            s,
            " 1:15      ✗ Service (ECS::Service) create failed (12s)\n              Resource handler returned message: \"boom\"\n"
        );
    }

    #[test]
    fn json_events_are_one_object_per_line() {
        let v = json_line(
            Duration::from_millis(12_340),
            &Event::Step {
                id: "nat".into(),
                label: "NAT route".into(),
                mark: Mark::Done,
                detail: None,
            },
        );
        assert_eq!(v["t"], 12.3);
        assert_eq!(v["state"], "done");
        assert!(!v.to_string().contains('\n'));
    }

    #[test]
    fn wrap_keeps_words_and_indents() {
        let w = wrap("aaa bbb ccc", "  ", 7);
        assert_eq!(w, "  aaa bbb\n  ccc\n");
    }
}
