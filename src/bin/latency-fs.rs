//! `latency-fs BACKING_DIR MOUNTPOINT DELAY_MS`: a FUSE passthrough of BACKING_DIR at
//! MOUNTPOINT that answers every request DELAY_MS late, as a network filesystem (NFS) would.
//! For the Slurm benchmark: the shared repository is slow on every call, not merely slow to read.
//!
//! Each delayed request sleeps on a thread of its own, so requests overlap as they do on a
//! network filesystem: the delay is latency, not a lock that serializes callers. Stays in the
//! foreground until SIGTERM/SIGINT (then unmounts) or until it is unmounted from outside.
//!
//! On exit it says how many requests it answered, by kind: the round trips the workload paid.
//!
//! Inodes are numbered here, one per path (hard links are separate inodes, as in libfuse's
//! path-based API), so that a rename or an unlink just moves or drops entries of the map.

use fuser::{
    AccessFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the kernel may trust an entry or its attributes before asking again: one second,
/// like NFS's attribute cache (`actimeo`), so a slow filesystem is not hidden by caching
/// forever nor made slower than NFS by never caching.
const TTL: Duration = Duration::from_secs(1);

/// Threads reading requests from the kernel; each hands a request off at once when there is a
/// delay, so a few suffice.
const READERS: usize = 4;

/// Inode numbers by path and back. Paths are relative to the backing folder ("" is the root).
struct Nodes {
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next: u64,
}

impl Nodes {
    fn ino(&mut self, path: &Path) -> u64 {
        if let Some(&ino) = self.inos.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, path.to_path_buf());
        self.inos.insert(path.to_path_buf(), ino);
        ino
    }

    /// Forget `path`: it no longer exists (unlink, rmdir, replaced by a rename; a directory
    /// removed was empty). The kernel asking for its inode later gets ESTALE, as from NFS (see
    /// `Inner::path`); a new file at the same path gets a new inode.
    fn forget(&mut self, path: &Path) {
        if let Some(ino) = self.inos.remove(path) {
            self.paths.remove(&ino);
        }
    }

    /// The file or tree at `from` is now at `to`. `dir`: look for entries under it too (a
    /// full scan, so only done for directories, which git rarely renames).
    fn move_tree(&mut self, from: &Path, to: &Path, dir: bool) {
        let moved: Vec<PathBuf> = match dir {
            true => self.inos.keys().filter(|p| p.starts_with(from)).cloned().collect(),
            false => self.inos.contains_key(from).then(|| from.to_path_buf()).into_iter().collect(),
        };
        let moved: Vec<(PathBuf, u64)> =
            moved.into_iter().map(|p| (p.clone(), self.inos.remove(&p).unwrap())).collect();
        for (p, ino) in moved {
            // `to.join("")` would add a trailing slash, which lstat refuses for a file.
            let q = match p.strip_prefix(from).unwrap() {
                rest if rest.as_os_str().is_empty() => to.to_path_buf(),
                rest => to.join(rest),
            };
            self.paths.insert(ino, q.clone());
            self.inos.insert(q, ino);
        }
    }
}

/// One entry of a directory listing, as taken by the first readdir of a handle (or a rewind).
struct DirEntry {
    ino: u64,
    kind: FileType,
    name: OsString,
}

/// The filesystem's state, shared with the threads that answer delayed requests.
struct Inner {
    backing: PathBuf,
    nodes: Mutex<Nodes>,
    files: Mutex<HashMap<u64, Arc<File>>>,
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    next_fh: AtomicU64,
    /// Created files get the caller's owner when we are root (else they are ours anyway).
    root: bool,
    /// Requests not answered yet, by the kernel's request id: what, for which process, since.
    /// A caller hangs for as long as its request stays here, so a watchdog reports old ones.
    pending: Mutex<HashMap<u64, (&'static str, u32, Instant)>>,
    /// Requests received, by kind.
    counts: Mutex<HashMap<&'static str, u64>>,
}

type Res<T> = Result<T, Errno>;

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn last_err() -> Errno {
    errno(io::Error::last_os_error())
}

fn cstr(p: &Path) -> Res<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// A libc call's return value: -1 is an error in errno.
fn check(ret: libc::c_int) -> Res<()> {
    match ret {
        -1 => Err(last_err()),
        _ => Ok(()),
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    match secs >= 0 {
        true => UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32),
        false => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64),
    }
}

