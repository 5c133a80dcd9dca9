// Causal multi-head self-attention, forward and backward, on a real GPU.
// Legend: b sequences per micro-batch, T time, C channels, NH heads, hs = C/NH head size.
// qkv [b,T,3C] holds q, k, v one after another along channels; head h owns
// channels h*hs .. (h+1)*hs of each. att [b,NH,T,T] keeps the softmax
// probabilities for backward (entries above the diagonal are zero).
//
// Every output element is owned by one invocation that walks its sum in a
// fixed order: the backward is written as gathers (dq over keys, dk and dv
// over queries) rather than llm.c's scatter, because WGSL has no float
// atomics and runs must be bit-reproducible.
// Padding needs no mask: sequences are right-padded and attention is causal,
// so padded positions never feed real ones.
//
// Every pass comes twice (kernels.rs picks): here for a real GPU, and in
// attention_serial.wgsl for software adapters, where an invocation walks two
// whole rows. On a real GPU that is only b*NH*T/2 invocations, each walking
// up to T keys alone, so these kernels split the work finer: the forward and
// the dpreatt pass (`_rows`) give each row a workgroup whose 64 invocations
// stride over the keys and meet in a tree for the row's max and sum; dq and
// dkv give each output channel an invocation.
//
// The params struct, the bindings and the row helpers (index, qkv_at, Row)
// are repeated in attention_serial.wgsl, as WGSL has no include;
// gpu/wgsl_mirror.rs checks both files' struct and bindings against the Rust
// side.

struct AttentionParams {
    b: u32,
    t: u32,
    c: u32,
    nh: u32,
    // backward: 1 adds into dqkv, 0 overwrites it (its first writer)
    accumulate: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;      // [b,T,C]
@group(0) @binding(2) var<storage, read_write> att: array<f32>;      // [b,NH,T,T]
@group(0) @binding(3) var<storage, read> qkv: array<f32>;            // [b,T,3C]
@group(0) @binding(4) var<storage, read_write> dpreatt: array<f32>;  // [b,NH,T,T]
@group(0) @binding(5) var<storage, read> dout: array<f32>;           // [b,T,C]
@group(0) @binding(6) var<storage, read> att_in: array<f32>;         // [b,NH,T,T]
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;     // [b,T,3C]
@group(0) @binding(8) var<storage, read> dpreatt_in: array<f32>;     // [b,NH,T,T]

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// Invocations of a `_rows` workgroup, and the tree they reduce through.
const WG: u32 = 64u;
var<workgroup> tree: array<f32, WG>;

// The max (or, with `is_sum`, the Σ in a fixed-shape tree) over the
// workgroup of each invocation's `v`; every invocation gets it.
fn workgroup_reduce(v: f32, li: u32, is_sum: bool) -> f32 {
    tree[li] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            let x = tree[li];
            let y = tree[li + stride];
            tree[li] = select(max(x, y), x + y, is_sum);
        }
        workgroupBarrier();
    }
    let r = tree[0];
    // nobody writes the tree again before everyone has read it
    workgroupBarrier();
    return r;
}

// offset of channel 0 of head h of part (0 q, 1 k, 2 v) at position (b, t) in qkv
fn qkv_at(b: u32, t: u32, part: u32, h: u32) -> u32 {
    let hs = p.c / p.nh;
    return (b * p.t + t) * 3u * p.c + part * p.c + h * hs;
}

// Attention row `idx` of [b,NH,T]: query t of head h of sequence b.
struct Row {
    b: u32,
    h: u32,
    t: u32,
    hs: u32,
    // 1/sqrt(hs), folded into the scores
    scale: f32,
    // offset of the row in att [b,NH,T,T]
    att_base: u32,
    // offset of the row's head in out or dout [b,T,C]
    out_base: u32,
}

fn row_of(idx: u32) -> Row {
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    return Row(b, h, t, hs, 1.0 / sqrt(f32(hs)), idx * p.t, (b * p.t + t) * p.c + h * hs);
}

// q_t · k_t2 / sqrt(hs)
fn score(r: Row, t2: u32) -> f32 {
    let q = qkv_at(r.b, r.t, 0u, r.h);
    let k = qkv_at(r.b, t2, 1u, r.h);
    var s = 0.0;
    for (var i = 0u; i < r.hs; i++) {
        s += qkv[q + i] * qkv[k + i];
    }
    return s * r.scale;
}

// channel i of the row's output: Σ_{t2<=t} att[t,t2] v[t2,i]
fn attended(r: Row, i: u32) -> f32 {
    var acc = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
        acc += att[r.att_base + t2] * qkv[qkv_at(r.b, t2, 2u, r.h) + i];
    }
    return acc;
}

// datt[t,t2] = dout_t · v_t2
fn datt(r: Row, t2: u32) -> f32 {
    let v = qkv_at(r.b, t2, 2u, r.h);
    var d = 0.0;
    for (var i = 0u; i < r.hs; i++) {
        d += dout[r.out_base + i] * qkv[v + i];
    }
    return d;
}

