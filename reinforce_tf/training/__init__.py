"""The trainer's plumbing around the algorithm: envs in, a saved policy and a run folder out.

envs.py         the env (single or vector) for an id, its make kwargs and wrapper preset;
                sampled actions → env actions
rollout.py      whole episodes from a vector env, one compiled act() call per step
learner.py      config → agent, rollout → update: the glue every check calls too
loop.py         train(): collect → update → log → evaluate → checkpoint → stop → save
workers.py      --workers: episodes played by Ray actors, merged into one rollout
run_folder.py   config.json, the lock, the checks before a run starts or resumes
checkpoints.py  checkpoints: save, and restore the newest intact one
episode_log.py  episodes.csv
summaries.py    TensorBoard scalars
progress.py     progress bar or plain lines
evaluate.py     play a policy (sampled or greedy), record video
saving.py       the policy file, and atomic writes of every file we produce
export.py       the policy exported to SavedModel, LiteRT or ONNX, checked to act as it
exported.py     an export read back by its own runtime, and acting with it
curves.py       learning curves from run folders
"""
