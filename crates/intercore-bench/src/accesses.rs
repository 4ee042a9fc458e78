//! The access-counting bench (`cargo run --release -p intercore-bench --bin accesses`):
//! shared-memory accesses per message, counted
//! (docs/BENCHMARKS.md, "Counting shared-memory accesses").
//!
//! Both roles run in this process over one heap region, each through its own
//! [`CountingMem`](intercore::testing::counting::CountingMem) (the host's counts copies in
//! 8-byte words as a Cortex-A53 makes them, the remote's in 4-byte words as a Cortex-R5F),
//! driven one step at a time from one thread, so every count is the same on every machine.
//! Each row covers a full turn of the ring (as many messages as it has entries), after a
//! warm-up of several turns (fresh buffers first, then reclaimed ones: the steady state):
//! loads, stores, fences and lines are the turn's totals per message (a driver that reclaims
//! its transmit buffers in batches pays once a turn, so a single message would misstate
//! it), the chains are the longest of any message of the turn.

mod inline;
mod vq;

use intercore::WaitMode;
use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::testing::Carveout;
use intercore::testing::counting::{self, Counted, Counts};
use std::time::Duration;

/// Entries per vring (and buffers per direction) of the measured link.
const NUM: u16 = 16;
/// Buffer size (Linux's `RPMSG_BUF_SIZE`, drivers/rpmsg/virtio_rpmsg_bus.c: 512).
const BUF_SIZE: usize = 512;
/// Payload sizes: 1, 64 and the largest a 512-byte buffer carries (512 − 16-byte header).
pub const SIZES: [usize; 3] = [1, 64, BUF_SIZE - 16];

/// One row: what one role of one implementation accessed for one operation.
#[derive(Debug, Clone)]
pub struct AccessRow {
    /// `host` or `remote`.
    pub role: &'static str,
    /// Whose code made the accesses.
    pub implementation: &'static str,
    /// `send`, `recv` or `rtt` (this role's part of a round trip it starts or answers).
    pub op: &'static str,
    /// Payload bytes.
    pub size: usize,
    /// Whether `VIRTIO_RING_F_EVENT_IDX` was negotiated.
    pub event_idx: bool,
    /// The counts of a turn: totals, and the longest chains of any message.
    pub counts: Counts,
    /// Messages in the turn.
    pub msgs: u64,
    /// Whether the orderings of atomic accesses and the fences were seen (not for a peer
    /// whose memory interface hides them): `fences` and `ordered_chain` mean nothing
    /// otherwise.
    pub ordering_seen: bool,
}

impl AccessRow {
    /// One JSON object (per-message values rounded to 2 decimals; `fences` and
    /// `ordered_chain` null where the ordering was not seen).
    pub fn json(&self) -> serde_json::Value {
        let c = &self.counts;
        // Rounded as `{:.2}` prints (ties to even: 3.125 is 3.12), as the bounds were read.
        let r2 = |v: f64| format!("{v:.2}").parse::<f64>().unwrap_or(v);
        let seen = |v: serde_json::Value| {
            if self.ordering_seen {
                v
            } else {
                serde_json::Value::Null
            }
        };
        serde_json::json!({
            "bench": "accesses",
            "role": self.role,
            "impl": self.implementation,
            "op": self.op,
            "size": self.size,
            "event_idx": self.event_idx,
            "msgs": self.msgs,
            "loads": r2(self.per_msg(c.loads)),
            "stores": r2(self.per_msg(c.stores)),
            "fences": seen(r2(self.per_msg(c.fences)).into()),
            "lines32": r2(self.per_msg(c.lines32)),
            "lines64": r2(self.per_msg(c.lines64)),
            "chain": c.chain,
            "ordered_chain": seen(c.ordered_chain.into()),
        })
    }

    fn shown(&self, v: String, otherwise: &str) -> String {
        if self.ordering_seen {
            v
        } else {
            otherwise.into()
        }
    }

