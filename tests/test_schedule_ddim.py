"""Schedule / DDIM parity with the upstream fixtures, plus unit tests of the sigma reparametrisation.

Fixture: ``../shared/reference/fixtures/sampler_ddim_vc2_tiny.*`` (README §3, §5.5).
"""
from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

import tests.pack
from tests.parity import sampler_fixtures
from videocrafter_suite.models.sampling import ddim as D
from videocrafter_suite.models.sampling import schedule as S

FIXTURE = "sampler_ddim_vc2_tiny"
CONFIG = tests.pack.REFERENCE_DIR / "fixtures" / f"{FIXTURE}.config.json"


@pytest.fixture(scope="module")
def tensors() -> dict:
    if not CONFIG.is_file():
        pytest.fail(f"missing fixture {CONFIG}")
    return load_file(str(CONFIG.with_name(f"{FIXTURE}.safetensors")))


@pytest.fixture(scope="module")
def results():
    return sampler_fixtures.check(CONFIG)


# ------------------------------------------------------------------------------------------ fixture parity
def test_checker_recognises_only_sampler_fixtures():
    for cfg in sorted(CONFIG.parent.glob("*.config.json")):
        assert sampler_fixtures.matches(json.loads(cfg.read_text())) == cfg.name.startswith("sampler_ddim"), cfg.name


def test_schedule_buffers_exact(tensors):
    buffers = S.VC2_512.buffers()
    for key in [k for k in tensors if k.startswith("schedule/") and k.split("/")[1] in buffers]:
        exp = tensors[key]
        act = buffers[key.split("/")[1]]
        assert act.dtype == exp.dtype and torch.equal(act, exp), key
    assert torch.equal(S.linear_betas(), tensors["schedule/betas_f64_numpy"])
    assert torch.equal(torch.from_numpy(S.alphas_cumprod_f64(S.linear_betas())),
                       tensors["schedule/alphas_cumprod_f64_numpy"])
    assert torch.equal(S.alphas_cumprod(S.linear_betas()), tensors["schedule/alphas_cumprod"])
    assert torch.equal(S.scale_array(0.7), tensors["schedule/scale_arr"])
    assert torch.equal(S.scale_array(0.3, fix_scale_bug=True), tensors["schedule/scale_arr_vc1_1024"])


def test_scale_array_lengths():
    assert S.VC2_512.scale_arr.shape == (1400,) and S.VC1_I2V_512.scale_arr.shape == (1400,)
    assert S.VC1_1024.scale_arr.shape == (1000,)
    assert S.VC1_512.scale_arr is None
    assert S.VC2_512.scale_arr.dtype == torch.float32
    assert float(S.VC2_512.scale_arr[0]) == 1.0 and float(S.VC2_512.scale_arr[399]) == pytest.approx(0.7)


def test_ddim_arrays_exact(tensors):
    groups = {}
    for key in tensors:
        m = re.match(r"ddim_([^/]+)/S(\d+)/(.+)$", key)
        if m:
            groups.setdefault((m.group(1), int(m.group(2))), []).append((m.group(3), key))
    assert {s for _, s in groups} == {10, 25, 50}
    for (tag, n), names in groups.items():
        for eta in (0.0, 1.0):
            arr = D.make_ddim_arrays(S.PRESETS[tag], n, eta)
            for name, key in names:
                if name.startswith("ddim_sigmas_eta"):
                    if float(name[-1]) != eta:
                        continue
                    act = arr.sigmas
                else:
                    act = getattr(arr, sampler_fixtures._DDIM_NAMES[name])
                assert act.dtype == tensors[key].dtype and torch.equal(act, tensors[key]), (key, eta)


