//! Every GPU kernel against tract, on small random networks built as ONNX graphs (so that both
//! engines load them as they load a real network: [`Network`] for tract, [`GpuNetwork::new`] for
//! the GPU). Shapes are deliberately not multiples of the kernels' blocking (4 pixels × 8
//! channels per conv invocation, 8×8 workgroups, 256-element workgroups), so every partial tile
//! is exercised.
//!
//! The measure: relative error = max|gpu − tract| / max(1, max|tract|), at most 1e-5 in f32.
//!
//! They run on any adapter, a software one included (lavapipe on CI: `scripts/setup.sh test`
//! installs it); they skip, saying so, only where there is no adapter at all — and not even
//! there under `make test`, which sets `UNBLUR_REQUIRE_GPU=1`.

use std::sync::OnceLock;

use tract_onnx::pb;

use super::{GpuChoice, GpuDevice, GpuError, GpuNetwork};
use crate::convert::graph::{Attr, Graph};
use crate::engine::Network;

pub(super) const TOLERANCE: f32 = 1e-5;

fn device() -> Option<&'static GpuDevice> {
    static D: OnceLock<Option<GpuDevice>> = OnceLock::new();
    D.get_or_init(|| match GpuDevice::new(GpuChoice::On) {
        Ok(d) => {
            eprintln!("GPU kernel tests on {}", d.describe());
            Some(d)
        }
        Err(GpuError::NoAdapter(why)) => {
            // `make test` sets this: there, setup.sh has installed an adapter, so none is a
            // failure, not a skip.
            if std::env::var_os("UNBLUR_REQUIRE_GPU").is_some() {
                panic!("UNBLUR_REQUIRE_GPU is set and there is no GPU adapter: {why}");
            }
            eprintln!("SKIPPED: the GPU kernel tests need an adapter, and there is none ({why}); on Debian, `apt-get install mesa-vulkan-drivers` gives a software one");
            None
        }
        Err(e) => panic!("{e}"),
    })
    .as_ref()
}

/// A small deterministic generator (xorshift): values in −1…1.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn graph() -> Graph {
    Graph::new(Default::default())
}

/// max|a − b| / max(1, max|b|).
pub(super) fn relative_error(gpu: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(gpu.len(), reference.len());
    let diff = gpu
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = reference.iter().map(|v| v.abs()).fold(1f32, f32::max);
    diff / scale
}

/// Runs `model` on both engines on random input of `shape`; checks shapes and the error.
fn check_on(dev: &GpuDevice, what: &str, model: pb::ModelProto, shape: &[usize]) -> f32 {
    let net = Network::from_model(model).unwrap();
    let input = Rng(shape.iter().product::<usize>() as u64 * 7919 + 1).vec(shape.iter().product());
    let (cs, cpu) = net.run(shape, input.clone()).unwrap().remove(0);
    let gpu_net = GpuNetwork::new(&net, dev).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (gs, gpu) = gpu_net.run(shape, input).unwrap().remove(0);
    assert_eq!(gs, cs, "{what}: output shape");
    let err = relative_error(&gpu, &cpu);
    eprintln!("{what} {shape:?}: relative error {err:.2e}");
    assert!(err <= TOLERANCE, "{what} {shape:?}: relative error {err:e}");
    err
}

fn check(what: &str, model: impl Fn(&[usize]) -> pb::ModelProto, shapes: &[&[usize]]) {
    let Some(dev) = device() else { return };
    for shape in shapes {
        check_on(dev, what, model(shape), shape);
    }
}

/// A convolution of `ci` → `co` channels, kernel `k`, stride and padding as `[k, stride, pad]`.
fn conv(
    g: &mut Graph,
    rng: &mut Rng,
    x: &str,
    ci: usize,
    co: usize,
    [k, stride, pad]: [usize; 3],
) -> String {
    let w = g.constant("w", &[co, ci, k, k], &rng.vec(co * ci * k * k));
    let b = g.constant("b", &[co], &rng.vec(co));
    let (k, s, p) = (k as i64, stride as i64, pad as i64);
    g.op(
        "Conv",
        &[x, &w, &b],
        vec![
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("strides", Attr::Ints(vec![s, s])),
            ("pads", Attr::Ints(vec![p, p, p, p])),
        ],
    )
}

/// A convolution and an activation (fused into the conv's epilogue on the GPU).
fn conv_model(
    co: usize,
    k: usize,
    stride: usize,
    pad: usize,
    act: &'static str,
) -> impl Fn(&[usize]) -> pb::ModelProto {
    move |shape| {
        let mut rng = Rng(42 + co as u64);
        let mut g = graph();
        let ci = shape[1];
        let mut y = conv(&mut g, &mut rng, "input", ci, co, [k, stride, pad]);
        match act {
            "prelu" => {
                let s = g.constant("slope", &[co, 1, 1], &rng.vec(co));
                y = g.op("PRelu", &[&y, &s], vec![]);
            }
            "leaky" => y = g.leaky(&y, 0.2),
            _ => {}
        }
        g.finish(&y, shape, "test").unwrap()
    }
}

