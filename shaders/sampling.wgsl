// Picking the next token of a generated text, on the GPU. The forward pass
// and this pick alternate inside one submission, so a whole sample costs one
// readback at the end instead of one round trip per token.
// Legend: T positions in the model's window, V vocabulary, K tokens to generate.
//
// One invocation does the whole pick: it reads one row of V logits, which is
// nothing next to the forward pass that wrote them, and a sequential scan keeps
// the choice identical to the CPU twin's.

struct SamplingParams {
    t: u32,
    v: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: SamplingParams;
@group(0) @binding(1) var<storage, read_write> state: array<u32>;   // [2]: tokens in the window (1..=T), tokens picked so far
@group(0) @binding(2) var<storage, read_write> window: array<u32>;  // [T] the model's input sequence
@group(0) @binding(3) var<storage, read_write> picked: array<u32>;  // [K]
@group(0) @binding(4) var<storage, read> logits: array<f32>;        // [T,V], row state[0]-1 is read
@group(0) @binding(5) var<storage, read> draws: array<f32>;         // [1+K]: 1/temperature (0 = greedy), then a uniform in [0,1) per token

// state [2], window [T], picked [K] from logits [T,V], draws [1+K]: the pick
// appends to the window (sliding it left by one once it holds T tokens) and to `picked`.
@compute @workgroup_size(1)
fn sample_next_token() {
    let len = state[0];
    let k = state[1];
    let base = (len - 1u) * p.v;
    var best = 0u;
    for (var j = 1u; j < p.v; j++) {
        if (logits[base + j] > logits[base + best]) {
            best = j;
        }
    }
    var pick = best;
    let inv_temperature = draws[0];
    if (inv_temperature > 0.0) {
        let top = logits[base + best];
        var total = 0.0;
        for (var j = 0u; j < p.v; j++) {
            total += exp((logits[base + j] - top) * inv_temperature);
        }
        // inverse CDF; if rounding leaves u above zero at the end, keep the argmax
        var u = draws[1u + k] * total;
        for (var j = 0u; j < p.v; j++) {
            u -= exp((logits[base + j] - top) * inv_temperature);
            if (u <= 0.0) {
                pick = j;
                break;
            }
        }
    }
    picked[k] = pick;
    state[1] = k + 1u;
    if (len < p.t) {
        window[len] = pick;
        state[0] = len + 1u;
    } else {
        for (var i = 0u; i + 1u < p.t; i++) {
            window[i] = window[i + 1u];
        }
        window[p.t - 1u] = pick;
    }
}