def test_ddim_timesteps_and_last_alpha():
    assert D.ddim_timesteps(50)[:3].tolist() == [1, 21, 41] and int(D.ddim_timesteps(50)[-1]) == 981
    assert D.ddim_timesteps(10).tolist() == list(range(1, 1000, 100))
    arr = D.make_ddim_arrays(S.VC2_512, 10, 1.0)
    assert float(arr.alphas_prev[0]) == float(S.VC2_512.alphas_cumprod[0]) == pytest.approx(0.99915)
    with pytest.raises(ValueError):
        D.ddim_timesteps(3)  # upstream would index alphas_cumprod[1000]


@pytest.mark.parametrize("tag", ["eta0", "eta1", "eta0_f64", "eta1_f64"])
def test_step_recompute(tensors, tag):
    pre = f"run_{tag}/"
    arr = D.make_ddim_arrays(S.VC2_512, 10, 1.0 if "eta1" in tag else 0.0,
                             buffer_dtype=torch.float64 if "f64" in tag else torch.float32)
    for i in range(10):
        x = tensors[pre + "x_T"] if i == 0 else tensors[pre + "x_prev_per_step"][i - 1]
        e = D.cfg_eps(tensors[pre + "e_t_cond_per_step"][i], tensors[pre + "e_t_uncond_per_step"][i], 12.0)
        x_prev, pred = D.ddim_step(x, e, int(tensors[pre + "index_per_step"][i]), arr, tensors[pre + "noise_per_step"][i])
        exp_x, exp_p = tensors[pre + "x_prev_per_step"][i], tensors[pre + "pred_x0_per_step"][i]
        assert x_prev.dtype == exp_x.dtype
        assert (x_prev - exp_x).abs().max() <= 1e-6 * exp_x.abs().max(), i
        assert (pred - exp_p).abs().max() <= 1e-6 * exp_p.abs().max(), i
        if tag == "eta0" and _platform_sqrt_is_exact(arr, int(tensors[pre + "index_per_step"][i])):
            # Same arithmetic as the original, and this CPU's torch.sqrt rounds like the one the fixture was made
            # on (correctly): bit-exact. Where torch's vectorised CPU sqrt is 1 ulp off (seen on AMD EPYC with
            # torch 2.14), the original run on this CPU would be too; the 1e-6 bound above then covers it.
            assert torch.equal(x_prev, exp_x) and torch.equal(pred, exp_p), i


def _platform_sqrt_is_exact(arrays, index) -> bool:
    """Does torch's float32 sqrt give the correctly rounded coefficients of this DDIM step here?"""
    import numpy as np

    values = [float(arrays.alphas[index]), float(arrays.alphas_prev[index]),
              float(np.float32(1.0) - np.float32(float(arrays.alphas_prev[index])))]
    torch_sqrt = torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1, 1, 1).sqrt().flatten()
    exact = np.sqrt(np.array(values, dtype=np.float32))
    return bool((torch_sqrt.numpy() == exact).all())


@pytest.mark.parametrize("tag", ["eta0", "eta1"])
def test_original_order_noise_matches_fixture(tensors, tag):
    pre = f"run_{tag}/"
    gen = D.OriginalOrderNoise(123, tensors[pre + "x_T"].shape)
    assert torch.equal(gen.x_T(), tensors[pre + "x_T"])
    for i in range(10):
        assert torch.equal(gen(i, tensors[pre + "x_T"].shape), tensors[pre + "noise_per_step"][i])


def test_checker_results(results):
    failed = [c.line() for c in results if not c.passed]
    assert not failed, "\n".join(failed)
    assert len(results) >= 70


def test_end_to_end_with_unet(results):
    e2e = [c for c in results if "/e2e/final_latent" in c.name]
    assert len(e2e) == 2 and all(c.passed for c in e2e), [c.line() for c in e2e]


# ------------------------------------------------------------------------------------------ unit tests
@pytest.mark.parametrize("name", sorted(S.PRESETS))
def test_sigmas_monotonic(name):
    sig = S.PRESETS[name].sigmas()
    assert sig.shape == (1000,) and sig.dtype == torch.float64
    assert bool((sig[1:] > sig[:-1]).all())


