"""The exercise checkers of the absolute-position chapters accept right answers and name
the mistake in deliberately wrong ones."""

import math

import pytest
import torch

from posenc_lib.book.exercises import absolute

# ---------------------------------------------------------------- sinusoidal table


def table_loop(seq_len, d_model, base=10_000.0):
    """A right answer written as the textbook double loop, in plain Python floats."""
    rows = []
    for p in range(seq_len):
        row = []
        for i in range(d_model // 2):
            angle = p / base ** (2 * i / d_model)
            row += [math.sin(angle), math.cos(angle)]
        rows.append(row)
    return rows  # a list of lists: the checker must accept it


def table_vectorised(seq_len, d_model, base=10_000.0):
    pos = torch.arange(seq_len, dtype=torch.float32)[:, None]
    freqs = base ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    return torch.stack([torch.sin(pos * freqs), torch.cos(pos * freqs)], dim=-1).flatten(1)


def table_swapped(seq_len, d_model, base=10_000.0):
    return table_vectorised(seq_len, d_model, base).view(seq_len, -1, 2).flip(-1).flatten(1)


def table_concat(seq_len, d_model, base=10_000.0):
    t = table_vectorised(seq_len, d_model, base)
    return torch.cat([t[:, 0::2], t[:, 1::2]], dim=1)


def table_exponent_i(seq_len, d_model, base=10_000.0):
    pos = torch.arange(seq_len, dtype=torch.float64)[:, None]
    freqs = base ** (-torch.arange(d_model // 2, dtype=torch.float64) / d_model)  # i/d
    return torch.stack([torch.sin(pos * freqs), torch.cos(pos * freqs)], dim=-1).flatten(1)


def table_column_exponent(seq_len, d_model, base=10_000.0):
    pos = torch.arange(seq_len, dtype=torch.float64)[:, None]
    j = torch.arange(d_model, dtype=torch.float64)
    angle = pos * base ** (-j / d_model)
    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle))


def table_positive_exponent(seq_len, d_model, base=10_000.0):
    pos = torch.arange(seq_len, dtype=torch.float64)[:, None]
    freqs = base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    return torch.stack([torch.sin(pos * freqs), torch.cos(pos * freqs)], dim=-1).flatten(1)


def table_from_one(seq_len, d_model, base=10_000.0):
    return table_vectorised(seq_len + 1, d_model, base)[1:]


def table_ignores_base(seq_len, d_model, base=10_000.0):
    return table_vectorised(seq_len, d_model)


def table_transposed(seq_len, d_model, base=10_000.0):
    return table_vectorised(seq_len, d_model, base).T


def table_batched(seq_len, d_model, base=10_000.0):
    return table_vectorised(seq_len, d_model, base)[None]


def table_half(seq_len, d_model, base=10_000.0):
    return table_vectorised(seq_len, d_model, base)[:, 0::2]


def table_swapped_concat(seq_len, d_model, base=10_000.0):
    return table_concat(seq_len, d_model, base).roll(d_model // 2, dims=1)


def table_noisy(seq_len, d_model, base=10_000.0):
    """Right on small inputs, one entry off on the 50 x 32 case."""
    t = table_vectorised(seq_len, d_model, base).clone()
    if seq_len == 50:
        t[49, 31] += 0.01
    return t


def table_crashes(seq_len, d_model, base=10_000.0):
    raise RuntimeError("not implemented yet")


def table_without_base(seq_len, d_model):
    return table_vectorised(seq_len, d_model)


def test_reference_table_matches_library():
    import posenc_lib as pe

    for n, d, base in [(3, 4, 10_000.0), (50, 32, 10_000.0), (20, 6, 100.0)]:
        for layout in ("interleaved", "concat"):
            lib = pe.sinusoidal_encoding(n, d, base=base, layout=layout).double()
            ref = absolute.reference_table(n, d, base=base, layout=layout)
            torch.testing.assert_close(lib, ref, atol=1e-5, rtol=0)


def test_reference_table_hand_values():
    """The 'I am good' table (d_model = 4) computed by hand."""
    p = absolute.reference_table(3, 4)
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
            [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(p, expected)


@pytest.mark.parametrize("fn", [table_loop, table_vectorised, table_without_base])
def test_table_accepts_right_answers(fn):
    result = absolute.check_sinusoidal_table(fn)
    assert result, result.message
    assert repr(result).startswith("PASSED")


def test_table_without_base_says_cases_were_skipped():
    result = absolute.check_sinusoidal_table(table_without_base)
    assert result and "skipped" in result.message


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (table_swapped, "sine and cosine are swapped"),
        (table_concat, "concatenated layout"),
        (table_exponent_i, "i/d instead of 2i/d"),
        (table_column_exponent, "column index j"),
        (table_positive_exponent, "wrong sign"),
        (table_from_one, "positions start at 1"),
        (table_ignores_base, "`base` argument is ignored"),
        (table_transposed, "transposed"),
        (table_batched, "batch dimension"),
        (table_half, "sine AND a cosine"),
        (table_noisy, "first wrong entry P[49, 31]"),
        (table_crashes, "raised RuntimeError: not implemented yet"),
    ],
)
def test_table_names_the_mistake(fn, expected):
    result = absolute.check_sinusoidal_table(fn)
    assert not result
    assert expected in result.message, result.message
    assert repr(result).startswith("FAILED")


def test_table_reports_two_mistakes_at_once():
    message = absolute.check_sinusoidal_table(table_swapped_concat).message
    assert "concatenated layout" in message and "swapped" in message, message


def test_table_nan_is_reported():
    result = absolute.check_sinusoidal_table(lambda n, d, base=1e4: torch.full((n, d), math.nan))
    assert not result and "nan" in result.message


# ---------------------------------------------------------------- shift matrix


def shift_right(k, d_model, base=10_000.0):
    blocks = []
    for i in range(d_model // 2):
        a = k * base ** (-2 * i / d_model)
        blocks.append(torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]))
    return torch.block_diag(*blocks)


