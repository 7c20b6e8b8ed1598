"""Loading an export runs it: an export that fails in its runtime, when loaded or as it plays,
is refused as a bad --policy in one line naming the file and the runtime's reason."""

import json

import numpy as np
import onnx
import pytest
import tensorflow as tf
from onnx import TensorProto, helper

from reinforce_tf import InputError, evaluate
from reinforce_tf.training.exported import load_any_policy

NOTE = json.dumps({"env": "CartPole-v1"})


def onnx_allocating_2_to_the_40_floats(path) -> None:
    """A policy-shaped ONNX graph (observation [B, 4] → probabilities [B, 2]) that adds
    Σ zeros(2⁴⁰) to the observation's first two entries: 4 TiB asked of ONNX Runtime's
    allocator on every run."""
    int64 = lambda name, values: helper.make_tensor(name, TensorProto.INT64, [1], values)
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("ConstantOfShape", ["size"], ["zeros"], value=zero),
        helper.make_node("ReduceSum", ["zeros"], ["total"], keepdims=1),
        helper.make_node("Slice", ["observation", "start", "end", "axis"], ["half"]),
        helper.make_node("Add", ["half", "total"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "allocates",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            int64("size", [2**40]),
            int64("start", [0]),
            int64("end", [2]),
            int64("axis", [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"reinforce_tf": NOTE})
    onnx.save(model, path)


class RaisesOnPlay(tf.Module):
    """A SavedModel signature that runs on all-zero observations and raises on any other
    (every CartPole start state has non-zero entries)."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="observation")])
    def serve(self, observation):
        tf.debugging.assert_equal(observation, 0.0, message="refuses a non-zero observation")
        return {"probabilities": tf.nn.softmax(observation[:, :2])}


def saved_model_raising_on_play(folder) -> None:
    module = RaisesOnPlay()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    (folder / "assets.extra").mkdir()
    (folder / "assets.extra" / "reinforce_tf.json").write_text(NOTE)


def test_an_onnx_export_that_cannot_run_is_a_one_line_policy_error(tmp_path, script):
    onnx_allocating_2_to_the_40_floats(tmp_path / "allocates.onnx")
    with pytest.raises(InputError) as error:
        policy, _ = load_any_policy(tmp_path / "allocates.onnx")
        evaluate(policy, "CartPole-v1", 1)
    message = str(error.value)
    assert message.startswith(
        f"policy: {str(tmp_path / 'allocates.onnx')!r} fails when ONNX Runtime runs it ("
    )
    # The runtime's reason, its C++ source location left out so it fits.
    assert "Failed to allocate memory for requested buffer of size 4398046511104)" in message
    assert "\n" not in message and "bfc_arena.cc" not in message and len(message) < 400
    done = script("evaluate.py", "--policy=allocates.onnx", "--episodes=1", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    # The same line, naming the file as given; ONNX Runtime's own log line is hidden.
    assert done.stderr == f"error: --policy: 'allocates.onnx' fails {message.split(' fails ')[1]}\n"


def test_a_saved_model_that_raises_as_it_plays_is_a_one_line_policy_error(tmp_path):
    saved_model_raising_on_play(tmp_path / "raises")
    policy, note = load_any_policy(tmp_path / "raises")  # all-zero observations run
    np.testing.assert_allclose(policy(np.zeros((1, 4)))["probabilities"], [[0.5, 0.5]])
    with pytest.raises(InputError) as error:
        evaluate(policy, "CartPole-v1", 1, trained_on=note)
    message = str(error.value)
    assert message.startswith(
        f"policy: {str(tmp_path / 'raises')!r} fails when TensorFlow runs it (assertion failed: "
        "[refuses a non-zero observation]"
    )
    assert "\n" not in message and len(message) < 400