fn kind(ft: std::fs::FileType) -> FileType {
    FileType::from_std(ft).unwrap_or(FileType::RegularFile)
}

fn attr(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: kind(m.file_type()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

/// A `timespec` for utimensat: a time, now, or left alone.
fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        Some(TimeOrNow::Now) => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        Some(TimeOrNow::SpecificTime(t)) => {
            let (s, n) = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                Err(e) => {
                    let d = e.duration();
                    // Before 1970: whole seconds down, nanoseconds up from there.
                    let up = (1_000_000_000 - d.subsec_nanos() as i64) % 1_000_000_000;
                    (-(d.as_secs() as i64) - (up > 0) as i64, up)
                }
            };
            libc::timespec { tv_sec: s as libc::time_t, tv_nsec: n as _ }
        }
    }
}

impl Inner {
    /// The backing path of inode `ino`. An inode that is gone is ESTALE, not ENOENT: a caller
    /// may hold it from a lookup made just before another process renamed a file over it (git
    /// moving `ref.lock` onto `ref`), and on ESTALE the kernel looks the path up again, as it
    /// does for NFS's stale handles, and finds the new file; ENOENT would say it is missing.
    fn path(&self, ino: u64) -> Res<PathBuf> {
        let nodes = self.nodes.lock().unwrap();
        nodes.paths.get(&ino).map(|p| self.backing.join(p)).ok_or(Errno::ESTALE)
    }

    /// The relative path of `name` in directory `parent`.
    fn child(&self, parent: u64, name: &OsStr) -> Res<PathBuf> {
        let nodes = self.nodes.lock().unwrap();
        nodes.paths.get(&parent).map(|p| p.join(name)).ok_or(Errno::ESTALE)
    }

    /// Stat `rel` (not following a final symlink) and give it an inode: a lookup's answer.
    fn entry(&self, rel: &Path) -> Res<FileAttr> {
        let m = std::fs::symlink_metadata(self.backing.join(rel)).map_err(errno)?;
        let ino = self.nodes.lock().unwrap().ino(rel);
        Ok(attr(ino, &m))
    }

    fn file(&self, fh: u64) -> Res<Arc<File>> {
        self.files.lock().unwrap().get(&fh).cloned().ok_or(Errno::EBADF)
    }

