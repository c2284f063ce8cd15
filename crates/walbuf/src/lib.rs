//! The writer's WAL in one `pwrite` per commit: a VFS over SQLite's own. And a connection that
//! keeps its statements of static text ([`KeptConnection`], module `kept`).
//!
//! SQLite appends a commit to the WAL frame by frame, and each frame in two calls: its 24-byte
//! header, then its page. A batch of sends is ~40–200 frames, so ~80–400 `pwrite`s, and at the
//! full rate they were ~15 % of the writer's time, in the kernel (docs/BENCHMARKS.md,
//! twenty-fourth round). [`NAME`] is a VFS that is SQLite's default one for every file but a
//! WAL; a WAL's writes that follow one another in the file are held in a buffer and written
//! in one call when the commit's last frame (the one whose header carries the database size)
//! is complete. So the whole commit is in the file before `sqlite3WalFrames` goes on to publish
//! it in the WAL index, as it is without the buffer: readers, the checkpointer and the syncer's
//! `fsync` (which open the WAL themselves) see the same file at the same moments.
//!
//! Only a run of writes each starting where the last ended is held, from the WAL's header
//! (offset 0, when the log restarts) or from the end of the last write. Anything else is done
//! at once, after what is held: a frame written again in the same transaction, and the headers
//! rewritten when SQLite then redoes the transaction's checksums (the last of which is the
//! commit's, with nothing after it to trigger a write). The buffer is also written before
//! anything else is done with the file (a read, a sync, a truncation, its size, a file
//! control, closing it), so SQLite's own reads and the order of writes are as they were, and
//! once it holds [`MAX_HELD`] bytes (a commit of more than 4 MiB).
//!
//! **No spills.** [`open`] opens a connection through the VFS with `PRAGMA cache_spill=OFF`: a
//! transaction larger than the page cache keeps its pages in memory until its commit instead
//! of writing some of them to the WAL before (SQLite's `pagerStress`). So every run of writes
//! SQLite makes to the WAL ends with a commit's last frame and is written before the commit is
//! published; nothing is ever held when the connection's write lock is released. A transaction
//! that spilled and then rolled back would leave frames held after it, written at the next
//! operation, possibly over frames another process committed meanwhile: hence the pragma, and
//! the buffer is dropped, not written, when the file closes. Without `SQLITE_IOCAP_POWERSAFE_OVERWRITE`
//! (a `psow=0` URI, which the store never passes) SQLite pads a commit to a sector boundary and
//! splits its last frame around a sync: such a WAL is written straight through, unbuffered.
//! An error writing what is held is reported as `SQLITE_IOERR_WRITE`, which makes SQLite roll
//! back the whole transaction (a full disk, `SQLITE_FULL`, could roll back only a statement).
//!
//! The store opens only its writer's connection through it; the others use the default VFS.
//! This crate is the workspace's only `unsafe` code (the VFS is C's interface; and
//! [`KeptConnection`]'s `Send`, for a connection that owns statements borrowing it, and its
//! parameters bound without a copy): every other crate forbids it.

mod kept;
pub use kept::{KeptConnection, KeptStatement};

use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

/// The VFS's name.
const NAME: &CStr = c"greenlight-walbuf";

/// Bytes held before they are written, a commit not yet complete (a commit of more than 4 MiB
/// goes in several calls, all before it is published).
const MAX_HELD: usize = 4 << 20;

/// Most bytes given to the default VFS in one write: it writes at most 128 KiB − 1 a call (and
/// reports a full disk for a multiple of 128 KiB), so larger runs go in 124 KiB pieces.
const MAX_WRITE: usize = 124 << 10;

/// The WAL's frame header: 24 bytes, the database size after a commit in bytes 4–7 (zero in
/// every frame but a commit's last).
const FRAME_HEADER: usize = 24;

// Writes made to WALs opened through the VFS by the current thread: for the tests, which run
// side by side in one process.
#[cfg(test)]
thread_local! {
    static WAL_WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn wal_writes() -> u64 {
    WAL_WRITES.get()
}

fn count_write() {
    #[cfg(test)]
    WAL_WRITES.set(WAL_WRITES.get() + 1);
}

/// Opens a read-write connection (created if missing) through the VFS, with
/// `PRAGMA cache_spill=OFF` (see the module's documentation): use only this.
pub fn open(path: &str) -> Result<rusqlite::Connection, String> {
    register()?;
    let c =
        rusqlite::Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), NAME)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
    c.execute_batch("PRAGMA cache_spill=OFF")
        .map_err(|e| format!("cannot set cache_spill on {path}: {e}"))?;
    Ok(c)
}