def test_vc1_512_sigmas_are_plain_sd_sigmas():
    # ComfyUI's ModelSamplingDiscrete for SD (comfy/model_sampling.py): float64 cumprod, float32 buffer
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    acp = torch.cumprod(1. - betas, dim=0)
    sd = ((1 - acp) / acp) ** 0.5
    assert torch.equal(S.VC1_512.sigmas(f64_cumprod=True), sd)
    assert torch.equal(S.VC1_512.sigmas(f64_cumprod=True).float(), sd.float())
    # default: the same formula on the float32 alphas_cumprod buffer (what upstream's DDIM reads)
    acp32 = S.VC1_512.alphas_cumprod.double()
    assert torch.equal(S.VC1_512.sigmas(), ((1 - acp32) / acp32) ** 0.5)
    assert ((S.VC1_512.sigmas() - sd).abs() / sd).max() < 4e-5


def test_scaled_sigmas_divide_by_scale():
    ratio = S.VC2_512.sigmas() / S.VC1_512.sigmas()
    assert torch.allclose(ratio, 1 / S.VC2_512.scale_arr[:1000].double(), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(S.PRESETS))
def test_x_y_round_trip(name):
    sched = S.PRESETS[name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 2, 5, 5, generator=g, dtype=torch.float64)
    for t in (0, 417, 999, 12.25, torch.tensor(350.5), torch.tensor([1.0, 500.75, 998.0])):
        assert torch.allclose(sched.y_from_x(sched.x_from_y(x, t), t), x, rtol=1e-14, atol=0)
    # integer t: f = sqrt(acp_t) * s_t; fractional t: linear interpolation of f
    acp = sched.alphas_cumprod.double()
    s = sched.scale_arr[:1000].double() if sched.use_scale else torch.ones(1000, dtype=torch.float64)
    f = acp.sqrt() * s
    assert float(sched.signal_scale(421)) == pytest.approx(float(f[421]), rel=1e-15)
    assert float(sched.signal_scale(421.25)) == pytest.approx(float(0.75 * f[421] + 0.25 * f[422]), rel=1e-14)
    f64 = torch.cumprod(1. - S.linear_betas(), dim=0).sqrt() * s
    assert float(sched.signal_scale(421, f64_cumprod=True)) == pytest.approx(float(f64[421]), rel=1e-15)
    y = torch.ones(3, 1, 1)
    xb = sched.x_from_y(y, torch.tensor([0.0, 10.0, 999.0]))
    assert torch.allclose(xb.flatten(), f[[0, 10, 999]].float())


def test_y_space_is_noise_plus_data():
    """q_sample with use_scale (ddpm3d.py:412-417) maps to y = x0 + sigma' * eps."""
    sched = S.VC2_512
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 8, generator=g, dtype=torch.float64), torch.randn(2, 8, generator=g, dtype=torch.float64)
    for t in (0, 250, 700, 999):
        a, s = sched.alphas_cumprod.double()[t], sched.scale_arr.double()[t]
        x_t = a.sqrt() * s * x0 + (1 - a).sqrt() * eps
        assert torch.allclose(sched.y_from_x(x_t, t), x0 + sched.sigmas()[t] * eps, rtol=1e-12, atol=1e-12)
        a64 = torch.cumprod(1. - S.linear_betas(), dim=0)[t]
        x_t = a64.sqrt() * s * x0 + (1 - a64).sqrt() * eps
        assert torch.allclose(sched.y_from_x(x_t, t, f64_cumprod=True), x0 + sched.sigmas(f64_cumprod=True)[t] * eps,
                              rtol=1e-12, atol=1e-12)


def test_sigma_t_inverse():
    sched = S.VC2_512
    for t in (0.0, 1.0, 37.4, 400.5, 998.9, 999.0):
        assert float(sched.t_from_sigma(sched.sigma_at(t))) == pytest.approx(t, abs=1e-9)
    assert torch.allclose(sched.sigma_at(torch.arange(1000)), sched.sigmas(), rtol=1e-14)


