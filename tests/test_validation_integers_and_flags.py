"""_validation.check_int / check_bool / as_positions and the public calls built on them
(issue 14): numpy and 0-d tensor integers are accepted where ints are meant; bools,
floats and strings are refused with a message naming the argument."""

import numpy as np
import pytest
import torch

import posenc_lib as pe
from posenc_lib._validation import as_positions, check_bool, check_int

INTEGERS = [7, np.int64(7), np.int32(7), np.uint8(7), torch.tensor(7), torch.tensor(7).int()]


@pytest.mark.parametrize(
    "value", INTEGERS, ids=lambda v: type(v).__name__ + str(getattr(v, "dtype", ""))
)
def test_check_int_accepts_integer_scalars(value):
    """Bug: numpy integers and integer tensor scalars were refused ('must be an int')."""
    out = check_int("n", value, minimum=1)
    assert out == 7 and type(out) is int


@pytest.mark.parametrize(
    "value,match",
    [
        (True, "n must be an int, got bool"),
        (np.bool_(True), "n must be an int"),
        (7.0, "n must be an int, got float"),
        (np.float32(7), "n must be an int"),
        ("7", "n must be an int, got str"),
        (torch.tensor(7.0), "n must be an int .* dtype torch.float32"),
        (torch.tensor([7]), r"n must be an int .* shape \(1,\)"),
        (torch.tensor(True), "n must be an int .* dtype torch.bool"),
    ],
)
def test_check_int_refuses_non_integers(value, match):
    with pytest.raises(TypeError, match=match):
        check_int("n", value)


def test_check_int_range_and_parity_still_apply_to_numpy_values():
    with pytest.raises(ValueError, match="n must be >= 2, got 1"):
        check_int("n", np.int64(1), minimum=2)
    with pytest.raises(ValueError, match="n must be even"):
        check_int("n", torch.tensor(3), even=True)


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, 1.0, torch.tensor(True)])
def test_check_bool_refuses_truthy_stand_ins(value):
    """Bug: causal="no" is truthy, so it silently meant True."""
    with pytest.raises(TypeError, match="causal must be True or False"):
        check_bool("causal", value)


def test_check_bool_accepts_python_and_numpy_bools():
    assert check_bool("causal", True) is True
    assert check_bool("causal", np.bool_(False)) is False


def test_as_positions_accepts_numpy_counts_and_refuses_bool_tensors():
    """Bug: a bool tensor was accepted as positions (True -> 1.0)."""
    torch.testing.assert_close(as_positions(np.int64(3)), torch.arange(3.0))
    with pytest.raises(TypeError, match="positions must be real numbers, got dtype torch.bool"):
        as_positions(torch.tensor([True, False]))


def test_public_api_takes_numpy_and_tensor_integers():
    """What a user lifting sizes from a numpy config or a tensor shape computation meets."""
    torch.testing.assert_close(pe.alibi_slopes(np.int64(8)), pe.alibi_slopes(8))
    torch.testing.assert_close(
        pe.alibi_bias(torch.tensor(4), np.int32(5), offset=np.int64(2)),
        pe.alibi_bias(4, 5, offset=2),
    )
    assert torch.equal(pe.causal_mask(np.int32(3), torch.tensor(5)), pe.causal_mask(3, 5))
    torch.manual_seed(0)
    layer = pe.MultiHeadAttention(np.int64(16), torch.tensor(4), position="alibi")
    assert layer(torch.randn(1, 3, 16)).shape == (1, 3, 16)
    assert pe.t5_relative_position_bucket(np.int64(-3)).item() == pe.t5_relative_position_bucket(-3)


def test_t5_bidirectional_must_be_a_bool():
    with pytest.raises(TypeError, match="bidirectional must be True or False"):
        pe.T5RelativePositionBias(4, bidirectional="yes")
    with pytest.raises(TypeError, match="bidirectional must be True or False"):
        pe.t5_relative_position_bucket(3, bidirectional=None)
