"""The one step loop: its variants (epochs of a data loader, no checkpoints),
divergence checks, and the run-context interface every context implements."""

import pytest
import torch

from aninfonce.runner import RunnerContext
from aninfonce.trainers import loop
from aninfonce.trainers.loop import TrainingDiverged, train_loop


def bare(tmp_path):
    return RunnerContext(torch.device("cpu"), tmp_path / "c.pt", tmp_path, show_progress=False)


class _Recording(RunnerContext):
    def save_checkpoint(self, state):
        self.saved = [*getattr(self, "saved", []), (state["step"], state.get("epoch"))]


def test_epochs_evaluate_each_epoch_end_and_checkpoint_only_there(tmp_path):
    ctx = _Recording(torch.device("cpu"), tmp_path / "c.pt", tmp_path, show_progress=False)
    epochs = []
    rows = train_loop(ctx, "t", steps=9, eval_every=2, start=0, rows=[], step=lambda: torch.ones(()),
                      evaluate=lambda step, loss: [step], state=dict, steps_per_epoch=3, new_epoch=epochs.append)
    assert epochs == [0, 1, 2]
    assert rows == [2, 3, 4, 6, 8, 9]  # every eval_every steps and every epoch's last step
    assert ctx.saved == [(3, 1), (6, 2)]  # epoch ends before the last step only


def test_resume_at_an_epoch_boundary_starts_the_next_epoch(tmp_path):
    epochs = []
    train_loop(bare(tmp_path), "t", steps=9, eval_every=9, start=6, rows=[],
               step=lambda: torch.ones(()), evaluate=lambda step, loss: [], steps_per_epoch=3,
               new_epoch=epochs.append)
    assert epochs == [2]


def test_a_non_finite_loss_names_the_run_and_no_checkpoint_is_kept_without_state(tmp_path):
    losses = []
    ctx = bare(tmp_path)
    train_loop(ctx, "a", steps=4, eval_every=2, start=0, rows=[], step=lambda: torch.tensor(3.0),
               evaluate=lambda step, loss: losses.append(loss) or [])
    assert losses == [3.0, 3.0] and ctx.train_steps == 4
    assert not ctx.checkpoint_path.exists()  # no ``state``: nothing is checkpointed
    with pytest.raises(TrainingDiverged, match="^b loss became nan before step 2$"):
        train_loop(bare(tmp_path), "b", steps=4, eval_every=2, start=0, rows=[],
                   step=lambda: torch.tensor(float("nan")), evaluate=lambda step, loss: [])


def test_every_run_context_implements_the_declared_interface(tmp_path):
    """The runner's context and a non-zero rank's both satisfy the step loop's
    RunContext; the rank's reads rank 0's checkpoint and never writes one."""
    from aninfonce.torchrun import _RankContext

    ctx = bare(tmp_path)
    rank = _RankContext(ctx)
    assert isinstance(ctx, loop.RunContext) and isinstance(rank, loop.RunContext)

    class Partial:  # a context without timing() is not one: the check can fail
        device, data_root, artifact_dir, checkpoint_path = torch.device("cpu"), None, tmp_path, tmp_path / "c.pt"
        train_steps, train_seconds, interval = 0, 0.0, None
        load_checkpoint = save_checkpoint = cached = progress = restore_timing = print
    assert not isinstance(Partial(), loop.RunContext)

    train_loop(rank, "r", steps=4, eval_every=2, start=0, rows=[], step=lambda: torch.ones(()),
               evaluate=lambda step, loss: [], state=dict)
    assert not ctx.checkpoint_path.exists() and rank.train_steps == 4
    train_loop(ctx, "r", steps=4, eval_every=2, start=0, rows=[], step=lambda: torch.ones(()),
               evaluate=lambda step, loss: [], state=dict)
    assert rank.load_checkpoint()["step"] == 2 and rank.load_checkpoint()["timing"]["train_steps"] == 2


def test_a_metric_that_turns_non_finite_stops_the_run_but_one_undefined_from_the_start_does_not(tmp_path):
    def evaluate(step, loss):
        r2 = float("nan") if step == 4 else 0.9
        return [{"metric": "r2_all", "value": r2, "protocol": "held-out"},
                {"metric": "r2_style", "value": float("nan"), "protocol": "held-out"}]  # no style dims: NaN by design

    first = evaluate(0, None)
    ok = train_loop(bare(tmp_path), "t", steps=2, eval_every=2, start=0, rows=list(first),
                    step=lambda: torch.ones(()), evaluate=evaluate)
    assert len(ok) == 4
    with pytest.raises(TrainingDiverged, match="^t evaluation metric r2_all became nan at step 4$"):
        train_loop(bare(tmp_path), "t", steps=6, eval_every=2, start=0, rows=list(first),
                   step=lambda: torch.ones(()), evaluate=evaluate)


def test_a_checkpoint_that_is_not_this_runs_is_one_line(tmp_path):
    from aninfonce.errors import UserError
    from aninfonce.trainers.loop import resume_or_start

    ctx = RunnerContext(torch.device("cpu"), tmp_path / "c.pt", tmp_path, show_progress=False)
    torch.save({"step": 3, "rows": []}, ctx.checkpoint_path)  # loads, but holds no encoder
    with pytest.raises(UserError, match=r"c\.pt does not fit this run \(KeyError: 'encoder'\); delete it"):
        resume_or_start(ctx, {"encoder": torch.nn.Linear(2, 2)}, None, list)


def test_a_damaged_cached_artefact_is_rebuilt(tmp_path, capsys):
    ctx = RunnerContext(torch.device("cpu"), tmp_path / "c.pt", tmp_path, show_progress=False)
    assert ctx.cached("vae", lambda: {"w": torch.ones(2)})["w"].sum() == 2
    (tmp_path / "vae.pt").write_bytes(b"\x00damaged")
    assert ctx.cached("vae", lambda: {"w": torch.full((2,), 3.0)})["w"].sum() == 6
    assert "rebuilding a damaged cache" in capsys.readouterr().err
    assert ctx.cached("vae", lambda: None)["w"].sum() == 6  # the rebuilt file is read back
