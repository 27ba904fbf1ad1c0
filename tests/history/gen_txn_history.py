#!/usr/bin/env python3
"""A large client history of transactions, for timing `logsim check-history`:
`python3 tests/history/gen_txn_history.py 100000 > txn100k.jsonl`. Six producers commit (80%) or
abort transactions of one to four sends over eight partitions; a read_committed reader polls
every partition now and then and reads exactly the committed records. The history is valid."""
import json, random, sys
random.seed(7)
P = 8
target = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
logs = {p: [] for p in range(P)}  # (offset, value, committed)
ops = []
value = 0
procs = 6
while len(ops) < target:
    proc = random.randrange(procs)
    n = random.randint(1, 4)
    sends = []
    for _ in range(n):
        p = random.randrange(P)
        off = len(logs[p]) + sum(1 for q, _, _ in sends if q == p)
        sends.append((p, off, value)); value += 1
    commit = random.random() > 0.2
    ops.append({"process": proc, "type": "invoke", "f": "txn", "value": [["send", f"t/{p}", v] for p, _, v in sends]})
    for p, off, v in sends:
        logs[p].append((off, v, commit))
    ops.append({"process": proc, "type": "ok" if commit else "fail", "f": "txn",
                "value": [["send", f"t/{p}", [off, v]] for p, off, v in sends]})
    # a reader polls every 20 transactions
    if len(ops) % 40 == 0:
        pos = getattr(sys.modules[__name__], "pos", {p: 0 for p in range(P)})
        msgs = {}
        for p in range(P):
            got = [[o, v] for o, v, c in logs[p][pos[p]:] if c]
            if got:
                msgs[f"t/{p}"] = got
            pos[p] = len(logs[p])
        sys.modules[__name__].pos = pos
        ops.append({"process": 100, "type": "invoke", "f": "poll"})
        ops.append({"process": 100, "type": "ok", "f": "poll", "msgs": msgs})
for o in ops:
    print(json.dumps(o, separators=(",", ":")))
