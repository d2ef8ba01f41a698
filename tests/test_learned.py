"""Tests of posenc_lib.learned: the trainable BERT/GPT-2 position table."""

import pytest
import torch
from conftest import assert_close

import posenc_lib as pe


def test_forward_adds_rows_of_the_table(device):
    torch.manual_seed(0)
    mod = pe.LearnedPositionalEmbedding(10, 6).to(device)
    x = torch.randn(3, 4, 6, device=device)
    table = mod.embedding.weight.detach()
    assert_close(mod(x), x + table[:4])
    assert_close(mod(x, offset=6), x + table[6:10])  # the last rows exactly fit
    for t in range(4):  # row t of the output uses position offset + t
        assert_close(mod(x, offset=2)[:, t], x[:, t] + table[2 + t])


def test_output_dtype_follows_input(dtype):
    mod = pe.LearnedPositionalEmbedding(8, 4)
    x = torch.randn(1, 3, 4).to(dtype)
    y = mod(x)
    assert y.dtype == dtype
    assert_close(y.float(), (x.float() + mod.table[:3].detach()).to(dtype).float())


def test_too_long_is_an_error_with_a_useful_message():
    mod = pe.LearnedPositionalEmbedding(8, 4)
    with pytest.raises(ValueError, match=r"no vector for position 8") as info:
        mod(torch.zeros(1, 9, 4))
    assert "sequence length 9" in str(info.value) and "max_len 8" in str(info.value)
    with pytest.raises(ValueError, match=r"offset 3 = 9 > max_len 8"):
        mod(torch.zeros(1, 6, 4), offset=3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_len must be >= 1"):
        pe.LearnedPositionalEmbedding(0, 4)
    with pytest.raises(TypeError, match="d_model must be an int"):
        pe.LearnedPositionalEmbedding(4, 4.0)
    mod = pe.LearnedPositionalEmbedding(8, 4)
    with pytest.raises(ValueError, match="last dimension d_model=4"):
        mod(torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        mod(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="offset must be >= 0"):
        mod(torch.zeros(1, 2, 4), offset=-1)


def test_init_and_parameters():
    torch.manual_seed(0)
    mod = pe.LearnedPositionalEmbedding(2048, 64, init_std=0.02)
    std = mod.table.detach().std().item()
    assert 0.019 < std < 0.021, std
    assert [n for n, _ in mod.named_parameters()] == ["embedding.weight"]
    assert "embedding.weight" in mod.state_dict()


def test_only_used_rows_get_gradients():
    """Positions never seen in training keep their initial vectors (zero gradient)."""
    mod = pe.LearnedPositionalEmbedding(10, 4)
    mod(torch.randn(2, 3, 4), offset=1).square().sum().backward()
    grad_rows = mod.table.grad.abs().sum(-1) > 0
    assert grad_rows.tolist() == [False, True, True, True] + [False] * 6
