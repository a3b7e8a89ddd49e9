//! The threat model's promises, tried as an attacker would: each test is an attack that must
//! fail. An agent is arbitrary code; with `--sandbox` nothing outside its task changes except
//! through the result git-parallel reads as data; in every mode our own git never runs what
//! the agent configured, and the agent never gets the user's terminal.

mod common;
use common::*;

fn need_bwrap() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is needed; .ci/run installs it");
}

fn runs(sandbox: bool) -> Vec<&'static str> {
    let mut v = vec!["run", "prompts", "--no-integrate"];
    if sandbox {
        v.push("--sandbox");
    }
    v
}

/// The agent arms, as its last steps, every place a git that discovers its repository from the
/// worktree would read configuration: the worktree's `commondir` pointing at a git directory
/// with `core.fsmonitor`, a `config.worktree`, a nested repository committed as a gitlink with
/// its own fsmonitor and a change inside it, attributes naming a filter. Our own git on the
/// result (and `clean` afterwards) must run none of it.
#[test]
fn our_git_never_runs_what_the_agent_configured() {
    need_bwrap();
    for sandbox in [false, true] {
        let r = TestRepo::new();
        r.use_fake_agent();
        let pwned = r.scratch("pwned");
        let p = pwned.display();
        r.prompt(
            "arm",
            "",
            &format!(
                "write a.txt a\n\
                 sh git init -q sub && git -C sub commit -q --allow-empty -m s && git add sub && git commit -qm sub\n\
                 write sub/dirty.txt d\n\
                 write .gitattributes * filter=evil\n\
                 sh E=$TMPDIR/evil; git init -q --bare $E && git -C $E config core.fsmonitor 'echo commondir >> {p}'\n\
                 sh git -C sub config core.fsmonitor 'echo nested >> {p}'\n\
                 sh printf '[core]\\n\\tfsmonitor = echo worktree-config >> {p}\\n[filter \"evil\"]\\n\\tclean = echo filter >> {p}\\n' > $(git rev-parse --git-dir)/config.worktree\n\
                 sh printf '%s\\n' $TMPDIR/evil > $(git rev-parse --git-dir)/commondir"
            ),
        );
        r.commit("prompts");
        let o = r.gp(&runs(sandbox));
        o.ok();
        assert_eq!(r.task_state("1", "arm")["status"], "succeeded", "sandbox {sandbox}: {}", o.stderr);
        // Its work was taken, as files: a.txt, the gitlink, the attributes.
        r.git(&["cat-file", "-e", "parallel/1/arm:a.txt"]);
        assert!(r.git(&["ls-tree", "parallel/1/arm", "sub"]).starts_with("160000 commit"));
        assert_eq!(r.git(&["cat-file", "-p", "parallel/1/arm:.gitattributes"]), "* filter=evil");
        r.gp(&["clean", "--all", "--force"]).ok();
        assert!(!pwned.exists(), "sandbox {sandbox}: ran {:?}", std::fs::read_to_string(&pwned));
    }
}

/// `--sparse` used to turn on `extensions.worktreeConfig` in the user's repository for good.
#[test]
fn sparse_worktrees_leave_the_users_configuration_alone() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("src/a/x.txt", "x\n");
    r.write("src/b/y.txt", "y\n");
    r.commit("tree");
    // Sparse cones are for full checkouts; overlay worktrees show the whole tree at no cost.
    r.git(&["config", "parallel.worktree", "checkout"]);
    let config = std::fs::read_to_string(r.path(".git/config")).unwrap();
    r.prompt(
        "a",
        "files: [src/a/x.txt]",
        "write src/a/x.txt changed\nsh if test -e src/b/y.txt; then echo full; else echo sparse; fi > shape.txt",
    );
    r.commit("prompts");
    r.gp(&["run", "prompts", "--sparse", "--no-integrate"]).ok();
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:src/a/x.txt"]), "changed");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:shape.txt"]), "sparse");
    // Files outside the cone were not taken for deleted.
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:src/b/y.txt"]), "y");
    assert_eq!(std::fs::read_to_string(r.path(".git/config")).unwrap(), config);
}