#[test]
fn conv3x3_prelu() {
    check(
        "conv 3×3 + PReLU",
        conv_model(11, 3, 1, 1, "prelu"),
        &[&[1, 5, 13, 19], &[1, 16, 9, 33]],
    );
}

#[test]
fn conv3x3_stride2_leaky() {
    check(
        "conv 3×3 /2 + LeakyReLU",
        conv_model(9, 3, 2, 1, "leaky"),
        &[&[1, 6, 17, 23], &[1, 3, 12, 8]],
    );
}

#[test]
fn conv_other_kernels() {
    check("conv 5×5", conv_model(5, 5, 1, 2, ""), &[&[1, 4, 11, 7]]);
    check(
        "conv 3×3 unpadded",
        conv_model(13, 3, 1, 0, ""),
        &[&[1, 3, 10, 9]],
    );
    // tract rewrites a strided 1×1 convolution as a downsample and an EinSum.
    check(
        "conv 1×1 /2",
        conv_model(6, 1, 2, 0, "prelu"),
        &[&[1, 4, 9, 10]],
    );
}

#[test]
fn conv1x1() {
    // tract declutters a 1×1 convolution into an EinSum and an Add of its bias.
    check(
        "conv 1×1",
        conv_model(10, 1, 1, 0, "leaky"),
        &[&[1, 7, 5, 13], &[1, 64, 3, 4]],
    );
}

#[test]
fn elementwise() {
    let model = |shape: &[usize]| {
        let mut rng = Rng(7);
        let c = shape[1];
        let mut g = graph();
        let s = g.constant("slope", &[c, 1, 1], &rng.vec(c));
        let a = g.op("PRelu", &["input", &s], vec![]);
        let m = g.constant("scale", &[1, c, 1, 1], &rng.vec(c));
        let b = g.mul(&a, &m);
        let one = g.constant("one", &[], &[1.0]);
        let d = g.op("Sub", &[&one, &b], vec![]);
        let e = g.add(&d, &a);
        let f = g.leaky(&e, 0.1);
        let two = g.constant("two", &[1], &[2.0]);
        let h = g.op("Div", &[&f, &two], vec![]);
        let k = g.constant("bias", &[c, 1, 1], &rng.vec(c));
        let y = g.add(&k, &h);
        g.finish(&y, shape, "test").unwrap()
    };
    check("element-wise", model, &[&[1, 5, 7, 9], &[1, 3, 1, 300]]);
}

/// Sigmoid, tanh, SiLU (tract fuses `x·sigmoid(x)` into one operator), ReLU (a `Max` with 0),
/// on their own and in a convolution's epilogue.
#[test]
fn activations() {
    let model = |shape: &[usize]| {
        let mut rng = Rng(11);
        let mut g = graph();
        let a = g.op("Sigmoid", &["input"], vec![]);
        let b = g.mul(&a, "input");
        let c = g.op("Tanh", &[&b], vec![]);
        let d = g.op("Relu", &[&c], vec![]);
        let e = conv(&mut g, &mut rng, &d, shape[1], 9, [3, 1, 1]);
        let f = g.op("Sigmoid", &[&e], vec![]);
        let h = conv(&mut g, &mut rng, &f, 9, 4, [3, 1, 1]);
        let s = g.op("Sigmoid", &[&h], vec![]);
        let y = g.mul(&h, &s);
        g.finish(&y, shape, "test").unwrap()
    };
    check("activations", model, &[&[1, 3, 9, 14]]);
}

#[test]
fn concat() {
    let model = |shape: &[usize]| {
        let mut rng = Rng(3);
        let mut g = graph();
        let a = conv(&mut g, &mut rng, "input", shape[1], 5, [3, 1, 1]);
        let y = g.concat(&[&a, "input", &a], 1);
        g.finish(&y, shape, "test").unwrap()
    };
    check("concat", model, &[&[1, 3, 6, 11]]);
}

