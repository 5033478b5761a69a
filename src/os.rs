//! What the process settles with the OS before a run: file descriptors, a file size limit, and
//! what happens when threads or memory run out (the binary's allocator is [`ExitOnOutOfMemory`]).
//!
//! `main` calls [`prepare`] first. Each part turns a limit that would crash or hang a run
//! (`ulimit -n`, `-f`, `-v`) into an ordinary error with an exit code and a message.

use std::io;

use crate::error::Exit;

/// Descriptors a run may hold at once: stdin and stdout copies, OUTPUT, rejects, checkpoint and
/// report temporaries, a directory, the runtime's epoll, eventfd and signal pipe, with room.
const DESCRIPTORS_NEEDED: usize = 24;

/// The system allocator, ending the process with [`Exit::OsError`] and a message when memory
/// runs out (`ulimit -v`), where Rust's default would abort with a signal.
pub struct ExitOnOutOfMemory;

// SAFETY: every call is passed on to the system allocator unchanged; only a null result (which
// the caller would get anyway) ends the process instead.
unsafe impl std::alloc::GlobalAlloc for ExitOnOutOfMemory {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees are passed on as they are.
        let ptr = unsafe { std::alloc::System.alloc(layout) };
        if ptr.is_null() {
            out_of_memory(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's guarantees are passed on as they are.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees are passed on as they are.
        let ptr = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if ptr.is_null() {
            out_of_memory(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees are passed on as they are.
        let new = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if new.is_null() {
            out_of_memory(new_size);
        }
        new
    }
}

/// Says so on stderr and exits 71, allocating nothing (there is no memory to allocate).
fn out_of_memory(size: usize) -> ! {
    let mut digits = itoa::Buffer::new();
    let parts: [&[u8]; 3] = [
        b"ingest: error: out of memory (allocating ",
        digits.format(size).as_bytes(),
        b" bytes)\nhint: raise the limit on memory (ulimit -v); records not yet committed are lost\n",
    ];
    for part in parts {
        // SAFETY: writes a buffer that lives across the call to descriptor 2; errors ignored.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: ends the process at once; nothing here needs cleaning up.
    unsafe { libc::_exit(Exit::OsError as i32) }
}

/// Prepares the process for a run.
///
/// # Errors
/// A message when too few file descriptors are left for a run.
pub fn prepare() -> Result<(), String> {
    // One malloc arena for all threads: each extra arena reserves 64 MiB of address space,
    // which under `ulimit -v` fails deep inside glibc; the hot path hardly allocates anyway.
    // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // A file size limit (`ulimit -f`) would kill us by SIGXFSZ, tearing a record and saying
    // nothing; ignored, the write fails with EFBIG, which the writer reports and cleans up.
    // SAFETY: setting a signal's disposition to "ignore" touches no memory of ours.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    raise_descriptor_limit();
    check_descriptors()?;
    exit_when_resources_run_out();
    Ok(())
}

/// Raises the soft limit on open files to the hard one, as most servers do; best effort.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct passed, which lives here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Takes (and gives back) the descriptors a run needs, so that running out is said up front
/// instead of as a panic deep in the runtime.
fn check_descriptors() -> Result<(), String> {
    let mut held = Vec::with_capacity(DESCRIPTORS_NEEDED);
    while held.len() < DESCRIPTORS_NEEDED {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                return Err(format!(
                    "too few file descriptors: a run needs {DESCRIPTORS_NEEDED} more than are open, only {} are left: raise the limit (ulimit -n)",
                    held.len()
                ));
            }
            // Without /dev/null (a bare chroot) the check cannot be made; the run will tell.
            Err(_) => break,
        }
    }
    Ok(())
}

/// When the runtime cannot start a thread (`ulimit -v`, `-u`), it panics on one of its own
/// threads, where nothing catches it, and the run would hang. Such a panic ends the process at
/// once with [`Exit::OsError`]; every other panic goes on to the stage that reports it.
fn exit_when_resources_run_out() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_out_of_resources(message) {
            crate::logging::print_line(&format!(
                "ingest: error: out of system resources: {message}\nhint: raise the limits on memory and processes (ulimit -v, ulimit -u); records not yet committed are lost"
            ));
            std::process::exit(Exit::OsError as i32);
        }
        default(info);
    }));
}

/// The panics of the runtime and of std when the OS refuses a thread, its stack, memory or a
/// descriptor.
fn is_out_of_resources(message: &str) -> bool {
    let refused = [libc::EAGAIN, libc::ENOMEM, libc::EMFILE, libc::ENFILE]
        .map(|errno| io::Error::from_raw_os_error(errno).to_string());
    (message.contains("spawn") && message.contains("thread"))
        || refused.iter().any(|text| message.contains(text.as_str()))
        || message.contains("Too many open files")
}

/// This machine's host name, for the `Ingest-Source` header; `localhost` if it has none.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if ok && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

/// Waits up to `timeout` for `fd` to have something to read (or its end, or an error): false
/// when it stayed quiet. A regular file is always ready.
pub fn wait_readable(fd: std::os::fd::RawFd, timeout: std::time::Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd, for the length given; the fd is only polled, never closed here.
    let ready = unsafe { libc::poll(&raw mut poll, 1, ms) };
    ready != 0
}

/// The size of the regular file `fd` and its last modification (Unix nanoseconds); `None` for
/// anything else (a pipe).
pub fn size_and_mtime(fd: std::os::fd::RawFd) -> Option<(u64, i64)> {
    // SAFETY: a zeroed stat is a valid value to be overwritten; fstat only looks at the
    // descriptor, which the caller keeps open.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &raw mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    Some((
        stat.st_size as u64,
        stat.st_mtime * 1_000_000_000 + stat.st_mtime_nsec,
    ))
}

/// True when a file last written at `mtime_ns` (Unix nanoseconds) was written less than `ago`
/// before now.
pub fn written_within(mtime_ns: i64, ago: std::time::Duration) -> bool {
    quiet_in(mtime_ns, ago).is_some()
}

/// How long until a file last written at `mtime_ns` has been quiet for `quiet`; `None` when
/// it has been already.
pub fn quiet_in(mtime_ns: i64, quiet: std::time::Duration) -> Option<std::time::Duration> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let since = u64::try_from(now - i128::from(mtime_ns)).unwrap_or(0);
    quiet
        .checked_sub(std::time::Duration::from_nanos(since))
        .filter(|d| !d.is_zero())
}

/// True when `dir` is on a file system whose files another machine may change (NFS, SMB, a
/// FUSE or cluster file system): inotify tells only of this machine's changes there.
pub fn is_remote(dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const REMOTE: [i64; 9] = [
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x6573_5546, // FUSE
        0x0102_1997, // 9P
        0x00C3_6400, // Ceph
        0x4734_5350, // GPFS
        0x5346_414F, // AFS
    ];
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid value to be overwritten; statfs only writes to it.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statfs of the right size.
    if unsafe { libc::statfs(path.as_ptr(), &raw mut fs) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    REMOTE.contains(&(fs.f_type as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtimes_resource_panics_are_recognised_and_bugs_are_not() {
        assert!(is_out_of_resources(
            "OS can't spawn worker thread: Resource temporarily unavailable (os error 11)"
        ));
        assert!(is_out_of_resources(
            "failed to create UnixStream: Os { code: 24, kind: Uncategorized, message: \"Too many open files\" }"
        ));
        assert!(is_out_of_resources(
            "failed to allocate an alternative stack: Cannot allocate memory (os error 12)"
        ));
        assert!(!is_out_of_resources(
            "index out of bounds: the len is 3 but the index is 7"
        ));
    }
}
