"""Active testing (Kossen, Farquhar, Gal & Rainforth, ICML 2021): is LURE unbiased, and does it
beat uniform test sampling?

Two pools of N = 500 unlabelled test points, each with a fixed model whose true risk (mean loss
over the pool) we try to estimate from M labels:

1. **GP regression** (squared error): a function drawn from a GP with an RBF kernel on
   ``[0, 1]``, noisy targets; the model is the GP posterior mean given a few training points
   and the surrogate is that GP posterior ``(mean, var)``, so the proposal is its predictive
   variance.
2. **digits** (cross-entropy): a logistic-regression model (scikit-learn) trained on a few
   labelled digits; the surrogate is a small deep ensemble of MLPs
   (:func:`jaxal.posterior.ensemble`) trained on the same points.

For every M, :func:`jaxal.active_testing.repeat` runs ``repeats`` independent draws under
``vmap`` and returns the uniform, naive-active, LURE and PURE estimates; we report their bias
(with its standard error over repeats), their MSE, and the MSE ratio LURE / uniform.
The proposal is mixed with the uniform (``mix_uniform``), as the paper recommends.

Run: ``python experiments/active_testing.py --out results/active_testing`` (``--quick`` for a
smoke run). Writes ``results.json`` and ``mse_vs_m.png``.
"""

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import typer
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression

import jaxal
from jaxal import active_testing, data, posterior

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

