//! Giving freed heap back to the kernel. glibc keeps what a large operation freed (a GET
//! or HGET of a 100,000-node MO frees tens of MiB in small blocks) mapped in its arenas
//! for reuse, so an idle daemon would stay as large as its largest session for good;
//! `malloc_trim` returns the free pages (docs/performance.md).

/// Sets the C library allocator up for a long-running daemon that is mostly idle, each
/// setting unless the administrator chose it with glibc's environment variable:
/// - one arena for every thread (`MALLOC_ARENA_MAX=1`): glibc gives each thread that
///   allocates an arena of its own; after a large session the runtime's and the blocking
///   pool's threads left partly used pages in four of them, about a MiB that
///   `malloc_trim` cannot return. The daemon's threads mostly wait on I/O and hardly
///   contend for one.
/// - blocks of 256 KiB and more mapped on their own, always (`MALLOC_MMAP_THRESHOLD_`):
///   glibc otherwise raises that threshold after the first large block is freed, so the
///   next large buffers (a GET's document, a package's body) grow inside the heap, where
///   growing copies them and freeing them leaves holes; mapped, they grow in place
///   (`mremap`) and go back to the kernel when freed.
///
/// docs/performance.md has the figures with and without. Call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            glibc::set(libc::M_ARENA_MAX, 1);
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            glibc::set(libc::M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}

/// Whether [`give_back`] trims; see [`keep_freed_memory`].
static GIVE_BACK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Returns the heap's free pages to the kernel; a no-op where the C library has no
/// `malloc_trim` (musl), or after [`keep_freed_memory`].
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if GIVE_BACK.load(std::sync::atomic::Ordering::Relaxed) {
        glibc::trim();
    }
}

/// Stops [`give_back`] from trimming, for a process that runs many daemons (omadm-fleetsim):
/// there the heap is always busy, what one device frees another takes again, and a trim
/// after every session would walk a heap of gigabytes thousands of times a minute.
pub fn keep_freed_memory() {
    GIVE_BACK.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// The crate's only `unsafe`: glibc allocator calls without preconditions.
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

    pub(super) fn set(param: libc::c_int, value: libc::c_int) {
        // SAFETY: mallopt(3) takes two plain integers and changes a setting under the
        // allocator's own lock; it reports an unknown or refused setting by returning 0,
        // which leaves glibc's default, harmless.
        if unsafe { libc::mallopt(param, value) } == 0 {
            tracing::debug!(
                param,
                value,
                "mallopt refused a setting; glibc's default stays"
            );
        }
    }
}