def test_ddim_eta0_is_euler_in_y_space():
    """DDIM eta=0 (ddim.py:270-289) == y_prev = y + (sigma'_prev - sigma'_t) * eps (computed in float64)."""
    sched = S.VC2_512
    arr = D.make_ddim_arrays(sched, 10, 0.0, buffer_dtype=torch.float64)  # float64 coefficients
    sig = sched.sigmas()  # upstream's DDIM reads the float32 buffers
    g = torch.Generator().manual_seed(2)
    x, e = torch.randn(2, 4, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(2, 4, 3, 4, 4, generator=g,
                                                                                     dtype=torch.float64)
    ts = arr.timesteps.tolist()
    for k in range(arr.num_steps):
        t, t_prev = ts[k], (ts[k - 1] if k > 0 else 0)
        x_prev, pred = D.ddim_step(x, e, k, arr, None, coef_dtype=torch.float64)
        y = sched.y_from_x(x, t)
        assert torch.allclose(pred, y - sig[t] * e, rtol=1e-10, atol=1e-10)
        assert torch.allclose(sched.y_from_x(x_prev, t_prev), y + (sig[t_prev] - sig[t]) * e,
                              rtol=1e-10, atol=1e-10)


def test_original_order_noise_equals_global_generator():
    shape = (2, 4, 3, 5, 6)
    for seed in (0, 123, 20230211):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ref = [torch.randn(shape) for _ in range(6)]
        gen = D.OriginalOrderNoise(seed, shape)
        assert torch.equal(gen.x_T(), ref[0])
        assert all(torch.equal(gen(i, shape), ref[i + 1]) for i in range(5))
    gen = D.OriginalOrderNoise(7, shape)
    late = gen(3, shape)                       # out of order: draws are cached / replayed
    assert torch.equal(gen.x_T(), D.OriginalOrderNoise(7, shape).draw(0))
    assert torch.equal(late, D.OriginalOrderNoise(7, shape).draw(4))
    state = torch.random.get_rng_state()
    D.OriginalOrderNoise(1, shape).x_T()
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is untouched
    with pytest.raises(ValueError):
        gen(0, (1, 2))


def test_ddim_eta0_deterministic_wrt_noise():
    arr = D.make_ddim_arrays(S.VC2_512, 10, 0.0)
    x_T = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(3))

    def eps_fn(x, t, index):
        assert t.dtype == torch.long and t.shape == (1,) and int(t[0]) == int(arr.timesteps[index])
        return torch.tanh(x) * (1 + index / 10)

    runs = [D.ddim_sample(eps_fn, x_T, arr, D.OriginalOrderNoise(s, x_T.shape)) for s in (1, 2)]
    runs.append(D.ddim_sample(eps_fn, x_T, arr, None))
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    arr1 = D.make_ddim_arrays(S.VC2_512, 10, 1.0)
    a, b = (D.ddim_sample(eps_fn, x_T, arr1, D.OriginalOrderNoise(s, x_T.shape)) for s in (1, 2))
    assert not torch.equal(a, b)


def test_ddim_sample_callback_and_order():
    arr = D.make_ddim_arrays(S.VC1_512, 5, 1.0)
    assert arr.scale_arr is None
    seen = []
    x_T = torch.zeros(1, 4, 1, 2, 2)
    D.ddim_sample(lambda x, t, i: torch.zeros_like(x), x_T, arr, lambda i, shape: torch.ones(shape),
                  callback=lambda i, index, x, p: seen.append((i, index)))
    assert seen == [(i, 4 - i) for i in range(5)]


def test_cfg_eps():
    c, u = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    assert torch.equal(D.cfg_eps(c, u, 12.0), u + 12.0 * (c - u))
    assert torch.equal(D.cfg_eps(c, u, 1.0), c)
