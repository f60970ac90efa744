//! The CUDA backend: device discovery, one context and its streams, the embedded PTX modules, checked kernel
//! launches, arenas, the per-kernel profiler and CUDA-graph capture of a step.
//!
//! Everything goes through the driver API loaded at run time (cudarc with dynamic loading), so the binary
//! starts and the CPU backend works on machines without libcuda. Kernel arguments are plain device pointers
//! and scalars; buffers come from `arena`. Every launch is ordered after the previous one on the main stream,
//! but for those inside `on_side_stream`, which run on a second stream beside the main one's until it joins
//! (`join_side`, done first by every transfer, synchronization, timing and capture); nothing here
//! synchronizes the host unless asked (downloads, `synchronize`, profiler reports).

pub mod adam;
pub mod arena;
pub mod attention;
pub mod audio;
pub mod densify;
pub mod elementwise;
pub mod loss;
pub mod mlp;
pub mod profiler;
pub mod raster;
pub mod sort;
pub mod triplane;

pub use arena::{Arena, DevBuf};
pub use profiler::{Cost, ProfileTable};

use crate::error::{Error, Result};
use cudarc::driver::{result, sys, CudaContext, CudaFunction, CudaModule, CudaStream};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/ptx_modules.rs"));

/// What `gensync info` prints about the card.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: i32,
    pub total_memory: usize,
    pub l2_bytes: i32,
    pub driver_version: i32,
    /// Whether the families with an sm_90a variant load it (compute capability 9.0, unless
    /// GENSYNC_PORTABLE_PTX asks for the sm_80 code, to compare the two).
    pub sm90a_kernels: bool,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (compute {}.{}, {} SMs, {:.1} GiB, L2 {} MiB, driver CUDA {}.{}, {} kernels)",
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.multiprocessors,
            self.total_memory as f64 / (1u64 << 30) as f64,
            self.l2_bytes >> 20,
            self.driver_version / 1000,
            (self.driver_version % 1000) / 10,
            if self.sm90a_kernels { "sm_90a" } else { "sm_80" }
        )
    }
}

/// Why no GPU can be used, as one line for the user.
pub fn probe_unavailable() -> Option<String> {
    if !unsafe { sys::is_culib_present() } {
        return Some("no CUDA driver found".into());
    }
    if let Err(e) = result::init() {
        return Some(format!("the CUDA driver did not initialise ({e:?})"));
    }
    match result::device::get_count() {
        Ok(0) => Some("the CUDA driver sees no GPU".into()),
        Ok(_) => None,
        Err(e) => Some(format!("the CUDA driver could not count GPUs ({e:?})")),
    }
}

/// A kernel argument: a device pointer or a scalar, as the kernel's parameter list declares it.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Ptr(u64),
    F32(f32),
    I32(i32),
    I64(i64),
}

impl<T> From<DevBuf<T>> for Arg {
    fn from(b: DevBuf<T>) -> Self {
        Arg::Ptr(b.ptr())
    }
}
impl From<u64> for Arg {
    fn from(p: u64) -> Self {
        Arg::Ptr(p)
    }
}
impl From<f32> for Arg {
    fn from(x: f32) -> Self {
        Arg::F32(x)
    }
}
impl From<i32> for Arg {
    fn from(x: i32) -> Self {
        Arg::I32(x)
    }
}
impl From<i64> for Arg {
    fn from(x: i64) -> Self {
        Arg::I64(x)
    }
}

/// Grid, block and dynamic shared memory of one launch, and its declared cost.
#[derive(Debug, Clone, Copy)]
pub struct LaunchCfg {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub shared_bytes: u32,
    pub cost: Cost,
}

impl LaunchCfg {
    /// A 1-D launch of `blocks` blocks of `threads` threads.
    pub fn linear(blocks: u32, threads: u32, cost: Cost) -> Self {
        LaunchCfg { grid: (blocks, 1, 1), block: (threads, 1, 1), shared_bytes: 0, cost }
    }
    /// A 1-D launch with one thread per element.
    pub fn per_element(n: usize, threads: u32, cost: Cost) -> Self {
        Self::linear((n as u64).div_ceil(threads as u64).max(1) as u32, threads, cost)
    }
}

