# logsim recipes. Plain cargo works too: .cargo/config.toml turns on --cfg madsim.

default: test

# Build the simulator.
build:
    cargo build --release

# The whole test suite, as CI runs it.
test:
    cargo test --release

# Lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --all-targets -- -D warnings

# Run one seed of a scenario: `just run 7` or `just run 7 scenarios/default.toml`.
run seed="7" scenario="scenarios/default.toml":
    cargo run --release -p logsim -- run --seed {{seed}} --scenario {{scenario}}

# Run a range of seeds in parallel: `just swarm 0..1000`.
swarm seeds="0..1000" scenario="scenarios/default.toml":
    cargo run --release -p logsim -- swarm --seeds {{seeds}} --scenario {{scenario}}

# Every fault kind, a different mix per seed: the swarm the fault-injection work must pass.
everything seeds="0..500":
    cargo run --release -p logsim -- swarm --seeds {{seeds}} --scenario scenarios/everything.toml

# Run a seed again and compare with its recorded trace in reports/.
replay seed scenario="scenarios/default.toml":
    cargo run --release -p logsim -- replay --seed {{seed}} --scenario {{scenario}}

# Shrink a failing seed to a short fault schedule: `just shrink 3 scenarios/everything.toml`.
shrink seed scenario="scenarios/default.toml":
    cargo run --release -p logsim -- shrink --seed {{seed}} --scenario {{scenario}}

# Hunt every bug switch: seeds to first failure, what caught it, the shrunk schedule.
hunt seeds="0..1000":
    cargo run --release -p logsim -- hunt --all --seeds {{seeds}}

# Check a recorded client history for anomalies.
check-history file:
    cargo run --release -p logsim -- check-history {{file}}

# Speed on this machine: fixed workloads against the bare madsim floor.
bench:
    cargo run --release -p logsim -- bench

# Tell a bug switch's scripted scenario step by step.
explain bug:
    cargo run --release -p logsim -- explain --bug {{bug}}

# Real mode: a real cluster on 127.0.0.1 for any Kafka client (`just serve --brokers 3`).
serve *args:
    RUSTFLAGS= cargo run --release --target-dir target/real -p logsim -- serve {{args}}

# Real mode against kcat, confluent-kafka and kafka-python, as CI runs it.
real-clients:
    ./tests/real/setup
    RUSTFLAGS= cargo build --release --target-dir target/real -p logsim
    python3 tests/real/clients.py target/real/release/logsim --port 19092

# The workload profiles (activity tracking, messaging, metrics and logs), 200 seeds each.
profiles seeds="0..200":
    for s in activity-tracking messaging metrics-logs; do cargo run --release -p logsim -- swarm --seeds {{seeds}} --scenario scenarios/$s.toml || exit 1; done

# One shard of a swarm split N ways, and the merge: `just shard 0/4 0..1000`, then `just merge`.
shard which seeds="0..1000" scenario="scenarios/default.toml":
    cargo run --release -p logsim -- swarm --seeds {{seeds}} --scenario {{scenario}} --shard {{which}} --out reports/shards/shard-$(echo {{which}} | tr / -).jsonl

merge:
    cargo run --release -p logsim -- merge reports/shards/*.jsonl