def shift_transposed(k, d_model, base=10_000.0):
    return shift_right(k, d_model, base).T


def shift_concat(k, d_model, base=10_000.0):
    perm = torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])
    m = shift_right(k, d_model, base)
    return m[perm][:, perm]


def shift_wrong_frequency(k, d_model, base=10_000.0):
    blocks = []
    for i in range(d_model // 2):
        a = k * base ** (-i / d_model)
        blocks.append(torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]))
    return torch.block_diag(*blocks)


def shift_dense(k, d_model, base=10_000.0):
    return shift_right(k, d_model, base) + 0.1


def shift_identity(k, d_model, base=10_000.0):
    return torch.eye(d_model)


def shift_one_block_wrong(k, d_model, base=10_000.0):
    m = shift_right(k, d_model, base)
    m[2:4, 2:4] = shift_right(k + 1, d_model, base)[2:4, 2:4]
    return m


def test_shift_accepts_right_answer():
    assert absolute.check_shift_matrix(shift_right)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (shift_transposed, "transpose of M_k"),
        (shift_concat, "concatenated layout"),
        (shift_wrong_frequency, "i/d instead of 2i/d"),
        (shift_dense, "outside the 2x2 diagonal blocks"),
        (shift_one_block_wrong, "frequency pair i=1"),
        (lambda k, d: torch.eye(d + 1), "shape (5, 5), expected (4, 4)"),
    ],
)
def test_shift_names_the_mistake(fn, expected):
    result = absolute.check_shift_matrix(fn)
    assert not result
    assert expected in result.message, result.message


def test_shift_identity_fails_at_first_nonzero_k():
    result = absolute.check_shift_matrix(shift_identity)
    assert not result and "k=1" in result.message


def test_shift_zero_must_be_identity():
    def wrong_at_zero(k, d_model, base=10_000.0):
        return shift_right(k, d_model, base) if k else -torch.eye(d_model)

    result = absolute.check_shift_matrix(wrong_at_zero)
    assert not result and "identity" in result.message


# ---------------------------------------------------------------- layout permutation


def perm_right(d_model):
    half = d_model // 2
    return torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()