ESTIMATORS = ("uniform", "naive", "lure", "pure")
PAPER = (
    "Kossen et al. (2021), Fig. 2-4: LURE stays unbiased while the naive mean of actively "
    "chosen losses is biased, and active testing reaches a given MSE with several times fewer "
    "labels than uniform sampling (qualitative; no single number to compare)."
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Experiment settings; the defaults are the full run, :data:`QUICK` the smoke run."""

    repeats: int = 2000
    test_sizes: tuple[int, ...] = (10, 25, 50, 100)
    mix_uniform: float = 0.15
    pool_size: int = 500
    gp_train: int = 8
    gp_lengthscale: float = 0.1
    gp_noise_std: float = 0.1
    digits_train: int = 100
    members: int = 5
    hidden: int = 32
    steps: int = 300
    seed: int = 0


QUICK = Config(repeats=300, test_sizes=(10, 50), members=3, steps=100)


# ---- the two pools: losses of the model and proposal scores from the surrogate -------------


def _rbf(a: np.ndarray, b: np.ndarray, lengthscale: float) -> np.ndarray:
    return np.exp(-0.5 * (a[:, None] - b[None, :]) ** 2 / lengthscale**2)


def gp_regression(config: Config) -> tuple[jax.Array, jax.Array]:
    """``(losses [N], proposal_scores [N])`` of the GP-regression pool.

    ``f ~ GP(0, k_RBF)`` on ``T`` training and ``N`` pool inputs uniform on ``[0, 1]``,
    ``y = f + noise``; the model predicts the GP posterior mean given the training points
    (exact hyperparameters), the loss is ``(y - mu)^2`` and the surrogate is the same GP
    posterior ``(mu, s2 + noise^2)``, so the proposal is its predictive variance.
    """
    rng = np.random.default_rng(config.seed)
    T, N, ell, sigma = config.gp_train, config.pool_size, config.gp_lengthscale, config.gp_noise_std
    x = rng.uniform(0.0, 1.0, T + N)
    gram = _rbf(x, x, ell) + 1e-6 * np.eye(T + N)
    y = np.linalg.cholesky(gram) @ rng.standard_normal(T + N) + sigma * rng.standard_normal(T + N)
    x_train, y_train, x_pool, y_pool = x[:T], y[:T], x[T:], y[T:]
    cross_N_T = _rbf(x_pool, x_train, ell)
    solve_T_N = np.linalg.solve(_rbf(x_train, x_train, ell) + sigma**2 * np.eye(T), cross_N_T.T)
    mean_N = solve_T_N.T @ y_train
    var_N = 1.0 - np.sum(cross_N_T * solve_T_N.T, axis=1) + sigma**2
    losses_N = jnp.asarray((y_pool - mean_N) ** 2, jnp.float32)
    model_N = jnp.asarray(mean_N, jnp.float32)
    surrogate = (model_N[None], jnp.asarray(var_N, jnp.float32)[None])  # K = 1
    return losses_N, active_testing.expected_loss(surrogate, model_N)


def digits(config: Config) -> tuple[jax.Array, jax.Array]:
    """``(losses [N], proposal_scores [N])`` of the digits pool (cross-entropy).

    The pool is ``N`` held-out digits. The model is an L2-regularised logistic regression
    (scikit-learn) and the surrogate a ``K``-member deep ensemble of one-hidden-layer MLPs
    (:func:`jaxal.posterior.ensemble`), both trained on the same ``digits_train`` labels.
    """
    split_key, surrogate_key = jax.random.split(jax.random.key(config.seed))
    ds = data.digits(key=split_key, test_fraction=config.pool_size / 1797)
    n = config.digits_train
    logistic = LogisticRegression(max_iter=1000).fit(np.asarray(ds.x_pool[:n]), ds.y_pool[:n])
    model_N_C = jnp.asarray(logistic.predict_log_proba(np.asarray(ds.x_test)), jnp.float32)

    surrogate = posterior.ensemble(
        posterior.MLP(ds.num_classes, hidden=(config.hidden,)),
        config.members,
        optimizer=optax.adam(1e-2),
        num_steps=config.steps,
        batch_size=32,
    )
    weights = (jnp.arange(ds.x_pool.shape[0]) < n).astype(jnp.float32)
    params = surrogate.fit(ds.x_pool, ds.y_pool, weights, key=surrogate_key)
    surrogate_K_N_C = surrogate.predict(params, ds.x_test)

    losses_N = -jnp.take_along_axis(model_N_C, ds.y_test[:, None], axis=1)[:, 0]
    return losses_N, active_testing.expected_loss(surrogate_K_N_C, model_N_C)


POOLS = {"gp_regression": gp_regression, "digits": digits}


# ---- estimation over repeats ----------------------------------------------------------------


def evaluate(losses_N: jax.Array, scores_N: jax.Array, config: Config, *, key) -> dict:
    """Bias, its standard error and the MSE of each estimator at each M, plus the claims."""
    truth = float(np.mean(np.asarray(losses_N, np.float64)))
    stats = {name: {"mean": [], "bias": [], "bias_se": [], "mse": []} for name in ESTIMATORS}
    coverage = {"lure": [], "pure": []}
    for m, m_key in zip(
        config.test_sizes, jax.random.split(key, len(config.test_sizes)), strict=True
    ):
        estimates = active_testing.repeat(
            m_key, losses_N, scores_N, m, config.repeats, mix_uniform=config.mix_uniform
        )
        for name in ESTIMATORS:
            values_R = np.asarray(getattr(estimates, name), np.float64)
            stats[name]["mean"].append(values_R.mean())
            stats[name]["bias"].append(values_R.mean() - truth)
            stats[name]["bias_se"].append(values_R.std(ddof=1) / np.sqrt(config.repeats))
            stats[name]["mse"].append(np.mean((values_R - truth) ** 2))
        for name in coverage:  # of the per-draw 95% intervals, estimate +- 1.96 SE
            values_R = np.asarray(getattr(estimates, name), np.float64)
            se_R = np.asarray(getattr(estimates, f"{name}_se"), np.float64)
            coverage[name].append(float(np.mean(np.abs(values_R - truth) <= 1.96 * se_R)))

    def z(name: str) -> np.ndarray:
        return np.abs(np.array(stats[name]["bias"])) / np.array(stats[name]["bias_se"])

    ratio = {
        name: {
            m: stats[name]["mse"][i] / stats["uniform"]["mse"][i]
            for i, m in enumerate(config.test_sizes)
        }
        for name in ("lure", "pure")
    }
    compared = [m for m in (50, 100) if m in config.test_sizes]
    claims = {
        "lure_unbiased (|bias| <= 3 SE at every M)": bool((z("lure") <= 3).all()),
        "pure_unbiased (|bias| <= 3 SE at every M)": bool((z("pure") <= 3).all()),
        "naive_biased (|bias| > 3 SE at every M)": bool((z("naive") > 3).all()),
        f"lure_beats_uniform (MSE ratio < 1 at M in {compared})": bool(
            all(ratio["lure"][m] < 1 for m in compared)
        ),
    }
    return {
        "true_risk": truth,
        "proposal_over_loss_correlation": float(np.corrcoef(losses_N, scores_N)[0, 1]),
        "estimators": stats,
        "mse": {name: stats[name]["mse"] for name in ESTIMATORS},
        "mse_ratio_to_uniform": {
            name: {str(m): r for m, r in rs.items()} for name, rs in ratio.items()
        },
        "ci95_coverage": coverage,
        "claims": claims,
    }


def run(config: Config) -> dict[str, dict]:
    """Results per pool (see :func:`evaluate`)."""
    keys = jax.random.split(jax.random.key(config.seed + 1), len(POOLS))
    return {
        name: evaluate(*pool(config), config, key=pool_key)
        for (name, pool), pool_key in zip(POOLS.items(), keys, strict=True)
    }


# ---- output ---------------------------------------------------------------------------------


def write(config: Config, results: dict, out: Path, wall_time_s: float) -> None:
    """Save ``results.json`` and ``mse_vs_m.png`` (MSE vs M, log-log, one panel per pool)."""
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(config),
        "paper": PAPER,
        "experiments": results,
        "wall_time_s": wall_time_s,
    }
    (out / "results.json").write_text(json.dumps(record, indent=2))

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4))
    for ax, (name, result) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for estimator in ESTIMATORS:
            ax.plot(config.test_sizes, result["mse"][estimator], marker="o", label=estimator)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("labelled test points M")
        ax.set_ylabel("MSE of the risk estimate")
        ax.set_title(f"{name} (N = {config.pool_size}, {config.repeats} repeats)")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "mse_vs_m.png", dpi=120)
    plt.close(fig)


def summary(name: str, config: Config, result: dict) -> Table:
    """Bias ± its SE over repeats, ``|bias| / SE``, MSE and MSE / uniform per M and estimator."""
    table = Table(title=f"{name}: true risk {result['true_risk']:.4f}")
    for column in ("M", "estimator", "bias ± SE", "|bias|/SE", "MSE", "MSE / uniform"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for i, m in enumerate(config.test_sizes):
        uniform_mse = result["mse"]["uniform"][i]
        for estimator in ESTIMATORS:
            stats = result["estimators"][estimator]
            bias, se, mse = stats["bias"][i], stats["bias_se"][i], stats["mse"][i]
            table.add_row(
                str(m) if estimator == ESTIMATORS[0] else "",
                estimator,
                f"{bias:+.4f} ± {se:.4f}",
                f"{abs(bias) / se:.1f}",
                f"{mse:.2e}",
                f"{mse / uniform_mse:.3f}",
                end_section=estimator == ESTIMATORS[-1],
            )
    return table


def main(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/active_testing"),
    quick: Annotated[bool, typer.Option(help="Small smoke run (< 30 s).")] = False,
    repeats: Annotated[int | None, typer.Option(help="Repeats per M (default 2000).")] = None,
    mix_uniform: Annotated[float, typer.Option(help="Weight of the uniform proposal.")] = 0.15,
    seed: Annotated[int, typer.Option(help="Seed of the pools and the draws.")] = 0,
) -> None:
    """Run both experiments, print the tables and whether the claims held, write the files."""
    config = dataclasses.replace(QUICK if quick else Config(), mix_uniform=mix_uniform, seed=seed)
    if repeats is not None:
        config = dataclasses.replace(config, repeats=repeats)
    console = Console()
    start = time.perf_counter()
    results = run(config)
    wall_time_s = time.perf_counter() - start
    write(config, results, out, wall_time_s)
    for name, result in results.items():
        console.print(summary(name, config, result))
        ratios = ", ".join(
            f"M={m}: {r:.3f}" for m, r in result["mse_ratio_to_uniform"]["lure"].items()
        )
        console.print(f"MSE ratio LURE / uniform: {ratios}")
        console.print(f"95% CI coverage (LURE, PURE): {result['ci95_coverage']}")
        for claim, held in result["claims"].items():
            console.print(
                f"  [{'green' if held else 'red'}]{'held' if held else 'FAILED'}[/] {claim}"
            )
    console.print(f"Paper: {PAPER}")
    console.print(f"{wall_time_s:.1f} s; wrote {out / 'results.json'} and {out / 'mse_vs_m.png'}")


if __name__ == "__main__":
    typer.run(main)