    /// One line of the table.
    pub fn human(&self) -> String {
        let c = &self.counts;
        format!(
            "{:<7} {:<18} {:<5} {:>4} {:<5} {:>7.2} {:>7.2} {:>6} {:>7.2} {:>7.2} {:>6} {:>8}",
            self.role,
            self.implementation,
            self.op,
            self.size,
            if self.event_idx { "on" } else { "off" },
            self.per_msg(c.loads),
            self.per_msg(c.stores),
            self.shown(format!("{:.2}", self.per_msg(c.fences)), "-"),
            self.per_msg(c.lines32),
            self.per_msg(c.lines64),
            c.chain,
            self.shown(c.ordered_chain.to_string(), "-")
        )
    }

    /// A turn's total per message.
    pub fn per_msg(&self, total: u64) -> f64 {
        total as f64 / self.msgs.max(1) as f64
    }

    /// The table's heading.
    pub fn heading() -> String {
        format!(
            "{:<7} {:<18} {:<5} {:>4} {:<5} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>8}",
            "role",
            "impl",
            "op",
            "size",
            "evidx",
            "loads",
            "stores",
            "fences",
            "lines32",
            "lines64",
            "chain",
            "ordered"
        )
    }
}

/// Per-operation counts of one turn (totals, longest chains).
#[derive(Default)]
struct Turn {
    host_send: Counts,
    host_recv: Counts,
    host_rtt: Counts,
    remote_recv: Counts,
    remote_send: Counts,
    remote_rtt: Counts,
}

struct Bench {
    c: Counted,
    /// The host's endpoints; round trip `k` goes from endpoint `k mod len`.
    heps: Vec<u32>,
    hep: u32,
    rep: u32,
    out: Vec<u8>,
    back: Vec<u8>,
    seq: u8,
}

impl Bench {
    /// `in_order`: the table carries the intercore vendor entry offering in-order rings
    /// (what intercore's firmwares offer), which our host accepts; otherwise the standard
    /// table, the split ring every peer gets.
    ///
    /// `inline`: the table offers every intercore feature and the host takes its default,
    /// inline-slot rings (the rpmsg buses on top: `intercore-bus-inline` rows).
    fn with(event_idx: bool, in_order: bool, inline: bool) -> Result<Self, String> {
        Self::with_endpoints(event_idx, in_order, inline, 1)
    }

    /// As [`Self::with`], with `endpoints` host endpoints taking turns.
    fn with_endpoints(
        event_idx: bool,
        in_order: bool,
        inline: bool,
        endpoints: usize,
    ) -> Result<Self, String> {
        let link = Carveout::new(CarveoutSpec {
            vring_num: NUM,
            buf_size: BUF_SIZE,
            event_idx,
            da_base: 0xA000_0000,
        });
        let link = if in_order || inline {
            link.offering(intercore::wire::rsc::INTERCORE_FEATURES)
        } else {
            link
        };
        // The in-order rows decline inline rings (an intercore host's default otherwise).
        let cfg = HostConfig::default().inline(inline);
        let mut c: Counted = counting::connect(&link, cfg, WaitMode::Poll)
            .map_err(|e| format!("bringing the counted link up: {e}"))?;
        let rep = c
            .remote
            .create_endpoint("bench-accesses", None)
            .map_err(|e| e.to_string())?;
        let heps = (0..endpoints.max(1))
            .map(|_| c.host.create_endpoint("bench", None))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(|e| e.to_string())?;
        let hep = heps[0];
        if c.host.in_order() != in_order || c.remote.in_order() != in_order {
            return Err(format!(
                "in-order rings: wanted {in_order}, not negotiated so"
            ));
        }
        if c.host.inline_max().is_some() != inline || c.remote.inline_max().is_some() != inline {
            return Err(format!("inline rings: wanted {inline}, not negotiated so"));
        }
        Ok(Self {
            c,
            heps,
            hep,
            rep,
            out: vec![0; BUF_SIZE],
            back: vec![0; BUF_SIZE],
            seq: 0,
        })
    }