/// Registers the VFS (once; later calls return the first one's outcome).
fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| unsafe {
            let base = ffi::sqlite3_vfs_find(ptr::null());
            if base.is_null() {
                return Err("SQLite has no default VFS".into());
            }
            let mut vfs = *base;
            vfs.szOsFile = (std::mem::size_of::<WalFile>() + (*base).szOsFile as usize) as c_int;
            vfs.zName = NAME.as_ptr();
            vfs.pNext = ptr::null_mut();
            vfs.xOpen = Some(x_open);
            // The default VFS's other methods read their own data (`pAppData`, copied) and
            // never the size of a file; `x_open` gets the default VFS from here.
            let _ = BASE.set(Base(base));
            let rc = ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0);
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(format!(
                    "registering the WAL's VFS failed (SQLite code {rc})"
                ))
            }
        })
        .clone()
}

struct Base(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects live as long as the process and are safe to use from any thread.
unsafe impl Send for Base {}
unsafe impl Sync for Base {}
static BASE: OnceLock<Base> = OnceLock::new();

/// A WAL opened through the VFS. SQLite allocates `szOsFile` bytes for it: this, then the
/// default VFS's file (`real` points there).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// Writes not yet made, contiguous, from file offset `start`.
    held: Vec<u8>,
    start: i64,
    /// Where the last write, held or made, ends.
    end: i64,
    /// The last write was a commit frame's header: its page, next, completes the commit.
    commit: bool,
    /// The file may be padded (no power-safe overwrite): every write goes straight through.
    direct: bool,
}

// The default VFS's file follows a `WalFile` in the memory SQLite allocates: it needs no more
// than 8-byte alignment.
const _: () =
    assert!(std::mem::align_of::<WalFile>() <= 8 && std::mem::size_of::<WalFile>() & 7 == 0);

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Base(base)) = BASE.get() else {
        return ffi::SQLITE_ERROR;
    };
    let base = *base;
    let Some(base_open) = (*base).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    let _ = vfs;
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Anything but a WAL is the default VFS's file itself, in the same memory.
        return base_open(base, name, file, flags, out_flags);
    }
    let w = file as *mut WalFile;
    let real = (file as *mut u8).add(std::mem::size_of::<WalFile>()) as *mut ffi::sqlite3_file;
    ptr::write(
        w,
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: ptr::null(),
            },
            real,
            held: Vec::new(),
            start: 0,
            end: -1,
            commit: false,
            direct: false,
        },
    );
    let rc = base_open(base, name, real, flags, out_flags);
    if (*real).pMethods.is_null() {
        // Nothing to close: SQLite will not call `close`, so the buffer is dropped here.
        ptr::drop_in_place(w);
    } else {
        (*w).base.pMethods = &METHODS;
        let characteristics = (*(*real).pMethods)
            .xDeviceCharacteristics
            .map_or(0, |x| x(real));
        (*w).direct = characteristics & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE == 0;
    }
    rc
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (&'a mut WalFile, &'a ffi::sqlite3_io_methods) {
    let w = &mut *(file as *mut WalFile);
    let m = &*(*w.real).pMethods;
    (w, m)
}

