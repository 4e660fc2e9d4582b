// Direct 2-D convolution, CHW f32, register-blocked: each invocation computes PX consecutive
// output pixels of one row for 8 output channels (two vec4 accumulators per pixel), so that one
// input value read feeds 8 multiply-adds and one weight read (a vec4 of 4 channels) feeds PX.
// The input row segment under the kernel is read once per (channel, kernel row) into `win`.
// Bias and activation (PReLU per channel, LeakyReLU, sigmoid, SiLU, tanh) run in the epilogue.
// Kernel size and stride are pipeline constants, so that the loops over them unroll.

override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
const PX: u32 = 4u;

struct Params {
    ci: u32, hi: u32, wi: u32, co: u32,
    ho: u32, wo: u32, ph: u32, pw: u32,
    y0: u32, act: u32, alpha: f32, cob: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// [cob][ci][KH][KW] × 2 vec4: the weights of 8 output channels at one tap.
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
// Bias [cob × 2 vec4], then PReLU slopes [cob × 2 vec4].
@group(0) @binding(3) var<storage, read> e: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// The activations, by code (lower.rs's `Act::code`): 0 none, 1 PReLU, 2 LeakyReLU, 3 sigmoid,
// 4 SiLU, 5 tanh.
fn activate(v: vec4<f32>, slope: vec4<f32>) -> vec4<f32> {
    switch p.act {
        case 1u: { return select(v, v * slope, v < vec4<f32>(0.0)); }
        case 2u: { return select(v, v * p.alpha, v < vec4<f32>(0.0)); }
        case 3u: { return 1.0 / (1.0 + exp(-v)); }
        case 4u: { return v / (1.0 + exp(-v)); }
        case 5u: { return tanh(v); }
        default: { return v; }
    }
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ox0 = gid.x * PX;
    let oy = p.y0 + gid.y;
    let cb = gid.z;
    if (ox0 >= p.wo || oy >= p.ho) {
        return;
    }
    var lo: array<vec4<f32>, PX>;
    var hi: array<vec4<f32>, PX>;
    let b0 = e[cb * 2u];
    let b1 = e[cb * 2u + 1u];
    for (var i = 0u; i < PX; i++) {
        lo[i] = b0;
        hi[i] = b1;
    }
    let ix0 = i32(ox0 * SW) - i32(p.pw);
    let iy0 = i32(oy * SH) - i32(p.ph);
    let span = (PX - 1u) * SW + KW;
    let last = i32(p.wi) - 1;
    var win: array<f32, 16>;
    var wb = cb * p.ci * KH * KW * 2u;
    for (var c = 0u; c < p.ci; c++) {
        let plane = c * p.hi * p.wi;
        for (var ky = 0u; ky < KH; ky++) {
            let iy = iy0 + i32(ky);
            if (iy >= 0 && iy < i32(p.hi)) {
                let row = plane + u32(iy) * p.wi;
                for (var k = 0u; k < span; k++) {
                    let ix = ix0 + i32(k);
                    let v = x[row + u32(clamp(ix, 0, last))];
                    win[k] = select(0.0, v, ix >= 0 && ix <= last);
                }
                for (var kx = 0u; kx < KW; kx++) {
                    let wi = wb + (ky * KW + kx) * 2u;
                    let w0 = w[wi];
                    let w1 = w[wi + 1u];
                    for (var i = 0u; i < PX; i++) {
                        let v = vec4<f32>(win[i * SW + kx]);
                        lo[i] = fma(w0, v, lo[i]);
                        hi[i] = fma(w1, v, hi[i]);
                    }
                }
            }
        }
        wb += KH * KW * 2u;
    }
    let s0 = e[(p.cob + cb) * 2u];
    let s1 = e[(p.cob + cb) * 2u + 1u];
    let plane_out = p.ho * p.wo;
    for (var i = 0u; i < PX; i++) {
        let ox = ox0 + i;
        if (ox < p.wo) {
            let a = activate(lo[i], s0);
            let b = activate(hi[i], s1);
            let base = oy * p.wo + ox;
            for (var j = 0u; j < 4u; j++) {
                let o0 = cb * 8u + j;
                if (o0 < p.co) {
                    y[o0 * plane_out + base] = a[j];
                }
                let o1 = o0 + 4u;
                if (o1 < p.co) {
                    y[o1 * plane_out + base] = b[j];
                }
            }
        }
    }
}