def test_permutation_accepts_right_answer():
    assert absolute.check_layout_permutation(perm_right)
    assert absolute.check_layout_permutation(lambda d: perm_right(d).tolist())


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda d: torch.argsort(perm_right(d)), "inverse permutation"),
        (lambda d: torch.arange(d), "is not the interleaved table"),
        (lambda d: torch.zeros(d, dtype=torch.long), "not a permutation"),
        (lambda d: perm_right(d).float(), "return integer indices"),
        (lambda d: perm_right(d)[:-1], "expected (2,)"),
    ],
)
def test_permutation_names_the_mistake(fn, expected):
    result = absolute.check_layout_permutation(fn)
    assert not result
    assert expected in result.message, result.message


def test_library_layout_helper_passes_if_present():
    """Whatever the library calls it, converting concat -> interleaved must pass."""
    import posenc_lib as pe

    concat = pe.sinusoidal_encoding(5, 8, layout="concat")
    inter = pe.sinusoidal_encoding(5, 8, layout="interleaved")
    perm = perm_right(8)
    torch.testing.assert_close(concat[:, perm], inter)


# ---------------------------------------------------------------- offset similarity


def offsets_right(table, max_offset):
    x = torch.nn.functional.normalize(table, dim=1)
    return torch.stack([(x[: len(x) - k] * x[k:]).sum(1).mean() for k in range(max_offset + 1)])


def offsets_dot(table, max_offset):
    return torch.stack(
        [(table[: len(table) - k] * table[k:]).sum(1).mean() for k in range(max_offset + 1)]
    )


def offsets_roll(table, max_offset):
    x = torch.nn.functional.normalize(table, dim=1)
    return torch.stack([(x * x.roll(-k, 0)).sum(1).mean() for k in range(max_offset + 1)])


def offsets_sum(table, max_offset):
    x = torch.nn.functional.normalize(table, dim=1)
    return torch.stack([(x[: len(x) - k] * x[k:]).sum() for k in range(max_offset + 1)])


def test_offsets_accepts_right_answer():
    assert absolute.check_offset_similarity(offsets_right)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (offsets_dot, "dot product"),
        (offsets_roll, "wraps around"),
        (offsets_sum, "summed over p"),
        (lambda t, m: offsets_right(t, m)[1:], "one entry short"),
        (lambda t, m: offsets_right(t, m)[None], "shape (1, 11)"),
        (lambda t, m: offsets_right(t, m) + 0.01 * torch.arange(m + 1), "first wrong entry"),
    ],
)
def test_offsets_names_the_mistake(fn, expected):
    result = absolute.check_offset_similarity(fn)
    assert not result
    assert expected in result.message, result.message


# ------------------------------------------------------- chapter 3: parameter counts


def test_learned_params_right_answer():
    assert absolute.check_learned_params(1024 * 1024, 0, 32_768 * 4096)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        ((2048, 0, 32_768 * 4096), "added rows and width"),
        ((1024, 0, 32_768 * 4096), "number of rows"),
        ((1024 * 1024, 1024 * 1024, 32_768 * 4096), "computed by a formula"),
        ((1024 * 1024, 0, 32_768), "multiply by the width"),
        ((1024 * 1024, 0, 32_768 * 1024), "width here is 4096"),
        ((1024 * 1024, 0, "134M"), "must be a number"),
    ],
)
def test_learned_params_names_the_mistake(answer, hint):
    result = absolute.check_learned_params(*answer)
    assert not result and hint in result.message


# ------------------------------------------------------------- chapter 3: AdamW decay


def test_adamw_decay_right_answer():
    assert absolute.check_adamw_decay(lambda lr, wd, steps: (1 - lr * wd) ** steps)
    assert absolute.check_adamw_decay(
        lambda lr, wd, steps: torch.tensor(1 - lr * wd, dtype=torch.float64) ** steps
    )


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (lambda lr, wd, steps: 1.0, "gradient or not"),
        (lambda lr, wd, steps: 1 - lr * wd * steps, "compound"),
        (lambda lr, wd, steps: (1 - wd) ** steps, "forgot the learning rate"),
        (lambda lr, wd, steps: math.exp(-lr * wd * steps), "approximation"),
        (lambda lr, wd, steps: (1 - lr * wd) ** (steps - 1), "off by one"),
        (lambda lr, wd, steps: 0.3, "expected"),
    ],
)
def test_adamw_decay_names_the_mistake(fn, hint):
    result = absolute.check_adamw_decay(fn)
    assert not result and hint in result.message


