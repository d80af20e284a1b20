"""Training throughput in seconds per kimg (1000 real images shown), next to NVlabs'.

    python benchmarks/train_throughput.py [--kimg 0.4] [--warmup 10] experiment=stylegan2_cpu32 [overrides...]
    python benchmarks/train_throughput.py --reference-cmd "bash run_nvlabs.sh" experiment=... [overrides...]

Runs the real `studio-train` code path (Lightning + Hydra, default threads and workers unless the
overrides say otherwise) with no metrics, no sample grids and no checkpoints during the timed window,
after `--warmup` steps. The reference is NVlabs' figure recorded in docs/benchmarks.md, or, with
`--reference-cmd`, NVlabs' own loop run right before ours on this machine: the command's `tick` lines
(`... sec/kimg X ...`) are parsed and the mean over ticks 1.. (tick 0 holds the start-up) is the
reference. Prints threads, workers and the load average: on a shared machine, compare only numbers
taken at similar load.
"""

import argparse
import os
import re
import subprocess
import tempfile
import time

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from studio.cli.train import CONFIG_DIR
from studio.training.run import train

# NVlabs' StyleGAN2/StyleGAN3 loops, seconds per kimg (1 H100 / 2 CPU cores, no metrics): docs/benchmarks.md.
NVLABS_SEC_PER_KIMG = {
    ("stylegan2_cpu32", "cpu"): 66.0,
    ("stylegan2_256", "cuda"): 12.6,
    ("stylegan2_64", "cuda"): 2.6,
    ("stylegan3_t_cpu32", "cpu"): 1670.0,
    ("stylegan3_t_256", "cuda"): 20.6,
    ("stylegan3_r_256", "cuda"): 30.7,
}


class StepTimer(L.Callback):
    """Wall time and images shown at the end of every step (CUDA synchronised), and the device trained
    on (read during training: Lightning moves the module back to the CPU when fit ends)."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []
        self.device = torch.device("cpu")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.device = pl_module.device
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.marks.append((time.perf_counter(), pl_module.cur_nimg))


def run_reference(command: str) -> float:
    """Mean sec/kimg over the tick lines 1.. that NVlabs' training loop prints while running `command`."""
    print(f"running the reference: {command}")
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    ticks = [float(m) for m in re.findall(r"^tick\s+(?:[1-9]\d*)\s.*?sec/kimg\s+([\d.]+)", done.stdout, re.M)]
    if done.returncode != 0 or not ticks:
        output = done.stdout[-2000:] + done.stderr[-2000:]
        raise SystemExit(f"the reference command failed or printed no tick lines:\n{output}")
    print(f"NVlabs ticks 1..{len(ticks)}: " + ", ".join(f"{t:.1f}" for t in ticks) + " s/kimg")
    return sum(ticks) / len(ticks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kimg", type=float, default=0.4, help="images to train in total, in thousands")
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the timing")
    parser.add_argument(
        "--reference-cmd", help="shell command running NVlabs' loop at the same settings (docs/benchmarks.md)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=stylegan2_cpu32")
    args = parser.parse_args()
    measured_reference = None if args.reference_cmd is None else run_reference(args.reference_cmd)

    with tempfile.TemporaryDirectory() as run_dir:
        overrides = [
            *args.overrides,
            f"run_dir={run_dir}",
            f"train.kimg={args.kimg}",
            "eval.every_kimg=1000000",
            "ckpt.every_kimg=1000000",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ]
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        timer = StepTimer()
        load_before = os.getloadavg()[0]
        train(cfg, extra_callbacks=[timer])
        load_after = os.getloadavg()[0]

    if len(timer.marks) <= args.warmup + 1:
        raise SystemExit(
            f"--kimg {args.kimg} gives only {len(timer.marks)} steps; need more than --warmup + 1."
        )
    (t0, n0), (t1, n1) = timer.marks[args.warmup], timer.marks[-1]
    sec_per_kimg = (t1 - t0) / (n1 - n0) * 1000
    device = timer.device.type
    experiment = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("experiment=")), "default")
    reference = NVLABS_SEC_PER_KIMG.get((experiment, device))
    if measured_reference is not None:
        reference = measured_reference
        print(f"NVlabs, measured now: {reference:.2f} s/kimg")
    timed_steps = len(timer.marks) - args.warmup - 1
    passes = "" if cfg.train.batch_gpu is None else f" in passes of {cfg.train.batch_gpu}"
    line = f"{experiment} on {device} (batch {cfg.train.batch}{passes}, {timed_steps} timed steps): "
    line += f"studio {sec_per_kimg:.2f} s/kimg"
    if reference is not None:
        line += f" | NVlabs {reference:.1f} s/kimg | ratio {sec_per_kimg / reference:.2f}x"
    if device == "cuda":
        line += f" | peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    if device == "cpu":
        omp = os.environ.get("OMP_WAIT_POLICY", "unset")
        line += f" | {torch.get_num_threads()} torch threads, OMP_WAIT_POLICY {omp}"
    line += f" | {cfg.data.num_workers} data workers ({cfg.data.dataset._target_.rsplit('.', 1)[-1]})"
    line += f" | load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
    print(line)


if __name__ == "__main__":
    main()
