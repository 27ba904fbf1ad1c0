//! The checker's tests: each anomaly planted in a small history, and its clean twin.

use super::*;
use crate::record::history::Value;

/// The default reading: producers that send each value once.
const STRICT: ProducerPromises = ProducerPromises {
    idempotent: false,
    retries: false,
};

/// A history from compact lines: `p send k v` (invoke), `p ok k v o [record-key]`,
/// `p fail k v`, `p info k v [o]`, `p poll k o:v o:v ...` (and `fpoll`, `ipoll`: a poll that
/// completed fail or info), `p assign k,k...`, `p subscribe k,k...`, `p commit k o`.
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
                op.value = Some(Value::One(w[3].parse().unwrap()));
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
            "poll" | "fpoll" | "ipoll" => {
                let kind = match w[1] {
                    "poll" => OpType::Ok,
                    "fpoll" => OpType::Fail,
                    _ => OpType::Info,
                };
                let mut op = Op::new(process, kind, OpFn::Poll);
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
            "assign" | "subscribe" => {
                let f = if w[1] == "assign" { OpFn::Assign } else { OpFn::Subscribe };
                let mut op = Op::new(process, OpType::Ok, f);
                op.keys = Some(w[2].split(',').map(str::to_owned).collect());
                op
            }
            other => panic!("{other}"),
        };
        ops.push(op);
    }
    ops
}

fn analyse(text: &str) -> Analysis {
    analyse_with(text, STRICT)
}

fn analyse_with(text: &str, promises: ProducerPromises) -> Analysis {
    check(&history(text), None, Gates::default(), promises)
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

const SENDS: &str = "
    0 ok t/0 10 0
    0 ok t/0 11 1
    0 ok t/0 12 2
    0 ok t/0 13 3
";

#[test]
fn a_restarted_consumer_is_a_new_process_that_resumes_at_the_commit_and_counts_its_rereads() {
    // As the workload writes it: each incarnation a new process, in the consumer's own group.
    let reread = format!(
        "{SENDS}
        9 gassign c t/0
        9 poll t/0 0:10 1:11 2:12
        9 gcommit c t/0 1
        19 gassign c t/0
        19 poll t/0 1:11 2:12 3:13"
    );
    let a = analyse(&reread);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.rereads, 2);
    let skipped = format!(
        "{SENDS}
        9 gassign c t/0
        9 poll t/0 0:10
        9 gcommit c t/0 1
        19 gassign c t/0
        19 poll t/0 2:12 3:13"
    );
    let k = kinds(&skipped);
    assert!(k.contains(&"poll-skip") && k.contains(&"group-skip"), "{k:?}");
}

#[test]
fn subscribe_is_accepted_and_read_as_an_assign_of_its_keys() {
    let (ops, _) =
        parse("{\"process\":5,\"type\":\"ok\",\"f\":\"subscribe\",\"keys\":[\"t/0\"]}").unwrap();
    assert_eq!((ops[0].f, ops[0].keys.as_deref()), (OpFn::Subscribe, Some(&["t/0".to_owned()][..])));
    let kept = format!(
        "{SENDS}
        5 subscribe t/0
        5 poll t/0 0:10 1:11 2:12
        5 subscribe t/0,t/1
        5 poll t/0 0:10"
    );
    assert_eq!(kinds(&kept), vec!["nonmonotonic-poll", "unseen"]);
    let dropped = kept.replace("5 subscribe t/0,t/1", "5 subscribe t/1\n 5 subscribe t/0");
    assert_eq!(kinds(&dropped), vec!["unseen"], "13 is never read in either");
}

#[test]
fn an_assign_keeps_the_position_of_a_key_it_keeps_and_forgets_a_key_it_drops() {
    // Jepsen: an assign replaces the keys; a key kept keeps the position, even a key only read.
    let kept = format!(
        "{SENDS}
        5 poll t/0 0:10 1:11 2:12 3:13
        5 assign t/0,t/1
        5 poll t/0 0:10"
    );
    assert_eq!(kinds(&kept), vec!["nonmonotonic-poll"]);
    // Dropped, then taken up again: it starts afresh, anywhere (no commit).
    let dropped = format!(
        "{SENDS}
        5 assign t/0
        5 poll t/0 0:10 1:11 2:12 3:13
        5 assign t/1
        5 assign t/0,t/1
        5 poll t/0 0:10"
    );
    let a = analyse(&dropped);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.rereads, 1);
}

