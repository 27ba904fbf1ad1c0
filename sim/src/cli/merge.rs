//! `logsim merge`: shard files joined into one swarm's summary.

use super::swarm::print_swarm;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn merge_command(files: &[PathBuf], json: bool) -> Result<bool, String> {
    let shards = files
        .iter()
        .map(|f| logsim::tools::shard::read(f))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = logsim::tools::shard::merge(&shards).map_err(|problems| {
        format!(
            "the shards do not make one whole swarm, so nothing was merged:\n  {}",
            problems.join("\n  ")
        )
    })?;
    if json {
        outln!(
            "{}",
            serde_json::to_string(&summary).expect("summaries serialize")
        );
    } else {
        let h = &shards[0].header;
        print_swarm(&summary, &super::args::mode_flags(&h.faults, &h.knobs));
    }
    Ok(summary.pass())
}
