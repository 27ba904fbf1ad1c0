//! The system under test's own log, for a person to read: what each broker decided and why (a
//! leadership taken up, a truncation, an ISR change, an election, a broker fenced), written by the
//! model through the `tracing` crate and printed here to stderr.
//!
//! It is off unless asked for, and it is not the trace: the trace is the model's typed events
//! (`model::env::Event`) that the checkers read and the fingerprint hashes. This log sits beside it
//! and changes nothing a run does: a seed gives the same trace hash with the log off or on (reading
//! the simulated clock for a line's time takes no randomness), and off it costs a disabled
//! `tracing` callsite check at each place the model logs.
//!
//! The filter is `tracing-subscriber`'s `EnvFilter` syntax, as `RUST_LOG` takes it: a level for
//! everything (`debug`), or levels by module (`model=debug,model::raft_driver=trace`). The model
//! logs its decisions at `debug`, per-request detail at `trace`, and errors it handles (damage
//! found on recovery, a full disk) at `warn`.
//!
//! Under madsim every line carries the simulated time since the run's start and madsim's `node`
//! and `task` spans, so a line says which broker (or client) said it and when. In real mode the
//! time is the wall clock's.
//!
//! A subscriber is global and set once per process: madsim runs each seed on a fresh thread, and
//! one subscriber serves them all. The first successful `init` installs it; later calls change
//! nothing.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// What the first `init` (or `init_from_env`) that got as far as installing came to, and with
/// which filter.
static INSTALLED: OnceLock<Result<String, String>> = OnceLock::new();

/// Installs a subscriber that writes the log to stderr, filtered by `filter` (`EnvFilter` syntax:
/// `"debug"`, `"model=debug,model::raft_driver=trace"`).
///
/// Idempotent: once a subscriber is installed, a later call with a valid filter returns `Ok` and
/// leaves the first filter in force. An invalid or empty filter is an error, before anything is
/// installed, that names the filter and what is wrong with it; so is finding another global
/// subscriber already in place.
pub fn init(filter: &str) -> Result<(), String> {
    let parsed = parse(filter)?;
    let installed = INSTALLED.get_or_init(|| install(parsed).map(|()| filter.trim().to_owned()));
    installed.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// `init` with the filter in `RUST_LOG`, when it is set and not empty; otherwise the log stays
/// off. A filter that does not parse is an error, as for `init`.
pub fn init_from_env() -> Result<(), String> {
    match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.trim().is_empty() => {
            init(&filter).map_err(|e| format!("RUST_LOG: {e}"))
        }
        _ => Ok(()),
    }
}

/// The filter a subscriber was installed with, if `init` installed one.
pub fn installed_filter() -> Option<&'static str> {
    INSTALLED.get()?.as_ref().ok().map(String::as_str)
}

/// The crate of the spans that name the node a line comes from, and the directive that turns them
/// on: madsim's `node` and `task` spans (target `madsim::sim::task`, level ERROR) in simulation,
/// real mode's `broker` span (see `real::node`) otherwise.
#[cfg(madsim)]
const NODE_SPANS: (&str, &str) = ("madsim", "madsim::sim::task=error");
#[cfg(not(madsim))]
const NODE_SPANS: (&str, &str) = ("logsim", "logsim::real::node=info");

/// The words that stand for a level on their own, applying to every target.
const LEVELS: &[&str] = &[
    "off", "error", "warn", "info", "debug", "trace", "0", "1", "2", "3", "4", "5",
];

/// Reads a filter, each comma-separated directive trimmed: `"model=debug, model::raft=trace"`
/// reads as it is meant.
fn parse(filter: &str) -> Result<EnvFilter, String> {
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!(
            "log filter `{filter}` is empty: give a level (`debug`) or levels by module \
             (`model=debug,model::raft_driver=trace`)"
        ));
    }
    let mut directives = directives.join(",");
    // A filter that names only the model's modules would leave out the spans that say which node
    // a line is from. A filter with a level for everything, or any word on the spans' crate,
    // already says what it wants.
    let (crate_name, spans) = NODE_SPANS;
    let everything = directives
        .split(',')
        .any(|d| !d.contains('=') && LEVELS.contains(&d.to_ascii_lowercase().as_str()));
    if !everything && !directives.contains(crate_name) {
        directives.push(',');
        directives.push_str(spans);
    }
    EnvFilter::builder().parse(directives).map_err(|e| {
        format!(
            "log filter `{filter}`: {e}; a filter is a level (error, warn, info, debug, \
                 trace, off) or TARGET=LEVEL pairs separated by commas"
        )
    })
}

fn install(filter: EnvFilter) -> Result<(), String> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    #[cfg(madsim)]
    let builder = builder.with_timer(SimulatedTime);
    builder
        .try_init()
        .map_err(|e| format!("cannot install the log: {e}"))
}

/// Stamps a line with the simulated time since its runtime started (`12.345678s`), or `-` for a
/// line written outside any runtime. Reading the clock takes no randomness and moves no timer.
#[cfg(madsim)]
struct SimulatedTime;

#[cfg(madsim)]
impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match madsim::time::TimeHandle::try_current() {
            Some(time) => {
                let t = time.elapsed();
                write!(w, "{:>4}.{:06}s", t.as_secs(), t.subsec_micros())
            }
            None => write!(w, "{:>12}", "-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_with_or_without_spaces_and_bad_ones_say_why() {
        assert!(parse("debug").is_ok());
        assert!(parse("DEBUG,model=trace").is_ok());
        assert!(parse("model=debug,model::raft_driver=trace").is_ok());
        assert!(parse(" model=debug , model::raft_driver=trace ").is_ok());
        let bad = parse("model=loud").unwrap_err();
        assert!(bad.contains("`model=loud`"), "{bad}");
        let empty = parse(" , ").unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
    }
}
