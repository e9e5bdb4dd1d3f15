"""Time the compiled active-learning loop on digits.

* seconds per round for each posterior kind (compilation reported separately);
* seeds: ``S`` seeds in one ``vmap``-ed program vs the same seeds one after another.

Run: ``python benchmarks/loop.py --out results/bench`` (writes ``loop.json``).
"""

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import jaxal
from jaxal import loop

ROUNDS, BATCH, INITIAL = 5, 10, 20


def posteriors(num_classes: int, num_features: int) -> dict[str, jaxal.posterior.Posterior]:
    """The posterior kinds compared, at the sizes of ``make demo`` where they apply.

    The last-layer Laplace posterior uses fixed random features (the penultimate layer of an
    MLP at initialisation): what it costs, not what it is worth, is measured here.
    """
    model = jaxal.posterior.MLP(num_classes=num_classes, hidden=(128,))
    random_params = model.init(jax.random.key(7), jnp.zeros((1, num_features)))
    adam = optax.adam(1e-3)
    return {
        "ensemble (K=5, 300 steps)": jaxal.posterior.ensemble(
            model, 5, optimizer=adam, num_steps=300, batch_size=64
        ),
        "mc dropout (K=20, 300 steps)": jaxal.posterior.mc_dropout(
            jaxal.posterior.DropoutMLP(num_classes=num_classes, hidden=(128,)),
            20,
            optimizer=adam,
            num_steps=300,
            batch_size=64,
        ),
        "last-layer laplace (K=20)": jaxal.posterior.laplace_last_layer(
            jaxal.posterior.mlp_features(model, random_params), num_classes, 20
        ),
        "numpyro bnn svi (K=20, 1000 steps)": jaxal.posterior.bnn_svi(
            num_classes, 20, optimizer=optax.adam(1e-2), num_steps=1000
        ),
        "numpyro bnn nuts (K=20, 200 warmup)": jaxal.posterior.bnn_nuts(
            num_classes, 20, num_warmup=200
        ),
    }


def time_run(data, post, *, seeds: int | None, strategy: str = "bald") -> dict[str, float]:
    """Wall seconds of init, of the first round (compiles) and per later round."""
    start = time.perf_counter()
    state = loop.init(
        data,
        key=jax.random.key(0),
        posterior=post,
        initial=INITIAL,
        rounds=ROUNDS,
        b=BATCH,
        seeds=seeds,
    )
    jax.block_until_ready(state)
    init_s = time.perf_counter() - start
    stamps = []
    loop.run(
        state,
        data,
        posterior=post,
        strategy=jaxal.strategies.get(strategy),
        on_round=lambda s: (jax.block_until_ready(s), stamps.append(time.perf_counter())),
    )
    first_round_s = stamps[0] - start - init_s
    per_round_s = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return {"init_s": init_s, "first_round_s": first_round_s, "per_round_s": per_round_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    data = jaxal.data.digits(key=jax.random.key(0))
    results = {"cpu_count": os.cpu_count(), "jax": jax.__version__, "posteriors": {}}
    kinds = posteriors(data.num_classes, data.x_pool.shape[1])
    for name, post in kinds.items():
        results["posteriors"][name] = time_run(data, post, seeds=None)
        print(name, results["posteriors"][name])
    post = next(iter(kinds.values()))
    batched = time_run(data, post, seeds=args.seeds)
    sequential = [time_run(data, post, seeds=None) for _ in range(args.seeds)]
    sequential_per_round = sum(r["per_round_s"] for r in sequential)
    results["seeds"] = {
        "seeds": args.seeds,
        "vmap": batched,
        "sequential_per_round_s": sequential_per_round,
        "speedup_per_round": sequential_per_round / batched["per_round_s"],
    }
    print(json.dumps(results["seeds"], indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "loop.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
