// GELU (tanh form, as GPT-2), backward, elementwise. The forward is the
// epilogue of the matmul that feeds it (matmul.wgsl).
// Legend: N = b*T rows of 4C channels, flattened to n elements.

struct GeluParams {
    n: u32,
    // backward: 1 adds into dinp, 0 overwrites it (its first writer)
    accumulate: u32,
    _pad1: u32,
    _pad2: u32,
}

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

@group(0) @binding(0) var<uniform> p: GeluParams;
@group(0) @binding(2) var<storage, read> inp: array<f32>;          // [n]
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;   // [n]
@group(0) @binding(4) var<storage, read> dout: array<f32>;         // [n]

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// tanh built from exp: large |u| must saturate to ±1, not overflow to NaN
fn tanh_stable(u: f32) -> f32 {
    let e = exp(-2.0 * abs(u));
    return sign(u) * (1.0 - e) / (1.0 + e);
}

// dinp [n] (+)= gelu'(inp) * dout
@compute @workgroup_size(64)
fn gelu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) {
        return;
    }
    let x = inp[i];
    let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    let th = tanh_stable(u);
    let sech2 = 1.0 - th * th;
    let local = 0.5 * (1.0 + th) + 0.5 * x * sech2 * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
    if (p.accumulate == 1u) {
        dinp[i] += local * dout[i];
    } else {
        dinp[i] = local * dout[i];
    }
}
