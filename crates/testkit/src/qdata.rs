//! The data set of the InfluxQL differential test (`qdiff`): deterministic line
//! protocol written identically to InfluxDB and to Sundial, batch by batch in
//! order (later batches overwrite points of earlier ones).
//!
//! Times are fixed around [`T0`] = 2026-11-01T00:00:00Z (the end of US daylight
//! saving time; Europe's ended on 2026-10-25), except the measurement `recent`,
//! whose points are within the six hours before the minute the test started, so
//! that `now()`-relative queries have data.
//!
//! | where | measurement | tags | fields | times |
//! |---|---|---|---|---|
//! | diff | `cpu` | host (server01–04), region (server04 has none) | usage_user, usage_system, usage_idle: float | every 60 s from T0−12h to T0+36h; server02 misses T0+2h..T0+3h and its first hour arrives in reverse order; server03 every 2 min with a hole T0+30m..T0+50m; server04 stops at T0+12h; server01's usage_user at T0+10m..T0+20m is overwritten by a later batch |
//! | diff | `mem` | host (server01–03) | used, free, total, delta (may be negative): integer; used_percent: float; cached: integer written by a separate later batch on every 5th point | every 10 s from T0 to T0+4h |
//! | diff | `disk` | host (server01–02), path (`/`, `/data`) | used: float (integer in `mem`), inodes: integer | irregular, 5 s..10 min apart, T0..T0+24h |
//! | diff | `events` | host (server01–03), kind (login/error/deploy; missing on some) | message: string, ok: boolean, code: integer, latency: float (each missing on some points) | irregular with nanosecond parts, T0..T0+6h |
//! | diff | `weather` | city (paris, chicago, oslo: none on 2026-10-28) | temp: float (negative too), humidity: integer | every 5 min, 2026-10-20..2026-11-05 |
//! | diff | `net` | host (server01–02) | bytes_recv: integer counter (resets), packets: float counter | every 30 s, T0..T0+3h |
//! | diff | `h2o level` | location (`coyote creek`, `santa monica`), `the=key` (some points) | `water level`: float, `flow,rate`: integer | every 6 min, T0..T0+12h |
//! | diff | `sys.load` | host | load1: float | every 5 min, T0..T0+5h |
//! | diff | `recent` | host (server01–02) | value: float, hits: integer | every 5 min, the last 6 h before the test's minute |
//! | diff.archive | `cpu` | host (server01–02) | usage_user: float | hourly, T0−12h..T0+36h |
//! | diff2 | `cpu`, `mem` | host (server05–06), region ap-south | usage_user: float; used: integer | every 5 min, T0..T0+6h |

/// 2026-11-01T00:00:00Z in nanoseconds.
pub const T0: i64 = 1_793_491_200 * SEC;
/// One second in nanoseconds.
pub const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// Statements that create the databases and retention policies, run on both
/// servers before the writes.
pub const SETUP: &str = "CREATE DATABASE diff; CREATE RETENTION POLICY archive ON diff DURATION INF REPLICATION 1; CREATE RETENTION POLICY hourly ON diff DURATION INF REPLICATION 1 SHARD DURATION 1h; CREATE DATABASE diff2";

/// One `/write` request.
#[derive(Debug, Clone)]
pub struct Batch {
    pub db: &'static str,
    /// The retention policy (`rp=`), `None` for the default one.
    pub rp: Option<&'static str>,
    /// Line protocol with nanosecond times.
    pub lines: String,
}

impl Batch {
    fn new(db: &'static str, rp: Option<&'static str>) -> Batch {
        Batch {
            db,
            rp,
            lines: String::new(),
        }
    }

    fn line(&mut self, l: &str) {
        self.lines.push_str(l);
        self.lines.push('\n');
    }

    /// The query string of its `/write` request.
    pub fn write_query(&self) -> String {
        match self.rp {
            Some(rp) => format!("db={}&rp={rp}&precision=ns", self.db),
            None => format!("db={}&precision=ns", self.db),
        }
    }

    /// Number of lines (points).
    pub fn points(&self) -> usize {
        self.lines.lines().count()
    }
}

