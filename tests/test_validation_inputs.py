"""In-process: the pack checks every widget input of every node itself, whatever the host version.

* every COMBO input refuses a value outside its options, listing the valid values (ComfyUI 0.3.75
  does not check V3 combos: ``style_attention="scaled"`` ran the unscaled variant);
* every FLOAT input refuses NaN and ±inf, naming the input (no host does: NaN < min is False);
* one wrong input gives one message naming that input only, and the host's own min/max checks
  still run per input (no ``validate_inputs`` that the host would attach to every argument);
* the empty-latent node never suggests a size the released UNets cannot sample.

The node classes are called directly (as the host does, with keywords); the host's own prompt
validation (``execution.validate_inputs``) runs in-process on the selected host.
"""
import asyncio
import math

import pytest


@pytest.fixture(scope="module")
def pack_nodes(comfy_path):
    from videocrafter_suite.nodes import all_node_classes

    return all_node_classes()


def widget_defaults(node_class):
    """Keyword arguments for ``execute``: each widget's default (first option of a combo), None for links."""
    from videocrafter_suite.bridge.api import io

    values = {}
    for spec in node_class.define_schema().inputs:
        if isinstance(spec, io.Combo.Input):
            values[spec.id] = spec.default if spec.default is not None else (spec.options or [None])[0]
        elif isinstance(spec, (io.Float.Input, io.Int.Input, io.Boolean.Input)):
            values[spec.id] = spec.default
        else:
            values[spec.id] = None
    return values


def inputs_of_kind(pack_nodes, kind):
    from videocrafter_suite.bridge.api import io

    io_kind = {"combo": io.Combo.Input, "float": io.Float.Input}[kind]
    return [(node, spec) for node in pack_nodes for spec in node.define_schema().inputs if isinstance(spec, io_kind)]


def test_every_pack_node_runs_the_pack_input_checks(pack_nodes):
    from videocrafter_suite.nodes.validation import is_checked

    assert len(pack_nodes) >= 10
    unchecked = [node.__name__ for node in pack_nodes if not is_checked(node)]
    assert unchecked == []


def test_every_combo_rejects_a_value_outside_its_options_listing_them(pack_nodes):
    from videocrafter_suite.nodes.common import InputError

    combos = inputs_of_kind(pack_nodes, "combo")
    assert {spec.id for _, spec in combos} >= {"mode", "style_attention", "ckpt_name", "adapter_name"}
    for node, spec in combos:
        values = widget_defaults(node)
        values[spec.id] = "bogus"
        with pytest.raises(InputError) as error:
            node.execute(**values)
        message = str(error.value)
        assert f"'{spec.id}'" in message and "'bogus' is not one of the options" in message, message
        for option in (spec.options or [])[:5]:
            assert repr(option) in message, (spec.id, message)


@pytest.mark.parametrize("value", ["scaled", "unscaled", "Scaled (xformers path, released results)"])
def test_a_near_miss_of_style_attention_is_not_silently_another_variant(pack_nodes, value):
    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.style import ATTENTION, StyleCrafterStyleConditioning

    values = widget_defaults(StyleCrafterStyleConditioning)
    values["style_attention"] = value
    with pytest.raises(InputError, match="style_attention") as error:
        StyleCrafterStyleConditioning.execute(**values)
    assert all(repr(option) in str(error.value) for option in ATTENTION)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_float_rejects_non_finite_values_naming_the_input(pack_nodes, value):
    from videocrafter_suite.nodes.common import InputError

    floats = inputs_of_kind(pack_nodes, "float")
    assert {spec.id for _, spec in floats} >= {"eta", "cfg", "text_scale", "condition_scale", "temporal_scale",
                                               "style_weight", "image_strength", "denoise"}
    for node, spec in floats:
        values = widget_defaults(node)
        values[spec.id] = value
        with pytest.raises(InputError) as error:
            node.execute(**values)
        message = str(error.value)
        assert f"input '{spec.id}'" in message and "not a finite number" in message, message
        others = [s.id for _, s in floats if s.id != spec.id and _ is node]
        assert not any(f"input '{other}'" in message for other in others), message


def test_only_the_wrong_inputs_are_named_once_each(pack_nodes):
    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.guidance import VideoCrafterTemporalGuider

    values = widget_defaults(VideoCrafterTemporalGuider)
    values["temporal_scale"] = math.nan
    with pytest.raises(InputError) as error:
        VideoCrafterTemporalGuider.execute(**values)
    message = str(error.value)
    assert message.count("input '") == 1 and "'temporal_scale'" in message and "'cfg'" not in message


def host_validate(comfy_path, node_class, inputs):
    """The host's own prompt validation of one node (what POST /prompt runs), in-process."""
    import execution
    import nodes

    node_id = node_class.define_schema().node_id
    nodes.NODE_CLASS_MAPPINGS.setdefault(node_id, node_class)
    prompt = {"1": {"class_type": node_id, "inputs": dict(inputs)}}
    valid, errors, _ = asyncio.run(execution.validate_inputs("test", prompt, "1", {}))
    return valid, errors


def test_the_host_checks_min_max_per_input_and_names_only_that_input(comfy_path, pack_nodes):
    from videocrafter_suite.nodes.latent_video import VideoCrafterEmptyVideoLatent

    valid, errors = host_validate(comfy_path, VideoCrafterEmptyVideoLatent, {"width": 512, "height": 0, "frames": 16})
    assert not valid
    assert [e["extra_info"]["input_name"] for e in errors] == ["height"], errors
    # A value only the pack can judge (not a multiple of 8) is not reported under three names by the host:
    valid, errors = host_validate(comfy_path, VideoCrafterEmptyVideoLatent, {"width": 100, "height": 320, "frames": 16})
    assert valid and errors == [], errors


def test_a_bad_width_gives_one_message_naming_width_with_sizes_every_released_unet_takes(pack_nodes):
    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.latent_video import VideoCrafterEmptyVideoLatent

    with pytest.raises(InputError) as error:
        VideoCrafterEmptyVideoLatent.execute(width=100, height=320, frames=16)
    message = str(error.value)
    assert "width" in message and "height" not in message and "frames" not in message, message
    assert "64" in message and "128" in message and "96" not in message and "104" not in message, message


def test_the_empty_latent_hint_never_suggests_a_size_a_released_unet_cannot_halve(pack_nodes):
    import re

    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.latent_video import VideoCrafterEmptyVideoLatent

    for width in range(9, 2048, 7):
        if width % 8 == 0:
            continue
        with pytest.raises(InputError) as error:
            VideoCrafterEmptyVideoLatent.execute(width=width, height=320, frames=16)
        suggested = [int(v) for v in re.findall(r"\buse (\d+)(?: or (\d+))?", str(error.value))[0] if v]
        assert suggested and all(v % 64 == 0 for v in suggested), (width, str(error.value))
