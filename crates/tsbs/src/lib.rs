//! TSBS "devops cpu-only" data, generated deterministically: measurement `cpu`,
//! 10 tags (`hostname region datacenter rack os arch team service
//! service_version service_environment`) and 10 float fields (`usage_user` …
//! `usage_guest_nice`, full-precision random walks in 0..100), one point per
//! host every 10 s.

use std::fmt::Write as _;

pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];

/// Deterministic xorshift64 so every run sees the same data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Debug, Clone)]
struct Host {
    tags: String,
    values: [f64; 10],
}

/// Emits cpu-only lines host by host, interval by interval.
#[derive(Debug, Clone)]
pub struct CpuOnly {
    hosts: Vec<Host>,
    rng: Rng,
    next_host: usize,
    time: i64,
    interval: i64,
    /// Values rounded to this many decimals (`None`: full precision).
    decimals: Option<i32>,
}

impl CpuOnly {
    /// `hosts` series starting at `start_ns`, 10 s apart.
    pub fn new(hosts: usize, start_ns: i64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let hosts = (0..hosts.max(1))
            .map(|h| {
                let r = REGIONS[h % REGIONS.len()];
                let tags = format!(
                    "hostname=host_{h},region={r},datacenter={r}{dc},rack={rack},os={os},arch={arch},team={team},service={svc},service_version={sv},service_environment={env}",
                    dc = ["a", "b", "c"][h % 3],
                    rack = rng.below(100),
                    os = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"][h % 3],
                    arch = ["x64", "x86"][h % 2],
                    team = ["SF", "NYC", "LON", "CHI"][h % 4],
                    svc = rng.below(20),
                    sv = rng.below(2),
                    env = ["production", "staging", "test"][h % 3],
                );
                Host {
                    tags,
                    values: [0.0; 10].map(|_: f64| rng.unit() * 100.0),
                }
            })
            .collect();
        CpuOnly {
            hosts,
            rng,
            next_host: 0,
            time: start_ns,
            interval: 10_000_000_000,
            decimals: None,
        }
    }

    /// Round every value to `d` decimals (sensors that report 23.45): a random walk
    /// whose steps are whole hundredths when `d` is 2.
    pub fn with_decimals(mut self, d: u32) -> Self {
        self.decimals = Some(d.min(15) as i32);
        self
    }

    /// Appends `lines` lines (each ending in `\n`) to `out`.
    pub fn write_lines(&mut self, lines: usize, out: &mut String) {
        for _ in 0..lines {
            let h = &mut self.hosts[self.next_host];
            out.push_str("cpu,");
            out.push_str(&h.tags);
            out.push(' ');
            for (j, f) in FIELDS.iter().enumerate() {
                let v = &mut h.values[j];
                *v = (*v + (self.rng.unit() - 0.5) * 2.0).clamp(0.0, 100.0);
                if let Some(d) = self.decimals {
                    let p = 10f64.powi(d);
                    *v = (*v * p).round() / p;
                }
                if j > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{f}={v}");
            }
            let _ = writeln!(out, " {}", self.time);
            self.next_host += 1;
            if self.next_host == self.hosts.len() {
                self.next_host = 0;
                self.time += self.interval;
            }
        }
    }
}

/// A body of `lines` cpu-only lines over `hosts` hosts.
pub fn cpu_only_body(lines: usize, hosts: usize) -> String {
    let mut g = CpuOnly::new(hosts, 1_451_606_400_000_000_000, 0x9E37_79B9_7F4A_7C15);
    let mut out = String::with_capacity(lines * 500);
    g.write_lines(lines, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_of_a_line() {
        let body = cpu_only_body(3, 2);
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 3);
        let (key, rest) = lines[0].split_once(' ').unwrap();
        assert!(key.starts_with("cpu,hostname=host_0,region=us-east-1,"));
        assert_eq!(key.split(',').count(), 11);
        let (fields, ts) = rest.split_once(' ').unwrap();
        assert_eq!(fields.split(',').count(), 10);
        assert_eq!(ts, "1451606400000000000");
        // The third line is host 0 again, one interval later.
        assert!(lines[2].ends_with(" 1451606410000000000"));
        assert_eq!(cpu_only_body(3, 2), body, "deterministic");
    }
}