/// Everything the sandboxed agent can write of the task folder (its homes, its view of its
/// branch, its object store) is made a link to the user's config, and the agent crashes to get
/// a retry: nothing of ours writes through them, and a branch that is a link is refused.
#[test]
fn links_the_agent_leaves_are_never_followed() {
    need_bwrap();
    let r = TestRepo::new();
    r.use_fake_agent();
    let config = r.path(".git/config");
    let before = std::fs::read_to_string(&config).unwrap();
    let c = config.display();
    r.prompt(
        "linker",
        "",
        &format!(
            "write a.txt a\ncommit own\n\
             sh A=$(dirname $GIT_OBJECT_DIRECTORY); for f in $A/refs/linker $A/git/HEAD $A/git/index $A/state/tmp $A/objects; do rm -rf $f; ln -s {c} $f; done; true"
        ),
    );
    r.prompt(
        "crasher",
        "",
        &format!(
            "write b.txt b\nsh A=$(dirname $GIT_OBJECT_DIRECTORY); rm -rf $A/state; ln -s {} $A/state\ncrash",
            r.path(".git").display()
        ),
    );
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--sandbox", "--no-integrate", "--retries", "1"]);
    o.code(1);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    let t = r.task_state("1", "linker");
    assert_eq!(t["status"], "failed", "{t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(["not a folder", "not a regular file", "HEAD is"].iter().any(|w| reason.contains(w)), "{t}");
    assert_eq!(r.task_state("1", "crasher")["attempts"], 2);
    r.git(&["fsck", "--no-dangling"]);
}

/// The integration branch lies beside the task branches; an agent that plants it (or its lock)
/// must not steer what integration builds on.
#[test]
fn the_integration_branch_cannot_be_planted() {
    need_bwrap();
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt(
        "planter",
        "",
        "write p.txt p\ncommit own\n\
         sh git rm -q -r --cached README.md && git commit -qm wipe && git update-ref refs/heads/parallel/1/integration HEAD; \
         touch $(git rev-parse --git-common-dir)/refs/heads/parallel/1/integration.lock; git reset -q --hard HEAD~1; true",
    );
    r.prompt("other", "", "write o.txt o");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--sandbox"]).ok();
    for f in ["README.md", "p.txt", "o.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/integration:{f}")]);
    }
    assert!(!r.path(".git/refs/heads/parallel/1/integration.lock").exists());
}

/// Root outside is an unprivileged id inside, with no capabilities: no remount, no way out
/// through `/proc/1/root`.
#[test]
fn the_sandbox_drops_every_privilege() {
    need_bwrap();
    let r = TestRepo::new();
    r.use_fake_agent();
    let config = r.path(".git/config");
    let before = std::fs::read_to_string(&config).unwrap();
    r.prompt(
        "root",
        "",
        &format!(
            "sh id -u > uid.txt; grep CapEff /proc/self/status > caps.txt\n\
             sh mount -o remount,bind,rw / 2>/dev/null; echo pwned >> {c} 2>/dev/null; echo pwned >> /proc/1/root{c} 2>/dev/null; true",
            c = config.display()
        ),
    );
    r.commit("prompts");
    r.gp(&["run", "prompts", "--sandbox", "--no-integrate"]).ok();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/root:caps.txt"]), "CapEff:\t0000000000000000");
    // SAFETY: getuid has no arguments.
    if unsafe { libc::getuid() } == 0 {
        assert_ne!(r.git(&["cat-file", "-p", "parallel/1/root:uid.txt"]), "0");
    }
}