/// Writes what is held, if anything. A failure is `SQLITE_IOERR_WRITE` whatever the cause, so
/// that SQLite rolls back the transaction whose frames these were, and what is held is dropped.
unsafe fn flush(w: &mut WalFile, m: &ffi::sqlite3_io_methods) -> c_int {
    w.commit = false;
    if w.held.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some(x_write) = m.xWrite else {
        w.held.clear();
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut rc = ffi::SQLITE_OK;
    let mut at = w.start;
    for chunk in w.held.chunks(MAX_WRITE) {
        count_write();
        rc = x_write(w.real, chunk.as_ptr().cast(), chunk.len() as c_int, at);
        if rc != ffi::SQLITE_OK {
            rc = ffi::SQLITE_IOERR_WRITE;
            break;
        }
        at += chunk.len() as i64;
    }
    w.held.clear();
    if w.held.capacity() > MAX_HELD {
        w.held.shrink_to(MAX_HELD);
    }
    rc
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    let (w, m) = parts(file);
    if w.direct || buf.is_null() || amt <= 0 {
        return match m.xWrite {
            Some(x) => x(w.real, buf, amt, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        };
    }
    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), amt as usize);
    let end = offset + bytes.len() as i64;
    let follows = if w.held.is_empty() {
        // A run starts where the last write ended (the next frame) or at the WAL's header
        // (a restart). Anything else, such as a header written again when a transaction's
        // checksums are redone, is written now: nothing may follow it before the commit
        // is published.
        offset == w.end || offset == 0
    } else {
        offset == w.start + w.held.len() as i64
    };
    // A commit's last frame header: the next write, its page, completes the commit.
    let commit = bytes.len() == FRAME_HEADER && bytes[4..8] != [0; 4];
    if !follows {
        let rc = flush(w, m);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        w.end = end;
        w.commit = commit;
        let Some(x_write) = m.xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        count_write();
        return x_write(w.real, buf, amt, offset);
    }
    if w.held.is_empty() {
        w.start = offset;
    }
    w.held.extend_from_slice(bytes);
    w.end = end;
    let complete = w.commit;
    w.commit = commit;
    if complete || w.held.len() >= MAX_HELD {
        let rc = flush(w, m);
        // a commit's header that filled the buffer: its page, next, still completes it
        w.commit = commit;
        return rc;
    }
    ffi::SQLITE_OK
}

