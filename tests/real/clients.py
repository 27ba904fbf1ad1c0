#!/usr/bin/env python3
"""Real Kafka clients against `logsim serve` (the real-mode build) on 127.0.0.1.

Each client (kcat, confluent-kafka with and without idempotence, kafka-python) produces 10,000
values with acks=all; every consumer reads everything back from the beginning and must see each
acknowledged value exactly once, in order per partition. Then one broker is killed (SIGKILL) and
the clients produce on; nothing acknowledged may be lost. Then the cluster is stopped cleanly and
started again on the same data directory: nothing acknowledged may be lost across that either.
Malformed frames (an absurd length, a torn frame, an unknown API) must not take a broker down.
Transactional producers (confluent-kafka, kafka-python and kafkajs: init, begin, produce,
commit and abort, and send_offsets_to_transaction (kafkajs: sendOffsets) in a
consume-transform-produce loop from a read_committed group member) write to a second topic;
read_committed consumers must read every committed value once and no aborted one, the
pipelines' groups must have committed their consumed offsets, and a transaction whose broker is
killed midway must be all or nothing.

Usage: clients.py LOGSIM_BINARY [--port 19092] [--records 10000]
The clients are installed by tests/real/setup (kafkajs into tests/real/node, run with node).
Exits non-zero with the reason on the first check that fails. Stops by itself: every wait is
bounded, and the cluster is killed on the way out whatever happened.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

TOPIC = "events"
PARTITIONS = 3
TXN_TOPIC = "ledger"
KEYS = 16
HERE = os.path.dirname(os.path.abspath(__file__))
KAFKAJS = os.path.join(HERE, "node", "node_modules")


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Cluster:
    def __init__(self, binary, port, data_dir):
        self.binary, self.port, self.data_dir = binary, port, data_dir
        self.process = None
        self.bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(3))

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "serve", "--brokers", "3", "--port", str(self.port),
             "--data-dir", self.data_dir, "--topic", f"{TOPIC}:{PARTITIONS}",
             "--topic", f"{TXN_TOPIC}:{PARTITIONS}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.wait_ready()

    def wait_ready(self, brokers=3, limit=60):
        """Until every broker, asked alone, lists `brokers` brokers and the topic with a leader for
        each partition: a broker learns committed metadata a fetch later than the quorum leader,
        and a client that asks a broker still behind is told the topic does not exist."""
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.process.poll() is not None:
                fail(f"logsim serve exited early:\n{self.process.stdout.read()}")
            if all(self.broker_ready(i, brokers) for i in range(3)):
                return
            time.sleep(0.5)
        fail(f"the cluster did not come up with {brokers} brokers within {limit} s")

    def broker_ready(self, index, brokers):
        try:
            known, partitions = metadata_of(self.port + index)
        except OSError:  # not up yet
            return False
        leaders = partitions.get(TOPIC)
        return (known >= brokers and leaders is not None and len(leaders) == PARTITIONS
                and all(leader >= 0 for leader in leaders))

    def broker_pid(self, node):
        with open(os.path.join(self.data_dir, f"broker-{node}.pid")) as f:
            return int(f.read().strip())

    def kill_broker(self, node):
        pid = self.broker_pid(node)
        os.kill(pid, signal.SIGKILL)
        log(f"killed broker {node} (pid {pid})")

    def stop(self, limit=60):
        """A clean stop, as Ctrl-C gives; the brokers must finish within `limit` seconds."""
        self.process.send_signal(signal.SIGINT)
        try:
            out, _ = self.process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(f"logsim serve did not stop within {limit} s of Ctrl-C")
        return self.process.returncode, out

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def metadata_of(port):
    """One broker's own view, by a Metadata v1 request on a socket of its own (a client library
    may send its metadata request to any broker it has learnt of): how many brokers it lists, and
    for each topic without an error the leader of each partition."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.settimeout(2)
        client = b"ready"
        request = struct.pack(">hhih", 3, 1, 7, len(client)) + client + struct.pack(">i", -1)
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", recv_exactly(s, 4))[0]
        body = recv_exactly(s, size)
    at = 4  # past the correlation id

    def take(fmt):
        nonlocal at
        values = struct.unpack_from(fmt, body, at)
        at += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string():
        nonlocal at
        n = take(">h")
        text = body[at:at + max(n, 0)].decode()
        at += max(n, 0)
        return text

    brokers = take(">i")
    for _ in range(brokers):
        take(">i")
        string()
        take(">i")
        string()  # rack, nullable
    take(">i")  # controller
    topics = {}
    for _ in range(take(">i")):
        error = take(">h")
        name = string()
        take(">b")  # internal
        leaders = []
        for _ in range(take(">i")):
            _, _, leader = take(">hii")
            take(">" + "i" * take(">i"))  # replicas
            take(">" + "i" * take(">i"))  # isr
            leaders.append(leader)
        if error == 0:
            topics[name] = leaders
    return brokers, topics


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker hung up")
        data += chunk
    return data


