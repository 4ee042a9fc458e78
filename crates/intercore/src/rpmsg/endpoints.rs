//! What both bus roles share: the endpoint-address type, one endpoint table with one
//! address allocator, and the link core (doorbell, sticky error, common counters).
//!
//! The roles differ only in what they do with the rings (the host owns every buffer, the
//! remote fills and returns the host's) and in the storage of their table (a `Vec` on the
//! host, a fixed array of `N` slots on the `no_std` remote); everything written here is
//! written once.

use crate::{Doorbell, Error, Result};
use core::fmt;
use core::marker::PhantomData;
use intercore_wire::rpmsg::{
    Name, NsAnnouncement, NsKind, RPMSG_ADDR_ANY, RPMSG_NS_ADDR, RPMSG_NS_MSG_SIZE,
    RPMSG_RESERVED_ADDRESSES,
};

/// An rpmsg endpoint address (the `src`/`dst` of the 16-byte header). Every address the
/// buses take is `impl Into<EndpointAddr>`, so a plain `u32` works wherever one does; the
/// buses hand addresses back as `u32`, the wire's own representation (`u32::from` and
/// [`EndpointAddr::get`] convert for free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct EndpointAddr(pub u32);

impl EndpointAddr {
    /// `RPMSG_ADDR_ANY` (0xFFFFFFFF): "no address", never a local endpoint.
    pub const ANY: Self = Self(RPMSG_ADDR_ANY);
    /// The name service (53).
    pub const NS: Self = Self(RPMSG_NS_ADDR);
    /// The first dynamic address (1024): below it the range Linux reserves for fixed
    /// services; our own dynamic endpoints are allocated from here.
    pub const FIRST_DYNAMIC: Self = Self(RPMSG_RESERVED_ADDRESSES);

    /// The address as the wire carries it.
    pub const fn get(self) -> u32 {
        self.0
    }
    /// In the reserved range 0..1024 (fixed services; never allocated dynamically).
    pub const fn is_reserved(self) -> bool {
        self.0 < RPMSG_RESERVED_ADDRESSES
    }
    /// Whether a local endpoint may be created at this address by request (anything but
    /// `RPMSG_ADDR_ANY` and the name service's 53).
    pub const fn is_bindable(self) -> bool {
        self.0 != RPMSG_ADDR_ANY && self.0 != RPMSG_NS_ADDR
    }
    /// The next dynamic address after this one: 1024 upwards, wrapping back to 1024
    /// before `RPMSG_ADDR_ANY`.
    const fn next_dynamic(self) -> Self {
        if self.0 >= RPMSG_ADDR_ANY - 1 || self.0 < RPMSG_RESERVED_ADDRESSES {
            Self::FIRST_DYNAMIC
        } else {
            Self(self.0 + 1)
        }
    }
}

impl From<u32> for EndpointAddr {
    fn from(a: u32) -> Self {
        Self(a)
    }
}

impl From<EndpointAddr> for u32 {
    fn from(a: EndpointAddr) -> u32 {
        a.0
    }
}

impl fmt::Display for EndpointAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// One local endpoint: what both roles keep (address, name, whether announced) and what
/// one role adds (`ext`: the host's receive queue; nothing on the remote).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub(crate) struct Entry<X> {
    pub addr: u32,
    pub name: Name,
    pub announced: bool,
    pub ext: X,
}

/// The storage of an endpoint table: a fixed array on the remote (looked up by a scan of
/// its `N` slots, `N` a compile-time constant), an [`Indexed`] vector on the host (looked
/// up through a hash index: O(1) per message however many endpoints the host opens).
pub(crate) trait Slots<X> {
    fn slots(&self) -> &[Option<Entry<X>>];
    /// Entry `i`, mutable (its `addr` is private to the table: the index keys on it).
    fn slot_mut(&mut self, i: usize) -> Option<&mut Entry<X>>;
    /// The slot holding endpoint `addr`.
    fn find(&self, addr: u32) -> Option<usize>;
    /// Puts `e` in a free slot (growing the storage if it can); `Err(e)` when full.
    fn put(&mut self, e: Entry<X>) -> core::result::Result<(), Entry<X>>;
    /// Empties slot `i`.
    fn take(&mut self, i: usize) -> Option<Entry<X>>;
}

