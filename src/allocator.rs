//! The worker binary allocates with mimalloc (set in `main.rs` and the benchmark): a job
//! allocates a few hundred small blocks (JSON, gRPC frames, the message), and glibc's malloc
//! and free took a fifth of a small send's instructions.
//!
//! mimalloc keeps freed pages for a second before giving them back to the system, so a large
//! read (tens of MB passing through transient buffers) left the process 11 MB above its
//! memory goal at its peak. [`return_freed_memory_at_once`] makes it give them back at once.

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc 3); the test
/// below recognises it by its default, so a renumbered option fails the build's tests
/// instead of setting something else.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once instead of after mimalloc's delay. Called
/// first thing in `main`; it wins over `MIMALLOC_PURGE_DELAY` in the environment (and the test
/// below expects that variable unset).
pub fn return_freed_memory_at_once() {
    // SAFETY: mi_option_set stores one integer option; it takes no pointers and is safe to
    // call at any time, from any thread.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        // SAFETY: reads one integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(default, 1000, "mimalloc's purge delay defaults to 1,000 ms");
    }
}
