//! The remote processor (sysfs, `/dev/remoteprocN`) and the firmware: installed, or a
//! local ELF with a valid resource table whose rpmsg vdev fits `[rpmsg]`.

use super::{Findings, Level};
use crate::CheckEnv;
use crate::core_isa::CoreIsa;
use crate::model::{Board, Boot, RprocSpec, TransportSpec};
use intercore_linux::file::{FIRMWARE_MAX, read_regular};
use intercore_linux::remoteproc::{
    Control, Remoteproc, RprocError, RprocState, firmware_dir, validate_firmware,
};
use std::path::Path;

impl Board {
    pub(super) fn check_rproc(&self, env: &CheckEnv, f: &mut Findings) -> Option<Remoteproc> {
        let spec = self.remoteproc.as_ref()?;
        let mut found_state = None;
        let found = Remoteproc::open(&env.rproc, Some(&spec.selector.as_arg()));
        let rproc = match found {
            Err(e) => {
                f.push(Level::Error, "remoteproc", e.to_string());
                None
            }
            Ok(r) => match r.info() {
                Err(e) => {
                    f.push(Level::Error, "remoteproc", e.to_string());
                    None
                }
                Ok(info) => {
                    found_state = Some(info.state.clone());
                    f.push(
                        Level::Ok,
                        "remoteproc",
                        format!(
                            "{} ({}): {}, firmware {:?}",
                            r.id(),
                            info.name,
                            info.state,
                            info.firmware
                        ),
                    );
                    match spec.boot {
                        Boot::Attach => {
                            if !matches!(info.state, RprocState::Attached | RprocState::Detached)
                            {
                                f.push(
                                    Level::Warn,
                                    "remoteproc",
                                    format!(
                                        "boot = \"attach\" expects a core started by the bootloader (state attached or detached); {} is {}",
                                        r.id(),
                                        info.state
                                    ),
                                );
                            }
                        }
                        Boot::Load => match &spec.firmware {
                            Some(fw) if *fw != info.firmware => f.push(
                                // The kernel refuses the change unless the core is offline
                                // (`firmware_store`: EBUSY): an error, not a plan.
                                if info.state == RprocState::Offline {
                                    Level::Info
                                } else {
                                    Level::Error
                                },
                                "remoteproc",
                                format!(
                                    "would select firmware {fw:?} (now {:?}){}",
                                    info.firmware,
                                    if info.state == RprocState::Offline {
                                        String::new()
                                    } else {
                                        format!(
                                            "; the kernel changes it only while the core is offline, and it is {}: intercore rproc stop first",
                                            info.state
                                        )
                                    }
                                ),
                            ),
                            _ => {}
                        },
                    }
                    if spec.control == Control::Cdev && !r.dev_path().exists() {
                        f.push(
                            Level::Error,
                            "remoteproc",
                            RprocError::NoCdev { path: r.dev_path() }.to_string(),
                        );
                    }
                    Some(r)
                }
            },
        };
        let core = rproc.as_ref().and_then(CoreIsa::of_rproc);
        let live = rproc.as_ref().zip(found_state.as_ref());
        self.check_firmware(spec, env, live, core.as_ref(), f);
        rproc
    }

    /// The firmware step: `live` is the remote processor found and its state, `core` the
    /// instruction set its device-tree node names.
    pub(super) fn check_firmware(
        &self,
        spec: &RprocSpec,
        env: &CheckEnv,
        live: Option<(&Remoteproc, &RprocState)>,
        core: Option<&CoreIsa>,
        f: &mut Findings,
    ) {
        if spec.boot == Boot::Attach {
            return;
        }
        if let Some(path) = self.firmware_path() {
            let bytes = match read_regular(&path, FIRMWARE_MAX) {
                Ok(b) => b,
                Err(e) => {
                    f.push(Level::Error, "firmware", format!("cannot read {e}"));
                    return;
                }
            };
            if let Err(e) = validate_firmware(&bytes) {
                f.push(
                    Level::Error,
                    "firmware",
                    format!("{} is not loadable firmware: {e}", path.display()),
                );
                return;
            }
            if let Some(core) = core {
                if let Err(e) = core.check_elf(&path, &bytes) {
                    f.push(Level::Error, "firmware", e.to_string());
                    return;
                }
            }
            if let Some((r, state)) = live.filter(|(_, s)| **s != RprocState::Offline) {
                f.push(
                    Level::Error,
                    "firmware",
                    format!(
                        "{} cannot be installed: {} is {state}, and the firmware of a core that is not offline is never replaced (the kernel refuses the change, and recovery reloads the file): intercore rproc stop first",
                        path.display(),
                        r.id()
                    ),
                );
                self.check_vdev(&bytes, &path, f);
                return;
            }
            f.push(
                Level::Ok,
                "firmware",
                format!(
                    "{} is an ELF with a valid resource table; would install it in {} as {:?}",
                    path.display(),
                    firmware_dir(&env.rproc).map_or_else(
                        |_| "the firmware directory (which one: --firmware-dir)".to_string(),
                        |d| d.display().to_string()
                    ),
                    spec.firmware.as_deref().unwrap_or("?")
                ),
            );
            self.check_vdev(&bytes, &path, f);
        } else if let Some(fw) = &spec.firmware {
            let dir = match firmware_dir(&env.rproc) {
                Ok(d) => d,
                Err(e) => {
                    f.push(Level::Warn, "firmware", e.to_string());
                    return;
                }
            };
            if dir.join(fw).exists() {
                f.push(
                    Level::Ok,
                    "firmware",
                    format!("{fw:?} is installed in {}", dir.display()),
                );
            } else {
                f.push(
                    Level::Warn,
                    "firmware",
                    format!(
                        "{fw:?} is not in {} (the kernel also searches /lib/firmware/updates and /lib/firmware/<release>): install it with intercore rproc load FILE --name {fw}",
                        dir.display()
                    ),
                );
            }
        }
    }

