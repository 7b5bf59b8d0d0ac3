//! Every call of the engine that changes the file system goes through here: files
//! opened for writing ([`VFile`]), fsyncs, directory entries made, renamed and
//! removed, and the durable-file helpers built on them.
//!
//! One place for these calls is what lets a test see them: [`record`] makes this
//! process log each one (under a root directory) in the order the kernel saw it, and
//! the crash-consistency test (`tests/crash_fs/`) rebuilds from that log every state
//! a power cut could leave — only what was fsynced, plus any subset of the rest — to
//! check what the page cache would hide from a kill -9. Without a recorder these are
//! the plain `std::fs` calls (one uncontended atomic load more).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};

// ---------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------

/// One recorded call; paths are relative to the recorder's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEvent {
    /// A file opened for writing (created when missing; emptied with `truncate`);
    /// later events name it by `file`.
    Open {
        file: u64,
        path: PathBuf,
        truncate: bool,
    },
    Write {
        file: u64,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        file: u64,
        len: u64,
    },
    /// `fsync`/`fdatasync` of an open file.
    Sync {
        file: u64,
    },
    /// `fsync` of a file or directory opened by name.
    SyncPath {
        path: PathBuf,
    },
    CreateDir {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    RemoveFile {
        path: PathBuf,
    },
    RemoveDir {
        path: PathBuf,
    },
    /// A point in the test's workload (see [`Recorder::mark`]).
    Mark(u64),
}

/// The log of one recording.
#[derive(Debug)]
pub struct Recorder {
    root: PathBuf,
    events: Mutex<Vec<FsEvent>>,
    next_file: AtomicU64,
}

impl Recorder {
    /// Adds a workload mark: events before it happened before the mark.
    pub fn mark(&self, n: u64) {
        self.events.lock().push(FsEvent::Mark(n));
    }

    /// The events so far.
    pub fn events(&self) -> Vec<FsEvent> {
        self.events.lock().clone()
    }

    fn rel(&self, path: &Path) -> Option<PathBuf> {
        path.strip_prefix(&self.root).ok().map(Path::to_path_buf)
    }
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDER: RwLock<Option<Arc<Recorder>>> = RwLock::new(None);

/// Starts logging every call under `root` (a directory that exists) made by this
/// process; replaces an earlier recorder. A test hook: nothing in the server calls it.
pub fn record(root: &Path) -> Arc<Recorder> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let r = Arc::new(Recorder {
        root,
        events: Mutex::new(Vec::new()),
        next_file: AtomicU64::new(1),
    });
    *RECORDER.write() = Some(r.clone());
    RECORDING.store(true, Ordering::SeqCst);
    r
}

/// Stops recording.
pub fn stop_recording() {
    RECORDING.store(false, Ordering::SeqCst);
    *RECORDER.write() = None;
}

/// The recorder that covers `path`, if any.
fn recorder_for(path: &Path) -> Option<(Arc<Recorder>, PathBuf)> {
    if !RECORDING.load(Ordering::Relaxed) {
        return None;
    }
    let r = RECORDER.read().clone()?;
    let rel = r.rel(path)?;
    Some((r, rel))
}

/// Runs `op` and, when `path` is recorded, logs `event` for it under the log's lock,
/// so the log's order is the order the calls happened in.
fn logged<T>(
    path: &Path,
    op: impl FnOnce() -> io::Result<T>,
    event: impl FnOnce(PathBuf) -> FsEvent,
) -> io::Result<T> {
    let Some((r, rel)) = recorder_for(path) else {
        return op();
    };
    let mut log = r.events.lock();
    let v = op()?;
    log.push(event(rel));
    Ok(v)
}

// ---------------------------------------------------------------------------
// Files open for writing
// ---------------------------------------------------------------------------

/// A file open for writing.
#[derive(Debug)]
pub struct VFile {
    file: File,
    append: bool,
    /// Recorder and file number when recorded.
    rec: Option<(Arc<Recorder>, u64)>,
}

impl VFile {
    fn open(path: &Path, o: &OpenOptions, append: bool, truncate: bool) -> io::Result<VFile> {
        let Some((r, rel)) = recorder_for(path) else {
            return Ok(VFile {
                file: o.open(path)?,
                append,
                rec: None,
            });
        };
        let mut log = r.events.lock();
        let file = o.open(path)?;
        let id = r.next_file.fetch_add(1, Ordering::Relaxed);
        log.push(FsEvent::Open {
            file: id,
            path: rel,
            truncate,
        });
        drop(log);
        Ok(VFile {
            file,
            append,
            rec: Some((r, id)),
        })
    }

    /// Creates or empties `path` (`File::create`).
    pub fn create(path: &Path) -> io::Result<VFile> {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        Self::open(path, &o, false, true)
    }

    /// Opens `path` for appending, creating it when `create`.
    pub fn append(path: &Path, create: bool) -> io::Result<VFile> {
        let mut o = OpenOptions::new();
        o.append(true).create(create);
        Self::open(path, &o, true, false)
    }

    /// Opens an existing file for writing in place (to cut it short).
    pub fn existing(path: &Path) -> io::Result<VFile> {
        let mut o = OpenOptions::new();
        o.write(true);
        Self::open(path, &o, false, false)
    }

    /// Runs one call on this file and, when recorded, logs `event` (given the
    /// file's number) under the log's lock.
    fn logged<T>(
        &self,
        op: impl FnOnce(&File) -> io::Result<T>,
        event: impl FnOnce(u64) -> FsEvent,
    ) -> io::Result<T> {
        let Some((r, id)) = &self.rec else {
            return op(&self.file);
        };
        let mut log = r.events.lock();
        let v = op(&self.file)?;
        log.push(event(*id));
        Ok(v)
    }

