//! The simulated world the system under test runs in: the cluster of brokers (`cluster`), each
//! broker's disk (`disk`) and clock (`clock`), and the clients that load it: producers and lone
//! consumers (`workload`), consumer-group members (`group_consumer`), transactional producers
//! (`txn_producer`), the consume-transform-produce pipeline (`pipeline`) and MirrorMaker
//! (`mirror`).
//! It knows nothing of checks; what happens in it goes to the record through a `Journal`.

pub mod clock;
pub mod cluster;
pub mod disk;
pub mod group_consumer;
pub mod mirror;
pub mod pipeline;
pub mod txn_producer;
pub mod workload;
