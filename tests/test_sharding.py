"""Several devices: each call evaluates one tile per device over a 1-D mesh (jax.sharding).

Run in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (the
device count is fixed when JAX starts): the sharded blocked sweep equals the
single-device in-memory sweep bit for bit, and its outputs really live on both devices.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import numpy as np, jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    from frontier_jax import chunked, config, sweep

    assert len(jax.devices()) == 2, jax.devices()
    fixed = {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB", "tp_decode": 4, "request_tokens": 1360,
             "c_prefill": 0.33, "c_decode": 0.91, "decode_batch": 128}
    for dtype in ("float64", "float32"):
        spec = config.from_dict({"sweep": {"mode": "calibrated", "dtype": dtype},
                                 "axes": {"alpha": {"start": 0.2, "stop": 0.97, "num": 23},
                                          "kv_bandwidth_gbps": [5.0, 50.0, 500.0],
                                          "slo": ["paper-tight", "paper-mid", "paper-relaxed"]},
                                 "fixed": fixed})
        want = sweep.run(spec)  # one device, one tile
        for max_points in (None, 40, 7):
            timings = {}
            got = chunked.run(spec, max_points=max_points, timings=timings)
            assert timings["devices"] == 2
            for k in want:
                assert got[k].dtype == want[k].dtype, k
                np.testing.assert_array_equal(got[k], want[k], err_msg=f"{dtype} {max_points} {k}")

    tiles = chunked.Tiles(chunked.make_payload(spec, ("cpm_pd",)))
    out = tiles.dispatch(0)["cpm_pd"]
    assert out.shape == (2 * tiles.tile,)
    assert {s.device for s in out.addressable_shards} == set(jax.devices())
    assert out.sharding.spec == jax.sharding.PartitionSpec("points")
    print("OK")
""")


@pytest.mark.slow
def test_two_devices_equal_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.strip().endswith("OK")
