"""Shared fixtures: every device-aware test runs on the CPU and, when present, on CUDA."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(params=DEVICES)
def device(request):
    """A torch device name: "cpu", plus "cuda" when a GPU is available."""
    return torch.device(request.param)


@pytest.fixture(params=FLOAT_DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def dtype(request):
    """A floating dtype the library must support."""
    return request.param


def assert_close(actual, expected, *, atol=1e-5, rtol=1e-5, msg=""):
    """torch.testing.assert_close with the book's default tolerances and a message."""
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=msg or None)
