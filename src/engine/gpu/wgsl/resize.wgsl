// Resampling of the last two axes from per-axis tables (tract's own plans: `window` input indices
// and weights per output row and column): out = Σ_kx wx · (Σ_ky wy · x[iy, ix]).

struct Params {
    n: u32, start: u32, hi: u32, wi: u32,
    ho: u32, wo: u32, wy: u32, wx: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Rows: per output row `wy` indices then `wy` weights (bit patterns); then columns likewise.
@group(0) @binding(2) var<storage, read> t: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = p.start + gid.x;
    if (i >= p.n) {
        return;
    }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let plane = (i / (p.wo * p.ho)) * p.hi * p.wi;
    let ry = oy * 2u * p.wy;
    let rx = p.ho * 2u * p.wy + ox * 2u * p.wx;
    var acc = 0.0;
    for (var kx = 0u; kx < p.wx; kx++) {
        let ix = t[rx + kx];
        let fx = bitcast<f32>(t[rx + p.wx + kx]);
        var col = 0.0;
        for (var ky = 0u; ky < p.wy; ky++) {
            let iy = t[ry + ky];
            col += bitcast<f32>(t[ry + p.wy + ky]) * x[plane + iy * p.wi + ix];
        }
        acc += fx * col;
    }
    y[i] = acc;
}
