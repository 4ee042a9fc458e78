//! The simulated SoC's "hardware registers": one page of the memfd holding the remote
//! core's IOMMU table, its fault log, and the remote coherency sanitizer's report log.
//!
//! This page is not part of any protocol: it stands for hardware (an IOMMU the host
//! programs, fault registers it reads). Firmware never sees it; the simulator's
//! [`SimWindows`] consults it on every data-plane access of the remote.

use intercore::dataplane::{DataWindows, Fault, FaultKind, Iommu, Perm};
use intercore::{DevAddr, Error, SharedMemory};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Bytes of the control page.
pub const CTRL_LEN: usize = 4096;
/// IOMMU windows the table holds.
pub const IOMMU_ENTRIES: usize = 64;
const TABLE: usize = 64;
const ENTRY: usize = 16;
const FAULT_COUNT: usize = TABLE + IOMMU_ENTRIES * ENTRY;
const FAULTS: usize = FAULT_COUNT + 16;
const FAULT_RING: usize = 16;
const REPORT_COUNT: usize = FAULTS + FAULT_RING * ENTRY;
const REPORTS: usize = REPORT_COUNT + 16;
const REPORT_RING: usize = 32;
const _: () = assert!(REPORTS + REPORT_RING * ENTRY <= CTRL_LEN);

const PERM_R: u32 = 1;
const PERM_W: u32 = 2;
const PERM_VALID: u32 = 0x100;

/// The control page at `off` in `mem`.
pub struct Ctrl<M: SharedMemory> {
    mem: Arc<M>,
    off: usize,
}

impl<M: SharedMemory> Clone for Ctrl<M> {
    fn clone(&self) -> Self {
        Self {
            mem: Arc::clone(&self.mem),
            off: self.off,
        }
    }
}

impl<M: SharedMemory> Ctrl<M> {
    /// The page at `off` (4096 bytes, 16-aligned).
    pub fn new(mem: Arc<M>, off: usize) -> Self {
        assert!(
            off % 16 == 0 && off + CTRL_LEN <= mem.len(),
            "control page outside the memfd"
        );
        Self { mem, off }
    }

    fn entry(&self, i: usize) -> [u32; 4] {
        let at = self.off + TABLE + i * ENTRY;
        // Acquire on the flags word: the other fields were written before it (Release).
        let perm = self.mem.load_u32(at + 12, Acquire);
        [
            self.mem.load_u32(at, Relaxed),
            self.mem.load_u32(at + 4, Relaxed),
            self.mem.load_u32(at + 8, Relaxed),
            perm,
        ]
    }

    /// Faults recorded so far, and the most recent ones (oldest first, at most 16).
    pub fn faults(&self) -> (u32, Vec<Fault>) {
        let n = self.mem.load_u32(self.off + FAULT_COUNT, Acquire);
        let first = n.saturating_sub(FAULT_RING as u32);
        let list = (first..n)
            .map(|i| {
                let at = self.off + FAULTS + (i as usize % FAULT_RING) * ENTRY;
                let w = |k: usize| self.mem.load_u32(at + 4 * k, Relaxed);
                let kind = match w(3) {
                    1 => FaultKind::Permission,
                    2 => FaultKind::OutsideBuffer,
                    _ => FaultKind::Unmapped,
                };
                Fault {
                    da: DevAddr(w(0) as u64),
                    len: w(1) as usize,
                    write: w(2) != 0,
                    kind,
                }
            })
            .collect();
        (n, list)
    }

    fn record_fault(&self, f: &Fault) {
        let n = self.mem.load_u32(self.off + FAULT_COUNT, Relaxed);
        let at = self.off + FAULTS + (n as usize % FAULT_RING) * ENTRY;
        let kind = match f.kind {
            FaultKind::Unmapped => 0,
            FaultKind::Permission => 1,
            FaultKind::OutsideBuffer => 2,
        };
        for (k, v) in [f.da.0 as u32, f.len as u32, f.write as u32, kind]
            .into_iter()
            .enumerate()
        {
            self.mem.store_u32(at + 4 * k, v, Relaxed);
        }
        // Release: the record is complete before the count that publishes it.
        self.mem.store_u32(self.off + FAULT_COUNT, n + 1, Release);
    }

    /// Appends a sanitizer report `[kind, buf, start, end]` (the remote's log).
    pub fn push_report(&self, r: [u32; 4]) {
        let n = self.mem.load_u32(self.off + REPORT_COUNT, Relaxed);
        let at = self.off + REPORTS + (n as usize % REPORT_RING) * ENTRY;
        for (k, v) in r.into_iter().enumerate() {
            self.mem.store_u32(at + 4 * k, v, Relaxed);
        }
        // Release: as for faults.
        self.mem.store_u32(self.off + REPORT_COUNT, n + 1, Release);
    }

