"""The opt-in speed settings (aninfonce/speed.py): reduced-precision encoder
products stay inside the encoder, presets reach the right specs and keep
their results apart, compilation trains the same model, and the runner's
steps/s counts training steps only."""

import pandas as pd
import pytest
import torch

from aninfonce import speed
from aninfonce.cli import main
from aninfonce.nets import MLPEncoder
from aninfonce.runner import RunnerContext
from aninfonce.trainers.ensemble import EnsembleSpec
from aninfonce.trainers.loop import train_loop
from aninfonce.trainers.synthetic import SyntheticSpec, build, train_step


def _encoder_and_input(seed=0):
    g = torch.Generator().manual_seed(seed)
    enc = MLPEncoder(10, g, widths=(10, 50, 10))
    x = torch.randn(512, 10, generator=g)
    return enc, x


def _grads(enc, x, matmul):
    enc.zero_grad(set_to_none=True)
    out = enc(x, matmul=matmul)
    (out * torch.linspace(-1, 1, 10)).sum().backward()
    return out.detach(), [p.grad.clone() for p in enc.parameters()]


needs_bf16 = pytest.mark.skipif(not speed.cpu_has_bf16(), reason="this CPU has no bf16 matrix support")


@needs_bf16
def test_reduced_products_are_close_to_float32_but_not_equal():
    """bf16 inputs, float32 accumulation: relative errors of a few 1e-3, never
    exactly the float32 numbers (else the flag would be doing nothing)."""
    enc, x = _encoder_and_input()
    out32, g32 = _grads(enc, x, "ieee")
    out16, g16 = _grads(enc, x, "reduced")
    assert not torch.equal(out32, out16)
    assert torch.allclose(out16, out32, atol=2e-2)
    for a, b in zip(g16, g32):
        assert (a - b).norm() / b.norm() < 2e-2


@needs_bf16
def test_reduced_precision_is_confined_to_the_encoder():
    """Global matmul settings are restored, so the loss, Lambda^ and every
    evaluation stay IEEE float32."""
    before = torch.backends.mkldnn.matmul.fp32_precision
    enc, x = _encoder_and_input()
    _grads(enc, x, "reduced")
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    a, b = torch.randn(300, 200), torch.randn(200, 300)
    full = a @ b
    with speed.reduced_matmul(torch.device("cpu")):
        reduced = a @ b
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    assert not torch.equal(reduced, full) and torch.allclose(reduced, full, atol=0.5)
    assert torch.equal(a @ b, full)


def test_ieee_path_is_the_module_itself_bit_for_bit():
    enc, x = _encoder_and_input()
    h = enc.net(x)
    assert torch.equal(enc(x), h / h.norm(dim=1, keepdim=True))


def test_spec_validation_and_presets():
    with pytest.raises(ValueError, match="matmul precision"):
        SyntheticSpec(experiment="t", matmul="fp8")
    with pytest.raises(ValueError, match="compile mode"):
        SyntheticSpec(experiment="t", compile="max")
    with pytest.raises(ValueError, match="do not combine"):
        SyntheticSpec(experiment="t", matmul="reduced", compile="on")
    with pytest.raises(ValueError, match="plain loss"):
        EnsembleSpec(experiment="t", terms=((1.0,) * 10,), fast=True)
    s = SyntheticSpec(experiment="t")
    assert speed.apply(s, "exact") is s
    lowp = speed.apply(s, "fast-lowp")
    assert (lowp.fast, lowp.matmul, lowp.compile) == (True, "reduced", "off") and lowp.key != s.key
    ens = EnsembleSpec(experiment="t", terms=((1.0,) * 10,))
    assert speed.apply(ens, "fast-lowp") is ens  # no speed fields: untouched
    with pytest.raises(ValueError, match="unknown speed preset"):
        speed.apply(s, "turbo")


def test_compiled_encoder_trains_like_the_eager_one():
    """torch.compile (inductor on CPU here) changes the kernels, not the
    model: five steps agree with eager up to float rounding."""
    base = dict(experiment="t", batch=64, widths=(4, 4), mixing_draws=50, lr_f=1e-3, lr_metric=1e-2, fast=True)
    losses = {}
    for mode in ("off", "on"):
        spec = SyntheticSpec(**base, compile=mode)
        m = build(spec, torch.device("cpu"))
        precision = spec.true_lambda()
        losses[mode] = torch.stack([train_step(spec, m, precision) for _ in range(5)])
        assert (m["train_encoder"] is m["encoder"]) == (mode == "off")
    assert torch.allclose(losses["on"], losses["off"], rtol=1e-4)


@needs_bf16
@pytest.mark.slow
def test_speed_preset_keeps_its_results_apart(tmp_path, capsys):
    dirs = ["--results-dir", str(tmp_path / "results"), "--figures-dir", str(tmp_path / "figures")]
    assert main(["fig2-linear", "fig5", "--profile", "smoke", "--executor", "local", "--speed", "fast-lowp", *dirs]) == 0
    out = capsys.readouterr().out
    assert "not running fig5" in out
    df = pd.read_csv(tmp_path / "results" / "speed-fast-lowp" / "smoke" / "fig2-linear.csv")
    assert set(df["matmul"]) == {"reduced"} and set(df["fast"]) == {True}
    assert (df["train_steps_per_second"] >= df["steps_per_second"]).all()  # evaluation excluded from the first
    assert not (tmp_path / "results" / "smoke").exists()  # the default results are not touched
    report = (tmp_path / "figures" / "speed-fast-lowp" / "smoke" / "REPORT.md").read_text()
    assert "speed preset `fast-lowp`" in report and "(`fig2-linear`" in report and "(`fig5`" not in report
    assert main(["--profile", "smoke", "--check", "--speed", "fast-lowp", *dirs]) == 0  # no golden for other numerics
    assert main(["--profile", "smoke", "--update-golden", "--speed", "fast-lowp", *dirs]) == 2


def test_steps_per_second_counts_training_time_only(tmp_path):
    """An evaluation that takes longer than the steps must not show in steps/s."""
    import time

    ctx = RunnerContext(device=torch.device("cpu"), checkpoint_path=tmp_path / "c.pt", artifact_dir=tmp_path,
                        show_progress=False)

    def slow_eval(step, loss):
        time.sleep(0.2)
        return [{"step": step, "metric": "x", "value": loss}]

    t0 = time.perf_counter()
    train_loop(ctx, "t", steps=20, eval_every=10, start=0, rows=[], step=lambda: torch.ones(()),
               evaluate=slow_eval, state=dict)
    wall = time.perf_counter() - t0
    assert ctx.train_steps == 20
    # both evaluations sleep >= 0.2 s each and are excluded: holds however slow the machine is
    assert wall - ctx.train_seconds >= 0.4


@pytest.mark.slow
def test_gpu_step_script_runs_on_cpu(tmp_path):
    """benchmarks/gpu_synthetic_step.py is the prepared GPU check: it must not
    rot between GPU sessions."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_synthetic_step.py"
    spec = importlib.util.spec_from_file_location("gpu_synthetic_step", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "step.json"
    assert mod.main(["--tiny", "--device", "cpu", "--presets", "exact,fast", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["preset"] for r in rows if "preset" in r} == {"exact", "fast"}
    assert all(r["seconds_per_step"] > 0 for r in rows if "preset" in r)
    assert {r["sampler"] for r in rows if "sampler" in r} == {"fixed k=8", "adaptive rounds"}
