// Fused softmax + cross-entropy + dlogits: one pass over each row of logits.
// Legend: N = b*T rows (positions), V vocabulary.
//
// dlogits_scale is the single number that decides how a token's loss is
// weighted in the gradient. Gradient accumulation strategies differ only in
// it, so it is read per call from the step's scalars buffer rather than baked
// into the kernel.
// Not here: the mean over tokens (the caller sums `losses` and divides by the
// count it knows), and any averaging over micro-batches.

struct CrossEntropyParams {
    n: u32,
    v: u32,
    scale_index: u32,   // scalars[scale_index] is dlogits_scale
    _pad0: u32,
}

const IGNORE_INDEX: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: CrossEntropyParams;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;   // [N]
@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;  // [N,V]
@group(0) @binding(3) var<storage, read> logits: array<f32>;         // [N,V]
@group(0) @binding(4) var<storage, read> targets: array<u32>;        // [N], IGNORE_INDEX = padding
@group(0) @binding(5) var<storage, read> scalars: array<f32>;

// 64 invocations per row: a vocabulary of a few hundred is four or so logits
// each, and every halving of the tree is a barrier.
const WG: u32 = 64u;

var<workgroup> red: array<f32, WG>;
var<workgroup> ties: array<f32, WG>;

fn tree_max(li: u32) {
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            red[li] = max(red[li], red[li + stride]);
        }
        workgroupBarrier();
    }
}

// Sums `red` and `ties` side by side.
fn tree_sum2(li: u32) {
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            red[li] += red[li + stride];
            ties[li] += ties[li + stride];
        }
        workgroupBarrier();
    }
}

// ln(1 + x) for x >= 0 without rounding 1 + x first: a confident prediction has
// a loss far below 1e-3 and ln of a number near 1 would keep only its absolute
// error (WGSL promises 2^-21 there). Below 0.5 use 2 atanh(z), z = x / (2 + x),
// as its odd series in z (z <= 0.2, eight terms reach f32 precision).
fn log1p(x: f32) -> f32 {
    if (x >= 0.5) {
        return log(1.0 + x);
    }
    let z = x / (2.0 + x);
    let z2 = z * z;
    var series = 1.0 / 15.0;
    for (var k = 13.0; k > 0.0; k -= 2.0) {
        series = 1.0 / k + z2 * series;
    }
    return 2.0 * z * series;
}

// losses [N], dlogits [N,V] from logits [N,V], targets [N], scalars; one workgroup per row.
@compute @workgroup_size(WG)
fn crossentropy_forward_backward(@builtin(workgroup_id) wid: vec3<u32>,
                                 @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_index) li: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.n) {
        return;
    }
    let base = row * p.v;
    var m = -3.402823e38;
    for (var j = li; j < p.v; j += WG) {
        m = max(m, logits[base + j]);
    }
    red[li] = m;
    workgroupBarrier();
    tree_max(li);
    let row_max = red[0];
    workgroupBarrier();
    // denom = sum_j exp(x_j - max) = 1 + rest, where `rest` leaves out one
    // maximal logit; kept apart so the loss of a confident row stays precise.
    var below = 0.0;
    var at_max = 0.0;
    for (var j = li; j < p.v; j += WG) {
        let x = logits[base + j];
        if (x == row_max) {
            at_max += 1.0;
        } else {
            below += exp(x - row_max);
        }
    }
    red[li] = below;
    ties[li] = at_max;
    workgroupBarrier();
    tree_sum2(li);
    let rest = red[0] + (ties[0] - 1.0);
    let tgt = targets[row];
    // a target outside the vocabulary is refused on the CPU; treat it as padding here
    // rather than read out of bounds
    let ignored = tgt >= p.v;
    let scale = scalars[p.scale_index];
    if (li == 0u) {
        if (ignored) {
            losses[row] = 0.0;
        } else {
            losses[row] = log1p(rest) + (row_max - logits[base + tgt]);
        }
    }
    for (var j = li; j < p.v; j += WG) {
        dlogits[base + j] = dlogit(base, j, tgt, row_max, rest, scale);
    }
}

// The same for a software adapter, where a barrier suspends every invocation
// of the workgroup: one invocation per row, its three passes over V serial,
// no barrier. Sums in the order of j (the workgroup kernel's order differs
// within round-off).
// losses [N], dlogits [N,V] from logits [N,V], targets [N], scalars; one invocation per row.
@compute @workgroup_size(WG)
fn crossentropy_forward_backward_serial(@builtin(global_invocation_id) gid: vec3<u32>,
                                        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.y * nwg.x * WG + gid.x;
    if (row >= p.n) {
        return;
    }
    let base = row * p.v;
    var row_max = -3.402823e38;
    for (var j = 0u; j < p.v; j++) {
        row_max = max(row_max, logits[base + j]);
    }
    // as above: one maximal logit left out of `rest`
    var below = 0.0;
    var at_max = 0.0;
    for (var j = 0u; j < p.v; j++) {
        let x = logits[base + j];
        if (x == row_max) {
            at_max += 1.0;
        } else {
            below += exp(x - row_max);
        }
    }
    let rest = below + (at_max - 1.0);
    let tgt = targets[row];
    if (tgt >= p.v) {
        losses[row] = 0.0;
    } else {
        losses[row] = log1p(rest) + (row_max - logits[base + tgt]);
    }
    let scale = scalars[p.scale_index];
    for (var j = 0u; j < p.v; j++) {
        dlogits[base + j] = dlogit(base, j, tgt, row_max, rest, scale);
    }
}

// dlogits[j] of a row: (softmax_j − [j = target]) · scale, with
// denominator 1 + rest; zero for a padding row (target outside V).
fn dlogit(base: u32, j: u32, tgt: u32, row_max: f32, rest: f32, scale: f32) -> f32 {
    if (tgt >= p.v) {
        return 0.0;
    }
    let denom = 1.0 + rest;
    let x = logits[base + j];
    if (j != tgt) {
        return exp(x - row_max) / denom * scale;
    }
    if (x == row_max) {
        // p - 1 = 1 / (1 + rest) - 1, without the cancellation
        return -rest / denom * scale;
    }
    return (exp(x - row_max) / denom - 1.0) * scale;
}
