// Causal multi-head self-attention, forward and backward.
// Legend: B batch, T time, C channels, NH heads, hs = C/NH head size.
// qkv [B,T,3C] holds q, k, v one after another along channels; head h owns
// channels h*hs .. (h+1)*hs of each. att [B,NH,T,T] keeps the softmax
// probabilities for backward (entries above the diagonal are zero).
//
// Every output element is owned by one invocation that walks its sum in a
// fixed order: the backward is written as gathers (dq over keys, dk and dv
// over queries) rather than llm.c's scatter, because WGSL has no float
// atomics and runs must be bit-reproducible.
// Padding needs no mask: sequences are right-padded and attention is causal,
// so padded positions never feed real ones.

struct AttentionParams {
    b: u32,
    t: u32,
    c: u32,
    nh: u32,
}

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;      // [B,T,C]
@group(0) @binding(2) var<storage, read_write> att: array<f32>;      // [B,NH,T,T]
@group(0) @binding(3) var<storage, read> qkv: array<f32>;            // [B,T,3C]
@group(0) @binding(4) var<storage, read_write> dpreatt: array<f32>;  // [B,NH,T,T]
@group(0) @binding(5) var<storage, read> dout: array<f32>;           // [B,T,C]
@group(0) @binding(6) var<storage, read> att_in: array<f32>;         // [B,NH,T,T]
@group(0) @binding(7) var<storage, read_write> dqkv: array<f32>;     // [B,T,3C]
@group(0) @binding(8) var<storage, read> dpreatt_in: array<f32>;     // [B,NH,T,T]

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// offset of channel 0 of head h of part (0 q, 1 k, 2 v) at position (b, t) in qkv
fn qkv_at(b: u32, t: u32, part: u32, h: u32) -> u32 {
    let hs = p.c / p.nh;
    return (b * p.t + t) * 3u * p.c + part * p.c + h * hs;
}

// out [B,T,C], att [B,NH,T,T] from qkv [B,T,3C];
// one invocation per (b, h, t): the attention row of query t
@compute @workgroup_size(64)
fn attention_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let row = idx * p.t;
    let q = qkv_at(b, t, 0u, h);
    var mx = -3.402823e38;
    for (var t2 = 0u; t2 <= t; t2++) {
        let k = qkv_at(b, t2, 1u, h);
        var s = 0.0;
        for (var i = 0u; i < hs; i++) {
            s += qkv[q + i] * qkv[k + i];
        }
        s *= scale;
        att[row + t2] = s;
        mx = max(mx, s);
    }
    var sum = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        let e = exp(att[row + t2] - mx);
        att[row + t2] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var t2 = 0u; t2 < p.t; t2++) {
        att[row + t2] = select(0.0, att[row + t2] * inv, t2 <= t);
    }
    let o = (b * p.t + t) * p.c + h * hs;
    for (var i = 0u; i < hs; i++) {
        var acc = 0.0;
        for (var t2 = 0u; t2 <= t; t2++) {
            acc += att[row + t2] * qkv[qkv_at(b, t2, 2u, h) + i];
        }
        out[o + i] = acc;
    }
}

// dpreatt [B,NH,T,T] from dout [B,T,C], qkv [B,T,3C], att [B,NH,T,T];
// one invocation per (b, h, t): gradient of the pre-softmax scores of row t,
// scale included: dpreatt = att ⊙ (datt − Σ att ⊙ datt) / sqrt(hs)
@compute @workgroup_size(64)
fn attention_backward_dpreatt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) li: u32) {
    let idx = index(wid, nwg, li);
    if (idx >= p.b * p.nh * p.t) {
        return;
    }
    let t = idx % p.t;
    let h = (idx / p.t) % p.nh;
    let b = idx / (p.t * p.nh);
    let hs = p.c / p.nh;
    let scale = 1.0 / sqrt(f32(hs));
    let row = idx * p.t;
    let o = (b * p.t + t) * p.c + h * hs;
    var dot_att_datt = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        let v = qkv_at(b, t2, 2u, h);
        var datt = 0.0;
        for (var i = 0u; i < hs; i++) {
            datt += dout[o + i] * qkv[v + i];
        }
        dpreatt[row + t2] = datt;
        dot_att_datt += att_in[row + t2] * datt;
    }
    for (var t2 = 0u; t2 < p.t; t2++) {
        dpreatt[row + t2] = select(0.0, att_in[row + t2] * (dpreatt[row + t2] - dot_att_datt) * scale, t2 <= t);
    }
}

// dqkv [B,T,3C] (its q part) += from dpreatt [B,NH,T,T], qkv [B,T,3C];
// one invocation per (b, h, t, i): dq[b,t,h,i] += Σ_{t2<=t} dpreatt[t,t2] k[t2,i]
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
    var acc = 0.0;
    for (var t2 = 0u; t2 <= t; t2++) {
        acc += dpreatt_in[row + t2] * qkv[qkv_at(b, t2, 1u, h) + i];
    }
    dqkv[qkv_at(b, t, 0u, h) + i] += acc;
}

// dqkv [B,T,3C] (its k and v parts) += from dpreatt, att [B,NH,T,T], qkv [B,T,3C], dout [B,T,C];
// one invocation per (b, h, t2, i): dk[t2] += Σ_{t>=t2} dpreatt[t,t2] q[t];
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
    var dk = 0.0;
    var dv = 0.0;
    for (var t = t2; t < p.t; t++) {
        let a = plane + t * p.t + t2;
        dk += dpreatt_in[a] * qkv[qkv_at(b, t, 0u, h) + i];
        dv += att_in[a] * dout[(b * p.t + t) * p.c + h * hs + i];
    }
    dqkv[qkv_at(b, t2, 1u, h) + i] += dk;
    dqkv[qkv_at(b, t2, 2u, h) + i] += dv;
}
