//! The rpmsg bus in both roles, in one process (two threads over heap memory): name
//! service, endpoints, copy and zero-copy paths, flow control and errors. Behaviour follows
//! Linux's `drivers/rpmsg/virtio_rpmsg_bus.c` unless a test says otherwise.
//!
//! The suite runs twice: `split`, over a table without the intercore vendor entry (the
//! standard split ring every peer gets), and `inline`, over an intercore firmware's table
//! (inline-slot rings, negotiated by default between two intercore ends).

mod split {
    const INLINE: bool = false;
    include!("rpmsg/suite.rs");
}

mod inline {
    const INLINE: bool = true;
    include!("rpmsg/suite.rs");
}