/// splitmix64: a small deterministic generator.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi].
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// A float with at most two decimals, written the way line protocol takes it.
fn f2(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    let s = format!("{r}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// The whole data set; `now_ns` is the test's start time (used by `recent` only,
/// rounded down to the minute).
pub fn dataset(now_ns: i64) -> Vec<Batch> {
    let mut out = Vec::new();
    cpu(&mut out);
    mem(&mut out);
    disk(&mut out);
    events(&mut out);
    weather(&mut out);
    net(&mut out);
    odd_names(&mut out);
    recent(&mut out, now_ns);
    archive_and_diff2(&mut out);
    hourly(&mut out);
    out
}

fn cpu_values(rng: &mut Rng, i: i64, phase: f64) -> (String, String, String) {
    let user = 30.0 + 20.0 * ((i as f64) / 90.0 + phase).sin() + 10.0 * rng.unit();
    let system = 2.0 + 8.0 * rng.unit();
    let user = (user * 100.0).round() / 100.0;
    let system = (system * 100.0).round() / 100.0;
    let idle = 100.0 - user - system;
    (f2(user), f2(system), f2(idle))
}

fn cpu(out: &mut Vec<Batch>) {
    let mut rng = Rng(1);
    let hosts: [(&str, Option<&str>, f64); 4] = [
        ("server01", Some("us-east"), 0.0),
        ("server02", Some("us-east"), 1.0),
        ("server03", Some("us-west"), 2.0),
        ("server04", None, 3.0),
    ];
    let mut main = Batch::new("diff", None);
    let mut reversed = Vec::new();
    for (host, region, phase) in hosts {
        let series = match region {
            Some(r) => format!("cpu,host={host},region={r}"),
            None => format!("cpu,host={host}"),
        };
        let start = T0 - 12 * HOUR;
        for i in 0..48 * 60 {
            let t = start + i * MIN;
            let (u, s, idle) = cpu_values(&mut rng, i, phase);
            let line = format!("{series} usage_user={u},usage_system={s},usage_idle={idle} {t}");
            let keep = match host {
                "server02" => !(T0 + 2 * HOUR..T0 + 3 * HOUR).contains(&t),
                "server03" => {
                    (t - start) % (2 * MIN) == 0 && !(T0 + 30 * MIN..T0 + 50 * MIN).contains(&t)
                }
                "server04" => t < T0 + 12 * HOUR,
                _ => true,
            };
            if !keep {
                continue;
            }
            if host == "server02" && t < start + HOUR {
                reversed.push(line);
            } else {
                main.line(&line);
            }
        }
    }
    out.push(main);
    // Out of order: the first hour of server02 after everything else, newest first.
    let mut b = Batch::new("diff", None);
    for l in reversed.iter().rev() {
        b.line(l);
    }
    out.push(b);
    // Overwrites: one field of existing points (the others stay), and whole points.
    let mut b = Batch::new("diff", None);
    for k in 10..=20 {
        let t = T0 + k * MIN;
        b.line(&format!(
            "cpu,host=server01,region=us-east usage_user={} {t}",
            f2(90.0 + k as f64 / 4.0)
        ));
    }
    for k in 0..3 {
        let t = T0 + (60 + 2 * k) * MIN;
        b.line(&format!(
            "cpu,host=server03,region=us-west usage_user=1.5,usage_system=0.5,usage_idle=98 {t}"
        ));
    }
    out.push(b);
}

fn mem(out: &mut Vec<Batch>) {
    let mut rng = Rng(2);
    let total: i64 = 16 * 1024 * 1024 * 1024;
    let mut main = Batch::new("diff", None);
    let mut cached = Batch::new("diff", None);
    for (h, host) in ["server01", "server02", "server03"].iter().enumerate() {
        let mut used: i64 = 4_000_000_000 + h as i64 * 1_500_000_000;
        let mut t = T0;
        let mut i = 0;
        while t <= T0 + 4 * HOUR {
            let delta = rng.range(-50_000_000, 60_000_000);
            used += delta;
            let free = total - used;
            let pct = f2(used as f64 * 100.0 / total as f64);
            main.line(&format!(
                "mem,host={host} used={used}i,free={free}i,total={total}i,delta={delta}i,used_percent={pct} {t}"
            ));
            if i % 5 == 0 {
                cached.line(&format!(
                    "mem,host={host} cached={}i {t}",
                    rng.range(100_000_000, 900_000_000)
                ));
            }
            i += 1;
            t += 10 * SEC;
        }
    }
    out.push(main);
    out.push(cached);
}

fn disk(out: &mut Vec<Batch>) {
    let mut rng = Rng(3);
    let mut b = Batch::new("diff", None);
    for host in ["server01", "server02"] {
        for path in ["/", "/data"] {
            let mut t = T0 + rng.range(0, 59) * SEC;
            let mut used = 100.0 + 50.0 * rng.unit();
            let mut inodes: i64 = 10_000;
            while t < T0 + DAY {
                used += 2.0 * rng.unit() - 0.8;
                inodes += rng.range(-20, 40);
                b.line(&format!(
                    "disk,host={host},path={path} used={},inodes={inodes}i {t}",
                    f2(used)
                ));
                t += rng.range(5, 600) * SEC;
            }
        }
    }
    out.push(b);
}

fn events(out: &mut Vec<Batch>) {
    let mut rng = Rng(4);
    let messages = [
        "user logged in",
        "user logged out",
        "disk full",
        "deploy v1.2.3",
        r#"said \"hello\""#,
        r"path C:\\temp",
        "comma, and = sign",
        "naïve café ☕",
        "",
    ];
    let kinds = ["login", "error", "deploy"];
    let mut lines = Vec::new();
    for host in ["server01", "server02", "server03"] {
        let mut t = T0 + rng.range(0, 999_999_999);
        while t < T0 + 6 * HOUR {
            let mut series = format!("events,host={host}");
            if rng.range(0, 9) > 0 {
                series.push_str(&format!(",kind={}", kinds[rng.range(0, 2) as usize]));
            }
            let mut fields = Vec::new();
            if rng.range(0, 9) > 0 {
                let m = messages[rng.range(0, messages.len() as i64 - 1) as usize];
                fields.push(format!("message=\"{m}\""));
            }
            if rng.range(0, 4) > 0 {
                fields.push(format!(
                    "ok={}",
                    if rng.range(0, 2) > 0 { "true" } else { "false" }
                ));
            }
            if rng.range(0, 4) > 0 {
                fields.push(format!(
                    "code={}i",
                    [200, 201, 404, 500, 503][rng.range(0, 4) as usize]
                ));
            }
            if fields.is_empty() || rng.range(0, 3) > 0 {
                fields.push(format!(
                    "latency={}",
                    f2(0.5 + 300.0 * rng.unit() * rng.unit())
                ));
            }
            lines.push(format!("{series} {} {t}", fields.join(",")));
            t += rng.range(1, 240) * SEC + rng.range(0, 999_999_999);
        }
    }
    // Shuffled: the irregular series arrive out of order.
    for i in (1..lines.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        lines.swap(i, j);
    }
    let mut b = Batch::new("diff", None);
    for l in &lines {
        b.line(l);
    }
    out.push(b);
}

fn weather(out: &mut Vec<Batch>) {
    let mut rng = Rng(5);
    let start = T0 - 12 * DAY; // 2026-10-20
    let end = T0 + 4 * DAY; // 2026-11-05
    let mut b = Batch::new("diff", None);
    for (city, base) in [("paris", 8.0), ("chicago", 3.0), ("oslo", 1.0)] {
        let mut t = start;
        let mut i = 0;
        while t < end {
            // Oslo's station was down on 2026-10-28.
            if city == "oslo" && (T0 - 4 * DAY..T0 - 3 * DAY).contains(&t) {
                t += 5 * MIN;
                i += 1;
                continue;
            }
            let day = 2.0 * std::f64::consts::PI * ((t - start) % DAY) as f64 / DAY as f64;
            let temp = base - 6.0 * day.cos() - (i as f64) / 800.0 + 2.0 * rng.unit();
            let hum = rng.range(40, 99);
            b.line(&format!(
                "weather,city={city} temp={},humidity={hum}i {t}",
                f2(temp)
            ));
            t += 5 * MIN;
            i += 1;
        }
    }
    out.push(b);
}

fn net(out: &mut Vec<Batch>) {
    let mut rng = Rng(6);
    let mut b = Batch::new("diff", None);
    for host in ["server01", "server02"] {
        let mut bytes: i64 = 1_000_000;
        let mut packets: f64 = 500.0;
        let mut t = T0;
        let mut i = 0;
        while t <= T0 + 3 * HOUR {
            // The counters restart now and then (a reboot).
            if i == 150 || (host == "server02" && i == 290) {
                bytes = rng.range(0, 1000);
                packets = 0.0;
            } else {
                bytes += rng.range(0, 200_000);
                packets += (rng.unit() * 1000.0).round() / 4.0;
            }
            b.line(&format!(
                "net,host={host} bytes_recv={bytes}i,packets={} {t}",
                f2(packets)
            ));
            t += 30 * SEC;
            i += 1;
        }
    }
    out.push(b);
}

fn odd_names(out: &mut Vec<Batch>) {
    let mut rng = Rng(7);
    let mut b = Batch::new("diff", None);
    for loc in [r"coyote\ creek", r"santa\ monica"] {
        let mut t = T0;
        let mut i = 0;
        while t <= T0 + 12 * HOUR {
            let key = if i % 3 == 0 { r",the\=key=a\,b" } else { "" };
            b.line(&format!(
                r"h2o\ level,location={loc}{key} water\ level={},flow\,rate={}i {t}",
                f2(2.0 + 6.0 * rng.unit()),
                rng.range(-5, 40)
            ));
            t += 6 * MIN;
            i += 1;
        }
    }
    let mut t = T0;
    while t <= T0 + 5 * HOUR {
        b.line(&format!(
            "sys.load,host=server01 load1={} {t}",
            f2(4.0 * rng.unit())
        ));
        t += 5 * MIN;
    }
    out.push(b);
}

fn recent(out: &mut Vec<Batch>, now_ns: i64) {
    let mut rng = Rng(8);
    let now = now_ns - now_ns.rem_euclid(MIN);
    let mut b = Batch::new("diff", None);
    for host in ["server01", "server02"] {
        for k in 1..=72 {
            let t = now - k * 5 * MIN;
            b.line(&format!(
                "recent,host={host} value={},hits={}i {t}",
                f2(100.0 * rng.unit()),
                rng.range(0, 50)
            ));
        }
    }
    out.push(b);
}

fn archive_and_diff2(out: &mut Vec<Batch>) {
    let mut rng = Rng(9);
    let mut b = Batch::new("diff", Some("archive"));
    for host in ["server01", "server02"] {
        let mut t = T0 - 12 * HOUR;
        while t < T0 + 36 * HOUR {
            b.line(&format!(
                "cpu,host={host},region=us-east usage_user={} {t}",
                f2(20.0 + 30.0 * rng.unit())
            ));
            t += HOUR;
        }
    }
    out.push(b);
    let mut b = Batch::new("diff2", None);
    for host in ["server05", "server06"] {
        let mut t = T0;
        while t <= T0 + 6 * HOUR {
            b.line(&format!(
                "cpu,host={host},region=ap-south usage_user={} {t}",
                f2(5.0 + 80.0 * rng.unit())
            ));
            b.line(&format!(
                "mem,host={host} used={}i {t}",
                rng.range(1_000_000, 9_000_000)
            ));
            t += 5 * MIN;
        }
    }
    out.push(b);
}

/// Probes in `hourly` (one-hour shard groups): twelve shard groups, so raw
/// statements are answered over many time slices. No two points share a
/// time: InfluxDB orders rows of one time across series by chance.
fn hourly(out: &mut Vec<Batch>) {
    let mut rng = Rng(10);
    let mut b = Batch::new("diff", Some("hourly"));
    for (i, probe) in (0..).zip(["p1", "p2", "p3"]) {
        let mut t = T0 + (7 + i) * MIN;
        while t < T0 + 12 * HOUR {
            b.line(&format!(
                "temp,probe={probe} value={},n={}i {t}",
                f2(-5.0 + 30.0 * rng.unit()),
                rng.range(0, 100)
            ));
            t += 10 * MIN;
        }
    }
    out.push(b);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_of_the_intended_size() {
        let now = T0 + 30 * DAY + 12_345;
        let a = dataset(now);
        let b = dataset(now);
        let text = |v: &[Batch]| v.iter().map(|b| b.lines.clone()).collect::<String>();
        assert_eq!(text(&a), text(&b));
        let n: usize = a.iter().map(Batch::points).sum();
        assert!((15_000..=50_000).contains(&n), "{n} points");
    }
}