/// Launch timings kept pending before the profiler waits for the stream and folds them into its table.
const PROFILE_FOLD_AFTER: usize = 8192;

struct PendingTiming {
    kernel: &'static str,
    cost: Cost,
    start: sys::CUevent,
    end: sys::CUevent,
}

/// Per-launch timing state, live while `--profile` is on.
#[derive(Default)]
struct Profiler {
    pending: Vec<PendingTiming>,
    free_events: Vec<sys::CUevent>,
    table: ProfileTable,
}

/// The GPU: context, stream, loaded kernels, and the launch/profiling/poisoning policy.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// The second stream of `on_side_stream`, whether launches go to it now, and whether it holds work the
    /// main stream has not joined yet.
    side: Arc<CudaStream>,
    on_side: std::cell::Cell<bool>,
    side_pending: std::cell::Cell<bool>,
    _modules: Vec<Arc<CudaModule>>,
    kernels: BTreeMap<String, (&'static str, CudaFunction)>,
    info: DeviceInfo,
    poison: bool,
    sync_check: bool,
    capturing: std::cell::Cell<bool>,
    profiler: RefCell<Option<Profiler>>,
}

impl Gpu {
    /// Opens GPU 0, loads every embedded PTX module. Fails with `Error::Input` when no GPU is usable.
    pub fn new() -> Result<Self> {
        if let Some(why) = probe_unavailable() {
            return Err(Error::input(format!("--device cuda: {why}")));
        }
        let ctx = CudaContext::new(0).map_err(|e| Error::cuda("creating the CUDA context", e))?;
        // Explicit stream order and our own arena: cudarc's per-allocation event tracking is not needed, and
        // it upsets compute-sanitizer around graph capture.
        unsafe { ctx.disable_event_tracking() };
        // A stream of our own: the legacy default stream cannot be captured into a graph. The main stream
        // has the highest priority and the second one the lowest, so that as SMs free up the block scheduler
        // takes the main stream's waiting blocks (a short critical path) before the second's (work spread
        // beside it); in equal priorities they queued behind the second stream's earlier launches.
        let (lowest, highest) =
            result::stream::get_priority_range().map_err(|e| Error::cuda("querying the stream priorities", e))?;
        let stream = ctx.new_stream_with_priority(highest).map_err(|e| Error::cuda("creating the CUDA stream", e))?;
        let side =
            ctx.new_stream_with_priority(lowest).map_err(|e| Error::cuda("creating the second CUDA stream", e))?;
        let info = device_info(&ctx)?;
        let mut modules = Vec::new();
        let mut kernels = BTreeMap::new();
        for (family, portable) in PTX_MODULES {
            let variant = PTX_SM90A_MODULES.iter().find(|(f, _)| f == family).map(|(_, p)| *p);
            let ptx = match variant {
                Some(p) if info.sm90a_kernels => p,
                _ => *portable,
            };
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
                .map_err(|e| Error::cuda(format!("loading kernels/{family}.cu's PTX"), e))?;
            for name in ptx_entry_names(ptx) {
                let f = module
                    .load_function(name)
                    .map_err(|e| Error::cuda(format!("loading kernel {family}.cu:{name}"), e))?;
                kernels.insert(name.to_string(), (*family, f));
            }
            modules.push(module);
        }
        let poison = std::env::var_os("GENSYNC_POISON").is_some();
        let sync_check = std::env::var_os("GENSYNC_SYNC_CHECK").is_some();
        Ok(Gpu {
            ctx,
            stream,
            side,
            on_side: std::cell::Cell::new(false),
            side_pending: std::cell::Cell::new(false),
            _modules: modules,
            kernels,
            info,
            poison,
            sync_check,
            capturing: std::cell::Cell::new(false),
            profiler: RefCell::new(None),
        })
    }

