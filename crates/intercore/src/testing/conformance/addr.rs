//! The [`DeviceAddressMap`] suite.

use super::*;

/// One window of a [`DeviceAddressMap`]: device addresses `da..da+len` are region offsets
/// `offset..offset+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Device address of the first byte.
    pub da: DevAddr,
    /// Region offset of the first byte.
    pub offset: usize,
    /// Length in bytes (non-zero).
    pub len: usize,
}

/// Checks a [`DeviceAddressMap`] against `windows`, the complete list of what it maps
/// (windows that do not alias one another): every sampled address of a window translates
/// to its offset and back, the whole window translates as one range, and ranges that start
/// before, end after, or overflow past a window are refused, as are device addresses and
/// offsets outside every window; zero-length ranges do not panic.
pub fn device_address_map<A: DeviceAddressMap + ?Sized>(map: &A, windows: &[Window]) -> Outcome {
    guarded(|| {
        ensure!(
            !windows.is_empty(),
            "the suite needs a window",
            "none given"
        );
        let da_mapped = |da: u64| {
            windows
                .iter()
                .any(|w| da >= w.da.0 && da - w.da.0 < w.len as u64)
        };
        let off_mapped = |off: usize| {
            windows
                .iter()
                .any(|w| off >= w.offset && off - w.offset < w.len)
        };
        for w in windows {
            ensure!(w.len > 0, "the suite needs non-empty windows", "{w:?}");
            let whole = map.to_offset(w.da, w.len);
            ensure!(
                whole == Some(w.offset),
                "a whole window translates to its offset",
                "to_offset({:?}, {:#x}) = {whole:?}, expected {:#x}",
                w.da,
                w.len,
                w.offset
            );
            let mut rels = vec![0, 1, w.len / 2, w.len.saturating_sub(2), w.len - 1];
            rels.retain(|&r| r < w.len);
            for rel in rels {
                let da = DevAddr(w.da.0 + rel as u64);
                let off = w.offset + rel;
                let to = map.to_offset(da, 1);
                ensure!(
                    to == Some(off),
                    "to_offset translates every address of a window",
                    "to_offset({da:?}, 1) = {to:?}, expected {off:#x}"
                );
                let back = map.to_dev(off);
                ensure!(
                    back == Some(da),
                    "to_dev translates every offset of a window back",
                    "to_dev({off:#x}) = {back:?}, expected {da:?}"
                );
                let rest = w.len - rel;
                let to = map.to_offset(da, rest);
                ensure!(
                    to == Some(off),
                    "a range ending at the window's end translates",
                    "to_offset({da:?}, {rest:#x}) = {to:?}"
                );
            }
            let end = w.da.0.checked_add(w.len as u64);
            if let Some(end) = end.filter(|&e| !da_mapped(e)) {
                for (da, n) in [(end - 1, 2), (end, 1), (w.da.0, w.len + 1)] {
                    let r = map.to_offset(DevAddr(da), n);
                    ensure!(
                        r.is_none(),
                        "a range running past what is mapped is refused",
                        "to_offset({:?}, {n:#x}) = {r:?} (the window ends at {end:#x})",
                        DevAddr(da)
                    );
                }
            }
            if w.da.0 > 0 && !da_mapped(w.da.0 - 1) {
                for n in [1, 2] {
                    let r = map.to_offset(DevAddr(w.da.0 - 1), n);
                    ensure!(
                        r.is_none(),
                        "a range starting before what is mapped is refused",
                        "to_offset({:?}, {n}) = {r:?}",
                        DevAddr(w.da.0 - 1)
                    );
                }
            }
            let r = map.to_offset(w.da, usize::MAX);
            ensure!(
                r.is_none(),
                "a range whose end overflows is refused",
                "to_offset({:?}, usize::MAX) = {r:?}",
                w.da
            );
            let off_end = w.offset + w.len;
            if !off_mapped(off_end) {
                let r = map.to_dev(off_end);
                ensure!(
                    r.is_none(),
                    "an offset outside every window has no device address",
                    "to_dev({off_end:#x}) = {r:?}"
                );
            }
            if w.offset > 0 && !off_mapped(w.offset - 1) {
                let r = map.to_dev(w.offset - 1);
                ensure!(
                    r.is_none(),
                    "an offset outside every window has no device address",
                    "to_dev({:#x}) = {r:?}",
                    w.offset - 1
                );
            }
            // Zero-length ranges: either answer, but no panic.
            let _ = map.to_offset(w.da, 0);
            if let Some(end) = end {
                let _ = map.to_offset(DevAddr(end), 0);
            }
        }
        if !da_mapped(u64::MAX) {
            for n in [1, 2] {
                let r = map.to_offset(DevAddr(u64::MAX), n);
                ensure!(
                    r.is_none(),
                    "a range outside every window is refused",
                    "to_offset(da:0xffffffffffffffff, {n}) = {r:?}"
                );
            }
        }
        if !off_mapped(usize::MAX) {
            let r = map.to_dev(usize::MAX);
            ensure!(
                r.is_none(),
                "an offset outside every window has no device address",
                "to_dev(usize::MAX) = {r:?}"
            );
        }
        Ok(())
    })
}
