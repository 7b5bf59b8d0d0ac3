//! Deletes on a real engine: each applied once, remembered across restarts,
//! and a hinted write queued before a delete loses what it covers.

use super::*;
use sundial_cluster::read_wire::delete_to_pb;
use sundial_lineproto::{parse_lines, ParseOptions};
use sundial_query::TagFilter;

const SHARD: u64 = 3;
const HOUR: i64 = 3_600_000_000_000;

fn open_store(dir: &Path) -> Arc<Store> {
    let store = Arc::new(Store::open(dir.join("shards"), Default::default()).unwrap());
    if !store.has_shard(SHARD) {
        store.create_shard(SHARD, "db").unwrap();
    }
    store
}

fn write(store: &Store, lp: &str) {
    let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(SHARD, &pts).unwrap();
}

/// Points of `m` per series key, over all time.
fn counts(store: &Store, m: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for key in store
        .series_keys(SHARD, m, &sundial_engine::TagPredicate::All)
        .unwrap()
    {
        let n: usize = store
            .scan(
                SHARD,
                m,
                &sundial_engine::TagPredicate::All,
                None,
                i64::MIN,
                i64::MAX,
            )
            .unwrap()
            .filter_map(|r| r.ok())
            .filter(|s| s.key == key)
            .map(|s| s.fields.iter().map(|f| f.column.len()).max().unwrap_or(0))
            .sum();
        out.push((key, n));
    }
    out
}

fn msg(id: u64, issued_ms: i64, req: DeleteRequest) -> pb::DeleteSeriesRequest {
    let at = DeleteId {
        id,
        shard_id: SHARD,
        issued_ms,
    };
    delete_to_pb(at, "db", &req)
}

fn req(ms: &[&str], tags: TagFilter, min: i64, max: i64) -> DeleteRequest {
    DeleteRequest {
        measurements: ms.iter().map(|m| NameMatch::Name(m.to_string())).collect(),
        tags,
        min,
        max,
        drop_measurement: false,
    }
}

const DATA: &str =
    "cpu,host=a v=1 0\ncpu,host=a v=2 3600000000000\ncpu,host=b v=3 0\nmem,host=a v=4 0\n";

#[test]
fn a_delete_is_applied_once_and_takes_only_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, DATA);
    let d = Deletes::open(store.clone(), dir.path(), Duration::from_secs(3600)).unwrap();
    // host=a of cpu before the hour: one point of one series.
    let m = msg(
        9,
        now_ms(),
        req(
            &["cpu"],
            TagFilter::Eq("host".into(), "a".into()),
            i64::MIN,
            HOUR - 1,
        ),
    );
    assert_eq!(d.apply(&m).unwrap(), 1);
    assert_eq!(
        counts(&store, "cpu"),
        [("cpu,host=a".to_string(), 1), ("cpu,host=b".to_string(), 1)]
    );
    assert_eq!(counts(&store, "mem"), [("mem,host=a".to_string(), 1)]);
    // The same delete again (a retry, a pending copy in meta) takes nothing
    // written since.
    write(&store, "cpu,host=a v=9 1\n");
    assert_eq!(d.apply(&m).unwrap(), 0);
    assert!(d.is_applied(9, SHARD));
    assert_eq!(counts(&store, "cpu")[0], ("cpu,host=a".to_string(), 2));
}

#[test]
fn a_ranged_delete_that_empties_a_series_drops_it_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, DATA);
    store.flush_shard(SHARD).unwrap();
    let d = Deletes::unjournaled(store.clone());
    // From files, then from the memtable.
    d.apply(&msg(
        1,
        now_ms(),
        req(&["cpu"], TagFilter::Eq("host".into(), "b".into()), -5, 5),
    ))
    .unwrap();
    assert_eq!(
        store
            .series_keys(SHARD, "cpu", &sundial_engine::TagPredicate::All)
            .unwrap(),
        ["cpu,host=a"]
    );
    write(&store, "mem,host=z v=1 10\n");
    d.apply(&msg(
        2,
        now_ms(),
        req(&[], TagFilter::Eq("host".into(), "z".into()), 0, 20),
    ))
    .unwrap();
    assert_eq!(
        store
            .series_keys(SHARD, "mem", &sundial_engine::TagPredicate::All)
            .unwrap(),
        ["mem,host=a"]
    );
    // Part of a series' time: it stays.
    d.apply(&msg(3, now_ms(), req(&["cpu"], TagFilter::All, 0, 0)))
        .unwrap();
    assert_eq!(counts(&store, "cpu"), [("cpu,host=a".to_string(), 1)]);
}

