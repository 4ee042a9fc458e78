//! An estimate of the round trip on an SoC whose shared memory is uncached (issue 24.3).
//!
//! On a non-coherent Arm SoC the vrings and buffers are mapped uncached (remoteproc's
//! `dma_alloc_coherent`, UIO and `/dev/mem` maps as Device memory), so every shared-memory
//! load is a trip through the interconnect. Cortex-A53 and Cortex-R5F are in-order cores: a
//! load whose address, or whose ordering, depends on an earlier load waits for that load's
//! data. So the counts of `intercore bench accesses` bound the memory part of a round trip:
//!
//! * **low** = (ordered chain of the host's round trip + the remote's) × the lowest cost of
//!   one uncached access: the loads that must wait for one another, nothing else;
//! * **high** = (every load of both sides) × the highest cost: no two loads overlap.
//!
//! Stores are left out (posted writes: the core goes on), and so is everything that is not
//! a memory access — interrupts, the scheduler, system calls, copies in cached memory —
//! which is where most of a kernel path's time goes (TI's figure, [`TI_AM64X_RPMSG_CHAR_US`]).
//!
//! The cost of one access, [`UNCACHED_ACCESS_NS`], is a range with its sources on each end;
//! no absolute figure for an uncached DDR load from an A53 or R5F on a K3 SoC was found
//! (docs/BENCHMARKS.md, "A model"): measure it on the board (a pointer chase over a
//! `dma_alloc_coherent` buffer) before trusting any absolute number this prints.

/// What one side (host or remote) loads in its part of one round trip, from
/// `intercore bench accesses` (measured) or from reading a peer's source (derived).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideCounts {
    /// Shared-memory loads per round trip (a turn's total over its messages).
    pub loads: f64,
    /// The longest chain of loads each of which must wait for the one before it (address
    /// dependency or Acquire ordering): `ordered_chain` of `bench accesses`.
    pub ordered_chain: u32,
}

/// The cost of one uncached shared-memory access, as a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessCost {
    /// The least one access costs, ns.
    pub min_ns: f64,
    /// The most one access costs, ns.
    pub max_ns: f64,
}

/// The per-access cost this model uses: 37–200 ns.
///
/// * 37 ns: a Cortex-R5F 32-bit read of on-chip SRAM (OCRAM) across the SoC interconnect,
///   9.23 ns per byte — TI, AM275x MCU+ SDK 12.00, "Memory Access Latency Benchmark"
///   (examples/benchmarks/memory_latency_benchmark). The best case: shared memory in
///   on-chip SRAM rather than DDR.
/// * 141 ns in the same table: a read of another core's TCM through the interconnect
///   (35.32 ns per byte), the one interconnect read it reports.
/// * 200 ns: the upper end of issue 14's "100–200 ns per uncached DRAM access" — an order
///   of magnitude, not a measurement; DDR is further than on-chip SRAM from an R5F on K3
///   (TI SPRADC1, TDA4VM, §3.2 reports only relative latencies).
pub const UNCACHED_ACCESS_NS: AccessCost = AccessCost {
    min_ns: 37.0,
    max_ns: 200.0,
};

/// TI's published round trip through the kernel path on an AM64x: Linux userspace
/// `/dev/rpmsg` ↔ R5F firmware, 1-byte messages, 100 000 iterations, 32–35 µs average
/// (TI Processor SDK RT-Linux performance guide, as recorded in REFERENCE.md).
pub const TI_AM64X_RPMSG_CHAR_US: (f64, f64) = (32.0, 35.0);

/// Linux 6.x's host path (`virtio_rpmsg_bus.c` over `virtio_ring.c`, `weak_barriers =
/// false`), 64-byte round trip, derived function by function in docs/BENCHMARKS.md
/// ("Linux's host path"): 26 loads, ordered chain 9.
pub const LINUX_HOST_RTT: SideCounts = SideCounts {
    loads: 26.0,
    ordered_chain: 9,
};

/// OpenAMP's host (driver) path (`rpmsg_virtio.c` over `virtqueue.c`), 64-byte round
/// trip, derived in docs/BENCHMARKS.md ("OpenAMP's host (driver) path"): 31 loads,
/// ordered chain 11.
pub const OPENAMP_HOST_RTT: SideCounts = SideCounts {
    loads: 31.0,
    ordered_chain: 11,
};

/// A predicted round trip, ns (memory accesses only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Ordered chains of both sides at the lowest access cost.
    pub low_ns: f64,
    /// Every load of both sides at the highest access cost.
    pub high_ns: f64,
}

/// The memory part of one round trip: `host` sends and receives the reply, `remote`
/// receives and answers (the two run one after the other, so their costs add).
pub fn round_trip(host: SideCounts, remote: SideCounts, cost: AccessCost) -> Estimate {
    let chain = f64::from(host.ordered_chain + remote.ordered_chain);
    Estimate {
        low_ns: chain * cost.min_ns,
        high_ns: (host.loads + remote.loads) * cost.max_ns,
    }
}

/// One path of the summary: a name and the counts of its two sides (`None`: not counted
/// yet — the slot a ring whose counts are still to come is printed in).
#[derive(Debug, Clone, Copy)]
pub struct Path {
    /// What the path is (`intercore standard ring`, `Linux host (derived) + intercore
    /// remote`, …); no commas or quotes (it goes into JSON as is).
    pub name: &'static str,
    /// Host side and remote side, or `None` when not counted yet.
    pub counts: Option<(SideCounts, SideCounts)>,
}