#[test]
fn a_key_taken_up_again_resumes_at_the_processs_own_commit() {
    let resumed = format!(
        "{SENDS}
        9 assign t/0
        9 poll t/0 0:10 1:11
        9 commit t/0 2
        9 assign t/1
        9 assign t/0
        9 poll t/0 2:12 3:13"
    );
    assert!(kinds(&resumed).is_empty(), "{:?}", kinds(&resumed));
    let skipped = resumed.replace("9 poll t/0 2:12 3:13", "9 poll t/0 3:13");
    assert_eq!(kinds(&skipped), vec!["lost-write", "poll-skip"]);
}

#[test]
fn a_group_rebalance_restarts_every_key_from_the_groups_commit() {
    // Kafka's eager rebalance revokes every partition, a kept one too: reading again from the
    // commit is no going back.
    let rebalanced = format!(
        "{SENDS}
        5 gassign g t/0
        5 poll t/0 0:10 1:11 2:12
        5 gcommit g t/0 1
        5 gassign g t/0
        5 poll t/0 1:11 2:12 3:13"
    );
    let a = analyse(&rebalanced);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.rereads, 2);
    let skipped = rebalanced.replace("5 poll t/0 1:11 2:12 3:13", "5 poll t/0 3:13");
    assert!(kinds(&skipped).contains(&"poll-skip"), "{:?}", kinds(&skipped));
}

#[test]
fn values_read_only_by_failed_or_timed_out_polls_count_as_read() {
    // 11 is read only by a poll that failed; another consumer reads past it.
    let failed = format!("{SENDS} 5 poll t/0 0:10\n 5 fpoll t/0 1:11\n 6 poll t/0 2:12 3:13");
    let a = analyse(&failed);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.polled, 4);
    let never = failed.replace("5 fpoll t/0 1:11", "");
    assert_eq!(kinds(&never), vec!["lost-write"]);
    let timed_out = format!("{SENDS} 5 poll t/0 0:10 1:11 2:12\n 5 ipoll t/0 3:13");
    assert!(analyse(&timed_out).valid, "{:?}", kinds(&timed_out));
    let unseen = timed_out.replace("5 ipoll t/0 3:13", "");
    assert_eq!(kinds(&unseen), vec!["unseen"]);
}

#[test]
fn an_inconsistent_offset_or_a_duplicate_seen_only_by_a_timed_out_poll_is_caught() {
    assert!(kinds("0 ok t/0 10 0\n 5 ipoll t/0 0:10").is_empty());
    assert!(
        kinds("0 ok t/0 10 0\n 5 ipoll t/0 0:99").contains(&"inconsistent-offsets"),
        "{:?}",
        kinds("0 ok t/0 10 0\n 5 ipoll t/0 0:99")
    );
    assert_eq!(kinds("0 ok t/0 10 0\n 5 fpoll t/0 0:10 1:10"), vec!["duplicate"]);
}

#[test]
fn a_failed_poll_is_checked_for_order_but_does_not_move_the_consumer() {
    let back = format!("{SENDS} 5 poll t/0 0:10 1:11\n 5 fpoll t/0 0:10\n 5 poll t/0 2:12 3:13");
    assert_eq!(kinds(&back), vec!["nonmonotonic-poll"]);
    let within = format!("{SENDS} 5 poll t/0 0:10 1:11\n 5 fpoll t/0 2:12 1:11\n 5 poll t/0 2:12 3:13");
    assert_eq!(kinds(&within), vec!["nonmonotonic-poll"]);
    // The failed poll read 2 and 3; the next one starts again where the consumer was, at 2.
    let again = format!("{SENDS} 5 poll t/0 0:10 1:11\n 5 fpoll t/0 2:12 3:13\n 5 poll t/0 2:12 3:13");
    let a = analyse(&again);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.rereads, 2);
}

