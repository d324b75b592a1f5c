"""The README's quickstarts are executed, so they cannot rot."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(tag: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- {tag}:.*?-->\s*```python\n(.*?)```", text, re.S)
    assert m, f"README block {tag} not found"
    return m.group(1)


@pytest.mark.parametrize("tag", ["quickstart-core", "quickstart-numpyro", "quickstart-pymc"])
def test_quickstart_runs_and_is_short(tag):
    code = _block(tag)
    assert len(code.strip().splitlines()) <= 15
    namespace: dict = {}
    if tag == "quickstart-pymc":
        # As in a fresh process: PyTensor's JAX dispatch enables x64 for float64 models.
        import jax

        with jax.enable_x64(True):
            exec(compile(code, f"README:{tag}", "exec"), namespace)
    else:
        exec(compile(code, f"README:{tag}", "exec"), namespace)
    if tag == "quickstart-core":
        import numpy as np

        assert abs(float(namespace["loc"]) - 1.0) < 0.05
        assert np.isfinite(namespace["g"])
    elif tag == "quickstart-numpyro":
        mu = namespace["mcmc"].get_samples()["mu"]
        assert mu.shape == (600,)
    else:
        mu = namespace["idata"].posterior["mu"]
        assert mu.shape == (2, 300)


def test_checking_a_circular_model_runs():
    code = _block("checking-circular")
    assert len(code.strip().splitlines()) <= 15
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict = {}
    exec(compile(code, "README:checking-circular", "exec"), namespace)
    table, comparison = namespace["table"], namespace["comparison"]
    assert table.attrs["circular"] == ["mu"]
    assert (table.loc[["mu[0]", "mu[1]"], "r_hat"] < 1.05).all()
    # the mixture fits the sharply peaked wind data better, by several standard errors
    assert comparison.index[0] == "mixture"
    assert comparison.loc["one", "elpd_diff"] > 2 * comparison.loc["one", "dse"]
    assert namespace["ax"].name == "polar"
    plt.close("all")


def test_readme_test_command_is_what_ci_runs():
    """.ci/run runs the README's test command (after its venv steps) line by line, in
    order, with the linters between the install and pytest."""
    ci = [line.strip() for line in (README.parent / ".ci" / "run").read_text().splitlines()]
    readme = README.read_text()
    block = readme.split("Run the tests", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    steps = [s.strip() for s in block.strip().split("&&")]
    assert steps[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"]
    install, test = steps[2:]
    assert install == 'python -m pip install -e ".[test,all]"' and test == "python -m pytest -q"
    order = [ci.index(cmd) for cmd in (install, "ruff check .", "ruff format --check .", test)]
    assert order == sorted(order), order