/// An agent never has the user's terminal, in any mode: run under a pseudo-terminal, it cannot
/// open /dev/tty (TIOCSTI and taking the foreground group need it).
#[test]
fn agents_never_get_the_users_terminal() {
    need_bwrap();
    for sandbox in [false, true] {
        let r = TestRepo::new();
        r.use_fake_agent();
        r.prompt("tty", "", "sh if (exec 3</dev/tty) 2>/dev/null; then echo has-tty; else echo no-tty; fi > tty.txt");
        r.commit("prompts");
        let mut cmd = format!("'{}' run prompts --no-integrate", bin().display());
        if sandbox {
            cmd.push_str(" --sandbox");
        }
        // `script` gives the orchestrator a terminal of its own (a pseudo-terminal).
        let mut c = r.command("script");
        c.args(["-qec", &cmd, "/dev/null"]);
        let o = c.output().unwrap();
        assert!(o.status.success(), "sandbox {sandbox}: {}", String::from_utf8_lossy(&o.stdout));
        assert_eq!(r.git(&["cat-file", "-p", "parallel/1/tty:tty.txt"]), "no-tty", "sandbox {sandbox}");
        // The control: a process started the same way without git-parallel has the terminal.
        let mut c = r.command("script");
        c.args(["-qec", "sh -c '(exec 3</dev/tty) && echo has-tty'", "/dev/null"]);
        assert!(String::from_utf8_lossy(&c.output().unwrap().stdout).contains("has-tty"));
    }
}

/// Host daemons' sockets (under /tmp and /run) and the variables naming them stay outside.
#[test]
fn host_daemons_are_out_of_reach() {
    need_bwrap();
    let r = TestRepo::new();
    r.use_fake_agent();
    let sock = r.scratch("agent.sock");
    let s = sock.display();
    // A listening socket, as tmux or ssh-agent keep one.
    let mut server = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import socket,time; s=socket.socket(socket.AF_UNIX); s.bind('{s}'); s.listen(); time.sleep(60)"),
        ])
        .spawn()
        .unwrap();
    wait_until("the socket", 10, || sock.exists());
    r.prompt(
        "reach",
        "",
        &format!(
            "sh python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{s}'); print('reached')\" > reach.txt 2>/dev/null || echo unreachable > reach.txt\n\
             sh echo \"tmux=$TMUX ssh=$SSH_AUTH_SOCK dbus=$DBUS_SESSION_BUS_ADDRESS\" > env.txt"
        ),
    );
    r.commit("prompts");
    let sock_str = sock.to_string_lossy().into_owned();
    let o = r.gp_env(
        &["run", "prompts", "--sandbox", "--no-integrate"],
        &[
            ("TMUX", &format!("{sock_str},1,0")),
            ("SSH_AUTH_SOCK", &sock_str),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/dbus"),
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    o.ok();
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/reach:reach.txt"]), "unreachable");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/reach:env.txt"]), "tmux= ssh= dbus=");
}

/// The same attacks by an agent of an unprivileged user (the tests run as root in CI: the run
/// is started as an id with no account and no privilege, over a repository it owns).
#[test]
fn an_unprivileged_users_sandbox_holds_the_same() {
    need_bwrap();
    // SAFETY: getuid has no arguments.
    let root = unsafe { libc::getuid() } == 0;
    let r = TestRepo::new();
    r.use_fake_agent();
    let pwned = r.scratch("pwned");
    let p = pwned.display();
    let config = r.path(".git/config");
    let c = config.display();
    r.prompt(
        "arm",
        "",
        &format!(
            "write a.txt a\ncommit own\n\
             sh echo pwned >> {c} 2>/dev/null; git update-ref refs/heads/parallel/1/integration HEAD~1; true\n\
             sh git init -q sub && git -C sub commit -q --allow-empty -m s && git add sub && git commit -qm sub\n\
             write sub/dirty.txt d\n\
             sh git -C sub config core.fsmonitor 'echo nested >> {p}'\n\
             sh E=$TMPDIR/evil; git init -q --bare $E && git -C $E config core.fsmonitor 'echo commondir >> {p}' && printf '%s\\n' $E > $(git rev-parse --git-dir)/commondir"
        ),
    );
    r.prompt("other", "", "write o.txt o");
    r.commit("prompts");
    let before = std::fs::read_to_string(&config).unwrap();
    const UID: u32 = 54321;
    let chown = |uid: u32| {
        let o = std::process::Command::new("chown")
            .args(["-R", &format!("{uid}:{uid}")])
            .arg(r.tmp.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let o = if root {
        chown(UID);
        let mut cmd = r.command("setpriv");
        cmd.args(["--reuid", &UID.to_string(), "--regid", &UID.to_string(), "--clear-groups", "--"]);
        cmd.arg(bin()).args(["run", "prompts", "--sandbox"]);
        let o = cmd.output().unwrap();
        chown(0);
        o
    } else {
        let mut cmd = r.command(bin());
        cmd.args(["run", "prompts", "--sandbox"]);
        cmd.output().unwrap()
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    assert!(!pwned.exists(), "ran {:?}", std::fs::read_to_string(&pwned));
    for f in ["README.md", "a.txt", "o.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/integration:{f}")]);
    }
}

