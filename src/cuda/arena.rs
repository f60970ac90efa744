//! Arena allocation: one device allocation per region, handed out in 256-byte aligned slots.
//!
//! The engine uses two regions: a persistent one (parameters, optimizer state, Gaussians) that lives for the
//! whole run, and a transient one (activations, gradients of intermediates, sort buffers) that is reset at the
//! start of every step. Handing out slots is a bump of an offset, so a step allocates nothing from the driver
//! and a captured CUDA graph sees the same addresses on every replay.
//!
//! `ArenaLayout` is the bookkeeping alone (testable without a GPU); `Arena` pairs it with the device memory.
//! A slot (`DevBuf`) is a plain pointer + length: it does not borrow the arena, and it is invalid after the
//! region is reset or dropped. In test mode (`Gpu::poison`) every new slot is filled with NaN bit patterns so
//! that code relying on zeroed or stale memory fails.

use crate::error::{Error, Result};
use std::marker::PhantomData;

/// Slot alignment in bytes: enough for 16-byte vector loads and for coalesced 128-byte lines.
pub const ARENA_ALIGN: usize = 256;

/// Offsets and sizes of one region; no device memory.
#[derive(Debug, Clone)]
pub struct ArenaLayout {
    name: &'static str,
    capacity: usize,
    offset: usize,
    high_water: usize,
}

impl ArenaLayout {
    pub fn new(name: &'static str, capacity: usize) -> Self {
        ArenaLayout { name, capacity, offset: 0, high_water: 0 }
    }

    /// Reserves `bytes` and returns the slot's offset from the region's base (a multiple of ARENA_ALIGN).
    pub fn take(&mut self, bytes: usize) -> Result<usize> {
        let start = self.offset.next_multiple_of(ARENA_ALIGN);
        let end = start.checked_add(bytes).filter(|&e| e <= self.capacity).ok_or_else(|| {
            Error::input(format!(
                "{} arena exhausted: {} bytes requested with {} of {} in use; \
                 raise the region's size (it is set from the model and batch sizes)",
                self.name,
                bytes,
                start.min(self.capacity),
                self.capacity
            ))
        })?;
        self.offset = end;
        self.high_water = self.high_water.max(end);
        Ok(start)
    }

    /// Frees every slot at once; the high-water mark is kept.
    pub fn reset(&mut self) {
        self.offset = 0;
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn in_use(&self) -> usize {
        self.offset
    }
    /// The most bytes ever in use at once since the region was created.
    pub fn high_water(&self) -> usize {
        self.high_water
    }
}

/// A slot of `len` elements of `T` in device memory. Copyable; owned by its arena.
#[derive(Debug)]
pub struct DevBuf<T> {
    ptr: u64,
    len: usize,
    _elem: PhantomData<T>,
}

impl<T> Clone for DevBuf<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DevBuf<T> {}

impl<T> DevBuf<T> {
    /// # Safety
    /// `ptr` must point to `len` elements of device memory that stay valid while the buffer is used.
    pub unsafe fn from_raw(ptr: u64, len: usize) -> Self {
        DevBuf { ptr, len, _elem: PhantomData }
    }
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
    /// Elements `start..start+len` of this buffer.
    pub fn slice(&self, start: usize, len: usize) -> DevBuf<T> {
        assert!(start + len <= self.len, "slice {start}+{len} out of a buffer of {}", self.len);
        DevBuf { ptr: self.ptr + (start * std::mem::size_of::<T>()) as u64, len, _elem: PhantomData }
    }
}

/// A region of device memory: one driver allocation and its layout.
pub struct Arena {
    layout: ArenaLayout,
    base: u64,
}

impl Arena {
    /// Allocates the region's device memory (the only driver allocation it makes).
    pub fn new(name: &'static str, capacity: usize) -> Result<Self> {
        let base = if capacity == 0 {
            0
        } else {
            unsafe { cudarc::driver::result::malloc_sync(capacity) }.map_err(|e| {
                Error::cuda(format!("allocating the {name} arena ({} MiB)", capacity >> 20), e)
            })?
        };
        Ok(Arena { layout: ArenaLayout::new(name, capacity), base })
    }

    /// A new slot of `len` elements. Its content is undefined (NaN-poisoned under `Gpu::poison`).
    pub fn alloc<T>(&mut self, gpu: &super::Gpu, len: usize) -> Result<DevBuf<T>> {
        let bytes = len * std::mem::size_of::<T>();
        let offset = self.layout.take(bytes)?;
        let buf = unsafe { DevBuf::from_raw(self.base + offset as u64, len) };
        if gpu.poison() {
            gpu.poison_bytes(buf.ptr(), bytes)?;
        }
        Ok(buf)
    }

    pub fn reset(&mut self) {
        self.layout.reset();
    }
    /// "name arena: X MiB high water of Y MiB", for reports.
    pub fn usage(&self) -> String {
        let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
        format!(
            "{} arena: {:.1} MiB high water of {:.1} MiB",
            self.layout.name(),
            mib(self.layout.high_water()),
            mib(self.layout.capacity())
        )
    }
    pub fn layout(&self) -> &ArenaLayout {
        &self.layout
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if self.base != 0 {
            // Nothing useful can be done with a failure to free at drop time.
            let _ = unsafe { cudarc::driver::result::free_sync(self.base) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_and_disjoint() {
        let mut a = ArenaLayout::new("test", 10_000);
        let x = a.take(3).unwrap();
        let y = a.take(1).unwrap();
        let z = a.take(300).unwrap();
        assert_eq!(x, 0);
        assert_eq!(y % ARENA_ALIGN, 0);
        assert_eq!(z % ARENA_ALIGN, 0);
        assert!(y >= x + 3 && z >= y + 1);
        assert_eq!(a.in_use(), z + 300);
    }

    #[test]
    fn reset_reuses_memory_and_keeps_high_water() {
        let mut a = ArenaLayout::new("test", 4096);
        a.take(1000).unwrap();
        a.take(1000).unwrap();
        let hw = a.high_water();
        assert_eq!(hw, 256 * 4 + 1000);
        a.reset();
        assert_eq!(a.in_use(), 0);
        assert_eq!(a.take(10).unwrap(), 0);
        assert_eq!(a.high_water(), hw);
    }

    #[test]
    fn exhaustion_is_an_error_naming_the_region() {
        let mut a = ArenaLayout::new("transient", 1024);
        a.take(1000).unwrap();
        let err = a.take(100).unwrap_err().to_string();
        assert!(err.contains("transient arena exhausted"), "{err}");
        assert!(err.contains("100 bytes requested"), "{err}");
        // A failed request leaves the layout unchanged.
        assert_eq!(a.in_use(), 1000);
        assert!(a.take(usize::MAX).is_err());
        a.reset();
        assert_eq!(a.take(1024).unwrap(), 0);
    }
}
