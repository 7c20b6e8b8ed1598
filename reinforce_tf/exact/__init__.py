"""Exact answers to check the algorithm against: finite MDPs whose ∇J(θ) has a closed form.

tabular.py         finite MDPs as tables and as Gymnasium envs; v_π by a linear solve
short_corridor.py  Sutton & Barto's Example 13.1 and its exact value
gradcheck.py       exact ∇J(θ) against the trainer's REINFORCE estimate
corridor_runs.py   Figures 13.1 and 13.2: many corridor runs as one batched model
"""
