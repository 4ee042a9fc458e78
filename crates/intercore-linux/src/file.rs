//! Reading a file the user named as firmware or configuration: bounded, only if it is a
//! regular file, and sniffed ([`read_regular_magic`]) before it is read whole; and
//! creating the files intercore writes ([`create_output`]) without following links,
//! opening FIFOs or devices, or replacing what intercore did not write.
//!
//! `std::fs::read` on `/dev/zero` reads until memory runs out, and on a FIFO blocks until a
//! writer appears. Firmware is looked up like the kernel's firmware loader does
//! (`drivers/base/firmware_loader/main.c` reads with `kernel_read_file`, which refuses
//! anything but a regular file: `S_ISREG`), and Debian's `/lib/firmware` is full of
//! symbolic links, so links are followed and the target must be a regular file.
//!
//! [`read_regular`] checks the target with `stat` *before* opening it (opening some device
//! nodes has effects: a watchdog starts counting, a tape rewinds), opens it with
//! `O_NONBLOCK` (a FIFO swapped in after the check cannot block the open), checks again on
//! the open descriptor with `fstat` (the file that is read is the file that was checked),
//! and reads at most `max + 1` bytes, so a file growing while it is read is still caught.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest firmware image read: 256 MiB. Remote-core images are kilobytes to a few
/// megabytes (the largest files in Debian's `/lib/firmware` are tens of MiB); the
/// kernel's own limit is `INT_MAX`. The cap keeps a wrong path from reading gigabytes.
pub const FIRMWARE_MAX: u64 = 256 << 20;

/// Largest configuration (board) file read: 1 MiB.
pub const CONFIG_MAX: u64 = 1 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum FileError {
    /// The path (after following links) is not a regular file.
    NotRegular {
        /// The path as given.
        path: PathBuf,
        /// What it is (`a FIFO`, `a character device`, ...).
        kind: &'static str,
    },
    /// Larger than the cap.
    TooLarge {
        /// The path as given.
        path: PathBuf,
        /// Its size, or `max + 1` if it grew while being read.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Refused for what it is: an output path that is a symbolic link, or exists and is not
    /// intercore's to replace; an input that does not start as its kind must.
    Refused {
        /// The path as given.
        path: PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// An I/O error (no such file, permission, a dangling link, ...).
    Io {
        /// The path as given.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl FileError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::NotRegular { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::Refused { path, .. }
            | FileError::Io { path, .. } => path,
        }
    }
}

impl FileError {
    /// What is wrong, without the path.
    pub fn reason(&self) -> String {
        match self {
            FileError::NotRegular { kind, .. } => format!(
                "is {kind}, not a regular file (symbolic links are followed; the target must be a regular file)"
            ),
            FileError::TooLarge { size, max, .. } => {
                format!("{size} bytes is more than the {} MiB this reads", max >> 20)
            }
            FileError::Refused { why, .. } => why.clone(),
            FileError::Io { source, .. } => source.to_string(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn kind_of(m: &Metadata) -> Option<&'static str> {
    let t = m.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    })
}

/// Opens `path` (following symbolic links) for reading if it is a regular file of at most
/// `max` bytes: checked with `stat` before the open and with `fstat` after it.
fn open_regular(path: &Path, max: u64) -> Result<File, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let check = |m: &Metadata| -> Result<(), FileError> {
        if let Some(kind) = kind_of(m) {
            return Err(FileError::NotRegular {
                path: path.to_path_buf(),
                kind,
            });
        }
        if m.len() > max {
            return Err(FileError::TooLarge {
                path: path.to_path_buf(),
                size: m.len(),
                max,
            });
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    check(&f.metadata().map_err(io)?)?;
    Ok(f)
}

/// Reads `path` (following symbolic links) if it is a regular file of at most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = open_regular(path, max)?;
    let mut out = Vec::with_capacity(f.metadata().map_err(io)?.len() as usize);
    f.take(max + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > max {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: max + 1,
            max,
        });
    }
    Ok(out)
}

/// As [`read_regular`], but refused before the rest is read unless the file starts with
/// `magic` (`wrong` begins the error then: "ELF magic (not an ELF file) at offset 0x0"). A
/// 256 MiB file of the wrong kind costs one read of `magic.len()` bytes.
pub fn read_regular_magic(
    path: &Path,
    max: u64,
    magic: &[u8],
    wrong: &str,
) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = open_regular(path, max)?;
    let mut head = vec![0u8; magic.len()];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    if head[..got] != *magic {
        let hex = |b: &[u8]| {
            b.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(FileError::Refused {
            path: path.to_path_buf(),
            why: format!(
                "{wrong}: it starts with [{}], expected [{}] (nothing more was read)",
                hex(&head[..got]),
                hex(magic)
            ),
        });
    }
    let mut out = head;
    out.reserve(f.metadata().map_err(io)?.len() as usize);
    (&mut f)
        .take(max + 1 - got as u64)
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > max {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: max + 1,
            max,
        });
    }
    Ok(out)
}

