//! Tools built on runs: many seeds at once (`swarm`, and `shard` across machines), a failing seed
//! made small (`shrink`), a bug switch hunted down (`hunt`) and told step by step (`explain`), a
//! run replayed against its recorded trace (`replay`), a trace told for people (`narrate`), an
//! HTML report of a run or a swarm (`report`), what a swarm reached (`coverage`), and how fast all
//! this goes (`bench`).

pub mod bench;
pub mod coverage;
pub mod explain;
pub mod explore;
pub mod hunt;
pub mod narrate;
pub mod replay;
pub mod report;
pub mod shard;
pub mod shrink;
pub mod swarm;
