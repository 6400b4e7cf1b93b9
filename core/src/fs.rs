//! Files on the host: the root directory every path lives under, and the one atomic writer.
//!
//! Every file we create goes through [`AtomicFile`] (or its one-shot form [`write_atomic`]):
//! a temporary file in the destination's directory, owner and mode set before any content is
//! written, the content, `fsync`, `rename` over the destination, `fsync` of the directory. A reader
//! sees either the old file or the new one, never a truncated mix, and a process killed halfway
//! leaves at most a stray temporary file that the next run overwrites.
//!
//! [`write_atomic`] compares first and reports [`WriteOutcome::Unchanged`] when the file already
//! has the wanted bytes, mode and owner, so callers can skip needless reloads and a re-run
//! converges without touching anything.
//!
//! Several files written together ([`commit_all`], [`write_atomic_all`]) keep the same order per
//! file (content durable before its rename, directory synced after) but sync concurrently and each
//! directory once, instead of one file's syncs after another's.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An error on one path, with the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}")]
pub struct FsError {
    /// What we were doing, e.g. "write" or "rename into".
    pub op: &'static str,
    /// The path it was done to (as seen from this process, i.e. including the root).
    pub path: PathBuf,
    /// What the kernel said.
    #[source]
    pub source: io::Error,
}

impl FsError {
    /// Wraps an I/O error with the operation and path it belongs to.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The directory that stands for `/` of the host we work on.
///
/// The live host uses `HostRoot::new("/")`; tests and offline image builds pass a temp directory.
/// This is the one place that maps a host path to a path this process opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    dir: PathBuf,
}

impl HostRoot {
    /// A root at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// True when this root is the running system's `/`.
    pub fn is_live(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Maps an absolute host path (`/etc/ecs/ecs.config`) to the path under this root.
    ///
    /// Only normal components are kept: `..` and `.` are dropped, so a host path can never name
    /// something outside the root.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let mut out = self.dir.clone();
        for c in host_path.as_ref().components() {
            if let Component::Normal(part) = c {
                out.push(part);
            }
        }
        out
    }
}

/// Owner and mode of a file or directory we create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
}

