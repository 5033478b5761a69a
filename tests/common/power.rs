//! A disk whose power can be cut: an in-memory FUSE filesystem that keeps what a program wrote
//! only as far as it was fsynced, as LazyFS does for Jepsen. A file's bytes survive a cut as they
//! were at its last `fsync`; a name survives as its directory was at that directory's last
//! `fsync`. Nothing more is promised by POSIX, so nothing more is kept.
//!
//! The cut is taken at the n-th change a program asks for (a write, truncate, create, rename,
//! unlink, mkdir, fsync): that request is not carried out, the calling process is SIGKILLed
//! before the call returns, and every later change is refused. [`Disk::power_cycle`] then
//! unmounts, throws away what was not durable and mounts again, as a machine coming back.
//!
//! Needs root and `/dev/fuse` (the FUSE device; in a container, `--device /dev/fuse
//! --cap-add SYS_ADMIN`): it mounts with mount(2), no fusermount.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// Held while mounting and unmounting: device numbers come from one pool for all the test's
/// threads, and [`Disk::power_cycle`] must see which one it freed come back.
static MOUNTING: Mutex<()> = Mutex::new(());

/// Attributes and names are never cached by the kernel: every answer comes from the state.
const TTL: Duration = Duration::ZERO;
const ROOT: u64 = 1;

/// One file or directory: what it is now, and what of it is on the platter.
#[derive(Clone, Default)]
struct Node {
    dir: bool,
    data: Vec<u8>,
    entries: BTreeMap<OsString, u64>,
    durable_data: Vec<u8>,
    durable_entries: BTreeMap<OsString, u64>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Changes asked for since the last power cycle.
    changes: u64,
    /// Cut the power when the change with this number is asked for.
    cut_at: Option<u64>,
    /// The power is off: every change is refused until the next cycle.
    dead: bool,
    /// Whether the last cycle's run met its cut (it ran to the end otherwise).
    cut_taken: bool,
}

impl State {
    fn fresh() -> State {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                dir: true,
                ..Node::default()
            },
        );
        State {
            nodes,
            next_ino: ROOT + 1,
            ..State::default()
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let size = if node.dir { 0 } else { node.data.len() as u64 };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: if node.dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: if node.dir { 0o755 } else { 0o644 },
            nlink: if node.dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        })
    }

    /// Counts a change; false (and the caller refuses it) once the power is off. At the cut the
    /// asking process is killed before its call returns, so it never sees the call end.
    fn change(&mut self, req: &Request) -> bool {
        if self.dead {
            return false;
        }
        self.changes += 1;
        if self.cut_at == Some(self.changes) {
            self.dead = true;
            self.cut_taken = true;
            // SAFETY: kill(2) with a pid the kernel gave us for this request; a thread id
            // kills its whole process.
            unsafe { libc::kill(req.pid() as libc::pid_t, libc::SIGKILL) };
            return false;
        }
        true
    }

    fn dir_mut(&mut self, ino: u64) -> Option<&mut Node> {
        self.nodes.get_mut(&ino).filter(|n| n.dir)
    }

    fn lookup(&self, parent: u64, name: &OsStr) -> Option<u64> {
        self.nodes.get(&parent)?.entries.get(name).copied()
    }

    /// What a machine finds after the power comes back: the durable names from the root down,
    /// each file with its durable bytes. Anything only named in volatile entries is gone.
    fn after_power_loss(&mut self) {
        let mut kept = HashMap::new();
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if kept.contains_key(&ino) {
                continue;
            }
            let Some(node) = self.nodes.get(&ino) else {
                continue;
            };
            let restored = Node {
                dir: node.dir,
                data: node.durable_data.clone(),
                entries: node.durable_entries.clone(),
                durable_data: node.durable_data.clone(),
                durable_entries: node.durable_entries.clone(),
            };
            todo.extend(restored.entries.values().copied());
            kept.insert(ino, restored);
        }
        self.nodes = kept;
        self.changes = 0;
        self.dead = false;
    }
}

struct PowerFs {
    state: Arc<Mutex<State>>,
}

