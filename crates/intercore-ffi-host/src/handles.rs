//! The handles C holds: opaque tokens into a per-thread table, never addresses.
//!
//! A handle is a number (a fresh one for every object, never reused) carried in a pointer
//! type so that C's type checker keeps boards, endpoints and buffers apart. The library
//! never dereferences it: every call looks it up in the calling thread's table, so a handle
//! that was freed, closed with its board, made on another thread or is of another kind is
//! refused (`INTERCORE_HOST_E_INVALID`), and a second free of the same handle is too.
//!
//! The table is per thread because the objects are: a data-plane pool's cache operations
//! are shared through an `Arc` that is neither `Send` nor `Sync` (`PoolCache`), and a
//! board, its endpoints and its buffers use it together.

use crate::{Fail, Res};
use intercore::dataplane::{Completed, DpHost, WritableBuf};
use intercore::rpmsg::Channel;
use intercore_board::{Board, Link, PoolCache};
use std::cell::RefCell;
use std::collections::HashMap;

/// A board opened from a board file: its live link and, once opened, its data plane.
pub(crate) struct BoardObj {
    pub board: Board,
    pub link: Link,
    pub dp: Option<DpHost<PoolCache>>,
}

/// What a handle names.
pub(crate) enum Obj {
    Board(Box<BoardObj>),
    Endpoint {
        board: u64,
        ch: Channel,
    },
    /// A data-plane buffer the program owns: fill it, then submit or free it.
    Writable {
        board: u64,
        buf: WritableBuf<PoolCache>,
    },
    /// A buffer the remote handed back: read it, then free (or reuse) it.
    Completed {
        board: u64,
        buf: Completed<PoolCache>,
    },
}

impl Obj {
    fn kind(&self) -> &'static str {
        match self {
            Obj::Board(_) => "a board",
            Obj::Endpoint { .. } => "an endpoint",
            Obj::Writable { .. } => "a writable buffer",
            Obj::Completed { .. } => "a completed buffer",
        }
    }
    /// The board this object came from (a board: itself).
    fn board(&self, id: u64) -> u64 {
        match self {
            Obj::Board(_) => id,
            Obj::Endpoint { board, .. }
            | Obj::Writable { board, .. }
            | Obj::Completed { board, .. } => *board,
        }
    }
}

/// This thread's live objects.
pub(crate) struct Table {
    next: u64,
    objs: HashMap<u64, Obj>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table { next: 1, objs: HashMap::new() });
}

/// Runs `f` on this thread's table. No call of the C ABI runs inside another (no
/// callbacks), so the table is never borrowed twice.
pub(crate) fn with<T>(f: impl FnOnce(&mut Table) -> Res<T>) -> Res<T> {
    TABLE
        .try_with(|t| match t.try_borrow_mut() {
            Ok(mut t) => f(&mut t),
            Err(_) => Err(Fail::new(
                crate::INTERCORE_HOST_E_INTERNAL,
                "the handle table is in use (an intercore call inside another)",
            )),
        })
        .unwrap_or_else(|_| {
            Err(Fail::invalid(
                "this thread is exiting: its handles are gone",
            ))
        })
}

/// The handle of `id`, as the pointer type C holds.
pub(crate) fn to_ptr<T>(id: u64) -> *mut T {
    // A token, not an address: it is never dereferenced (usize is 64 bits on the hosts
    // this library builds for, and ids are small).
    std::ptr::without_provenance_mut(id as usize)
}

/// The id a handle carries (`what` names the argument in the error).
pub(crate) fn id_of<T>(p: *const T, what: &str) -> Res<u64> {
    if p.is_null() {
        return Err(Fail::invalid(format!("{what} is NULL")));
    }
    Ok(p.addr() as u64)
}

fn stale(what: &str) -> Fail {
    Fail::invalid(format!(
        "{what} is not a live handle on this thread (freed already, closed with its board, \
         or created on another thread)"
    ))
}

impl Table {
    /// Registers `obj`; its handle's id.
    pub fn insert(&mut self, obj: Obj) -> u64 {
        let id = self.next;
        self.next += 1;
        self.objs.insert(id, obj);
        id
    }

    fn get(&mut self, id: u64, what: &str) -> Res<&mut Obj> {
        self.objs.get_mut(&id).ok_or_else(|| stale(what))
    }

    fn wrong(obj: &Obj, what: &str, want: &str) -> Fail {
        Fail::invalid(format!("{what} is {}, not {want}", obj.kind()))
    }

    /// The board `id`.
    pub fn board(&mut self, id: u64, what: &str) -> Res<&mut BoardObj> {
        match self.get(id, what)? {
            Obj::Board(b) => Ok(b),
            o => Err(Self::wrong(o, what, "a board")),
        }
    }

    /// The endpoint `id`: its board's id and channel.
    pub fn endpoint(&mut self, id: u64, what: &str) -> Res<(u64, Channel)> {
        match self.get(id, what)? {
            Obj::Endpoint { board, ch } => Ok((*board, *ch)),
            o => Err(Self::wrong(o, what, "an endpoint")),
        }
    }

    /// The object `id`, checked to be a buffer (either kind).
    pub fn buffer(&mut self, id: u64, what: &str) -> Res<&mut Obj> {
        match self.get(id, what)? {
            o @ (Obj::Writable { .. } | Obj::Completed { .. }) => Ok(o),
            o => Err(Self::wrong(o, what, "a data-plane buffer")),
        }
    }

    /// Removes the object `id` (checked to be of the kind `is` accepts, `want` naming it).
    pub fn remove(
        &mut self,
        id: u64,
        what: &str,
        want: &str,
        is: impl Fn(&Obj) -> bool,
    ) -> Res<Obj> {
        let o = self.get(id, what)?;
        if !is(o) {
            return Err(Self::wrong(o, what, want));
        }
        Ok(self.objs.remove(&id).expect("looked up just above"))
    }

    /// Removes the board `id` and every object obtained from it; the board comes back
    /// last, its children already gone, so that buffers return to the pool before the
    /// link ends.
    pub fn remove_board(&mut self, id: u64, what: &str) -> Res<Box<BoardObj>> {
        self.board(id, what)?;
        let children: Vec<u64> = self
            .objs
            .iter()
            .filter(|(k, o)| **k != id && o.board(**k) == id)
            .map(|(k, _)| *k)
            .collect();
        for k in children {
            drop(self.objs.remove(&k));
        }
        match self.objs.remove(&id) {
            Some(Obj::Board(b)) => Ok(b),
            _ => Err(Fail::new(
                crate::INTERCORE_HOST_E_INTERNAL,
                "the board vanished from the handle table",
            )),
        }
    }

    /// Puts `obj` back under the id it had (a buffer changing kind, same handle).
    pub fn reinsert(&mut self, id: u64, obj: Obj) {
        self.objs.insert(id, obj);
    }

    /// How many live handles this thread holds (tests: nothing leaks).
    pub fn live(&self) -> usize {
        self.objs.len()
    }
}
