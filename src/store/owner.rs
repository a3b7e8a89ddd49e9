//! One live orchestrator per run. The owner is a ref, `refs/parallel/owners/<run>`, pointing to
//! a small blob naming the process (pid, its start time, host) and its last heartbeat. It is
//! claimed with compare-and-swap, so of two `resume`s started at the same moment exactly one
//! wins, whatever the timing; a heartbeat thread keeps it fresh; a dead owner (its process gone
//! on this host, or no heartbeat for a while from another host) is taken over, again by CAS.

use super::{layout, objects};
use crate::error::Error;
use crate::repo::Repo;
use anyhow::Result;
use gix::ObjectId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a live owner says so.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// An owner on another host is dead after this long without a heartbeat.
const STALE: Duration = Duration::from_secs(60);

/// What the owner blob says.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
    pub host: String,
    pub beat: f64,
}

impl Owner {
    fn me() -> Owner {
        let pid = std::process::id();
        Owner { pid, start: process_start(pid).unwrap_or(0), host: super::runs::host_name(), beat: super::runs::now() }
    }

    fn encode(&self) -> String {
        format!("pid {}\nstart {}\nhost {}\nheartbeat {:.3}\n", self.pid, self.start, self.host, self.beat)
    }

    fn decode(text: &str) -> Option<Owner> {
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()));
        Some(Owner {
            pid: field("pid ")?.parse().ok()?,
            start: field("start ")?.parse().ok()?,
            host: field("host ")?,
            beat: field("heartbeat ")?.parse().ok()?,
        })
    }

    /// Whether this owner still runs: on this host, its process (same pid and start time, so
    /// a recycled pid does not count); elsewhere, a recent heartbeat.
    pub fn alive(&self) -> bool {
        if self.host == super::runs::host_name() {
            return crate::proc::pid_alive(self.pid) && process_start(self.pid).unwrap_or(0) == self.start;
        }
        super::runs::now() - self.beat < STALE.as_secs_f64()
    }
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(19)?.parse().ok()
}

/// The recorded owner of a run, if any.
pub fn read(repo: &Repo, run: &str) -> Result<Option<(ObjectId, Owner)>> {
    let Some(id) = objects::read_ref(repo, &layout::owner_ref(run))? else { return Ok(None) };
    let text = repo.gix.find_object(id).map(|o| String::from_utf8_lossy(&o.data).into_owned()).unwrap_or_default();
    Ok(Owner::decode(&text).map(|o| (id, o)))
}

/// A claim held by this process; released when dropped.
pub struct Claim {
    repo: Repo,
    run: String,
    tip: Arc<Mutex<ObjectId>>,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl Claim {
    /// Whether another process took the run over (it judged us dead).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

/// Claim run `run` for this process, or refuse naming the live owner.
pub fn claim(repo: &Repo, run: &str) -> Result<Claim> {
    let name = layout::owner_ref(run);
    for _ in 0..20 {
        let current = objects::read_ref(repo, &name)?;
        if let Some((_, owner)) = read(repo, run)? {
            if owner.alive() && !(owner.pid == std::process::id() && owner.host == super::runs::host_name()) {
                return Err(Error::usage(format!(
                    "run {run} is being orchestrated by pid {} on {}",
                    owner.pid, owner.host
                ))
                .with_hint(format!(
                    "follow it with `git parallel status {run} --watch`, or stop it with `git parallel cancel {run}`"
                ))
                .into());
            }
        }
        let mine = objects::write_blob(repo, Owner::me().encode().as_bytes())?;
        match objects::cas_update(repo, &name, mine, current, "git parallel: claim run") {
            Ok(()) => return Ok(start_heartbeat(repo, run, mine)),
            Err(e) if e.downcast_ref::<objects::Lost>().is_some() => continue,
            Err(e) => return Err(e),
        }
    }
    anyhow::bail!("run {run}: could not claim it (its owner ref keeps changing)")
}

fn start_heartbeat(repo: &Repo, run: &str, tip: ObjectId) -> Claim {
    let tip = Arc::new(Mutex::new(tip));
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicBool::new(false));
    let beat = {
        let (repo, run, tip, stop, lost) = (repo.clone(), run.to_string(), tip.clone(), stop.clone(), lost.clone());
        std::thread::spawn(move || {
            let step = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(step);
                waited += step;
                if waited < HEARTBEAT {
                    continue;
                }
                waited = Duration::ZERO;
                let mut t = tip.lock().unwrap_or_else(|e| e.into_inner());
                let Ok(new) = objects::write_blob(&repo, Owner::me().encode().as_bytes()) else { continue };
                match objects::cas_update(&repo, &layout::owner_ref(&run), new, Some(*t), "git parallel: heartbeat") {
                    Ok(()) => *t = new,
                    Err(e) if e.downcast_ref::<objects::Lost>().is_some() => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(_) => {}
                }
            }
        })
    };
    Claim { repo: repo.clone(), run: run.to_string(), tip, stop, lost, beat: Some(beat) }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.beat.take() {
            let _ = h.join();
        }
        if !self.lost() {
            let tip = *self.tip.lock().unwrap_or_else(|e| e.into_inner());
            let _ = objects::delete_ref(&self.repo, &layout::owner_ref(&self.run), tip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_blob_round_trips() {
        let o = Owner { pid: 42, start: 7, host: "h".into(), beat: 1.5 };
        assert_eq!(Owner::decode(&o.encode()), Some(o));
        assert_eq!(Owner::decode("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = Owner::me();
        assert!(me.alive());
        assert!(!Owner { start: me.start + 1, ..me.clone() }.alive());
        let far = Owner { host: "elsewhere".into(), beat: super::super::runs::now() - 3600.0, ..me };
        assert!(!far.alive());
    }
}