impl PowerFs {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn make(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool) -> Result<FileAttr, Errno> {
        let mut s = self.state();
        if s.dir_mut(parent.0).is_none() {
            return Err(Errno::ENOENT);
        }
        if s.lookup(parent.0, name).is_some() {
            return Err(Errno::EEXIST);
        }
        if !s.change(req) {
            return Err(Errno::EIO);
        }
        let ino = s.next_ino;
        s.next_ino += 1;
        s.nodes.insert(
            ino,
            Node {
                dir,
                ..Node::default()
            },
        );
        s.dir_mut(parent.0)
            .expect("checked")
            .entries
            .insert(name.to_owned(), ino);
        Ok(s.attr(ino).expect("just made"))
    }
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let s = self.state();
        match s.lookup(parent.0, name).and_then(|ino| s.attr(ino)) {
            Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.state();
        if !s.nodes.contains_key(&ino.0) {
            return reply.error(Errno::ENOENT);
        }
        if let Some(size) = size {
            if !s.change(req) {
                return reply.error(Errno::EIO);
            }
            s.nodes
                .get_mut(&ino.0)
                .expect("checked")
                .data
                .resize(size as usize, 0);
        }
        reply.attr(&TTL, &s.attr(ino.0).expect("checked"));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        match self.make(req, parent, name, true) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.make(req, parent, name, false) {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.state();
        if s.lookup(parent.0, name).is_none() {
            return reply.error(Errno::ENOENT);
        }
        if !s.change(req) {
            return reply.error(Errno::EIO);
        }
        s.dir_mut(parent.0).expect("has the entry").entries.remove(name);
        reply.ok();
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
        let mut s = self.state();
        let Some(ino) = s.lookup(parent.0, name) else {
            return reply.error(Errno::ENOENT);
        };
        if s.dir_mut(newparent.0).is_none() {
            return reply.error(Errno::ENOENT);
        }
        if flags.contains(RenameFlags::RENAME_NOREPLACE) && s.lookup(newparent.0, newname).is_some() {
            return reply.error(Errno::EEXIST);
        }
        if !s.change(req) {
            return reply.error(Errno::EIO);
        }
        s.dir_mut(parent.0).expect("has the entry").entries.remove(name);
        s.dir_mut(newparent.0)
            .expect("checked")
            .entries
            .insert(newname.to_owned(), ino);
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().nodes.contains_key(&ino.0) {
            true => reply.opened(FileHandle(0), FopenFlags::empty()),
            false => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let s = self.state();
        let Some(node) = s.nodes.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let start = (offset as usize).min(node.data.len());
        let end = (start + size as usize).min(node.data.len());
        reply.data(&node.data[start..end]);
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut s = self.state();
        if !s.nodes.contains_key(&ino.0) {
            return reply.error(Errno::ENOENT);
        }
        if !s.change(req) {
            return reply.error(Errno::EIO);
        }
        let file = &mut s.nodes.get_mut(&ino.0).expect("checked").data;
        let (start, end) = (offset as usize, offset as usize + data.len());
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(data);
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&self, req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut s = self.state();
        if !s.nodes.contains_key(&ino.0) {
            return reply.error(Errno::ENOENT);
        }
        if !s.change(req) {
            return reply.error(Errno::EIO);
        }
        let node = s.nodes.get_mut(&ino.0).expect("checked");
        node.durable_data = node.data.clone();
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().nodes.get(&ino.0).is_some_and(|n| n.dir) {
            true => reply.opened(FileHandle(0), FopenFlags::empty()),
            false => reply.error(Errno::ENOTDIR),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let s = self.state();
        let Some(node) = s.nodes.get(&ino.0).filter(|n| n.dir) else {
            return reply.error(Errno::ENOTDIR);
        };
        let mut listing = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (ino.0, FileType::Directory, "..".into()),
        ];
        for (name, child) in &node.entries {
            let kind = match s.nodes.get(child).is_some_and(|n| n.dir) {
                true => FileType::Directory,
                false => FileType::RegularFile,
            };
            listing.push((*child, kind, name.clone()));
        }
        for (i, (child, kind, name)) in listing.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut s = self.state();
        if s.dir_mut(ino.0).is_none() {
            return reply.error(Errno::ENOTDIR);
        }
        if !s.change(req) {
            return reply.error(Errno::EIO);
        }
        let node = s.dir_mut(ino.0).expect("checked");
        node.durable_entries = node.entries.clone();
        reply.ok();
    }
}

/// A mounted [`PowerFs`] in a temp dir; unmounted when dropped.
pub struct Disk {
    state: Arc<Mutex<State>>,
    mountpoint: tempfile::TempDir,
    session: Option<BackgroundSession>,
}

impl Disk {
    /// Mounts an empty disk; panics with how to get FUSE when it cannot.
    pub fn mount() -> Disk {
        let _mounting = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let mut disk = Disk {
            state: Arc::new(Mutex::new(State::fresh())),
            mountpoint: tempfile::tempdir().expect("a temp dir"),
            session: None,
        };
        disk.attach();
        disk
    }

    fn attach(&mut self) {
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("ingest-powercut".into())];
        let fs = PowerFs {
            state: Arc::clone(&self.state),
        };
        let session = fuser::spawn_mount(fs, self.mountpoint.path(), &config).unwrap_or_else(|e| {
            panic!(
                "cannot mount the power-cut test filesystem at {}: {e}. It needs root and the FUSE \
                 device /dev/fuse (in a container: --device /dev/fuse --cap-add SYS_ADMIN)",
                self.mountpoint.path().display()
            )
        });
        self.session = Some(session);
    }

    fn detach(&mut self) {
        if let Some(session) = self.session.take() {
            let path = std::ffi::CString::new(self.mountpoint.path().as_os_str().as_encoded_bytes()).unwrap();
            // Not lazily: a plain unmount has freed the device number when it returns. It fails
            // with EBUSY while a process another test forks at that moment holds one of the
            // disk's files open, until it execs: tried again then, for at most 10 s.
            for attempt in 0.. {
                // SAFETY: umount2 on a NUL-terminated path we own.
                if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
                    break;
                }
                let error = std::io::Error::last_os_error();
                assert!(
                    error.raw_os_error() == Some(libc::EBUSY) && attempt < 10_000,
                    "unmount {}: {error}",
                    self.mountpoint.path().display()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            session.join().expect("the power-cut filesystem's thread");
        }
    }

    /// A path on the disk.
    pub fn path(&self, name: &str) -> PathBuf {
        self.mountpoint.path().join(name)
    }

    /// The directory the disk is mounted on.
    pub fn root(&self) -> &Path {
        self.mountpoint.path()
    }

    /// Cuts the power when the `n`-th change from now is asked for (1 is the first).
    pub fn cut_at(&self, n: u64) {
        let mut s = self.state.lock().unwrap();
        s.cut_at = Some(n);
        s.cut_taken = false;
    }

    /// Changes asked for since the last cycle (with no cut set: a whole run's count).
    pub fn changes(&self) -> u64 {
        self.state.lock().unwrap().changes
    }

    /// Unmounts, keeps only what was durable, mounts again; true if the cut was met (the run was
    /// killed), false if the run asked for fewer changes and so ended on its own.
    ///
    /// The disk comes back with another device number, as a filesystem may after a reboot (the
    /// kernel would give the freed one again: a placeholder mount holds it meanwhile).
    pub fn power_cycle(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let _mounting = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let device = std::fs::metadata(self.root()).expect("the disk's root").dev();
        self.detach();
        let taken = {
            let mut s = self.state.lock().unwrap();
            s.after_power_loss();
            s.cut_at = None;
            std::mem::take(&mut s.cut_taken)
        };
        // The kernel hands out the lowest free number: placeholders take them until one has the
        // disk's old one.
        let mut placeholders = Vec::new();
        while placeholders.len() < 256 {
            let dir = tempfile::tempdir().expect("a temp dir");
            let at = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
            let mounted = unsafe {
                libc::mount(
                    c"powercut".as_ptr(),
                    at.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            assert_eq!(
                mounted,
                0,
                "mount a placeholder tmpfs: {}",
                std::io::Error::last_os_error()
            );
            let taken = std::fs::metadata(dir.path()).expect("the placeholder").dev() == device;
            placeholders.push((dir, at));
            if taken {
                break;
            }
        }
        self.attach();
        for (_dir, at) in placeholders {
            // SAFETY: umount2(2) on a NUL-terminated path that outlives the call.
            assert_eq!(unsafe { libc::umount2(at.as_ptr(), libc::MNT_DETACH) }, 0);
        }
        let now = std::fs::metadata(self.root()).expect("the disk's root").dev();
        assert_ne!(now, device, "the disk came back with its old device number");
        taken
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _mounting = MOUNTING.lock().unwrap_or_else(|e| e.into_inner());
        self.detach();
    }
}
