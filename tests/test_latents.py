import numpy as np
import pytest
import torch

from aninfonce.latents import REJECTION_BAND, content_style_masks, lambda_preset, sample_positive, sample_sphere
from aninfonce.nets import MixingMLP, MLPEncoder, well_conditioned_matrix


def test_presets():
    assert lambda_preset("bimodal", 10, 5, 25).tolist() == [25.0] * 5 + [5.0] * 5
    assert torch.allclose(lambda_preset("linear", 10, 5, 25), torch.linspace(5, 25, 10))
    content, style = content_style_masks(lambda_preset("bimodal", 10, 5, 25))
    # bimodal splits by position, so the isotropic control Lambda_2 = Lambda_1 keeps both groups
    for lam2 in (25.0, 5.0):
        c, _ = content_style_masks(lambda_preset("bimodal", 10, 5, lam2), "bimodal")
        assert c.tolist() == [True] * 5 + [False] * 5
    c, _ = content_style_masks(lambda_preset("bimodal", 10, 25, 5), "bimodal")
    assert c.tolist() == [False] * 5 + [True] * 5
    assert content.tolist() == [True] * 5 + [False] * 5 and (style == ~content).all()
    with pytest.raises(ValueError):
        lambda_preset("cubic", 10)


def test_sphere_marginal():
    z = sample_sphere(20000, 6, torch.Generator().manual_seed(0))
    assert torch.allclose(z.norm(dim=1), torch.ones(len(z)), atol=1e-6)
    assert z.mean(0).abs().max() < 0.02  # uniform: no preferred direction
    assert torch.allclose(z.var(0), torch.full((6,), 1 / 6), atol=0.01)


def test_conditional_respects_band_and_is_on_sphere():
    g = torch.Generator().manual_seed(0)
    z = sample_sphere(5000, 10, g)
    lam = lambda_preset("bimodal", 10, 5, 25)
    zp = sample_positive(z, lam, g)
    assert torch.allclose(zp.norm(dim=1), torch.ones(len(z)), atol=1e-5)
    # the accepted pre-projection norm lies in the band: recover it via the same draw logic
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    z1 = sample_sphere(300, 10, g1)
    _ = sample_sphere(300, 10, g2)
    out = sample_positive(z1, lam, g1, oversample=1)
    assert out.shape == z1.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("lam1", [5.0, 200.0])
def test_conditional_band_is_enforced_on_raw_draws(lam1):
    """Every kept draw z~ = z + e had | ||z~|| - 1 | < band before projection,
    one per anchor, while draws outside the band were common (so a sampler
    that ignored the band would keep some and fail here)."""
    g = torch.Generator().manual_seed(1)
    z = sample_sphere(4000, 10, g)
    lam = lambda_preset("bimodal", 10, lam1, 25)
    stats = {}
    zp = sample_positive(z, lam, g, stats=stats)
    kept = torch.cat(stats["accepted_norms"])
    assert len(kept) == len(z)
    assert ((kept - 1).abs() < REJECTION_BAND).all()
    assert stats["rounds"] > 1  # the first round left anchors without an accepted draw
    assert torch.allclose(zp.norm(dim=1), torch.ones(len(z)), atol=1e-5)


def test_conditional_small_noise_variance_is_inverse_lambda():
    """For large precision the band rarely binds and projection barely moves the
    point, so per-dim variance of z+ - z is close to 1 / Lambda."""
    g = torch.Generator().manual_seed(0)
    lam = torch.tensor([400.0, 1000.0, 2500.0, 400.0, 1000.0, 2500.0])
    z = sample_sphere(40000, 6, g)
    zp = sample_positive(z, lam, g)
    var = (zp - z).var(0)
    # to first order the projection removes the radial part z (z.e) of e, so
    # Var_j = E_z[1/L_j - 2 z_j^2 / L_j + z_j^2 sum_k z_k^2 / L_k]
    inv = 1 / lam
    expected = (inv - 2 * z**2 * inv + z**2 * (z**2 * inv).sum(1, keepdim=True)).mean(0)
    assert torch.allclose(var, expected, rtol=0.05)
    # the scale really is 1 / Lambda (not 1 / sqrt(Lambda), 20-50x larger here);
    # the projection only removes part of it
    ratio = var / inv
    assert ratio.min() > 0.6 and ratio.max() < 1.25


