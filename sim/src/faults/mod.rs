//! Fault injectors. Each draws from its own random stream (seeded from the run's seed with a salt
//! of its own), so enabling one never shifts the workload's draws.

pub mod crash;