impl Ownership {
    /// Owned by root:root with the given mode.
    pub const fn root(mode: u32) -> Self {
        Self {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file was created or replaced.
    Changed,
    /// The file already had this content, mode and owner; nothing was written.
    Unchanged,
}

impl WriteOutcome {
    /// True for [`WriteOutcome::Changed`].
    pub fn changed(self) -> bool {
        self == WriteOutcome::Changed
    }

    /// Combines two outcomes: changed if either changed.
    pub fn or(self, other: WriteOutcome) -> WriteOutcome {
        if self.changed() || other.changed() {
            WriteOutcome::Changed
        } else {
            WriteOutcome::Unchanged
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written next to its destination; it replaces the destination only on
/// [`AtomicFile::commit`]. Dropped without commit, the temporary file is removed.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file with its final owner and mode already set.
    ///
    /// The destination's directory must exist. Changing the owner needs `CAP_CHOWN`; when the
    /// wanted owner already is the caller's, no chown is attempted (so tests run unprivileged).
    pub fn create(dest: impl Into<PathBuf>, own: Ownership) -> Result<Self, FsError> {
        let dest = dest.into();
        let (dir, name) = split_parent(&dest)?;
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".clawster-tmp.{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = dir.join(temp_name);
        // A stale temp file of a killed run with our pid is possible after pid reuse: replace it.
        let _ = fs::remove_file(&temp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| FsError::new("create temporary file", &temp, e))?;
        let mut this = Self {
            dest,
            temp,
            file: Some(file),
        };
        this.apply_ownership(own)?;
        Ok(this)
    }

    fn apply_ownership(&mut self, own: Ownership) -> Result<(), FsError> {
        let file = self.file.as_ref().expect("file is open until commit");
        let meta = file
            .metadata()
            .map_err(|e| FsError::new("stat", &self.temp, e))?;
        if meta.uid() != own.uid || meta.gid() != own.gid {
            std::os::unix::fs::fchown(file, Some(own.uid), Some(own.gid))
                .map_err(|e| FsError::new("set owner of", &self.temp, e))?;
        }
        // fchmod after fchown: chown clears set-id bits.
        file.set_permissions(Permissions::from_mode(own.mode))
            .map_err(|e| FsError::new("set mode of", &self.temp, e))?;
        Ok(())
    }

    /// The destination path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The open temporary file, e.g. to start syncing it on another thread (`try_clone`) while the
    /// caller goes on with other work; [`commit_all`] still syncs it before the rename.
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("file is open until commit")
    }

    /// Flushes the content to disk, renames over the destination and syncs the directory.
    pub fn commit(mut self) -> Result<(), FsError> {
        let file = self.file.take().expect("file is open until commit");
        file.sync_all()
            .map_err(|e| FsError::new("fsync", &self.temp, e))?;
        drop(file);
        fs::rename(&self.temp, &self.dest)
            .map_err(|e| FsError::new("rename into", &self.dest, e))?;
        sync_parent(&self.dest)
    }
}

/// Commits several files with the guarantees of one [`AtomicFile::commit`] each, without waiting
/// for their syncs one after another: every temporary file is fsynced (concurrently, one thread per
/// file), then all are renamed over their destinations, then each distinct directory is fsynced once.
///
/// Crash safety is that of the one-file commit: no rename happens before every file's content and
/// inode are durable, so after a crash each destination holds either its old or its complete new
/// content, never a truncated mix; the directory syncs make the renames durable before this returns
/// (and so before any completion marker a caller writes afterwards). What is given up is only the
/// per-file order: a crash between two renames leaves some files new and some old, which a re-run
/// converges exactly like a crash between two separate commits did.
///
/// A failed sync renames nothing (all temporaries are removed); a failed rename leaves the files
/// before it committed (their directories unsynced, as a failed single commit would) and removes the
/// temporaries of the rest.
pub fn commit_all(mut files: Vec<AtomicFile>) -> Result<(), FsError> {
    let sync = |f: &AtomicFile| {
        f.file()
            .sync_all()
            .map_err(|e| FsError::new("fsync", &f.temp, e))
    };
    match files.as_slice() {
        [] => return Ok(()),
        [one] => sync(one)?,
        many => std::thread::scope(|s| {
            let running: Vec<_> = many.iter().map(|f| s.spawn(move || sync(f))).collect();
            running
                .into_iter()
                .map(|h| h.join().expect("fsync thread does not panic"))
                .collect::<Result<Vec<()>, FsError>>()
        })
        .map(drop)?,
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for mut f in files.drain(..) {
        drop(f.file.take());
        fs::rename(&f.temp, &f.dest).map_err(|e| FsError::new("rename into", &f.dest, e))?;
        let (dir, _) = split_parent(&f.dest)?;
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }
    for dir in dirs {
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| FsError::new("fsync directory", &dir, e))?;
    }
    Ok(())
}

impl AtomicFile {
    /// Renames over the destination without making the content durable first (no fsync of the file
    /// or the directory). Only for files whose every reader verifies them before use, such as a
    /// cache of hash-pinned downloads: after a crash such a file may be torn or empty, and the
    /// next reader refuses it. Readers see the whole new file or none of it while the host runs.
    pub fn commit_unsynced(mut self) -> Result<(), FsError> {
        drop(self.file.take());
        fs::rename(&self.temp, &self.dest).map_err(|e| FsError::new("rename into", &self.dest, e))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .expect("file is open until commit")
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("file is open until commit")
            .flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn split_parent(path: &Path) -> Result<(&Path, &std::ffi::OsStr), FsError> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            Ok((dir, name))
        }
        _ => Err(FsError::new(
            "write",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        )),
    }
}

fn sync_parent(path: &Path) -> Result<(), FsError> {
    let (dir, _) = split_parent(path)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FsError::new("fsync directory", dir, e))
}

/// True when `path` is a regular file with exactly these bytes, mode and owner.
pub fn file_matches(path: &Path, contents: &[u8], own: Ownership) -> Result<bool, FsError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FsError::new("stat", path, e)),
    };
    if !meta.file_type().is_file()
        || meta.len() != contents.len() as u64
        || meta.mode() & 0o7777 != own.mode
        || meta.uid() != own.uid
        || meta.gid() != own.gid
    {
        return Ok(false);
    }
    let mut existing = Vec::with_capacity(contents.len());
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut existing))
        .map_err(|e| FsError::new("read", path, e))?;
    Ok(existing == contents)
}

