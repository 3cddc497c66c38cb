//! One GPU: context, stream, cuBLAS handle and the kernels of
//! `kernels/cuda/`, with a safe wrapper per kernel that checks every buffer
//! length against the shape before launching.
use std::collections::HashMap;
use std::sync::Arc;

use cudarc::cublas::{result as blas, sys as blas_sys, CudaBlas};
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaSlice, CudaStream, CudaView, DevicePtr, DeviceRepr,
    LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;

use super::{CudaError, Op};
use crate::twins::{
    attention_smem_bytes, attention_unsupported, gemm_rows, gemm_splits, gemm_supported, AttnShape,
    Dt, ATTN_MAX_GROUP, ATTN_SPLIT, GEMM_MAX_SPLITS, GEMM_MAX_TILES, GEMM_SPLIT_COLUMNS,
    GEMM_SPLIT_TILES, GEMM_THREADS, GEMM_TILE, SKETCH_MAX_DIM, SOFTMAX_THREADS,
};

/// Bytes of the workspace cuBLAS gets (the size NVIDIA recommends for
/// Hopper).
const CUBLAS_WORKSPACE_BYTES: usize = 32 << 20;

/// The compiled kernel files (build.rs), by name.
const MODULES: &[(&str, &[u8])] = &[
    (
        "attention",
        include_bytes!(concat!(env!("OUT_DIR"), "/attention.fatbin")),
    ),
    (
        "embedding",
        include_bytes!(concat!(env!("OUT_DIR"), "/embedding.fatbin")),
    ),
    (
        "gemm",
        include_bytes!(concat!(env!("OUT_DIR"), "/gemm.fatbin")),
    ),
    (
        "kv_fork",
        include_bytes!(concat!(env!("OUT_DIR"), "/kv_fork.fatbin")),
    ),
    (
        "logsoftmax",
        include_bytes!(concat!(env!("OUT_DIR"), "/logsoftmax.fatbin")),
    ),
    (
        "rms_norm",
        include_bytes!(concat!(env!("OUT_DIR"), "/rms_norm.fatbin")),
    ),
    (
        "rope",
        include_bytes!(concat!(env!("OUT_DIR"), "/rope.fatbin")),
    ),
    (
        "sampler",
        include_bytes!(concat!(env!("OUT_DIR"), "/sampler.fatbin")),
    ),
    (
        "silu_mul",
        include_bytes!(concat!(env!("OUT_DIR"), "/silu_mul.fatbin")),
    ),
    (
        "sketch",
        include_bytes!(concat!(env!("OUT_DIR"), "/sketch.fatbin")),
    ),
];

/// Kernel entry points, by module (attention.cu's, one per storage type and
/// group size, are named by [`attention_kernel`]; gemm.cu's, one per count
/// of row tiles, by [`gemm_kernel`]).
const FUNCTIONS: &[(&str, &[&str])] = &[
    ("embedding", &["embedding_f32", "embedding_bf16"]),
    ("kv_fork", &["kv_fork_u128"]),
    ("logsoftmax", &["logprob_f32"]),
    (
        "rms_norm",
        &["rms_norm_residual_f32", "rms_norm_residual_bf16"],
    ),
    ("rope", &["rope_kv_write_f32", "rope_kv_write_bf16"]),
    ("sampler", &["sample_f32"]),
    ("silu_mul", &["silu_mul_f32", "silu_mul_bf16"]),
    ("sketch", &["sketch_f32"]),
];

/// attention.cu's kernel for storage type `dt` and `group` query heads per
/// KV head (1 ..= ATTN_MAX_GROUP: its ATTENTION_KERNELS instances).
fn attention_kernel(dt: Dt, group: usize) -> String {
    format!("attention_{}_g{group}", dt.suffix())
}

/// gemm.cu's kernels: the plain product, and its fused forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GemmKind {
    Plain,
    /// Gate/up projection and the SwiGLU activation.
    Swiglu,
    /// q/k/v projection, rope and the KV-cache write.
    Rope,
}

impl GemmKind {
    const ALL: [GemmKind; 3] = [GemmKind::Plain, GemmKind::Swiglu, GemmKind::Rope];

    /// Weight parts per block (16 rows each).
    fn parts(self) -> usize {
        match self {
            GemmKind::Plain => 1,
            GemmKind::Swiglu | GemmKind::Rope => 2,
        }
    }
}

/// gemm.cu's kernel of `kind` for products of `tiles` row tiles of 16 (1
/// ..= GEMM_MAX_TILES: its GEMM_KERNELS instances).
fn gemm_kernel(kind: GemmKind, tiles: usize) -> String {
    let name = match kind {
        GemmKind::Plain => "gemm",
        GemmKind::Swiglu => "gemm_swiglu",
        GemmKind::Rope => "gemm_rope",
    };
    format!("{name}_bf16_m{tiles}")
}

/// A device buffer in a storage type (bf16 as its u16 bits).
#[derive(Debug)]
pub enum DBuf {
    F32(CudaSlice<f32>),
    Bf16(CudaSlice<u16>),
}

