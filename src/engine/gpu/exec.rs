//! [`GpuNetwork`]: a lowered network on a device. Its constant weights are uploaded once, when it
//! is built; each input shape gets a plan (built on first use, then reused for every tile of that
//! shape, as the CPU engine's plans are): buffers (intermediate ones reused once their last reader
//! has run), bind groups and the list of dispatches. A run writes the input, submits the
//! dispatches and reads back only the output.
//!
//! Work is split so that no dispatch runs long (a GPU watchdog, or a browser's, kills long ones,
//! and a software adapter is slow): convolutions in chunks of output rows of at most
//! [`CONV_BUDGET`] multiply-adds, element-wise work in chunks of [`LINEAR_CHUNK`] elements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::TypedModel;
use tract_onnx::tract_core::internal::DimLike;
use wgpu::util::DeviceExt;

use super::device::GpuDevice;
use super::kernels::{Kernels, CONV_OC, CONV_PX, CONV_WG, CONV_WINDOW, LINEAR_WG};
use super::lower::{lower, Act, BinOp, Graph, PadKind, Resampling, Step, ValueId};
use super::GpuError;
use crate::engine::Network;

/// Multiply-adds per convolution dispatch: about 70 ms on a software adapter at ~1 GMAC/s,
/// microseconds on a GPU.
pub const CONV_BUDGET: u64 = 1 << 26;
/// Elements per dispatch of the 1-D kernels (16,384 workgroups of 256, under the 65,535 limit).
pub const LINEAR_CHUNK: usize = 1 << 22;
/// Work (multiply-adds or elements) per queue submission.
const BATCH_COST: u64 = 1 << 28;

/// A network's outputs, each as (shape, data), as [`Network::run`] returns them.
pub type Outputs = Vec<(Vec<usize>, Vec<f32>)>;

struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
    cost: u64,
}

/// Everything one input shape needs.
struct Plan {
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    output_shape: Vec<usize>,
    readback: wgpu::Buffer,
    batches: Vec<Vec<Dispatch>>,
}

/// A network lowered for the GPU, bound to one device.
pub struct GpuNetwork {
    dev: GpuDevice,
    graph: Graph,
    kernels: Kernels,
    /// Per step, its constant buffers (a convolution's weights and epilogue; the constant of a
    /// binary operation; PReLU slopes).
    consts: Vec<Vec<wgpu::Buffer>>,
    plans: Mutex<HashMap<Vec<usize>, Arc<Plan>>>,
    /// Threads that share the network take turns at [`GpuNetwork::run`] (native only: the
    /// browser's worker awaits [`GpuNetwork::run_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    running: Mutex<()>,
    /// A run is in flight (a plan's buffers are shared by its runs); held across the readback's
    /// await, so a flag rather than a lock.
    busy: AtomicBool,
}

/// The `busy` flag while a run holds it.
struct Busy<'a>(&'a AtomicBool);

impl<'a> Busy<'a> {
    fn take(flag: &'a AtomicBool) -> Result<Self, GpuError> {
        if flag.swap(true, Ordering::Acquire) {
            return Err(GpuError::Execution("a run is already in progress".into()));
        }
        Ok(Busy(flag))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for GpuNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuNetwork({} steps on {:?})",
            self.graph.steps.len(),
            self.dev
        )
    }
}

