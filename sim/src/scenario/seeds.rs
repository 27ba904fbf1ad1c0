//! Every random stream a run draws from, and how each is seeded from the run's one seed. Each
//! stream has a salt of its own, so turning on one kind of draw (a fault profile, a timeline)
//! never shifts another's; changing any of these changes every seed's run.
//!
//! madsim's runtime takes the seed itself: task order, network delays and message loss.

/// The workload's stream: what producers send and where, consumers, MirrorMaker and groups, in
/// the order the run hands them their own seeds.
pub const WORKLOAD_SALT: u64 = 0x776f_726b_6c6f_6164;
/// The fault profile's per-step rolls.
pub const PROFILE_SALT: u64 = 0x6661_756c_7473_2121;
/// A scripted timeline's draws (random targets, halves); each entry mixes in its index.
pub const TIMELINE_SALT: u64 = 0x7469_6d65_6c69_6e65;
/// The profile a swarm seed draws (`--faults swarm`): which kinds are on, at what rates.
pub const SWARM_SALT: u64 = 0x7377_6172_6d21_2121;

/// The settings a seed draws under `knobs = "swarm"`.
pub const KNOBS_SALT: u64 = 0x6b6e_6f62_7321_2121;

/// The seed of the workload's stream.
pub fn workload(seed: u64) -> u64 {
    seed ^ WORKLOAD_SALT
}

/// The seed of the fault profile's stream.
pub fn profile(seed: u64) -> u64 {
    seed ^ PROFILE_SALT
}

/// The seed of the timeline's stream.
pub fn timeline(seed: u64) -> u64 {
    seed ^ TIMELINE_SALT
}

/// The seed of the stream of the timeline's entry `index` (in file order), from the timeline's.
pub fn timeline_entry(timeline: u64, index: usize) -> u64 {
    timeline ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The seed of the stream randomized knobs are drawn from.
pub fn knobs(seed: u64) -> u64 {
    seed ^ KNOBS_SALT
}

/// The seed of the stream a swarm profile is drawn from.
pub fn swarm(seed: u64) -> u64 {
    seed ^ SWARM_SALT
}