impl DBuf {
    pub fn dt(&self) -> Dt {
        match self {
            DBuf::F32(_) => Dt::F32,
            DBuf::Bf16(_) => Dt::Bf16,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            DBuf::F32(s) => s.len(),
            DBuf::Bf16(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Device address of element `offset`.
    pub fn ptr_at(&self, stream: &CudaStream, offset: usize) -> u64 {
        assert!(offset <= self.len(), "offset {offset} past {}", self.len());
        let base = match self {
            DBuf::F32(s) => ptr(s, stream),
            DBuf::Bf16(s) => ptr(s, stream),
        };
        base + (offset * self.dt().size()) as u64
    }
}

/// Device address of a buffer or a view into one (event tracking is off:
/// one stream orders everything).
pub(crate) fn ptr<T>(s: &impl DevicePtr<T>, stream: &CudaStream) -> u64 {
    let (p, _sync) = s.device_ptr(stream);
    p
}

fn opt_ptr<T>(s: Option<&CudaSlice<T>>, stream: &CudaStream) -> u64 {
    s.map_or(0, |s| ptr(s, stream))
}

/// What rope.cu (and gemm.cu's fused form of it) does with a pass's
/// q/k/v rows: the optional bias, the rotation table, each row's position
/// and slot, where the rotated queries go, and the layer's caches (from
/// element `layer_offset`, `slots` slots of `shape`) that take the rotated
/// keys and the values.
pub struct RopeKv<'a> {
    pub bias: Option<&'a CudaSlice<f32>>,
    pub table: &'a CudaSlice<f32>,
    pub pos: CudaView<'a, u32>,
    pub slot: CudaView<'a, u32>,
    pub shape: AttnShape,
    pub q_out: &'a mut CudaSlice<f32>,
    pub k_cache: &'a mut DBuf,
    pub v_cache: &'a mut DBuf,
    pub layer_offset: usize,
    pub slots: usize,
}

impl RopeKv<'_> {
    /// Panics unless the buffers fit `rows` rows; returns the q/k/v width.
    fn check(&self, rows: usize) -> usize {
        let (sh, d) = (self.shape, self.shape.head_dim);
        let width = (sh.heads + 2 * sh.kv_heads) * d;
        assert!(
            self.pos.len() >= rows
                && self.slot.len() >= rows
                && self.q_out.len() >= rows * sh.heads * d,
            "rope: inputs and outputs for {rows} rows"
        );
        assert!(self.table.len().is_multiple_of(d), "rope table");
        let layer = self.slots * sh.kv_heads * sh.cap * d;
        assert!(
            self.layer_offset + layer <= self.k_cache.len()
                && self.k_cache.len() == self.v_cache.len()
                && self.k_cache.dt() == self.v_cache.dt(),
            "rope: the layer's caches"
        );
        if let Some(b) = self.bias {
            assert_eq!(b.len(), width, "rope: q/k/v bias");
        }
        width
    }

    /// The kernels' arguments from `bias` to `v_cache`, in their order.
    fn args(self, s: &CudaStream) -> [Arg; 11] {
        [
            Arg::P(opt_ptr(self.bias, s)),
            Arg::P(ptr(self.table, s)),
            Arg::P(ptr(&self.pos, s)),
            Arg::P(ptr(&self.slot, s)),
            Arg::I(self.shape.heads as i32),
            Arg::I(self.shape.kv_heads as i32),
            Arg::I(self.shape.head_dim as i32),
            Arg::I(self.shape.cap as i32),
            Arg::P(ptr(self.q_out, s)),
            Arg::P(self.k_cache.ptr_at(s, self.layer_offset)),
            Arg::P(self.v_cache.ptr_at(s, self.layer_offset)),
        ]
    }
}

/// A GPU with grail's kernels loaded.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    /// cuBLAS's workspace, ours, so that its calls can be captured into a
    /// graph (it must not allocate while a stream is capturing).
    _blas_workspace: CudaSlice<u8>,
    funcs: HashMap<String, CudaFunction>,
    name: String,
    capability: (i32, i32),
    /// Multiprocessors (gemm.cu's splits of k fill them).
    sms: usize,
    /// gemm.cu's split scratch: partial tiles (GEMM_SPLIT_TILES of 16 x 64
    /// floats) and per-column completion counts (GEMM_SPLIT_COLUMNS, zero
    /// between launches). One stream orders every launch that uses them.
    gemm_partials: CudaSlice<f32>,
    gemm_done: CudaSlice<u32>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .field("capability", &self.capability)
            .finish()
    }
}

