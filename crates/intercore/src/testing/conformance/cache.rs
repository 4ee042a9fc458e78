//! The [`CacheOps`] suite.

use super::*;

/// Checks a [`CacheOps`] against the trait's contract, with `peer` the same region as the
/// peer (the device) sees memory — the region itself for a coherent or real cache, the
/// "DRAM" behind a model's private image. Following the data plane's protocol (CPU access
/// bracketed by `cpu_access`, `clean` then `handoff` before the peer reads, `invalidate`
/// before the CPU reads what the peer wrote), it checks: the line size is a power of two
/// and the CPU view is line-aligned and as long as the region; after `clean` the peer reads
/// every byte the CPU wrote, for ranges of one byte, whole lines, unaligned spans and the
/// region's last bytes; after `invalidate` the CPU reads every byte the peer wrote; an
/// `invalidate` loses none of the CPU's not yet cleaned writes next to its range; a `clean`
/// writes back nothing over data the peer wrote next to its range; empty ranges are
/// accepted. The region must hold at least 16 lines.
pub fn cache_ops<C: CacheOps + ?Sized, P: SharedMemory + ?Sized>(cache: &C, peer: &P) -> Outcome {
    guarded(|| {
        let line = cache.line_size();
        ensure!(
            line.is_power_of_two() && line >= 4,
            "line_size() is a power of two",
            "{line}"
        );
        let len = cache.region_len();
        ensure!(
            len == peer.len(),
            "region_len() is the length of the region",
            "{len} against the peer's {}",
            peer.len()
        );
        ensure!(
            len >= 16 * line,
            "the suite needs a region of at least 16 lines",
            "{len} bytes, {line}-byte lines"
        );
        let cpu = cache.cpu_ptr();
        ensure!(
            !cpu.is_null() && (cpu as usize) % line == 0,
            "cpu_ptr() is non-null and aligned to the line size",
            "{cpu:p} with {line}-byte lines"
        );
        let v = CpuView { cache, cpu, len };

        // CPU to peer, and back, over ranges of every shape.
        let ranges = [
            (line, line),
            (2 * line + 3, 2 * line),
            (5, 1),
            (8 * line - 1, 2),
            (len - 3 * line, 3 * line),
            (len - 1, 1),
        ];
        for (i, &(off, n)) in ranges.iter().enumerate() {
            let buf = i as u32;
            let data = pattern(buf as u8, n);
            v.write(buf, off, &data);
            cache.clean(buf, off, n);
            cache.handoff(buf, off, n);
            let mut seen = vec![0u8; n];
            peer.read(off, &mut seen);
            ensure!(
                seen == data,
                "after clean, the peer reads what the CPU wrote",
                "{n} bytes at {off:#x}: {}",
                first_difference(&seen, &data)
            );
            let reply = pattern(buf as u8 ^ 0x80, n);
            peer.write(off, &reply);
            cache.invalidate(buf, off, n);
            let got = v.read(buf, off, n);
            ensure!(
                got == reply,
                "after invalidate, the CPU reads what the peer wrote",
                "{n} bytes at {off:#x}: {}",
                first_difference(&got, &reply)
            );
        }

        // Empty ranges.
        cache.clean(100, 4 * line, 0);
        cache.invalidate(100, 4 * line, 0);

        // `invalidate` keeps the CPU's pending writes on both sides of its range.
        let (before, mid, after) = (9 * line, 10 * line, 11 * line);
        v.write(20, mid, &pattern(1, line));
        cache.clean(20, mid, line);
        cache.handoff(20, mid, line);
        let (x, y) = (pattern(2, line), pattern(3, line));
        v.write(21, before, &x);
        v.write(22, after, &y);
        let z = pattern(4, line);
        peer.write(mid, &z);
        cache.invalidate(20, mid, line);
        let got = v.read(20, mid, line);
        ensure!(
            got == z,
            "after invalidate, the CPU reads what the peer wrote",
            "the line at {mid:#x}: {}",
            first_difference(&got, &z)
        );
        for (buf, off, want) in [(21, before, &x), (22, after, &y)] {
            let got = v.read(buf, off, line);
            ensure!(
                got == *want,
                "invalidate of a range loses none of the CPU's writes outside its lines",
                "the line at {off:#x}, next to the invalidated line at {mid:#x}: {}",
                first_difference(&got, want)
            );
            cache.clean(buf, off, line);
            cache.handoff(buf, off, line);
            let mut seen = vec![0u8; line];
            peer.read(off, &mut seen);
            ensure!(
                seen == *want,
                "after clean, the peer reads what the CPU wrote",
                "the line at {off:#x}: {}",
                first_difference(&seen, want)
            );
        }

        // `clean` writes back nothing over what the peer wrote next to its range.
        let (ours, theirs) = (13 * line, 14 * line);
        v.write(30, theirs, &pattern(5, line));
        cache.clean(30, theirs, line);
        cache.handoff(30, theirs, line);
        let fresh = pattern(6, line);
        peer.write(theirs, &fresh);
        v.write(31, ours + 1, &pattern(7, line - 2));
        cache.clean(31, ours + 1, line - 2);
        cache.handoff(31, ours + 1, line - 2);
        let mut seen = vec![0u8; line];
        peer.read(theirs, &mut seen);
        ensure!(
            seen == fresh,
            "clean of a range writes back nothing outside its lines",
            "the peer's line at {theirs:#x}, next to the cleaned {ours:#x}: {}",
            first_difference(&seen, &fresh)
        );
        Ok(())
    })
}

/// The CPU's accesses to a region, through `CacheOps::cpu_ptr`, bracketed by `cpu_access`.
struct CpuView<'a, C: CacheOps + ?Sized> {
    cache: &'a C,
    cpu: *mut u8,
    len: usize,
}

impl<C: CacheOps + ?Sized> CpuView<'_, C> {
    fn write(&self, buf: u32, off: usize, data: &[u8]) {
        assert!(off + data.len() <= self.len);
        self.cache.cpu_access(buf, off, data.len(), true);
        // SAFETY: `off..off+len` lies inside the `region_len()` bytes the `CacheOps`
        // contract keeps valid behind `cpu_ptr()` (checked above); the suite makes no
        // reference into the region and is its only user while it runs.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.cpu.add(off), data.len()) }
    }

    fn read(&self, buf: u32, off: usize, n: usize) -> Vec<u8> {
        assert!(off + n <= self.len);
        self.cache.cpu_access(buf, off, n, false);
        let mut out = vec![0u8; n];
        // SAFETY: as in `write`, with the copy's direction reversed.
        unsafe { core::ptr::copy_nonoverlapping(self.cpu.add(off), out.as_mut_ptr(), n) }
        out
    }
}