    /// One verified round trip of `size` bytes. `windows` says where the counting windows
    /// go: per operation (`false`) or per role's part of the round trip (`true`). Returns
    /// (host send, host recv, remote recv, remote send) counts, or (host rtt, 0, remote
    /// rtt, 0).
    fn round_trip(&mut self, size: usize, whole: bool) -> Result<[Counts; 4], String> {
        self.seq = self.seq.wrapping_add(1);
        self.hep = self.heps[self.seq as usize % self.heps.len()];
        for (i, b) in self.out[..size].iter_mut().enumerate() {
            *b = self.seq.wrapping_add(i as u8);
        }
        let (hm, rm) = (&self.c.host_mem, &self.c.remote_mem);
        let mut r = [Counts::default(); 4];
        hm.mark();
        self.c
            .host
            .send_raw(self.hep, self.rep, &self.out[..size], Some(Duration::ZERO))
            .map_err(|e| format!("host send: {e}"))?;
        if !whole {
            r[0] = hm.take();
        }
        rm.mark();
        let back = &mut self.back;
        let (src, n) = self
            .c
            .remote
            .recv_with(
                &Channel::new(self.rep, RPMSG_ADDR_ANY),
                Some(Duration::ZERO),
                |m| (m.src, intercore::copy_from_shared(m.payload, &mut back[..])),
            )
            .map_err(|e| format!("remote receive: {e}"))?;
        if !whole {
            r[2] = rm.take();
        }
        self.c
            .remote
            .send_raw(self.rep, src, &self.back[..n], Some(Duration::ZERO))
            .map_err(|e| format!("remote send: {e}"))?;
        if whole {
            r[2] = rm.take();
        } else {
            r[3] = rm.take();
            hm.mark();
        }
        let (_, len) = self
            .c
            .host
            .recv_from(
                &Channel::new(self.hep, RPMSG_ADDR_ANY),
                &mut self.back,
                Some(Duration::ZERO),
            )
            .map_err(|e| format!("host receive: {e}"))?;
        r[if whole { 0 } else { 1 }] = hm.take();
        if len != size || self.back[..len] != self.out[..size] {
            return Err(format!("{size}-byte round trip came back altered"));
        }
        Ok(r)
    }

    /// A turn of per-operation windows, then a turn of round-trip windows.
    fn measure(&mut self, size: usize) -> Result<Turn, String> {
        for _ in 0..3 * NUM {
            self.round_trip(size, false)?;
        }
        let mut w = Turn::default();
        for _ in 0..NUM {
            let [hs, hr, rr, rs] = self.round_trip(size, false)?;
            w.host_send = w.host_send + hs;
            w.host_recv = w.host_recv + hr;
            w.remote_recv = w.remote_recv + rr;
            w.remote_send = w.remote_send + rs;
        }
        for _ in 0..NUM {
            let [h, _, r, _] = self.round_trip(size, true)?;
            w.host_rtt = w.host_rtt + h;
            w.remote_rtt = w.remote_rtt + r;
        }
        Ok(w)
    }
}

/// intercore's rows: both roles, every size, EVENT_IDX off and on; the standard split ring
/// (`intercore`) and the in-order rings two intercore ends negotiate (`intercore-in-order`).
pub fn intercore_rows() -> Result<Vec<AccessRow>, String> {
    let mut rows = Vec::new();
    for (event_idx, in_order, inline) in [
        (false, false, false),
        (true, false, false),
        (false, true, false),
        (true, true, false),
        (false, false, true),
    ] {
        let implementation = if inline {
            "intercore-bus-inline"
        } else if in_order {
            "intercore-in-order"
        } else {
            "intercore"
        };
        let mut b = Bench::with(event_idx, in_order, inline)?;
        for &size in &SIZES {
            let w = b.measure(size)?;
            let row = |role, op, counts| AccessRow {
                role,
                implementation,
                op,
                size,
                event_idx,
                counts,
                msgs: u64::from(NUM),
                ordering_seen: true,
            };
            rows.extend([
                row("host", "send", w.host_send),
                row("host", "recv", w.host_recv),
                row("host", "rtt", w.host_rtt),
                row("remote", "recv", w.remote_recv),
                row("remote", "send", w.remote_send),
                row("remote", "rtt", w.remote_rtt),
            ]);
        }
    }
    Ok(rows)
}