impl<X, const N: usize> Slots<X> for [Option<Entry<X>>; N] {
    fn slots(&self) -> &[Option<Entry<X>>] {
        self
    }
    fn slot_mut(&mut self, i: usize) -> Option<&mut Entry<X>> {
        self.get_mut(i)?.as_mut()
    }
    fn find(&self, addr: u32) -> Option<usize> {
        self.iter()
            .position(|s| s.as_ref().is_some_and(|e| e.addr == addr))
    }
    fn put(&mut self, e: Entry<X>) -> core::result::Result<(), Entry<X>> {
        match self.iter_mut().find(|s| s.is_none()) {
            Some(s) => {
                *s = Some(e);
                Ok(())
            }
            None => Err(e),
        }
    }
    fn take(&mut self, i: usize) -> Option<Entry<X>> {
        self.get_mut(i).and_then(Option::take)
    }
}

/// The host's endpoint storage: entries in a vector whose freed slots are reused, and a
/// hash index from address to slot, so lookup, creation and removal cost the same with
/// one endpoint or thousands.
#[cfg(feature = "alloc")]
pub(crate) struct Indexed<X> {
    slots: alloc::vec::Vec<Option<Entry<X>>>,
    free: alloc::vec::Vec<usize>,
    index: hashbrown::HashMap<u32, usize>,
}

#[cfg(feature = "alloc")]
impl<X> Default for Indexed<X> {
    fn default() -> Self {
        Self {
            slots: alloc::vec::Vec::new(),
            free: alloc::vec::Vec::new(),
            index: hashbrown::HashMap::new(),
        }
    }
}

#[cfg(feature = "alloc")]
impl<X> Slots<X> for Indexed<X> {
    fn slots(&self) -> &[Option<Entry<X>>] {
        &self.slots
    }
    fn slot_mut(&mut self, i: usize) -> Option<&mut Entry<X>> {
        self.slots.get_mut(i)?.as_mut()
    }
    fn find(&self, addr: u32) -> Option<usize> {
        // Dynamic addresses are handed out in order from 1024 and slots filled in order,
        // so endpoint 1024 + i is usually in slot i: one compare instead of a hash per
        // message (the slot's own address says whether the guess is right).
        let guess = addr.wrapping_sub(RPMSG_RESERVED_ADDRESSES) as usize;
        if let Some(Some(e)) = self.slots.get(guess) {
            if e.addr == addr {
                return Some(guess);
            }
        }
        self.index.get(&addr).copied()
    }
    fn put(&mut self, e: Entry<X>) -> core::result::Result<(), Entry<X>> {
        let addr = e.addr;
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(e);
                i
            }
            None => {
                self.slots.push(Some(e));
                self.slots.len() - 1
            }
        };
        self.index.insert(addr, i);
        Ok(())
    }
    fn take(&mut self, i: usize) -> Option<Entry<X>> {
        let e = self.slots.get_mut(i).and_then(Option::take)?;
        self.index.remove(&e.addr);
        self.free.push(i);
        Some(e)
    }
}

/// The local endpoints of one bus and the dynamic-address allocator.
pub(crate) struct Endpoints<X, S> {
    slots: S,
    next: EndpointAddr,
    len: usize,
    _x: PhantomData<X>,
}

#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
impl<X, S: Slots<X>> Endpoints<X, S> {
    pub fn new(slots: S) -> Self {
        Self {
            slots,
            next: EndpointAddr::FIRST_DYNAMIC,
            len: 0,
            _x: PhantomData,
        }
    }
    /// Where the allocator will look next (kept across a host's reconnect).
    pub fn next_dynamic(&self) -> EndpointAddr {
        self.next
    }
    pub fn set_next_dynamic(&mut self, a: EndpointAddr) {
        self.next = a;
    }
    pub fn iter(&self) -> impl Iterator<Item = &Entry<X>> {
        self.slots.slots().iter().flatten()
    }
    pub fn contains(&self, addr: u32) -> bool {
        self.slots.find(addr).is_some()
    }
    pub fn get(&self, addr: u32) -> Result<&Entry<X>> {
        self.slots
            .find(addr)
            .and_then(|i| self.slots.slots()[i].as_ref())
            .ok_or(Error::NoSuchEndpoint(addr))
    }
    pub fn get_mut(&mut self, addr: u32) -> Result<&mut Entry<X>> {
        self.slots
            .find(addr)
            .and_then(|i| self.slots.slot_mut(i))
            .ok_or(Error::NoSuchEndpoint(addr))
    }
    pub fn count(&self) -> usize {
        self.len
    }

