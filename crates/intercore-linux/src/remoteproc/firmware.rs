//! Firmware files: where the kernel looks for them, checking and installing them.

use super::*;

/// The kernel's default firmware directory (the last one it searches, and the one that
/// always exists on a distribution).
pub const LIB_FIRMWARE: &str = "/lib/firmware";

/// Where firmware should be installed for the kernel to find it: the override in
/// `paths`, else `firmware_class.path` when it is set (the kernel searches it first),
/// else `/lib/firmware` — but only when sysfs is the real `/sys`: the `/lib/firmware`
/// fallback belongs to the kernel behind `/sys`, and a test tree (or another system's
/// sysfs) that names no directory gets [`RprocError::NoFirmwareDir`] rather than this
/// host's real firmware directory.
pub fn firmware_dir(paths: &RprocPaths) -> Result<PathBuf, RprocError> {
    if let Some(d) = &paths.firmware_dir {
        return Ok(d.clone());
    }
    match fs::read_to_string(paths.firmware_class_path_param()) {
        Ok(s) if !s.trim().is_empty() => Ok(PathBuf::from(s.trim())),
        _ if paths.sys == Path::new("/sys") => Ok(PathBuf::from(LIB_FIRMWARE)),
        _ => Err(RprocError::NoFirmwareDir {
            sys: paths.sys.clone(),
        }),
    }
}

/// What the kernel checks before it boots an image (`rproc_elf_sanity_check`, the
/// segment checks of `rproc_elf_load_segments`, `find_table`), and a little more.
pub fn validate_firmware(bytes: &[u8]) -> Result<(), WireError> {
    Elf::parse(bytes)?.validate()
}

/// Writes `bytes` as `name` into [`firmware_dir`]: a temporary file in the same
/// directory, then `rename`, so the kernel never reads a half-written file.
pub fn install_firmware(
    paths: &RprocPaths,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, RprocError> {
    check_name(name)?;
    let dir = firmware_dir(paths)?;
    // The directory must be there: a mistyped --firmware-dir is an error, not a directory
    // created where the kernel will never look.
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io_err(
                "using",
                &dir,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Err(e) => {
            return Err(io_err(
                "using",
                &dir,
                io::Error::new(
                    e.kind(),
                    format!("{e} (the firmware directory is not created: name an existing one)"),
                ),
            ));
        }
    }
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.intercore-{}", std::process::id()));
    let (tmp_file, _) =
        crate::file::create_output(&tmp, crate::file::Existing::Refuse).map_err(|e| match e {
            crate::file::FileError::Io { source, .. } => io_err("writing", &tmp, source),
            other => io_err("writing", &tmp, io::Error::other(other.reason())),
        })?;
    let res = {
        use std::io::Write;
        let mut f = tmp_file;
        f.write_all(bytes)
    }
    .map_err(|e| io_err("writing", &tmp, e))
    .and_then(|()| fs::rename(&tmp, &dest).map_err(|e| io_err("installing", &dest, e)));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map(|()| dest)
}
