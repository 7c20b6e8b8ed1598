"""The command-line tools, each `python -m reinforce_tf.cli.<tool>` (and `scripts/<tool>.py`
in a checkout; the four main ones also as console scripts, `reinforce-tf-<tool>`).

common.py                   a quiet TensorFlow import, absl flag parsing, one-line errors
train.py                    train a policy (the quick start's command)
evaluate.py                 play a saved policy or export, sampled and greedy
export.py                   a saved policy to SavedModel, LiteRT or ONNX
plot.py                     learning curves of run folders
gradient_check.py           the REINFORCE gradient against the exact one (short corridor)
reproduce_sutton_barto.py   Figures 13.1 and 13.2 of Sutton & Barto
"""
