"""The losses against naive double-loop references."""

import dataclasses
import math

import pytest
import torch

from aninfonce.losses import LearnedLambda, contrastive_loss, pairwise_similarity


def naive_similarity(x, y, lam):
    return -0.5 * sum(lam[j] * (x[j] - y[j]) ** 2 for j in range(len(x)))


def naive_loss(a, b, lam, beta=0.0, quirk=False):
    """Cross-entropy of each of the 2N anchors' positive among the 2N - 2 other
    samples, written out sample by sample."""
    n = len(a)
    views = [a, b]
    total = 0.0
    for v in range(2):
        for i in range(n):
            anchor, other = views[v][i], views[1 - v][i]
            pos = naive_similarity(anchor, other, lam)
            negs = []
            for k in range(n):
                if k == i:
                    continue
                if v == 1 and quirk:  # authors' form: cross-view negatives from a_i's row
                    negs.append(naive_similarity(a[i], b[k], lam))
                else:
                    negs.append(naive_similarity(anchor, views[1 - v][k], lam))
                negs.append(naive_similarity(anchor, views[v][k], lam))
            negs = torch.stack(negs)
            if beta == 0.0:
                denom = torch.exp(pos) + torch.exp(negs).sum()
            else:
                w = torch.softmax(beta * negs, 0).detach()
                denom = torch.exp(pos) + len(negs) * (w * torch.exp(negs)).sum()
            total = total - (pos - torch.log(denom))
    return total / (2 * n)


def unit(x):
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("quirk", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.7, 3.0])
def test_loss_matches_naive_reference_and_gradient(quirk, beta):
    g = torch.Generator().manual_seed(0)
    a = unit(torch.randn(6, 4, generator=g, dtype=torch.float64)).requires_grad_()
    b = unit(torch.randn(6, 4, generator=g, dtype=torch.float64)).requires_grad_()
    lam = (torch.rand(4, generator=g, dtype=torch.float64) * 5 + 0.5).requires_grad_()
    fast = contrastive_loss(a, b, lam, hard_beta=beta, authors_quirk=quirk)
    slow = naive_loss(a, b, lam, beta, quirk)
    assert torch.allclose(fast, slow, atol=1e-10)
    g_fast = torch.autograd.grad(fast, (a, b, lam))
    g_slow = torch.autograd.grad(slow, (a, b, lam))
    for x, y in zip(g_fast, g_slow):
        assert torch.allclose(x, y, atol=1e-9)


def test_quirk_changes_the_loss():
    g = torch.Generator().manual_seed(1)
    a, b = unit(torch.randn(8, 3, generator=g)), unit(torch.randn(8, 3, generator=g))
    lam = torch.tensor([1.0, 4.0, 9.0])
    assert not torch.isclose(contrastive_loss(a, b, lam), contrastive_loss(a, b, lam, authors_quirk=True))


def test_infonce_is_aninfonce_with_isotropic_lambda_and_cosine_with_temperature():
    g = torch.Generator().manual_seed(2)
    a, b = unit(torch.randn(10, 5, generator=g)), unit(torch.randn(10, 5, generator=g))
    tau = 0.3
    fixed = LearnedLambda(5, "fixed", tau=tau)
    lam_iso = torch.full((5,), 1 / tau)
    assert torch.allclose(contrastive_loss(a, b, fixed()), contrastive_loss(a, b, lam_iso))
    # the textbook SimCLR form: cosine similarity over tau, 2N x 2N logits, self masked
    z = torch.cat([a, b])
    logits = z @ z.T / tau
    logits.fill_diagonal_(-math.inf)
    target = torch.cat([torch.arange(10, 20), torch.arange(10)])
    simclr = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(contrastive_loss(a, b, fixed()), simclr, atol=1e-6)


def test_metric_parametrisations():
    g = torch.Generator().manual_seed(0)
    diag = LearnedLambda(10, "diag", generator=g)
    lam = diag()
    assert lam.shape == (10,) and lam.std() > 0 and torch.allclose(lam.mean(), torch.tensor(0.69), atol=0.1)
    scalar = LearnedLambda(10, "scalar", generator=g)
    assert scalar().shape == (10,) and scalar().std() == 0
    assert sum(p.numel() for p in scalar.parameters()) == 1
    assert list(LearnedLambda(10, "fixed", tau=0.5).parameters()) == []
    with pytest.raises(ValueError):
        LearnedLambda(3, "full")


def test_pairwise_similarity_is_minus_half_weighted_squared_distance():
    g = torch.Generator().manual_seed(3)
    a, b, lam = torch.randn(4, 3, generator=g), torch.randn(5, 3, generator=g), torch.rand(3, generator=g)
    ref = -0.5 * (((a[:, None] - b[None]) ** 2) * lam).sum(-1)
    assert torch.allclose(pairwise_similarity(a, b, lam), ref, atol=1e-6)