# ------------------------------------------------------- chapter 2: the PyTorch module


def make_module(
    *,
    persistent=False,
    parameter=False,
    check_length=True,
    scale=False,
    dropout_in_eval=False,
    no_dropout=False,
    layout="interleaved",
    buffer=True,
):
    class Module(torch.nn.Module):
        def __init__(self, d_model, max_len=512, dropout=0.1):
            super().__init__()
            table = absolute.reference_table(max_len, d_model, layout=layout).float()
            if parameter:
                self.pe = torch.nn.Parameter(table)
            elif buffer:
                self.register_buffer("pe", table, persistent=persistent)
            else:
                self.pe = table  # a plain attribute: .to() does not move it
            self.max_len, self.d_model = max_len, d_model
            self.dropout = torch.nn.Dropout(0.0 if no_dropout else dropout)

        def forward(self, x):
            n = x.shape[1]
            if check_length and n > self.max_len:
                raise ValueError(f"sequence length {n} exceeds max_len={self.max_len}")
            x = x * self.d_model**0.5 if scale else x
            out = x + self.pe[:n]
            if dropout_in_eval:
                return torch.nn.functional.dropout(out, self.dropout.p, training=True)
            return self.dropout(out)

    return Module


def test_module_right_answer():
    result = absolute.check_sinusoidal_module(make_module())
    assert result, result.message


def test_module_library_passes():
    import posenc_lib as pe

    def library(d_model, max_len, dropout):
        return pe.SinusoidalPositionalEncoding(d_model, max_len=max_len, dropout=dropout)

    result = absolute.check_sinusoidal_module(library)
    # The library computes longer inputs on the fly instead of raising, by design.
    assert not result and "max_len" in result.message


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"parameter": True}, "register_buffer"),
        ({"persistent": True}, "persistent=False"),
        ({"check_length": False}, "max_len"),
        ({"scale": True}, "sqrt(d_model)"),
        ({"no_dropout": True}, "dropout=0.5 changes nothing"),
        ({"dropout_in_eval": True}, "eval mode"),
        ({"layout": "concat"}, "concatenated"),
        ({"buffer": False}, "plain tensor attribute"),
    ],
)
def test_module_names_the_mistake(options, hint):
    result = absolute.check_sinusoidal_module(make_module(**options))
    assert not result and hint in result.message, result.message


# ------------------------------------------------------ chapter 2: by-hand exercises

RIGHT_OMEGAS = [1.0, 0.0464, 0.00215]


def test_table_entries_right_answer():
    assert absolute.check_table_entries(RIGHT_OMEGAS, 0.448, 0.894)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        ((RIGHT_OMEGAS, 0.894, 0.448), "swapped"),
        ((RIGHT_OMEGAS, 0.0081, 1.0), "degrees"),
        ((RIGHT_OMEGAS, 0.448, math.cos(0.1)), "column index"),
        ((RIGHT_OMEGAS, math.sin(0.0215), math.cos(0.0215)), "pair i = 1"),
        (([1.0, 10_000 ** (-1 / 6), 10_000 ** (-2 / 6)], 0.448, 0.894), "i/d"),
        (([1.0, 21.54, 464.2], 0.448, 0.894), "+2i/d"),
        (([1.0, 0.0464], 0.448, 0.894), "3 frequencies"),
        ((RIGHT_OMEGAS, 0.3, 0.9), "expected about"),
    ],
)
def test_table_entries_names_the_mistake(args, hint):
    result = absolute.check_table_entries(*args)
    assert not result and hint in result.message, result.message


def test_alias_position():
    assert absolute.check_alias_position(44)
    for wrong, hint in [
        (6, "full turns"),
        (19, "full turns"),
        (50, "between 1 and 49"),
        (44.5, "integer"),
        ("x", "integer"),
    ]:
        result = absolute.check_alias_position(wrong)
        assert not result and hint in result.message, (wrong, result.message)


def test_printed_result_fits_the_code_column():
    result = absolute.check_adamw_decay(lambda lr, wd, steps: 1.0)
    assert len(repr(result)) > 88
    assert all(len(line) <= 88 for line in str(result).splitlines())
    assert " ".join(str(result).split()) == " ".join(repr(result).split())