    /// The GPU in test mode: new arena slots NaN-poisoned, the stream synchronized after every launch so a
    /// failing kernel is named at once.
    pub fn for_tests() -> Result<Self> {
        let mut gpu = Gpu::new()?;
        gpu.poison = true;
        gpu.sync_check = true;
        Ok(gpu)
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Device memory in use now (all processes), bytes: total − free.
    pub fn memory_in_use(&self) -> Result<usize> {
        let (free, total) = result::mem_get_info().map_err(|e| Error::cuda("querying device memory", e))?;
        Ok(total - free)
    }
    pub fn poison(&self) -> bool {
        self.poison
    }

    /// (family, kernel) of every loaded kernel, sorted by kernel name.
    pub fn kernel_names(&self) -> Vec<(&'static str, &str)> {
        self.kernels.iter().map(|(k, (fam, _))| (*fam, k.as_str())).collect()
    }

    /// Launches `kernel` with `args` on the stream. Checks the launch; with `sync_check` also waits for it,
    /// so an asynchronous fault is reported with the kernel's name. Profiled when `--profile` is on.
    pub fn launch(&self, kernel: &'static str, cfg: LaunchCfg, args: &[Arg]) -> Result<()> {
        self.launch_as(kernel, cfg, args, false)
    }

    /// As `launch`, but with the sm_90a modules loaded `kernel` may start before the previous launch on the
    /// stream has ended (programmatic dependent launch): once every block of that one has executed
    /// `griddepcontrol.launch_dependents`. Only for a kernel that executes `griddepcontrol.wait` before it
    /// reads or writes anything the previous launch writes or reads, launched right after a kernel that
    /// allows it (kernels/attention.cu: allow_dependent_launch); elsewhere the same as `launch`.
    pub fn launch_dependent(&self, kernel: &'static str, cfg: LaunchCfg, args: &[Arg]) -> Result<()> {
        self.launch_as(kernel, cfg, args, self.info.sm90a_kernels)
    }

    fn launch_as(&self, kernel: &'static str, cfg: LaunchCfg, args: &[Arg], programmatic: bool) -> Result<()> {
        let (_, func) = self
            .kernels
            .get(kernel)
            .ok_or_else(|| Error::Cuda(format!("kernel {kernel} is not in the embedded PTX")))?;
        // Each argument's bytes live in an 8-byte cell; the driver reads as many as the parameter's size.
        let mut cells: Vec<[u8; 8]> = args
            .iter()
            .map(|a| {
                let mut c = [0u8; 8];
                match *a {
                    Arg::Ptr(p) => c.copy_from_slice(&p.to_ne_bytes()),
                    Arg::I64(x) => c.copy_from_slice(&x.to_ne_bytes()),
                    Arg::F32(x) => c[..4].copy_from_slice(&x.to_ne_bytes()),
                    Arg::I32(x) => c[..4].copy_from_slice(&x.to_ne_bytes()),
                }
                c
            })
            .collect();
        let mut params: Vec<*mut c_void> = cells.iter_mut().map(|c| c.as_mut_ptr() as *mut c_void).collect();
        let timing = if self.capturing.get() { None } else { self.begin_timing()? };
        let stream = self.launch_stream().cu_stream();
        let launched = if programmatic {
            let mut attribute = sys::CUlaunchAttribute {
                id: sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
                pad: [0; 4],
                value: sys::CUlaunchAttributeValue { programmaticStreamSerializationAllowed: 1 },
            };
            let config = sys::CUlaunchConfig {
                gridDimX: cfg.grid.0,
                gridDimY: cfg.grid.1,
                gridDimZ: cfg.grid.2,
                blockDimX: cfg.block.0,
                blockDimY: cfg.block.1,
                blockDimZ: cfg.block.2,
                sharedMemBytes: cfg.shared_bytes,
                hStream: stream,
                attrs: &mut attribute,
                numAttrs: 1,
            };
            unsafe { sys::cuLaunchKernelEx(&config, func.cu_function(), params.as_mut_ptr(), std::ptr::null_mut()) }.result()
        } else {
            unsafe { result::launch_kernel(func.cu_function(), cfg.grid, cfg.block, cfg.shared_bytes, stream, &mut params) }
        };
        launched.map_err(|e| Error::cuda(format!("launching {kernel} (grid {:?}, block {:?})", cfg.grid, cfg.block), e))?;
        if let Some(start) = timing {
            self.end_timing(kernel, cfg.cost, start)?;
        }
        if self.sync_check && !self.capturing.get() {
            self.synchronize().map_err(|e| Error::Cuda(format!("kernel {kernel} failed: {e}")))?;
        }
        Ok(())
    }

    /// Raises a kernel's dynamic shared-memory limit (needed above 48 KiB).
    pub fn set_max_dynamic_shared(&self, kernel: &'static str, bytes: u32) -> Result<()> {
        let (_, func) = &self.kernels[kernel];
        unsafe {
            result::function::set_function_attribute(
                func.cu_function(),
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
        }
        .map_err(|e| Error::cuda(format!("raising {kernel}'s shared memory to {bytes} bytes"), e))
    }

    /// Waits for both streams' work (the second one's too: a profile may be read inside `on_side_stream`).
    pub fn synchronize(&self) -> Result<()> {
        self.join_side()?;
        self.stream.synchronize().map_err(|e| Error::cuda("synchronizing the stream", e))?;
        self.side.synchronize().map_err(|e| Error::cuda("synchronizing the second stream", e))
    }

    /// Launches `work`'s kernels on a second stream, which starts after everything launched so far and runs
    /// beside the main stream's next launches, so that a kernel that leaves SMs idle (the token path's 8
    /// blocks) shares the GPU with one that does not wait for it. The main stream joins it at `join_side`,
    /// before every synchronization, transfer, timing end and graph capture's end. Until then the main
    /// stream's launches must not write what `work` reads, nor touch what it writes.
    pub fn on_side_stream(&self, work: impl FnOnce(&Gpu) -> Result<()>) -> Result<()> {
        self.side.join(&self.stream).map_err(|e| Error::cuda("starting the second stream", e))?;
        self.on_side.set(true);
        let done = work(self);
        self.on_side.set(false);
        self.side_pending.set(true);
        done
    }

    /// Makes the main stream wait for the second stream's work so far (nothing when it has none).
    pub fn join_side(&self) -> Result<()> {
        if self.side_pending.replace(false) {
            self.stream.join(&self.side).map_err(|e| Error::cuda("joining the second stream", e))?;
        }
        Ok(())
    }

    /// The stream launches go to: the second one inside `on_side_stream`.
    fn launch_stream(&self) -> &CudaStream {
        if self.on_side.get() {
            &self.side
        } else {
            &self.stream
        }
    }

    /// Copies `host` into `buf` (same length), ordered on the stream. The driver stages pageable memory
    /// before returning, so `host` may be dropped at once; not capturable in a graph.
    pub fn upload<T: bytemuck::Pod>(&self, buf: DevBuf<T>, host: &[T]) -> Result<()> {
        check_len("upload", buf.len(), host.len())?;
        self.join_side()?;
        unsafe { result::memcpy_htod_async(buf.ptr(), host, self.stream.cu_stream()) }
            .map_err(|e| Error::cuda("copying to the GPU", e))
    }

    /// Copies `buf` to a new host vector (waits for the stream).
    pub fn download<T: bytemuck::Pod + Default>(&self, buf: DevBuf<T>) -> Result<Vec<T>> {
        let mut host = vec![T::default(); buf.len()];
        self.join_side()?;
        unsafe { result::memcpy_dtoh_async(&mut host, buf.ptr(), self.stream.cu_stream()) }
            .map_err(|e| Error::cuda("copying from the GPU", e))?;
        self.synchronize()?;
        Ok(host)
    }

    /// Device-to-device copy of `src` into `dst` (same length), asynchronous.
    pub fn copy<T>(&self, dst: DevBuf<T>, src: DevBuf<T>) -> Result<()> {
        check_len("copy", dst.len(), src.len())?;
        self.join_side()?;
        unsafe {
            sys::cuMemcpyDtoDAsync_v2(dst.ptr(), src.ptr(), src.bytes(), self.stream.cu_stream()).result()
        }
        .map_err(|e| Error::cuda("device-to-device copy", e))
    }

    /// Sets every word of `buf` to zero, ordered on the stream (a memset node when captured into a graph).
    pub fn zero<T>(&self, buf: DevBuf<T>) -> Result<()> {
        if buf.bytes() % 4 != 0 {
            return Err(Error::Cuda(format!("zero: {} bytes is not a whole number of 4-byte words", buf.bytes())));
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.join_side()?;
        unsafe { sys::cuMemsetD32Async(buf.ptr(), 0, buf.bytes() / 4, self.stream.cu_stream()).result() }
            .map_err(|e| Error::cuda("zeroing a device buffer", e))
    }

    /// Fills `bytes` bytes at `ptr` with the f32 quiet-NaN pattern (whole words; a trailing partial word
    /// is left as is).
    pub(crate) fn poison_bytes(&self, ptr: u64, bytes: usize) -> Result<()> {
        if bytes < 4 {
            return Ok(());
        }
        self.join_side()?;
        unsafe { sys::cuMemsetD32Async(ptr, 0x7fc0_0000, bytes / 4, self.stream.cu_stream()).result() }
            .map_err(|e| Error::cuda("poisoning a new arena slot", e))
    }

    /// Starts recording per-kernel timings (`--profile`).
    pub fn enable_profiler(&self) {
        self.profiler.borrow_mut().get_or_insert_with(Profiler::default);
    }

    /// Waits for the stream, folds every pending launch timing into the table and returns a copy of it.
    /// None when the profiler is off.
    pub fn profile(&self) -> Result<Option<ProfileTable>> {
        if self.profiler.borrow().is_none() {
            return Ok(None);
        }
        self.synchronize()?;
        let mut guard = self.profiler.borrow_mut();
        let p = guard.as_mut().expect("checked above");
        for t in p.pending.drain(..) {
            let ms = unsafe { result::event::elapsed(t.start, t.end) }
                .map_err(|e| Error::cuda(format!("reading {}'s timing events", t.kernel), e))?;
            p.table.add(t.kernel, ms as f64, t.cost);
            p.free_events.push(t.start);
            p.free_events.push(t.end);
        }
        Ok(Some(p.table.clone()))
    }

    /// Clears the profiler's totals (after a warm-up, say).
    pub fn reset_profile(&self) -> Result<()> {
        self.profile()?;
        if let Some(p) = self.profiler.borrow_mut().as_mut() {
            p.table = ProfileTable::default();
        }
        Ok(())
    }

    fn take_event(&self, p: &mut Profiler) -> Result<sys::CUevent> {
        match p.free_events.pop() {
            Some(e) => Ok(e),
            None => result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT)
                .map_err(|e| Error::cuda("creating a timing event", e)),
        }
    }

    fn begin_timing(&self) -> Result<Option<sys::CUevent>> {
        let mut guard = self.profiler.borrow_mut();
        let Some(p) = guard.as_mut() else { return Ok(None) };
        let start = self.take_event(p)?;
        unsafe { result::event::record(start, self.launch_stream().cu_stream()) }
            .map_err(|e| Error::cuda("recording a timing event", e))?;
        Ok(Some(start))
    }

    fn end_timing(&self, kernel: &'static str, cost: Cost, start: sys::CUevent) -> Result<()> {
        let mut guard = self.profiler.borrow_mut();
        let p = guard.as_mut().expect("timing began with the profiler on");
        let end = self.take_event(p)?;
        unsafe { result::event::record(end, self.launch_stream().cu_stream()) }
            .map_err(|e| Error::cuda("recording a timing event", e))?;
        p.pending.push(PendingTiming { kernel, cost, start, end });
        let fold = p.pending.len() >= PROFILE_FOLD_AFTER;
        drop(guard);
        if fold {
            // A long run (training) would otherwise hold two events per launch until the end.
            self.profile()?;
        }
        Ok(())
    }

    /// Records everything `step` launches into a CUDA graph instead of running it. Replaying the graph runs
    /// the same kernels on the same arena addresses with one launch. Profiling is suspended while capturing.
    pub fn capture(&self, step: impl FnOnce(&Gpu) -> Result<()>) -> Result<StepGraph> {
        self.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| Error::cuda("beginning graph capture", e))?;
        self.capturing.set(true);
        let recorded = step(self).and_then(|()| self.join_side());
        self.capturing.set(false);
        let graph = self.stream.end_capture(sys::CUgraphInstantiate_flags(0));
        recorded?;
        let graph = graph
            .map_err(|e| Error::cuda("ending graph capture", e))?
            .ok_or_else(|| Error::Cuda("graph capture recorded nothing".into()))?;
        Ok(StepGraph { graph })
    }

    /// Times `f` on the stream with CUDA events: `warmup` untimed calls, then `reps` timed ones; returns each
    /// timed call's milliseconds.
    pub fn time_ms(&self, warmup: usize, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
        for _ in 0..warmup {
            f()?;
        }
        let start = self.ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT));
        let end = self.ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT));
        let (start, end) = match (start, end) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(e), _) | (_, Err(e)) => return Err(Error::cuda("creating timing events", e)),
        };
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            start.record(&self.stream).map_err(|e| Error::cuda("recording a timing event", e))?;
            f()?;
            self.join_side()?;
            end.record(&self.stream).map_err(|e| Error::cuda("recording a timing event", e))?;
            times.push(start.elapsed_ms(&end).map_err(|e| Error::cuda("reading a timing event", e))? as f64);
        }
        Ok(times)
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        if let Some(p) = self.profiler.get_mut().take() {
            for e in p.free_events.into_iter().chain(p.pending.into_iter().flat_map(|t| [t.start, t.end])) {
                let _ = unsafe { result::event::destroy(e) };
            }
        }
    }
}