    /// Creates an endpoint named `name` at `addr`, or (`None`) at the next free dynamic
    /// address: from 1024 upwards, skipping addresses in use, wrapping back to 1024 before
    /// `RPMSG_ADDR_ANY`. `AddressInUse` for `RPMSG_ADDR_ANY`, 53 or an address taken;
    /// `Exhausted` when the table is full.
    pub fn create(&mut self, name: &str, addr: Option<u32>, ext: X) -> Result<u32> {
        let name = Name::new(name.as_bytes()).ok_or(Error::Config(
            "endpoint name longer than 31 bytes or with a NUL",
        ))?;
        let dynamic = addr.is_none();
        let addr = match addr.map(EndpointAddr) {
            Some(EndpointAddr(a)) if !EndpointAddr(a).is_bindable() || self.contains(a) => {
                return Err(Error::AddressInUse(a));
            }
            Some(a) => a,
            None => {
                // At most `len` addresses are taken: the scan ends within `len + 1` steps.
                let mut a = self.next;
                while self.contains(a.0) {
                    a = a.next_dynamic();
                }
                a
            }
        };
        self.insert(addr.0, name, ext)?;
        if dynamic {
            self.next = addr.next_dynamic();
        }
        Ok(addr.0)
    }

    /// Puts an endpoint in a free slot as it is (a host's reconnect carries its endpoints
    /// over this way); the caller has checked the address.
    pub fn insert(&mut self, addr: u32, name: Name, ext: X) -> Result<()> {
        let e = Entry {
            addr,
            name,
            announced: false,
            ext,
        };
        self.slots
            .put(e)
            .map_err(|_| Error::Exhausted("endpoint table"))?;
        self.len += 1;
        Ok(())
    }

    /// Removes endpoint `addr` from the table.
    pub fn remove(&mut self, addr: u32) -> Result<Entry<X>> {
        let e = self
            .slots
            .find(addr)
            .and_then(|i| self.slots.take(i))
            .ok_or(Error::NoSuchEndpoint(addr))?;
        self.len -= 1;
        Ok(e)
    }
}

/// The name-service message announcing (`Create`) or withdrawing (`Destroy`) an endpoint.
/// Both roles send it **from the endpoint's own address** to 53, as Linux
/// (`virtio_rpmsg_announce_create`/`_destroy`: `rpmsg_sendto(rpdev->ept, …,
/// RPMSG_NS_ADDR)`) and OpenAMP (`rpmsg_destroy_ept`) do.
pub(crate) fn ns_message(name: Name, addr: u32, kind: NsKind) -> [u8; RPMSG_NS_MSG_SIZE] {
    let msg = NsAnnouncement { name, addr, kind }.emit();
    let mut out = [0u8; RPMSG_NS_MSG_SIZE];
    out.copy_from_slice(zerocopy::IntoBytes::as_bytes(&msg));
    out
}

/// Counters both roles keep the same way.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub sent: u64,
    pub received: u64,
    pub kicks: u64,
    pub no_endpoint: u64,
    pub malformed: u64,
}

/// The part of a link both roles run identically: the doorbell and the notify ids it
/// rings, the sticky error, the common counters.
pub(crate) struct Core<D> {
    pub bell: D,
    pub notify_ids: [u32; 2],
    pub broken: Option<Error>,
    pub count: Counters,
}

impl<D: Doorbell> Core<D> {
    pub fn new(bell: D, notify_ids: [u32; 2]) -> Self {
        Self {
            bell,
            notify_ids,
            broken: None,
            count: Counters::default(),
        }
    }

