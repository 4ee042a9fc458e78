//! `[pool]`: the data-plane pool's size classes and alignment.

use super::Check;
use crate::model::default_pool;
use crate::raw::RawPool;
use intercore::dataplane::PoolConfig;

/// Most buffers a pool may have, all classes together: the pool keeps about 40 bytes of
/// bookkeeping per buffer (where it is, its owner, its free-list link), built when the pool
/// is opened, so a million buffers is 40 MB. Checked here, before anything is allocated, so
/// that `board check` and opening the board agree: `[[64, 1000000000]]` with `align = 64`
/// is 64 GB of buffers, under the byte cap, and its table alone took 40 GB.
pub const MAX_POOL_BUFFERS: u64 = 1 << 20;

/// The table, or the default pool when the file has none.
pub(super) fn validate(p: Option<&RawPool>, c: &mut Check) -> PoolConfig {
    let Some(p) = p else {
        return default_pool();
    };
    let align = p.align.unwrap_or(4096);
    if !align.is_power_of_two() || !(64..=1 << 30).contains(&align) {
        c.err(
            "pool.align",
            Some(align.to_string()),
            "expected a power of two from 64 (a cache line) to 1 GiB; a page (4096) suits IOMMU windows",
        );
    }
    if p.classes.is_empty() {
        c.err(
            "pool.classes",
            Some("[]".into()),
            "expected at least one [size, count] class",
        );
    }
    let mut classes = Vec::new();
    let mut total: u128 = 0;
    let mut buffers: u128 = 0;
    for (i, &[size, count]) in p.classes.iter().enumerate() {
        if size == 0 || size > u32::MAX as u64 {
            c.err(
                &format!("pool.classes[{i}]"),
                Some(format!("[{size}, {count}]")),
                "buffer size must be in 1..=4294967295 (descriptor lengths are 32-bit)",
            );
        }
        if count == 0 {
            c.err(
                &format!("pool.classes[{i}]"),
                Some(format!("[{size}, {count}]")),
                "count must be at least 1",
            );
        }
        if i > 0 && size <= p.classes[i - 1][0] {
            c.err(
                &format!("pool.classes[{i}]"),
                Some(format!("[{size}, {count}]")),
                "classes go smallest first, each larger than the one before",
            );
        }
        total +=
            (size as u128).div_ceil(align.max(1) as u128) * align.max(1) as u128 * count as u128;
        buffers += count as u128;
        classes.push((size as usize, count as usize));
    }
    if buffers > MAX_POOL_BUFFERS as u128 {
        c.err(
            "pool.classes",
            None,
            format!(
                "{buffers} buffers; at most {MAX_POOL_BUFFERS} in all classes together (each costs about 40 bytes of bookkeeping when the pool is opened)"
            ),
        );
        classes.clear();
    }
    if total > (1u128 << 40) {
        c.err(
            "pool.classes",
            None,
            format!("the pool would take {total} bytes; at most 1 TiB"),
        );
        classes.clear();
    }
    PoolConfig {
        classes,
        align: align as usize,
    }
}