def value(client, i):
    return f"{client}-{i:06d}"


# Producers: each returns the values it saw acknowledged.

def produce_kcat(bootstrap, client, start, count):
    lines = "".join(f"k{i % KEYS}\t{value(client, i)}\n" for i in range(start, start + count))
    r = subprocess.run(
        ["kcat", "-b", bootstrap, "-P", "-t", TOPIC, "-K", "\t",
         "-X", "acks=all", "-X", "message.timeout.ms=60000"],
        input=lines, capture_output=True, text=True, timeout=120)
    # kcat reports each failed delivery on stderr; with none, every message was acknowledged.
    if r.returncode != 0 or "fail" in r.stderr.lower():
        fail(f"kcat produce: exit {r.returncode}: {r.stderr[-2000:]}")
    return [value(client, i) for i in range(start, start + count)]


def produce_confluent(bootstrap, client, start, count, idempotent):
    acked, errors = [], []

    def report(err, msg):
        if err is None:
            acked.append(msg.value().decode())
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                  "enable.idempotence": idempotent, "message.timeout.ms": 60000})
    for i in range(start, start + count):
        while True:
            try:
                p.produce(TOPIC, key=f"k{i % KEYS}", value=value(client, i), on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(120) != 0:
        fail(f"{client}: messages still undelivered after 120 s")
    if errors:
        log(f"{client}: {len(errors)} deliveries failed (allowed, not acknowledged): {errors[:3]}")
    return acked


def produce_kafka_python(bootstrap, client, start, count):
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10,
                      request_timeout_ms=10000, delivery_timeout_ms=60000)
    futures = [(value(client, i), p.send(TOPIC, key=f"k{i % KEYS}".encode(),
                                         value=value(client, i).encode()))
               for i in range(start, start + count)]
    p.flush(120)
    acked = []
    for v, f in futures:
        try:
            f.get(timeout=1)
            acked.append(v)
        except Exception:  # noqa: BLE001 - an unacknowledged write may or may not land
            pass
    p.close(10)
    return acked


# Consumers: each returns [(partition, offset, value)] for everything in the topic.

def consume_kcat(bootstrap):
    r = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q",
         "-f", "%p %o %s\\n"],
        capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail(f"kcat consume: exit {r.returncode}: {r.stderr[-2000:]}")
    out = []
    for line in r.stdout.splitlines():
        p, o, v = line.split(" ", 2)
        out.append((int(p), int(o), v))
    return out


def consume_confluent(bootstrap, expected):
    return consume_isolated(bootstrap, TOPIC, "read_committed", expected)