/// Writes what is held, then runs `f` on the default VFS's file.
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    f: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> c_int,
) -> c_int {
    let (w, m) = parts(file);
    let rc = flush(w, m);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    f(w.real, m)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let (w, m) = parts(file);
    // Nothing held at a close was committed (see the module's documentation): dropped.
    let closed = match m.xClose {
        Some(x) => x(w.real),
        None => ffi::SQLITE_OK,
    };
    ptr::drop_in_place(file as *mut WalFile);
    closed
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    flushed(file, |real, m| match m.xRead {
        Some(x) => x(real, buf, amt, offset),
        None => ffi::SQLITE_IOERR_READ,
    })
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    flushed(file, |real, m| match m.xTruncate {
        Some(x) => x(real, size),
        None => ffi::SQLITE_IOERR_TRUNCATE,
    })
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    flushed(file, |real, m| match m.xSync {
        Some(x) => x(real, flags),
        None => ffi::SQLITE_IOERR_FSYNC,
    })
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    flushed(file, |real, m| match m.xFileSize {
        Some(x) => x(real, size),
        None => ffi::SQLITE_IOERR_FSTAT,
    })
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    flushed(file, |real, m| match m.xFileControl {
        Some(x) => x(real, op, arg),
        None => ffi::SQLITE_NOTFOUND,
    })
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (w, m) = parts(file);
    m.xLock.map_or(ffi::SQLITE_OK, |x| x(w.real, level))
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (w, m) = parts(file);
    m.xUnlock.map_or(ffi::SQLITE_OK, |x| x(w.real, level))
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (w, m) = parts(file);
    match m.xCheckReservedLock {
        Some(x) => x(w.real, out),
        None => {
            *out = 0;
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (w, m) = parts(file);
    m.xSectorSize.map_or(4096, |x| x(w.real))
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (w, m) = parts(file);
    m.xDeviceCharacteristics.map_or(0, |x| x(w.real))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn open(path: &std::path::Path) -> Connection {
        let c = super::open(path.to_str().unwrap()).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;",
        )
        .unwrap();
        c
    }

    /// What a crash would leave: the database and its WAL as they are in the file system now,
    /// copied elsewhere and opened there (SQLite recovers the WAL, checking every frame's
    /// checksum, up to the last valid commit).
    fn after_a_crash(path: &std::path::Path) -> (i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.sqlite");
        std::fs::copy(path, &copy).unwrap();
        let wal = |p: &std::path::Path| format!("{}-wal", p.display());
        std::fs::copy(wal(path), wal(&copy)).unwrap();
        let c = Connection::open(&copy).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        total(&c)
    }

    fn total(c: &Connection) -> (i64, i64) {
        c.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(v)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_commit_of_many_pages_is_one_write_and_others_see_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let w = open(&path);
        w.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
        let other = Connection::open(&path).unwrap();
        assert_eq!(total(&other), (0, 0));
        // ~50 pages in one commit. Other tests in the process write WALs too: the count of
        // writes is checked over several commits, against the least it could be.
        let before = wal_writes();
        for round in 0..5 {
            w.execute_batch("BEGIN").unwrap();
            for k in 0..50 {
                w.execute(
                    "INSERT INTO t (k, v) VALUES (?1, zeroblob(4000))",
                    [round * 50 + k],
                )
                .unwrap();
            }
            w.execute_batch("COMMIT").unwrap();
            // committed means in the file: a connection of the default VFS reads it, and so
            // does a copy of the files
            let expected = ((round + 1) * 50, (round + 1) * 50 * 4000);
            assert_eq!(total(&other), expected);
            assert_eq!(after_a_crash(&path), expected);
        }
        let writes = wal_writes() - before;
        assert!(writes >= 5, "each commit writes: {writes}");
        assert!(
            writes < 5 * 50,
            "~50 frames a commit in {writes} writes: not held"
        );
    }

    #[test]
    fn transactions_larger_than_the_cache_never_spill_and_roll_back_without_a_trace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let w = open(&path);
        // a page cache of 10 pages, and a transaction of ~2,000: nothing reaches the WAL
        // before the commit (SQLite would spill without `cache_spill=OFF`)
        w.execute_batch("PRAGMA cache_size=10; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
        let before = wal_writes();
        w.execute_batch("BEGIN").unwrap();
        for k in 0..2_000 {
            w.execute("INSERT INTO t (k, v) VALUES (?1, zeroblob(3000))", [k])
                .unwrap();
        }
        w.execute("UPDATE t SET v = zeroblob(3001) WHERE k % 7 = 0", [])
            .unwrap();
        assert_eq!(wal_writes(), before, "spilled before the commit");
        w.execute_batch("COMMIT").unwrap();
        let expected = (2_000, 2_000 * 3000 + 286);
        let other = Connection::open(&path).unwrap();
        assert_eq!(total(&other), expected);
        assert_eq!(after_a_crash(&path), expected);
        // a large transaction rolled back leaves nothing, and the next commit is whole
        w.execute_batch("BEGIN").unwrap();
        for k in 2_000..3_000 {
            w.execute("INSERT INTO t (k, v) VALUES (?1, zeroblob(3000))", [k])
                .unwrap();
        }
        let before = wal_writes();
        w.execute_batch("ROLLBACK").unwrap();
        assert_eq!(wal_writes(), before, "nothing of it was written");
        assert_eq!(total(&other), expected);
        w.execute("INSERT INTO t (k, v) VALUES (5000, zeroblob(10))", [])
            .unwrap();
        assert_eq!(total(&other), (2_001, expected.1 + 10));
        assert_eq!(after_a_crash(&path), (2_001, expected.1 + 10));
        // the WAL read back from the file alone (recovery): everything committed is there
        drop(other);
        drop(w);
        let again = Connection::open(&path).unwrap();
        let ok: String = again
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        assert_eq!(total(&again), (2_001, expected.1 + 10));
    }

    #[test]
    fn a_wal_that_restarts_after_a_checkpoint_is_written_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let w = open(&path);
        w.execute_batch(
            "PRAGMA journal_size_limit=0; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)",
        )
        .unwrap();
        let checkpointer = Connection::open(&path).unwrap();
        for round in 0..4i64 {
            for k in 0..20 {
                w.execute(
                    "INSERT INTO t (k, v) VALUES (?1, zeroblob(2000))",
                    [round * 20 + k],
                )
                .unwrap();
            }
            let (busy, _, _): (i64, i64, i64) = checkpointer
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
            assert_eq!(busy, 0);
        }
        assert_eq!(total(&checkpointer), (80, 80 * 2000));
        drop(w);
        drop(checkpointer);
        let again = Connection::open(&path).unwrap();
        assert_eq!(total(&again), (80, 80 * 2000));
    }
}