#[test]
fn an_info_send_proven_by_a_read_is_placed_at_the_offset_it_carries() {
    // 20's send timed out but said offset 1, where 11 was acknowledged; a read proves 20 written.
    let proven = "
        0 ok t/0 10 0
        0 ok t/0 11 1
        1 info t/0 20 1
        5 poll t/0 0:10 1:11 2:20
    ";
    let a = analyse(proven);
    assert_eq!(a.anomalies["inconsistent-offsets"][0].values, vec![11, 20]);
    assert_eq!(a.anomalies["inconsistent-offsets"][0].lines, vec![2, 3]);
    assert_eq!(a.anomalies["duplicate"][0].offsets, vec![1, 2]);
    // Unproven, the offset it carries is not believed.
    let unproven = proven.replace(" 2:20", "");
    assert!(kinds(&unproven).is_empty(), "{:?}", kinds(&unproven));
}

#[test]
fn an_info_send_proven_by_a_read_is_a_write_its_group_must_not_skip() {
    // 20's send timed out; consumer 6 read it at 1, so it was written. The group commits 2
    // having read only 0, and its next member starts there: 20 is skipped.
    let proven = "
        0 ok t/0 10 0
        1 info t/0 20
        0 ok t/0 11 2
        6 poll t/0 0:10 1:20 2:11
        5 gassign g t/0
        5 poll t/0 0:10
        5 gcommit g t/0 2
        7 gassign g t/0
        7 poll t/0 2:11
    ";
    let a = analyse(proven);
    assert_eq!(a.anomalies["group-skip"][0].values, vec![20], "{:?}", a.anomalies);
    let unproven = proven.replace(" 1:20", "");
    assert!(!kinds(&unproven).contains(&"group-skip"), "{:?}", kinds(&unproven));
}

/// Producer 0 has two sends in flight; the later-invoked one is acknowledged first, and lower.
const OVERTAKEN: &str = "
    0 send t/0 10
    0 send t/0 11
    0 ok t/0 11 0
    0 ok t/0 10 1
    5 poll t/0 0:11 1:10
";

/// Value 10 written twice.
const TWICE: &str = "
    0 send t/0 10
    0 ok t/0 10 0
    5 poll t/0 0:10 1:10
";

const IDEMPOTENT: ProducerPromises = ProducerPromises {
    idempotent: true,
    retries: true,
};

const RETRYING: ProducerPromises = ProducerPromises {
    idempotent: false,
    retries: true,
};

#[test]
fn sends_completing_out_of_order_but_written_in_invoke_order_are_clean() {
    let in_order = OVERTAKEN.replace("11 0", "11 1").replace("10 1", "10 0").replace("0:11 1:10", "0:10 1:11");
    for promises in [STRICT, IDEMPOTENT, RETRYING] {
        let a = analyse_with(&in_order, promises);
        assert!(a.valid && a.allowed.is_empty(), "{promises:?}: {a:?}");
    }
}

#[test]
fn given_idempotent_producers_a_duplicate_and_a_send_written_out_of_invoke_order_are_caught() {
    let a = analyse_with(OVERTAKEN, IDEMPOTENT);
    let case = &a.anomalies["nonmonotonic-send"][0];
    assert_eq!((case.values.clone(), case.offsets.clone()), (vec![10, 11], vec![1, 0]));
    assert_eq!(case.lines, vec![4, 3]);
    let a = analyse_with(TWICE, IDEMPOTENT);
    assert_eq!(a.anomalies.keys().collect::<Vec<_>>(), vec![&"duplicate"]);
}

#[test]
fn given_retrying_producers_without_idempotence_duplicates_and_reorders_are_counted_not_reported() {
    let a = analyse_with(OVERTAKEN, RETRYING);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.allowed, BTreeMap::from([("nonmonotonic-send", 1)]));
    let a = analyse_with(TWICE, RETRYING);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.allowed, BTreeMap::from([("duplicate", 1)]));
    // A record key's values read out of order: a retried batch landed after a later one.
    let keyed = "
        0 ok t/0 10 1 user-1
        0 ok t/0 11 0 user-1
        9 poll t/0 0:11 1:10
    ";
    let a = analyse_with(keyed, RETRYING);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!(a.allowed, BTreeMap::from([("key-order", 1), ("nonmonotonic-send", 1)]));
    assert!(kinds(keyed).contains(&"key-order"));
}

