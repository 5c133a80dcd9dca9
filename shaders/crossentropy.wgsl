// Fused softmax + cross-entropy + dlogits: one pass over each row of logits.
// Legend: N = B*T rows (positions), V vocabulary.
//
// dlogits_scale is the single number that decides how a token's loss is
// weighted in the gradient. Gradient accumulation strategies differ only in
// it, so it is read per call from the step's scalars buffer rather than baked
// into the kernel.
// Not here: the mean over tokens (the caller sums `losses` and divides by the
// count it knows), and any averaging over micro-batches.

struct Params {
    n: u32,
    v: u32,
    scale_index: u32,   // scalars[scale_index] is dlogits_scale
    _pad: u32,
}

const IGNORE_INDEX: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;   // [N]
@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;  // [N,V]
@group(0) @binding(3) var<storage, read> logits: array<f32>;         // [N,V]
@group(0) @binding(4) var<storage, read> targets: array<u32>;        // [N], IGNORE_INDEX = padding
@group(0) @binding(5) var<storage, read> scalars: array<f32>;

var<workgroup> red: array<f32, 256>;

fn tree_max(li: u32) {
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            red[li] = max(red[li], red[li + stride]);
        }
        workgroupBarrier();
    }
}

fn tree_sum(li: u32) {
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            red[li] += red[li + stride];
        }
        workgroupBarrier();
    }
}

// One workgroup per row.
@compute @workgroup_size(256)
fn crossentropy_forward_backward(@builtin(workgroup_id) wid: vec3<u32>,
                                 @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_index) li: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.n) {
        return;
    }
    let base = row * p.v;
    var m = -3.402823e38;
    for (var j = li; j < p.v; j += 256u) {
        m = max(m, logits[base + j]);
    }
    red[li] = m;
    workgroupBarrier();
    tree_max(li);
    let row_max = red[0];
    workgroupBarrier();
    var s = 0.0;
    for (var j = li; j < p.v; j += 256u) {
        s += exp(logits[base + j] - row_max);
    }
    red[li] = s;
    workgroupBarrier();
    tree_sum(li);
    let denom = red[0];
    let tgt = targets[row];
    // a target outside the vocabulary is refused on the CPU; treat it as padding here
    // rather than read out of bounds
    let ignored = tgt >= p.v;
    let scale = scalars[p.scale_index];
    if (li == 0u) {
        if (ignored) {
            losses[row] = 0.0;
        } else {
            losses[row] = log(denom) + row_max - logits[base + tgt];
        }
    }
    for (var j = li; j < p.v; j += 256u) {
        var g = 0.0;
        if (!ignored) {
            let prob = exp(logits[base + j] - row_max) / denom;
            g = (prob - select(0.0, 1.0, j == tgt)) * scale;
        }
        dlogits[base + j] = g;
    }
}
