//! Giving freed memory back to the system between passes.
//!
//! glibc's allocator keeps what a pass frees — the SDK's response buffers,
//! the snapshot, the plan — inside its arenas, and it opens one arena per
//! thread that allocates (up to 8 per core). Resident memory then settles
//! near the busiest pass's peak times the number of arenas, not near what
//! the daemon holds between passes: measured at 1,000 services, 122 MiB of
//! anonymous memory with the defaults against 69 MiB with one arena. Two
//! arenas (the runtime has two worker threads) and a trim after every pass
//! keep it close to the live heap. Elsewhere (musl, other systems) these are
//! no-ops.
//!
//! The only `unsafe` in the project (two libc calls), allowed here alone:
//! the workspace denies `unsafe_code` everywhere else.
#![allow(unsafe_code)]

/// Caps glibc's arenas at two; call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before the
    // runtime's threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the free pages of every arena to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks; it is safe to
    // call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
