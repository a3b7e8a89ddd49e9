//! Resource governor: how many agents the machine can take now.
//!
//! Capacity = min(requested, cpus - reserved, available memory / memory per task), and no new
//! start while disk space is low. Re-sampled every few seconds while a run goes on: above the
//! CPU limit no new task starts; under 1 GiB of available memory only one runs at a time; low
//! disk pauses new starts. Running agents are never stopped by the governor, and when nothing
//! runs one task may always start, so a busy machine slows a run down but never stalls it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sysinfo::{Disks, MemoryRefreshKind, System};

const GIB: u64 = 1 << 30;

/// Limits from settings and flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--concurrency` or `parallel.concurrency`; None means `max_concurrency`.
    pub requested: Option<usize>,
    pub max_concurrency: usize,
    /// CPUs kept free for the rest of the machine (`parallel.reserveCpus`, default 1).
    pub reserve_cpus: usize,
    /// CPUs one agent needs (`parallel.cpuPerTask`, default 1; agents waiting on an API need less).
    pub cpu_per_task: f64,
    pub memory_per_task: u64,
    pub min_disk: u64,
    pub cpu_limit: f32,
}

/// One reading of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cpus: usize,
    /// Global CPU use in percent (0 when not yet measured).
    pub cpu_usage: f32,
    pub available_memory: u64,
    pub free_disk: u64,
}

/// Why capacity is what it is, for the narration.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub workers: usize,
    pub reason: String,
}

/// The static capacity: how many agents may run at most.
pub fn capacity(limits: &Limits, s: &Sample) -> Capacity {
    let requested = limits.requested.unwrap_or(limits.max_concurrency).max(1);
    let free_cpus = s.cpus.saturating_sub(limits.reserve_cpus) as f64;
    let by_cpu = ((free_cpus / limits.cpu_per_task.max(0.01)).floor() as usize).max(1);
    let by_mem = ((s.available_memory / limits.memory_per_task.max(1)) as usize).max(1);
    let mut workers = requested;
    let mut reason =
        if limits.requested.is_some() { "requested".to_string() } else { format!("default cap {requested}") };
    if by_cpu < workers {
        workers = by_cpu;
        reason = format!("{} CPUs, {} kept free, {} per task", s.cpus, limits.reserve_cpus, limits.cpu_per_task);
    }
    if by_mem < workers {
        workers = by_mem;
        reason = format!(
            "{:.1} GiB available / {:.1} GiB per task",
            s.available_memory as f64 / GIB as f64,
            limits.memory_per_task as f64 / GIB as f64
        );
    }
    Capacity { workers, reason }
}

/// Whether one more task may start now, with `running` already running.
pub fn may_start(limits: &Limits, s: &Sample, running: usize, workers: usize) -> Result<(), String> {
    if running == 0 {
        return Ok(());
    }
    if running >= workers {
        return Err(format!("{running} of {workers} workers busy"));
    }
    if s.cpu_usage > limits.cpu_limit {
        return Err(format!("CPU at {:.0}% (limit {:.0}%)", s.cpu_usage, limits.cpu_limit));
    }
    if s.available_memory < GIB {
        return Err(format!("only {} MiB memory available: one task at a time", s.available_memory >> 20));
    }
    if s.free_disk < limits.min_disk {
        return Err(format!("only {} MiB disk free (minimum {} MiB)", s.free_disk >> 20, limits.min_disk >> 20));
    }
    Ok(())
}

/// Samples the machine, at most once per `interval`.
pub struct Governor {
    sys: System,
    disks: Disks,
    path: PathBuf,
    last: Option<Instant>,
    interval: Duration,
    sample: Sample,
}

impl Governor {
    /// Watch the machine, with disk space measured where `path` lives.
    pub fn new(path: &Path) -> Self {
        let mut g = Governor {
            sys: System::new(),
            disks: Disks::new(),
            path: path.to_path_buf(),
            last: None,
            interval: Duration::from_secs(3),
            sample: Sample { cpus: 1, cpu_usage: 0.0, available_memory: 0, free_disk: u64::MAX },
        };
        g.refresh(true);
        g
    }

    /// The latest reading, refreshed when older than the interval.
    pub fn sample(&mut self) -> Sample {
        self.refresh(false);
        self.sample
    }

    fn refresh(&mut self, force: bool) {
        if !force && self.last.is_some_and(|t| t.elapsed() < self.interval) {
            return;
        }
        self.sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.sys.refresh_cpu_usage();
        self.disks.refresh(true);
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // The first CPU reading has nothing to compare with; treat it as idle.
        let cpu_usage = if self.last.is_some() { self.sys.global_cpu_usage() } else { 0.0 };
        let path = self.path.canonicalize().unwrap_or_else(|_| self.path.clone());
        let free_disk = self
            .disks
            .list()
            .iter()
            .filter(|d| path.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
            .map(|d| d.available_space())
            .unwrap_or(u64::MAX);
        self.sample = Sample { cpus, cpu_usage, available_memory: self.sys.available_memory(), free_disk };
        self.last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requested: Option<usize>) -> Limits {
        Limits {
            requested,
            max_concurrency: 4,
            reserve_cpus: 1,
            cpu_per_task: 1.0,
            memory_per_task: 2 * GIB,
            min_disk: GIB,
            cpu_limit: 90.0,
        }
    }

    #[test]
    fn capacity_is_the_tightest_limit() {
        let big = Sample { cpus: 16, cpu_usage: 0.0, available_memory: 64 * GIB, free_disk: 100 * GIB };
        assert_eq!(capacity(&limits(None), &big).workers, 4);
        assert_eq!(capacity(&limits(Some(8)), &big).workers, 8);
        let small = Sample { cpus: 2, ..big };
        assert_eq!(capacity(&limits(Some(8)), &small).workers, 1);
        let low_mem = Sample { available_memory: 5 * GIB, ..big };
        assert_eq!(capacity(&limits(Some(8)), &low_mem).workers, 2);
        let light = Limits { cpu_per_task: 0.25, ..limits(Some(8)) };
        assert_eq!(capacity(&light, &small).workers, 4);
    }

    #[test]
    fn pressure_stops_new_starts_not_the_first() {
        let l = limits(Some(4));
        let busy = Sample { cpus: 8, cpu_usage: 95.0, available_memory: 64 * GIB, free_disk: 100 * GIB };
        assert!(may_start(&l, &busy, 0, 4).is_ok());
        assert!(may_start(&l, &busy, 1, 4).is_err());
        let low_mem = Sample { cpu_usage: 10.0, available_memory: GIB / 2, ..busy };
        assert!(may_start(&l, &low_mem, 1, 4).is_err());
        let low_disk = Sample { cpu_usage: 10.0, free_disk: GIB / 2, ..busy };
        assert!(may_start(&l, &low_disk, 1, 4).is_err());
        let fine = Sample { cpu_usage: 10.0, ..busy };
        assert!(may_start(&l, &fine, 3, 4).is_ok());
        assert!(may_start(&l, &fine, 4, 4).is_err());
    }
}