    /// The file's length now.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub fn sync_all(&self) -> io::Result<()> {
        self.logged(File::sync_all, |file| FsEvent::Sync { file })
    }

    pub fn sync_data(&self) -> io::Result<()> {
        self.logged(File::sync_data, |file| FsEvent::Sync { file })
    }

    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.logged(|f| f.set_len(len), |file| FsEvent::SetLen { file, len })
    }

    /// Writes at the current position (the end, for an appending file).
    fn write_here(&self, buf: &[u8]) -> io::Result<usize> {
        // A partial write is logged as what the kernel took: the event is built
        // from the outcome, so it is pushed after the call.
        let Some((r, id)) = &self.rec else {
            return (&self.file).write(buf);
        };
        let mut log = r.events.lock();
        let offset = if self.append {
            self.file.metadata()?.len()
        } else {
            (&self.file).stream_position()?
        };
        let n = (&self.file).write(buf)?;
        log.push(FsEvent::Write {
            file: *id,
            offset,
            data: buf[..n].to_vec(),
        });
        Ok(n)
    }
}

impl Write for VFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_here(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &VFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_here(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for VFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let to_rel = recorder_for(to).map(|(_, rel)| rel);
    logged(
        from,
        || std::fs::rename(from, to),
        |from| FsEvent::Rename {
            from,
            to: to_rel.unwrap_or_else(|| to.to_path_buf()),
        },
    )
}

pub fn remove_file(path: &Path) -> io::Result<()> {
    logged(
        path,
        || std::fs::remove_file(path),
        |path| FsEvent::RemoveFile { path },
    )
}

/// `create_dir` (one level).
pub fn create_dir(path: &Path) -> io::Result<()> {
    logged(
        path,
        || std::fs::create_dir(path),
        |path| FsEvent::CreateDir { path },
    )
}

/// Removes a directory and everything in it. Recorded, it removes (and logs) one
/// entry at a time, as the kernel sees `remove_dir_all`.
pub fn remove_dir_all(path: &Path) -> io::Result<()> {
    if recorder_for(path).is_none() {
        return std::fs::remove_dir_all(path);
    }
    for e in std::fs::read_dir(path)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            remove_dir_all(&e.path())?;
        } else {
            remove_file(&e.path())?;
        }
    }
    logged(
        path,
        || std::fs::remove_dir(path),
        |path| FsEvent::RemoveDir { path },
    )
}

/// fsync of a file or directory by name.
pub fn sync_path(path: &Path) -> io::Result<()> {
    logged(
        path,
        || File::open(path).and_then(|f| f.sync_all()),
        |path| FsEvent::SyncPath { path },
    )
}

/// A new file holding `data`, not fsynced (`std::fs::write`).
pub fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = VFile::create(path)?;
    f.write_all(data)
}

// ---------------------------------------------------------------------------
// Durable helpers
// ---------------------------------------------------------------------------

/// fsync a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    sync_path(dir).map_err(|e| Error::io(dir, e))
}

/// `create_dir_all` whose new entries survive a crash: each directory it creates is
/// fsynced in its parent. Without this a new shard's directory (and the WAL in it,
/// with acknowledged writes) could vanish after a power loss.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() {
        missing.push(p);
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match create_dir(d) {
            Ok(()) => {}
            // Another thread made it meanwhile; its parent still needs the fsync.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(d, e)),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Replace `path` atomically: write a temp file, fsync it, rename, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut f = VFile::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(data).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_durable_makes_every_level() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let deep = tmp.path().join("a").join("b").join("c");
        create_dir_durable(&deep).expect("create");
        assert!(deep.is_dir());
        create_dir_durable(&deep).expect("again");
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        assert!(create_dir_durable(&file.join("sub")).is_err());
    }

    #[test]
    fn a_recording_logs_calls_under_its_root_in_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical");
        let r = record(&root);
        let other = tempfile::tempdir().expect("tempdir");
        write_file(&other.path().join("x"), b"outside").expect("write");
        create_dir_durable(&root.join("d")).expect("dir");
        write_atomic(&root.join("d/f"), b"abc").expect("atomic");
        let mut a = VFile::append(&root.join("d/f"), false).expect("append");
        a.write_all(b"de").expect("write");
        a.sync_data().expect("sync");
        remove_dir_all(&root.join("d")).expect("rm");
        r.mark(7);
        stop_recording();
        write_file(&root.join("after"), b"not logged").expect("write");
        let p = PathBuf::from;
        assert_eq!(
            r.events(),
            vec![
                FsEvent::CreateDir { path: p("d") },
                FsEvent::SyncPath { path: p("") },
                FsEvent::Open {
                    file: 1,
                    path: p("d/f.tmp"),
                    truncate: true
                },
                FsEvent::Write {
                    file: 1,
                    offset: 0,
                    data: b"abc".to_vec()
                },
                FsEvent::Sync { file: 1 },
                FsEvent::Rename {
                    from: p("d/f.tmp"),
                    to: p("d/f")
                },
                FsEvent::SyncPath { path: p("d") },
                FsEvent::Open {
                    file: 2,
                    path: p("d/f"),
                    truncate: false
                },
                FsEvent::Write {
                    file: 2,
                    offset: 3,
                    data: b"de".to_vec()
                },
                FsEvent::Sync { file: 2 },
                FsEvent::RemoveFile { path: p("d/f") },
                FsEvent::RemoveDir { path: p("d") },
                FsEvent::Mark(7),
            ]
        );
    }
}
