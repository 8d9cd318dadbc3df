"""The batched photometric half of the augmentations (data.device_augment):
each op equals torchvision's per image, a whole view equals the per-image
loader path up to uint8 rounding, on images read from files in the real
formats, with the same recorded parameters; and a SimCLR run trains and
evaluates with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from aninfonce.data import augment as A
from aninfonce.data import device_augment as DA
from aninfonce.data import images as D
from aninfonce.data import synthetic_files as S
from aninfonce.data import views as V
from aninfonce.runner import RunnerContext
from aninfonce.trainers.simclr import ImageSSLSpec, train_imagessl
from aninfonce.trainers.simclr.distributed import image_ssl_loss
from aninfonce.trainers.simclr.model import build_model

# per-op agreement with torchvision on float images, in 0..255 units: float32 rounding
# (largest measured: hue 2.4e-4, the others <= 6.1e-5)
OP_ATOL = 2e-3
# whole views vs the per-image path, which rounds down to uint8 after every op. Measured on
# 64 views of noise images (CIFAR10 and ImageNet presets): max 5.1 / 6.1, mean 1.25 / 1.30 (0..255).
# Truncation after up to 6 ops (crop, 4 jitter ops, grayscale or blur), each up to 1 unit and
# scaled by later contrast / saturation factors <= 1.8, bounds the max near 10; the mean is the
# ~0.5-a-step downward bias of truncation.
VIEW_MAX, VIEW_MEAN = 10.0, 2.0


@pytest.fixture(scope="module")
def noise():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 3, 20, 20, generator=g), torch.rand(6, generator=g)


@pytest.mark.parametrize("op", ["brightness", "contrast", "saturation"])
def test_each_jitter_op_is_torchvisions_with_a_factor_per_view(noise, op):
    x, u = noise
    f = 0.2 + 1.6 * u
    ref = torch.stack([getattr(TF, f"adjust_{op}")(x[i], float(f[i])) for i in range(len(x))]) * 255
    assert torch.allclose(DA.JITTER[op](x * 255, f), ref, atol=OP_ATOL, rtol=0)


def test_hue_grayscale_and_blur_are_torchvisions(noise):
    x, u = noise
    shift = u - 0.5
    ref = torch.stack([TF.adjust_hue(x[i], float(shift[i])) for i in range(len(x))]) * 255
    assert torch.allclose(DA.hue(x * 255, shift), ref, atol=OP_ATOL, rtol=0)
    ref = torch.stack([TF.rgb_to_grayscale(x[i], num_output_channels=3) for i in range(len(x))]) * 255
    assert torch.allclose(DA.grayscale(x * 255), ref, atol=OP_ATOL, rtol=0)
    sigma = 0.1 + 1.9 * u
    ref = torch.stack([TF.gaussian_blur(x[i], [5, 5], [float(sigma[i])] * 2) for i in range(len(x))]) * 255
    assert torch.allclose(DA.gaussian_blur(x * 255, sigma, 5), ref, atol=OP_ATOL, rtol=0)


def test_a_view_without_photometric_ops_is_its_crop():
    crops = (torch.rand(4, 3, 8, 8) * 255).to(torch.uint8)
    p = np.zeros((4, len(A.PARAM_NAMES)))
    p[:, [A.P[f"order_{op}"] for op in A.JITTER_OPS]] = -1
    assert torch.equal(DA.photometric(crops, torch.from_numpy(p), A.augment_config("imagenet")), crops.float())
    p[1, A.P["flip"]] = 1
    out = DA.photometric(crops, torch.from_numpy(p), A.augment_config("imagenet"))
    assert torch.equal(out[1], crops[1].flip(-1).float()) and torch.equal(out[0], crops[0].float())


def _sources(tmp_path, mnist_root) -> dict[str, D.ImageSource]:
    S.write_cifar10_files(tmp_path, per_batch=16, n_test=8, seed=0)
    S.write_imagefolder_tree(tmp_path, n_classes=2, per_class=16, n_val=2, size=64, seed=0)
    return {"cifar10": D.load_dataset("cifar10", tmp_path, True, synthetic=True),
            "imagenet": D.load_dataset("imagenet", tmp_path, True, synthetic=True),
            "mnist": D.load_dataset("mnist", mnist_root, True).subset(64)}


@pytest.mark.parametrize("preset", ["cifar10", "imagenet", "mnist"])
def test_views_equal_the_per_image_path_up_to_uint8_rounding(tmp_path, mnist_root, preset):
    src = _sources(tmp_path, mnist_root)[preset]
    cfg = A.augment_config(preset, 48 if preset == "imagenet" else None)
    per_image = V.TwoViewDataset(src, cfg, seed=5)
    crops = V.TwoViewDataset(src, cfg, seed=5, crop_only=True)
    per_image.epoch = crops.epoch = 1
    items = [(per_image[i], crops[i]) for i in range(min(32, len(src)))]
    ref = torch.stack([a[k] for a, _ in items for k in (0, 1)]).float()
    params = torch.stack([b[k] for _, b in items for k in (2, 3)])
    # the same parameters were drawn, and the crops are the per-image path's first step
    assert torch.equal(params, torch.stack([a[k] for a, _ in items for k in (2, 3)]))
    assert all(torch.equal(b[0], A.crop_view(src.image(i), b[2].numpy(), cfg.size)) for i, (_, b) in enumerate(items))
    out = DA.photometric(torch.stack([b[k] for _, b in items for k in (0, 1)]), params, cfg)
    assert out.shape == ref.shape and out.dtype == torch.float32
    diff = (out - ref).abs()
    assert diff.max() <= VIEW_MAX and diff.mean() <= VIEW_MEAN, (float(diff.max()), float(diff.mean()))
    # and the ops did something: the views are not their crops
    assert (out - torch.stack([b[k] for _, b in items for k in (0, 1)]).float()).abs().mean() > 5 * VIEW_MEAN


def test_the_loss_sees_the_same_views(tmp_path):
    """The contrastive loss of an untrained SimCLR net on a batch of device views is the
    loss on the per-image views up to rounding: measured |difference| 0.0006 at 32 pairs,
    against 0.59 for a batch with other augmentation draws of the same images."""
    S.write_cifar10_files(tmp_path, per_batch=8, n_test=8, seed=0)
    src = D.load_dataset("cifar10", tmp_path, True, synthetic=True)
    spec = ImageSSLSpec(experiment="t", arch="smallcnn", width=4, image_size=16, proj_hidden=16, proj_dim=4)
    torch.manual_seed(0)
    model = build_model(spec, 3).train()
    cfg = spec.augment_config()
    n = 32

    def batch(ds, fields=(0, 1)) -> torch.Tensor:
        return torch.cat([torch.stack([ds[i][k] for i in range(n)]) for k in fields])

    def loss(x: torch.Tensor) -> float:
        with torch.no_grad():
            _, z = model(x)
            return float(image_ssl_loss(model, z[:n], z[n:]))

    crops = V.TwoViewDataset(src, cfg, seed=5, crop_only=True)
    ref = loss(batch(V.TwoViewDataset(src, cfg, seed=5)).float())
    dev = loss(DA.photometric(batch(crops), batch(crops, (2, 3)), cfg))
    other = loss(batch(V.TwoViewDataset(src, cfg, seed=6)).float())
    assert abs(dev - ref) < 0.1 * abs(other - ref), (ref, dev, other)


@pytest.mark.slow
def test_a_run_with_device_augmentation_trains_and_evaluates(tmp_path):
    base = dict(experiment="t", dataset="cifar10", synthetic_files=True, arch="smallcnn", width=4,
                augment="cifar10", image_size=16, epochs=1, batch=8, steps_per_epoch_limit=2, warmup_epochs=0.0,
                proj_hidden=16, proj_dim=4, probe_iters=5, knn_k=3, recovery_views=16, log_every=1,
                num_workers=0, train_limit=40)
    rows = {}
    for where in ("loader", "device"):
        spec = ImageSSLSpec(**base, augment_on=where)
        ctx = RunnerContext(device=torch.device("cpu"), checkpoint_path=tmp_path / where / "ck.pt",
                            artifact_dir=tmp_path / "art", data_root=None, show_progress=False)
        rows[where] = {(r["step"], r["metric"]): r["value"] for r in train_imagessl(spec, ctx)}
    # every row of the per-image run, finite (a net this small at batch 8 moves its loss by ~0.1
    # for 1/255 of input noise, so the numbers themselves are compared in the test above)
    assert rows["loader"].keys() == rows["device"].keys()
    assert all(np.isfinite(v) for v in rows["device"].values())
    assert rows["device"][(1, "loss_train")] != rows["loader"][(1, "loss_train")]
    assert ImageSSLSpec(**base).key != ImageSSLSpec(**base, augment_on="device").key
    with pytest.raises(ValueError, match="augment_on"):
        ImageSSLSpec(**base, augment_on="gpu")
