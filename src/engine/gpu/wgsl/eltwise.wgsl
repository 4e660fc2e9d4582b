// Element-wise: a binary operation of two tensors of one shape, or of a tensor and a constant
// broadcast along one axis (`b[(i / inner) % count]`; a scalar is count 1), or an activation
// (PReLU, LeakyReLU, sigmoid, SiLU, tanh).

struct Params {
    n: u32, start: u32, op: u32, mode: u32,
    inner: u32, count: u32, const_first: u32, alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = p.start + gid.x;
    if (i >= p.n) {
        return;
    }
    var u = a[i];
    var v: f32;
    if (p.mode == 0u) {
        v = b[i];
    } else {
        v = b[(i / p.inner) % p.count];
    }
    if (p.const_first == 1u) {
        let t = u;
        u = v;
        v = t;
    }
    var r: f32;
    switch p.op {
        case 0u: { r = u + v; }
        case 1u: { r = u * v; }
        case 2u: { r = u - v; }
        case 3u: { r = u / v; }
        case 4u: { r = max(u, v); }
        case 5u: { r = min(u, v); }
        // Activations, 16 + conv.wgsl's code; PReLU's slopes are `b`.
        case 17u: { r = select(u, u * v, u < 0.0); }
        case 18u: { r = select(u, u * p.alpha, u < 0.0); }
        case 19u: { r = 1.0 / (1.0 + exp(-u)); }
        case 20u: { r = u / (1.0 + exp(-u)); }
        case 21u: { r = tanh(u); }
        default: { r = u; }
    }
    y[i] = r;
}
