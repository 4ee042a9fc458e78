//! `intercore sim selftest`: shows that the coherency sanitizer and the simulated IOMMU
//! catch every bug class they exist for, by committing each bug on purpose, and that a
//! correct run under random eviction is clean.

use crate::bulk::{COMPLETION_TIMEOUT, Checker, Outcome, input_len};
use intercore::DevAddr;
use intercore::dataplane::{DpHost, FaultKind, Iommu, Perm};
use intercore::rpmsg::{HostBus, HostConfig};
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{
    AnyCache, CacheMode, Detection, Eviction, FaultInjection, FaultyCache, POOL_IOVA,
    RemoteProgram, SimConfig, Soc,
};
use std::sync::Arc;
use std::time::Duration;

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;
/// The host's cache model, behind a wrapper that commits maintenance bugs on demand.
type Cache = FaultyCache<AnyCache>;

struct Rig {
    soc: Soc,
    bus: Bus,
    dp: DpHost<Cache>,
    checker: Checker,
}

fn rig(per_mille: u32) -> Result<Rig, String> {
    let cfg = SimConfig {
        cache: CacheMode::NonCoherent(Eviction { seed: 7, per_mille }),
        ..SimConfig::new(crate::firmwares::offload())
    };
    let program = RemoteProgram::current_exe(crate::SIM_REMOTE).map_err(|e| e.to_string())?;
    let soc = Soc::start(&cfg, &program).map_err(|e| e.to_string())?;
    let mut bus = soc
        .host_bus(HostConfig::default())
        .map_err(|e| e.to_string())?;
    let dp = soc
        .open_data_plane_with(&mut bus, Some(Duration::from_secs(5)), FaultyCache::new)
        .map_err(|e| e.to_string())?;
    Ok(Rig {
        soc,
        bus,
        dp,
        checker: Checker::default(),
    })
}