/// The home holds keys and tokens (SSH, cloud, forge): hidden from a sandboxed agent, whose
/// tools (git's identity, PATH entries installed there) still work.
#[test]
fn the_users_secrets_stay_out_of_sight() {
    need_bwrap();
    let r = TestRepo::new();
    r.use_fake_agent();
    std::fs::create_dir_all(r.home.join(".ssh")).unwrap();
    std::fs::write(r.home.join(".ssh/id_ed25519"), "SECRET KEY\n").unwrap();
    std::fs::write(r.home.join(".gitconfig"), "[user]\n\tname = From Home\n").unwrap();
    r.prompt(
        "peek",
        "",
        &format!(
            "sh cat {k} ~/.ssh/id_ed25519 > leak.txt 2>/dev/null; test -s leak.txt || echo hidden > leak.txt\n\
             sh git config user.name > name.txt",
            k = r.home.join(".ssh/id_ed25519").display()
        ),
    );
    r.commit("prompts");
    let o = r.gp_env(
        &["run", "prompts", "--sandbox", "--no-integrate"],
        &[("GIT_CONFIG_GLOBAL", r.home.join(".gitconfig").to_str().unwrap())],
    );
    o.ok();
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/peek:leak.txt"]), "hidden");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/peek:name.txt"]), "From Home");
}

/// Whatever an agent prints, the orchestrator's memory stays bounded (a bounded queue of
/// output lines), and its stderr on disk is capped, keeping a note and the tail.
#[test]
fn agent_output_never_grows_the_orchestrator_without_bound() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt(
        "loud",
        "",
        "sh head -c 40000000 /dev/zero | tr '\\\\000' e >&2; echo last-words >&2\nflood 400\nwrite a.txt a",
    );
    r.commit("prompts");
    let mut c = r.command(bin());
    c.args(["run", "prompts", "--no-integrate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Waited for below with wait4, which also gives its peak memory.
    #[allow(clippy::zombie_processes)]
    let child = c.spawn().unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4 for our own child.
    let maxrss_kib = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut status, 0, &mut ru);
        ru.ru_maxrss
    };
    assert_eq!(status, 0);
    assert_eq!(r.task_state("1", "loud")["status"], "succeeded");
    // 400 MiB of output went through; the process tree's largest never held more than a slice.
    assert!(maxrss_kib < 200 * 1024, "peak RSS {} MiB", maxrss_kib / 1024);
    let stderr = r.task_log("1", "loud", "stderr");
    assert!(stderr.contains("bytes of stderr left out"), "{}", &stderr[..200.min(stderr.len())]);
    assert!(stderr.trim_end().ends_with("last-words"));
}

