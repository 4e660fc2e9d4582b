// A strided copy over an iteration shape of up to 6 axes (outermost first): each output element
// reads `x[sbase + Σ c_k·sstr_k]` and goes to `y[dbase + Σ c_k·dstr_k]`. Axis moves (tract's
// DepthToSpace and SpaceToDepth), the parts of a concatenation, slices and strided slices are all
// this; with `before`/`sdims` and a mode it also pads (constant, reflect, edge).

struct Params {
    dims: array<vec4<u32>, 2>,
    sstr: array<vec4<u32>, 2>,
    dstr: array<vec4<u32>, 2>,
    before: array<vec4<u32>, 2>,
    sdims: array<vec4<u32>, 2>,
    sbase: u32, dbase: u32, n: u32, start: u32,
    mode: u32, value: f32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn at(v: array<vec4<u32>, 2>, k: u32) -> u32 {
    return v[k / 4u][k % 4u];
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = p.start + gid.x;
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var s = i32(p.sbase);
    var d = p.dbase;
    var outside = false;
    for (var k = 5; k >= 0; k--) {
        let n = at(p.dims, u32(k));
        let c = rem % n;
        rem = rem / n;
        var sc = i32(c) - i32(at(p.before, u32(k)));
        let sd = i32(at(p.sdims, u32(k)));
        if (sc < 0 || sc >= sd) {
            if (p.mode == 1u) {
                outside = true;
            } else if (p.mode == 2u) {
                sc = select(2 * (sd - 1) - sc, -sc, sc < 0);
            } else {
                sc = clamp(sc, 0, sd - 1);
            }
        }
        s += sc * i32(at(p.sstr, u32(k)));
        d += c * at(p.dstr, u32(k));
    }
    let v = x[select(u32(s), 0u, outside)];
    y[d] = select(v, p.value, outside);
}
