// Deterministic reductions. WGSL has no float atomics, and we want the same
// seed to give bit-identical runs, so every sum has a fixed order: one
// invocation per output walking its inputs in sequence, or a fixed-shape tree
// inside one workgroup.
// Legend: R rows, K columns (a [R,K] matrix, e.g. N = b*T rows of C channels);
// n elements of a flat buffer.
//
// Each entry point has its own params struct, all at binding 0: WGSL allows
// several variables at one binding as long as no entry point uses two of them.

struct ColumnSumsParams {
    rows: u32,
    cols: u32,
    block_rows: u32,   // rows each output row sums
    accumulate: u32,   // 1 adds into out, 0 overwrites it
}

struct SumBlocksParams {
    n: u32,
    block_len: u32,    // elements per workgroup
    square: u32,       // 1 sums x², 0 sums x
    out_index: u32,    // workgroup w writes out[out_index + w]
}

struct SquaredDistanceBlocksParams {
    n: u32,
    block_len: u32,    // elements per workgroup
    out_index: u32,    // workgroup w writes out[out_index + w]
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> column_p: ColumnSumsParams;
@group(0) @binding(0) var<uniform> sum_p: SumBlocksParams;
@group(0) @binding(0) var<uniform> distance_p: SquaredDistanceBlocksParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;

// out [ceil(R/block_rows), K] from inp [R,K]: block b of block_rows rows
// (workgroup row wid.y) writes, or adds when accumulate, Σ_{r in block b}
// inp[r, k] to out[b, k]. The bias gradient is two passes: blocks of 64 rows
// into a scratch [R/64, K], then one block over those partials added into
// dbias — parallel over rows, yet in a fixed order.
@compute @workgroup_size(64)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let col = gid.x;
    if (col >= column_p.cols) {
        return;
    }
    let start = wid.y * column_p.block_rows;
    let end = min(column_p.rows, start + column_p.block_rows);
    var s = 0.0;
    for (var r = start; r < end; r++) {
        s += inp[r * column_p.cols + col];
    }
    let o = wid.y * column_p.cols + col;
    if (column_p.accumulate == 1u) {
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

// out[out_index + w] = Σ over inp[w*block_len .. (w+1)*block_len) of x or x²,
// for workgroup w; inp [n].
// One workgroup over everything gives a loss sum; many workgroups then one
// more pass over their partials give the global gradient norm.
@compute @workgroup_size(WG)
fn sum_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let start = wid.x * sum_p.block_len;
    let end = min(sum_p.n, start + sum_p.block_len);
    var s = 0.0;
    for (var i = start + li; i < end; i += WG) {
        let x = inp[i];
        s += select(x, x * x, sum_p.square == 1u);
    }
    let total = workgroup_total(s, li);
    if (li == 0u) {
        out[sum_p.out_index + wid.x] = total;
    }
}

@group(0) @binding(3) var<storage, read> inp2: array<f32>;

// out[out_index + w] = Σ (inp − inp2)² over workgroup w's block of inp, inp2
// [n]: the squared L2 distance between two runs' weights, first pass (the
// second is sum_blocks).
@compute @workgroup_size(WG)
fn squared_distance_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let start = wid.x * distance_p.block_len;
    let end = min(distance_p.n, start + distance_p.block_len);
    var s = 0.0;
    for (var i = start + li; i < end; i += WG) {
        let d = inp[i] - inp2[i];
        s += d * d;
    }
    let total = workgroup_total(s, li);
    if (li == 0u) {
        out[distance_p.out_index + wid.x] = total;
    }
}
