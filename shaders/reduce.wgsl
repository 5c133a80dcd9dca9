// Deterministic reductions. WGSL has no float atomics, and we want the same
// seed to give bit-identical runs, so every sum has a fixed order: one
// invocation per output walking its inputs in sequence, or a fixed-shape tree
// inside one workgroup.
// Legend: R rows, K columns (a [R,K] matrix, e.g. N = B*T rows of C channels).

struct Params {
    n: u32,        // rows for column_sums; elements for sum_blocks / fill_zero
    cols: u32,     // columns for column_sums; elements per workgroup for sum_blocks
    square: u32,   // sum_blocks: 1 sums x², 0 sums x; column_sums: rows per block
    out_index: u32,// sum_blocks: workgroup w writes out[out_index + w]; column_sums: 1 = accumulate
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

// Column sums of inp [R,K] by blocks of `square` rows: block b (workgroup row
// wid.y) writes or adds Σ_{r in block b} inp[r, k] to out[b, k]. The bias
// gradient is two passes: blocks of 64 rows into a scratch [R/64, K], then one
// block over those partials added into dbias — parallel over rows, yet in a
// fixed order.
@compute @workgroup_size(64)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let col = gid.x;
    if (col >= p.cols) {
        return;
    }
    let start = wid.y * p.square;
    let end = min(p.n, start + p.square);
    var s = 0.0;
    for (var r = start; r < end; r++) {
        s += inp[r * p.cols + col];
    }
    let o = wid.y * p.cols + col;
    if (p.out_index == 1u) {
        out[o] += s;
    } else {
        out[o] = s;
    }
}

// Invocations of a summing workgroup. Each halving of the tree is a barrier,
// and software adapters pay dearly per barrier per invocation, so 64.
const WG: u32 = 64u;

var<workgroup> partial: array<f32, WG>;

// Σ of `s` over the WG invocations, by a fixed-shape tree (same order every run).
fn workgroup_total(s: f32, li: u32) -> f32 {
    partial[li] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    return partial[0];
}

// out[out_index + w] = Σ over inp[w*cols .. (w+1)*cols) of x or x², for workgroup w.
// One workgroup over everything gives a loss sum; many workgroups then one
// more pass over their partials give the global gradient norm.
@compute @workgroup_size(WG)
fn sum_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let start = wid.x * p.cols;
    let end = min(p.n, start + p.cols);
    var s = 0.0;
    for (var i = start + li; i < end; i += WG) {
        let x = inp[i];
        s += select(x, x * x, p.square == 1u);
    }
    let total = workgroup_total(s, li);
    if (li == 0u) {
        out[p.out_index + wid.x] = total;
    }
}

@group(0) @binding(3) var<storage, read> inp2: array<f32>;

// out[out_index + w] = Σ (inp − inp2)² over workgroup w's block: the squared
// L2 distance between two runs' weights, first pass (the second is sum_blocks).
@compute @workgroup_size(WG)
fn squared_distance_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let start = wid.x * p.cols;
    let end = min(p.n, start + p.cols);
    var s = 0.0;
    for (var i = start + li; i < end; i += WG) {
        let d = inp[i] - inp2[i];
        s += d * d;
    }
    let total = workgroup_total(s, li);
    if (li == 0u) {
        out[p.out_index + wid.x] = total;
    }
}

// out [n] = 0: activation gradients are accumulated into, so each backward
// starts them from zero without leaving the compute pass.
@compute @workgroup_size(64)
fn fill_zero(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + li;
    if (i < p.n) {
        out[i] = 0.0;
    }
}