/// A replace ref would swap the user's commits for the agent's in every later git read.
#[test]
fn a_replace_ref_made_by_an_agent_is_removed_and_fails_it() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt(
        "swap",
        "",
        "write a.txt a\ncommit own\nsh git replace $(git rev-parse main) $(git commit-tree HEAD^{tree} -m forged)",
    );
    r.commit("prompts");
    let main_tree = r.git(&["rev-parse", "main^{tree}"]);
    r.gp(&["run", "prompts", "--no-integrate"]).code(1);
    let t = r.task_state("1", "swap");
    assert!(t["reason"].as_str().unwrap().contains("replace ref"), "{t}");
    assert_eq!(r.git(&["for-each-ref", "refs/replace/"]), "");
    assert_eq!(r.git(&["rev-parse", "main^{tree}"]), main_tree);
}

/// Resume's "recovered" path (a result commit with our trailers found on the branch) passes the
/// same check as any result: a commit that rewinds behind the start, or holds a file
/// `parallel.copy` brought in, is refused.
#[test]
fn a_result_recovered_on_resume_is_checked_like_any_other() {
    for plant in ["rewind", "copied"] {
        let r = TestRepo::new();
        r.use_fake_agent();
        r.write(".gitignore", ".env\n");
        r.commit("ignore");
        std::fs::write(r.path(".env"), "TOKEN=secret\n").unwrap();
        r.git(&["config", "parallel.copy", ".env"]);
        // The forger below works in the worktree's folder from outside, as on a full checkout.
        r.git(&["config", "parallel.worktree", "checkout"]);
        r.prompt("a", "", "write a.txt a");
        r.commit("prompts");
        let o = r.gp_env(&["run", "prompts", "--no-integrate"], &[("GIT_PARALLEL_FAULT", "task-committed")]);
        assert_eq!(o.code, -1, "{}", o.stderr);
        // While the orchestrator is gone, the branch is made to hold a result with our trailers.
        let msg = "Task a\n\nParallel-Run: 1\nParallel-Task: a\n";
        let wt = r.tmp.path().join("repo.parallel/1/a");
        let forged = match plant {
            "rewind" => r.git(&["commit-tree", "main~1^{tree}", "-p", "main~1", "-m", msg]),
            _ => {
                let mut c = r.command("git");
                c.args(["-C", wt.to_str().unwrap(), "add", "-f", ".env"]);
                assert!(c.status().unwrap().success());
                let mut c = r.command("git");
                c.args(["-C", wt.to_str().unwrap(), "write-tree"]);
                let tree = String::from_utf8(c.output().unwrap().stdout).unwrap().trim().to_string();
                r.git(&["commit-tree", &tree, "-p", "parallel/1/a", "-m", msg])
            }
        };
        r.git(&["update-ref", "refs/heads/parallel/1/a", &forged]);
        let mut c = r.command("git");
        c.args(["-C", wt.to_str().unwrap(), "reset", "-q", "--hard", &forged]);
        assert!(c.status().unwrap().success());
        r.gp(&["resume", "1"]);
        let t = r.task_state("1", "a");
        assert_ne!(t["status"], "succeeded", "{plant}: {t}");
        let reason = t["reason"].as_str().unwrap_or_default();
        assert!(["descends", "parallel.copy", "moved from outside"].iter().any(|w| reason.contains(w)), "{plant}: {t}");
    }
}

/// A task run again from its start (`resume --retry-failed`) gets its `parallel.copy` files
/// again, in a worktree an earlier attempt wrote: a link it left where `.env` goes is replaced,
/// never written through to the file it names.
#[test]
fn files_copied_into_a_used_worktree_never_go_through_an_agents_link() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write(".gitignore", ".env\n");
    r.commit("ignore");
    std::fs::write(r.path(".env"), "TOKEN=secret\n").unwrap();
    r.git(&["config", "parallel.copy", ".env"]);
    let victim = r.scratch("victim");
    std::fs::write(&victim, "mine\n").unwrap();
    r.prompt("a", "", &format!("sh rm -f .env && ln -s {} .env\nfail 1 try again", victim.display()));
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).code(1);
    r.gp(&["resume", "1", "--retry-failed"]).code(1);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine\n");
}
