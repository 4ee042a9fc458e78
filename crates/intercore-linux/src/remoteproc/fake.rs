//! A fake remoteproc "kernel" for tests (feature `test-utils`): a temporary directory laid
//! out like `/sys` and `/dev`, and a thread that reacts to what is written there the way
//! `remoteproc_sysfs.c`, `remoteproc_cdev.c` and `remoteproc_core.c` do.
//!
//! * `sys/class/remoteproc/remoteprocN/{name,state,firmware,recovery,coredump}`,
//!   `dev/remoteprocN` (a regular file standing in for the char device), and
//!   `sys/module/firmware_class/parameters/path` pointing at the tree's `lib/firmware`.
//! * `start` written to `state` (a trailing newline is ignored, as `sysfs_streq` does) or
//!   to the device file (compared with `strncmp(cmd, "start", len)`, so `"start\n"` is
//!   refused): from `offline`/`crashed` the firmware named in `firmware` is "requested"
//!   from the firmware directory and sanity-checked as ELF; then `running` (after the
//!   configured boot delay). From `detached`: `attached`. While `running`/`attached`:
//!   refused (`EBUSY`).
//! * `stop`: `running`/`attached` → `offline`, otherwise refused (`EINVAL`); `detach`:
//!   `attached` → `detached`, otherwise refused (`EINVAL`).
//! * A changed `firmware` is accepted only while `offline` (else `EBUSY`) and only if
//!   non-empty; the part before the first newline is kept, as `rproc_set_firmware` does.
//! * [`FakeKernel::crash`] is `rproc_report_crash`: `crashed`. With `recovery` `enabled`
//!   the kernel recovers by itself (`rproc_trigger_recovery`: the firmware is requested and
//!   checked again, then `running` after the boot delay); `disabled` keeps it crashed until
//!   `recover` (or `enabled`) is written to `recovery` (`recovery_store`).
//!
//! A regular file cannot fail a `write()` with the kernel's errno, so a refused write is
//! undone (the file gets the kernel's value back) and recorded in [`FakeKernel::log`] as
//! `"remoteprocN: <what> -> EBUSY"`; tests assert that the code under test never sends
//! what the kernel would refuse.

use crate::remoteproc::RprocPaths;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One remote processor of the fake tree.
#[derive(Debug, Clone)]
pub struct FakeRproc {
    /// `name`.
    pub name: String,
    /// Initial `state` (a kernel state string).
    pub state: String,
    /// Initial `firmware`.
    pub firmware: String,
}

impl FakeRproc {
    /// An offline core named `name` with firmware `firmware`.
    pub fn offline(name: &str, firmware: &str) -> Self {
        Self {
            name: name.into(),
            state: "offline".into(),
            firmware: firmware.into(),
        }
    }
}

