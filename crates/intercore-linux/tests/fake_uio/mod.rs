//! A fake of the hardware behind a UIO doorbell, for tests: the register block is a memfd
//! both sides map, each UIO device is one end of a socket pair whose other end this fake
//! holds (it writes the 4-byte interrupt counts `read` returns and reads the 4-byte
//! irqcontrol writes), and a thread plays the mailbox.
//!
//! What it models (from `drivers/uio/uio.c`, `uio_pdrv_genirq.c`, `omap-mailbox.c` and the
//! ZynqMP IPI registers): a message written by a sender raises the receiver's interrupt
//! status, which stays raised (level) until the receiver acknowledges it; the UIO
//! interrupt is delivered (the count increments) only while enabled, and delivering it
//! disables it until the next irqcontrol write of 1. An acknowledgement is a write-1-to-
//! clear, which plain memory cannot show, so the fake raises a status register as
//! `bit | MARK` and takes a write of the value without `MARK` as the clear.
//!
//! What it cannot model: a register that pops on read. A message is taken by a load and a
//! store of the empty value, so a second ring landing between the two is merged into the
//! first (its wake-up is never lost, since the first one's interrupt is still pending, but
//! its id is not recorded).

#![allow(dead_code)]

use intercore::SharedMemory;
use intercore_linux::MemfdRegion;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Set in a raised status register; its absence after a write is the acknowledgement.
pub const MARK: u32 = 1 << 31;
/// An OMAP message slot with no message in it (an id the doorbell refuses to send).
pub const EMPTY: u32 = u32::MAX;

/// One direction: where the sender leaves a message and which side it interrupts.
pub struct Lane {
    /// The message: OMAP `MAILBOX_MESSAGE(tx)` (empty = [`EMPTY`]) or the IPI request buffer.
    pub msg: usize,
    /// For IPI: the sender's `TRIG` register and the receiver's bit (empty = bit clear).
    pub trig: Option<(usize, u32)>,
    /// The receiving side (index into the irqs).
    pub to: usize,
    /// The ids that reached the receiver.
    pub ids: Arc<Mutex<Vec<u32>>>,
}

/// One receiving side's interrupt.
pub struct Irq {
    /// The status register the receiver acknowledges (OMAP `IRQSTATUS(user)`, IPI `ISR`).
    pub status: usize,
    /// The bit raised in it (OMAP `NEWMSG(rx)`, IPI the sender's bit).
    pub bit: u32,
    /// The hardware end of the receiver's UIO device.
    pub sock: UnixStream,
}

/// The running fake; dropping it stops the thread.
pub struct FakeHw {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FakeHw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    irq: Irq,
    enabled: bool,
    pending: bool,
    count: i32,
}

fn take(regs: &MemfdRegion, lane: &Lane) -> Option<u32> {
    match lane.trig {
        None => {
            let v = regs.load_u32(lane.msg, Ordering::SeqCst);
            if v == EMPTY {
                return None;
            }
            regs.store_u32(lane.msg, EMPTY, Ordering::SeqCst);
            Some(u32::from_le(v))
        }
        Some((trig, bit)) => {
            let t = regs.load_u32(trig, Ordering::SeqCst);
            if u32::from_le(t) & bit == 0 {
                return None;
            }
            regs.store_u32(trig, 0, Ordering::SeqCst);
            Some(u32::from_le(regs.load_u32(lane.msg, Ordering::SeqCst)))
        }
    }
}

impl FakeHw {
    /// Starts the hardware thread over `regs` (the memfd both sides map).
    pub fn start(regs: MemfdRegion, lanes: Vec<Lane>, irqs: Vec<Irq>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        for i in &irqs {
            i.sock.set_nonblocking(true).unwrap();
        }
        let thread = std::thread::spawn(move || {
            let mut st: Vec<State> = irqs
                .into_iter()
                .map(|irq| State {
                    irq,
                    // Disabled until the doorbell enables it (so enabling is tested).
                    enabled: false,
                    pending: false,
                    count: 0,
                })
                .collect();
            while !s2.load(Ordering::Acquire) {
                for s in st.iter_mut() {
                    let mut b = [0u8; 4];
                    loop {
                        match s.irq.sock.read(&mut b) {
                            Ok(4) => s.enabled = i32::from_ne_bytes(b) != 0,
                            Ok(0) => return,
                            Ok(_) => panic!("irqcontrol writes are 4 bytes"),
                            Err(_) => break,
                        }
                    }
                }
                for (i, s) in st.iter_mut().enumerate() {
                    let v = u32::from_le(regs.load_u32(s.irq.status, Ordering::SeqCst));
                    if v != 0 && v & MARK == 0 {
                        // Acknowledged: the receiver drained what was there. A message
                        // found now may have come after the receiver's drain (this thread
                        // sees the acknowledgement late): as a FIFO still holding one
                        // keeps NEWMSG raised, it raises the interrupt again.
                        regs.store_u32(s.irq.status, 0, Ordering::SeqCst);
                        s.pending = false;
                        for l in lanes.iter().filter(|l| l.to == i) {
                            if let Some(id) = take(&regs, l) {
                                l.ids.lock().unwrap().push(id);
                                s.pending = true;
                            }
                        }
                        if s.pending {
                            let raised = (s.irq.bit | MARK).to_le();
                            regs.store_u32(s.irq.status, raised, Ordering::SeqCst);
                        }
                    }
                }
                for l in &lanes {
                    if let Some(id) = take(&regs, l) {
                        l.ids.lock().unwrap().push(id);
                        let s = &mut st[l.to];
                        s.pending = true;
                        regs.store_u32(s.irq.status, (s.irq.bit | MARK).to_le(), Ordering::SeqCst);
                    }
                }
                for s in st.iter_mut() {
                    if s.enabled && s.pending {
                        s.count += 1;
                        s.enabled = false;
                        let _ = s.irq.sock.write_all(&s.count.to_ne_bytes());
                    }
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

/// A probe of a lane's delivered ids, for the conformance suite.
pub fn probe(ids: &Arc<Mutex<Vec<u32>>>) -> Box<dyn FnMut() -> Vec<u32> + '_> {
    Box::new(move || std::mem::take(&mut *ids.lock().unwrap()))
}

/// The conformance suite's `settle` for this fake: waits (at most 5 s) until the hardware
/// thread has taken every message written to `lanes` (each `(msg, trig)` as in [`Lane`]),
/// as a real mailbox FIFO or IPI holds a ring the moment its register is written.
pub fn settle(regs: MemfdRegion, lanes: Vec<(usize, Option<(usize, u32)>)>) -> Box<dyn FnMut()> {
    Box::new(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let busy = lanes.iter().any(|&(msg, trig)| match trig {
                None => regs.load_u32(msg, Ordering::SeqCst) != EMPTY,
                Some((t, bit)) => u32::from_le(regs.load_u32(t, Ordering::SeqCst)) & bit != 0,
            });
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    })
}