fn natural_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl GpuNetwork {
    /// Lowers `network` (tract's decluttered model of it, batch 1, the spatial axes symbolic
    /// where the model leaves them open) and uploads its weights.
    pub fn new(network: &Network, device: &GpuDevice) -> Result<Self, GpuError> {
        let mut dims = network.input_shape();
        if dims.is_empty() {
            return Err(GpuError::Unsupported {
                op: "graph".into(),
                node: String::new(),
                why: "no declared input shape".into(),
            });
        }
        // One image at a time: tiles and face crops are single images.
        dims[0] = Some(1);
        let model = network.decluttered(&dims)?;
        Self::from_model(&model, device)
    }

    /// Lowers an already decluttered tract model (f32, one input, one output).
    pub fn from_model(model: &TypedModel, device: &GpuDevice) -> Result<Self, GpuError> {
        let graph = lower(model)?;
        let dev = device.clone();
        dev.take_error()?;
        let kernels = Kernels::new(&dev.device);
        let consts = graph
            .steps
            .iter()
            .map(|s| upload_consts(&dev, s))
            .collect::<Result<Vec<_>, _>>()?;
        dev.wait()?;
        Ok(GpuNetwork {
            dev,
            graph,
            kernels,
            consts,
            plans: Mutex::new(HashMap::new()),
            #[cfg(not(target_arch = "wasm32"))]
            running: Mutex::new(()),
            busy: AtomicBool::new(false),
        })
    }

    /// The lowered graph (for tests and reports).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the network on one f32 input (NCHW, batch 1); returns its output as (shape, data),
    /// in a list as [`Network::run`] does.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, shape: &[usize], data: Vec<f32>) -> Result<Outputs, GpuError> {
        // Threads that share this network take turns.
        let _turn = self.running.lock().unwrap();
        let _one = Busy::take(&self.busy)?;
        pollster::block_on(self.submit_and_read(shape, data))
    }

    /// [`GpuNetwork::run`] as a future: in the browser the readback completes only when the
    /// worker's event loop turns, so the page's GPU worker awaits it instead of blocking.
    /// A second run started before the first one ends is refused (the page's worker awaits one
    /// run at a time).
    pub async fn run_async(&self, shape: &[usize], data: Vec<f32>) -> Result<Outputs, GpuError> {
        let _one = Busy::take(&self.busy)?;
        self.submit_and_read(shape, data).await
    }

    /// One run; the caller holds `busy`.
    async fn submit_and_read(&self, shape: &[usize], data: Vec<f32>) -> Result<Outputs, GpuError> {
        // This run's own errors (an invalid dispatch, out of memory), tied to it by error scopes:
        // in the browser they arrive asynchronously, possibly after the readback, and would
        // otherwise fail the next run instead of this one. (A scope left by an early return is
        // popped when dropped, in stack order.)
        let oom = self
            .dev
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = self
            .dev
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let plan = self.plan(shape)?;
        if data.len() != shape.iter().product::<usize>() {
            return Err(GpuError::Input(format!(
                "{} values for shape {shape:?}",
                data.len()
            )));
        }
        let (device, queue) = (&self.dev.device, &self.dev.queue);
        queue.write_buffer(&plan.input, 0, bytemuck::cast_slice(&data));
        for batch in &plan.batches {
            let mut enc = device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for d in batch {
                    pass.set_pipeline(&d.pipeline);
                    pass.set_bind_group(0, &d.bind, &[]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
            }
            queue.submit([enc.finish()]);
        }
        let bytes = plan.readback.size();
        let mut enc = device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&plan.output, 0, &plan.readback, 0, bytes);
        queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        plan.readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        // Natively this drives the mapping to its end; in the browser it returns at once and the
        // mapping completes as the event loop turns.
        self.dev.wait()?;
        let (invalid, oom) = (invalid.pop(), oom.pop());
        if let Some(e) = invalid.await.or(oom.await) {
            return Err(GpuError::Execution(e.to_string()));
        }
        let mapped = rx.await;
        self.dev.take_error()?;
        mapped
            .map_err(|_| GpuError::Execution("the GPU device was lost during a run".into()))?
            .map_err(|e| GpuError::Execution(e.to_string()))?;
        let out: Vec<f32> = {
            let view = plan
                .readback
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Execution(e.to_string()))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        plan.readback.unmap();
        let n: usize = plan.output_shape.iter().product();
        Ok(vec![(plan.output_shape.clone(), out[..n].to_vec())])
    }

    fn plan(&self, shape: &[usize]) -> Result<Arc<Plan>, GpuError> {
        if let Some(p) = self.plans.lock().unwrap().get(shape) {
            return Ok(p.clone());
        }
        // Natively the plan's wgpu handles are Send and Sync; in the browser (one thread) they
        // are not, and need not be.
        #[allow(clippy::arc_with_non_send_sync)]
        let plan = Arc::new(self.build_plan(shape)?);
        self.dev.wait()?;
        self.plans
            .lock()
            .unwrap()
            .insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }

    fn build_plan(&self, input_shape: &[usize]) -> Result<Plan, GpuError> {
        let g = &self.graph;
        let shapes = g.shapes(input_shape)?;
        let sv = g.symbol_values(input_shape);
        let limits = &self.dev.limits;
        let bytes_of = |v: ValueId| (shapes[v].iter().product::<usize>().max(1) * 4) as u64;
        let make = |what: &str, bytes: u64, usage: wgpu::BufferUsages| {
            let limit = limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size);
            if bytes > limit {
                return Err(GpuError::TooLarge {
                    what: what.into(),
                    bytes,
                    limit,
                });
            }
            Ok(self.dev.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(what),
                size: bytes,
                usage,
                mapped_at_creation: false,
            }))
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let (input_root, output_root) = (g.root(g.input), g.root(g.output));
        let mut last_read: Vec<Option<usize>> = vec![None; g.values.len()];
        for (s, step) in g.steps.iter().enumerate() {
            for v in reads(step) {
                last_read[g.root(v)] = Some(s);
            }
        }
        let mut bufs: HashMap<ValueId, wgpu::Buffer> = HashMap::new();
        let input = make(
            "input",
            bytes_of(input_root),
            storage | wgpu::BufferUsages::COPY_DST,
        )?;
        bufs.insert(input_root, input.clone());
        let mut free: Vec<wgpu::Buffer> = vec![];
        let mut output = None;
        let mut dispatches = vec![];
        for (s, step) in g.steps.iter().enumerate() {
            let y = writes(step);
            let need = bytes_of(y);
            let buf = if y == output_root {
                let b = make("output", need, storage | wgpu::BufferUsages::COPY_SRC)?;
                output = Some(b.clone());
                b
            } else {
                // The smallest free buffer that holds it, else a new one.
                match free
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.size() >= need)
                    .min_by_key(|(_, b)| b.size())
                    .map(|(i, _)| i)
                {
                    Some(i) => free.swap_remove(i),
                    None => make("activation", need, storage)?,
                }
            };
            bufs.insert(y, buf);
            let buf_of = |v: ValueId| bufs[&g.root(v)].clone();
            dispatches.extend(self.encode(s, step, &shapes, &sv, &buf_of)?);
            let mut done: Vec<ValueId> = reads(step).iter().map(|&v| g.root(v)).collect();
            done.push(y);
            done.sort_unstable();
            done.dedup();
            for r in done {
                if r != input_root && r != output_root && last_read[r].is_none_or(|l| l <= s) {
                    if let Some(b) = bufs.remove(&r) {
                        free.push(b);
                    }
                }
            }
        }
        let output = output.ok_or_else(|| GpuError::Input("the output is never written".into()))?;
        let readback = self.dev.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: output.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut batches: Vec<Vec<Dispatch>> = vec![vec![]];
        let mut cost = 0;
        for d in dispatches {
            if cost >= BATCH_COST {
                batches.push(vec![]);
                cost = 0;
            }
            cost += d.cost;
            batches.last_mut().unwrap().push(d);
        }
        Ok(Plan {
            input,
            output,
            output_shape: shapes[g.output].clone(),
            readback,
            batches,
        })
    }

    fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        let mut w = words.to_vec();
        w.resize(words.len().div_ceil(4) * 4, 0);
        self.dev
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice(&w),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
        cost: u64,
    ) -> Dispatch {
        let params = self.uniform(params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind = self
            .dev
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
        Dispatch {
            pipeline: pipeline.clone(),
            bind,
            groups,
            cost,
        }
    }

    /// 1-D dispatches over `n` elements, in chunks; `params(start)` gives each one's words.
    fn linear(
        &self,
        pipeline: &wgpu::ComputePipeline,
        n: usize,
        params: impl Fn(usize) -> Vec<u32>,
        buffers: &[&wgpu::Buffer],
    ) -> Vec<Dispatch> {
        (0..n)
            .step_by(LINEAR_CHUNK)
            .map(|start| {
                let len = (n - start).min(LINEAR_CHUNK);
                let groups = [len.div_ceil(LINEAR_WG) as u32, 1, 1];
                self.dispatch(pipeline, &params(start), buffers, groups, len as u64)
            })
            .collect()
    }

    fn encode(
        &self,
        index: usize,
        step: &Step,
        shapes: &[Vec<usize>],
        sv: &tract_onnx::prelude::SymbolValues,
        buf: &dyn Fn(ValueId) -> wgpu::Buffer,
    ) -> Result<Vec<Dispatch>, GpuError> {
        let consts = &self.consts[index];
        let numel = |v: ValueId| shapes[v].iter().product::<usize>();
        Ok(match step {
            Step::Conv(c) => {
                let (xs, ys) = (&shapes[c.x], &shapes[c.y]);
                if xs.len() != 4 || xs[0] != 1 || ys[0] != 1 {
                    return Err(GpuError::Input(format!(
                        "batch of {xs:?}: the GPU engine runs one image"
                    )));
                }
                let (hi, wi, ho, wo) = (xs[2], xs[3], ys[2], ys[3]);
                let cob = c.co.div_ceil(CONV_OC);
                let (act, alpha) = c.act.code();
                let per_row = (wo * c.co * c.ci * c.kernel[0] * c.kernel[1]).max(1) as u64;
                let rows = ((CONV_BUDGET / per_row) as usize / CONV_WG * CONV_WG).max(CONV_WG);
                let pipeline = self.kernels.conv(c.kernel, c.stride);
                let (x, y) = (buf(c.x), buf(c.y));
                (0..ho)
                    .step_by(rows)
                    .map(|y0| {
                        let n = rows.min(ho - y0);
                        let params = [
                            c.ci as u32,
                            hi as u32,
                            wi as u32,
                            c.co as u32,
                            ho as u32,
                            wo as u32,
                            c.pad[0] as u32,
                            c.pad[1] as u32,
                            y0 as u32,
                            act,
                            f32::to_bits(alpha),
                            cob as u32,
                        ];
                        let groups = [
                            wo.div_ceil(CONV_PX).div_ceil(CONV_WG) as u32,
                            n.div_ceil(CONV_WG) as u32,
                            cob as u32,
                        ];
                        let bufs = [&x, &consts[0], &consts[1], &y];
                        self.dispatch(&pipeline, &params, &bufs, groups, per_row * n as u64)
                    })
                    .collect()
            }
            Step::Binary { a, b, y, op } => {
                let n = numel(*y) as u32;
                let (a, b, y) = (buf(*a), buf(*b), buf(*y));
                self.linear(
                    &self.kernels.eltwise,
                    n as usize,
                    |start| vec![n, start as u32, binop(*op), 0, 1, 1, 0, 0],
                    &[&a, &b, &y],
                )
            }
            Step::BinaryConst {
                a,
                y,
                op,
                values,
                axis,
                const_first,
            } => {
                let shape = &shapes[*a];
                let (inner, count) = match axis {
                    Some(ax) if values.len() > 1 => {
                        (shape[ax + 1..].iter().product::<usize>(), shape[*ax])
                    }
                    _ => (1, 1),
                };
                let n = numel(*y) as u32;
                let (a, y) = (buf(*a), buf(*y));
                let cf = *const_first as u32;
                self.linear(
                    &self.kernels.eltwise,
                    n as usize,
                    |start| {
                        vec![
                            n,
                            start as u32,
                            binop(*op),
                            1,
                            inner as u32,
                            count as u32,
                            cf,
                            0,
                        ]
                    },
                    &[&a, &consts[0], &y],
                )
            }
            Step::Act { x, y, act } => {
                let shape = &shapes[*x];
                // eltwise.wgsl's activations are its ops from 16 on, in conv.wgsl's order.
                let (code, alpha) = act.code();
                let (inner, count) = match act {
                    Act::PRelu(s) if s.len() > 1 => (shape[2..].iter().product::<usize>(), s.len()),
                    _ => (1, 1),
                };
                let op = 16 + code;
                let n = numel(*y) as u32;
                let (x, y) = (buf(*x), buf(*y));
                self.linear(
                    &self.kernels.eltwise,
                    n as usize,
                    |start| {
                        vec![
                            n,
                            start as u32,
                            op,
                            1,
                            inner as u32,
                            count as u32,
                            0,
                            alpha.to_bits(),
                        ]
                    },
                    &[&x, &consts[0], &y],
                )
            }
            Step::Permute { x, y, perm } => {
                let xs = natural_strides(&shapes[*x]);
                let sstr: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
                let ys = &shapes[*y];
                let copy = Copy::plain(ys, &sstr, &natural_strides(ys));
                self.copy(copy, &buf(*x), &buf(*y))?
            }
            Step::Concat { xs, y, axis } => {
                let ystr = natural_strides(&shapes[*y]);
                let yb = buf(*y);
                let mut offset = 0;
                let mut out = vec![];
                for &x in xs {
                    let xs_ = &shapes[x];
                    let mut copy = Copy::plain(xs_, &natural_strides(xs_), &ystr);
                    copy.dbase = offset * ystr[*axis];
                    offset += xs_[*axis];
                    out.extend(self.copy(copy, &buf(x), &yb)?);
                }
                out
            }
            Step::Slice {
                x,
                y,
                axis,
                start,
                stride,
            } => {
                let start = start
                    .eval(sv)
                    .to_usize()
                    .map_err(|e| GpuError::Input(e.to_string()))?;
                let mut sstr = natural_strides(&shapes[*x]);
                let sbase = start * sstr[*axis];
                sstr[*axis] *= stride;
                let ys = &shapes[*y];
                let mut copy = Copy::plain(ys, &sstr, &natural_strides(ys));
                copy.sbase = sbase;
                self.copy(copy, &buf(*x), &buf(*y))?
            }
            Step::Pad { x, y, pads, mode } => {
                let (xs, ys) = (&shapes[*x], &shapes[*y]);
                let mut copy = Copy::plain(ys, &natural_strides(xs), &natural_strides(ys));
                copy.before = pads.iter().map(|p| p.0).collect();
                copy.sdims = xs.clone();
                (copy.mode, copy.value) = match mode {
                    PadKind::Constant(v) => (1, *v),
                    PadKind::Reflect => (2, 0.0),
                    PadKind::Edge => (3, 0.0),
                };
                self.copy(copy, &buf(*x), &buf(*y))?
            }
            Step::Resize { x, y, how } => {
                let (xs, ys) = (&shapes[*x], &shapes[*y]);
                let r = xs.len();
                let (hi, wi, ho, wo) = (xs[r - 2], xs[r - 1], ys[r - 2], ys[r - 1]);
                let ((wy, ty), (wx, tx)) = match how {
                    Resampling::Nearest([sh, sw]) => (nearest(ho, *sh), nearest(wo, *sw)),
                    Resampling::Core(op, scales) => {
                        let scale = |axis: usize, li: usize, lo: usize| {
                            scales.as_ref().map_or(lo as f32 / li as f32, |s| s[axis])
                        };
                        (
                            table(op, scale(r - 2, hi, ho), hi, ho)?,
                            table(op, scale(r - 1, wi, wo), wi, wo)?,
                        )
                    }
                };
                let t: Vec<u32> = ty.into_iter().chain(tx).collect();
                let table = self
                    .dev
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("resize table"),
                        contents: bytemuck::cast_slice(&t),
                        usage: wgpu::BufferUsages::STORAGE,
                    });
                let n = numel(*y) as u32;
                let (xb, yb) = (buf(*x), buf(*y));
                let dims = [hi, wi, ho, wo, wy, wx].map(|v| v as u32);
                self.linear(
                    &self.kernels.resize,
                    n as usize,
                    |start| [&[n, start as u32][..], &dims[..]].concat(),
                    &[&xb, &table, &yb],
                )
            }
        })
    }

    fn copy(&self, c: Copy, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Vec<Dispatch>, GpuError> {
        let rank = c.dims.len();
        if rank > 6 {
            return Err(GpuError::Unsupported {
                op: "copy".into(),
                node: String::new(),
                why: format!("rank {rank} (at most 6)"),
            });
        }
        // Left-padded to 6 axes of length 1, then each list to 8 words (two vec4).
        let six = |v: &[usize], fill: usize| -> Vec<u32> {
            let mut w = vec![fill as u32; 6 - rank];
            w.extend(v.iter().map(|&x| x as u32));
            w.extend([0, 0]);
            w
        };
        let n: usize = c.dims.iter().product();
        let head = [
            six(&c.dims, 1),
            six(&c.sstr, 0),
            six(&c.dstr, 0),
            six(&c.before, 0),
            six(&c.sdims, 1),
        ]
        .concat();
        Ok(self.linear(
            &self.kernels.copy,
            n,
            |start| {
                let tail = [
                    c.sbase as u32,
                    c.dbase as u32,
                    n as u32,
                    start as u32,
                    c.mode,
                    c.value.to_bits(),
                    0,
                    0,
                ];
                [&head[..], &tail[..]].concat()
            },
            &[x, y],
        ))
    }
}

