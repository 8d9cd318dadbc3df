"""The one step loop's variants: epochs of a data loader, one loss
per run of a batched model, no checkpoints."""

import pytest
import torch

from aninfonce.runner import RunContext
from aninfonce.trainers.loop import BareContext, TrainingDiverged, train_loop


class _Recording(RunContext):
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
    train_loop(BareContext(torch.device("cpu")), "t", steps=9, eval_every=9, start=6, rows=[],
               step=lambda: torch.ones(()), evaluate=lambda step, loss: [], steps_per_epoch=3,
               new_epoch=epochs.append)
    assert epochs == [2]


def test_one_loss_per_run_and_the_diverged_run_is_named():
    losses = []
    train_loop(BareContext(torch.device("cpu")), ["a", "b"], steps=4, eval_every=2, start=0, rows=[],
               step=lambda: torch.tensor([1.0, 3.0]), evaluate=lambda step, loss: losses.append(loss) or [])
    assert losses == [[1.0, 3.0], [1.0, 3.0]]
    with pytest.raises(TrainingDiverged, match="^b loss became nan before step 2$"):
        train_loop(BareContext(torch.device("cpu")), ["a", "b"], steps=4, eval_every=2, start=0, rows=[],
                   step=lambda: torch.tensor([1.0, float("nan")]), evaluate=lambda step, loss: [])


def test_a_metric_that_turns_non_finite_stops_the_run_but_one_undefined_from_the_start_does_not():
    def evaluate(step, loss):
        r2 = float("nan") if step == 4 else 0.9
        return [{"metric": "r2_all", "value": r2, "protocol": "held-out"},
                {"metric": "r2_style", "value": float("nan"), "protocol": "held-out"}]  # no style dims: NaN by design

    first = evaluate(0, None)
    ok = train_loop(BareContext(torch.device("cpu")), "t", steps=2, eval_every=2, start=0, rows=list(first),
                    step=lambda: torch.ones(()), evaluate=evaluate)
    assert len(ok) == 4
    with pytest.raises(TrainingDiverged, match="^t evaluation metric r2_all became nan at step 4$"):
        train_loop(BareContext(torch.device("cpu")), "t", steps=6, eval_every=2, start=0, rows=list(first),
                   step=lambda: torch.ones(()), evaluate=evaluate)


def test_a_checkpoint_that_is_not_this_runs_is_one_line(tmp_path):
    from aninfonce.errors import UserError
    from aninfonce.trainers.loop import resume_or_start

    ctx = RunContext(torch.device("cpu"), tmp_path / "c.pt", tmp_path, show_progress=False)
    torch.save({"step": 3, "rows": []}, ctx.checkpoint_path)  # loads, but holds no encoder
    with pytest.raises(UserError, match=r"c\.pt does not fit this run \(KeyError: 'encoder'\); delete it"):
        resume_or_start(ctx, {"encoder": torch.nn.Linear(2, 2)}, None, list)


def test_a_damaged_cached_artefact_is_rebuilt(tmp_path, capsys):
    ctx = RunContext(torch.device("cpu"), tmp_path / "c.pt", tmp_path, show_progress=False)
    assert ctx.cached("vae", lambda: {"w": torch.ones(2)})["w"].sum() == 2
    (tmp_path / "vae.pt").write_bytes(b"\x00damaged")
    assert ctx.cached("vae", lambda: {"w": torch.full((2,), 3.0)})["w"].sum() == 6
    assert "rebuilding a damaged cache" in capsys.readouterr().err
    assert ctx.cached("vae", lambda: None)["w"].sum() == 6  # the rebuilt file is read back
