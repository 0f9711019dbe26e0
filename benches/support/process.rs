//! Shared by the plain-harness benches: what a process used, from /proc (Linux).

/// CPU seconds (user + system) process `pid` used so far; `"self"` for this process, 0 when
/// it cannot be read.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3; utime and stime are fields 14 and 15, in clock
    // ticks of 1/100 s.
    let ticks = |index: usize| {
        fields
            .get(index - 3)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}
