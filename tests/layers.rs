//! The harness is built in layers, and no layer reaches into one above it:
//!
//! | layer | modules |
//! |---|---|
//! | 0 scenario data | `scenario` (with fault options and every seed salt), `logging`, and the crate root's helpers |
//! | 1 the record | `record/` (`history`, `journal`, `trace`) |
//! | 2 the simulated world | `world/` (`cluster`, `disk`, `clock`, `workload`, `mirror`, `group_consumer`) |
//! | 3 fault injectors | `faults/` |
//! | 4 checkers | `checkers/`, `observer` |
//! | 5 the run | `run`, `sim` (its builder) |
//! | 6 tools | `tools/` (`swarm`, `shard`, `shrink`, `hunt`, `explain`, `replay`, `narrate`, `report`, `bench`), `real/` |
//! | 7 the command line | `main.rs`, `cli/` |
//!
//! A module may use its own layer and those below. A new module must be given a layer here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, u8)] = &[
    ("scenario", 0),
    ("slot", 0),
    ("Locked", 0),
    ("logging", 0),
    ("record", 1),
    ("world", 2),
    ("faults", 3),
    ("checkers", 4),
    ("observer", 4),
    ("run", 5),
    ("sim", 5),
    ("tools", 6),
    ("real", 6),
    ("lib", 7),
    ("main", 7),
    ("cli", 7),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The crate's top-level modules a source file names through `crate::` in its code (not its
/// comments, where a doc link may point anywhere), with the line of each.
fn uses(text: &str) -> Vec<(String, usize)> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut named = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let line = text[..at].matches('\n').count() + 1;
        let rest = &text[at + "crate::".len()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            // `use crate::{a::b, c};`: each path's first segment.
            Some(group) => group[..group.find('}').unwrap_or(0)]
                .split(',')
                .map(|p| p.trim())
                .collect(),
            None => vec![rest],
        };
        for item in items {
            let name: String = item
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                named.push((name, line));
            }
        }
    }
    named
}

#[test]
fn no_layer_of_the_harness_imports_one_above_it() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/sim/src"));
    let mut files = Vec::new();
    sources(root, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut layers_used = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(root).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|m| m.trim_end_matches(".rs"))
            .expect("a module");
        let Some(own) = layer(module) else {
            problems.push(format!(
                "{}: module `{module}` has no layer in tests/layers.rs",
                relative.display()
            ));
            continue;
        };
        *layers_used.entry(own).or_insert(0) += 1;
        let text = std::fs::read_to_string(file).expect("readable");
        for (name, line) in uses(&text) {
            match layer(&name) {
                Some(theirs) if theirs > own => problems.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `crate::{name}` (layer {theirs})",
                    relative.display()
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{}:{line}: `crate::{name}` has no layer in tests/layers.rs",
                    relative.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        layers_used.len() >= 7,
        "the scan found too few layers: {layers_used:?}"
    );
}

#[test]
fn the_scan_sees_a_climb_when_there_is_one() {
    let text = "use crate::run::run;\nuse crate::{scenario::Dur, checkers::Violation};\nfn f() { crate::slot(); }\n/// [`Sim`](crate::sim::Sim)\n";
    let named: Vec<(String, usize)> = uses(text);
    assert_eq!(
        named,
        vec![
            ("run".to_owned(), 1),
            ("scenario".to_owned(), 2),
            ("checkers".to_owned(), 2),
            ("slot".to_owned(), 3),
        ]
    );
    assert!(layer("run") > layer("checkers") && layer("checkers") > layer("world"));
}
