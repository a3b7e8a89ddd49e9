//! Fault injection for the reliability tests: `GIT_PARALLEL_FAULT=<point>` makes the process
//! kill itself with SIGKILL when it reaches that point, as a crash or `kill -9` would.

/// Die here if the environment asks for a fault at `point`.
pub fn point(point: &str) {
    if std::env::var("GIT_PARALLEL_FAULT").is_ok_and(|p| p == point) {
        // SAFETY: raising a signal on ourselves.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}
