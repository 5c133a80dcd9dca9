"""The GPU's own fp32 matmul (PyTorch, cuBLAS) at the shapes `cargo bench
--bench throughput -- gpu` times gradlab's WGSL kernel at, for the gap to the
machine's limit in BENCHMARKS.md. TF32 is off: gradlab's kernel is plain f32.

python3 benches/torch_matmul.py   (needs torch with a CUDA device)
"""
import torch

torch.backends.cuda.matmul.allow_tf32 = False
SHAPES = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (1024, 64, 192), (1024, 64, 256), (1024, 256, 64)]
print(f"torch {torch.__version__} fp32 matmul (cuBLAS, TF32 off) on {torch.cuda.get_device_name()}, GFLOP/s (median of 5):")
for n, c, oc in SHAPES:
    x = torch.randn(n, c, device="cuda")
    w = torch.randn(oc, c, device="cuda")
    b = torch.randn(oc, device="cuda")
    flops = 2 * n * c * oc
    # about 50 ms of multiplies per timing, as the WGSL table does
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        torch.addmm(b, x, w.t())
    end.record()
    torch.cuda.synchronize()
    times = max(10, min(10000, int(10 * 50 / start.elapsed_time(end))))
    rates = []
    for _ in range(6):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(times):
            torch.addmm(b, x, w.t())
        end.record()
        torch.cuda.synchronize()
        rates.append(flops * times / (start.elapsed_time(end) / 1e3) / 1e9)
    rates = sorted(rates[1:])
    print(f"  {f'{n}x{c}->{oc}':<18} {rates[len(rates) // 2]:>10.1f}")
