//! The offload firmware (`firmware/offload`: echo, CRC32C on the data plane, statistics)
//! as a bare-metal image for a Cortex-R5F or Cortex-M4F, linked by QEMU's machines'
//! memory maps, talking to the host over the shared window with the polling doorbell.
#![no_std]
#![no_main]

mod bsp;

use bsp::{DOORBELL_DA, DOORBELL_IDS, POOL_DA, POOL_LEN, SHM_DA, SHM_LEN, Window};
use intercore::dataplane::{CacheOps, DataWindows, DpRemote, Job};
use intercore::pollbell::{PollDoorbell, PollSide};
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::rsc_table::{PolledRpmsgTable, RscTableCell};
use intercore::rpmsg::{RemoteBus, RscLocation};
use intercore::{DevAddr, LinearMap, WaitMode};

/// The rpmsg carveout at the start of the shared window: 64-entry vrings, 512-byte
/// buffers, no EVENT_IDX.
const CARVEOUT: CarveoutSpec = CarveoutSpec {
    vring_num: 64,
    buf_size: 512,
    event_idx: false,
    da_base: SHM_DA as u64,
};

/// The resource table, first thing in the shared window (see the linker scripts).
#[used]
// SAFETY (unsafe attribute): the only static in `.resource_table`; the linker scripts put
// the section at the start of the shared window, in a loaded, writable segment.
#[unsafe(link_section = ".resource_table")]
static RESOURCE_TABLE: RscTableCell<PolledRpmsgTable> = RscTableCell::new(PolledRpmsgTable::new(
    &CARVEOUT,
    POOL_DA,
    POOL_LEN,
    DOORBELL_DA,
    DOORBELL_IDS,
));

/// The data-plane worker of this image: the firmware's own, or a deliberately faulty one.
fn worker<C: CacheOps, W: DataWindows>(job: &mut Job<'_, C, W>) -> Result<usize, u32> {
    if cfg!(feature = "fault-udf") {
        log!("fault-udf image: executing an undefined instruction");
        bsp::undefined_instruction();
    }
    if cfg!(feature = "fault-crc") {
        let crc = intercore::crc32c(
            job.input()
                .map_err(|_| intercore::wire::dataplane::DP_FAULT)?,
        ) ^ 1;
        let len = job.len();
        job.output(len, 4)
            .map_err(|_| intercore::wire::dataplane::DP_FAULT)?
            .copy_from_slice(&crc.to_le_bytes());
        return Ok(len + 4);
    }
    intercore_fw_offload::work(job)
}

#[unsafe(no_mangle)]
extern "C" fn fw_main() -> ! {
    bsp::init();
    let rsc_at = RESOURCE_TABLE.as_ptr() as usize;
    log!(
        "up: resource table at {rsc_at:#x} ({} bytes), shared window {SHM_DA:#x}+{SHM_LEN:#x}, doorbell {DOORBELL_DA:#x}, data plane {POOL_DA:#x}+{POOL_LEN:#x}",
        RESOURCE_TABLE.len()
    );
    let map = LinearMap {
        base: DevAddr(SHM_DA as u64),
        offset: 0,
        len: SHM_LEN,
    };
    let rsc = RscLocation {
        offset: rsc_at - SHM_DA as usize,
        len: RESOURCE_TABLE.len(),
    };
    let bell = match PollDoorbell::new(
        &Window,
        (DOORBELL_DA - SHM_DA) as usize,
        DOORBELL_IDS,
        PollSide::Remote,
        bsp::Platform,
    ) {
        Ok(b) => b,
        Err(e) => {
            log!("doorbell: {e}");
            bsp::exit(bsp::exit_code::LINK)
        }
    };
    let mut bus = match RemoteBus::<_, _, 8>::new(
        &Window,
        bell,
        &map,
        rsc,
        RemoteConfig::default().wait(WaitMode::Event),
    ) {
        Ok(b) => b,
        Err(e) => {
            log!("resource table: {e}");
            bsp::exit(bsp::exit_code::LINK)
        }
    };
    let windows = LinearMap {
        base: DevAddr(POOL_DA as u64),
        offset: 0,
        len: POOL_LEN as usize,
    };
    let mut dp = DpRemote::new(bsp::PoolCache, windows);
    match intercore_fw_offload::run_with(&mut bus, &mut dp, worker) {
        Ok(stats) => {
            log!(
                "host went away: echoed {} messages, {} data-plane requests, {} doorbells rung",
                stats.echoed,
                stats.dp_requests,
                bus.stats().kicks
            );
            bsp::exit(bsp::exit_code::OK)
        }
        Err(e) => {
            log!("link failed: {e}");
            bsp::exit(bsp::exit_code::LINK)
        }
    }
}

/// With the `alloc` feature (a compile check of the core crate's host-role parts on this
/// target), a heap that has nothing: this firmware never allocates, so every allocation
/// fails.
#[cfg(feature = "alloc")]
mod no_heap {
    use core::alloc::{GlobalAlloc, Layout};

    struct NoHeap;

    // SAFETY: `alloc` always reports failure (null), which the contract allows; `dealloc`
    // is then never called with a pointer from us.
    unsafe impl GlobalAlloc for NoHeap {
        unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
    }

    #[global_allocator]
    static HEAP: NoHeap = NoHeap;
}
