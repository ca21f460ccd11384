//! Output files that appear under their final name complete or not at all.
//!
//! Data goes to a hidden temporary file in the destination directory (same file system, so the
//! final `rename` is atomic); `commit` flushes, syncs and renames it. Dropping an uncommitted
//! [`AtomicFile`] (an error, a panic) removes the temporary file. A `kill -9` cannot be
//! cleaned up after by the process that dies: it leaves a hidden `.name.XXXXXX.tmp` file
//! behind, never a truncated file under the real name. The next successful commit of the same
//! name removes such leftovers, so a retry that succeeds leaves the directory clean.
//!
//! Modes: the finished file is `0o666` less the process's umask (0644 under the usual 022),
//! as `File::create` would make it, not the 0600 a temporary file gets by default: the people
//! and jobs that read predictions and metrics do not run as the task's uid. Directories are
//! `0o777` less the umask (0755). A stricter umask (077) is respected: 0600 and 0700. The
//! umask is never read: the kernel applies it to the mode the file is created with.
//!
//! Should two writers of one name overlap (an orphaned task container still running beside
//! its retry), the later commit wins the name; the earlier one may find its temporary file
//! removed and fail with an error instead of replacing the file. Either way the file under
//! the real name is always complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::DataError;

/// A temporary file of NAME is `.NAME.` ([`temp_prefix`]), [`RANDOM_LEN`] letters or digits,
/// then this suffix.
const TEMP_SUFFIX: &str = ".tmp";
const RANDOM_LEN: usize = 6;

fn temp_prefix(name: &str) -> String {
    format!(".{name}.")
}

/// A file being written; see the module documentation.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    out: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path`, creating its parent directory if it does not exist yet.
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let dir = parent_dir(path);
        ensure_dir(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = temp_prefix(&name);
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(TEMP_SUFFIX)
            .rand_bytes(RANDOM_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Created with this mode, less the umask; the rename keeps it.
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder
            .tempfile_in(dir)
            .map_err(|source| DataError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, temp),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the temporary file to the final path.
    pub fn commit(self) -> Result<(), DataError> {
        let path = self.path;
        let write_err = |source| DataError::Write {
            path: path.clone(),
            source,
        };
        let temp = self
            .out
            .into_inner()
            .map_err(|e| write_err(e.into_error()))?;
        temp.as_file().sync_all().map_err(write_err)?;
        temp.persist(&path).map_err(|e| write_err(e.error))?;
        remove_leftovers(&path);
        // Make the rename itself durable; failing to sync a directory is not worth failing for.
        if let Ok(dir) = File::open(parent_dir(&path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Removes temporary files of `path`'s name left by writers that were killed before they
/// could commit or clean up. Best effort: the committed file is what matters, so a leftover
/// that cannot be removed is not an error.
fn remove_leftovers(path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        if is_temp_of(&entry.file_name().to_string_lossy(), name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `candidate` is a temporary file [`AtomicFile::create`] makes for `name`.
fn is_temp_of(candidate: &str, name: &str) -> bool {
    candidate
        .strip_prefix(temp_prefix(name).as_str())
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|random| {
            random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes a small file (model, parameters, metrics) atomically in one call.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    file.commit()
}

/// Removes `path` if it is there (a file missing is not an error), then syncs its directory,
/// so that the removal reaches the disk before a rename that follows it. A stage that
/// replaces a pair of files where the second vouches for the first (`ml-predict`'s
/// `provenance.json` for `predictions.csv`) removes the second before it replaces the first:
/// whatever instant the machine stops, no old voucher stands next to a new file.
pub fn remove_if_exists(path: &Path) -> Result<(), DataError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(DataError::Remove {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    File::open(parent_dir(path))
        .and_then(|dir| dir.sync_all())
        .map_err(|source| DataError::Remove {
            path: path.to_path_buf(),
            source,
        })
}

/// Creates `dir` (and its parents) if needed, with an error that names it. New directories
/// get `0o777` less the umask.
pub fn ensure_dir(dir: &Path) -> Result<(), DataError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| DataError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_and_drop_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/out.csv");
        let mut f = AtomicFile::create(&path).expect("create");
        f.write_all(b"a\n1\n").expect("write");
        assert!(!path.exists());
        f.commit().expect("commit");
        assert_eq!(std::fs::read(&path).expect("read"), b"a\n1\n");

        let other = dir.path().join("sub/other.csv");
        let mut f = AtomicFile::create(&other).expect("create");
        f.write_all(b"partial").expect("write");
        drop(f);
        assert_eq!(names(&dir.path().join("sub")), vec!["out.csv"]);
    }

    #[test]
    fn commit_removes_what_a_killed_writer_left_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.bin");
        // What `kill -9` during a write leaves: an uncommitted temporary file, never cleaned up.
        let killed = AtomicFile::create(&path).expect("create");
        let (_, left) = killed
            .out
            .into_inner()
            .expect("flush")
            .keep()
            .expect("keep");
        assert!(is_temp_of(
            &left.file_name().expect("name").to_string_lossy(),
            "model.bin"
        ));
        // Files that only look alike belong to other names and stay.
        let others = [
            ".model.bin.x.AbC123.tmp",
            ".model.bin.AbC12.tmp",
            ".model.bin.AbC-23.tmp",
            "model.bin.AbC123.tmp",
            ".params.json.AbC123.tmp",
        ];
        for other in others {
            std::fs::write(dir.path().join(other), b"x").expect("write");
        }
        write_atomic(&path, b"model").expect("write");
        assert!(!left.exists(), "leftover {} not removed", left.display());
        let mut expected: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        expected.push("model.bin".into());
        expected.sort();
        assert_eq!(names(dir.path()), expected);
    }

    /// What the umask leaves of `0o777`, read from a directory made by `create_dir` (the
    /// same rule the writer relies on).
    #[cfg(unix)]
    fn umask_allows(dir: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.join("probe");
        std::fs::create_dir(&probe).expect("mkdir");
        let mode = std::fs::metadata(&probe)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        std::fs::remove_dir(&probe).expect("rmdir");
        mode
    }

    #[cfg(unix)]
    #[test]
    fn files_are_readable_by_others_unless_the_umask_says_no() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let allowed = umask_allows(dir.path());
        let path = dir.path().join("new/sub/model.bin");
        write_atomic(&path, b"model").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o666 & allowed);
        assert_eq!(mode(&dir.path().join("new")), allowed);
        assert_eq!(mode(&dir.path().join("new/sub")), allowed);
        // Replacing a file gives the new one the same rule, whatever the old one had.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        write_atomic(&path, b"model 2").expect("write");
        assert_eq!(mode(&path), 0o666 & allowed);
    }

    #[test]
    fn remove_if_exists_removes_once_and_names_what_it_cannot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("provenance.json");
        write_atomic(&path, b"{}").expect("write");
        remove_if_exists(&path).expect("remove");
        assert!(!path.exists());
        remove_if_exists(&path).expect("already gone is fine");
        std::fs::create_dir_all(path.join("in-the-way")).expect("mkdir");
        let err = remove_if_exists(&path).expect_err("a directory is not removed");
        assert!(
            err.to_string().ends_with("provenance.json: cannot remove"),
            "{err}"
        );
        assert!(path.is_dir());
    }

    #[test]
    fn output_dir_that_is_a_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"").expect("write");
        let err = write_atomic(&blocker.join("model.bin"), b"x").expect_err("must fail");
        assert!(err.to_string().contains("blocker"), "{err}");
    }
}
