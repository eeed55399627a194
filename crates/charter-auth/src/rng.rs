//! Randomness from aws-lc-rs's system RNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// `N` random bytes.
///
/// aws-lc's RNG aborts the process itself when the operating system cannot supply entropy,
/// so the error branch is unreachable in practice. Should it ever be taken we abort as well:
/// handing out predictable secrets, key ids or token ids would be worse than stopping.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if SystemRandom::new().fill(&mut out).is_err() {
        std::process::abort();
    }
    out
}
