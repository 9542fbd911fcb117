//! Giving freed heap back to the kernel. glibc keeps what a large operation freed (a GET
//! or HGET of a 100,000-node MO frees tens of MiB in small blocks) mapped in its arenas
//! for reuse, so an idle daemon would stay as large as its largest session for good;
//! `malloc_trim` returns the free pages (docs/performance.md).

/// Returns the heap's free pages to the kernel; a no-op where the C library has no
/// `malloc_trim` (musl).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::trim();
}

/// The crate's only `unsafe`: a glibc allocator call without preconditions.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod glibc {
    pub(super) fn trim() {
        // SAFETY: malloc_trim(3) takes a plain integer (the padding to keep), touches only
        // the allocator's own free lists under its own locks, and may be called from any
        // thread at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