impl Rig {
    /// Fills a small buffer, lets `tamper` at it, submits it, and returns the outcome.
    fn round(
        &mut self,
        buf: intercore::dataplane::WritableBuf<Cache>,
        seq: u64,
        tamper: impl FnOnce(&mut [u8]),
    ) -> Result<(u32, Outcome, intercore::dataplane::WritableBuf<Cache>), String> {
        let len = input_len(buf.cap());
        self.checker
            .submit_with(&mut self.dp, &mut self.bus, buf, len, seq, tamper)
            .map_err(|e| e.to_string())?;
        let c = self
            .dp
            .wait_complete(&mut self.bus, COMPLETION_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let out = self.checker.check(&c);
        Ok((c.id(), out, c.into_writable()))
    }

    fn small(&self) -> Result<intercore::dataplane::WritableBuf<Cache>, String> {
        self.dp.alloc(4096).ok_or_else(|| "pool empty".to_string())
    }

    /// Commits deliberate bugs in the host's cache maintenance (the rig always runs the
    /// model behind it).
    fn inject(&self, f: FaultInjection) {
        self.dp.pool().cache().inject(f);
    }

    fn host_reports(&self, kind: Detection, buf: u32) -> Vec<String> {
        self.dp
            .pool()
            .cache()
            .inner()
            .reports()
            .iter()
            .filter(|r| r.kind == kind && r.buf == buf)
            .map(|r| r.to_string())
            .collect()
    }
}

struct Finding {
    caught: bool,
    evidence: Vec<String>,
}

fn missing_clean() -> Result<Finding, String> {
    let mut r = rig(0)?;
    r.inject(FaultInjection {
        skip_clean: true,
        ..Default::default()
    });
    let buf = r.small()?;
    let (id, out, _) = r.round(buf, 1, |_| {})?;
    let mut ev = r.host_reports(Detection::MissingClean, id);
    let caught = !ev.is_empty();
    ev.push(format!(
        "result: {out:?} (the remote checksummed the bytes DRAM still held)"
    ));
    Ok(Finding {
        caught,
        evidence: ev,
    })
}

fn missing_invalidate() -> Result<Finding, String> {
    let mut r = rig(0)?;
    let buf = r.small()?;
    let (_, first, buf) = r.round(buf, 1, |_| {})?;
    if first != Outcome::Good {
        return Err(format!("the correct first round failed: {first:?}"));
    }
    r.inject(FaultInjection {
        skip_invalidate: true,
        ..Default::default()
    });
    let (id, out, _) = r.round(buf, 2, |_| {})?;
    let mut ev = r.host_reports(Detection::StaleRead, id);
    let caught = !ev.is_empty();
    ev.push(format!(
        "result: {out:?} (the host read the previous round's checksum from its cache)"
    ));
    Ok(Finding {
        caught,
        evidence: ev,
    })
}

fn dirty_eviction() -> Result<Finding, String> {
    let mut r = rig(0)?;
    let buf = r.small()?;
    let len = input_len(buf.cap());
    let (id, out, _) = r.round(buf, 1, |b| b[len..len + 4].copy_from_slice(&[0xAA; 4]))?;
    let mut ev = r.host_reports(Detection::DirtyEvictionOverPeerData, id);
    let caught = !ev.is_empty();
    ev.extend(r.host_reports(Detection::MissingClean, id));
    ev.push(format!("result: {out:?} (the host wrote the result slot before handoff; its dirty line overwrote the remote's checksum)"));
    Ok(Finding {
        caught,
        evidence: ev,
    })
}

fn out_of_window(read_only: bool) -> Result<Finding, String> {
    let mut r = rig(0)?;
    let (pool_off, pool_len) = r.soc.pool_region();
    let mut iommu = r.soc.iommu();
    iommu
        .unmap(DevAddr(POOL_IOVA), pool_len)
        .map_err(|e| e.to_string())?;
    let mut held = Vec::new();
    let target = if read_only {
        iommu
            .map(DevAddr(POOL_IOVA), pool_off, 4096, Perm::R)
            .map_err(|e| e.to_string())?;
        r.small()?
    } else {
        iommu
            .map(DevAddr(POOL_IOVA), pool_off, 4096 * 8, Perm::RW)
            .map_err(|e| e.to_string())?;
        loop {
            let b = r.small()?;
            if b.da().0 >= POOL_IOVA + 4096 * 8 {
                break b;
            }
            held.push(b);
        }
    };
    let da = target.da();
    let (_, out, _) = r.round(target, 1, |_| {})?;
    let (n, faults) = r.soc.iommu_faults();
    let want = if read_only {
        FaultKind::Permission
    } else {
        FaultKind::Unmapped
    };
    let hit = faults
        .iter()
        .filter(|f| f.kind == want && f.da.0 >= da.0 && f.da.0 < da.0 + 4096)
        .count();
    let mut ev: Vec<String> = faults
        .iter()
        .map(|f| {
            format!(
                "IOMMU fault: {:?} {} of {} bytes at {:?}",
                f.kind,
                if f.write { "write" } else { "read" },
                f.len,
                f.da
            )
        })
        .collect();
    ev.push(format!("result: {out:?}; {n} fault(s) logged"));
    Ok(Finding {
        caught: hit > 0 && matches!(out, Outcome::Failed(_)),
        evidence: ev,
    })
}

fn correct_run() -> Result<(bool, String), String> {
    let mut r = rig(200)?;
    let mut bufs = Vec::new();
    for size in [4096usize, 64 << 10, 1 << 20] {
        for _ in 0..4 {
            bufs.push(r.dp.alloc(size).ok_or("pool empty")?);
        }
    }
    let mut bad = 0;
    let mut n = 0;
    for round in 0..4u64 {
        let mut next = Vec::new();
        for (i, b) in bufs.into_iter().enumerate() {
            let len = input_len(b.cap());
            r.checker
                .submit(&mut r.dp, &mut r.bus, b, len, round * 100 + i as u64)
                .map_err(|e| e.to_string())?;
        }
        while r.dp.outstanding() > 0 {
            let c =
                r.dp.wait_complete(&mut r.bus, COMPLETION_TIMEOUT)
                    .map_err(|e| e.to_string())?;
            if r.checker.check(&c) != Outcome::Good {
                bad += 1;
            }
            n += 1;
            next.push(c.into_writable());
        }
        bufs = next;
    }
    let host = r.dp.pool().cache().inner().reports();
    let remote = r.soc.remote_reports();
    let faults = r.soc.iommu_faults().0;
    let evictions =
        r.dp.pool()
            .cache()
            .inner()
            .model()
            .map_or(0, |m| m.evictions());
    let clean = bad == 0 && host.is_empty() && remote.is_empty() && faults == 0;
    let mut text = format!(
        "{n} buffers (4 KiB, 64 KiB, 1 MiB; 4 rounds with reuse), {bad} bad results, {} host + {} remote sanitizer reports, {faults} IOMMU faults, {evictions} random host evictions",
        host.len(),
        remote.len()
    );
    for rep in host.iter().chain(remote.iter()).take(5) {
        text.push_str(&format!("\n      {rep}"));
    }
    Ok((clean, text))
}

/// Runs every scenario: exit 0 only if each bug was caught and the correct run was clean.
pub fn main(json: bool) -> Result<u8, crate::error::CliError> {
    type Case = (&'static str, &'static str, fn() -> Result<Finding, String>);
    let cases: [Case; 5] = [
        (
            "missing_clean",
            "missing clean (host hands over dirty lines)",
            missing_clean,
        ),
        (
            "missing_invalidate",
            "missing invalidate (host reads a completed buffer from its cache)",
            missing_invalidate,
        ),
        (
            "dirty_eviction",
            "dirty eviction (host wrote the result slot; its line is written back over the remote's result)",
            dirty_eviction,
        ),
        (
            "out_of_window",
            "out-of-window access (buffer not mapped in the remote's IOMMU)",
            || out_of_window(false),
        ),
        (
            "read_only_window",
            "write to a read-only window (remote writes its result)",
            || out_of_window(true),
        ),
    ];
    if !json {
        println!(
            "intercore sim selftest: every injected bug must be caught; the correct run must be clean\n"
        );
    }
    let mut all = true;
    let mut fields = Vec::new();
    for (key, what, f) in cases {
        let (ok, lines) = match f() {
            Ok(fd) => (fd.caught, fd.evidence),
            Err(e) => (false, vec![format!("scenario failed to run: {e}")]),
        };
        all &= ok;
        fields.push(format!("\"{key}\":{ok}"));
        if !json {
            println!("  {:<100} {}", what, if ok { "CAUGHT" } else { "MISSED" });
            for l in lines {
                println!("      {l}");
            }
        }
    }
    let (clean, text) =
        correct_run().unwrap_or_else(|e| (false, format!("correct run failed to run: {e}")));
    all &= clean;
    fields.push(format!("\"correct_run_clean\":{clean}"));
    if json {
        println!("{{{},\"all_ok\":{all}}}", fields.join(","));
    } else {
        println!(
            "  {:<100} {}",
            "correct run (non-coherent caches, random eviction)",
            if clean { "CLEAN" } else { "NOT CLEAN" }
        );
        println!("      {text}");
        println!(
            "\n{}",
            if all {
                "all bug classes caught; the correct run is clean"
            } else {
                "SELFTEST FAILED"
            }
        );
    }
    Ok(if all {
        intercore_cli::EXIT_OK
    } else {
        intercore_cli::EXIT_FAILED
    })
}
