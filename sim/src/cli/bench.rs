//! `logsim bench`: how fast logsim explores, on this machine.

use std::io::Write;

pub(super) fn bench_command(json: bool, single: Option<String>, seed: u64) -> Result<bool, String> {
    use logsim::tools::bench;
    if let Some(name) = single {
        let figures = bench::single(&name, seed)?;
        outln!(
            "{}",
            serde_json::to_string(&figures).expect("figures serialize")
        );
        return Ok(true);
    }
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let spawn = |name: &str, seed: u64| -> Result<bench::Single, String> {
        let out = std::process::Command::new(&exe)
            .args(["bench", "--single", name, "--seed", &seed.to_string()])
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "bench run `{name}` seed {seed}: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = |name: &str| eprintln!("bench: {name}");
    let b = bench::bench(cores, &spawn, &progress)?;
    if json {
        outln!("{}", serde_json::to_string(&b).expect("bench serializes"));
        return Ok(true);
    }
    outln!(
        "{:<24} {:>9} {:>10} {:>11} {:>10} {:>9} {:>10} {:>8}",
        "workload",
        "s/run",
        "sim/wall",
        "events/s",
        "acked/s",
        "msgs/ack",
        "seeds/min",
        "peak MB"
    );
    for w in &b.workloads {
        outln!(
            "{:<24} {:>9.3} {:>10.0} {:>11.0} {:>10.0} {:>9.1} {:>10.0} {:>8.1}{}",
            w.name,
            w.wall_seconds_per_run,
            w.sim_seconds_per_wall_second,
            w.events_per_second,
            w.acked_per_second,
            w.messages_per_acked,
            w.seeds_per_minute,
            w.peak_rss_bytes as f64 / 1e6,
            if w.all_passed { "" } else { "  (a run failed)" }
        );
    }
    outln!(
        "floor (bare madsim, {} producers): {:.0} replicated writes/s, {:.0} sim s per wall s, {:.1} messages per write, {:.0} small runtimes/s per core",
        b.floor.producers,
        b.floor.writes_per_wall_second,
        b.floor.sim_seconds_per_wall_second,
        b.floor.messages_per_write,
        b.floor.runtimes_per_second_per_core
    );
    if let Some(r) = b.workloads.iter().find(|w| w.name == "replication") {
        outln!(
            "replication: {:.0} acked records/s, {:.1} messages per acked record",
            r.acked_per_second,
            r.messages_per_acked
        );
    }
    outln!(
        "floor ratio: {:.2}x (logsim's wall time per acked record in `replication` over the floor's per write)",
        b.floor_ratio
    );
    outln!(
        "slopes: {:.2} (wall per sim second, minutes 5-10 over 1-5; whole runs, 10 minutes over 1: {:.2}), {:.2} (per partition, 30 over 3); 1 is linear",
        b.slope_sim_time,
        b.slope_sim_time_whole_runs,
        b.slope_partitions
    );
    outln!(
        "partition scaling on 9 brokers: wall per sim second grows as partitions^{:.2} over 30, 300 and 1,000",
        b.slope_partitions_at_scale
    );
    outln!("cores: {}", b.cores);
    Ok(true)
}
