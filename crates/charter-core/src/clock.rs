//! The time source. Domain code never reads the clock; the edges hold a `Clock` and pass
//! `now` inward, so tests can move time instead of sleeping.

use jiff::Timestamp;

/// Something that tells the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}
