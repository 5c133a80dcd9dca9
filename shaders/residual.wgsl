// Residual add, forward only: its backward is "both inputs receive dout",
// which the model gets for free by letting each branch's backward accumulate
// straight into the residual stream's gradient.
// Legend: N = B*T rows of C channels, flattened to n elements.

struct ResidualParams {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ResidualParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;   // [n]
@group(0) @binding(2) var<storage, read> inp1: array<f32>;        // [n]
@group(0) @binding(3) var<storage, read> inp2: array<f32>;        // [n]

// out [n] = inp1 [n] + inp2 [n]
@compute @workgroup_size(64)
fn residual_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + li;
    if (i < p.n) {
        out[i] = inp1[i] + inp2[i];
    }
}
