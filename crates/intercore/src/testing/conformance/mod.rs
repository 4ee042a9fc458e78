//! Conformance suites for the four traits a platform implements: [`shared_memory`],
//! [`doorbell`], [`cache_ops`] and [`device_address_map`].
//!
//! Each suite is written once, against the trait's documented contract, and run for every
//! implementation in the workspace (each crate's `tests/conformance.rs`) — the way iceoryx2
//! runs one generic test suite per concept over every backend. A new implementation (a
//! board's mailbox, a vendor's cache instructions, an IOMMU's address map) should be run
//! through its suite before it is used.
//!
//! A suite returns `Err(`[`Violation`]`)` naming the first rule the implementation broke;
//! a panic where the contract does not ask for one is reported the same way. Each suite is
//! itself tested against a deliberately broken implementation that it must reject.
//!
//! The suites are destructive: they write patterns over the whole region (or the rings and
//! counters of the doorbells) and expect nothing else to use what they are given while
//! they run.
#![allow(unsafe_code)]

use crate::dataplane::CacheOps;
use crate::{DevAddr, DeviceAddressMap, Doorbell, Error, SharedMemory};
use core::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A rule of a trait's contract that an implementation broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule, as the suite states it.
    pub rule: &'static str,
    /// What the suite saw instead.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "contract violated: {} ({})", self.rule, self.detail)
    }
}

impl std::error::Error for Violation {}

/// What a suite returns.
pub type Outcome = Result<(), Violation>;

fn violation(rule: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

macro_rules! ensure {
    ($cond:expr, $rule:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(violation($rule, format!($($fmt)+)));
        }
    };
}

/// Whether `f` panics (the panic is caught).
fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// Runs a suite body, turning a panic the contract does not call for into a violation.
fn guarded(body: impl FnOnce() -> Outcome) -> Outcome {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(violation(
                "no panic where the contract does not call for one",
                msg,
            ))
        }
    }
}

/// A byte pattern that differs per `seed` and per position.
fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ 0x5a)
        .collect()
}

fn first_difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => format!(
            "first difference at +{i:#x}: {:#04x}, expected {:#04x}",
            got[i], want[i]
        ),
        None => format!("lengths {} and {}", got.len(), want.len()),
    }
}

mod addr;
mod cache;
mod doorbell;
mod shm;

pub use addr::*;
pub use cache::*;
pub use doorbell::*;
pub use shm::*;