#[test]
fn hinted_points_queued_before_a_delete_stay_deleted_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let issued = now_ms();
    {
        let store = open_store(dir.path());
        write(&store, DATA);
        let d = Deletes::open(store.clone(), dir.path(), Duration::from_secs(3600)).unwrap();
        let mut drop_cpu = req(&["cpu"], TagFilter::All, i64::MIN, i64::MAX);
        drop_cpu.measurements = vec![NameMatch::Regex("^c.u$".into())];
        d.apply(&msg(5, issued, drop_cpu)).unwrap();
        store.close().unwrap();
    }
    // A torn record at the end (a crash mid-append) is ignored.
    {
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
    }
    let store = open_store(dir.path());
    let d = Deletes::open(store.clone(), dir.path(), Duration::from_secs(3600)).unwrap();
    assert!(d.is_applied(5, SHARD));
    let batch = parse_lines(
        b"cpu,host=a v=7 5\nmem,host=a v=8 5\n",
        &ParseOptions::default(),
    );
    let pts: Vec<_> = batch.iter().collect();
    let measurements = |accepted: i64, shard: u64| -> Vec<String> {
        d.write_guarded(shard, accepted, pts.clone(), |kept| {
            kept.iter().map(|p| p.measurement.to_string()).collect()
        })
    };
    // Accepted before the delete: its cpu point goes.
    assert_eq!(measurements(issued - 10, SHARD), ["mem"]);
    // Accepted after it, or at an unknown time: all stay.
    assert_eq!(measurements(issued + 1, SHARD), ["cpu", "mem"]);
    assert_eq!(measurements(0, SHARD), ["cpu", "mem"]);
    // Another shard: untouched.
    assert_eq!(measurements(issued - 10, SHARD + 1), ["cpu", "mem"]);
    // Past the journal's age the delete is forgotten.
    drop(d);
    let d = Deletes::open(store, dir.path(), Duration::ZERO).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(!d.is_applied(5, SHARD));
}

#[test]
fn a_bad_request_is_refused_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, DATA);
    let d = Deletes::unjournaled(store.clone());
    let mut r = req(
        &[],
        TagFilter::Regex("host".into(), "(".into()),
        i64::MIN,
        i64::MAX,
    );
    let e = d.apply(&msg(1, 0, r.clone())).unwrap_err();
    assert_eq!(e.class(), sundial_common::ErrorClass::BadRequest);
    r.tags = TagFilter::All;
    r.measurements = vec![NameMatch::Regex("[".into())];
    assert!(d.apply(&msg(2, 0, r)).is_err());
    assert_eq!(counts(&store, "cpu").len(), 2);
}

#[test]
fn a_condition_on_a_field_is_refused_with_influxdbs_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, DATA);
    let d = Deletes::unjournaled(store.clone());
    let r = req(
        &["cpu"],
        TagFilter::NotEq("v".into(), "1".into()),
        i64::MIN,
        i64::MAX,
    );
    let e = d.apply(&msg(1, 0, r)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fields not supported in WHERE clause during deletion"
    );
    assert_eq!(counts(&store, "cpu").len(), 2);
}

#[test]
fn expired_deletes_are_pruned_and_the_file_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    write(&store, DATA);
    let d = Deletes::open(store.clone(), dir.path(), Duration::from_secs(3600)).unwrap();
    let old = now_ms() - 2 * 3600 * 1000;
    for id in 1..=100 {
        d.apply(&msg(id, old, req(&["nothing"], TagFilter::All, 0, 0)))
            .unwrap();
    }
    d.apply(&msg(500, now_ms(), req(&["nothing"], TagFilter::All, 0, 0)))
        .unwrap();
    let before = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
    d.prune().unwrap();
    let after = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
    assert!(after < before / 10, "{before} → {after}");
    assert!(!d.is_applied(1, SHARD));
    assert!(d.is_applied(500, SHARD));
    drop(d);
    let d = Deletes::open(store, dir.path(), Duration::from_secs(3600)).unwrap();
    assert!(d.is_applied(500, SHARD) && !d.is_applied(100, SHARD));
}

#[test]
fn a_delete_waits_for_a_write_between_its_filter_and_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let d = Deletes::unjournaled(store.clone());
    let batch = parse_lines(b"cpu,host=a v=1 5\n", &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    let accepted = now_ms() - 1000;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            d.write_guarded(SHARD, accepted, pts, |kept| {
                // The filter found nothing to take; the delete, issued now,
                // must wait until these points are in.
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                store.write_to_shard(SHARD, kept).unwrap();
            })
        });
        rx.recv().unwrap();
        d.apply(&msg(
            7,
            now_ms(),
            req(&["cpu"], TagFilter::All, i64::MIN, i64::MAX),
        ))
        .unwrap();
    });
    assert!(counts(&store, "cpu").is_empty());
}
