//! `[remoteproc]`: which remote processor, which firmware, how it boots and where commands
//! go. Only a real board has one.

use super::{Check, plain_file_name, quoted};
use crate::model::{Boot, RprocSelector, RprocSpec};
use crate::raw::RawRproc;
use intercore_linux::remoteproc::Control;
use std::path::PathBuf;

/// The table, which a real board must have and the simulated SoC must not.
pub(super) fn validate(raw: Option<&RawRproc>, is_sim: bool, c: &mut Check) -> Option<RprocSpec> {
    match (raw, is_sim) {
        (Some(_), true) => {
            c.err(
                "remoteproc",
                None,
                "the simulated SoC has no remote processor to control; remove the table (the simulated firmware is transport.firmware)",
            );
            None
        }
        (None, false) => {
            c.err(
                "remoteproc",
                None,
                "missing: a real board needs [remoteproc] with name or index",
            );
            None
        }
        (None, true) => None,
        (Some(r), false) => validate_table(r, c),
    }
}

fn validate_table(r: &RawRproc, c: &mut Check) -> Option<RprocSpec> {
    let selector = match (&r.name, r.index) {
        (Some(n), None) => {
            if n.is_empty() || n.contains('\n') {
                c.err(
                    "remoteproc.name",
                    Some(quoted(n)),
                    "expected the remote processor's name attribute, e.g. \"78000000.r5f\"",
                );
            }
            Some(RprocSelector::Name(n.clone()))
        }
        (None, Some(i)) => Some(RprocSelector::Index(i)),
        (Some(_), Some(_)) => {
            c.err(
                "remoteproc.index",
                None,
                "give remoteproc.name or remoteproc.index, not both (the name is stable across boots; the index follows probe order)",
            );
            None
        }
        (None, None) => {
            c.err(
                "remoteproc.name",
                None,
                "missing: name the remote processor (its sysfs name, e.g. \"78000000.r5f\") or give remoteproc.index",
            );
            None
        }
    };
    // A misspelt keyword is reported; the rest is checked as for the default.
    let control = c
        .one_of_or("remoteproc.control", r.control.as_deref(), Control::Sysfs)
        .unwrap_or(Control::Sysfs);
    let boot = c
        .one_of_or("remoteproc.boot", r.boot.as_deref(), Boot::Load)
        .unwrap_or(Boot::Load);
    if let Some(f) = &r.firmware {
        if !plain_file_name(f) {
            c.err(
                "remoteproc.firmware",
                Some(quoted(f)),
                "expected a plain file name (the kernel looks it up in its firmware directories); put a path in remoteproc.firmware_file",
            );
        }
    }
    if r.firmware_file.is_some() {
        if boot == Boot::Attach {
            c.err(
                "remoteproc.firmware_file",
                None,
                "applies only to boot = \"load\": the kernel loads no firmware into a core it attaches to",
            );
        }
        if r.firmware.is_none() {
            c.err(
                "remoteproc.firmware",
                None,
                "missing: firmware_file is installed under this name",
            );
        }
    }
    Some(RprocSpec {
        selector: selector?,
        firmware: r.firmware.clone(),
        firmware_file: r.firmware_file.as_ref().map(PathBuf::from),
        control,
        boot,
    })
}
