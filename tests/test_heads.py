"""The directional head: shapes, inference mode, and learning through its samples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vm_ppl import directional_head


def test_shapes_and_inference_mean():
    out = directional_head(jnp.array([[1.0, 0.0, 0.0], [0.0, -2.0, 3.0]]))
    np.testing.assert_allclose(out.loc, [0.0, -np.pi / 2], atol=1e-6)
    np.testing.assert_allclose(out.angle, out.loc)
    assert out.concentration.shape == (2,) and np.all(out.concentration > 0)
    drawn = directional_head(jnp.zeros((4, 5, 3)) + 1.0, jax.random.key(0), temperature=2.0)
    assert drawn.angle.shape == (4, 5)
    with pytest.raises(ValueError, match="last axis"):
        directional_head(jnp.zeros((2, 2)))


def test_temperature_spreads_draws():
    x = jnp.tile(jnp.array([1.0, 0.0, 3.0]), (20000, 1))
    cold = directional_head(x, jax.random.key(1), temperature=0.5).angle
    hot = directional_head(x, jax.random.key(1), temperature=4.0).angle
    r = lambda a: float(jnp.abs(jnp.mean(jnp.exp(1j * a))))  # noqa: E731
    assert r(cold) > r(hot)


def test_trains_direction_and_concentration_through_samples():
    """A linear head learns y = x + 1 (mod 2 pi) from a loss of its *sampled* angles:
    both the direction weights and the concentration receive gradients."""
    rng = np.random.default_rng(0)
    feats = jnp.asarray(rng.uniform(-np.pi, np.pi, 256), jnp.float32)
    target = feats + 1.0
    inputs = jnp.stack([jnp.cos(feats), jnp.sin(feats), jnp.ones_like(feats)], -1)

    def loss(w, key):
        out = directional_head(inputs @ w, key)
        return jnp.mean(1.0 - jnp.cos(out.angle - target))

    w = jnp.zeros((3, 3)).at[0, 0].set(0.1)
    grad = jax.jit(jax.value_and_grad(loss))
    key = jax.random.key(2)
    first = None
    for i in range(300):
        val, g = grad(w, jax.random.fold_in(key, i))
        assert np.all(np.isfinite(g))
        w = w - 0.5 * g
        first = val if first is None else first
    assert float(val) < 0.1 < float(first)
    out = directional_head(inputs @ w)
    err = np.angle(np.exp(1j * (np.asarray(out.loc) - np.asarray(target))))
    assert np.max(np.abs(err)) < 0.2
    assert float(jnp.mean(out.concentration)) > 5.0  # learned to be confident