// out [b,T,C], att [b,NH,T,T] from qkv [b,T,3C], as `attention_forward_serial`
// (attention_serial.wgsl);
// one workgroup per (b, h, t): its invocations take keys t2 = li, li + 64, ...
@compute @workgroup_size(64)
fn attention_forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) li: u32) {
    // the row is the workgroup's, so every invocation returns or none does
    let idx = wid.y * nwg.x + wid.x;
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    var mx = -3.402823e38;
    for (var t2 = li; t2 <= r.t; t2 += WG) {
        let s = score(r, t2);
        att[r.att_base + t2] = s;
        mx = max(mx, s);
    }
    mx = workgroup_reduce(mx, li, false);
    var sum = 0.0;
    for (var t2 = li; t2 <= r.t; t2 += WG) {
        let e = exp(att[r.att_base + t2] - mx);
        att[r.att_base + t2] = e;
        sum += e;
    }
    let inv = 1.0 / workgroup_reduce(sum, li, true);
    for (var t2 = li; t2 < p.t; t2 += WG) {
        att[r.att_base + t2] = select(0.0, att[r.att_base + t2] * inv, t2 <= r.t);
    }
    // each channel below reads the whole row, written by every invocation
    storageBarrier();
    for (var i = li; i < r.hs; i += WG) {
        out[r.out_base + i] = attended(r, i);
    }
}

// dpreatt [b,NH,T,T] from dout [b,T,C], qkv [b,T,3C], att [b,NH,T,T], as
// `attention_backward_dpreatt_serial` (attention_serial.wgsl); one workgroup
// per (b, h, t), striding over keys
@compute @workgroup_size(64)
fn attention_backward_dpreatt_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) li: u32) {
    let idx = wid.y * nwg.x + wid.x;
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let r = row_of(idx);
    var dot_att_datt = 0.0;
    for (var t2 = li; t2 <= r.t; t2 += WG) {
        let d = datt(r, t2);
        dpreatt[r.att_base + t2] = d;
        dot_att_datt += att_in[r.att_base + t2] * d;
    }
    dot_att_datt = workgroup_reduce(dot_att_datt, li, true);
    for (var t2 = li; t2 < p.t; t2 += WG) {
        dpreatt[r.att_base + t2] = select(0.0, att_in[r.att_base + t2] * (dpreatt[r.att_base + t2] - dot_att_datt) * r.scale, t2 <= r.t);
    }
}

// dqkv [b,T,3C] (its q part) (+)= from dpreatt [b,NH,T,T], qkv [b,T,3C];
// one invocation per (b, h, t, i) (a real GPU's): dq[b,t,h,i] += Σ_{t2<=t} dpreatt[t,t2] k[t2,i]
@compute @workgroup_size(64)
fn attention_backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    let hs = p.c / p.nh;
    if (idx >= p.b * p.nh * p.t * hs) {
        return;
    }
    let i = idx % hs;
    let t = (idx / hs) % p.t;
    let h = (idx / (hs * p.t)) % p.nh;
    let b = idx / (hs * p.t * p.nh);
    let row = ((b * p.nh + h) * p.t + t) * p.t;
    let k = qkv_at(b, 0u, 1u, h) + i;
    let step = 3u * p.c;
    var acc = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        acc += dpreatt_in[row + t2] * qkv[k + t2 * step];
    }
    let dq = qkv_at(b, t, 0u, h) + i;
    if (p.accumulate == 1u) {
        dqkv[dq] += acc;
    } else {
        dqkv[dq] = acc;
    }
}

// dqkv [b,T,3C] (its k and v parts) (+)= from dpreatt, att [b,NH,T,T], qkv [b,T,3C], dout [b,T,C];
// one invocation per (b, h, t2, i) (a real GPU's): dk[t2] += Σ_{t>=t2} dpreatt[t,t2] q[t];
// dv[t2] += Σ_{t>=t2} att[t,t2] dout[t]
@compute @workgroup_size(64)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    let hs = p.c / p.nh;
    if (idx >= p.b * p.nh * p.t * hs) {
        return;
    }
    let i = idx % hs;
    let t2 = (idx / hs) % p.t;
    let h = (idx / (hs * p.t)) % p.nh;
    let b = idx / (hs * p.t * p.nh);
    let plane = (b * p.nh + h) * p.t * p.t;
    let q = qkv_at(b, 0u, 0u, h) + i;
    let o = b * p.t * p.c + h * hs + i;
    let step = 3u * p.c;
    var dk = 0.0;
    var dv = 0.0;
    for (var t = t2; t < p.t; t++) {
        let a = plane + t * p.t + t2;
        dk += dpreatt_in[a] * qkv[q + t * step];
        dv += att_in[a] * dout[o + t * p.c];
    }
    let k = qkv_at(b, t2, 1u, h) + i;
    let v = qkv_at(b, t2, 2u, h) + i;
    if (p.accumulate == 1u) {
        dqkv[k] += dk;
    } else {
        dqkv[k] = dk;
    }
    if (p.accumulate == 1u) {
        dqkv[v] += dv;
    } else {
        dqkv[v] = dv;
    }
}
