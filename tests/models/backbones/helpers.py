"""Checks shared by the backbone tests."""
import pytest
import torch


def randomize_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, so eval-mode norms matter in comparisons."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


def _leaf_calls(model):
    """A counter of leaf-module forward calls (and the hooks, to remove)."""
    calls = [0]

    def count(*_):
        calls[0] += 1

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    return calls, hooks


def assert_with_cp_matches_plain(cls, **kwargs):
    """``with_cp=True`` checkpoints (the backward pass runs parts of the forward again, which the
    plain network never does) and gives the same outputs and the same gradients as the plain network."""
    torch.manual_seed(0)
    plain, ckpt = cls(**kwargs), cls(with_cp=True, **kwargs)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    recomputed = {}
    for name, model in (('plain', plain), ('with_cp', ckpt)):
        calls, hooks = _leaf_calls(model)
        outs = model(x)
        forward_calls = calls[0]
        sum(o.mean() for o in outs).backward()
        recomputed[name] = calls[0] - forward_calls
        for hook in hooks:
            hook.remove()
        if name == 'plain':
            outs_p = outs
        else:
            for a, b in zip(outs_p, outs, strict=True):
                torch.testing.assert_close(a, b)
    assert recomputed['plain'] == 0 and recomputed['with_cp'] > 0, recomputed
    for (name, p1), p2 in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad, msg=name)


def assert_other_arch_rejected(cls, ckpt_arch, model_arch, tmp_path):
    """Loading a checkpoint of ``ckpt_arch`` into ``model_arch`` fails naming the file and the arch."""
    path = tmp_path / f'{cls.__name__.lower()}{ckpt_arch}.pth'
    torch.save(cls(arch=ckpt_arch).state_dict(), path)
    model = cls(arch=model_arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=rf"{path.name} does not fit {cls.__name__} \(arch '{model_arch}'\)"):
        model.init_weights()


def assert_output_strides(model, strides):
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [64 // o.shape[-1] for o in outs] == list(strides) and model.out_strides == tuple(strides)
    # mmcv's RoIAlign reads dense NCHW memory: channels-last outputs give detectors garbage RoI features.
    assert all(o.is_contiguous() for o in outs)


def assert_matches_reference(cls, arch, ref, reference_features, head_prefix, tmp_path):
    """``ref``'s checkpoint loads through ``init_cfg``; the feature maps then match ``reference_features(x)``
    (atol 1e-5) and the backbone has exactly the reference's parameters minus its classifier."""
    path = tmp_path / f'{cls.__name__.lower()}{arch}.pth'
    torch.save(ref.state_dict(), path)
    model = cls(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), reference_features(x)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    head = sum(p.numel() for n, p in ref.named_parameters() if n.startswith(head_prefix))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) - head
    return model
