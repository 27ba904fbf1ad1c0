//! Real mode: the same broker, controller and replication code on 127.0.0.1, with real TCP, real
//! time and real files, for Kafka clients nobody here wrote. Built without `--cfg madsim`.
//!
//! `logsim serve` runs one process per broker, so that one broker can be stopped (or killed) on
//! its own while the others serve on, as a real cluster's brokers are.

mod cluster;
mod node;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "logsim",
    version,
    about = "logsim, real-mode build: serves a real cluster on 127.0.0.1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a cluster of brokers on 127.0.0.1 until Ctrl-C.
    Serve(ServeArgs),
    /// Any simulation command: not in this build.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// How `serve` lays out a real cluster on 127.0.0.1.
#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// How many brokers; every one also votes in the controller quorum.
    #[arg(long, default_value_t = 3)]
    pub brokers: u16,
    /// Broker N listens on PORT + N - 1.
    #[arg(long, default_value_t = 9092)]
    pub port: u16,
    /// Where the brokers keep their logs: DIR/broker-N. Kept across restarts.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// A topic the controller creates: NAME or NAME:PARTITIONS. May be given more than once.
    #[arg(long = "topic", default_value = "events:3")]
    pub topics: Vec<String>,
    /// Replicas per partition (at most the number of brokers).
    #[arg(long, default_value_t = 3)]
    pub replication_factor: i32,
    /// `min.insync.replicas`: acks=all writes need this many in-sync replicas.
    #[arg(long, default_value_t = 2)]
    pub min_insync_replicas: usize,
    /// Run only broker N in this process (what `serve` starts once per broker).
    #[arg(long, hide = true)]
    pub node: Option<i32>,
}

impl ServeArgs {
    /// Where broker `node` listens.
    pub fn address(&self, node: i32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port + node as u16 - 1))
    }

    /// Every broker's address, comma-separated, as a client's bootstrap list takes them.
    pub fn bootstrap(&self) -> String {
        (1..=self.brokers as i32)
            .map(|n| self.address(n).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The topics as `(name, partitions)`; an error names the argument it cannot read.
    pub fn topic_specs(&self) -> Result<Vec<(String, i32)>, String> {
        self.topics
            .iter()
            .map(|t| {
                let (name, partitions) = t.split_once(':').unwrap_or((t, "1"));
                let partitions = partitions
                    .parse::<i32>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("--topic {t}: partitions must be a positive number"))?;
                if name.is_empty() {
                    return Err(format!("--topic {t}: the topic needs a name"));
                }
                Ok((name.to_owned(), partitions))
            })
            .collect()
    }

    fn validate(&self) -> Result<(), String> {
        if self.brokers == 0 {
            return Err("--brokers must be at least 1".into());
        }
        if u32::from(self.port) + u32::from(self.brokers) - 1 > u32::from(u16::MAX) {
            return Err(format!(
                "--port {} leaves no room for {} brokers",
                self.port, self.brokers
            ));
        }
        if self.replication_factor < 1 || self.replication_factor > i32::from(self.brokers) {
            return Err(format!(
                "--replication-factor {} must be between 1 and --brokers ({})",
                self.replication_factor, self.brokers
            ));
        }
        if let Some(n) = self.node {
            if n < 1 || n > i32::from(self.brokers) {
                return Err(format!(
                    "--node {n} is not one of the {} brokers",
                    self.brokers
                ));
            }
        }
        self.topic_specs().map(|_| ())
    }
}

/// The real-mode binary: `serve` runs brokers on real sockets; any simulation command says how
/// to get the simulating build.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The brokers' own log, to stderr, when RUST_LOG asks for it.
    if let Err(e) = crate::logging::init_from_env() {
        eprintln!("logsim: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Serve(args) => args.validate().and_then(|()| match args.node {
            Some(node) => node::run(&args, node),
            None => cluster::run(&args),
        }),
        Command::Other(words) => Err(format!(
            "`{}` is a simulation command, and this is the real-mode build, which only serves.\n\
             Simulate with the default build: cargo run --release -p logsim -- {}",
            words.first().map_or("", String::as_str),
            words.join(" ")
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logsim: {e}");
            ExitCode::from(2)
        }
    }
}