/// Endpoint counts of the endpoint-scale rows (issue 23.3).
pub const ENDPOINTS: [usize; 2] = [1, 256];

/// The endpoint-scale rows: 64-byte round trips over the in-order rings (EVENT_IDX off)
/// with 1 and 256 host endpoints, the round trips taking turns over every endpoint
/// (`intercore-1ep`, `intercore-256ep`): what a message costs in shared memory must not
/// depend on how many endpoints the link has.
pub fn endpoint_rows() -> Result<Vec<AccessRow>, String> {
    let mut rows = Vec::new();
    for (endpoints, implementation) in ENDPOINTS
        .into_iter()
        .zip(["intercore-1ep", "intercore-256ep"])
    {
        let mut b = Bench::with_endpoints(false, true, false, endpoints)?;
        let w = b.measure(64)?;
        let row = |role, op, counts| AccessRow {
            role,
            implementation,
            op,
            size: 64,
            event_idx: false,
            counts,
            msgs: u64::from(NUM),
            ordering_seen: true,
        };
        rows.extend([
            row("host", "send", w.host_send),
            row("host", "recv", w.host_recv),
            row("host", "rtt", w.host_rtt),
            row("remote", "recv", w.remote_recv),
            row("remote", "send", w.remote_send),
            row("remote", "rtt", w.remote_rtt),
        ]);
    }
    Ok(rows)
}

/// Every row: intercore's, then rust-vmm `virtio-queue`'s device path through the same
/// counter.
pub fn rows() -> Result<Vec<AccessRow>, String> {
    let mut rows = intercore_rows()?;
    rows.extend(vq::rows()?);
    rows.extend(inline::rows()?);
    rows.extend(endpoint_rows()?);
    Ok(rows)
}

/// The text table of `rows`, with its heading and footnote.
pub fn table(rows: &[AccessRow]) -> String {
    let mut s =
        String::from("shared-memory accesses per message (deterministic; docs/BENCHMARKS.md)\n\n");
    s += &AccessRow::heading();
    s.push('\n');
    for r in rows {
        s += &r.human();
        s.push('\n');
    }
    s += &format!(
        "\nper message over a turn of {NUM}; chains: longest of the turn; '-': not visible \
         through vm-memory (docs/BENCHMARKS.md derives it)\n"
    );
    s
}

/// The paths of the uncached-SoC estimate (issue 24.3), from the 64-byte round-trip rows
/// with EVENT_IDX off.
pub fn soc_paths(rows: &[AccessRow]) -> Vec<crate::soc_model::Path> {
    use crate::soc_model::{LINUX_HOST_RTT, OPENAMP_HOST_RTT, Path, SideCounts};
    let side = |role: &str, implementation: &str| {
        rows.iter()
            .find(|r| {
                r.role == role
                    && r.implementation == implementation
                    && r.op == "rtt"
                    && r.size == 64
                    && !r.event_idx
            })
            .map(|r| SideCounts {
                loads: r.per_msg(r.counts.loads),
                ordered_chain: r.counts.ordered_chain,
            })
    };
    let both = |imp| side("host", imp).zip(side("remote", imp));
    let standard_remote = side("remote", "intercore");
    vec![
        Path {
            name: "intercore standard ring",
            counts: both("intercore"),
        },
        Path {
            name: "intercore in-order rings",
            counts: both("intercore-in-order"),
        },
        Path {
            name: "intercore inline slots",
            counts: both("intercore-inline"),
        },
        Path {
            name: "Linux host (derived) + intercore remote",
            counts: standard_remote.map(|r| (LINUX_HOST_RTT, r)),
        },
        Path {
            name: "OpenAMP host (derived) + intercore remote",
            counts: standard_remote.map(|r| (OPENAMP_HOST_RTT, r)),
        },
    ]
}
