//! What a swarm reached: each coverage mark of the system under test (`model::coverage`) counted
//! over the swarm's seeds, the marks no seed reached, and the scenario's sometimes-properties
//! judged (a mark the scenario requires that no seed reached makes the swarm vacuous).

use std::collections::BTreeMap;

use model::coverage::Mark;
use serde::Serialize;

/// One mark over a swarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MarkTally {
    /// The mark's name.
    pub mark: &'static str,
    /// Seeds whose run reached it at least once.
    pub runs: u64,
    /// Times it was reached, over all seeds.
    pub hits: u64,
}

/// Every mark of the catalogue over a swarm, and the sometimes-properties' verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Every mark, in catalogue order, reached or not.
    pub marks: Vec<MarkTally>,
    /// The sometimes-properties the scenario asks for.
    pub sometimes: Vec<&'static str>,
    /// Those no seed reached: each one fails the swarm as vacuous.
    pub vacuous: Vec<&'static str>,
}

impl Coverage {
    /// Adds up the marks each seed reached (`per_seed`: a mark's name and its hits in one run),
    /// and judges `sometimes` against the total.
    pub fn tally<'a>(
        per_seed: impl IntoIterator<Item = &'a BTreeMap<String, u64>>,
        sometimes: &[Mark],
    ) -> Coverage {
        let mut runs = vec![0u64; Mark::ALL.len()];
        let mut hits = vec![0u64; Mark::ALL.len()];
        for seed in per_seed {
            for (name, n) in seed {
                // A shard written by another build may name a mark this one lacks: not counted.
                if let (Some(mark), true) = (Mark::named(name), *n > 0) {
                    runs[mark as usize] += 1;
                    hits[mark as usize] += n;
                }
            }
        }
        let marks: Vec<MarkTally> = (Mark::ALL.iter())
            .map(|m| MarkTally {
                mark: m.name(),
                runs: runs[*m as usize],
                hits: hits[*m as usize],
            })
            .collect();
        let vacuous = (sometimes.iter())
            .filter(|m| runs[**m as usize] == 0)
            .map(|m| m.name())
            .collect();
        Coverage {
            marks,
            sometimes: sometimes.iter().map(|m| m.name()).collect(),
            vacuous,
        }
    }

    /// How many marks at least one seed reached.
    pub fn reached(&self) -> usize {
        self.marks.iter().filter(|m| m.runs > 0).count()
    }

    /// The marks no seed reached, in catalogue order.
    pub fn never_reached(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.marks.iter().filter(|m| m.runs == 0).map(|m| m.mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(marks: &[(&str, u64)]) -> BTreeMap<String, u64> {
        marks.iter().map(|(m, n)| (m.to_string(), *n)).collect()
    }

    #[test]
    fn marks_add_up_over_seeds_and_unreached_ones_are_listed() {
        let seeds = [
            seed(&[("broker-fenced", 2), ("vote-granted", 5)]),
            seed(&[("broker-fenced", 1)]),
        ];
        let c = Coverage::tally(&seeds, &[]);
        let fenced = c.marks.iter().find(|m| m.mark == "broker-fenced").unwrap();
        assert_eq!((fenced.runs, fenced.hits), (2, 3));
        assert_eq!(c.reached(), 2);
        assert_eq!(c.never_reached().count(), Mark::ALL.len() - 2);
        assert!(c.never_reached().any(|m| m == "isr-shrinks"));
        assert!(c.vacuous.is_empty());
    }

    #[test]
    fn a_sometimes_property_no_seed_reached_is_vacuous_and_a_reached_one_is_not() {
        let seeds = [seed(&[("broker-fenced", 1)])];
        let c = Coverage::tally(&seeds, &[Mark::BrokerFenced, Mark::IsrShrinks]);
        assert_eq!(c.sometimes, ["broker-fenced", "isr-shrinks"]);
        assert_eq!(c.vacuous, ["isr-shrinks"]);
        let none: [BTreeMap<String, u64>; 0] = [];
        assert_eq!(
            Coverage::tally(&none, &[Mark::BrokerFenced]).vacuous,
            ["broker-fenced"],
            "a swarm of no seeds reaches nothing"
        );
    }
}