/// Writes `contents` to `path` atomically with the given owner and mode, unless the file is
/// already exactly that. The parent directory must exist.
pub fn write_atomic(path: &Path, contents: &[u8], own: Ownership) -> Result<WriteOutcome, FsError> {
    if file_matches(path, contents, own)? {
        return Ok(WriteOutcome::Unchanged);
    }
    let mut f = AtomicFile::create(path, own)?;
    f.write_all(contents)
        .map_err(|e| FsError::new("write", path, e))?;
    f.commit()?;
    Ok(WriteOutcome::Changed)
}

/// [`write_atomic`] for several files at once: each is compared first and left alone when it
/// already is exactly that; the others are committed together by [`commit_all`] (their syncs run
/// concurrently, then one sync per directory). Outcomes come in the order of `files`. Every parent
/// directory must exist.
pub fn write_atomic_all(files: &[(&Path, &[u8], Ownership)]) -> Result<Vec<WriteOutcome>, FsError> {
    let mut out = Vec::with_capacity(files.len());
    let mut staged = Vec::new();
    for &(path, contents, own) in files {
        if file_matches(path, contents, own)? {
            out.push(WriteOutcome::Unchanged);
            continue;
        }
        let mut f = AtomicFile::create(path, own)?;
        f.write_all(contents)
            .map_err(|e| FsError::new("write", path, e))?;
        staged.push(f);
        out.push(WriteOutcome::Changed);
    }
    commit_all(staged)?;
    Ok(out)
}

/// Reads a file that may be absent: `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::new("read", path, e)),
    }
}

