//! What a fault aims at and how a partition splits the brokers, as scenario files write them.
//!
//! A target: `broker:2`, `random`, `controller` (the active controller), `leader` (the leader of a
//! random partition), `leader:events-0`, or `all`. A shape: `halves`, `majority-ring`,
//! `isolate:TARGET`, `off-controller:TARGET`, groups like `1,2|3`, or links like `1->2 2->1`.
//! `faults::target` resolves a target to the brokers it names at the moment a fault strikes.

use model::{BrokerId, TopicPartition};

/// What a fault aims at; it parses from and prints as the file's form (`broker:2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `broker:N`: that broker, if it is up.
    Broker(BrokerId),
    /// `random`: one broker that is up, drawn at random.
    Random,
    /// `controller`: the active controller (the quorum leader of the highest epoch).
    Controller,
    /// The leader of a partition, or of a random one.
    Leader(Option<TopicPartition>),
    /// `all`: every broker that is up.
    All,
}

/// The forms a target takes, for error messages.
pub const TARGET_FORMS: &str =
    "`broker:N`, `random`, `controller`, `leader`, `leader:TOPIC-PARTITION` or `all`";

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("`{text}` is not a target: expected {TARGET_FORMS}");
        Ok(match t {
            "random" => Target::Random,
            "controller" => Target::Controller,
            "leader" => Target::Leader(None),
            "all" => Target::All,
            _ => {
                if let Some(n) = t.strip_prefix("broker:") {
                    Target::Broker(n.parse().map_err(|_| bad())?)
                } else if let Some(tp) = t.strip_prefix("leader:") {
                    let (topic, partition) = tp.rsplit_once('-').ok_or_else(bad)?;
                    Target::Leader(Some(TopicPartition::new(
                        topic,
                        partition.parse().map_err(|_| bad())?,
                    )))
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

impl std::fmt::Display for Target {
    /// As scenario files write it; it parses back to the same target.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Broker(b) => write!(f, "broker:{b}"),
            Target::Random => f.write_str("random"),
            Target::Controller => f.write_str("controller"),
            Target::Leader(None) => f.write_str("leader"),
            Target::Leader(Some(tp)) => write!(f, "leader:{tp}"),
            Target::All => f.write_str("all"),
        }
    }
}

/// The broker ids a scenario has: 1 to `count`, and as many from `TARGET_FIRST_ID` when it
/// mirrors into a second cluster (a fault a mirror-maker run struck there names them).
#[derive(Clone, Copy, Debug)]
pub struct BrokerIds {
    pub count: i32,
    pub mirrored: bool,
}

impl BrokerIds {
    /// Whether broker `b` exists; if not, an error that names it and the ids there are.
    pub fn check(&self, b: BrokerId) -> Result<(), String> {
        let first = super::TARGET_FIRST_ID;
        let target = first..first + self.count;
        if (1..=self.count).contains(&b) || (self.mirrored && target.contains(&b)) {
            return Ok(());
        }
        let mirror = if self.mirrored {
            format!(", and {first} to {}", first + self.count - 1)
        } else {
            String::new()
        };
        Err(format!(
            "broker {b} does not exist: brokers are 1 to {}{mirror}",
            self.count
        ))
    }
}

impl Target {
    /// Checks the target against the cluster's shape: the broker exists, the partition exists.
    pub fn validate(&self, brokers: BrokerIds, topics: &[(String, i32)]) -> Result<(), String> {
        match self {
            Target::Broker(b) => brokers.check(*b),
            Target::Leader(Some(tp))
                if !topics
                    .iter()
                    .any(|(t, n)| **t == *tp.topic && (0..*n).contains(&tp.partition)) =>
            {
                Err(format!("partition {tp} does not exist"))
            }
            _ => Ok(()),
        }
    }

}

/// How a partition splits the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Two random halves (the smaller has n/2 brokers).
    Halves,
    /// Each broker sees its ring neighbours, a majority, but no two see the same majority.
    MajorityRing,
    /// The brokers the target names, cut off from all others.
    Isolate(Target),
    /// The brokers the target names lose the active controller and no one else (Jepsen's
    /// broker-to-coordination partition): they keep replicating on metadata that goes stale.
    OffController(Target),
    /// Named groups, `1,2|3`: no link between groups.
    Groups(Vec<Vec<BrokerId>>),
    /// One-way links cut, as traces write them: `1->2 2->1`.
    Links(Vec<(BrokerId, BrokerId)>),
}

/// The forms a partition's shape takes, for error messages.
pub const SHAPE_FORMS: &str =
    "`halves`, `majority-ring`, `isolate:TARGET`, `off-controller:TARGET`, groups like `1,2|3` or links like `1->2 2->1`";

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        match t {
            "halves" => return Ok(Shape::Halves),
            "majority-ring" => return Ok(Shape::MajorityRing),
            _ => {}
        }
        if let Some(target) = t.strip_prefix("isolate:") {
            return target.parse().map(Shape::Isolate);
        }
        if let Some(target) = t.strip_prefix("off-controller:") {
            return target.parse().map(Shape::OffController);
        }
        if t.contains("->") {
            let links: Option<Vec<(BrokerId, BrokerId)>> = t
                .split([' ', ','])
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (a, b) = l.split_once("->")?;
                    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
                })
                .collect();
            return links
                .map(Shape::Links)
                .ok_or_else(|| format!("`{text}` is not a partition: expected {SHAPE_FORMS}"));
        }
        let groups: Result<Vec<Vec<BrokerId>>, _> = t
            .split('|')
            .map(|g| g.split(',').map(|b| b.trim().parse::<BrokerId>()).collect())
            .collect();
        match groups {
            Ok(g) if g.len() >= 2 => Ok(Shape::Groups(g)),
            _ => Err(format!(
                "`{text}` is not a partition: expected {SHAPE_FORMS}"
            )),
        }
    }
}

