"""posenc_lib: the positional encodings of the book *Positional Encoding, Executed*.

Conventions, decided once for the whole library:

- Tensor layout for attention is ``(batch, heads, seq, head_dim)``; token tensors are
  ``(batch, seq, d_model)``.
- Sinusoidal tables default to the *interleaved* layout of Vaswani et al.
  (``P[p, 2i] = sin``, ``P[p, 2i+1] = cos``); ``layout="concat"`` puts all sines first.
- RoPE defaults to the *half* layout (feature ``k`` paired with ``k + head_dim/2``,
  GPT-NeoX / Llama ``rotate_half``); ``layout="interleaved"`` pairs ``2k`` with ``2k+1``.
- A relative position is *key minus query*: ``rel[i, j] = j - i``.
- Angles and tables are computed in float32 and cast to the requested dtype at the end.

Every module keeps its public names in ``__all__``; this file re-exports them.
"""

# The book's own support code lives in posenc_lib.book (imported on demand).
from .alibi import *  # noqa: F403
from .attention import *  # noqa: F403
from .flex_bias import *  # noqa: F403
from .learned import *  # noqa: F403
from .model import *  # noqa: F403
from .multidim import *  # noqa: F403
from .relative import *  # noqa: F403
from .rope import *  # noqa: F403
from .rope_convert import *  # noqa: F403
from .rope_module import *  # noqa: F403
from .rope_scaling import *  # noqa: F403
from .rope_triton import *  # noqa: F403
from .sinusoidal import *  # noqa: F403
from .t5 import *  # noqa: F403
from .utils import *  # noqa: F403

__version__ = "0.1.0"
