//! What a scenario may say: every value in range, every name unique, every fault aimed at brokers
//! and partitions that exist. The first problem found is located in the file by its table, which
//! entry of the table, and key.

use std::time::Duration;

use super::{Acks, Cluster, Dur, GroupSpec, Scenario, Topic};

/// A problem, and where it is: `table` (empty for the top level), which entry of it (from 0, for
/// an array of tables) and the key.
pub(super) struct Problem {
    pub table: &'static str,
    pub nth: usize,
    pub key: &'static str,
    pub message: String,
}

impl Problem {
    fn at(table: &'static str, key: &'static str, message: impl Into<String>) -> Problem {
        Problem::nth(table, 0, key, message)
    }

    fn nth(table: &'static str, nth: usize, key: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            table,
            nth,
            key,
            message: message.into(),
        }
    }

    /// A bad entry of `faults.timeline`.
    pub fn timeline(nth: usize, key: &'static str, message: String) -> Problem {
        let message = format!("faults.timeline[{nth}]: {message}");
        Problem::nth("faults.timeline", nth, key, message)
    }
}

type Checked = Result<(), Problem>;

impl Scenario {
    /// The first problem, in the order a reader meets them: cluster, topics, workload, run,
    /// faults, then repeats and MirrorMaker.
    pub(super) fn first_problem(&self) -> Checked {
        self.check_cluster()?;
        for (nth, t) in self.topics.iter().enumerate() {
            self.check_topic(nth, t)?;
        }
        self.check_workload()?;
        for (i, g) in self.workload.groups.iter().enumerate() {
            let earlier = &self.workload.groups[..i];
            check_group(g, earlier).map_err(|m| Problem::at("workload", "groups", m))?;
        }
        if let Some(t) = &self.workload.transactions {
            check_transactions(t).map_err(|(key, m)| Problem::at("workload.transactions", key, m))?;
        }
        if let Some(p) = &self.workload.pipeline {
            self.check_pipeline(p).map_err(|(key, m)| Problem::at("workload.pipeline", key, m))?;
        }
        if let Some(v) = self.cluster.transaction_version.filter(|v| !(1..=2).contains(v)) {
            let message = format!("transaction_version = {v}: expected 1 or 2");
            return Err(Problem::at("cluster", "transaction_version", message));
        }
        self.check_timing()?;
        self.check_faults()?;
        self.check_topic_names()?;
        self.check_mirror()
    }

    fn check_cluster(&self) -> Checked {
        let c = &self.cluster;
        if !(1..=64).contains(&c.brokers) {
            let message = format!("brokers = {}: expected 1 to 64", c.brokers);
            return Err(Problem::at("cluster", "brokers", message));
        }
        if !(1..=c.brokers).contains(&c.voters()) {
            let message = format!(
                "controller_voters = {}: expected 1 to the number of brokers ({})",
                c.voters(),
                c.brokers
            );
            return Err(Problem::at("cluster", "controller_voters", message));
        }
        if self.topics.is_empty() {
            let message = "at least one [[topics]] table is needed";
            return Err(Problem::at("", "topics", message));
        }
        self.check_cluster_timing()
    }

