//! `[vdev]`: where the host places the vrings and buffers a firmware's resource table
//! leaves to it (the `qemu` and `userspace` transports; the kernel places its own, the
//! simulated SoC has its fixed layout).

use super::{Check, check_page, hex};
use crate::model::TransportKind;
use crate::raw::RawVdev;
use crate::vdev::{DaRange, VdevSpec};

/// A base + size pair: both or neither; page-aligned base, non-zero size, below 4 GiB (the
/// table holds 32-bit device addresses).
fn range(c: &mut Check, what: &str, base: Option<u64>, size: Option<u64>) -> Option<DaRange> {
    let (bk, sk) = (format!("vdev.{what}_base"), format!("vdev.{what}_size"));
    match (base, size) {
        (None, None) => None,
        (Some(_), None) => {
            c.err(&sk, None, format!("missing: {bk} needs a size"));
            None
        }
        (None, Some(_)) => {
            c.err(&bk, None, format!("missing: {sk} needs a base"));
            None
        }
        (Some(b), Some(s)) => {
            check_page(&bk, b, c);
            if s == 0 {
                c.err(&sk, Some(hex(s)), "must not be zero");
            }
            if b.checked_add(s).is_none_or(|e| e > 1 << 32) {
                c.err(
                    &bk,
                    Some(hex(b)),
                    "the range must end at or below 4 GiB: resource tables hold 32-bit device addresses",
                );
            }
            Some(DaRange { base: b, size: s })
        }
    }
}

pub(super) fn validate(
    v: Option<&RawVdev>,
    kind: Option<TransportKind>,
    c: &mut Check,
) -> VdevSpec {
    let Some(v) = v else {
        return VdevSpec::default();
    };
    if !matches!(
        kind,
        Some(TransportKind::Qemu | TransportKind::Userspace) | None
    ) {
        c.err(
            "vdev",
            None,
            "applies only to transport.kind = \"qemu\" or \"userspace\" (the kernel places its own vrings and buffers; the simulated SoC has its layout); remove it",
        );
        return VdevSpec::default();
    }
    let pool = range(c, "pool", v.pool_base, v.pool_size);
    let buffers = range(c, "buffers", v.buffers_base, v.buffers_size);
    if let (Some(p), Some(b)) = (pool, buffers) {
        if p.base < b.base + b.size && b.base < p.base + p.size {
            c.err(
                "vdev.buffers_base",
                Some(hex(b.base)),
                format!("overlaps the pool {}+{}", hex(p.base), hex(p.size)),
            );
        }
    }
    VdevSpec { pool, buffers }
}
