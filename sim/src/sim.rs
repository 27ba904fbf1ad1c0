//! The library's front door: a run built in Rust. Start from a scenario (the default one, a file,
//! or one built field by field), add faults at times, bug switches, hooks that act on the cluster
//! and invariants of one's own, and run it with a seed. The command line's `run` and a test's run
//! are the same run: a seed replays bit for bit either way.
//!
//! ```
//! # #[cfg(madsim)] {
//! use std::time::Duration;
//! use logsim::scenario::{Fault, Scenario, Target};
//! use logsim::sim::Sim;
//!
//! let secs = Duration::from_secs;
//! let mut scenario = Scenario::default();
//! scenario.faults.profile = None; // only the fault below
//! let out = Sim::new(scenario)
//!     .seed(7)
//!     .fault(Fault::Crash(Target::Broker(2)).at(secs(5)).lasting(secs(3)))
//!     .run()
//!     .expect("a valid scenario");
//! assert!(out.report.pass, "{:?}", out.report.violations);
//! assert_eq!(out.report.counters.faults["crash"], 1);
//! # }
//! ```

use std::time::Duration;

use model::bugs::Switch;

use crate::checkers::{Invariant, Oracle};
use crate::world::cluster::Cluster;
use crate::run::{run_with, Extras, Hook, RunOutput};
use crate::scenario::{Scenario, Scheduled};

/// A run being built: a scenario, a seed, and what the run adds to them.
pub struct Sim {
    scenario: Scenario,
    seed: u64,
    keep_trace: bool,
    extras: Extras,
}

impl Sim {
    /// A run of `scenario` with seed 0, keeping its trace and history.
    pub fn new(scenario: Scenario) -> Sim {
        Sim {
            scenario,
            seed: 0,
            keep_trace: true,
            extras: Extras::default(),
        }
    }

    /// The seed: it decides every schedule, delay, draw and fault the scenario leaves open.
    pub fn seed(mut self, seed: u64) -> Sim {
        self.seed = seed;
        self
    }

    /// Whether to keep the trace's lines, the history and replica samples (on by default); off,
    /// the trace is only hashed, which is faster.
    pub fn keep_trace(mut self, keep: bool) -> Sim {
        self.keep_trace = keep;
        self
    }

    /// A fault at a set time, after the scenario's own timeline.
    pub fn fault(mut self, fault: Scheduled) -> Sim {
        self.scenario.faults.timeline.push(fault);
        self
    }

    /// Switches a wrong rule on in every broker (see `model::bugs`).
    pub fn bug(mut self, switch: Switch) -> Sim {
        if !self.scenario.bugs.contains(&switch) {
            self.scenario.bugs.push(switch);
        }
        self
    }

    /// Does `action` to the cluster `at` into the run: how a test plants what a check must find.
    pub fn hook(mut self, at: Duration, action: impl FnOnce(&mut Cluster) + Send + 'static) -> Sim {
        self.extras.hooks.push(Hook::new(at, action));
        self
    }

    /// Judges `invariant` at every check step, after the built-in ones.
    pub fn invariant(mut self, invariant: impl Invariant + 'static) -> Sim {
        self.extras.invariants.push(Box::new(invariant));
        self
    }

    /// Adds a check of one's own to the end-of-run oracle, judged once after the quiet period,
    /// after the built-in ones.
    pub fn oracle(mut self, oracle: impl Oracle + 'static) -> Sim {
        self.extras.oracles.push(Box::new(oracle));
        self
    }

    /// The scenario as built so far.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Runs it on a fresh thread and runtime, after checking the scenario as a file would be.
    pub fn run(self) -> Result<RunOutput, String> {
        self.scenario.check()?;
        Ok(run_with(&self.scenario, self.seed, self.keep_trace, self.extras))
    }
}