    /// The timing settings keep the order Kafka's rules need: a session outlives two heartbeats,
    /// and a follower's fetch wait fits in both its lag time and a request's timeout.
    fn check_cluster_timing(&self) -> Checked {
        let c = &self.cluster;
        let at_least = |key: &'static str, value: Dur, min_ms: u64, why: &str| {
            if value.ms() < min_ms {
                let message = format!("{key} = {:?}: expected at least {min_ms}ms ({why})", value.0);
                return Err(Problem::at("cluster", key, message));
            }
            Ok(())
        };
        at_least("replica_lag_time_max", c.replica_lag_time_max, 100, "a follower needs time to fetch")?;
        at_least("broker_session_timeout", c.broker_session_timeout, 1_000, "two heartbeats of 500ms")?;
        at_least("request_timeout", c.request_timeout, 100, "a request needs time to be answered")?;
        let wait = c.fetch_max_wait.ms();
        if wait >= c.replica_lag_time_max.ms() || wait >= c.request_timeout.ms() {
            let message = format!(
                "fetch_max_wait = {:?}: expected below replica_lag_time_max ({:?}) and request_timeout ({:?})",
                c.fetch_max_wait.0, c.replica_lag_time_max.0, c.request_timeout.0
            );
            return Err(Problem::at("cluster", "fetch_max_wait", message));
        }
        if c.replica_fetch_max_bytes == 0 || c.segment_bytes < 1024 {
            let message = format!(
                "replica_fetch_max_bytes = {}, segment_bytes = {}: expected more than 0 and at least 1024",
                c.replica_fetch_max_bytes, c.segment_bytes
            );
            return Err(Problem::at("cluster", "segment_bytes", message));
        }
        Ok(())
    }

    fn check_topic(&self, nth: usize, t: &Topic) -> Checked {
        let c: &Cluster = &self.cluster;
        let valid_name = |name: &str| {
            !name.is_empty()
                && !name.starts_with("__")
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
        };
        if !valid_name(&t.name) {
            let message = format!(
                "topic name `{}`: expected letters, digits, '.', '_' or '-', not starting with \"__\"",
                t.name
            );
            return Err(Problem::nth("topics", nth, "name", message));
        }
        if !(1..=1000).contains(&t.partitions) {
            let message = format!("partitions = {}: expected 1 to 1000", t.partitions);
            return Err(Problem::nth("topics", nth, "partitions", message));
        }
        if !(1..=c.brokers).contains(&t.replication_factor) {
            let message = format!(
                "replication_factor = {}: expected 1 to the number of brokers ({})",
                t.replication_factor, c.brokers
            );
            return Err(Problem::nth("topics", nth, "replication_factor", message));
        }
        if let Some(problem) = assignment_problem(t, c.brokers) {
            return Err(Problem::nth("topics", nth, "replicas", problem));
        }
        if c.min_insync_replicas < 1 || c.min_insync_replicas > t.replication_factor {
            let message = format!(
                "min_insync_replicas = {}: expected 1 to the replication factor of `{}` ({})",
                c.min_insync_replicas, t.name, t.replication_factor
            );
            return Err(Problem::at("cluster", "min_insync_replicas", message));
        }
        Ok(())
    }

    fn check_workload(&self) -> Checked {
        let w = &self.workload;
        if let Some(topic) = &w.topic {
            if !self.topics.iter().any(|t| &t.name == topic) {
                let message = format!("topic `{topic}` is not among the [[topics]]");
                return Err(Problem::at("workload", "topic", message));
            }
        }
        if w.producers == 0 && w.consumers == 0 {
            let message = "the workload needs at least one producer or consumer";
            return Err(Problem::at("workload", "producers", message));
        }
        if w.producers > 1000 || w.consumers > 1000 {
            let message = "at most 1000 producers and 1000 consumers";
            return Err(Problem::at("workload", "producers", message));
        }
        if w.send_interval[0] > w.send_interval[1] || w.send_interval[1].0.is_zero() {
            let message = "send_interval: expected [min, max] with min <= max and max > 0";
            return Err(Problem::at("workload", "send_interval", message));
        }
        self.check_producer_settings()
    }

    /// The producers' settings, held to what Kafka's producer accepts.
    fn check_producer_settings(&self) -> Checked {
        let w = &self.workload;
        let at = |key, message: String| Err(Problem::at("workload", key, message));
        if w.idempotence == Some(true) && w.acks != Acks::All {
            let message = "idempotence = true: expected acks = \"all\" (Kafka refuses idempotence with acks 0 or 1)";
            return at("idempotence", message.into());
        }
        let in_flight_max = if w.idempotent() { 5 } else { 100 };
        if !(1..=in_flight_max).contains(&w.max_in_flight) {
            let message = format!(
                "max_in_flight = {}: expected 1 to 5 with idempotence (Kafka's limit), 1 to 100 without",
                w.max_in_flight
            );
            return at("max_in_flight", message);
        }
        if w.idempotent() && w.retries == 0 {
            let message = "retries = 0: idempotence needs retries (set idempotence = false too for a one-shot client)";
            return at("retries", message.into());
        }
        if !(1..=1_048_576).contains(&w.batch_size) {
            let message = format!("batch_size = {}: expected 1 to 1048576 bytes", w.batch_size);
            return at("batch_size", message);
        }
        if w.delivery_timeout <= w.linger {
            let message = "delivery_timeout: expected longer than linger".to_owned();
            return at("delivery_timeout", message);
        }
        Ok(())
    }

    fn check_timing(&self) -> Checked {
        if self.workload.poll_interval.0.is_zero() {
            let message = "poll_interval: expected more than zero";
            return Err(Problem::at("workload", "poll_interval", message));
        }
        let duration = self.run.duration.0;
        if duration.is_zero() || duration > Duration::from_secs(24 * 3600) {
            let message = "duration: expected more than zero and at most 24h";
            return Err(Problem::at("run", "duration", message));
        }
        Ok(())
    }

    /// Each topic is created once: a second `[[topics]]` of the same name would be a second
    /// creation of the same partitions.
    fn check_topic_names(&self) -> Checked {
        for (nth, t) in self.topics.iter().enumerate() {
            if let Some(first) = self.topics[..nth].iter().position(|o| o.name == t.name) {
                let message = format!(
                    "topic `{}` is listed twice ([[topics]] {} and {}): expected each name once",
                    t.name,
                    first + 1,
                    nth + 1
                );
                return Err(Problem::nth("topics", nth, "name", message));
            }
        }
        Ok(())
    }

    fn check_mirror(&self) -> Checked {
        let Some(m) = &self.mirror else {
            return Ok(());
        };
        if !(1..=100_000).contains(&m.queue) {
            let message = format!(
                "queue = {}: expected 1 to 100000 records (with none, nothing is ever copied)",
                m.queue
            );
            return Err(Problem::at("mirror", "queue", message));
        }
        if m.checkpoint_interval.0.is_zero() {
            let message = "checkpoint_interval: expected more than zero";
            return Err(Problem::at("mirror", "checkpoint_interval", message));
        }
        let ranges = [
            ("restarts", m.restarts),
            ("wan_partitions", m.wan_partitions),
            ("wan_outage", Some(m.wan_outage)),
        ];
        for (key, range) in ranges {
            if let Some([low, high]) = range {
                if low > high || high.0.is_zero() {
                    let message = format!("{key}: expected [min, max] with min <= max and max > 0");
                    return Err(Problem::at("mirror", key, message));
                }
            }
        }
        Ok(())
    }

    /// The fault profile and timeline.
    fn check_faults(&self) -> Checked {
        for name in &self.fault_points {
            if model::fault_point::Point::named(name).is_none() {
                let known: Vec<&str> = (model::fault_point::Point::ALL.iter())
                    .map(|p| p.name())
                    .collect();
                let message = format!(
                    "fault_points: unknown fault point `{name}`: expected one of {}",
                    known.join(", ")
                );
                return Err(Problem::at("", "fault_points", message));
            }
        }
        if let Some(profile) = &self.faults.profile {
            profile
                .validate(self.cluster.brokers)
                .map_err(|(key, message)| Problem::at("faults.profile", key, message))?;
        }
        let topics: Vec<(String, i32)> = self
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let brokers = super::target::BrokerIds {
            count: self.cluster.brokers,
            mirrored: self.mirror.is_some(),
        };
        for (nth, entry) in self.faults.timeline.iter().enumerate() {
            entry
                .validate(brokers, &topics, self.run.duration.0)
                .map_err(|(key, message)| Problem::timeline(nth, key, message))?;
        }
        Ok(())
    }
}