/// The parameters of copy.wgsl.
struct Copy {
    dims: Vec<usize>,
    sstr: Vec<usize>,
    dstr: Vec<usize>,
    before: Vec<usize>,
    sdims: Vec<usize>,
    sbase: usize,
    dbase: usize,
    mode: u32,
    value: f32,
}

impl Copy {
    fn plain(dims: &[usize], sstr: &[usize], dstr: &[usize]) -> Self {
        Copy {
            dims: dims.to_vec(),
            sstr: sstr.to_vec(),
            dstr: dstr.to_vec(),
            before: vec![0; dims.len()],
            sdims: dims.to_vec(),
            sbase: 0,
            dbase: 0,
            mode: 0,
            value: 0.0,
        }
    }
}

fn binop(op: BinOp) -> u32 {
    match op {
        BinOp::Add => 0,
        BinOp::Mul => 1,
        BinOp::Sub => 2,
        BinOp::Div => 3,
        BinOp::Max => 4,
        BinOp::Min => 5,
    }
}

/// resize.wgsl's table of an integer nearest upsampling: one tap, weight 1.
fn nearest(len_out: usize, scale: usize) -> (usize, Vec<u32>) {
    let t = (0..len_out)
        .flat_map(|o| [(o / scale) as u32, 1f32.to_bits()])
        .collect();
    (1, t)
}