/// What [`create_output`] does when the path exists as a regular file (a symbolic link,
/// FIFO, device, socket or directory there is always refused).
#[derive(Debug, Clone, Copy)]
pub enum Existing<'a> {
    /// Refuse: the file is not intercore's.
    Refuse,
    /// Replace it only if it starts with these bytes (intercore's own earlier output,
    /// recognised by the header it writes); refuse otherwise.
    ReplaceIfStartsWith(&'a [u8]),
    /// Replace it (intercore's own file in its own directory, or the user said `--force`).
    Replace,
}

/// Creates `path` for writing, safely: a new file is created with `O_CREAT | O_EXCL |
/// O_NOFOLLOW` (mode 0644 before the umask), so nothing is written through a symbolic link
/// and no FIFO or device is opened; an existing regular file is replaced (truncated, as the
/// same inode) only as `existing` allows, and only if it is not a hard link of another name
/// and is owned by this user. Returns the file and whether it was created (a caller that
/// fails later removes only a file it created).
pub fn create_output(path: &Path, existing: Existing<'_>) -> Result<(File, bool), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |why: String| FileError::Refused {
        path: path.to_path_buf(),
        why,
    };
    match File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => return Ok((f, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let m = std::fs::symlink_metadata(path).map_err(io)?;
    if m.file_type().is_symlink() {
        return Err(refuse(
            "is a symbolic link; intercore does not write through links (name the target itself, or another path)".into(),
        ));
    }
    if let Some(kind) = kind_of(&m) {
        return Err(refuse(format!(
            "exists and is {kind}; intercore writes only regular files"
        )));
    }
    if matches!(existing, Existing::Refuse) {
        return Err(refuse(
            "exists and intercore did not write it; refusing to replace it (remove it, or name another path)".into(),
        ));
    }
    let mut f = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let m = f.metadata().map_err(io)?;
    if let Some(kind) = kind_of(&m) {
        return Err(refuse(format!(
            "exists and is {kind}; intercore writes only regular files"
        )));
    }
    use std::os::unix::fs::MetadataExt;
    if m.nlink() != 1 {
        return Err(refuse(format!(
            "has {} hard links; replacing it would change the other names too (remove it first)",
            m.nlink()
        )));
    }
    // The owner of /proc/self is this process's effective uid (proc(5)).
    let me = std::fs::metadata("/proc/self").map_err(io)?.uid();
    if m.uid() != me {
        return Err(refuse(format!(
            "belongs to uid {}, not to this user; refusing to replace it",
            m.uid()
        )));
    }
    if let Existing::ReplaceIfStartsWith(head) = existing {
        let mut got = vec![0u8; head.len()];
        let n = (&mut f)
            .take(head.len() as u64)
            .read(&mut got)
            .map_err(io)?;
        if got[..n] != *head {
            return Err(refuse(
                "exists and intercore did not write it; refusing to replace it (remove it, or name another path)".into(),
            ));
        }
    }
    f.set_len(0).map_err(io)?;
    use std::io::Seek;
    f.rewind().map_err(io)?;
    Ok((f, false))
}

/// As [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path, max: u64) -> Result<String, FileError> {
    String::from_utf8(read_regular(path, max)?).map_err(|_| FileError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// Makes `path` free for a new listening socket without destroying anything that is not
/// ours to destroy: nothing there is fine; a socket nobody listens on (a connection is
/// refused: `ECONNREFUSED`, what Linux's `unix_find_other` gives for a socket file with no
/// listener) is a stale one left by an earlier run and is removed; a socket someone
/// listens on, or anything else (a regular file, a directory, a symbolic link), is an
/// error naming the path and ending with `hint` (what to do instead), and is left as it
/// was. Used by `intercore vhost-user` and the link owner of `intercore up`.
pub fn clear_stale_socket(path: &Path, hint: &str) -> io::Result<()> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
    };
    let t = m.file_type();
    if !t.is_socket() {
        let what = if t.is_file() {
            "a regular file"
        } else if t.is_dir() {
            "a directory"
        } else if t.is_symlink() {
            "a symbolic link"
        } else {
            "not a socket"
        };
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: exists and is {what}; refusing to replace it with a socket \
                 (remove it yourself, or {hint})",
                path.display()
            ),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{}: another process is listening on this socket; {hint}",
                path.display()
            ),
        )),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => std::fs::remove_file(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{}: removing the stale socket: {e}", path.display()),
                )
            }),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "{}: cannot tell whether this socket is in use: {e}",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/dev/zero` (a character device) and a FIFO with no writer are refused at once,
    /// before any read; a symbolic link to a regular file is followed; a file over the cap
    /// is refused by size.
    #[test]
    fn only_bounded_regular_files() {
        let e = read_regular(Path::new("/dev/zero"), FIRMWARE_MAX).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let dir = std::env::temp_dir().join(format!("intercore-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        crate::sys::fd::mkfifo(&c, 0o600).unwrap();
        let e = read_regular(&fifo, FIRMWARE_MAX).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let file = dir.join("fw.elf");
        std::fs::write(&file, b"0123456789").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_regular(&link, 10).unwrap(), b"0123456789");
        let e = read_regular(&link, 9).unwrap_err();
        assert!(matches!(e, FileError::TooLarge { size: 10, .. }), "{e:?}");
        let e = read_regular(&dir, 9).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let e = read_regular(&dir.join("missing"), 9).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 20.8: an output is created new without following a link; a link, a FIFO, a
    /// hard-linked file and a file intercore did not write are refused and left as they
    /// were; an earlier output (its header) or, when told, any regular file of ours is
    /// replaced as the same inode; an input of the wrong kind is refused by its magic.
    #[test]
    fn outputs_are_created_safely_and_inputs_sniffed() {
        let dir = std::env::temp_dir().join(format!("intercore-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new.svg");
        let (mut f, created) = create_output(&new, Existing::Refuse).unwrap();
        assert!(created);
        std::io::Write::write_all(&mut f, b"HEAD old plot").unwrap();
        drop(f);
        let e = create_output(&new, Existing::Refuse).unwrap_err();
        assert!(e.to_string().contains("did not write"), "{e}");
        let e = create_output(&new, Existing::ReplaceIfStartsWith(b"OTHER")).unwrap_err();
        assert!(e.to_string().contains("did not write"), "{e}");
        let (_, created) = create_output(&new, Existing::ReplaceIfStartsWith(b"HEAD")).unwrap();
        assert!(!created);
        assert_eq!(std::fs::read(&new).unwrap(), b"");

        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        let hard = dir.join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        crate::sys::fd::mkfifo(&c, 0o600).unwrap();
        for (p, says) in [
            (&link, "symbolic link"),
            (&dangling, "symbolic link"),
            (&hard, "hard links"),
            (&fifo, "a FIFO"),
        ] {
            let e = create_output(p, Existing::Replace).unwrap_err();
            assert!(e.to_string().contains(says), "{}: {e}", p.display());
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!dir.join("nowhere").exists());

        let e = read_regular_magic(&victim, 100, b"\x7fELF", "not ELF").unwrap_err();
        assert!(
            e.to_string()
                .contains("not ELF: it starts with [70 72 65 63]"),
            "{e}"
        );
        std::fs::write(&new, b"\x7fELFrest").unwrap();
        assert_eq!(
            read_regular_magic(&new, 100, b"\x7fELF", "not ELF").unwrap(),
            b"\x7fELFrest"
        );
        let e = read_regular_magic(&new, 7, b"\x7fELF", "not ELF").unwrap_err();
        assert!(matches!(e, FileError::TooLarge { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