def consume_kafka_python(bootstrap, expected):
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=5000)
    tps = [KpTopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    out, deadline = [], time.time() + 120
    while time.time() < deadline:
        batch = [(m.partition, m.offset, m.value.decode()) for m in c]
        out.extend(batch)
        if len(out) >= expected or not batch:
            break
    c.close()
    return out


def consume_group(bootstrap, group, expected, limit=120):
    """A confluent-kafka group member: subscribe, read until `expected` values, commit, close."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([TOPIC])
    out, deadline = [], time.time() + limit
    while time.time() < deadline and len(out) < expected:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append((m.partition(), m.offset(), m.value().decode()))
    if out:
        c.commit(asynchronous=False)
    c.close()
    return out


def group_resumes_at_its_commit(bootstrap, acked):
    """A group reads everything once; a new member of it, after the commit, reads nothing old."""
    check("group member", consume_group(bootstrap, "logsim-group", len(acked)), acked)
    again = consume_group(bootstrap, "logsim-group", 1, limit=15)
    if again:
        fail(f"a new member of a group that committed everything read {len(again)} records again")
    log("consumer group: one member read everything, a new member resumed at the commit")


def check(name, records, acked):
    """Every acknowledged value once; offsets rising per partition; a key's values in order."""
    seen = {}
    for p, o, v in records:
        if v in seen:
            fail(f"{name}: {v} read twice (at {seen[v]} and {(p, o)})")
        seen[v] = (p, o)
    missing = [v for v in acked if v not in seen]
    if missing:
        fail(f"{name}: {len(missing)} acknowledged values never read, e.g. {missing[:5]}")
    last_offset = {}
    last_index = {}
    for p, o, v in records:
        if o <= last_offset.get(p, -1):
            fail(f"{name}: partition {p} went from offset {last_offset[p]} to {o}")
        last_offset[p] = o
        client, i = v.rsplit("-", 1)
        stream = (p, client, int(i) % KEYS)
        if int(i) <= last_index.get(stream, -1):
            fail(f"{name}: {v} came after {client}-{last_index[stream]:06d} in partition {p}")
        last_index[stream] = int(i)
    log(f"{name}: {len(records)} records, all {len(acked)} acknowledged values once and in order")


def consume_all_and_check(bootstrap, acked, label):
    check(f"{label} kcat", consume_kcat(bootstrap), acked)
    check(f"{label} confluent-kafka", consume_confluent(bootstrap, len(acked)), acked)
    check(f"{label} kafka-python", consume_kafka_python(bootstrap, len(acked)), acked)


# Transactions: each returns (committed values, aborted values).

def transactions_confluent(bootstrap, client, txns, per):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": client,
                  "transaction.timeout.ms": 60000, "message.timeout.ms": 60000})
    p.init_transactions(60)
    committed, aborted = [], []
    for t in range(txns):
        p.begin_transaction()
        values = [value(client, t * per + i) for i in range(per)]
        for i, v in enumerate(values):
            p.produce(TXN_TOPIC, key=f"k{(t * per + i) % KEYS}", value=v)
        if t % 3 == 2:
            # Written first, so that the log holds what read_committed readers must skip.
            p.flush(60)
            p.abort_transaction(60)
            aborted += values
        else:
            p.commit_transaction(60)
            committed += values
    return committed, aborted


def transactions_kafka_python(bootstrap, client, txns, per):
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=client,
                      request_timeout_ms=10000, delivery_timeout_ms=60000)
    p.init_transactions()
    committed, aborted = [], []
    for t in range(txns):
        p.begin_transaction()
        values = [value(client, t * per + i) for i in range(per)]
        for i, v in enumerate(values):
            p.send(TXN_TOPIC, key=f"k{(t * per + i) % KEYS}".encode(), value=v.encode())
        if t % 3 == 2:
            p.flush()
            p.abort_transaction()
            aborted += values
        else:
            p.commit_transaction()
            committed += values
    p.close(10)
    return committed, aborted