impl Gpu {
    /// Opens GPU `ordinal`: loads the driver and cuBLAS, creates a context
    /// and a stream, and loads every kernel. A missing driver or library is
    /// an error naming it, never a panic.
    pub fn new(ordinal: usize) -> Result<Arc<Gpu>, CudaError> {
        // SAFETY: only probes whether the shared libraries can be opened.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver);
        }
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(CudaError::NoCublas);
        }
        let count = CudaContext::device_count().op(|| "counting CUDA devices".into())?;
        if ordinal as i32 >= count {
            return Err(CudaError::Unsupported(format!(
                "CUDA device {ordinal} asked for, {count} present"
            )));
        }
        let ctx = CudaContext::new(ordinal).op(|| format!("opening CUDA device {ordinal}"))?;
        // SAFETY: the backend issues all work on one stream, so cudarc's
        // cross-stream events are unnecessary.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().op(|| "creating a stream".into())?;
        let blas = CudaBlas::new(stream.clone()).map_err(|source| CudaError::Cublas {
            op: "creating a cuBLAS handle".into(),
            source,
        })?;
        // SAFETY: a valid handle. The default math mode: f32 GEMMs stay in
        // f32 through their compute type (CUBLAS_COMPUTE_32F_PEDANTIC, no
        // TF32), while bf16 GEMMs (CUBLAS_COMPUTE_32F) may use the tensor
        // cores, which a handle-wide pedantic mode would forbid.
        let status = unsafe {
            blas_sys::cublasSetMathMode(*blas.handle(), blas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH)
        };
        if status != blas_sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(CudaError::Unsupported(format!(
                "cublasSetMathMode: {status:?}"
            )));
        }
        let name = ctx.name().op(|| "reading the device name".into())?;
        if !super::REAL_KERNELS && name != super::EMULATOR_NAME {
            return Err(CudaError::Unsupported(format!(
                "this build of grail-kernels carries placeholder kernels (feature `emulated`, for the CPU emulation in kernels/check), not kernels for {name}: build with --features cuda"
            )));
        }
        let capability = ctx
            .compute_capability()
            .op(|| "reading the compute capability".into())?;
        if capability.0 < 8 {
            return Err(CudaError::Unsupported(format!(
                "{name} has compute capability {}.{}; the kernels are built for 8.0 and later",
                capability.0, capability.1
            )));
        }
        let sms = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .op(|| "reading the multiprocessor count".into())? as usize;
        let gemm_partials = stream
            .alloc_zeros::<f32>(GEMM_SPLIT_TILES * GEMM_TILE * GEMM_TILE * GEMM_MAX_TILES)
            .op(|| "allocating gemm.cu's split scratch".into())?;
        let gemm_done = stream
            .alloc_zeros::<u32>(GEMM_SPLIT_COLUMNS)
            .op(|| "allocating gemm.cu's split counts".into())?;
        let blas_workspace = stream
            .alloc_zeros::<u8>(CUBLAS_WORKSPACE_BYTES)
            .op(|| "allocating cuBLAS's workspace".into())?;
        // SAFETY: a valid handle and an allocation that lives as long as it
        // (both owned by the Gpu, the handle dropped first: field order).
        let status = unsafe {
            blas_sys::cublasSetWorkspace_v2(
                *blas.handle(),
                ptr(&blas_workspace, &stream) as *mut std::ffi::c_void,
                CUBLAS_WORKSPACE_BYTES,
            )
        };
        if status != blas_sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(CudaError::Unsupported(format!(
                "cublasSetWorkspace: {status:?}"
            )));
        }
        let mut funcs = HashMap::new();
        for (module, bytes) in MODULES {
            let m = ctx
                .load_module(Ptx::from_binary(bytes.to_vec()))
                .op(|| format!("loading kernels/cuda/{module}.cu"))?;
            let names: Vec<String> = match *module {
                "attention" => (1..=ATTN_MAX_GROUP)
                    .flat_map(|g| [Dt::F32, Dt::Bf16].map(|dt| attention_kernel(dt, g)))
                    .collect(),
                "gemm" => (1..=GEMM_MAX_TILES)
                    .flat_map(|t| GemmKind::ALL.map(|kind| gemm_kernel(kind, t)))
                    .collect(),
                _ => FUNCTIONS
                    .iter()
                    .find(|(n, _)| n == module)
                    .map_or(&[][..], |(_, f)| *f)
                    .iter()
                    .map(|f| f.to_string())
                    .collect(),
            };
            for f in names {
                let func = m.load_function(&f).op(|| format!("loading kernel {f}"))?;
                funcs.insert(f, func);
            }
        }
        Ok(Arc::new(Gpu {
            ctx,
            stream,
            blas,
            _blas_workspace: blas_workspace,
            funcs,
            name,
            capability,
            sms,
            gemm_partials,
            gemm_done,
        }))
    }

    /// "NVIDIA H100 80GB HBM3 (sm_90)".
    pub fn describe(&self) -> String {
        format!(
            "{} (sm_{}{})",
            self.name, self.capability.0, self.capability.1
        )
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Records the work `body` enqueues (kernels and cuBLAS calls; no
    /// copies, no allocations) into a graph instead of running it; the
    /// graph's launches then replay it with one call. The capture always
    /// ends, also when `body` fails.
    pub fn capture(
        &self,
        body: impl FnOnce() -> Result<(), CudaError>,
    ) -> Result<CudaGraph, CudaError> {
        self.stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .op(|| "beginning a stream capture".into())?;
        let recorded = body();
        let graph = self
            .stream
            .end_capture(CUgraphInstantiate_flags(0))
            .op(|| "ending a stream capture (instantiating its graph)".into());
        recorded?;
        graph?.ok_or_else(|| CudaError::Unsupported("a stream capture recorded no graph".into()))
    }

    /// Seconds per replay of `graph`: the median of 3, after one.
    pub fn time_replays(&self, graph: &CudaGraph) -> Result<f64, CudaError> {
        let mut times = Vec::with_capacity(3);
        for i in 0..4 {
            let t = std::time::Instant::now();
            graph.launch().map_err(|source| CudaError::Driver {
                op: "replaying a graph".into(),
                source,
            })?;
            self.sync()?;
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        Ok(times[1])
    }

    /// The nodes of `graph`: its kernel launches (ours and cuBLAS's, which
    /// may take several per product) and any memory operations.
    pub fn graph_nodes(&self, graph: &CudaGraph) -> Result<usize, CudaError> {
        let mut n = 0usize;
        // SAFETY: a live graph; a null node array asks for the count only.
        unsafe {
            cudarc::driver::sys::cuGraphGetNodes(graph.cu_graph(), std::ptr::null_mut(), &mut n)
        }
        .result()
        .op(|| "counting a graph's nodes".into())?;
        Ok(n)
    }

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize), CudaError> {
        self.ctx.mem_get_info().op(|| "reading free memory".into())
    }

    /// Waits for all queued work; a kernel fault surfaces here.
    pub fn sync(&self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .op(|| "synchronizing the stream".into())
    }

    fn func(&self, name: &str) -> &CudaFunction {
        self.funcs
            .get(name)
            .unwrap_or_else(|| panic!("kernel {name} was not loaded (FUNCTIONS)"))
    }

    /// Uploads `data`.
    pub fn upload<T: DeviceRepr>(&self, data: &[T], what: &str) -> Result<CudaSlice<T>, CudaError> {
        self.stream
            .clone_htod(data)
            .op(|| format!("uploading {what} ({} bytes)", std::mem::size_of_val(data)))
    }

    /// A zeroed buffer of `n` elements.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        n: usize,
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        self.stream.alloc_zeros(n).op(|| {
            format!(
                "allocating {what} ({n} x {} bytes)",
                std::mem::size_of::<T>()
            )
        })
    }

    /// A zeroed buffer of `n` elements of `dt`.
    pub fn zeros_dt(&self, dt: Dt, n: usize, what: &str) -> Result<DBuf, CudaError> {
        Ok(match dt {
            Dt::F32 => DBuf::F32(self.zeros(n, what)?),
            Dt::Bf16 => DBuf::Bf16(self.zeros(n, what)?),
        })
    }

    /// Scratch for [`Gpu::attention`] over up to `rows` rows of `heads`
    /// query heads of dimension `head_dim` attending over up to `cap`
    /// positions. The partials are not zeroed (the kernel writes every one
    /// it reads); the split counters are, and every launch leaves them so.
    pub fn attention_scratch(
        &self,
        rows: usize,
        heads: usize,
        head_dim: usize,
        cap: usize,
    ) -> Result<AttnScratch, CudaError> {
        let splits = cap.div_ceil(ATTN_SPLIT);
        Ok(AttnScratch {
            part_acc: self.uninit(rows * heads * splits * head_dim, "attention partial sums")?,
            part_ml: self.uninit(rows * heads * splits * 2, "attention partial maxima")?,
            // one per (row, KV head); KV heads <= query heads
            done: self.zeros(rows * heads, "attention split counters")?,
        })
    }

    /// A buffer of `n` plain numbers whose contents are unspecified: for
    /// workspaces whose every element is written before it is read.
    pub(crate) fn uninit<T: DeviceRepr>(
        &self,
        n: usize,
        what: &str,
    ) -> Result<CudaSlice<T>, CudaError> {
        // SAFETY: the caller reads no element it has not written (see above);
        // the memory is device memory, never dereferenced on the host.
        unsafe { self.stream.alloc::<T>(n.max(1)) }.op(|| {
            format!(
                "allocating {what} ({n} x {} bytes)",
                std::mem::size_of::<T>()
            )
        })
    }

    /// [`Gpu::uninit`] in a storage type.
    pub(crate) fn uninit_dt(&self, dt: Dt, n: usize, what: &str) -> Result<DBuf, CudaError> {
        Ok(match dt {
            Dt::F32 => DBuf::F32(self.uninit(n, what)?),
            Dt::Bf16 => DBuf::Bf16(self.uninit(n, what)?),
        })
    }

    /// Copies `src` into the start of `dst`.
    pub fn upload_into<T: DeviceRepr>(
        &self,
        src: &[T],
        dst: &mut CudaSlice<T>,
        what: &str,
    ) -> Result<(), CudaError> {
        assert!(
            src.len() <= dst.len(),
            "{what}: {} into {}",
            src.len(),
            dst.len()
        );
        if src.is_empty() {
            return Ok(());
        }
        self.stream
            .memcpy_htod(src, &mut dst.slice_mut(0..src.len()))
            .op(|| format!("uploading {what} ({} bytes)", std::mem::size_of_val(src)))
    }

    /// Downloads `s`.
    pub fn download<T: DeviceRepr + Default + Clone>(
        &self,
        s: &CudaSlice<T>,
        what: &str,
    ) -> Result<Vec<T>, CudaError> {
        self.stream
            .clone_dtoh(s)
            .op(|| format!("downloading {what}"))
    }

    /// Downloads `s[range]`.
    pub fn download_range<T: DeviceRepr + Default + Clone>(
        &self,
        s: &CudaSlice<T>,
        range: std::ops::Range<usize>,
        what: &str,
    ) -> Result<Vec<T>, CudaError> {
        self.stream
            .clone_dtoh(&s.slice(range))
            .op(|| format!("downloading {what}"))
    }

    /// Downloads a storage-type buffer widened to f32.
    pub fn download_f32(&self, b: &DBuf, what: &str) -> Result<Vec<f32>, CudaError> {
        Ok(match b {
            DBuf::F32(s) => self.download(s, what)?,
            DBuf::Bf16(s) => self
                .download(s, what)?
                .into_iter()
                .map(|b| half::bf16::from_bits(b).to_f32())
                .collect(),
        })
    }

    /// Copies `len` elements from `src[src_off..]` to `dst[dst_off..]` (same
    /// storage type).
    pub fn copy_within(
        &self,
        src: &DBuf,
        src_off: usize,
        dst: &DBuf,
        dst_off: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        assert_eq!(src.dt(), dst.dt());
        assert!(src_off + len <= src.len() && dst_off + len <= dst.len());
        let bytes = len * src.dt().size();
        let (s, d) = (
            src.ptr_at(&self.stream, src_off),
            dst.ptr_at(&self.stream, dst_off),
        );
        // SAFETY: both ranges were checked against their allocations above.
        unsafe { cudarc::driver::result::memcpy_dtod_async(d, s, bytes, self.stream.cu_stream()) }
            .op(|| format!("copying {bytes} bytes on the device"))
    }

    /// Copies `len` f32 from `src[src_off..]` to `dst[dst_off..]`.
    pub fn copy_f32(
        &self,
        src: &CudaSlice<f32>,
        src_off: usize,
        dst: &mut CudaSlice<f32>,
        dst_off: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        assert!(src_off + len <= src.len() && dst_off + len <= dst.len());
        self.stream
            .memcpy_dtod(
                &src.slice(src_off..src_off + len),
                &mut dst.slice_mut(dst_off..dst_off + len),
            )
            .op(|| format!("copying {len} floats on the device"))
    }

    fn launch(&self, name: &str, cfg: LaunchConfig, args: &[Arg]) -> Result<(), CudaError> {
        let f = self.func(name);
        let mut b = self.stream.launch_builder(f);
        for a in args {
            match a {
                Arg::P(p) => b.arg(p),
                Arg::I(i) => b.arg(i),
                Arg::F(x) => b.arg(x),
            };
        }
        // SAFETY: every wrapper below checks the lengths of the buffers it
        // passes against the shape the kernel reads and writes.
        unsafe { b.launch(cfg) }.op(|| format!("launching {name}"))?;
        Ok(())
    }

    /// embedding.cu: `out (rows x hidden) = table[ids[..rows]]`.
    pub fn embedding(
        &self,
        table: &DBuf,
        ids: &impl DevicePtr<u32>,
        rows: usize,
        hidden: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        assert!(ids.len() >= rows);
        assert!(out.len() >= rows * hidden && table.len().is_multiple_of(hidden));
        let s = &self.stream;
        self.launch(
            &format!("embedding_{}", table.dt().suffix()),
            cfg((rows as u32, 1, 1), 256, 0),
            &[
                Arg::P(table.ptr_at(s, 0)),
                Arg::P(ptr(ids, s)),
                Arg::I(hidden as i32),
                Arg::P(ptr(out, s)),
            ],
        )
    }

    /// rms_norm.cu (see its header): `rows` output rows.
    #[allow(clippy::too_many_arguments)]
    pub fn rms_norm_residual(
        &self,
        residual: &mut CudaSlice<f32>,
        delta: Option<&CudaSlice<f32>>,
        bias: Option<&CudaSlice<f32>>,
        w: &CudaSlice<f32>,
        rows_out: Option<CudaView<'_, u32>>,
        rows: usize,
        eps: f32,
        out_f32: Option<&mut CudaSlice<f32>>,
        out_t: Option<&mut DBuf>,
        dt: Dt,
    ) -> Result<(), CudaError> {
        let h = w.len();
        assert!(residual.len().is_multiple_of(h));
        match &rows_out {
            Some(r) => assert!(r.len() >= rows),
            None => assert!(rows * h <= residual.len()),
        }
        if let Some(d) = delta {
            assert_eq!(d.len(), residual.len());
        }
        if let Some(b) = bias {
            assert_eq!(b.len(), h);
        }
        let s = &self.stream;
        let of = out_f32.map_or(0, |o| {
            assert!(o.len() >= rows * h);
            ptr(o, s)
        });
        let ot = out_t.map_or(0, |o| {
            assert!(o.len() >= rows * h && o.dt() == dt);
            o.ptr_at(s, 0)
        });
        self.launch(
            &format!("rms_norm_residual_{}", dt.suffix()),
            cfg((rows as u32, 1, 1), 256, 0),
            &[
                Arg::P(ptr(residual, s)),
                Arg::P(opt_ptr(delta, s)),
                Arg::P(opt_ptr(bias, s)),
                Arg::P(ptr(w, s)),
                Arg::P(rows_out.as_ref().map_or(0, |r| ptr(r, s))),
                Arg::I(h as i32),
                Arg::F(eps),
                Arg::P(of),
                Arg::P(ot),
            ],
        )
    }

    /// rope.cu over `rows` rows of `qkv` into `dst`.
    pub fn rope_kv_write(
        &self,
        qkv: &CudaSlice<f32>,
        rows: usize,
        dst: RopeKv<'_>,
    ) -> Result<(), CudaError> {
        let width = dst.check(rows);
        assert!(qkv.len() >= rows * width, "rope: {rows} rows of qkv");
        let s = &self.stream;
        let k_cache = dst.k_cache.dt().suffix();
        let mut args = vec![Arg::P(ptr(qkv, s))];
        args.extend(dst.args(s));
        self.launch(
            &format!("rope_kv_write_{k_cache}"),
            cfg((rows as u32, 1, 1), 128, 0),
            &args,
        )
    }

    /// attention.cu over `rows` rows, in one launch: splits of the sequence
    /// whose last block to finish merges them through `scratch`; `max_len`
    /// bounds `len` (the caller's, checked against `cap`), every `len[r]`
    /// is at least 1.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        q: &CudaSlice<f32>,
        k_cache: &DBuf,
        v_cache: &DBuf,
        layer_offset: usize,
        slots: usize,
        slot: &impl DevicePtr<u32>,
        len: &impl DevicePtr<u32>,
        rows: usize,
        max_len: usize,
        shape: AttnShape,
        scale: f32,
        scratch: &mut AttnScratch,
        out: &mut DBuf,
    ) -> Result<(), CudaError> {
        let (h, kvh, d) = (shape.heads, shape.kv_heads, shape.head_dim);
        let group = h / kvh;
        if let Some(why) = attention_unsupported(h, kvh, d, k_cache.dt()) {
            return Err(CudaError::Unsupported(why));
        }
        assert!(max_len >= 1 && max_len <= shape.cap && len.len() >= rows && slot.len() >= rows);
        assert!(q.len() >= rows * h * d && out.len() >= rows * h * d && out.dt() == k_cache.dt());
        assert!(layer_offset + slots * kvh * shape.cap * d <= k_cache.len());
        let splits = max_len.div_ceil(ATTN_SPLIT);
        assert!(
            scratch.part_acc.len() >= rows * h * splits * d
                && scratch.part_ml.len() >= rows * h * splits * 2
                && scratch.done.len() >= rows * kvh,
            "attention scratch for {rows} rows of {h} heads, {splits} splits of dimension {d}"
        );
        let (part_acc, part_ml, done) = (&scratch.part_acc, &scratch.part_ml, &scratch.done);
        let s = &self.stream;
        let smem = attention_smem_bytes(group, d, k_cache.dt()) as u32;
        self.launch(
            &attention_kernel(k_cache.dt(), group),
            LaunchConfig {
                grid_dim: (rows as u32, kvh as u32, splits as u32),
                block_dim: (128, 1, 1),
                shared_mem_bytes: smem,
            },
            &[
                Arg::P(ptr(q, s)),
                Arg::P(k_cache.ptr_at(s, layer_offset)),
                Arg::P(v_cache.ptr_at(s, layer_offset)),
                Arg::P(ptr(slot, s)),
                Arg::P(ptr(len, s)),
                Arg::I(h as i32),
                Arg::I(kvh as i32),
                Arg::I(d as i32),
                Arg::I(shape.cap as i32),
                Arg::F(scale),
                Arg::P(ptr(part_acc, s)),
                Arg::P(ptr(part_ml, s)),
                Arg::P(ptr(done, s)),
                Arg::P(out.ptr_at(s, 0)),
            ],
        )
    }

    /// kv_fork.cu: for each pair `i`, positions `[0, n[i])` of slot
    /// `from[i]` copied into slot `to[i]` of both caches (`layers` layers of
    /// `shape` over `slots` slots), in one launch.
    #[allow(clippy::too_many_arguments)]
    pub fn kv_fork(
        &self,
        k_cache: &mut DBuf,
        v_cache: &mut DBuf,
        layers: usize,
        slots: usize,
        shape: AttnShape,
        from: &CudaSlice<u32>,
        to: &CudaSlice<u32>,
        n: &CudaSlice<u32>,
    ) -> Result<(), CudaError> {
        let pairs = from.len();
        assert!(to.len() == pairs && n.len() == pairs && pairs > 0);
        let row_bytes = shape.head_dim * k_cache.dt().size();
        assert!(
            row_bytes.is_multiple_of(16),
            "head rows of {row_bytes} bytes"
        );
        let total = layers * slots * shape.kv_heads * shape.cap * shape.head_dim;
        assert!(k_cache.len() == total && v_cache.len() == total && k_cache.dt() == v_cache.dt());
        let s = &self.stream;
        self.launch(
            "kv_fork_u128",
            cfg((pairs as u32, (layers * shape.kv_heads) as u32, 2), 256, 0),
            &[
                Arg::P(k_cache.ptr_at(s, 0)),
                Arg::P(v_cache.ptr_at(s, 0)),
                Arg::P(ptr(from, s)),
                Arg::P(ptr(to, s)),
                Arg::P(ptr(n, s)),
                Arg::I(slots as i32),
                Arg::I(shape.kv_heads as i32),
                Arg::I(shape.cap as i32),
                Arg::I((row_bytes / 16) as i32),
            ],
        )
    }

    /// silu_mul.cu: `rows` rows of `2 * inter` into `out` (`rows x inter`).
    pub fn silu_mul(
        &self,
        gate_up: &CudaSlice<f32>,
        bias: Option<&CudaSlice<f32>>,
        rows: usize,
        inter: usize,
        out: &mut DBuf,
    ) -> Result<(), CudaError> {
        assert!(gate_up.len() >= rows * 2 * inter && out.len() >= rows * inter);
        if let Some(b) = bias {
            assert_eq!(b.len(), 2 * inter);
        }
        let s = &self.stream;
        self.launch(
            &format!("silu_mul_{}", out.dt().suffix()),
            cfg((inter.div_ceil(256) as u32, rows as u32, 1), 256, 0),
            &[
                Arg::P(ptr(gate_up, s)),
                Arg::P(opt_ptr(bias, s)),
                Arg::I(inter as i32),
                Arg::P(out.ptr_at(s, 0)),
            ],
        )
    }

    /// `out (m x n, f32) = x (m x k, storage type) * w^T` (`w` n x k in
    /// the same type), f32 accumulation; `x_off` / `w_off` in elements.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        x: &DBuf,
        m: usize,
        w: &DBuf,
        w_off: usize,
        n: usize,
        k: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        assert_eq!(x.dt(), w.dt(), "gemm: activation and weight types");
        assert!(x.len() >= m * k && w_off + n * k <= w.len() && out.len() >= m * n);
        let (ty, compute) = match w.dt() {
            Dt::F32 => (
                blas_sys::cudaDataType::CUDA_R_32F,
                blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_PEDANTIC,
            ),
            Dt::Bf16 => (
                blas_sys::cudaDataType::CUDA_R_16BF,
                blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            ),
        };
        let s = &self.stream;
        let (alpha, beta) = (1f32, 0f32);
        // Row-major out = x w^T is column-major out^T = w x^T: cuBLAS's
        // (n x m) = op_T(w: k x n) * (x^T: k x m).
        // SAFETY: sizes checked above; the handle is bound to our stream.
        unsafe {
            blas::gemm_ex(
                *self.blas.handle(),
                blas_sys::cublasOperation_t::CUBLAS_OP_T,
                blas_sys::cublasOperation_t::CUBLAS_OP_N,
                n as i32,
                m as i32,
                k as i32,
                (&alpha as *const f32).cast(),
                w.ptr_at(s, w_off) as *const _,
                ty,
                k as i32,
                x.ptr_at(s, 0) as *const _,
                ty,
                k as i32,
                (&beta as *const f32).cast(),
                ptr(out, s) as *mut _,
                blas_sys::cudaDataType::CUDA_R_32F,
                n as i32,
                compute,
                blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|source| CudaError::Cublas {
            op: format!("gemm {m}x{n}x{k} ({:?})", w.dt()),
            source,
        })
    }

    /// gemm.cu: the product of [`Gpu::gemm`] on our tensor-core kernel, for
    /// the shapes it serves ([`gemm_supported`]: bf16, up to 64 rows), with k
    /// split as [`gemm_splits`] says for this GPU. `x` must hold
    /// [`gemm_rows`]`(m)` rows: the kernel reads whole tiles (rows past `m`
    /// change nothing).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_grail(
        &self,
        x: &DBuf,
        m: usize,
        w: &DBuf,
        w_off: usize,
        n: usize,
        k: usize,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        self.gemm_grail_split(x, m, w, w_off, n, k, out, self.gemm_splits(n, k))
    }

    /// [`Gpu::gemm_grail`] with k in `splits` splits (1 ..=
    /// GEMM_MAX_SPLITS; more than 1 for at most GEMM_SPLIT_COLUMNS column
    /// tiles, GEMM_SPLIT_TILES tiles in all).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_grail_split(
        &self,
        x: &DBuf,
        m: usize,
        w: &DBuf,
        w_off: usize,
        n: usize,
        k: usize,
        out: &mut CudaSlice<f32>,
        splits: usize,
    ) -> Result<(), CudaError> {
        assert!(out.len() >= m * n && n > 0);
        let s = &self.stream;
        let (tiles, args) = (
            n.div_ceil(GEMM_TILE),
            [Arg::I(n as i32), Arg::P(ptr(out, s))],
        );
        self.launch_gemm(
            GemmKind::Plain,
            (x, m),
            (w, w_off, n, k),
            tiles,
            splits,
            &args,
        )
    }

    /// gemm.cu's fused gate/up projection and activation: `act (m x inter,
    /// storage type)` = silu_mul.cu of `x * w^T` (`w`: the 2 inter x k
    /// gate/up weights, gate rows first), with k in `splits` splits: equal
    /// to [`Gpu::gemm_grail_split`] with as many splits followed by
    /// [`Gpu::silu_mul`]. For the shapes gemm.cu serves; `x` holds
    /// [`gemm_rows`]`(m)` rows.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_grail_swiglu(
        &self,
        x: &DBuf,
        m: usize,
        w: &DBuf,
        inter: usize,
        k: usize,
        bias: Option<&CudaSlice<f32>>,
        act: &mut DBuf,
        splits: usize,
    ) -> Result<(), CudaError> {
        assert!(act.dt() == w.dt() && act.len() >= m * inter && inter > 0);
        if let Some(b) = bias {
            assert_eq!(b.len(), 2 * inter);
        }
        let s = &self.stream;
        let args = [
            Arg::I(inter as i32),
            Arg::P(opt_ptr(bias, s)),
            Arg::P(act.ptr_at(s, 0)),
        ];
        let tiles = inter.div_ceil(GEMM_TILE);
        self.launch_gemm(
            GemmKind::Swiglu,
            (x, m),
            (w, 0, 2 * inter, k),
            tiles,
            splits,
            &args,
        )
    }

    /// gemm.cu's fused q/k/v projection, rope and KV-cache write: what
    /// [`Gpu::gemm_grail_split`] over `w` (the (heads + 2 kv_heads) head_dim
    /// x k q/k/v weights) with `splits` splits followed by
    /// [`Gpu::rope_kv_write`] computes, bit for bit, in one launch. Head
    /// dimensions that are multiples of 32; `x` holds [`gemm_rows`]`(m)` rows.
    pub fn gemm_grail_rope(
        &self,
        x: &DBuf,
        m: usize,
        w: &DBuf,
        k: usize,
        dst: RopeKv<'_>,
        splits: usize,
    ) -> Result<(), CudaError> {
        let d = dst.shape.head_dim;
        assert!(
            d.is_multiple_of(2 * GEMM_TILE),
            "gemm.cu's rope takes head dimensions that are multiples of 32, not {d}"
        );
        let width = dst.check(m);
        assert_eq!(
            dst.k_cache.dt(),
            w.dt(),
            "gemm_rope: cache and weight types"
        );
        let args = dst.args(&self.stream);
        let tiles = width / (2 * GEMM_TILE);
        self.launch_gemm(
            GemmKind::Rope,
            (x, m),
            (w, 0, width, k),
            tiles,
            splits,
            &args,
        )
    }

    /// Launches gemm.cu's `kind` kernel for `m` rows of `x` times `n` rows
    /// of `w` (from element `w_off`) of `k` columns, as `tiles` column tiles
    /// in `splits` splits, after checking the contract its wrapper does not
    /// (gemm_check): arguments x, m, w, k, then `args`, then the split
    /// scratch.
    fn launch_gemm(
        &self,
        kind: GemmKind,
        (x, m): (&DBuf, usize),
        (w, w_off, n, k): (&DBuf, usize, usize, usize),
        tiles: usize,
        splits: usize,
        args: &[Arg],
    ) -> Result<(), CudaError> {
        gemm_check(kind, x, m, w, w_off, n, k, tiles, splits);
        let s = &self.stream;
        let mut all = vec![
            Arg::P(x.ptr_at(s, 0)),
            Arg::I(m as i32),
            Arg::P(w.ptr_at(s, w_off)),
            Arg::I(k as i32),
        ];
        all.extend_from_slice(args);
        all.extend([
            Arg::P(ptr(&self.gemm_partials, s)),
            Arg::P(ptr(&self.gemm_done, s)),
        ]);
        self.launch(
            &gemm_kernel(kind, m.div_ceil(GEMM_TILE)),
            cfg((tiles as u32, splits as u32, 1), GEMM_THREADS as u32, 0),
            &all,
        )
    }

    /// The splits of k gemm.cu takes for a product of `n` columns over `k`
    /// on this GPU ([`gemm_splits`]).
    pub fn gemm_splits(&self, n: usize, k: usize) -> usize {
        gemm_splits(n, k, self.sms)
    }

    /// sampler.cu over `rows` rows of `logits`.
    #[allow(clippy::too_many_arguments)]
    pub fn sample(
        &self,
        logits: &CudaSlice<f32>,
        uniforms: &CudaSlice<f64>,
        rows: usize,
        vocab: usize,
        temperatures: &CudaSlice<f32>,
        token: &mut impl DevicePtr<u32>,
        logprob: &mut CudaSlice<f64>,
        status: &mut impl DevicePtr<u32>,
    ) -> Result<(), CudaError> {
        assert!(
            uniforms.len() >= rows && logits.len() >= rows * vocab && temperatures.len() >= rows
        );
        assert!(token.len() >= rows && logprob.len() >= rows && status.len() >= rows);
        let s = &self.stream;
        self.launch(
            "sample_f32",
            cfg((rows as u32, 1, 1), SOFTMAX_THREADS as u32, 0),
            &[
                Arg::P(ptr(logits, s)),
                Arg::P(ptr(uniforms, s)),
                Arg::I(vocab as i32),
                Arg::P(ptr(temperatures, s)),
                Arg::P(ptr(token, s)),
                Arg::P(ptr(logprob, s)),
                Arg::P(ptr(status, s)),
            ],
        )
    }

    /// logsoftmax.cu over `rows` rows.
    #[allow(clippy::too_many_arguments)]
    pub fn logprob(
        &self,
        logits: &CudaSlice<f32>,
        token: &CudaSlice<u32>,
        rows: usize,
        vocab: usize,
        temperatures: &CudaSlice<f32>,
        logprob: &mut CudaSlice<f64>,
        status: &mut CudaSlice<u32>,
    ) -> Result<(), CudaError> {
        assert!(
            token.len() >= rows
                && logits.len() >= rows * vocab
                && temperatures.len() >= rows
                && logprob.len() >= rows
                && status.len() >= rows
        );
        let s = &self.stream;
        self.launch(
            "logprob_f32",
            cfg((rows as u32, 1, 1), SOFTMAX_THREADS as u32, 0),
            &[
                Arg::P(ptr(logits, s)),
                Arg::P(ptr(token, s)),
                Arg::I(vocab as i32),
                Arg::P(ptr(temperatures, s)),
                Arg::P(ptr(logprob, s)),
                Arg::P(ptr(status, s)),
            ],
        )
    }

    /// sketch.cu over `rows` rows of `hidden` (`rows x dim`); `planes` from
    /// [`crate::twins::plane_words`].
    pub fn sketch(
        &self,
        hidden: &CudaSlice<f32>,
        rows: usize,
        planes: &CudaSlice<u32>,
        out: &mut impl DevicePtr<u32>,
        status: &mut impl DevicePtr<u32>,
    ) -> Result<(), CudaError> {
        let dim = planes.len() / 4;
        if dim > SKETCH_MAX_DIM {
            return Err(CudaError::Unsupported(format!(
                "sketch of dimension {dim}: the kernel serves at most {SKETCH_MAX_DIM}"
            )));
        }
        assert!(hidden.len() >= rows * dim && out.len() >= rows * 4 && status.len() >= rows);
        let s = &self.stream;
        self.launch(
            "sketch_f32",
            cfg((rows as u32, 1, 1), 256, dim.next_multiple_of(16) as u32),
            &[
                Arg::P(ptr(hidden, s)),
                Arg::P(ptr(planes, s)),
                Arg::I(dim as i32),
                Arg::P(ptr(out, s)),
                Arg::P(ptr(status, s)),
            ],
        )
    }
}

