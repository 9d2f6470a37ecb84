"""One policy for text that is not valid Unicode, on every entry point (JSON bodies, the CLI,
the library's ``as_batch``): **reject** with a message naming where the problem is.

Replacing would route and bill a text the caller never wrote; a lone surrogate
(``"\\ud83d"`` in JSON, or raw non-UTF-8 bytes in argv arriving through surrogateescape)
cannot even be encoded as UTF-8, so it would fail later in the tokenizer or the embedding
model, far from the request.
"""

from __future__ import annotations

import re

from mixllm.core.errors import InvalidRequestError

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: str, where: str) -> str:
    """``value`` unchanged if it is valid Unicode; InvalidRequestError naming ``where`` and
    the position of the first lone surrogate otherwise."""
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise InvalidRequestError(
            f"{where}: not valid Unicode (lone surrogate \\u{ord(bad.group()):04x} at "
            f"character {bad.start()}); send UTF-8 text"
        )
    return value