def pipeline_confluent(bootstrap, client, group, limit):
    """Consume-transform-produce: read `limit` values of TOPIC in group `group`, write each to
    TXN_TOPIC, and commit the consumed offsets inside the transaction. Returns what it wrote and
    the positions it committed."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([TOPIC])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": client,
                  "transaction.timeout.ms": 60000})
    p.init_transactions(60)
    written, deadline = [], time.time() + 120
    while len(written) < limit and time.time() < deadline:
        batch = [m for m in c.consume(100, 1.0) if not m.error()]
        if not batch:
            continue
        p.begin_transaction()
        for m in batch:
            v = f"{client}-{len(written):06d}"
            p.produce(TXN_TOPIC, key=m.key(), value=v)
            written.append(v)
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 60)
        p.commit_transaction(60)
    positions = {tp.partition: tp.offset for tp in c.position(c.assignment())}
    c.close()
    return written, positions


def transactions_kafkajs(bootstrap, client, group, txns, per, limit):
    """kafkajs, by tests/real/kafkajs_txn.js: `txns` transactions of `per` values to TXN_TOPIC
    (every third aborted) as transactional id `client`, then a pipeline (transactional id
    `client`_pipeline) that reads `limit` values of TOPIC read_committed in group `group` and
    writes one value per input, committing its offsets in each transaction. Returns (committed,
    aborted, pipeline values written, positions its group committed)."""
    if not os.path.isdir(os.path.join(KAFKAJS, "kafkajs")):
        fail(f"kafkajs is not installed in {KAFKAJS}: run tests/real/setup")
    try:
        r = subprocess.run(
            ["node", os.path.join(HERE, "kafkajs_txn.js"), bootstrap, TXN_TOPIC, TOPIC, group,
             client, str(txns), str(per), str(limit)],
            capture_output=True, text=True, timeout=150,
            env={**os.environ, "NODE_PATH": KAFKAJS})
    except subprocess.TimeoutExpired as e:
        fail(f"kafkajs_txn.js still running after 150 s: {(e.stderr or b'')[-2000:]!r}")
    if r.returncode != 0:
        fail(f"kafkajs_txn.js: exit {r.returncode}: {r.stderr[-3000:]}")
    try:
        out = json.loads(r.stdout)
    except ValueError:
        fail(f"kafkajs_txn.js printed no JSON: {r.stdout[-2000:]!r}")
    positions = {int(p): o for p, o in out["positions"].items()}
    return out["committed"], out["aborted"], out["pipeline_written"], positions


def consume_isolated(bootstrap, topic, isolation, expected):
    """Everything in `topic` from the beginning, read at `isolation`: [(partition, offset, value)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "logsim-txn-check",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    out, at_end, deadline = [], set(), time.time() + 120
    while time.time() < deadline and (len(at_end) < PARTITIONS or len(out) < expected):
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # end of partition
                at_end.add(m.partition())
            continue
        at_end.discard(m.partition())
        out.append((m.partition(), m.offset(), m.value().decode()))
    c.close()
    return out


def committed_offsets(bootstrap, group, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    c.close()
    return {tp.partition: tp.offset for tp in got}


def check_committed_reads(name, records, committed, aborted):
    seen = [v for _, _, v in records]
    if len(seen) != len(set(seen)):
        fail(f"{name}: a value read twice")
    seen = set(seen)
    missing = [v for v in committed if v not in seen]
    leaked = [v for v in aborted if v in seen]
    if missing:
        fail(f"{name}: {len(missing)} committed values never read, e.g. {missing[:5]}")
    if leaked:
        fail(f"{name}: {len(leaked)} values of aborted transactions read, e.g. {leaked[:5]}")
    log(f"{name}: all {len(committed)} committed values once, none of {len(aborted)} aborted")


def transactions(cluster):
    """Transactional producers, a read_committed check, a pipeline, and a kill mid-transaction."""
    bootstrap = cluster.bootstrap
    committed, aborted = [], []
    for client, run in [("txn_confluent", transactions_confluent),
                        ("txn_kafka_python", transactions_kafka_python)]:
        started = time.time()
        c, a = run(bootstrap, client, 30, 5)
        committed += c
        aborted += a
        log(f"{client}: {len(c)} values committed and {len(a)} aborted in 30 transactions, "
            f"{time.time() - started:.1f} s")
    written, positions = pipeline_confluent(bootstrap, "txn_pipeline", "logsim-pipeline", 2000)
    committed += written
    got = committed_offsets(bootstrap, "logsim-pipeline", TOPIC)
    if got != positions:
        fail(f"the pipeline's group committed {got}, its consumer was at {positions}")
    log(f"pipeline: {len(written)} values written with their input offsets committed {positions}")
    started = time.time()
    c, a, written, positions = transactions_kafkajs(
        bootstrap, "txn_kafkajs", "logsim-pipeline-kafkajs", 30, 5, 2000)
    committed += c + written
    aborted += a
    if (len(c), len(a), len(written)) != (100, 50, 2000):
        fail(f"kafkajs: {len(c)} values committed, {len(a)} aborted and {len(written)} piped, "
             "not 100, 50 and 2000")
    # A partition it read none of has no commit.
    positions = {p: positions.get(p, OFFSET_INVALID) for p in range(PARTITIONS)}
    got = committed_offsets(bootstrap, "logsim-pipeline-kafkajs", TOPIC)
    if got != positions:
        fail(f"the kafkajs pipeline's group committed {got}, it sent offsets {positions}")
    log(f"txn_kafkajs: {len(c)} values committed and {len(a)} aborted in 30 transactions, then "
        f"a read_committed pipeline wrote {len(written)} values with offsets committed "
        f"{positions}, {time.time() - started:.1f} s")
    records = consume_isolated(bootstrap, TXN_TOPIC, "read_committed", len(committed))
    check_committed_reads("read_committed", records, committed, aborted)
    written = len(committed) + len(aborted)
    everything = consume_isolated(bootstrap, TXN_TOPIC, "read_uncommitted", written)
    if len(everything) < written:
        fail(f"read_uncommitted read {len(everything)} values, fewer than were written")

    # A broker killed in the middle of a transaction: it commits whole or not at all.
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "txn_killed",
                  "transaction.timeout.ms": 20000, "message.timeout.ms": 20000})
    p.init_transactions(60)
    p.begin_transaction()
    values = [value("txn_killed", i) for i in range(30)]
    for i, v in enumerate(values[:15]):
        p.produce(TXN_TOPIC, key=f"k{i % KEYS}", value=v)
    p.flush(30)
    cluster.kill_broker(2)
    for i, v in enumerate(values[15:]):
        p.produce(TXN_TOPIC, key=f"k{(15 + i) % KEYS}", value=v)
    try:
        p.commit_transaction(90)
        outcome = "committed"
    except Exception as e:  # noqa: BLE001 - an abortable error aborts, a fatal one leaves it to the timeout
        log(f"commit with a broker down failed: {e}")
        try:
            p.abort_transaction(60)
        except Exception:  # noqa: BLE001
            pass
        outcome = "aborted"
    survivors = f"127.0.0.1:{cluster.port},127.0.0.1:{cluster.port + 2}"
    # Past the transaction's timeout, whatever the client managed, it has ended.
    time.sleep(25)
    records = consume_isolated(survivors, TXN_TOPIC, "read_committed", len(committed))
    seen = {v for _, _, v in records}
    part = [v for v in values if v in seen]
    if part and len(part) != len(values):
        fail(f"a transaction cut by a broker kill is torn: {len(part)} of {len(values)} read")
    if outcome == "committed" and not part:
        fail("a transaction whose commit succeeded with a broker down is not readable")
    check_committed_reads("read_committed after a kill", records, committed, aborted)
    log(f"broker killed mid-transaction: {outcome}, {len(part)} of {len(values)} values readable")
    return survivors