/// The attention kernel's per-split partial results and split counters
/// (see attention.cu), allocated once for the largest call
/// ([`Gpu::attention_scratch`]).
#[derive(Debug)]
pub struct AttnScratch {
    part_acc: CudaSlice<f32>,
    part_ml: CudaSlice<f32>,
    done: CudaSlice<u32>,
}

impl AttnScratch {
    /// Fills every partial with NaN bytes (0xff): the kernel parity tests
    /// poison it, so a merge that read a partial no split wrote would show.
    /// The split counters are left as they are (zero between launches).
    pub fn poison(&mut self, gpu: &Gpu) -> Result<(), CudaError> {
        for (p, bytes) in [
            (ptr(&self.part_acc, &gpu.stream), self.part_acc.num_bytes()),
            (ptr(&self.part_ml, &gpu.stream), self.part_ml.num_bytes()),
        ] {
            // SAFETY: the whole of an allocation this scratch owns.
            unsafe {
                cudarc::driver::result::memset_d8_async(p, 0xff, bytes, gpu.stream.cu_stream())
            }
            .op(|| format!("poisoning {bytes} bytes of attention scratch"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Arg {
    P(u64),
    I(i32),
    F(f32),
}

/// The contract of a gemm.cu launch of `kind` over `n` weight rows (from
/// element `w_off`) of k columns, as `tiles` column tiles in `splits`
/// splits: types, the shapes it serves, whole row tiles of x, and the split
/// scratch.
#[allow(clippy::too_many_arguments)]
fn gemm_check(
    kind: GemmKind,
    x: &DBuf,
    m: usize,
    w: &DBuf,
    w_off: usize,
    n: usize,
    k: usize,
    tiles: usize,
    splits: usize,
) {
    assert_eq!(x.dt(), w.dt(), "gemm: activation and weight types");
    assert!(
        gemm_supported(w.dt(), m, k, w_off),
        "gemm.cu does not serve {m}x{n}x{k} ({kind:?}, {:?}, weights from element {w_off})",
        w.dt()
    );
    assert!(
        x.len() >= gemm_rows(m) * k,
        "gemm.cu reads {} rows of x, which holds {} elements of rows of {k}",
        gemm_rows(m),
        x.len()
    );
    assert!(w_off + n * k <= w.len(), "gemm.cu: {n} x {k} weights");
    assert!(
        (1..=GEMM_MAX_SPLITS).contains(&splits)
            && (splits == 1
                || (tiles <= GEMM_SPLIT_COLUMNS
                    && splits * tiles * kind.parts() <= GEMM_SPLIT_TILES)),
        "gemm.cu: {splits} splits of {tiles} column tiles ({kind:?})"
    );
}

fn cfg(grid: (u32, u32, u32), block: u32, smem: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: grid,
        block_dim: (block, 1, 1),
        shared_mem_bytes: smem,
    }
}