    /// Reports in the remote's log: the total, and the most recent ones (at most 32).
    pub fn reports(&self) -> (u32, Vec<[u32; 4]>) {
        let n = self.mem.load_u32(self.off + REPORT_COUNT, Acquire);
        let first = n.saturating_sub(REPORT_RING as u32);
        let list = (first..n)
            .map(|i| {
                let at = self.off + REPORTS + (i as usize % REPORT_RING) * ENTRY;
                core::array::from_fn(|k| self.mem.load_u32(at + 4 * k, Relaxed))
            })
            .collect();
        (n, list)
    }
}

/// The host's handle on the simulated IOMMU: writes windows into the table.
pub struct SimIommu<M: SharedMemory> {
    ctrl: Ctrl<M>,
    region_len: usize,
}

impl<M: SharedMemory> SimIommu<M> {
    /// The IOMMU whose table is in `ctrl`, mapping offsets of a region of `region_len` bytes.
    pub fn new(ctrl: Ctrl<M>, region_len: usize) -> Self {
        Self { ctrl, region_len }
    }
}

impl<M: SharedMemory> Iommu for SimIommu<M> {
    fn map(&mut self, da: DevAddr, off: usize, len: usize, perm: Perm) -> intercore::Result<()> {
        let end = off
            .checked_add(len)
            .ok_or(Error::Config("window overflows"))?;
        if len == 0
            || end > self.region_len
            || da
                .0
                .checked_add(len as u64)
                .is_none_or(|e| e > u32::MAX as u64 + 1)
        {
            return Err(Error::Config(
                "window outside the region or the 32-bit device address space",
            ));
        }
        let overlaps = (0..IOMMU_ENTRIES)
            .map(|i| self.ctrl.entry(i))
            .any(|[d, _, l, p]| {
                p & PERM_VALID != 0 && (d as u64) < da.0 + len as u64 && da.0 < d as u64 + l as u64
            });
        if overlaps {
            return Err(Error::Config("window overlaps an existing one"));
        }
        let slot = (0..IOMMU_ENTRIES)
            .find(|&i| self.ctrl.entry(i)[3] & PERM_VALID == 0)
            .ok_or(Error::Exhausted("IOMMU table"))?;
        let at = self.ctrl.off + TABLE + slot * ENTRY;
        let m = &self.ctrl.mem;
        m.store_u32(at, da.0 as u32, Relaxed);
        m.store_u32(at + 4, off as u32, Relaxed);
        m.store_u32(at + 8, len as u32, Relaxed);
        let p =
            PERM_VALID | if perm.read { PERM_R } else { 0 } | if perm.write { PERM_W } else { 0 };
        // Release: the window's fields are visible before it becomes valid.
        m.store_u32(at + 12, p, Release);
        Ok(())
    }

    fn unmap(&mut self, da: DevAddr, len: usize) -> intercore::Result<()> {
        let slot = (0..IOMMU_ENTRIES)
            .find(|&i| {
                let [d, _, l, p] = self.ctrl.entry(i);
                p & PERM_VALID != 0 && d as u64 == da.0 && l as usize == len
            })
            .ok_or(Error::Config("no such window"))?;
        // Release: invalidating the flags first; the remote never uses a window whose flags
        // it read as invalid.
        self.ctrl
            .mem
            .store_u32(self.ctrl.off + TABLE + slot * ENTRY + 12, 0, Release);
        Ok(())
    }
}

/// The remote's accesses through the simulated IOMMU: a range is allowed only if one
/// valid window covers it with the right permission; otherwise the fault is logged in the
/// control page (where the host reads it) and returned.
pub struct SimWindows<M: SharedMemory> {
    ctrl: Ctrl<M>,
}

impl<M: SharedMemory> SimWindows<M> {
    /// Windows from the table in `ctrl`.
    pub fn new(ctrl: Ctrl<M>) -> Self {
        Self { ctrl }
    }
}

impl<M: SharedMemory> DataWindows for SimWindows<M> {
    fn translate(&self, da: DevAddr, len: usize, write: bool) -> Result<usize, Fault> {
        let mut kind = FaultKind::Unmapped;
        for i in 0..IOMMU_ENTRIES {
            let [d, off, l, p] = self.ctrl.entry(i);
            if p & PERM_VALID == 0 {
                continue;
            }
            let (d, l) = (d as u64, l as u64);
            if da.0 >= d && da.0.checked_add(len as u64).is_some_and(|e| e <= d + l) {
                let allowed = if write {
                    p & PERM_W != 0
                } else {
                    p & PERM_R != 0
                };
                if allowed {
                    return Ok(off as usize + (da.0 - d) as usize);
                }
                kind = FaultKind::Permission;
            }
        }
        let f = Fault {
            da,
            len,
            write,
            kind,
        };
        self.ctrl.record_fault(&f);
        Err(f)
    }
}