#[test]
fn given_producers_that_never_retry_a_duplicate_and_a_reorder_are_still_caught() {
    assert_eq!(kinds(TWICE), vec!["duplicate"]);
    assert_eq!(kinds(OVERTAKEN), vec!["nonmonotonic-send"]);
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
    let a = analyse(&handover);
    assert!(a.valid, "{:?}", a.anomalies);
    // What member 5 read past its commit, member 6 reads again: the group read it twice.
    assert_eq!(a.rereads, 1, "a group's re-reads are counted across its members");
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
    let a = analyse(&other);
    assert_eq!(a.anomalies["group-skip"].len(), 1, "{:?}", a.anomalies);
}

fn kinds(text: &str) -> Vec<&'static str> {
    let a = analyse(text);
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
    let a = analyse(CLEAN);
    assert!(a.valid, "{:?}", a.anomalies);
    assert_eq!((a.acked, a.polled), (2, 3));
}

#[test]
fn a_lost_write_and_an_unseen_one_are_told_apart() {
    let a = analyse("0 ok t/0 10 0\n0 ok t/0 11 1\n0 ok t/0 12 2\n5 poll t/0 1:11");
    assert_eq!(a.anomalies["lost-write"][0].values, vec![10]);
    assert_eq!(a.anomalies["unseen"][0].values, vec![12]);
    assert_eq!(a.anomalies["unseen"][0].lines, vec![3]);
}

#[test]
fn acks_1_losses_reused_offsets_and_rewound_sends_are_allowed() {
    let mut ops = history("0 ok t/0 10 0\n0 ok t/0 11 1\n5 poll t/0 1:11");
    ops[0].acks = Some(1);
    assert!(check(&ops, None, Gates::default(), STRICT).valid);
    let mut ops = history("0 ok t/0 10 5\n0 ok t/0 11 5\n5 poll t/0 5:11");
    ops[0].acks = Some(1);
    ops[1].acks = Some(1);
    assert!(
        check(&ops, None, Gates::default(), STRICT).valid,
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
    let a = analyse("0 fail t/0 10");
    assert!(!a.valid && a.anomalies.is_empty());
    assert_eq!(a.gates.len(), 2);
}

#[test]
fn a_line_that_is_not_valid_is_named() {
    let e = parse("{\"process\":1,\"type\":\"invoke\",\"f\":\"poll\"}\n\n{\"process\":1,\"type\":\"ok\"}\n").unwrap_err();
    assert!(e.starts_with("line 3: missing field `f`"), "{e}");
    let subscribe = "{\"process\":1,\"type\":\"ok\",\"f\":\"subscribe\",\"keys\":[\"t/0\"]}";
    let e = parse(&format!("{subscribe}\n{{\"process\":1,\"type\":\"ok\",\"f\":\"seek\"}}")).unwrap_err();
    assert!(e.starts_with("line 2: unknown variant `seek`"), "{e}");
    let e = parse(&format!("{subscribe}\n{{\"process\":1,\"type\":\"ok\",\"f\":\"subscribe\",\"keys\":\"t/0\"}}")).unwrap_err();
    assert!(e.starts_with("line 2: invalid type"), "{e}");
}

#[test]
fn a_hundred_thousand_operations_check_clean() {
    let mut ops = Vec::new();
    for v in 0..50_000u64 {
        let key = format!("t/{}", v % 8);
        let offset = (v / 8) as i64;
        let mut send = Op::new(v % 16, OpType::Ok, OpFn::Send);
        send.key = Some(key.as_str().into());
        send.value = Some(Value::One(v));
        send.offset = Some(offset);
        ops.push(send);
        let mut poll = Op::new(100, OpType::Ok, OpFn::Poll);
        poll.msgs = Some(Box::new(BTreeMap::from([(key, vec![(offset, v)])])));
        ops.push(poll);
    }
    let a = check(&ops, None, Gates::default(), STRICT);
    assert!(a.valid, "{:?}", a.anomalies.keys().collect::<Vec<_>>());
    assert_eq!((a.ops, a.acked, a.polled), (100_000, 50_000, 50_000));
}
