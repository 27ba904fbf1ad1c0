//! The checker's tests: each anomaly planted in a small history, and its clean twin.

use super::*;

/// A history from compact lines: `p send k v` (invoke), `p ok k v o [record-key]`,
/// `p fail k v`, `p info k v`, `p poll k o:v o:v ...`, `p assign k`, `p commit k o`.
fn history(text: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let process: u64 = w[0].parse().unwrap();
        let key = Some(w[2].to_owned());
        let op = match w[1] {
            "send" | "ok" | "fail" | "info" => {
                let kind = match w[1] {
                    "send" => OpType::Invoke,
                    "ok" => OpType::Ok,
                    "fail" => OpType::Fail,
                    _ => OpType::Info,
                };
                let mut op = Op::new(process, kind, OpFn::Send);
                op.key = key.map(Into::into);
                op.value = Some(w[3].parse().unwrap());
                op.offset = w.get(4).map(|o| o.parse().unwrap());
                op.record_key = w.get(5).map(|k| Box::from(*k));
                op
            }
            "commit" => {
                let mut op = Op::new(process, OpType::Ok, OpFn::Commit);
                op.offsets = Some(Box::new(BTreeMap::from([(w[2].to_owned(), w[3].parse().unwrap())])));
                op
            }
            // A group member's: `p gassign group k`, `p gcommit group k o`.
            "gassign" => {
                let mut op = Op::new(process, OpType::Ok, OpFn::Assign);
                op.group = Some(w[2].into());
                op.keys = Some(vec![w[3].to_owned()].into());
                op
            }
            "gcommit" | "gcommit-send" | "gcommit-fail" => {
                let kind = match w[1] {
                    "gcommit" => OpType::Ok,
                    "gcommit-send" => OpType::Invoke,
                    _ => OpType::Fail,
                };
                let mut op = Op::new(process, kind, OpFn::Commit);
                op.group = Some(w[2].into());
                op.offsets = Some(Box::new(BTreeMap::from([(w[3].to_owned(), w[4].parse().unwrap())])));
                op
            }
            "poll" => {
                let mut op = Op::new(process, OpType::Ok, OpFn::Poll);
                let msgs = w[3..]
                    .iter()
                    .map(|m| {
                        let (o, v) = m.split_once(':').unwrap();
                        (o.parse().unwrap(), v.parse().unwrap())
                    })
                    .collect();
                op.msgs = Some(Box::new(BTreeMap::from([(w[2].to_owned(), msgs)])));
                op
            }
            "assign" => {
                let mut op = Op::new(process, OpType::Ok, OpFn::Assign);
                op.keys = Some(vec![w[2].to_owned()].into());
                op
            }
            other => panic!("{other}"),
        };
        ops.push(op);
    }
    ops
}

#[test]
fn a_consumer_reading_one_keys_values_out_of_send_order_is_caught() {
    let sends = "
        0 ok t/0 10 0 user-1
        0 ok t/0 11 1 user-2
        0 ok t/0 12 2 user-1
    ";
    assert!(kinds(&format!("{sends} 9 poll t/0 0:10 1:11 2:12")).is_empty());
    // The partition shows 12 before 10: offsets rise, but user-1's order is broken.
    let swapped = "
        0 ok t/0 10 2 user-1
        0 ok t/0 11 1 user-2
        0 ok t/0 12 0 user-1
        9 poll t/0 0:12 1:11 2:10
    ";
    assert!(
        kinds(swapped).contains(&"key-order"),
        "{:?}",
        kinds(swapped)
    );
}

#[test]
fn a_restart_resumes_at_the_commit_rereads_are_counted_and_a_skip_past_it_is_caught() {
    let sends = "
        0 ok t/0 10 0
        0 ok t/0 11 1
        0 ok t/0 12 2
        0 ok t/0 13 3
    ";
    let reread = format!(
        "{sends}
        9 assign t/0
        9 poll t/0 0:10 1:11 2:12
        9 commit t/0 1
        9 assign t/0
        9 poll t/0 1:11 2:12 3:13"
    );
    let a = check(&history(&reread), None, Gates::default());
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.rereads, 2);
    let skipped = format!(
        "{sends}
        9 assign t/0
        9 poll t/0 0:10
        9 commit t/0 1
        9 assign t/0
        9 poll t/0 2:12 3:13
        9 poll t/0 1:11"
    );
    assert!(
        kinds(&skipped).contains(&"poll-skip"),
        "{:?}",
        kinds(&skipped)
    );
}

const GROUP_SENDS: &str = "
    0 ok t/0 10 0
    0 ok t/0 11 1
    0 ok t/0 12 2
    0 ok t/0 13 3
    0 ok t/0 14 4
