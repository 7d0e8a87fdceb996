//! Host CPU and memory use for the agent heartbeat, read from `/proc` (Linux). Elsewhere, or
//! when `/proc` cannot be read, both are 0.

/// CPU use is the busy share of all CPU time between two samples.
#[derive(Default)]
pub struct Usage {
    last: Option<(u64, u64)>,
}

impl Usage {
    /// (cpu %, memory %) since the previous sample (cpu is 0 on the first).
    pub fn sample(&mut self) -> (f64, f64) {
        let cpu = match (
            std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| cpu_times(&s)),
            self.last,
        ) {
            (Some(now), Some(before)) => {
                self.last = Some(now);
                busy_share(before, now)
            }
            (now, _) => {
                self.last = now;
                0.0
            }
        };
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| memory_used(&s))
            .unwrap_or(0.0);
        (cpu, mem)
    }
}

/// (total, idle) jiffies from the `cpu` line of /proc/stat.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((v.iter().sum(), idle))
}

fn busy_share((t0, i0): (u64, u64), (t1, i1): (u64, u64)) -> f64 {
    let total = t1.saturating_sub(t0);
    if total == 0 {
        return 0.0;
    }
    let busy = total.saturating_sub(i1.saturating_sub(i0));
    (busy as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
}

/// Used share of memory: (MemTotal − MemAvailable) / MemTotal.
fn memory_used(meminfo: &str) -> Option<f64> {
    let field = |name: &str| -> Option<f64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let total = field("MemTotal:")?;
    let avail = field("MemAvailable:")?;
    (total > 0.0).then(|| ((total - avail) * 100.0 / total).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_from_proc_text() {
        let a = cpu_times("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(a, (1000, 800));
        let b = (2000, 1300);
        assert!((busy_share(a, b) - 50.0).abs() < 1e-9);
        assert_eq!(busy_share(a, a), 0.0);
        let m = memory_used("MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:   250 kB\n");
        assert_eq!(m, Some(75.0));
        assert_eq!(memory_used("nothing"), None);
    }
}