/// A captured step, replayed with one launch.
pub struct StepGraph {
    graph: cudarc::driver::CudaGraph,
}

impl StepGraph {
    pub fn replay(&self) -> Result<()> {
        self.graph.launch().map_err(|e| Error::cuda("replaying the step graph", e))
    }
}

/// The median of a set of timings (upper median for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn check_len(what: &str, device: usize, host: usize) -> Result<()> {
    if device == host {
        Ok(())
    } else {
        Err(Error::Cuda(format!("{what}: length mismatch (device {device}, host {host})")))
    }
}

fn device_info(ctx: &Arc<CudaContext>) -> Result<DeviceInfo> {
    use sys::CUdevice_attribute as A;
    let attr = |a| ctx.attribute(a).map_err(|e| Error::cuda("reading a device attribute", e));
    let mut driver_version = 0;
    unsafe { sys::cuDriverGetVersion(&mut driver_version).result() }
        .map_err(|e| Error::cuda("reading the driver version", e))?;
    let compute_capability = ctx.compute_capability().map_err(|e| Error::cuda("reading compute capability", e))?;
    Ok(DeviceInfo {
        name: ctx.name().map_err(|e| Error::cuda("reading the device name", e))?,
        compute_capability,
        multiprocessors: attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        total_memory: ctx.total_mem().map_err(|e| Error::cuda("reading total memory", e))?,
        l2_bytes: attr(A::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?,
        driver_version,
        // sm_90a code runs on compute capability 9.0 only.
        sm90a_kernels: compute_capability == (9, 0) && std::env::var_os("GENSYNC_PORTABLE_PTX").is_none(),
    })
}

/// The `.entry` names of a PTX module (kernels are `extern "C"`, so these are the source names).
fn ptx_entry_names(ptx: &str) -> Vec<&str> {
    ptx.lines()
        .filter_map(|l| l.trim_start().strip_prefix(".visible .entry "))
        .map(|rest| rest.split(['(', ' ']).next().unwrap_or(rest).trim())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ptx_entry_names_are_parsed() {
        let ptx = ".visible .entry adam_step(\n\t.param .u64 x\n)\n.visible .entry fill(\n";
        assert_eq!(super::ptx_entry_names(ptx), vec!["adam_step", "fill"]);
    }

    #[test]
    fn every_embedded_module_has_kernels() {
        assert!(!super::PTX_MODULES.is_empty());
        for (family, ptx) in super::PTX_MODULES {
            assert!(!super::ptx_entry_names(ptx).is_empty(), "{family}.ptx has no kernels");
        }
        // A Hopper variant is the same family compiled again: the same kernels, and a portable one beside it.
        for (family, ptx) in super::PTX_SM90A_MODULES {
            let (_, portable) = super::PTX_MODULES.iter().find(|(f, _)| f == family).expect("sm_90a variant of a family");
            assert_eq!(super::ptx_entry_names(ptx), super::ptx_entry_names(portable), "{family}_sm90a.ptx");
            assert!(ptx.contains(".target sm_90a"), "{family}_sm90a.ptx targets sm_90a");
        }
    }

    #[test]
    fn median_of_timings() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
    }
}