# ---------------------------------------------------------------- fast paths
from aninfonce.losses import _blockwise_loss  # noqa: E402  the three-block form the fast paths replace


@pytest.mark.parametrize("beta", [0.0, 1.5])
@pytest.mark.parametrize("lam_kind", ["diag", "scalar", "fixed"])
def test_fast_paths_match_the_blockwise_form_in_value_and_gradient(beta, lam_kind):
    g = torch.Generator().manual_seed(4)
    n, d = 50, 7
    a = unit(torch.randn(n, d, generator=g, dtype=torch.float64)).requires_grad_()
    b = unit(a.detach() + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)).requires_grad_()
    theta = (torch.rand(d if lam_kind == "diag" else 1, generator=g, dtype=torch.float64) * 20 + 0.5)
    theta.requires_grad_(lam_kind != "fixed")
    lam = theta.expand(d)
    inputs = (a, b, theta) if theta.requires_grad else (a, b)
    fast = contrastive_loss(a, b, lam, hard_beta=beta, fast=True)
    ref = _blockwise_loss(a, b, lam, hard_beta=beta)
    assert torch.allclose(fast, ref, rtol=1e-12, atol=1e-12)
    for x, y in zip(torch.autograd.grad(fast, inputs), torch.autograd.grad(ref, inputs)):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_fused_loss_float32_reuses_its_buffer_and_refuses_a_second_backward():
    g = torch.Generator().manual_seed(5)
    a, b = unit(torch.randn(300, 10, generator=g)), unit(torch.randn(300, 10, generator=g))
    lam = torch.full((10,), 30.0, requires_grad=True)
    ref = _blockwise_loss(a.double(), b.double(), lam.double())
    for _ in range(3):  # buffer taken from and returned to the pool each time
        with torch.no_grad():
            assert torch.isclose(contrastive_loss(a, b, lam, fast=True).double(), ref, rtol=1e-5)
        loss = contrastive_loss(a, b, lam, fast=True)
        assert torch.isclose(loss.double(), ref, rtol=1e-5)
        loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="cannot run twice"):
        loss.backward()


def test_default_is_the_three_block_form_bit_for_bit():
    """Stored results were computed with it; the fast form is opt-in."""
    g = torch.Generator().manual_seed(6)
    a, b = unit(torch.randn(40, 10, generator=g)), unit(torch.randn(40, 10, generator=g))
    lam = torch.rand(10, generator=g) * 20
    for beta in (0.0, 2.0):
        assert torch.equal(contrastive_loss(a, b, lam, hard_beta=beta), _blockwise_loss(a, b, lam, hard_beta=beta))
    assert torch.equal(contrastive_loss(a, b, lam, authors_quirk=True),
                       _blockwise_loss(a, b, lam, authors_quirk=True))


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_fast_authors_form_matches_the_blockwise_form_in_value_and_gradient(beta):
    """The authors' loss form [code] has its own fast path for beta = 0 (the
    log runs use it); with hard negatives it stays on the three-block form."""
    g = torch.Generator().manual_seed(11)
    a = unit(torch.randn(50, 10, generator=g, dtype=torch.float64)).requires_grad_()
    b = unit(torch.randn(50, 10, generator=g, dtype=torch.float64)).requires_grad_()
    lam = (torch.rand(10, generator=g, dtype=torch.float64) * 20 + 0.5).requires_grad_()
    fast = contrastive_loss(a, b, lam, hard_beta=beta, authors_quirk=True, fast=True)
    ref = _blockwise_loss(a, b, lam, hard_beta=beta, authors_quirk=True)
    assert torch.allclose(fast, ref, rtol=1e-12, atol=1e-12)
    assert not torch.isclose(fast, contrastive_loss(a, b, lam, hard_beta=beta, fast=True))  # the quirk is kept
    for x, y in zip(torch.autograd.grad(fast, (a, b, lam)), torch.autograd.grad(ref, (a, b, lam))):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-12)


