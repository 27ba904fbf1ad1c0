//! `logsim check-history`: a client history file judged on its own.

use std::io::Write;
use std::path::Path;

use logsim::checkers::client_history::{self, Gates, ProducerPromises};

pub(super) fn check_history_command(
    file: &Path,
    json: bool,
    gates: Gates,
    promises: ProducerPromises,
) -> Result<bool, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (ops, lines) =
        client_history::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let analysis = client_history::check(&ops, Some(&lines), gates, promises);
    if json {
        outln!(
            "{}",
            serde_json::to_string(&analysis).expect("analyses serialize")
        );
        return Ok(analysis.valid);
    }
    outln!(
        "{}: {} operations, {} sends acknowledged, {} values read",
        file.display(),
        analysis.ops,
        analysis.acked,
        analysis.polled
    );
    for (kind, cases) in &analysis.anomalies {
        outln!("{kind}: {} cases", cases.len());
        for case in cases.iter().take(10) {
            outln!(
                "  {} offsets {:?} values {:?} lines {:?}: {}",
                case.key,
                case.offsets,
                case.values,
                case.lines,
                case.detail
            );
        }
    }
    for (kind, count) in &analysis.allowed {
        outln!("{kind}: {count} cases, allowed: the producers retry without idempotence");
    }
    for gate in &analysis.gates {
        outln!("gate: {gate}");
    }
    outln!("{}", if analysis.valid { "valid" } else { "INVALID" });
    Ok(analysis.valid)
}
