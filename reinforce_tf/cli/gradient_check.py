"""Exact policy gradient vs. our REINFORCE estimate on two finite MDPs.

python scripts/gradient_check.py [--episodes=65536] [--batch_episodes=16] [--seed=0]

For the short corridor (linear softmax at π(right) = 0.3, γ = 1) and a random 5-state,
3-action MDP (tanh MLP policy, γ = 0.9), prints the exact ∇J(θ) (a linear solve in
TensorFlow, differentiated by GradientTape). The episodes are played by the trainer's
`RolloutCollector` in collections of --batch_episodes episodes in 5 envs (each env takes the
next episode as it frees up); for per-episode updates and for per-batch updates (one
collection each), with and without baselines, it prints the trainer's estimate's cosine
similarity with it (weights from `learner.rollout_weights`, γ^t from
`learner.rollout_gamma_powers`, the gradient of `Reinforce.policy_loss`), its relative error
with a 95% bootstrap interval, the largest per-weight z-score and the variance of one
episode's gradient; finally the RMS relative error for growing N, which shrinks like 1/√N.
"""

from reinforce_tf.cli import common  # first: it imports TensorFlow quietly

# isort: split
import numpy as np
from absl import app, flags

from reinforce_tf.exact.gradcheck import (
    SAMPLER_ENVS,
    Comparison,
    UpdateGradients,
    compare,
    corridor_problem,
    exact_gradient,
    random_problem,
    sample_episodes,
    update_gradients,
)

_EPISODES = flags.DEFINE_integer(
    "episodes", 65536, "Episodes N sampled per MDP (>= 64); the estimate averages them."
)
_BATCH_EPISODES = flags.DEFINE_integer(
    "batch_episodes",
    16,
    "Episodes per collection, and per update in the batch rows (>= 2); N is cut to a multiple.",
)
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the sampling and the random MDP (>= 0).")

# (update mode, episodes per update, baseline) rows of the main table.
_ROWS = (
    ("episode", 1, "none"),
    ("episode", 1, "value"),
    ("batch", None, "none"),
    ("batch", None, "mean"),
    ("batch", None, "value"),
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        common.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    common.run_reporting_input_errors(_check)


def _check() -> None:
    episodes, batch, seed = _EPISODES.value, _BATCH_EPISODES.value, _SEED.value
    if episodes < 64:
        raise common.InputError(f"must be an integer >= 64; got {episodes}", field="episodes")
    if batch < 2 or 2 * batch > episodes:
        raise common.InputError(
            f"must be in [2, episodes / 2 = {episodes // 2}]; got {batch}", field="batch_episodes"
        )
    if seed < 0:
        raise common.InputError(f"must be an integer >= 0; got {seed}", field="seed")
    for problem in (corridor_problem(), random_problem(seed=seed)):
        _check_problem(problem, episodes - episodes % batch, batch, seed)


def _check_problem(problem, num_episodes: int, batch: int, seed: int) -> None:
    policy, mdp, gamma = problem.policy, problem.mdp, problem.gamma
    print(f"\n== {problem.name}, γ = {gamma}, N = {num_episodes} episodes, seed {seed}", flush=True)
    episodes = sample_episodes(mdp, policy, num_episodes, seed=seed, collection_episodes=batch)
    estimator = UpdateGradients(policy)
    exact = exact_gradient(policy, mdp, gamma)
    lengths = episodes.valid.sum(axis=0)
    print(
        f"sampled by the trainer's RolloutCollector, {num_episodes // batch} collections of "
        f"{batch} episodes in {SAMPLER_ENVS} envs: mean length {lengths.mean():.2f} steps, "
        f"longest {lengths.max()}"
    )

    reference = per_episode = None
    print(
        f"{'update':<18} {'baseline':<9} {'cosine':>9} {'rel. error':>10} {'95% interval':>17} "
        f"{'std. err':>8} {'max|z|':>6} {'Var/episode':>11} {'reduction':>9}"
    )
    for mode, per_update, baseline in _ROWS:
        per_update = per_update or batch
        gradients = update_gradients(
            policy,
            mdp,
            gamma,
            episodes,
            batch_episodes=per_update,
            baseline=baseline,
            estimator=estimator,
        )
        result = compare(exact, gradients, per_update, seed=seed)
        if reference is None:
            reference, per_episode = result, gradients
            _print_gradients(result)
        reduction = reference.episode_variance / result.episode_variance
        label = f"{mode} (B={per_update})"
        print(
            f"{label:<18} {baseline:<9} {result.cosine:9.6f} {result.relative_error:10.4f} "
            f"[{result.interval[0]:.4f}, {result.interval[1]:.4f}] {result.standard_error:8.4f} "
            f"{result.max_abs_z:6.2f} {result.episode_variance:11.4g} {reduction:8.2f}×",
            flush=True,
        )
    print(
        "relative error vs N (per-episode updates, no baseline): the N episodes split into\n"
        "N/n disjoint samples of n; RMS of their relative errors (×√n stays constant)"
    )
    print(f"{'n':>8} {'samples':>7} {'RMS rel. error':>14} {'RMS·√n':>7} {'std. err':>8}")
    for count in (num_episodes // 64, num_episodes // 16, num_episodes // 4, num_episodes):
        # One update per episode: sample k's updates are rows k·n … k·n + n − 1.
        results = [
            compare(exact, per_episode[k : k + count], 1, seed=seed)
            for k in range(0, num_episodes - count + 1, count)
        ]
        rms = np.sqrt(np.mean([result.relative_error**2 for result in results]))
        print(
            f"{count:8d} {len(results):7d} {rms:14.4f} {rms * np.sqrt(count):7.3f} "
            f"{results[0].standard_error:8.4f}",
            flush=True,
        )


def _print_gradients(result: Comparison) -> None:
    shown = min(len(result.exact), 6)
    more = f" … ({len(result.exact)} weights)" if len(result.exact) > shown else ""
    print(f"exact ∇J     {np.array2string(result.exact[:shown], precision=4)}{more}")
    print(f"estimate     {np.array2string(result.estimate[:shown], precision=4)}{more}")
    print(f"‖∇J‖ = {np.linalg.norm(result.exact):.4f}")


def run() -> None:
    """The console script's entry point: parses the flags, then `main`."""
    app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
    run()