def test_fast_loss_under_autocast_is_computed_in_float32():
    g = torch.Generator().manual_seed(7)
    a = unit(torch.randn(30, 10, generator=g)).requires_grad_()
    b = unit(torch.randn(30, 10, generator=g))
    lam = torch.full((10,), 5.0)
    ref = contrastive_loss(a, b, lam, fast=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contrastive_loss(a.bfloat16(), b.bfloat16(), lam, fast=True)
    assert loss.dtype == torch.float32 and torch.isclose(loss, ref, rtol=2e-2)
    loss.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("schedule", [{}, dict(lr_schedule="cosine", warmup_steps=5)])
def test_fast_training_path_is_deterministic_and_resumes_to_identical_rows(schedule):
    """SyntheticSpec(fast=True): same rows run to run, and a run resumed from
    its checkpoint (fused Adam state and the lr schedule included) ends with
    the same rows."""
    import contextlib
    import copy
    from types import SimpleNamespace

    from aninfonce.trainers.synthetic import SyntheticSpec, train_synthetic

    class Ctx:  # keeps every checkpoint, to resume from the first one
        device = torch.device("cpu")
        train_steps, train_seconds = 0, 0.0

        def __init__(self, state=None):
            self.state, self.saved = state, []

        def load_checkpoint(self):
            return copy.deepcopy(self.state)

        def save_checkpoint(self, state):
            self.saved.append(copy.deepcopy(state))

        @contextlib.contextmanager
        def progress(self, total, initial=0):
            yield SimpleNamespace(n=initial, update=lambda k: None, set_postfix=lambda **k: None)

        interval = None

        def timing(self):
            return {}

        def restore_timing(self, timing):
            pass

    spec = SyntheticSpec(experiment="t", batch=40, steps=30, eval_every=10, widths=(2, 2), eval_samples=200,
                         mixing_draws=100, lr_f=1e-3, lr_metric=1e-2, fast=True, **schedule)
    first = Ctx()
    rows = train_synthetic(spec, first)
    assert rows == train_synthetic(spec, Ctx())
    assert first.saved[-1]["optimizer"]["param_groups"][0]["fused"] is True
    assert train_synthetic(spec, Ctx(first.saved[0])) == rows
    if schedule:  # the schedule ran to its end: cosine at zero
        assert first.saved[-1]["schedule"]["last_epoch"] == 20
        assert train_synthetic(dataclasses.replace(spec, lr_schedule="constant"), Ctx()) != rows


def test_lr_factor_warms_up_then_decays_to_zero():
    from aninfonce.schedules import lr_factor
    from aninfonce.trainers.synthetic import SyntheticSpec

    spec = SyntheticSpec(experiment="t", steps=1000, lr_schedule="cosine", warmup_steps=100)
    f = [lr_factor(spec, s) for s in range(1001)]
    assert f[0] == pytest.approx(0.01) and f[99] == pytest.approx(1.0) and f[100] == pytest.approx(1.0)
    assert f[550] == pytest.approx(0.5) and f[1000] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(f[100:], f[101:]))
    assert lr_factor(SyntheticSpec(experiment="t"), 500) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        SyntheticSpec(experiment="t", lr_schedule="step")


def test_log_held_lambda_starts_where_softplus_does_and_moves_by_a_relative_step():
    soft = LearnedLambda(10, "diag", generator=torch.Generator().manual_seed(3))
    log = LearnedLambda(10, "diag", generator=torch.Generator().manual_seed(3), param="log")
    torch.testing.assert_close(log(), soft())
    # one Adam step of lr 0.01 on a gradient of one sign moves log(Lambda^) by the lr: Lambda^ by 1 %
    opt = torch.optim.Adam(log.parameters(), lr=0.01)
    before = log().detach().clone()
    (-log().sum()).backward()
    opt.step()
    torch.testing.assert_close(log().detach() / before, torch.full((10,), math.exp(0.01)))
    with pytest.raises(ValueError, match="parametrisation"):
        LearnedLambda(3, "diag", param="sqrt")


def test_travel_bound_follows_the_schedule_and_parametrisation():
    from aninfonce.schedules import LAMBDA_INIT_MAX, travel_bound
    from aninfonce.trainers.synthetic import SyntheticSpec

    authors = SyntheticSpec(experiment="x", steps=10_000)  # lr 1e-3 constant: ~10 above the start
    assert travel_bound(authors) == pytest.approx(LAMBDA_INIT_MAX + 10.0)
    cosine = SyntheticSpec(experiment="x", steps=10_000, lr_schedule="cosine")  # half the summed rate
    assert travel_bound(cosine) == pytest.approx(LAMBDA_INIT_MAX + 5.0, abs=1e-3)
    log = SyntheticSpec(experiment="x", steps=10_000, lambda_param="log")
    assert travel_bound(log) == pytest.approx(LAMBDA_INIT_MAX * math.exp(10.0))


def test_every_round_two_candidate_reaches_twice_the_largest_true_lambda_it_serves():
    from aninfonce.analyses.calibration import ROUND_2, SERVES, TRAVEL_MARGIN, candidate_spec
    from aninfonce.schedules import travel_bound

    for name in ROUND_2:
        assert travel_bound(candidate_spec(name)) >= TRAVEL_MARGIN * max(SERVES.values())