impl Scenario {
    /// A problem of `[workload.pipeline]`: its key and what is wrong.
    fn check_pipeline(&self, p: &super::PipelineSpec) -> Result<(), (&'static str, String)> {
        let input = &self.workload_topic().name;
        if p.output == *input || self.pipeline_output().is_none() {
            let message = format!(
                "output = `{}`: expected a listed topic other than the workload's (`{input}`)",
                p.output
            );
            return Err(("output", message));
        }
        for (key, n, max) in [("workers", p.workers, 100), ("readers", p.readers, 100), ("max_records", p.max_records, 1000)] {
            if !(1..=max).contains(&n) {
                return Err((key, format!("{key} = {n}: expected 1 to {max}")));
            }
        }
        if !(0.0..=1.0).contains(&p.abort_rate) {
            return Err(("abort_rate", format!("abort_rate = {}: expected 0 to 1", p.abort_rate)));
        }
        let ms = p.timeout.ms();
        if !(100..=model::txn::coordinator::MAX_TIMEOUT_MS).contains(&ms) {
            return Err(("timeout", format!("timeout = {ms}ms: expected 100ms to 15m")));
        }
        if p.session_timeout.ms() < 100 {
            let message = format!("session_timeout = {}ms: expected at least 100ms", p.session_timeout.ms());
            return Err(("session_timeout", message));
        }
        if p.group.is_empty() || self.workload.groups.iter().any(|g| g.name == p.group) {
            let message = format!("group = `{}`: expected a name no consumer group has", p.group);
            return Err(("group", message));
        }
        Ok(())
    }
}