/// A minimal ELF32 EM_ARM firmware (one PT_LOAD of 16 zero bytes at 0x1000; the System V
/// ABI's ELF32 layout), which the fake kernel's `request_firmware` accepts: for tests that
/// install or boot firmware.
pub fn minimal_arm_elf() -> Vec<u8> {
    let mut v = vec![0u8; 52 + 32];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 1; // ELFCLASS32
    v[5] = 1; // little-endian
    v[6] = 1;
    v[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    v[18..20].copy_from_slice(&40u16.to_le_bytes()); // EM_ARM
    v[20..24].copy_from_slice(&1u32.to_le_bytes());
    v[24..28].copy_from_slice(&0x1000u32.to_le_bytes()); // e_entry
    v[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
    v[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
    v[42..44].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
    v[44..46].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    v[52..56].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    v[56..60].copy_from_slice(&84u32.to_le_bytes()); // p_offset
    v[60..64].copy_from_slice(&0x1000u32.to_le_bytes());
    v[64..68].copy_from_slice(&0x1000u32.to_le_bytes());
    v[68..72].copy_from_slice(&16u32.to_le_bytes());
    v[72..76].copy_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&[0u8; 16]);
    v
}

struct Proc {
    state: String,
    firmware: String,
    /// A boot in progress: the state to take at the instant.
    pending: Option<(Instant, String)>,
    /// Unbound from its driver: the kernel no longer serves it.
    gone: bool,
    /// `rproc->recovery_disabled`.
    recovery_disabled: bool,
}

struct Model {
    procs: Vec<Proc>,
    log: Vec<String>,
    boot_delay: Duration,
}

/// The fake tree and the thread playing the kernel. Dropping it stops the thread and
/// removes the tree.
pub struct FakeKernel {
    root: PathBuf,
    model: Arc<Mutex<Model>>,
    stop: Arc<AtomicBool>,
    ticks: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl FakeKernel {
    /// Builds the tree with `procs` as `remoteproc0..` and starts the kernel thread.
    pub fn new(procs: &[FakeRproc]) -> Self {
        let root = std::env::temp_dir().join(format!(
            "intercore-fake-rproc-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let paths = RprocPaths::under(&root);
        fs::create_dir_all(paths.class_dir()).expect("fake sysfs");
        fs::create_dir_all(&paths.dev).expect("fake /dev");
        let fw = root.join("lib/firmware");
        fs::create_dir_all(&fw).expect("fake firmware dir");
        let param = paths.firmware_class_path_param();
        fs::create_dir_all(param.parent().expect("parent")).expect("fake module dir");
        fs::write(&param, format!("{}\n", fw.display())).expect("firmware_class.path");
        for (i, p) in procs.iter().enumerate() {
            let dir = paths.class_dir().join(format!("remoteproc{i}"));
            fs::create_dir_all(&dir).expect("rproc dir");
            for (attr, v) in [
                ("name", p.name.as_str()),
                ("state", p.state.as_str()),
                ("firmware", p.firmware.as_str()),
                ("recovery", "enabled"),
                ("coredump", "disabled"),
            ] {
                fs::write(dir.join(attr), format!("{v}\n")).expect("attribute");
            }
            fs::write(paths.dev.join(format!("remoteproc{i}")), b"").expect("cdev");
        }
        let model = Arc::new(Mutex::new(Model {
            procs: procs
                .iter()
                .map(|p| Proc {
                    state: p.state.clone(),
                    firmware: p.firmware.clone(),
                    pending: None,
                    gone: false,
                    recovery_disabled: false,
                })
                .collect(),
            log: Vec::new(),
            boot_delay: Duration::ZERO,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicU64::new(0));
        let thread = {
            let (root, model) = (root.clone(), Arc::clone(&model));
            let (stop, ticks) = (Arc::clone(&stop), Arc::clone(&ticks));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    tick(&root, &mut lock(&model));
                    ticks.fetch_add(1, Ordering::Release);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        Self {
            root,
            model,
            stop,
            ticks,
            thread: Some(thread),
        }
    }

    /// The tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Paths for [`crate::remoteproc::Remoteproc`]: the fake `/sys` and `/dev`; the firmware
    /// directory comes from the fake `firmware_class.path`.
    pub fn paths(&self) -> RprocPaths {
        RprocPaths::under(&self.root)
    }
    /// The directory `firmware_class.path` names.
    pub fn firmware_dir(&self) -> PathBuf {
        self.root.join("lib/firmware")
    }
    /// `remoteprocN`'s sysfs directory.
    pub fn rproc_dir(&self, n: usize) -> PathBuf {
        self.paths().class_dir().join(format!("remoteproc{n}"))
    }
    /// Makes a boot take this long (the state stays as it was meanwhile).
    pub fn set_boot_delay(&self, d: Duration) {
        lock(&self.model).boot_delay = d;
    }
    /// The kernel's current state of `remoteprocN`.
    pub fn state(&self, n: usize) -> String {
        lock(&self.model).procs[n].state.clone()
    }
    /// The kernel's current firmware name of `remoteprocN`.
    pub fn firmware(&self, n: usize) -> String {
        lock(&self.model).procs[n].firmware.clone()
    }
    /// Forces a state, as the kernel's crash handler or an attach at probe would.
    pub fn set_state(&self, n: usize, state: &str) {
        let mut m = lock(&self.model);
        m.procs[n].state = state.into();
        m.procs[n].pending = None;
        let dir = self.rproc_dir(n);
        let _ = fs::write(dir.join("state"), format!("{state}\n"));
    }
    /// The core crashes (`rproc_report_crash`): `crashed`, then recovery as the module
    /// documentation says.
    pub fn crash(&self, n: usize) {
        let mut m = lock(&self.model);
        m.procs[n].state = "crashed".into();
        m.procs[n].pending = None;
        let _ = fs::write(self.rproc_dir(n).join("state"), "crashed\n");
        m.log.push(format!("remoteproc{n}: crashed"));
    }
    /// Everything the fake kernel did, oldest first.
    pub fn log(&self) -> Vec<String> {
        lock(&self.model).log.clone()
    }
    /// The refused writes (`… -> EBUSY`, `… -> EINVAL`, `… -> ENOENT`).
    pub fn refusals(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.contains("-> E"))
            .collect()
    }
    /// Unbinds `remoteprocN` from its driver: the kernel thread stops serving it and its
    /// sysfs directory disappears (done under the model lock, so no pass of the thread
    /// races with the removal).
    pub fn unplug(&self, n: usize) {
        let mut m = lock(&self.model);
        m.procs[n].gone = true;
        let _ = fs::remove_dir_all(self.rproc_dir(n));
    }

    /// Returns once the kernel thread has made a complete pass over the tree after this
    /// call: everything written before it has been acted on (a real kernel acts within
    /// the `write()`).
    pub fn settle(&self) {
        let seen = self.ticks.load(Ordering::Acquire);
        while self.ticks.load(Ordering::Acquire) < seen + 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    /// Waits up to `timeout` until the fake kernel has taken `state` for `remoteprocN`.
    pub fn wait_state(&self, n: usize, state: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.state(n) == state {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn lock(m: &Mutex<Model>) -> MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One pass over the tree.
fn tick(root: &Path, m: &mut Model) {
    let paths = RprocPaths::under(root);
    let fw_dir = fs::read_to_string(paths.firmware_class_path_param())
        .map(|s| PathBuf::from(s.trim()))
        .unwrap_or_else(|_| root.join("lib/firmware"));
    for i in 0..m.procs.len() {
        if m.procs[i].gone {
            continue;
        }
        let id = format!("remoteproc{i}");
        let dir = paths.class_dir().join(&id);
        // A boot finishing.
        if let Some((at, next)) = m.procs[i].pending.clone() {
            if Instant::now() >= at {
                m.procs[i].state = next;
                m.procs[i].pending = None;
                let _ = fs::write(dir.join("state"), format!("{}\n", m.procs[i].state));
                m.log.push(format!("{id}: now {}", m.procs[i].state));
            }
        }
        // sysfs `firmware` first: a client writes it before it writes `start`, and each
        // write is synchronous in the kernel. (Commands re-read it, too.)
        sync_firmware(m, i, &id, &dir);
        // The character device: one command per write, no newline allowed.
        let dev = paths.dev.join(&id);
        if let Ok(cmd) = fs::read(&dev) {
            if !cmd.is_empty() {
                let _ = fs::write(&dev, b"");
                let matches = |word: &str| {
                    cmd.len() <= 10 && {
                        // strncmp(cmd, word, len) == 0, with `word` NUL-terminated.
                        let w = word.as_bytes();
                        cmd.iter()
                            .enumerate()
                            .all(|(k, &c)| w.get(k).copied().unwrap_or(0) == c)
                    }
                };
                let c = if matches("start") {
                    Some("start")
                } else if matches("stop") {
                    Some("stop")
                } else if matches("detach") {
                    Some("detach")
                } else {
                    None
                };
                match c {
                    Some(c) => command(m, i, &id, c, &fw_dir, &dir, "cdev"),
                    None => m.log.push(format!(
                        "{id}: cdev {:?} -> EINVAL (unrecognized option)",
                        String::from_utf8_lossy(&cmd)
                    )),
                }
                let _ = fs::write(dir.join("state"), format!("{}\n", m.procs[i].state));
            }
        }
        // sysfs `recovery` (`recovery_store`).
        if let Ok(s) = fs::read_to_string(dir.join("recovery")) {
            let word = s.strip_suffix('\n').unwrap_or(&s).to_string();
            let shown = if m.procs[i].recovery_disabled {
                "disabled"
            } else {
                "enabled"
            };
            // Empty: a writer between its truncate and its write.
            if !word.is_empty() && word != shown {
                let trigger = match word.as_str() {
                    "enabled" => {
                        m.procs[i].recovery_disabled = false;
                        true
                    }
                    "disabled" => {
                        m.procs[i].recovery_disabled = true;
                        false
                    }
                    "recover" => true,
                    other => {
                        m.log.push(format!("{id}: recovery {other:?} -> EINVAL"));
                        false
                    }
                };
                if trigger {
                    recover(m, i, &id, &fw_dir, "recovery_store");
                }
                let v = if m.procs[i].recovery_disabled {
                    "disabled"
                } else {
                    "enabled"
                };
                let _ = fs::write(dir.join("recovery"), format!("{v}\n"));
            }
        }
        // The crash handler: recovery unless disabled.
        if m.procs[i].state == "crashed"
            && !m.procs[i].recovery_disabled
            && m.procs[i].pending.is_none()
        {
            recover(m, i, &id, &fw_dir, "crash handler");
        }
        // sysfs `state`.
        if let Ok(s) = fs::read_to_string(dir.join("state")) {
            let word = s.strip_suffix('\n').unwrap_or(&s);
            if !word.is_empty() && word != m.procs[i].state {
                match word {
                    "start" | "stop" | "detach" => command(m, i, &id, word, &fw_dir, &dir, "sysfs"),
                    other => m.log.push(format!(
                        "{id}: state {other:?} -> EINVAL (unrecognised option)"
                    )),
                }
                let _ = fs::write(dir.join("state"), format!("{}\n", m.procs[i].state));
            }
        }
    }
}

/// `rproc_trigger_recovery`: only for a crashed core; the firmware is requested and checked
/// again, then the core runs (after the boot delay). A failed reload leaves it crashed.
fn recover(m: &mut Model, i: usize, id: &str, fw_dir: &Path, by: &str) {
    if m.procs[i].state != "crashed" || m.procs[i].pending.is_some() {
        return;
    }
    let path = fw_dir.join(&m.procs[i].firmware);
    let ok = fs::read(&path).is_ok_and(|b| crate::remoteproc::validate_firmware(&b).is_ok());
    if !ok {
        m.log.push(format!(
            "{id}: {by}: recovery failed (firmware not loadable)"
        ));
        // The kernel leaves it crashed; do not retry on every pass.
        m.procs[i].recovery_disabled = true;
        return;
    }
    m.log.push(format!("{id}: {by}: recovering"));
    m.procs[i].pending = Some((Instant::now() + m.boot_delay, "running".into()));
}

/// `firmware_store` → `rproc_set_firmware`: accepted only while offline and non-empty.
fn sync_firmware(m: &mut Model, i: usize, id: &str, dir: &Path) {
    let Ok(s) = fs::read_to_string(dir.join("firmware")) else {
        return;
    };
    let name = s.split('\n').next().unwrap_or("");
    if s.is_empty() || name == m.procs[i].firmware {
        return;
    }
    if m.procs[i].state != "offline" {
        m.log.push(format!(
            "{id}: firmware {name:?} -> EBUSY (can't change firmware while running)"
        ));
    } else if name.is_empty() {
        m.log
            .push(format!("{id}: firmware \"\" -> EINVAL (empty name)"));
    } else {
        m.log.push(format!("{id}: firmware {name:?}"));
        m.procs[i].firmware = name.to_string();
    }
    let _ = fs::write(dir.join("firmware"), format!("{}\n", m.procs[i].firmware));
}

/// `state_store` / `rproc_cdev_write` → `rproc_boot`, `rproc_shutdown`, `rproc_detach`.
fn command(m: &mut Model, i: usize, id: &str, cmd: &str, fw_dir: &Path, dir: &Path, via: &str) {
    // A `firmware` write that landed after this pass read the attribute was still
    // earlier than this command.
    sync_firmware(m, i, id, dir);
    let st = m.procs[i].state.clone();
    let up = st == "running" || st == "attached";
    let verdict = match cmd {
        "start" if up => Err("EBUSY"),
        "start" if m.procs[i].pending.is_some() => Err("EBUSY"),
        "start" if st == "detached" => Ok("attached"),
        "start" => {
            let path = fw_dir.join(&m.procs[i].firmware);
            match fs::read(&path) {
                Err(_) => Err("ENOENT (request_firmware failed)"),
                Ok(bytes) if crate::remoteproc::validate_firmware(&bytes).is_err() => {
                    Err("EINVAL (bad firmware image)")
                }
                Ok(_) => Ok("running"),
            }
        }
        "stop" if up => Ok("offline"),
        "stop" => Err("EINVAL"),
        "detach" if st == "attached" => Ok("detached"),
        _ => Err("EINVAL"),
    };
    match verdict {
        Ok(next) if cmd == "start" && next == "running" && !m.boot_delay.is_zero() => {
            m.log.push(format!("{id}: {via} start (booting)"));
            m.procs[i].pending = Some((Instant::now() + m.boot_delay, next.into()));
        }
        Ok(next) => {
            m.log.push(format!("{id}: {via} {cmd} -> {next}"));
            m.procs[i].state = next.into();
        }
        Err(e) => m.log.push(format!("{id}: {via} {cmd} while {st} -> {e}")),
    }
}