    fn add_file(&self, f: File) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.files.lock().unwrap().insert(fh, Arc::new(f));
        fh
    }

    /// Give a new file the caller's owner, as a local filesystem would.
    fn own(&self, req: (u32, u32), path: &Path) -> Res<()> {
        if self.root {
            check(unsafe { libc::lchown(cstr(path)?.as_ptr(), req.0, req.1) })?;
        }
        Ok(())
    }

    fn getattr(&self, ino: u64, fh: Option<u64>) -> Res<FileAttr> {
        // An open file is stat'ed through its descriptor: it may be unlinked already.
        if let Some(f) = fh.and_then(|fh| self.files.lock().unwrap().get(&fh).cloned()) {
            return Ok(attr(ino, &f.metadata().map_err(errno)?));
        }
        Ok(attr(ino, &std::fs::symlink_metadata(self.path(ino)?).map_err(errno)?))
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Res<FileAttr> {
        let file = fh.and_then(|fh| self.files.lock().unwrap().get(&fh).cloned());
        let path = cstr(&self.path(ino).unwrap_or_default())?;
        // Through the open descriptor when there is one (ftruncate of an unlinked file).
        let fd = file.as_ref().map(|f| f.as_raw_fd());
        unsafe {
            if let Some(mode) = mode {
                check(match fd {
                    Some(fd) => libc::fchmod(fd, mode & 0o7777),
                    None => libc::chmod(path.as_ptr(), mode & 0o7777),
                })?;
            }
            if uid.is_some() || gid.is_some() {
                let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)); // -1: unchanged
                check(match fd {
                    Some(fd) => libc::fchown(fd, u, g),
                    None => libc::lchown(path.as_ptr(), u, g),
                })?;
            }
            if let Some(size) = size {
                check(match fd {
                    Some(fd) => libc::ftruncate(fd, size as libc::off_t),
                    None => libc::truncate(path.as_ptr(), size as libc::off_t),
                })?;
            }
            if atime.is_some() || mtime.is_some() {
                let times = [timespec(atime), timespec(mtime)];
                check(match fd {
                    Some(fd) => libc::futimens(fd, times.as_ptr()),
                    None => libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW),
                })?;
            }
        }
        self.getattr(ino, fh)
    }

    fn open(&self, ino: u64, flags: i32) -> Res<u64> {
        let path = cstr(&self.path(ino)?)?;
        // Creating is create()'s business; the rest of the caller's flags (O_APPEND, O_TRUNC,
        // the access mode) apply to the backing file as given.
        let flags = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY)) | libc::O_CLOEXEC;
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        check(fd)?;
        Ok(self.add_file(unsafe { File::from_raw_fd(fd) }))
    }

    fn create(&self, req: (u32, u32), parent: u64, name: &OsStr, mode: u32, flags: i32) -> Res<(FileAttr, u64)> {
        let rel = self.child(parent, name)?;
        let path = self.backing.join(&rel);
        // O_EXCL is passed on: git's lock files rely on it failing when the file exists.
        let flags = (flags & !libc::O_NOCTTY) | libc::O_CREAT | libc::O_CLOEXEC;
        let fd = unsafe { libc::open(cstr(&path)?.as_ptr(), flags, mode as libc::c_uint) };
        check(fd)?;
        let f = unsafe { File::from_raw_fd(fd) };
        if self.root {
            check(unsafe { libc::fchown(fd, req.0, req.1) })?;
        }
        let m = f.metadata().map_err(errno)?;
        let ino = self.nodes.lock().unwrap().ino(&rel);
        Ok((attr(ino, &m), self.add_file(f)))
    }

    /// Make something new at `name` in `parent` with `make`, and answer with its entry.
    fn make(&self, req: (u32, u32), parent: u64, name: &OsStr, make: impl FnOnce(&Path) -> Res<()>) -> Res<FileAttr> {
        let rel = self.child(parent, name)?;
        let path = self.backing.join(&rel);
        make(&path)?;
        self.own(req, &path)?;
        self.entry(&rel)
    }

    fn read(&self, fh: u64, offset: u64, size: u32) -> Res<Vec<u8>> {
        let f = self.file(fh)?;
        let mut buf = vec![0; size as usize];
        let mut n = 0;
        // Fill the buffer: a short answer tells the kernel the file ends there.
        while n < buf.len() {
            match f.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        buf.truncate(n);
        Ok(buf)
    }

    fn readdir_snapshot(&self, ino: u64) -> Res<Vec<DirEntry>> {
        let rel = self.nodes.lock().unwrap().paths.get(&ino).cloned().ok_or(Errno::ESTALE)?;
        let mut raw = Vec::new();
        for e in std::fs::read_dir(self.backing.join(&rel)).map_err(errno)? {
            let e = e.map_err(errno)?;
            raw.push((e.file_name(), kind(e.file_type().map_err(errno)?)));
        }
        let mut nodes = self.nodes.lock().unwrap();
        let parent = match rel.parent() {
            Some(p) => nodes.ino(p),
            None => ino, // the root's parent is itself
        };
        let mut entries = vec![
            DirEntry { ino, kind: FileType::Directory, name: ".".into() },
            DirEntry { ino: parent, kind: FileType::Directory, name: "..".into() },
        ];
        for (name, kind) in raw {
            entries.push(DirEntry { ino: nodes.ino(&rel.join(&name)), kind, name });
        }
        Ok(entries)
    }

    fn rename(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> Res<()> {
        let (from, to) = (self.child(parent, name)?, self.child(newparent, newname)?);
        let (a, b) = (cstr(&self.backing.join(&from))?, cstr(&self.backing.join(&to))?);
        // The map is updated under its lock with the rename itself, so no lookup in between
        // sees the new name with the old inode.
        let mut nodes = self.nodes.lock().unwrap();
        check(unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) })?;
        let dir = std::fs::symlink_metadata(self.backing.join(&to)).map(|m| m.is_dir()).unwrap_or(true);
        if flags & libc::RENAME_EXCHANGE != 0 {
            let other = std::fs::symlink_metadata(self.backing.join(&from)).map(|m| m.is_dir()).unwrap_or(true);
            let tmp = PathBuf::from("\0exchange"); // no real path has a NUL
            nodes.move_tree(&to, &tmp, other);
            nodes.move_tree(&from, &to, dir);
            nodes.move_tree(&tmp, &from, other);
        } else {
            // Whatever `to` was (a file overwritten, an empty directory) is gone.
            nodes.forget(&to);
            nodes.move_tree(&from, &to, dir);
        }
        Ok(())
    }

    fn statfs(&self) -> Res<libc::statvfs> {
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        check(unsafe { libc::statvfs(cstr(&self.backing)?.as_ptr(), &mut st) })?;
        Ok(st)
    }
}