#[test]
fn depth_and_space() {
    let d2s = |block: i64, mode: &'static str| {
        move |shape: &[usize]| {
            let mut g = graph();
            let y = g.op(
                "DepthToSpace",
                &["input"],
                vec![("blocksize", Attr::Int(block)), ("mode", Attr::Str(mode))],
            );
            g.finish(&y, shape, "test").unwrap()
        }
    };
    check("DepthToSpace ×2 CRD", d2s(2, "CRD"), &[&[1, 12, 5, 7]]);
    check("DepthToSpace ×2 DCR", d2s(2, "DCR"), &[&[1, 12, 5, 7]]);
    check("DepthToSpace ×4 CRD", d2s(4, "CRD"), &[&[1, 48, 3, 5]]);
    let s2d = |shape: &[usize]| {
        let mut g = graph();
        let y = g.op(
            "SpaceToDepth",
            &["input"],
            vec![("blocksize", Attr::Int(2))],
        );
        g.finish(&y, shape, "test").unwrap()
    };
    check("SpaceToDepth ×2", s2d, &[&[1, 3, 6, 10]]);
}

#[test]
fn resize() {
    let model = |scale: f32, mode: &'static str, transform: &'static str| {
        move |shape: &[usize]| {
            let mut g = graph();
            let s = g.constant("scales", &[4], &[1.0, 1.0, scale, scale]);
            let mut attrs = vec![
                ("mode", Attr::Str(mode)),
                ("coordinate_transformation_mode", Attr::Str(transform)),
            ];
            if mode == "nearest" {
                attrs.push(("nearest_mode", Attr::Str("floor")));
            }
            let y = g.op("Resize", &["input", "", &s], attrs);
            g.finish(&y, shape, "test").unwrap()
        }
    };
    check(
        "nearest ×2",
        model(2.0, "nearest", "asymmetric"),
        &[&[1, 3, 7, 10]],
    );
    check(
        "nearest ×4",
        model(4.0, "nearest", "asymmetric"),
        &[&[1, 3, 5, 3]],
    );
    check(
        "bilinear ×2 half_pixel",
        model(2.0, "linear", "half_pixel"),
        &[&[1, 3, 7, 10]],
    );
    check(
        "bilinear ×2 pytorch_half_pixel",
        model(2.0, "linear", "pytorch_half_pixel"),
        &[&[1, 2, 6, 5]],
    );
    check(
        "bilinear ×0.5 align_corners",
        model(0.5, "linear", "align_corners"),
        &[&[1, 2, 10, 14]],
    );
}

#[test]
fn pad() {
    let model = |mode: &'static str| {
        move |shape: &[usize]| {
            let mut g = graph();
            let pads = g.ints("pads", &[0, 0, 1, 2, 0, 0, 3, 1]);
            let v = g.constant("value", &[], &[0.5]);
            let y = g.op(
                "Pad",
                &["input", &pads, &v],
                vec![("mode", Attr::Str(mode))],
            );
            g.finish(&y, shape, "test").unwrap()
        }
    };
    check("pad constant", model("constant"), &[&[1, 2, 6, 7]]);
    check("pad reflect", model("reflect"), &[&[1, 2, 6, 7]]);
    check("pad edge", model("edge"), &[&[1, 2, 6, 7]]);
}

#[test]
fn unsupported_op_is_an_error() {
    let Some(dev) = device() else { return };
    let mut g = graph();
    let y = g.op("Erf", &["input"], vec![]);
    let net = Network::from_model(g.finish(&y, &[1, 3, 4, 4], "test").unwrap()).unwrap();
    match GpuNetwork::new(&net, dev) {
        Err(GpuError::Unsupported { op, .. }) => assert!(op.contains("Erf"), "{op}"),
        other => panic!("expected an unsupported op, got {other:?}"),
    }
}

/// wgpu's default limits (128 MiB bindings): a convolution split into several dispatches of
/// rows, and an activation over the binding limit refused with a typed error before any work.
#[test]
fn default_limits() {
    if device().is_none() {
        return;
    }
    let dev = GpuDevice::with_default_limits(GpuChoice::On).unwrap();
    assert_eq!(dev.limits().max_storage_buffer_binding_size, 128 << 20);
    // 160 rows of 96 × 32 × 32 × 9 multiply-adds: three dispatches of at most 2^26.
    let shape = [1, 32, 160, 96];
    let per_row = 96 * 32 * 32 * 9;
    assert!(160 * per_row > 2 * super::exec::CONV_BUDGET as usize);
    check_on(
        &dev,
        "conv at default limits",
        conv_model(32, 3, 1, 1, "prelu")(&shape),
        &shape,
    );
    // 64 × 600 × 1000 floats = 153.6 MB > 128 MiB.
    let shape = [1, 3, 600, 1000];
    let net = Network::from_model(conv_model(64, 3, 1, 1, "")(&shape)).unwrap();
    let gpu = GpuNetwork::new(&net, &dev).unwrap();
    let input = vec![0.0; shape.iter().product()];
    match gpu.run(&shape, input) {
        Err(GpuError::TooLarge { bytes, limit, .. }) => {
            assert_eq!((bytes, limit), (153_600_000, 128 << 20))
        }
        other => panic!("expected a too-large error, got {:?}", other.map(|_| ())),
    }
}