/// Makes sure `path` is a directory with this owner and mode, creating missing parents as
/// root-owned 0755 directories. An existing non-directory at `path` is an error, never replaced.
pub fn ensure_dir(path: &Path, own: Ownership) -> Result<WriteOutcome, FsError> {
    let mut outcome = WriteOutcome::Unchanged;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        // A symlink to a directory (e.g. /lib -> usr/lib) is accepted as it is and never replaced.
        Ok(meta) if meta.file_type().is_symlink() && path.is_dir() => return Ok(outcome),
        Ok(_) => {
            return Err(FsError::new(
                "create directory",
                path,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() && !parent.exists() {
                    ensure_dir(parent, Ownership::root(0o755))?;
                }
            }
            match fs::create_dir(path) {
                Ok(()) => outcome = WriteOutcome::Changed,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) => return Err(FsError::new("create directory", path, e)),
            }
        }
        Err(e) => return Err(FsError::new("stat", path, e)),
    }
    let meta = fs::metadata(path).map_err(|e| FsError::new("stat", path, e))?;
    if meta.uid() != own.uid || meta.gid() != own.gid {
        std::os::unix::fs::chown(path, Some(own.uid), Some(own.gid))
            .map_err(|e| FsError::new("set owner of", path, e))?;
        outcome = WriteOutcome::Changed;
    }
    if meta.mode() & 0o7777 != own.mode {
        fs::set_permissions(path, Permissions::from_mode(own.mode))
            .map_err(|e| FsError::new("set mode of", path, e))?;
        outcome = WriteOutcome::Changed;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller's own uid/gid: unprivileged test runs can only "chown" to themselves.
    fn me(mode: u32) -> Ownership {
        let meta = fs::metadata("/proc/self").expect("stat /proc/self");
        Ownership {
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    #[test]
    fn host_root_never_escapes() {
        let root = HostRoot::new("/tmp/r");
        assert_eq!(
            root.path("/etc/docker/daemon.json"),
            Path::new("/tmp/r/etc/docker/daemon.json")
        );
        assert_eq!(
            root.path("/../../etc/passwd"),
            Path::new("/tmp/r/etc/passwd")
        );
        assert_eq!(root.path("etc/./x/../y"), Path::new("/tmp/r/etc/x/y"));
        assert!(HostRoot::new("/").is_live());
        assert!(!root.is_live());
    }

    #[test]
    fn write_then_rewrite_reports_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.conf");
        assert_eq!(
            write_atomic(&p, b"x=1\n", me(0o644)).expect("write"),
            WriteOutcome::Changed
        );
        assert_eq!(
            write_atomic(&p, b"x=1\n", me(0o644)).expect("write"),
            WriteOutcome::Unchanged
        );
        assert_eq!(fs::read(&p).expect("read"), b"x=1\n");
        assert_eq!(fs::metadata(&p).expect("stat").mode() & 0o7777, 0o644);
        assert_eq!(
            write_atomic(&p, b"x=2\n", me(0o644)).expect("write"),
            WriteOutcome::Changed
        );
        assert_eq!(fs::read(&p).expect("read"), b"x=2\n");
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("a.conf")]);
    }

    #[test]
    fn mode_change_alone_is_a_change_and_applies_to_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("secret");
        fs::write(&p, b"s").expect("seed");
        fs::set_permissions(&p, Permissions::from_mode(0o666)).expect("chmod");
        assert_eq!(
            write_atomic(&p, b"s", me(0o600)).expect("write"),
            WriteOutcome::Changed
        );
        assert_eq!(fs::metadata(&p).expect("stat").mode() & 0o7777, 0o600);
    }

    #[test]
    fn uncommitted_file_leaves_destination_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("daemon.json");
        fs::write(&p, b"{\"old\":true}").expect("seed");
        {
            let mut f = AtomicFile::create(&p, me(0o644)).expect("create");
            f.write_all(b"{\"half").expect("write");
            // dropped without commit, as if the caller failed halfway
        }
        assert_eq!(fs::read(&p).expect("read"), b"{\"old\":true}");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn commit_all_replaces_every_destination_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).expect("mkdir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let c = sub.join("c");
        fs::write(&a, b"old a").expect("seed");
        let mut files = Vec::new();
        for (p, text) in [(&a, "new a"), (&b, "new b"), (&c, "new c")] {
            let mut f = AtomicFile::create(p, me(0o640)).expect("create");
            f.write_all(text.as_bytes()).expect("write");
            files.push(f);
        }
        // Nothing is visible before the commit.
        assert_eq!(fs::read(&a).expect("read"), b"old a");
        assert!(!b.exists());
        commit_all(files).expect("commit");
        assert_eq!(fs::read(&a).expect("read"), b"new a");
        assert_eq!(fs::read(&b).expect("read"), b"new b");
        assert_eq!(fs::read(&c).expect("read"), b"new c");
        assert_eq!(fs::metadata(&b).expect("stat").mode() & 0o7777, 0o640);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 3);
        assert_eq!(fs::read_dir(&sub).expect("ls").count(), 1);
        commit_all(Vec::new()).expect("nothing to commit");
    }

    #[test]
    fn write_atomic_all_reports_each_file_and_converges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.service");
        let b = dir.path().join("b.service");
        fs::write(&a, b"same").expect("seed");
        fs::set_permissions(&a, Permissions::from_mode(0o644)).expect("chmod");
        let files = [
            (a.as_path(), b"same".as_slice(), me(0o644)),
            (b.as_path(), b"new".as_slice(), me(0o644)),
        ];
        assert_eq!(
            write_atomic_all(&files).expect("write"),
            vec![WriteOutcome::Unchanged, WriteOutcome::Changed]
        );
        assert_eq!(fs::read(&b).expect("read"), b"new");
        assert_eq!(
            write_atomic_all(&files).expect("rewrite"),
            vec![WriteOutcome::Unchanged, WriteOutcome::Unchanged]
        );
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 2);
        let missing = dir.path().join("nope/c");
        let err = write_atomic_all(&[(missing.as_path(), b"x".as_slice(), me(0o644))])
            .expect_err("missing parent");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn missing_parent_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("nope/x");
        let err = write_atomic(&p, b"x", me(0o644)).expect_err("must fail");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn ensure_dir_converges_and_refuses_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sysboxfs");
        let own = me(0o700);
        assert_eq!(ensure_dir(&p, own).expect("mkdir"), WriteOutcome::Changed);
        assert_eq!(ensure_dir(&p, own).expect("mkdir"), WriteOutcome::Unchanged);
        assert_eq!(fs::metadata(&p).expect("stat").mode() & 0o7777, 0o700);
        let f = dir.path().join("file");
        fs::write(&f, b"").expect("seed");
        assert!(ensure_dir(&f, own).is_err());
    }

    #[test]
    fn read_optional_distinguishes_absent() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_optional(&dir.path().join("x")).expect("read"), None);
        fs::write(dir.path().join("y"), b"1").expect("seed");
        assert_eq!(
            read_optional(&dir.path().join("y")).expect("read"),
            Some(b"1".to_vec())
        );
    }
}