";

#[test]
fn a_group_handing_a_partition_over_at_its_commit_is_clean() {
    let handover = format!(
        "{GROUP_SENDS}
        5 gassign g t/0
        5 poll t/0 0:10 1:11 2:12
        5 gcommit g t/0 2
        6 gassign g t/0
        6 poll t/0 2:12 3:13 4:14
        6 gcommit g t/0 5"
    );
    let a = check(&history(&handover), None, Gates::default());
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.rereads, 0, "another member's reads are not re-reads");
}

#[test]
fn a_member_may_resume_from_a_commit_still_in_flight_but_not_from_one_that_failed() {
    // Seen in consumer-groups seeds 1440 and 18020: the member handing over had sent its
    // commit, the successor started from it, and the commit was acknowledged just after.
    let in_flight = format!(
        "{GROUP_SENDS}
        5 gassign g t/0
        5 poll t/0 0:10 1:11 2:12
        5 gcommit g t/0 2
        5 gcommit-send g t/0 3
        6 gassign g t/0
        6 poll t/0 3:13 4:14
        5 gcommit g t/0 3"
    );
    assert!(kinds(&in_flight).is_empty(), "{:?}", kinds(&in_flight));
    let failed = in_flight.replace(
        "5 gcommit-send g t/0 3\n",
        "5 gcommit-send g t/0 3\n 5 gcommit-fail g t/0 3\n",
    );
    assert_eq!(kinds(&failed), vec!["poll-skip"], "resumed past 2, the last commit made");
}

#[test]
fn a_commit_that_goes_back_and_a_record_the_group_skipped_are_caught() {
    // A stalled member commits its old position after its successor committed further.
    let backwards = format!(
        "{GROUP_SENDS}
        5 gassign g t/0
        5 poll t/0 0:10 1:11
        6 gassign g t/0
        6 poll t/0 0:10 1:11 2:12 3:13
        6 gcommit g t/0 4
        5 gcommit g t/0 2"
    );
    assert!(
        kinds(&backwards).contains(&"commit-backwards"),
        "{:?}",
        kinds(&backwards)
    );
    // Two commits in flight at once may be acknowledged in either order.
    let concurrent = format!(
        "{GROUP_SENDS}
        5 gassign g t/0
        5 poll t/0 0:10 1:11
        5 gcommit-send g t/0 2
        6 gassign g t/0
        6 poll t/0 0:10 1:11 2:12 3:13 4:14
        6 gcommit-send g t/0 5
        6 gcommit g t/0 5
        5 gcommit g t/0 2"
    );
    assert!(kinds(&concurrent).is_empty(), "{:?}", kinds(&concurrent));
    // Sent after the other was acknowledged, it is not concurrent.
    let after = concurrent.replace("5 gcommit-send g t/0 2\n", "")
        + "\n 5 gcommit-send g t/0 2\n 5 gcommit g t/0 2";
    assert!(
        kinds(&after).contains(&"commit-backwards"),
        "{:?}",
        kinds(&after)
    );
    // The successor starts past the commit: 12 is read by nobody in the group.
    let skipped = format!(
        "{GROUP_SENDS}
        5 gassign g t/0
        5 poll t/0 0:10 1:11
        5 gcommit g t/0 2
        6 gassign g t/0
        6 poll t/0 3:13 4:14"
    );
    let k = kinds(&skipped);
    assert!(
        k.contains(&"group-skip") && k.contains(&"poll-skip"),
        "{k:?}"
    );
    // Another group reading everything does not hide it, nor is it blamed.
    let other = format!(
        "{skipped}
 7 gassign h t/0
 7 poll t/0 0:10 1:11 2:12 3:13 4:14"
    );
    let a = check(&history(&other), None, Gates::default());
    assert_eq!(a.anomalies["group-skip"].len(), 1, "{:?}", a.anomalies);
}

fn kinds(text: &str) -> Vec<&'static str> {
    let a = check(&history(text), None, Gates::default());
    a.anomalies.keys().copied().collect()
}

const CLEAN: &str = "
    0 send t/0 10
    0 ok t/0 10 0
    0 send t/0 11
    0 ok t/0 11 1
    1 send t/0 20
    1 fail t/0 20
    1 send t/0 21
    1 info t/0 21
    5 assign t/0
    5 poll t/0 0:10
    5 poll t/0 1:11 2:21
";

#[test]
fn a_clean_history_is_valid() {
    let a = check(&history(CLEAN), None, Gates::default());
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!((a.acked, a.polled), (2, 3));
}

