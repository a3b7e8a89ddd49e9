//! Man pages generated from the clap definitions: `git-parallel.1` and one per subcommand.
//! The committed pages in `man/` are checked against these by a test.

use clap::CommandFactory;

/// Every page as (file name, roff text).
pub fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let root = crate::cli::Cli::command().name("git-parallel");
    let mut out = Vec::new();
    let mut buf = Vec::new();
    clap_mangen::Man::new(root.clone()).render(&mut buf)?;
    out.push(("git-parallel.1".to_string(), buf));
    // Hidden subcommands (the cluster worker) are internal: no page.
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("git-parallel-{}", sub.get_name());
        let cmd = sub.clone().name(name.clone()).bin_name(format!("git parallel {}", sub.get_name()));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        out.push((format!("{name}.1"), buf));
    }
    Ok(out)
}