/// resize.wgsl's table of one axis of tract's `Resize`, from tract's own plan.
fn table(
    op: &tract_onnx::tract_core::ops::nn::resize::Resize,
    scale: f32,
    len_in: usize,
    len_out: usize,
) -> Result<(usize, Vec<u32>), GpuError> {
    if len_in == len_out && scale == 1.0 {
        return Ok(nearest(len_out, 1));
    }
    let plan = op.plan_axis(scale, len_in, len_out);
    if plan.extrapolated.iter().any(|&e| e) {
        return Err(GpuError::Unsupported {
            op: "Resize".into(),
            node: String::new(),
            why: "extrapolated samples".into(),
        });
    }
    let w = plan.window;
    let mut t = Vec::with_capacity(len_out * 2 * w);
    for o in 0..len_out {
        t.extend(plan.indices[o * w..(o + 1) * w].iter().map(|&i| i as u32));
        t.extend(plan.weights[o * w..(o + 1) * w].iter().map(|f| f.to_bits()));
    }
    Ok((w, t))
}

fn reads(step: &Step) -> Vec<ValueId> {
    match step {
        Step::Conv(c) => vec![c.x],
        Step::Binary { a, b, .. } => vec![*a, *b],
        Step::BinaryConst { a, .. } => vec![*a],
        Step::Act { x, .. }
        | Step::Permute { x, .. }
        | Step::Slice { x, .. }
        | Step::Pad { x, .. }
        | Step::Resize { x, .. } => vec![*x],
        Step::Concat { xs, .. } => xs.clone(),
    }
}

