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

# Transactions and exactly-once under swarm faults: the two swarms issue 23 is judged by.
transactions seeds="0..1000":
    cargo run --release -p logsim -- swarm --seeds {{seeds}} --scenario scenarios/transactions.toml --faults swarm
    cargo run --release -p logsim -- swarm --seeds {{seeds}} --scenario scenarios/exactly-once.toml --faults swarm

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

# Guided exploration of a scenario, continuing its corpus in reports/: `just explore 10m`.
explore budget="10m" scenario="scenarios/default.toml":
    cargo run --release -p logsim -- explore --budget {{budget}} --scenario {{scenario}}

# The bug benchmark: every switch hunted on the unscripted grounds by seeds, then by guided
# exploration of the dedicated-controller cluster, each up to as many runs as `seeds` holds.
bug-benchmark seeds="0..1000":
    cargo run --release -p logsim -- hunt --all --seeds {{seeds}}
    cargo run --release -p logsim -- hunt --all --guided --seeds {{seeds}}

# Check a recorded client history for anomalies.
check-history file:
    cargo run --release -p logsim -- check-history {{file}}

# What a refactor must keep: the trace hash and verdict (checks failed) of every shipped scenario at
# seeds 1-3 and of the default scenario's `--faults swarm` at seeds 1-4, one line each. Compare two
# commits with `just fingerprint > a.txt`, then `diff a.txt b.txt`.
fingerprint bin="target/release/logsim":
    #!/usr/bin/env bash
    set -eu
    [ "{{bin}}" != target/release/logsim ] || cargo build --release -p logsim -q
    line() {
      "{{bin}}" run --no-files --json "$@" | python3 -c 'import json, sys
    r = json.load(sys.stdin)
    checks = sorted({v["check"] for v in r["violations"]})
    print(r["trace_hash"], "pass" if r["pass"] else "fail " + ",".join(checks))'
    }
    for file in scenarios/*.toml scenarios/bugs/*.toml; do
      for seed in 1 2 3; do echo "$file $seed $(line --scenario "$file" --seed $seed)"; done
    done
    for seed in 1 2 3 4; do echo "swarm $seed $(line --faults swarm --seed $seed)"; done

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

# The long soak of the correct system: 100,000 seeds over the shipped scenarios, in shards of
# 1,000 seeds under `dir`. Resumable: a shard whose file ends with its `done` line is kept, any
# other is run again, so stop it at will (Ctrl-C, a closed session) and run it again later. The
# plan is `name scenario faults seeds shards`; shard K of a plan runs after every plan's shard K-1,
# so a soak cut short has covered every scenario evenly. `just soak-status` tells what it found.
soak dir="reports/soak":
    #!/usr/bin/env bash
    set -u
    cargo build --release -p logsim || exit 2
    mkdir -p {{dir}}
    # One binary for the whole sitting, so a rebuild meanwhile does not change what runs.
    cp target/release/logsim {{dir}}/logsim.bin
    git rev-parse --short HEAD >> {{dir}}/commits 2>/dev/null
    plan="$(just --justfile {{justfile()}} soak-plan)"
    most=$(echo "$plan" | awk '{ if ($5 > m) m = $5 } END { print m }')
    for k in $(seq 0 $((most - 1))); do
      while read -r name file faults seeds shards; do
        [ "$k" -lt "$shards" ] || continue
        out={{dir}}/$name/shard-$k-of-$shards.jsonl
        grep -q '^{"done"' "$out" 2>/dev/null && continue
        mkdir -p {{dir}}/$name
        echo "soak: $name shard $k/$shards (seeds 0..$seeds, faults $faults)"
        {{dir}}/logsim.bin swarm --scenario scenarios/$file --faults $faults --seeds 0..$seeds \
          --shard $k/$shards --out "$out.partial" > "{{dir}}/$name/shard-$k-of-$shards.log"
        [ $? -le 1 ] && mv "$out.partial" "$out" || { echo "soak: $out did not finish" >&2; exit 2; }
      done <<< "$plan"
    done
    just --justfile {{justfile()}} soak-status {{dir}}

# The soak's plan: name, scenario file, fault mode, seeds (from 0), shards.
soak-plan:
    @printf '%s\n' \
      'everything everything.toml scenario 20000 20' \
      'dedicated-controller dedicated-controller.toml swarm 20000 20' \
      'default-swarm default.toml swarm 20000 20' \
      'consumer-groups consumer-groups.toml scenario 20000 20' \
      'mirror-maker mirror-maker.toml scenario 20000 20' \
      'activity-tracking activity-tracking.toml scenario 2000 2' \
      'messaging messaging.toml scenario 2000 2' \
      'metrics-logs metrics-logs.toml scenario 2000 2'

# What a soak has run so far: per plan, shards done, seeds run and passed, wall time, and each
# failing seed as the command that replays it. A plan whose shards are all done is also merged.
soak-status dir="reports/soak":
    #!/usr/bin/env bash
    set -u
    printf '%-22s %9s %8s %8s %8s %10s\n' plan shards seeds passed failed "wall (s)"
    just --justfile {{justfile()}} soak-plan | while read -r name file faults seeds shards; do
      files=$(ls {{dir}}/$name/shard-*-of-$shards.jsonl 2>/dev/null)
      done_=$(echo "$files" | grep -c . )
      runs=$(cat $files /dev/null | grep -c '^{"result"')
      failed=$(cat $files /dev/null | grep -c '"pass":false')
      wall=$(cat $files /dev/null | grep -o '"done":{"runs":[0-9]*,"wall_seconds":[0-9.]*' \
        | awk -F: '{ s += $NF } END { printf "%.0f", s }')
      printf '%-22s %5s/%-3s %8s %8s %8s %10s\n' $name $done_ $shards $runs $((runs - failed)) $failed $wall
      cat $files /dev/null | grep '"pass":false' | grep -o '"seed":[0-9]*' | cut -d: -f2 \
        | while read -r seed; do
          echo "    FAIL  cargo run --release -p logsim -- run --seed $seed --scenario scenarios/$file --faults $faults"
        done
    done

# Mutation testing of the model's replication, quorum and storage files with cargo-mutants (`cargo
# install cargo-mutants`): each mutant is judged by tests/mutants.rs, a short swarm that `cargo
# test` skips, the switches' scripts with their switches off and on, and quick rule tests, and by
# tests/storage.rs, the log's own tests (appends, truncation, recovery; they take no time). Builds
# use the `mutants` profile (release speed, incremental), so a mutant costs 12-40 s of build and
# about 10 s of judging after a first full build per job. About 2 hours for the replication and
# quorum files on 2 cores; one file: `just mutants model/src/raft.rs`. The score and each
# surviving mutant are in mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt). The
# baseline is skipped because cargo-mutants 27 runs it with the mutated package's tests rather
# than --test-package's; the unmutated tree passes tests/mutants.rs in `cargo test --release
# --test mutants -- --include-ignored`.
mutants files="model/src/partition.rs model/src/raft.rs model/src/raft_driver.rs model/src/fetcher.rs model/src/replica_fetcher.rs model/src/log/mod.rs model/src/log/epoch_cache.rs model/src/log/checkpoint.rs" jobs="2":
    cargo mutants --package logsim-model $(printf -- '--file %s ' {{files}}) --test-package=logsim-tests --baseline=skip --timeout 90 --build-timeout 900 --profile mutants -j {{jobs}} --cargo-arg=--test=mutants --cargo-arg=--test=storage -- -- --include-ignored