/// The filesystem fuser calls: each request is answered by `later`, after the delay.
struct LatencyFs {
    inner: Arc<Inner>,
    delay: Duration,
}

impl LatencyFs {
    /// Run `f` after the delay, on a thread of its own so that requests overlap. Without a
    /// delay it runs at once on the reading thread (plain FUSE overhead).
    fn later(&self, req: &Request, op: &'static str, f: impl FnOnce(&Inner) + Send + 'static) {
        let id = req.unique().0;
        self.inner.pending.lock().unwrap().insert(id, (op, req.pid(), Instant::now()));
        *self.inner.counts.lock().unwrap().entry(op).or_default() += 1;
        let run = move |inner: &Inner| {
            f(inner);
            inner.pending.lock().unwrap().remove(&id);
        };
        if self.delay.is_zero() {
            return run(&self.inner);
        }
        let (inner, delay) = (self.inner.clone(), self.delay);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            run(&inner)
        });
    }
}

fn owner(req: &Request) -> (u32, u32) {
    (req.uid(), req.gid())
}

fn entry(reply: ReplyEntry, r: Res<FileAttr>) {
    match r {
        Ok(a) => reply.entry(&TTL, &a, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, r: Res<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn io_res<T>(r: io::Result<T>) -> Res<T> {
    r.map_err(errno)
}

impl Filesystem for LatencyFs {
    fn init(&mut self, _req: &Request, _config: &mut KernelConfig) -> io::Result<()> {
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_os_string();
        self.later(req, "lookup", move |fs| entry(reply, fs.child(parent.0, &name).and_then(|rel| fs.entry(&rel))));
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.later(req, "getattr", move |fs| match fs.getattr(ino.0, fh.map(|f| f.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.later(req, "setattr", move |fs| {
            match fs.setattr(ino.0, fh.map(|f| f.0), mode, uid, gid, size, atime, mtime) {
                Ok(a) => reply.attr(&TTL, &a),
                Err(e) => reply.error(e),
            }
        });
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.later(req, "readlink", move |fs| match fs.path(ino.0).and_then(|p| io_res(std::fs::read_link(p))) {
            Ok(target) => reply.data(target.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (who, name) = (owner(req), name.to_os_string());
        self.later(req, "mknod", move |fs| {
            let r = fs.make(who, parent.0, &name, |p| {
                check(unsafe { libc::mknod(cstr(p)?.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) })
            });
            entry(reply, r)
        });
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        let (who, name) = (owner(req), name.to_os_string());
        self.later(req, "mkdir", move |fs| {
            let r = fs
                .make(who, parent.0, &name, |p| check(unsafe { libc::mkdir(cstr(p)?.as_ptr(), mode as libc::mode_t) }));
            entry(reply, r)
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_os_string();
        self.later(req, "unlink", move |fs| {
            let r = fs.child(parent.0, &name).and_then(|rel| {
                io_res(std::fs::remove_file(fs.backing.join(&rel)))?;
                fs.nodes.lock().unwrap().forget(&rel);
                Ok(())
            });
            empty(reply, r)
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_os_string();
        self.later(req, "rmdir", move |fs| {
            let r = fs.child(parent.0, &name).and_then(|rel| {
                io_res(std::fs::remove_dir(fs.backing.join(&rel)))?;
                fs.nodes.lock().unwrap().forget(&rel);
                Ok(())
            });
            empty(reply, r)
        });
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let (who, name, target) = (owner(req), link_name.to_os_string(), target.to_path_buf());
        self.later(req, "symlink", move |fs| {
            let r = fs.make(who, parent.0, &name, |p| io_res(std::os::unix::fs::symlink(&target, p)));
            entry(reply, r)
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname) = (name.to_os_string(), newname.to_os_string());
        self.later(req, "rename", move |fs| {
            empty(reply, fs.rename(parent.0, &name, newparent.0, &newname, flags.bits()))
        });
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let newname = newname.to_os_string();
        self.later(req, "link", move |fs| {
            let r = fs.child(newparent.0, &newname).and_then(|rel| {
                io_res(std::fs::hard_link(fs.path(ino.0)?, fs.backing.join(&rel)))?;
                fs.entry(&rel)
            });
            entry(reply, r)
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.later(req, "open", move |fs| match fs.open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        });
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.later(req, "read", move |fs| match fs.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.later(req, "write", move |fs| match fs.file(fh.0).and_then(|f| io_res(f.write_all_at(&data, offset))) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        });
    }

    fn flush(&self, req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // Every close(2) sends one: nothing is buffered here, but the round trip is paid.
        self.later(req, "flush", move |_| reply.ok());
    }

    fn release(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.later(req, "release", move |fs| {
            fs.files.lock().unwrap().remove(&fh.0);
            reply.ok()
        });
    }

    fn fsync(&self, req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        self.later(req, "fsync", move |fs| {
            let r = fs.file(fh.0).and_then(|f| io_res(if datasync { f.sync_data() } else { f.sync_all() }));
            empty(reply, r)
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.later(req, "opendir", move |fs| {
            let r = fs.path(ino.0).and_then(|p| io_res(std::fs::symlink_metadata(p)));
            match r {
                Ok(m) if !m.is_dir() => reply.error(Errno::ENOTDIR),
                Ok(_) => {
                    // The listing is taken by the first readdir, which comes at once.
                    let fh = fs.next_fh.fetch_add(1, Ordering::Relaxed);
                    fs.dirs.lock().unwrap().insert(fh, Arc::new(Vec::new()));
                    reply.opened(FileHandle(fh), FopenFlags::empty())
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn readdir(&self, req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        self.later(req, "readdir", move |fs| {
            // The listing is taken at offset 0 (the first call, or a rewind) and kept with the
            // handle, as libfuse does, so entries removed while a caller walks the directory
            // (git deleting a tree) do not shift the offsets of the next calls.
            if offset == 0 {
                match fs.readdir_snapshot(ino.0) {
                    Ok(e) => {
                        fs.dirs.lock().unwrap().insert(fh.0, Arc::new(e));
                    }
                    Err(e) => return reply.error(e),
                }
            }
            let Some(entries) = fs.dirs.lock().unwrap().get(&fh.0).cloned() else {
                return reply.error(Errno::EBADF);
            };
            for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                    break;
                }
            }
            reply.ok()
        });
    }

    fn releasedir(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.later(req, "releasedir", move |fs| {
            fs.dirs.lock().unwrap().remove(&fh.0);
            reply.ok()
        });
    }

    fn fsyncdir(&self, req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.later(req, "fsyncdir", move |fs| {
            let r = fs.path(ino.0).and_then(|p| io_res(File::open(p)?.sync_all()));
            empty(reply, r)
        });
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.later(req, "statfs", move |fs| match fs.statfs() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        });
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.later(req, "access", move |fs| {
            let r = fs.path(ino.0).and_then(|p| check(unsafe { libc::access(cstr(&p)?.as_ptr(), mask.bits()) }));
            empty(reply, r)
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (who, name) = (owner(req), name.to_os_string());
        self.later(req, "create", move |fs| match fs.create(who, parent.0, &name, mode, flags) {
            Ok((a, fh)) => reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        });
    }
}

/// fuser reports what it could not do (a reply the kernel refused, say) through `log`: shown.
struct Log;

impl log::Log for Log {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Error
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("latency-fs: {}", r.args());
        }
    }
    fn flush(&self) {}
}

/// Every few seconds, name the requests unanswered for long: each is a caller hanging.
fn watchdog(inner: Arc<Inner>) {
    const OLD: Duration = Duration::from_secs(10);
    let mut told = std::collections::HashSet::new();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let pending = inner.pending.lock().unwrap();
        for (id, (op, pid, since)) in pending.iter() {
            if since.elapsed() > OLD && told.insert(*id) {
                eprintln!("latency-fs: request {id} ({op} for pid {pid}) unanswered for {:?}", since.elapsed());
            }
        }
        told.retain(|id| pending.contains_key(id));
    }
}

/// "N requests (lookup n, getattr n, ...)", the most frequent first.
fn summary(inner: &Inner) -> String {
    let counts = inner.counts.lock().unwrap();
    let mut v: Vec<(&str, u64)> = counts.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let each: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("{} requests ({})", v.iter().map(|(_, n)| n).sum::<u64>(), each.join(", "))
}

fn main() {
    let _ = log::set_logger(&Log).map(|()| log::set_max_level(log::LevelFilter::Error));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let [backing, mountpoint, delay] = &args[..] else {
        eprintln!("usage: latency-fs BACKING_DIR MOUNTPOINT DELAY_MS");
        std::process::exit(2);
    };
    let delay: u64 = match delay.to_str().and_then(|d| d.parse().ok()) {
        Some(d) => d,
        None => {
            eprintln!("latency-fs: DELAY_MS must be a whole number of milliseconds");
            std::process::exit(2);
        }
    };
    let backing = match std::fs::canonicalize(backing) {
        Ok(b) if b.is_dir() => b,
        _ => {
            eprintln!("latency-fs: {} is not a folder", Path::new(backing).display());
            std::process::exit(2);
        }
    };
    // The kernel already applied the caller's umask to the modes it sends: ours must not
    // apply a second one.
    unsafe { libc::umask(0) };
    let mut nodes = Nodes { paths: HashMap::new(), inos: HashMap::new(), next: INodeNo::ROOT.0 };
    nodes.ino(Path::new(""));
    let fs = LatencyFs {
        inner: Arc::new(Inner {
            backing: backing.clone(),
            nodes: Mutex::new(nodes),
            files: Mutex::default(),
            dirs: Mutex::default(),
            next_fh: AtomicU64::new(1),
            root: unsafe { libc::geteuid() } == 0,
            pending: Mutex::default(),
            counts: Mutex::default(),
        }),
        delay: Duration::from_millis(delay),
    };
    let inner = fs.inner.clone();
    let watched = inner.clone();
    std::thread::spawn(move || watchdog(watched));
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(format!("latency-fs:{}", backing.display())),
        MountOption::Subtype("latency-fs".into()),
        MountOption::DefaultPermissions,
    ];
    config.n_threads = Some(READERS);
    // The readers share one descriptor: the kernel takes a reply only on the descriptor its
    // request was read from, and an interrupt (a caller got a signal) may be read by another
    // reader than its request; with one descriptor each, its answer was refused (ENOENT).
    config.clone_fd = false;

    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .expect("signal handler");
    let session = match fuser::Session::new(fs, mountpoint, &config).and_then(|s| s.spawn()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latency-fs: cannot mount {}: {e}", Path::new(mountpoint).display());
            std::process::exit(1);
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(()) => break,
            // Unmounted from outside: the session has ended.
            Err(_) if session.guard.is_finished() => {
                let _ = session.join();
                eprintln!("latency-fs: unmounted; {}", summary(&inner));
                return;
            }
            Err(_) => {}
        }
    }
    if let Err(e) = session.umount_and_join() {
        // Still in use (a process has its folder there): detach it lazily, as `umount -l`;
        // the kernel ends the connection when this process exits.
        eprintln!("latency-fs: unmount: {e}; detaching");
        if let Ok(m) = cstr(Path::new(mountpoint)) {
            unsafe { libc::umount2(m.as_ptr(), libc::MNT_DETACH) };
        }
    }
    eprintln!("latency-fs: {}", summary(&inner));
}