fn writes(step: &Step) -> ValueId {
    match step {
        Step::Conv(c) => c.y,
        Step::Binary { y, .. }
        | Step::BinaryConst { y, .. }
        | Step::Act { y, .. }
        | Step::Permute { y, .. }
        | Step::Concat { y, .. }
        | Step::Slice { y, .. }
        | Step::Pad { y, .. }
        | Step::Resize { y, .. } => *y,
    }
}

/// A step's constants on the device: a convolution's packed weights and epilogue, the constant
/// of a binary operation, PReLU slopes (a dummy for the rest, so every step binds alike).
fn upload_consts(dev: &GpuDevice, step: &Step) -> Result<Vec<wgpu::Buffer>, GpuError> {
    let limit = dev
        .limits
        .max_storage_buffer_binding_size
        .min(dev.limits.max_buffer_size);
    let upload = |what: &str, values: &[f32]| {
        let bytes = (values.len().max(1) * 4) as u64;
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: what.into(),
                bytes,
                limit,
            });
        }
        let data = if values.is_empty() {
            &[0.0][..]
        } else {
            values
        };
        Ok(dev
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(what),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE,
            }))
    };
    Ok(match step {
        Step::Conv(c) => {
            if (CONV_PX - 1) * c.stride[1] + c.kernel[1] > CONV_WINDOW {
                return Err(GpuError::Unsupported {
                    op: "Conv".into(),
                    node: String::new(),
                    why: format!("kernel {:?} at stride {:?}", c.kernel, c.stride),
                });
            }
            let cob = c.co.div_ceil(CONV_OC);
            let taps = c.ci * c.kernel[0] * c.kernel[1];
            // [cob][ci][kh][kw][8]: the 8 output channels of a block side by side.
            let mut w = vec![0f32; cob * taps * CONV_OC];
            for o in 0..c.co {
                let (b, j) = (o / CONV_OC, o % CONV_OC);
                for t in 0..taps {
                    w[(b * taps + t) * CONV_OC + j] = c.weights[o * taps + t];
                }
            }
            let mut e = vec![0f32; 2 * cob * CONV_OC];
            e[..c.co].copy_from_slice(&c.bias);
            if let Act::PRelu(s) = &c.act {
                for o in 0..c.co {
                    e[cob * CONV_OC + o] = s[if s.len() == 1 { 0 } else { o }];
                }
            }
            vec![upload("conv weights", &w)?, upload("conv epilogue", &e)?]
        }
        Step::BinaryConst { values, .. } => vec![upload("constant", values)?],
        Step::Act {
            act: Act::PRelu(s), ..
        } => vec![upload("slopes", s)?],
        _ => vec![upload("unused", &[])?],
    })
}
