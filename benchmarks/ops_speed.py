"""Time the custom ops (forward and forward+backward, ms) beside NVlabs' H100 numbers.

    python benchmarks/ops_speed.py                       # GPU if available, full shapes
    python benchmarks/ops_speed.py --device cpu          # CPU: small shapes, finishes in < 1 minute
    python benchmarks/ops_speed.py --device cpu --threads 1   # steadier on a shared, busy machine
    python benchmarks/ops_speed.py --device cpu --shapes full --reps 3

Rows use impl="ref" and, with CUDA, impl="cuda". The ratio column is ours / NVlabs for the same kind of
implementation (ref vs their reference, cuda vs their kernel) and is shown only for the full shapes on
a GPU, the setting NVlabs measured (docs/benchmarks.md, "Custom ops").
"""

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import ops


@dataclass(frozen=True)
class Case:
    """One benchmarked call: op name, shape text, the call, the input shape, NVlabs numbers (ms)."""

    name: str
    run: Callable[[torch.Tensor, str], torch.Tensor]
    shape: tuple[int, int, int, int]
    nvlabs_cuda: tuple[float | None, float | None]
    nvlabs_ref: tuple[float | None, float | None]


def _filtered_lrelu_case(n, c, size, up, down, nvlabs_cuda, nvlabs_ref, device) -> Case:
    # 12-tap low-pass filters (separable, Kaiser window) at the 2x rate, as StyleGAN3 uses; the padding
    # gives an output of size * up // down, as in a critically sampled layer.
    taps = ops.setup_filter(np.kaiser(12, 6.0), device=device)
    fu, fu_len = (taps, 12) if up > 1 else (None, 1)
    fd, fd_len = (taps, 12) if down > 1 else (None, 1)
    pad_total = (size * up // down) * down + fd_len - down - size * up + fu_len - 1
    pad0, pad1 = pad_total // 2, pad_total - pad_total // 2
    padding = (pad0, pad1, pad0, pad1)
    bias = torch.randn(c, device=device)

    def run(x: torch.Tensor, impl: str) -> torch.Tensor:
        return ops.filtered_lrelu(x, fu, fd, bias, up=up, down=down, padding=padding, clamp=256, impl=impl)

    name = f"filtered_lrelu up{up} down{down}"
    return Case(name, run, (n, c, size, size), nvlabs_cuda, nvlabs_ref)


def build_cases(small: bool, device: torch.device) -> list[Case]:
    """The shapes of docs/benchmarks.md, or (small) the same ops on shapes a 2-core CPU runs quickly."""
    scale = (lambda n, c, s: (max(n // 16, 1), max(c // 16, 4), s)) if small else (lambda n, c, s: (n, c, s))
    cases = [
        _filtered_lrelu_case(*scale(32, 512, 36), 2, 2, (0.40, 1.22), (1.94, 4.31), device),
        _filtered_lrelu_case(*scale(32, 256, 148), 2, 2, (3.72, 8.26), (13.98, 29.63), device),
        _filtered_lrelu_case(*scale(32, 128, 276), 2, 2, (5.06, 11.64), (23.14, 48.72), device),
        _filtered_lrelu_case(*scale(16, 64, 532), 1, 2, (2.01, 4.58), (5.77, 12.31), device),
    ]
    n, c, s = scale(32, 512, 64)
    bias = torch.randn(c, device=device)
    blur = ops.setup_filter([1, 3, 3, 1], device=device)
    cases.append(
        Case("bias_act lrelu", lambda x, impl: ops.bias_act(x, bias, act="lrelu", impl=impl), (n, c, s, s),
             (0.237, None), (0.593, None))
    )  # fmt: skip
    cases.append(
        Case("upsample2d [1,3,3,1]", lambda x, impl: ops.upsample2d(x, blur, impl=impl), (n, c, s, s),
             (1.024, None), (6.419, None))
    )  # fmt: skip
    return cases


def time_ms(fn: Callable[[], object], device: torch.device, reps: int, warmup: int) -> float:
    """Median wall time of fn() in ms, after warm-up, synchronizing the GPU around each call."""
    times = []
    for i in range(warmup + reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(case: Case, impl: str, device: torch.device, reps: int, warmup: int) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of one case and implementation."""
    x = torch.randn(case.shape, device=device)
    x_grad = x.clone().requires_grad_()
    grad_out = torch.randn_like(case.run(x, impl))

    def forward() -> None:
        with torch.no_grad():
            case.run(x, impl)

    def forward_backward() -> None:
        case.run(x_grad, impl).backward(grad_out)
        x_grad.grad = None

    return time_ms(forward, device, reps, warmup), time_ms(forward_backward, device, reps, warmup)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(ours: float, theirs: float | None) -> str:
    return "–" if theirs is None else f"{ours / theirs:.2f}"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"cpu: {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shapes", choices=["full", "small"], help="default: full on GPU, small on CPU")
    parser.add_argument("--reps", type=int, help="timed runs per measurement (default 20 GPU, 3 CPU)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device; use --device cpu")
    small = (args.shapes or ("full" if device.type == "cuda" else "small")) == "small"
    reps = args.reps or (20 if device.type == "cuda" else 3)
    impls = ["ref", "cuda"] if device.type == "cuda" else ["ref"]
    comparable = device.type == "cuda" and not small

    print(f"device: {describe_device(device)}; shapes: {'small' if small else 'full'}; median of {reps}")
    print("NVlabs columns: H100 numbers from docs/benchmarks.md; ratio = ours / NVlabs (same impl kind)")
    header = f"{'op':28s} {'N,C,H,W':>16s} {'impl':>4s} {'fwd ms':>8s} {'fwd+bwd':>8s}"
    print(f"{header} {'NV fwd':>7s} {'NV f+b':>7s} {'ratio':>6s} {'ratio':>6s}")
    for case in build_cases(small, device):
        for impl in impls:
            try:
                fwd, fwd_bwd = measure(case, impl, device, reps, args.warmup)
            except RuntimeError as error:  # the CUDA kernel did not build or load
                print(f"{case.name:28s} {impl}: unavailable ({error})")
                continue
            nv_fwd, nv_bwd = case.nvlabs_cuda if impl == "cuda" else case.nvlabs_ref
            if not comparable:
                nv_fwd = nv_bwd = None
            shape = ",".join(str(v) for v in case.shape)
            row = f"{case.name:28s} {shape:>16s} {impl:>4s} {_fmt(fwd):>8s} {_fmt(fwd_bwd):>8s}"
            ratios = f"{_ratio(fwd, nv_fwd):>6s} {_ratio(fwd_bwd, nv_bwd):>6s}"
            print(f"{row} {_fmt(nv_fwd):>7s} {_fmt(nv_bwd):>7s} {ratios}")


if __name__ == "__main__":
    main()