def malformed_frames(port):
    """Bad input on one connection closes that connection or gets an error, never the broker."""
    def send(payload, read=True):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            if read:
                try:
                    s.recv(64)
                except (socket.timeout, ConnectionResetError):
                    pass
    send(struct.pack(">i", 0x7FFFFFFF) + b"x" * 16)             # absurd length prefix
    send(struct.pack(">i", 100) + b"\x00\x03\x00", read=False)   # torn frame, then a hang-up
    send(struct.pack(">i", 10) + struct.pack(">hhi", 9999, 0, 1) + b"\x00\x00")  # unknown API
    send(struct.pack(">i", -5))                                  # negative length
    send(struct.pack(">i", 8) + struct.pack(">hhi", 0, 9, 7))    # produce with no body
    # An ApiVersions request of a version the broker does not know: a v0 answer, error 35.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        header = struct.pack(">hhih", 18, 99, 42, -1) + b"\x00" + b"\x00" * 3
        s.sendall(struct.pack(">i", len(header)) + header)
        size = struct.unpack(">i", s.recv(4))[0]
        body = b""
        while len(body) < size:
            body += s.recv(size - len(body))
        correlation, error = struct.unpack(">ih", body[:6])
        if correlation != 42 or error != 35:
            fail(f"ApiVersions v99 answered with correlation {correlation}, error {error}")
    log("malformed frames: every one refused, the broker serves on")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--port", type=int, default=19092)
    ap.add_argument("--records", type=int, default=10000)
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="logsim-real-")
    cluster = Cluster(os.path.abspath(args.binary), args.port, data_dir)
    n = args.records
    try:
        cluster.start()
        log(f"cluster up at {cluster.bootstrap}, data in {data_dir}")
        acked = []
        for client, produce in [
            ("kcat", lambda c: produce_kcat(cluster.bootstrap, c, 0, n)),
            ("confluent", lambda c: produce_confluent(cluster.bootstrap, c, 0, n, False)),
            ("confluent_idempotent",
             lambda c: produce_confluent(cluster.bootstrap, c, 0, n, True)),
            ("kafka_python", lambda c: produce_kafka_python(cluster.bootstrap, c, 0, n)),
        ]:
            started = time.time()
            got = produce(client)
            if len(got) != n:
                fail(f"{client}: {len(got)} of {n} writes acknowledged with every broker up")
            log(f"{client}: {n} acks=all writes acknowledged in {time.time() - started:.1f} s")
            acked += got
        consume_all_and_check(cluster.bootstrap, acked, "all up:")

        group_resumes_at_its_commit(cluster.bootstrap, acked)
        malformed_frames(args.port)
        cluster.wait_ready()

        survivors = transactions(cluster)
        more = n // 5
        after = produce_confluent(survivors, "after_kill", 0, more, True)
        after += produce_kafka_python(survivors, "after_kill_kp", 0, more)
        if len(after) < more:
            fail(f"only {len(after)} writes acknowledged with one broker of three down")
        log(f"one broker down: {len(after)} more writes acknowledged")
        acked += after
        consume_all_and_check(survivors, acked, "one down:")

        code, out = cluster.stop()
        log(f"clean stop: exit {code}")
        cluster.start()
        consume_all_and_check(cluster.bootstrap, acked, "restarted:")
        code, _ = cluster.stop()
        if code != 0:
            fail(f"the restarted cluster stopped with exit {code}")
        print(f"PASS: {len(acked)} acknowledged values survived, from 3 clients and 4 producers",
              flush=True)
    finally:
        cluster.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
