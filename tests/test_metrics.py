import numpy as np
from scipy.stats import ortho_group

from aninfonce.metrics import mcc, r2_by_group, r2_per_dim


def test_r2_is_one_for_affine_maps():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 6))
    h = z @ rng.normal(size=(6, 6)) + 3.0
    assert np.allclose(r2_per_dim(h, z, h, z), 1.0)


def test_mcc_is_one_for_signed_permutations():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3000, 5))
    h = z[:, [3, 0, 4, 1, 2]] * np.array([1, -1, 1, -1, -1]) * 2.5
    assert np.isclose(mcc(h, z), 1.0)


def test_rotation_inside_a_block_keeps_r2_but_lowers_mcc():
    rng = np.random.default_rng(2)
    z = rng.uniform(-1, 1, size=(4000, 6))
    c = np.cos(np.pi / 4)
    rot = np.eye(6)
    rot[:2, :2] = rot[2:4, 2:4] = [[c, -c], [c, c]]  # two blocks rotated by 45 degrees
    h = z @ rot.T
    assert np.allclose(r2_per_dim(h, z, h, z), 1.0)
    assert mcc(h, z) < 0.85  # (4 cos 45 + 2) / 6 = 0.80
    rot3 = np.eye(6)
    rot3[:3, :3] = ortho_group.rvs(3, random_state=3)
    assert mcc(z @ rot3.T, z) < 1 - 1e-3


def test_r2_groups_and_held_out_protocol():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(1000, 4))
    h = np.c_[z[:, :2], rng.normal(size=(1000, 2))]  # style dims lost
    r2 = r2_per_dim(h, z, h, z)
    groups = r2_by_group(r2, np.array([True, True, False, False]))
    assert groups["r2_content"] > 0.99 and groups["r2_style"] < 0.05
    z2 = rng.normal(size=(1000, 4))
    h2 = np.c_[z2[:, :2], rng.normal(size=(1000, 2))]
    held = r2_per_dim(h, z, h2, z2)
    assert held[2:].mean() < r2[2:].mean()  # same-sample R^2 overfits noise features, held-out does not


def test_hungarian_match_recovers_the_permutation():
    from aninfonce.metrics import hungarian_match

    rng = np.random.default_rng(5)
    z = rng.normal(size=(2000, 5))
    perm = np.array([2, 4, 0, 1, 3])
    h = z[:, perm] * np.array([1, -1, 1, 1, -1])  # feature i encodes latent perm[i]
    m, match = hungarian_match(h, z)
    assert np.isclose(m, 1.0) and match.tolist() == perm.tolist()


def test_block_rows_tell_a_block_orthogonal_code_from_a_mixed_one():
    """A rotation inside each block (then a permutation) scores own ~ 1 and
    other ~ 0; a rotation across blocks, linearly just as complete, does not."""
    from aninfonce.metrics import identifiability_rows

    rng = np.random.default_rng(0)
    z = rng.normal(size=(4096, 10))
    content = np.arange(10) < 5
    rot = lambda k: np.linalg.qr(rng.normal(size=(k, k)))[0]  # noqa: E731
    block = np.concatenate([z[:, :5] @ rot(5), z[:, 5:] @ rot(5)], 1)[:, rng.permutation(10)]
    mixed = z @ rot(10)

    def blocks(h):
        return {r["metric"]: r["value"] for r in identifiability_rows(h, z, h, z, content)
                if r["metric"].startswith("r2_block/") and r["protocol"] == "held-out"}

    b, m = blocks(block), blocks(mixed)
    assert set(b) == {f"r2_block/{g}/{s}" for g in ("content", "style") for s in ("own", "other")}
    assert min(b["r2_block/content/own"], b["r2_block/style/own"]) > 0.99
    assert max(b["r2_block/content/other"], b["r2_block/style/other"]) < 0.01
    assert max(m["r2_block/content/own"], m["r2_block/style/own"]) < 0.8
    assert min(m["r2_block/content/other"], m["r2_block/style/other"]) > 0.2
