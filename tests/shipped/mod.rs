//! The shipped scenarios, loaded the way the tests that run them under a fault mode need them.

use std::path::Path;

use logsim::scenario::Scenario;

/// `scenarios/FILE` (a path under `scenarios/`) under the fault mode `faults`: `scenario` (the
/// file's own), `swarm` or `none`.
pub fn shipped(file: &str, faults: &str) -> Scenario {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).join(file);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    scenario.with_faults(faults).expect("fault mode")
}