def test_mixing_is_well_conditioned_and_frozen():
    g = torch.Generator().manual_seed(0)
    w = well_conditioned_matrix(10, g, draws=2000)
    rand = torch.rand(2000, 10, 10, generator=torch.Generator().manual_seed(9)) * 2 - 1
    rand = rand / rand.norm(dim=1, keepdim=True)
    assert torch.linalg.cond(w) <= torch.linalg.cond(rand).median()
    assert torch.allclose(w.norm(dim=0), torch.ones(10), atol=1e-5)
    mix = MixingMLP(10, torch.Generator().manual_seed(0), draws=500)
    assert not any(p.requires_grad for p in mix.parameters())
    assert all(l.bias is None for l in mix.net if isinstance(l, torch.nn.Linear))


def test_encoder_output_on_sphere_and_widths():
    enc = MLPEncoder(10, torch.Generator().manual_seed(0))
    sizes = [l.out_features for l in enc.net if isinstance(l, torch.nn.Linear)]
    assert sizes == [100, 500, 500, 500, 500, 100, 10]  # [code] d -> 10d -> 50d x4 -> 10d -> d
    h = enc(torch.randn(7, 10))
    assert torch.allclose(h.norm(dim=1), torch.ones(7), atol=1e-6)


def test_adaptive_rejection_rounds_draw_the_same_conditional_in_few_rounds():
    """The GPU default (adaptive round sizes) is the same exact sampler: the
    same distribution of z.z+ per dimension group, in 2-4 rounds instead of
    the fixed k = 8's many; the CPU default is unchanged (stored results)."""
    g = torch.Generator().manual_seed(0)
    z = sample_sphere(20000, 10, g)
    lam = lambda_preset("bimodal", 10, 5.0, 25.0)
    fixed, adaptive = {}, {}
    zp_fixed = sample_positive(z, lam, torch.Generator().manual_seed(1), stats=fixed)
    zp_adapt = sample_positive(z, lam, torch.Generator().manual_seed(1), adaptive=True, stats=adaptive)
    assert torch.equal(zp_fixed, sample_positive(z, lam, torch.Generator().manual_seed(1)))  # CPU default
    assert adaptive["rounds"] <= 4 < fixed["rounds"]
    for part in (slice(0, 5), slice(5, 10)):  # content (Lambda = 25) and style (Lambda = 5) dims
        d_fixed = (zp_fixed[:, part] - z[:, part]).pow(2).sum(1)
        d_adapt = (zp_adapt[:, part] - z[:, part]).pow(2).sum(1)
        se = (d_fixed.var() / len(z)).sqrt() * 2 ** 0.5
        assert abs(d_fixed.mean() - d_adapt.mean()) < 4 * se
    assert torch.allclose(zp_adapt.norm(dim=1), torch.ones(len(z)))


def test_the_figures_numpy_precision_is_the_trainers_to_the_bit():
    """specs.precision_preset (numpy, for the figures) gives the float32 values latents.lambda_preset
    (torch, for the trainers) draws with, for every preset and range the studies use (d = 10)."""
    from aninfonce.specs import precision_preset

    for kind in ("bimodal", "linear", "isotropic"):
        for d, lo, hi in ((10, 5.0, 25.0), (10, 5.0, 50.0), (10, 5.0, 200.0), (10, 5.0, 5.0), (5, 5.0, 12.5)):
            assert np.array_equal(precision_preset(kind, d, lo, hi), lambda_preset(kind, d, lo, hi).numpy())
