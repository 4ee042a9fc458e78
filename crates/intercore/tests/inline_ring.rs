//! Inline-slot rings (issue 24) at the bus level: the negotiation bit exists in the
//! intercore vendor entry, but the rpmsg buses do not drive the inline ring yet, so an
//! intercore host never accepts it and every link stays on the split ring (in order between
//! two intercore ends). docs/ARCHITECTURE.md, "Inline-slot rings".

use intercore::rpmsg::HostConfig;
use intercore::rpmsg::rsc_table::IntercoreRpmsgTable;
use intercore::testing::Carveout;
use intercore::virtq::inline;
use intercore::wire::rsc::{INTERCORE_ACCEPTED_OFFSET, INTERCORE_F_IN_ORDER, INTERCORE_F_INLINE};
use intercore::{SharedMemory, WaitMode};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use zerocopy::IntoBytes;

/// A firmware offering inline rings (with a valid slot payload) beside in-order rings: the
/// host accepts in-order only — the inline offer falls back — and the link carries
/// traffic on the in-order split ring. The negotiation function itself says inline would
/// be used if the host offered it, so the fallback is the host's choice, not a bad offer.
#[test]
fn inline_offer_falls_back_while_the_buses_do_not_drive_it() {
    let link = Carveout::with_buffers(8);
    let mut table =
        IntercoreRpmsgTable::standard(&link.spec, INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE);
    table.intercore.body.inline_max = intercore::wire::Le32::new(112);
    link.mem.write(link.rsc.offset, table.as_bytes());
    let e = table.intercore.body;
    assert_eq!(
        inline::negotiate(Some((e.features.get(), e.inline_max.get())), true),
        Some(112)
    );
    let accepted = link.rsc.offset
        + core::mem::offset_of!(IntercoreRpmsgTable, intercore)
        + INTERCORE_ACCEPTED_OFFSET;
    let (hb, _rb) = intercore::testing::ThreadBell::pair();
    let host = intercore::rpmsg::HostBus::new(
        std::sync::Arc::clone(&link.mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    assert_eq!(link.mem.load_u32(accepted, Relaxed), INTERCORE_F_IN_ORDER);
    drop(host);
    let (mut host, mut remote) = link
        .connect::<8>(HostConfig::default(), WaitMode::Poll)
        .unwrap();
    assert!(host.in_order() && remote.in_order());
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    let t = Some(Duration::from_secs(5));
    host.send_raw(h, r, b"ping", t).unwrap();
    let got = remote
        .recv_any_with(t, |m| (m.dst, m.payload.to_vec()))
        .unwrap();
    assert_eq!(got.0, r);
    let got = got.1;
    assert_eq!(got, b"ping");
}