/// A problem of `[workload.transactions]`: its key and what is wrong.
fn check_transactions(t: &super::TransactionsSpec) -> Result<(), (&'static str, String)> {
    if !(1..=100).contains(&t.producers) {
        return Err(("producers", format!("producers = {}: expected 1 to 100", t.producers)));
    }
    let [lo, hi] = t.sends;
    if !(1..=100).contains(&lo) || !(lo..=100).contains(&hi) {
        return Err(("sends", format!("sends = [{lo}, {hi}]: expected 1 <= low <= high <= 100")));
    }
    if !(0.0..=1.0).contains(&t.abort_rate) {
        return Err(("abort_rate", format!("abort_rate = {}: expected 0 to 1", t.abort_rate)));
    }
    for (key, range) in [("restarts", t.restarts), ("zombie", Some(t.zombie))] {
        if let Some([lo, hi]) = range.filter(|[lo, hi]| lo.ms() == 0 || lo.ms() > hi.ms()) {
            return Err((key, format!("{key} = [{}ms, {}ms]: expected 0 < low <= high", lo.ms(), hi.ms())));
        }
    }
    let ms = t.timeout.ms();
    if !(100..=model::txn::coordinator::MAX_TIMEOUT_MS).contains(&ms) {
        return Err(("timeout", format!("timeout = {ms}ms: expected 100ms to 15m")));
    }
    Ok(())
}

/// A consumer group's problem, given the groups listed before it.
fn check_group(g: &GroupSpec, earlier: &[GroupSpec]) -> Result<(), String> {
    if g.name.is_empty() || earlier.iter().any(|o| o.name == g.name) {
        return Err(format!(
            "group name `{}`: expected a name no other group has",
            g.name
        ));
    }
    if !(1..=100).contains(&g.consumers) {
        return Err(format!(
            "group `{}`: consumers = {}: expected 1 to 100",
            g.name, g.consumers
        ));
    }
    if model::group_client::Strategy::by_name(&g.assignment).is_none() {
        return Err(format!(
            "group `{}`: assignment = \"{}\": expected \"range\" or \"roundrobin\"",
            g.name, g.assignment
        ));
    }
    if g.session_timeout.0 < Duration::from_millis(100) || g.commit_interval.0.is_zero() {
        return Err(format!(
            "group `{}`: session_timeout must be at least 100ms and commit_interval more than zero",
            g.name
        ));
    }
    Ok(())
}

/// What is wrong with a topic's explicit replica assignment, if anything.
fn assignment_problem(t: &Topic, brokers: i32) -> Option<String> {
    if t.replicas.is_empty() {
        return None;
    }
    if t.replicas.len() != t.partitions as usize {
        return Some(format!(
            "replicas lists {} partitions but `{}` has {}",
            t.replicas.len(),
            t.name,
            t.partitions
        ));
    }
    for (p, replicas) in t.replicas.iter().enumerate() {
        if replicas.len() != t.replication_factor as usize {
            return Some(format!(
                "partition {p} has {} replicas but the replication factor is {}",
                replicas.len(),
                t.replication_factor
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !(1..=brokers).contains(*b)) {
            return Some(format!(
                "partition {p}: broker {b} does not exist: brokers are 1 to {brokers}"
            ));
        }
        if (1..replicas.len()).any(|i| replicas[..i].contains(&replicas[i])) {
            return Some(format!("partition {p} names a broker twice: {replicas:?}"));
        }
    }
    None
}