    /// The firmware's rpmsg vdev against `[rpmsg]`.
    pub(super) fn check_vdev(&self, bytes: &[u8], path: &Path, f: &mut Findings) {
        use intercore::wire::elf::Elf;
        let table = Elf::parse(bytes).and_then(|e| e.resource_table());
        let vdev = match table {
            Ok(Some(s)) => s.table.find_vdev(intercore::wire::rpmsg::VIRTIO_ID_RPMSG),
            Ok(None) => return,
            Err(_) => return,
        };
        match vdev {
            Ok(Some(v)) => {
                if matches!(self.transport, TransportSpec::Userspace { .. }) {
                    if let Some(why) = self.userspace_cannot_drive(&v, table_buffers(bytes)) {
                        f.push(
                            Level::Error,
                            "firmware",
                            format!(
                                "the userspace transport cannot drive {}: {why}",
                                path.display()
                            ),
                        );
                        return;
                    }
                    self.check_userspace_plan(bytes, f);
                }
                let num = v.vring(0).map(|r| r.num.get());
                match num {
                    Some(n) if n as u64 != self.rpmsg.buffers as u64 => f.push(
                        Level::Warn,
                        "firmware",
                        format!(
                            "the firmware's vrings have {n} entries, rpmsg.buffers is {}: the host uses min({n}, {}) buffers per direction",
                            self.rpmsg.buffers, self.rpmsg.buffers
                        ),
                    ),
                    Some(n) => f.push(
                        Level::Ok,
                        "firmware",
                        format!("rpmsg vdev with {n}-entry vrings, as rpmsg.buffers says"),
                    ),
                    None => {}
                }
            }
            Ok(None) => f.push(
                Level::Error,
                "firmware",
                format!(
                    "{}'s resource table has no rpmsg vdev (virtio id 7): no transport can reach it",
                    path.display()
                ),
            ),
            Err(e) => f.push(Level::Error, "firmware", e.to_string()),
        }
    }
}

/// The length of the table's `vdev0buffer` carveout (where intercore's host bus puts the
/// rpmsg buffers, `intercore::rpmsg::BUFFER_CARVEOUT`), if it has one.
fn table_buffers(bytes: &[u8]) -> Option<u64> {
    use intercore::wire::elf::Elf;
    use intercore::wire::rsc::Resource;
    let elf = Elf::parse(bytes).ok()?;
    let sec = elf.resource_table().ok()??;
    sec.table.iter().find_map(|e| match e {
        Ok(Resource::Carveout(c))
            if intercore::wire::rpmsg::Name::from_field(&c.name).as_bytes()
                == intercore::rpmsg::BUFFER_CARVEOUT =>
        {
            Some(u64::from(c.len.get()))
        }
        _ => None,
    })
}

impl Board {
    /// Why intercore's host bus (`HostBus::new`, `read_table`) would refuse this vdev, in
    /// the words of its own checks: two vrings, and a `vdev0buffer`
    /// carveout (when there is one) large enough for both directions' buffers.
    /// The userspace transport's open places what the firmware's table leaves to the host
    /// (`Board::plan_vdev` over the carveout): run the same plan on the firmware file's
    /// table, so that `check` refuses, naming the key, what `open` would.
    fn check_userspace_plan(&self, bytes: &[u8], f: &mut Findings) {
        use intercore::wire::elf::Elf;
        let TransportSpec::Userspace { region, .. } = &self.transport else {
            return;
        };
        let crate::model::RegionSpec::Range { base, size } = region else {
            f.push(
                Level::Info,
                "firmware",
                "the vring and buffer placement over a reserved-memory carveout is checked when the board is opened",
            );
            return;
        };
        let (Ok(len), Ok(Some(s))) = (
            usize::try_from(*size),
            Elf::parse(bytes).and_then(|e| e.resource_table()),
        ) else {
            return;
        };
        let window = intercore::LinearMap {
            base: intercore::DevAddr(*base),
            offset: 0,
            len,
        };
        match self.plan_vdev(&s.table, &window, "transport.rsc_offset") {
            Ok(plan) => {
                for n in plan.notes {
                    f.push(Level::Info, "firmware", n);
                }
            }
            Err(crate::OpenError::Config { key, message }) => {
                f.push(Level::Error, key, message);
            }
            Err(e) => f.push(Level::Error, "firmware", e.to_string()),
        }
    }

    fn userspace_cannot_drive(
        &self,
        v: &intercore::wire::rsc::VdevEntry<'_>,
        buffers: Option<u64>,
    ) -> Option<String> {
        if v.num_vrings() < 2 {
            return Some(format!(
                "its rpmsg vdev has {} vring(s); rpmsg needs two (receive and transmit)",
                v.num_vrings()
            ));
        }
        // The geometry itself (power-of-two sizes) is already refused by the table's
        // validation; here only what the host bus adds.
        let num = (0..2)
            .filter_map(|i| v.vring(i))
            .map(|r| r.num.get().min(u32::from(u16::MAX)) as u16)
            .min()?;
        let n = u64::from(num.min(self.rpmsg.buffers));
        let need = 2 * n * self.rpmsg.buffer_size as u64;
        match buffers {
            Some(len) if len < need => Some(format!(
                "its vdev0buffer carveout has {len:#x} bytes; 2 x {n} buffers of rpmsg.buffer_size = {} need {need:#x} (fewer rpmsg.buffers, a smaller buffer_size, or a larger carveout)",
                self.rpmsg.buffer_size
            )),
            _ => None,
        }
    }
}
