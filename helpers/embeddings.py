"""The course's embedders for llama-index (offline: the real all-MiniLM-L6-v2, standing in for
bge-small too), loaded once per process, with query embeddings cached.

    Settings.embed_model = embeddings.embed_model()      # prints what the hub id resolved to
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.embeddings.huggingface import HuggingFaceEmbedding

from . import config
from .models import device, load_sentence_model, resolve

EMBED_ID = config.RAG_EMBEDDER  # offline: the all-MiniLM-L6-v2 stand-in (384 dimensions too)


class CachedEmbedding(HuggingFaceEmbedding):
    """`HuggingFaceEmbedding` that remembers query embeddings: evaluation loops ask the same
    questions of many retrievers. `info` records what the hub id resolved to."""

    _query_cache: dict = PrivateAttr(default_factory=dict)
    _info: Any = PrivateAttr(default=None)

    def _get_query_embedding(self, query: str) -> list[float]:
        if query not in self._query_cache:
            self._query_cache[query] = super()._get_query_embedding(query)
        return self._query_cache[query]

    def cache_queries(self, queries: Sequence[str]) -> None:
        """Embed many queries in one batch (much faster than one by one) into the cache."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._query_cache]
        if todo:
            self._query_cache.update(zip(todo, self._embed(todo, prompt_name="query")))

    @property
    def info(self) -> Any:
        return self._info


def embedder(hub_id: str = EMBED_ID) -> CachedEmbedding:
    """llama-index's embedding model for `hub_id` (offline: the MiniLM stand-in), one per process."""
    return _embedder(hub_id)


@lru_cache(maxsize=None)
def _embedder(hub_id: str) -> CachedEmbedding:
    info = resolve(hub_id)
    # On the hub a bge id gets its query instruction automatically; a local path gets none.
    model = CachedEmbedding(model_name=info.location, device=device(), show_progress_bar=False)
    model._info = info
    _EMBEDDER_IDS.add(hub_id)
    return model


def loaded_embedder(hub_id: str = EMBED_ID) -> CachedEmbedding | None:
    """The embedder of `hub_id` if this process loaded it already, else None (loads nothing)."""
    return embedder(hub_id) if hub_id in _EMBEDDER_IDS else None


_EMBEDDER_IDS: set[str] = set()  # hub ids whose embedder is loaded


def embed_model(hub_id: str = EMBED_ID, announce: bool = True) -> CachedEmbedding:
    """`embedder(hub_id)`, printing what the id resolved to (once per process, see `models.announce`)."""
    from .models import announce as say

    model = embedder(hub_id)
    if announce:
        say(model.info, "embed  ")
    return model


def sentence_model(hub_id: str = config.DEFAULT_EMBEDDER) -> Any:
    """A `SentenceTransformer` for `hub_id`: the llama-index embedder's own copy when one with the
    same weights is loaded already, else a fresh load."""
    return _sentence_model(hub_id)


@lru_cache(maxsize=None)
def _sentence_model(hub_id: str) -> Any:
    location = resolve(hub_id).location
    for hub in sorted(_EMBEDDER_IDS):
        model = embedder(hub)
        if model.info.location == location:
            print(f"sentence model: {hub_id} (the embedder's copy, already loaded)")
            return model._model
    return load_sentence_model(hub_id).model
