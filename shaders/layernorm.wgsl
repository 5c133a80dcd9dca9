// LayerNorm over the channels of each position, forward and backward.
// Legend: N = b*T rows, C channels. eps 1e-5, biased variance (as GPT-2).
//
// One invocation per row (or per channel for the parameter gradient): rows are
// short (C <= a few hundred here) and this keeps every sum in a fixed order.
// Not here: the bias gradient, which is a plain column sum (reduce.wgsl).

struct LayernormParams {
    n: u32,
    c: u32,
    // backward: 1 adds into dinp, 0 overwrites it (its first writer)
    accumulate: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: LayernormParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;    // [N,C]
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;   // [N]
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;   // [N]
@group(0) @binding(4) var<storage, read> inp: array<f32>;          // [N,C]
@group(0) @binding(5) var<storage, read> weight: array<f32>;       // [C]
@group(0) @binding(6) var<storage, read> bias: array<f32>;         // [C]

fn row_index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// out [N,C], mean [N], rstd [N] from inp [N,C], weight [C], bias [C]
@compute @workgroup_size(64)
fn layernorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
    let r = row_index(wid, nwg, li);
    if (r >= p.n) {
        return;
    }
    let base = r * p.c;
    var s = 0.0;
    for (var i = 0u; i < p.c; i++) {
        s += inp[base + i];
    }
    let m = s / f32(p.c);
    var v = 0.0;
    for (var i = 0u; i < p.c; i++) {
        let d = inp[base + i] - m;
        v += d * d;
    }
    let rs = 1.0 / sqrt(v / f32(p.c) + 1e-5);
    for (var i = 0u; i < p.c; i++) {
        out[base + i] = (inp[base + i] - m) * rs * weight[i] + bias[i];
    }
    mean[r] = m;
    rstd[r] = rs;
}

@group(0) @binding(7) var<storage, read_write> dinp: array<f32>;   // [N,C]
@group(0) @binding(8) var<storage, read> dout: array<f32>;         // [N,C]
@group(0) @binding(9) var<storage, read> mean_in: array<f32>;      // [N]
@group(0) @binding(10) var<storage, read> rstd_in: array<f32>;     // [N]

// dinp [N,C] (+)= ... from dout [N,C], inp [N,C], weight [C], mean [N], rstd [N]
@compute @workgroup_size(64)
fn layernorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) li: u32) {
    let r = row_index(wid, nwg, li);
    if (r >= p.n) {
        return;
    }
    let base = r * p.c;
    let m = mean_in[r];
    let rs = rstd_in[r];
    // the two row means the LayerNorm Jacobian needs: of dnorm and of dnorm * norm
    var dnorm_mean = 0.0;
    var dnorm_norm_mean = 0.0;
    for (var i = 0u; i < p.c; i++) {
        let norm = (inp[base + i] - m) * rs;
        let dnorm = weight[i] * dout[base + i];
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= f32(p.c);
    dnorm_norm_mean /= f32(p.c);
    for (var i = 0u; i < p.c; i++) {
        let norm = (inp[base + i] - m) * rs;
        let dnorm = weight[i] * dout[base + i];
        let d = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rs;
        if (p.accumulate == 1u) {
            dinp[base + i] += d;
        } else {
            dinp[base + i] = d;
        }
    }
}

@group(0) @binding(11) var<storage, read_write> partials: array<f32>; // [ceil(N/64), C]

// partials [ceil(N/64), C] from dout [N,C], inp [N,C], mean [N], rstd [N]:
// first pass of dweight [C] += Σ_r dout[r,c] * norm[r,c]. Block b of 64 rows
// (workgroup row wid.y) writes its sum to partials[b, c]; reduce.wgsl's
// column_sums adds the blocks into dweight in a fixed order.
@compute @workgroup_size(64)
fn layernorm_backward_dweight_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) {
        return;
    }
    let start = wid.y * 64u;
    let end = min(p.n, start + 64u);
    var s = 0.0;
    for (var r = start; r < end; r++) {
        let idx = r * p.c + ch;
        s += dout[idx] * (inp[idx] - mean_in[r]) * rstd_in[r];
    }
    partials[wid.y * p.c + ch] = s;
}