#[test]
fn a_lost_write_and_an_unseen_one_are_told_apart() {
    let a = check(
        &history("0 ok t/0 10 0\n0 ok t/0 11 1\n0 ok t/0 12 2\n5 poll t/0 1:11"),
        None,
        Gates::default(),
    );
    assert_eq!(a.anomalies["lost-write"][0].values, vec![10]);
    assert_eq!(a.anomalies["unseen"][0].values, vec![12]);
    assert_eq!(a.anomalies["unseen"][0].lines, vec![3]);
}

#[test]
fn acks_1_losses_reused_offsets_and_rewound_sends_are_allowed() {
    let mut ops = history("0 ok t/0 10 0\n0 ok t/0 11 1\n5 poll t/0 1:11");
    ops[0].acks = Some(1);
    assert!(check(&ops, None, Gates::default()).valid);
    let mut ops = history("0 ok t/0 10 5\n0 ok t/0 11 5\n5 poll t/0 5:11");
    ops[0].acks = Some(1);
    ops[1].acks = Some(1);
    assert!(
        check(&ops, None, Gates::default()).valid,
        "a lost acks=1 write's offset went to another"
    );
}

#[test]
fn duplicates_and_inconsistent_offsets_are_caught() {
    assert_eq!(
        kinds("0 ok t/0 10 0\n5 poll t/0 0:10 1:10"),
        vec!["duplicate"]
    );
    let k = kinds("0 ok t/0 10 0\n0 ok t/0 11 1\n5 poll t/0 0:11 1:10");
    assert!(
        k.contains(&"inconsistent-offsets") && k.contains(&"duplicate"),
        "{k:?}"
    );
}

#[test]
fn polls_that_go_back_or_skip_are_caught_between_and_within_polls() {
    let base = "0 ok t/0 10 0\n0 ok t/0 11 1\n0 ok t/0 12 2\n";
    assert_eq!(
        kinds(&format!("{base}5 poll t/0 0:10 1:11 2:12\n5 poll t/0 1:11")),
        vec!["nonmonotonic-poll"]
    );
    assert_eq!(
        kinds(&format!("{base}5 poll t/0 0:10 2:12\n6 poll t/0 1:11")),
        vec!["poll-skip"]
    );
    assert_eq!(
        kinds(&format!(
            "{base}5 poll t/0 0:10\n5 poll t/0 2:12\n6 poll t/0 1:11"
        )),
        vec!["poll-skip"]
    );
    assert!(
        kinds(&format!(
            "{base}5 poll t/0 0:10 1:11 2:12\n5 assign t/0\n5 poll t/0 0:10"
        ))
        .is_empty(),
        "an assign restarts the reads"
    );
}

#[test]
fn sends_that_go_back_and_reads_of_failed_sends_are_caught() {
    assert_eq!(
        kinds("0 ok t/0 10 5\n0 ok t/0 11 3\n5 poll t/0 3:11 4:99 5:10"),
        vec!["nonmonotonic-send"]
    );
    assert_eq!(
        kinds("0 ok t/0 10 0\n1 fail t/0 20\n5 poll t/0 0:10 1:20"),
        vec!["g1a"]
    );
}

#[test]
fn a_history_that_acked_or_read_nothing_fails_its_gates() {
    let a = check(&history("0 fail t/0 10"), None, Gates::default());
    assert!(!a.valid && a.anomalies.is_empty());
    assert_eq!(a.gates.len(), 2);
}

#[test]
fn a_line_that_is_not_valid_is_named() {
    let e = parse("{\"process\":1,\"type\":\"invoke\",\"f\":\"poll\"}\n\n{\"process\":1,\"type\":\"ok\"}\n").unwrap_err();
    assert!(e.starts_with("line 3: missing field `f`"), "{e}");
}

#[test]
fn a_hundred_thousand_operations_check_clean() {
    let mut ops = Vec::new();
    for v in 0..50_000u64 {
        let key = format!("t/{}", v % 8);
        let offset = (v / 8) as i64;
        let mut send = Op::new(v % 16, OpType::Ok, OpFn::Send);
        send.key = Some(key.as_str().into());
        send.value = Some(v);
        send.offset = Some(offset);
        ops.push(send);
        let mut poll = Op::new(100, OpType::Ok, OpFn::Poll);
        poll.msgs = Some(Box::new(BTreeMap::from([(key, vec![(offset, v)])])));
        ops.push(poll);
    }
    let a = check(&ops, None, Gates::default());
    assert!(a.valid, "{:?}", a.anomalies.keys().collect::<Vec<_>>());
    assert_eq!((a.ops, a.acked, a.polled), (100_000, 50_000, 50_000));
}