impl std::fmt::Display for Shape {
    /// As scenario files write it; it parses back to the same shape.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |f: &mut std::fmt::Formatter<'_>, items: Vec<String>, sep: &str| {
            f.write_str(&items.join(sep))
        };
        match self {
            Shape::Halves => f.write_str("halves"),
            Shape::MajorityRing => f.write_str("majority-ring"),
            Shape::Isolate(t) => write!(f, "isolate:{t}"),
            Shape::OffController(t) => write!(f, "off-controller:{t}"),
            Shape::Groups(groups) => {
                let groups = groups.iter().map(|g| {
                    g.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",")
                });
                list(f, groups.collect(), "|")
            }
            Shape::Links(links) => {
                list(f, links.iter().map(|(a, b)| format!("{a}->{b}")).collect(), " ")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_what_was_expected() {
        assert_eq!("broker:2".parse::<Target>(), Ok(Target::Broker(2)));
        assert_eq!(
            "leader:events-10".parse::<Target>(),
            Ok(Target::Leader(Some(TopicPartition::new("events", 10))))
        );
        assert_eq!("controller".parse::<Target>(), Ok(Target::Controller));
        let e = "broker:two".parse::<Target>().unwrap_err();
        assert!(e.contains("expected `broker:N`"), "{e}");
        let topics = [("events".to_owned(), 3)];
        let three = BrokerIds {
            count: 3,
            mirrored: false,
        };
        assert!(Target::Broker(4)
            .validate(three, &topics)
            .unwrap_err()
            .contains("broker 4 does not exist"));
        assert!(Target::Leader(Some(TopicPartition::new("events", 3)))
            .validate(three, &topics)
            .is_err());
        assert!(Target::Leader(Some(TopicPartition::new("events", 2)))
            .validate(three, &topics)
            .is_ok());
        // A mirror's target cluster numbers its brokers from 101.
        let mirrored = BrokerIds {
            count: 3,
            mirrored: true,
        };
        assert!(Target::Broker(103).validate(mirrored, &topics).is_ok());
        assert!(Target::Broker(103).validate(three, &topics).is_err());
        let e = Target::Broker(104).validate(mirrored, &topics).unwrap_err();
        assert_eq!(e, "broker 104 does not exist: brokers are 1 to 3, and 101 to 103");
    }

    #[test]
    fn targets_and_shapes_print_as_they_parse() {
        for text in ["broker:2", "random", "controller", "leader", "leader:events-1", "all"] {
            assert_eq!(text.parse::<Target>().unwrap().to_string(), text);
        }
        for text in [
            "halves",
            "majority-ring",
            "isolate:leader:events-0",
            "off-controller:random",
            "1,2|3",
            "1->2 3->1",
        ] {
            assert_eq!(text.parse::<Shape>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_shapes_say_what_was_expected() {
        assert!("1|x"
            .parse::<Shape>()
            .unwrap_err()
            .contains("expected `halves`"));
        assert!("1,2".parse::<Shape>().is_err(), "one group is no partition");
        assert_eq!(
            "isolate:controller".parse::<Shape>(),
            Ok(Shape::Isolate(Target::Controller))
        );
    }
}
