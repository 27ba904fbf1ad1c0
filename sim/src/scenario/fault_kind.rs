//! The kinds of fault, as traces, run reports and swarm summaries name and count them. A
//! scheduled [`Fault`](super::Fault) may show as more than one: a crash with a torn disk is a
//! `crash`, then a `disk-torn` when the broker restarts onto it, then a `restart`.

use serde::{Deserialize, Serialize};

/// A kind of fault, named in kebab case (`packet-loss`) in traces and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A broker killed.
    Crash,
    /// A crashed or shut-down broker started again.
    Restart,
    /// A controlled shutdown begun.
    Shutdown,
    /// A broker frozen.
    Pause,
    /// Links cut between brokers, or the WAN link (target `wan`).
    Partition,
    /// One one-way link clogged.
    Clog,
    /// The whole network losing packets.
    PacketLoss,
    /// The whole network slow.
    Latency,
    /// A clock stepped or drifting.
    ClockSkew,
    /// Unsynced bytes lost at a crash.
    DiskLoss,
    /// The last unsynced write torn at a crash.
    DiskTorn,
    /// A bit flipped at rest in a data segment, found at restart.
    DiskCorrupt,
    /// The data directories wiped, found at restart.
    DiskWipe,
    /// A disk refusing writes as full.
    DiskFull,
    /// A disk's syncs slowed.
    DiskSlow,
}

impl FaultKind {
    /// Every kind, in the order summaries list them.
    pub const ALL: [FaultKind; 15] = [
        FaultKind::Crash,
        FaultKind::Restart,
        FaultKind::Shutdown,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Clog,
        FaultKind::PacketLoss,
        FaultKind::Latency,
        FaultKind::ClockSkew,
        FaultKind::DiskLoss,
        FaultKind::DiskTorn,
        FaultKind::DiskCorrupt,
        FaultKind::DiskWipe,
        FaultKind::DiskFull,
        FaultKind::DiskSlow,
    ];

    /// The kind's name in traces and reports, as its serde name: `packet-loss`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Shutdown => "shutdown",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Clog => "clog",
            FaultKind::PacketLoss => "packet-loss",
            FaultKind::Latency => "latency",
            FaultKind::ClockSkew => "clock-skew",
            FaultKind::DiskLoss => "disk-loss",
            FaultKind::DiskTorn => "disk-torn",
            FaultKind::DiskCorrupt => "disk-corrupt",
            FaultKind::DiskWipe => "disk-wipe",
            FaultKind::DiskFull => "disk-full",
            FaultKind::DiskSlow => "disk-slow",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_named_as_serde_names_it() {
        for kind in FaultKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<FaultKind>(&json).unwrap(), kind);
        }
    }
}
