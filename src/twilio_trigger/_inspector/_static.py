"""The stylesheet and the scripts of the pages: files of ``static``, under hashed paths.

Each is read once and served under a path naming a digest of its content
(``/static/inspector.0123456789abcdef.js``): a new version is a new path, so
browsers may keep each for good, and revalidate with its entity tag.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from importlib import resources
from typing import NamedTuple

from .._asgi import send_answer
from .._core.answers import Answer, answer
from ._headers import IMMUTABLE, SECURITY, Send

__all__ = ["Asset", "assets", "serve"]


class Asset(NamedTuple):
    """A file the pages load: its path here, its bytes, their type and entity tag."""

    path: str
    body: bytes
    content_type: bytes
    etag: bytes


_TYPES = {
    "inspector.css": b"text/css; charset=utf-8",
    "inspector.js": b"text/javascript; charset=utf-8",
    "event.js": b"text/javascript; charset=utf-8",
    "control.js": b"text/javascript; charset=utf-8",
}


@functools.cache
def assets() -> dict[str, Asset]:
    """The files of ``static``, read once, each under a path with its digest."""
    folder = resources.files(__name__.rpartition(".")[0]).joinpath("static")
    found = {}
    for name, content_type in _TYPES.items():
        body = folder.joinpath(name).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:16]
        stem, _, extension = name.rpartition(".")
        etag = f'"{digest}"'.encode("ascii")
        found[name] = Asset(f"/static/{stem}.{digest}.{extension}", body, content_type, etag)
    return found


async def serve(send: Send, asset: Asset, headers: Mapping[bytes, bytes]) -> None:
    """Answer with *asset*, or with 304 when the browser has it (``If-None-Match``)."""
    cached = headers.get(b"if-none-match", b"")
    tags = {tag.strip().removeprefix(b"W/") for tag in cached.split(b",")}
    common = (*SECURITY, IMMUTABLE, (b"etag", asset.etag))
    if asset.etag in tags or b"*" in tags:
        await send_answer(send, Answer(304, b"", common))
        return
    await send_answer(send, answer(200, asset.body, asset.content_type, *common))