    /// The sticky error, if the link is dead.
    pub fn check(&self) -> Result<()> {
        match self.broken {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records link-fatal errors (a peer that broke the protocol, a peer gone) so every
    /// later call reports them too; returns `e`.
    pub fn fail(&mut self, e: Error) -> Error {
        if matches!(e, Error::Protocol { .. } | Error::PeerGone) {
            self.broken.get_or_insert(e);
        }
        e
    }

    /// Rings the peer about vring `ring`.
    pub fn kick(&mut self, ring: usize) -> Result<()> {
        self.count.kicks += 1;
        self.bell
            .ring(self.notify_ids[ring])
            .map_err(|e| self.fail(e))
    }
}

/// "Nothing yet" is `Err(WouldBlock)` from each attempt inside both roles' blocking calls;
/// the calls turn it into another try (or, when the time is up, `Timeout`). This adapter is
/// what every blocking call passes to its `block_on`.
pub(crate) fn pending<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Err(Error::WouldBlock) => Ok(None),
        r => r.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_addresses_wrap_and_skip_used_ones() {
        let mut t: Endpoints<(), [Option<Entry<()>>; 4]> = Endpoints::new([const { None }; 4]);
        assert_eq!(t.create("a", None, ()), Ok(1024));
        assert_eq!(t.create("b", Some(1025), ()), Ok(1025));
        assert_eq!(t.create("c", None, ()), Ok(1026), "1025 is taken");
        t.remove(1024).unwrap();
        t.set_next_dynamic(EndpointAddr(RPMSG_ADDR_ANY - 1));
        assert_eq!(t.create("d", None, ()), Ok(RPMSG_ADDR_ANY - 1));
        assert_eq!(t.create("e", None, ()), Ok(1024), "wrapped before ANY");
        assert_eq!(
            t.create("f", None, ()),
            Err(Error::Exhausted("endpoint table"))
        );
        assert_eq!(t.next_dynamic(), EndpointAddr(1025));
    }

    /// The host's indexed table: 256 endpoints created, looked up, half removed and
    /// replaced; freed slots are reused (the storage does not grow) and every lookup finds
    /// exactly its own entry.
    #[test]
    fn indexed_table_finds_every_endpoint_and_reuses_slots() {
        let mut t: Endpoints<u32, Indexed<u32>> = Endpoints::new(Indexed::default());
        let addrs: alloc::vec::Vec<u32> =
            (0..256).map(|i| t.create("e", None, i).unwrap()).collect();
        assert_eq!(t.count(), 256);
        for (i, &a) in addrs.iter().enumerate() {
            assert_eq!(t.get(a).map(|e| e.ext), Ok(i as u32));
        }
        for &a in addrs.iter().step_by(2) {
            assert_eq!(t.remove(a).map(|e| e.addr), Ok(a));
            assert_eq!(t.get(a).map(|e| e.addr), Err(Error::NoSuchEndpoint(a)));
        }
        assert_eq!(t.count(), 128);
        for i in 0..128 {
            t.create("f", None, 1000 + i).unwrap();
        }
        assert_eq!(t.count(), 256);
        assert_eq!(t.slots.slots().len(), 256, "freed slots were reused");
        for &a in addrs.iter().skip(1).step_by(2) {
            assert_eq!(t.get_mut(a).map(|e| e.addr), Ok(a));
        }
        assert_eq!(t.remove(7).err(), Some(Error::NoSuchEndpoint(7)));
        assert_eq!(
            t.create("g", Some(addrs[1]), 0),
            Err(Error::AddressInUse(addrs[1]))
        );
    }

    /// The lookup's guess (endpoint 1024 + i in slot i) is only taken when the slot holds
    /// that address: fixed addresses, removals and slots reused by other addresses all
    /// still find exactly their own entry.
    #[test]
    fn indexed_lookup_guesses_only_what_the_slot_confirms() {
        let mut t: Endpoints<u32, Indexed<u32>> = Endpoints::new(Indexed::default());
        // Slot 0 holds 1030, slot 1 holds 1024 (the guess for 1024 is slot 0: wrong).
        assert_eq!(t.create("fixed", Some(1030), 0), Ok(1030));
        assert_eq!(t.create("dyn", None, 1), Ok(1024));
        assert_eq!(t.create("low", Some(7), 2), Ok(7));
        assert_eq!(t.get(1024).map(|e| e.ext), Ok(1));
        assert_eq!(t.get(1030).map(|e| e.ext), Ok(0));
        assert_eq!(t.get(7).map(|e| e.ext), Ok(2));
        // 1025: its guess (slot 1) holds 1024; 1026: its guess (slot 2) holds 7.
        assert_eq!(t.get(1025).err(), Some(Error::NoSuchEndpoint(1025)));
        assert_eq!(t.get(1026).err(), Some(Error::NoSuchEndpoint(1026)));
        t.remove(1030).unwrap();
        assert_eq!(t.get(1030).err(), Some(Error::NoSuchEndpoint(1030)));
        // Slot 0 reused by the next dynamic address (1025): its guess is slot 1 (1024).
        assert_eq!(t.create("next", None, 3), Ok(1025));
        assert_eq!(t.get_mut(1025).map(|e| e.ext), Ok(3));
        assert_eq!(t.get(1024).map(|e| e.ext), Ok(1));
        assert!(!t.contains(1030) && t.contains(7));
    }

    #[test]
    fn any_and_the_name_service_are_refused() {
        let mut t: Endpoints<(), [Option<Entry<()>>; 2]> = Endpoints::new([const { None }; 2]);
        assert_eq!(t.create("a", Some(53), ()), Err(Error::AddressInUse(53)));
        assert_eq!(
            t.create("a", Some(RPMSG_ADDR_ANY), ()),
            Err(Error::AddressInUse(RPMSG_ADDR_ANY))
        );
        assert_eq!(t.create("a", Some(30), ()), Ok(30));
        assert!(EndpointAddr(30).is_reserved() && !EndpointAddr(1024).is_reserved());
        assert_eq!(t.create("b", Some(30), ()), Err(Error::AddressInUse(30)));
    }
}
