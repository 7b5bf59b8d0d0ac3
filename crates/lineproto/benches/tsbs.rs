//! TSBS "devops cpu-only" line generator shared by the bench and the profile example.

use std::fmt::Write as _;

const FIELDS: [&str; 10] = [
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

/// Deterministic xorshift so the body is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// TSBS cpu-only: 10 tags, 10 float fields (random walks), 10 s apart per host.
pub fn tsbs_cpu_body(lines: usize, hosts: usize) -> String {
    let regions = [
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
    let oses = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
    let arches = ["x64", "x86"];
    let teams = ["SF", "NYC", "LON", "CHI"];
    let envs = ["production", "staging", "test"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut state: Vec<[f64; 10]> = (0..hosts)
        .map(|_| [0.0; 10].map(|_: f64| rng.unit() * 100.0))
        .collect();
    let mut out = String::with_capacity(lines * 320);
    let t0: i64 = 1_451_606_400_000_000_000;
    for i in 0..lines {
        let h = i % hosts;
        let r = regions[h % regions.len()];
        let _ = write!(
            out,
            "cpu,hostname=host_{h},region={r},datacenter={r}{dc},rack={rack},os={os},arch={arch},team={team},service={svc},service_version={sv},service_environment={env} ",
            dc = ["a", "b", "c"][h % 3],
            rack = rng.below(100),
            os = oses[h % oses.len()],
            arch = arches[h % arches.len()],
            team = teams[h % teams.len()],
            svc = rng.below(20),
            sv = rng.below(2),
            env = envs[h % envs.len()],
        );
        for (j, f) in FIELDS.iter().enumerate() {
            let v = &mut state[h][j];
            *v = (*v + (rng.unit() - 0.5) * 2.0).clamp(0.0, 100.0);
            let sep = if j == 0 { "" } else { "," };
            let _ = write!(out, "{sep}{f}={v}");
        }
        let _ = writeln!(out, " {}", t0 + (i / hosts) as i64 * 10_000_000_000);
    }
    out
}
