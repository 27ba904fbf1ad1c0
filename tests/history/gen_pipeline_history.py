#!/usr/bin/env python3
"""A large client history of a consume-transform-produce pipeline, for timing `logsim
check-history`: `python3 tests/history/gen_pipeline_history.py 100000 > pipe100k.jsonl`. A producer
writes to eight input partitions; two workers of group `pipe`, each assigned four, read what is
new on their partitions in transactions that write one output per input to `out` and commit the
offsets past what they read; a fifth abort and are read again by the next. A read_committed reader
polls the output now and then. The history is valid: every input is processed exactly once."""
import json, random, sys
random.seed(11)
P = 8
target = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
inputs = {p: [] for p in range(P)}
outputs = {p: [] for p in range(P)}  # (value, committed)
committed = {p: 0 for p in range(P)}
read_at = {p: 0 for p in range(P)}
ops = [{"process": w, "type": "ok", "f": "assign", "group": "pipe",
        "keys": [f"in/{p}" for p in range(w - 1, P, 2)]} for w in (1, 2)]
value, out_value = 0, 1 << 50
draining = []  # after the target: each worker commits what is left, then the reader reads it
while len(ops) < target or draining != [1, 2, 3]:
    if len(ops) >= target:
        draining.append(len(draining) + 1)
    for _ in range(4 if not draining else 0):
        p = random.randrange(P)
        ops.append({"process": 0, "type": "invoke", "f": "send", "key": f"in/{p}", "value": value})
        ops.append({"process": 0, "type": "ok", "f": "send", "key": f"in/{p}", "value": value,
                    "offset": len(inputs[p])})
        inputs[p].append(value)
        value += 1
    w = draining[-1] if draining else random.choice((1, 2))
    mine = range(w - 1, P, 2)
    polled = {f"in/{p}": [[o, inputs[p][o]] for o in range(committed[p], len(inputs[p]))]
              for p in mine if committed[p] < len(inputs[p])}
    commit = bool(draining) or random.random() > 0.2
    if not polled:
        polled = None
    sends, done = [], []
    for key, read in (polled or {}).items():
        p = int(key.split("/")[1])
        for _ in read:
            sends.append(["send", f"out/{p}", out_value])
            done.append(["send", f"out/{p}", [len(outputs[p]), out_value]])
            outputs[p].append((out_value, commit))
            out_value += 1
    if polled:
        offsets = {key: read[-1][0] + 1 for key, read in polled.items()}
        op = {"process": w, "f": "txn", "group": "pipe", "offsets": offsets}
        ops.append({**op, "type": "invoke", "value": [["poll"]] + sends})
        ops.append({**op, "type": "ok" if commit else "fail", "value": [["poll", polled]] + done})
        if commit:
            for key, o in offsets.items():
                committed[int(key.split("/")[1])] = o
    if len(ops) % 50 < 4 or len(draining) == 3:
        msgs = {}
        for p in range(P):
            got = [[o, v] for o, (v, c) in enumerate(outputs[p]) if o >= read_at[p] and c]
            if got:
                msgs[f"out/{p}"] = got
            read_at[p] = len(outputs[p])
        ops.append({"process": 3, "type": "invoke", "f": "poll"})
        ops.append({"process": 3, "type": "ok", "f": "poll", "msgs": msgs})
for o in ops:
    print(json.dumps(o, separators=(",", ":")))
