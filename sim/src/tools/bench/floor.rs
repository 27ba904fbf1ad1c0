//! The bare madsim floor: the message pattern of an acks=all write with no broker logic. A
//! producer sends a small record to the leader, the leader sends it to two followers over madsim
//! TCP, each follower answers with an ack, and once both are in the leader acks the producer, which
//! then sends its next record; `producers` such chains run at once, as logsim's producers do. What
//! logsim spends per acknowledged record above this is its own logic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::net::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one floor run did.
pub struct FloorRun {
    /// Records written and acknowledged, over all producer chains.
    pub writes: u64,
    /// Messages over madsim's network, as madsim counts them.
    pub messages: u64,
    /// Wall-clock seconds the run took, building the runtime included.
    pub wall_seconds: f64,
    /// Simulated seconds the producers wrote for.
    pub sim_seconds: f64,
}

const PORT: u16 = 9000;
const RECORD: usize = 100;

fn address(node: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, node], PORT))
}

/// Serves every connection to this node's port with `serve`, each in its own task.
async fn serve_each<F, Fut>(serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], PORT)))
        .await
        .expect("bind");
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        madsim::task::spawn(serve(stream));
    }
}

async fn follower() {
    serve_each(|mut stream| async move {
        let mut record = [0u8; RECORD];
        while stream.read_exact(&mut record).await.is_ok() {
            if stream.write_all(&record[..8]).await.is_err() || stream.flush().await.is_err() {
                return;
            }
        }
    })
    .await
}

/// The leader: each producer connection gets its own pair of follower connections, and every
/// record it sends is forwarded to both and acked once both have acked it.
async fn leader() {
    serve_each(|mut producer| async move {
        let mut followers = Vec::new();
        for node in [2u8, 3] {
            followers.push(TcpStream::connect(address(node)).await.expect("connect"));
        }
        let mut record = [0u8; RECORD];
        let mut ack = [0u8; 8];
        while producer.read_exact(&mut record).await.is_ok() {
            for f in followers.iter_mut() {
                f.write_all(&record).await.expect("send");
                f.flush().await.expect("flush");
            }
            for f in followers.iter_mut() {
                f.read_exact(&mut ack).await.expect("ack");
            }
            if producer.write_all(&ack).await.is_err() || producer.flush().await.is_err() {
                return;
            }
        }
    })
    .await
}

async fn chain(writes: Arc<AtomicU64>, until: madsim::time::Instant) {
    let mut to_leader = TcpStream::connect(address(1)).await.expect("connect");
    let mut record = [7u8; RECORD];
    let mut ack = [0u8; 8];
    while madsim::time::Instant::now() < until {
        let n = writes.fetch_add(1, Ordering::Relaxed);
        record[..8].copy_from_slice(&n.to_le_bytes());
        to_leader.write_all(&record).await.expect("send");
        to_leader.flush().await.expect("flush");
        to_leader.read_exact(&mut ack).await.expect("ack");
    }
}

/// Starts the leader (10.0.0.1) and a follower on each of `followers` (10.0.0.N), and returns the
/// producers' node, 10.0.0.9, once they listen.
async fn nodes(followers: &[u8]) -> madsim::runtime::NodeHandle {
    let handle = madsim::runtime::Handle::current();
    for node in followers {
        handle
            .create_node()
            .name(format!("follower-{node}"))
            .ip(std::net::IpAddr::from([10, 0, 0, *node]))
            .init(follower)
            .build();
    }
    handle
        .create_node()
        .name("leader")
        .ip(std::net::IpAddr::from([10, 0, 0, 1]))
        .init(leader)
        .build();
    madsim::time::sleep(Duration::from_millis(1)).await;
    handle
        .create_node()
        .name("producers")
        .ip(std::net::IpAddr::from([10, 0, 0, 9]))
        .build()
}

/// Runs the floor for `sim` simulated time with `producers` chains, on this thread.
pub fn run(seed: u64, producers: u32, sim: Duration) -> FloorRun {
    let wall = std::time::Instant::now();
    let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let writes = Arc::new(AtomicU64::new(0));
    let counted = writes.clone();
    let messages = runtime.block_on(async move {
        let producers_node = nodes(&[2, 3]).await;
        let until = madsim::time::Instant::now() + sim;
        let tasks: Vec<_> = (0..producers)
            .map(|_| producers_node.spawn(chain(counted.clone(), until)))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        madsim::net::NetSim::current().stat().msg_count
    });
    FloorRun {
        writes: writes.load(Ordering::Relaxed),
        messages,
        wall_seconds: wall.elapsed().as_secs_f64(),
        sim_seconds: sim.as_secs_f64(),
    }
}

/// Small 4-node runtimes per wall second, each on a fresh thread as logsim runs seeds: a producer
/// writes through a leader to two followers for 20 simulated milliseconds.
pub fn runtimes_per_second(count: u64) -> f64 {
    let wall = std::time::Instant::now();
    for seed in 0..count {
        std::thread::spawn(move || {
            let runtime =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.block_on(async {
                let client = nodes(&[2, 3]).await;
                let writes = Arc::new(AtomicU64::new(0));
                let until = madsim::time::Instant::now() + Duration::from_millis(20);
                let _ = client.spawn(chain(writes, until)).await;
            });
        })
        .join()
        .expect("a floor runtime");
    }
    count as f64 / wall.elapsed().as_secs_f64()
}
