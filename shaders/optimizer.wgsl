// Parameter updates over the whole flat parameter buffer in one dispatch.
// Legend: P floats in the flat buffer (parameters, their gradients, and the
// optimizer's two moments all share one layout; alignment gaps stay zero).
// moment1 and moment2 are Adam's first and second moments (m and v); for
// momentum SGD moment1 is the velocity and moment2 is unused.
//
// Per-step numbers (learning rate from the schedule, Adam's bias corrections)
// come from the step's scalars buffer, and the clipping factor from the
// gradient norm the GPU just computed, so a step never waits for the CPU.
// Weight decay applies to the prefix [0, decay_end): the layout puts every
// matrix before every bias and LayerNorm gain.

struct UpdateParams {
    n: u32,
    decay_end: u32,
    scalars_index: u32,   // scalars[i] = lr, [i+1] = 1 - beta1^t, [i+2] = 1 - beta2^t
    norm_index: u32,      // stats[norm_index] = Σ g² over the flat gradient
    beta1: f32,           // Adam beta1, or SGD momentum
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    max_grad_norm: f32,   // 0 = no clipping
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: UpdateParams;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;  // [P]
@group(0) @binding(2) var<storage, read> grads: array<f32>;         // [P]
@group(0) @binding(3) var<storage, read_write> moment1: array<f32>; // [P] Adam m, or SGD velocity
@group(0) @binding(4) var<storage, read_write> moment2: array<f32>; // [P] Adam v (unused by SGD)
@group(0) @binding(5) var<storage, read> scalars: array<f32>;
@group(0) @binding(6) var<storage, read> stats: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// min(1, max_grad_norm / ‖g‖), the factor of global-norm clipping
fn grad_scale() -> f32 {
    let norm = sqrt(stats[p.norm_index]);
    if (p.max_grad_norm > 0.0 && norm > p.max_grad_norm) {
        return p.max_grad_norm / norm;
    }
    return 1.0;
}

// params, moment1 (m), moment2 (v) [P] from grads [P]: AdamW (decoupled weight
// decay); Adam is weight_decay = 0.
@compute @workgroup_size(64)
fn adamw_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) {
        return;
    }
    let lr = scalars[p.scalars_index];
    let bc1 = scalars[p.scalars_index + 1u];
    let bc2 = scalars[p.scalars_index + 2u];
    let g = grads[i] * grad_scale();
    let m = p.beta1 * moment1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * moment2[i] + (1.0 - p.beta2) * g * g;
    moment1[i] = m;
    moment2[i] = v;
    let decay = select(0.0, p.weight_decay, i < p.decay_end);
    let x = params[i];
    params[i] = x - lr * ((m / bc1) / (sqrt(v / bc2) + p.eps) + decay * x);
}

// params, moment1 (velocity) [P] from grads [P]: SGD with heavy-ball momentum
// (beta1) and L2 weight decay; momentum 0 is plain SGD.
@compute @workgroup_size(64)
fn sgd_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) {
        return;
    }
    let lr = scalars[p.scalars_index];
    let x = params[i];
    let g = grads[i] * grad_scale() + select(0.0, p.weight_decay * x, i < p.decay_end);
    let vel = p.beta1 * moment1[i] + g;
    moment1[i] = vel;
    params[i] = x - lr * vel;
}