/// The summary lines: one per path (its estimate, or "not counted yet"), then TI's figure.
pub fn summary(paths: &[Path], cost: AccessCost) -> Vec<String> {
    let mut out = vec![format!(
        "uncached-SoC estimate, 64 B round trip, memory accesses only (A53 host, R5F remote; \
         {:.0}-{:.0} ns per access; docs/BENCHMARKS.md):",
        cost.min_ns, cost.max_ns
    )];
    for p in paths {
        out.push(match p.counts {
            Some((h, r)) => {
                let e = round_trip(h, r, cost);
                format!(
                    "  {:<42} {:>5.1} - {:>5.1} us  (chains {}+{}, loads {:.1}+{:.1})",
                    p.name,
                    e.low_ns / 1e3,
                    e.high_ns / 1e3,
                    h.ordered_chain,
                    r.ordered_chain,
                    h.loads,
                    r.loads
                )
            }
            None => format!("  {:<42} not counted yet", p.name),
        });
    }
    let (lo, hi) = TI_AM64X_RPMSG_CHAR_US;
    out.push(format!(
        "  {:<42} {lo:>5.1} - {hi:>5.1} us  (published, whole kernel path, 1 B)",
        "TI AM64x /dev/rpmsg <-> R5F"
    ));
    out
}

/// The summary as JSON objects, one per path (`null` estimates for a path not counted).
pub fn summary_json(paths: &[Path], cost: AccessCost) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            let (lo, hi) = match p.counts {
                Some((h, r)) => {
                    let e = round_trip(h, r, cost);
                    (format!("{:.0}", e.low_ns), format!("{:.0}", e.high_ns))
                }
                None => ("null".into(), "null".into()),
            };
            // Flat and comma-free values: `intercore bench accesses --json` is read line by
            // line by simple parsers (tests/bench_accesses.rs).
            format!(
                "{{\"bench\":\"accesses\",\"impl\":\"soc-estimate\",\"path\":\"{}\",\"op\":\"rtt\",\"size\":64,\"access_ns_min\":{},\"access_ns_max\":{},\"rtt_low_ns\":{lo},\"rtt_high_ns\":{hi},\"ti_am64x_rpmsg_char_us_min\":{},\"ti_am64x_rpmsg_char_us_max\":{}}}",
                p.name,
                cost.min_ns,
                cost.max_ns,
                TI_AM64X_RPMSG_CHAR_US.0,
                TI_AM64X_RPMSG_CHAR_US.1
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn side(loads: f64, ordered_chain: u32) -> SideCounts {
        SideCounts {
            loads,
            ordered_chain,
        }
    }

    #[test]
    fn low_is_the_chains_high_is_every_load() {
        let cost = AccessCost {
            min_ns: 10.0,
            max_ns: 100.0,
        };
        let e = round_trip(side(15.0, 5), side(30.0, 6), cost);
        assert_eq!(e.low_ns, 110.0);
        assert_eq!(e.high_ns, 4500.0);
        // No loads: nothing to wait for.
        let e = round_trip(side(0.0, 0), side(0.0, 0), cost);
        assert_eq!((e.low_ns, e.high_ns), (0.0, 0.0));
    }

    /// The figures docs/BENCHMARKS.md quotes: our in-order rings (host 15.06 loads, ordered
    /// 5; remote 30.12, 6) and Linux's host with our standard remote (26, 9; 32.12, 8), at
    /// 37–200 ns per access.
    #[test]
    fn documented_paths() {
        let in_order = round_trip(side(15.06, 5), side(30.12, 6), UNCACHED_ACCESS_NS);
        assert_eq!(in_order.low_ns, 11.0 * 37.0);
        assert!((in_order.high_ns - 45.18 * 200.0).abs() < 1e-6);
        let linux = round_trip(LINUX_HOST_RTT, side(32.12, 8), UNCACHED_ACCESS_NS);
        assert_eq!(linux.low_ns, 17.0 * 37.0);
        // Every estimate of the memory part stays far below TI's whole kernel path.
        assert!(linux.high_ns / 1e3 < TI_AM64X_RPMSG_CHAR_US.0);
    }

    #[test]
    fn summary_marks_paths_not_counted() {
        let paths = [
            Path {
                name: "intercore in-order rings",
                counts: Some((side(15.06, 5), side(30.12, 6))),
            },
            Path {
                name: "intercore inline slots",
                counts: None,
            },
        ];
        let lines = summary(&paths, UNCACHED_ACCESS_NS);
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("0.4 -   9.0 us"), "{}", lines[1]);
        assert!(lines[2].ends_with("not counted yet"), "{}", lines[2]);
        assert!(lines[3].contains("32.0 -  35.0 us"), "{}", lines[3]);
        let json = summary_json(&paths, UNCACHED_ACCESS_NS);
        assert!(
            json[0].contains("\"rtt_low_ns\":407,\"rtt_high_ns\":9036"),
            "{}",
            json[0]
        );
        assert!(json[1].contains("\"rtt_low_ns\":null"), "{}", json[1]);
    }
}
