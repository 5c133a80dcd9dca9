// Token + position embedding, forward and backward.
// Legend: b sequences per micro-batch, T time, C channels, V vocabulary.
//
// The token-embedding gradient is a scatter (many positions share a token).
// Without float atomics we gather instead: the CPU, which knows the token ids,
// hands over for each token v the positions where it occurs
// (positions[offsets[v] .. offsets[v+1]], in increasing order), so each
// (v, c) sums its own list in a fixed order and the result is deterministic.

struct EncoderParams {
    b: u32,
    t: u32,
    c: u32,
    v: u32,
}

@group(0) @binding(0) var<uniform> p: EncoderParams;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// out [b,T,C] = wte[inp[b,t]] + wpe[t];  inp [b,T], wte [V,C], wpe [T_max,C]
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<u32>;
@group(0) @binding(3) var<storage, read> wte: array<f32>;
@group(0) @binding(4) var<storage, read> wpe: array<f32>;

@compute @workgroup_size(64)
fn encoder_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.b * p.t * p.c) {
        return;
    }
    let bt = i / p.c;
    let ch = i % p.c;
    let pos = bt % p.t;
    out[i] = wte[inp[bt] * p.c + ch] + wpe[pos * p.c + ch];
}

// dwpe [T,C] += Σ_b dout [b,T,C]
@group(0) @binding(5) var<storage, read_write> dwpe: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;

@compute @workgroup_size(64)
fn encoder_backward_wpe(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.t * p.c) {
        return;
    }
    var s = 0.0;
    for (var bi = 0u; bi < p.b; bi++) {
        s += dout[bi * p.t * p.c + i];
    }
    dwpe[i] += s;
}

// dwte [V,C] += Σ over positions holding token v of dout [b,T,C];
// offsets [V+1], positions [b*T] (grouped by token); dout is binding 6 above
@group(0) @binding(7) var<storage, read_write> dwte: array<f32>;
@group(0) @binding(8) var<storage, read> offsets: array<u32>;
@group(0) @binding(9) var<storage, read> positions: array<u32>;

@compute @workgroup_size(64)
fn encoder_backward_wte(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.v * p.c) {
        return;
    }
    let tok = i / p.c;
    let ch = i % p.c;
    let start = offsets[tok];
    let end = offsets[tok + 1u];
    if (start == end) {
        return;
    }
    var s = 0.0;
    for (var j = start; j < end; j++) {
        s += dout[positions[j] * p.c + ch];
    }
    dwte[i] += s;
}
