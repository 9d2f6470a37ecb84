"""Tag-contrastive fine-tuning of a ``SentenceEncoder``: each query is pulled towards the
description of its tags (and so towards its peers), with sentence-transformers' trainer and
MultipleNegativesRankingLoss. The tuned weights are cached on disk by a hash of the base
weights, the pairs and the settings."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mixllm.routing.encoder import SentenceEncoder

log = logging.getLogger(__name__)


def finetune(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    tag_texts: Sequence[str],
    *,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 3e-5,
    max_pairs: int = 2000,
    seed: int = 0,
) -> SentenceEncoder:
    """Fine-tune ``encoder`` in place on (query, tag description) pairs; ``encoder``.

    No duplicate texts in a batch; at most ``max_pairs`` distinct pairs (a seeded sample).
    With a ``cache_dir`` the weights are saved under ``cache_dir``/encoders/<key> and found
    there next time; without one they stay in memory.
    """
    pairs = list(dict.fromkeys(zip(texts, tag_texts, strict=True)))
    rng = np.random.default_rng(seed)
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_pairs, replace=False))]
    if epochs <= 0 or len(pairs) < 2:
        return encoder
    key = hashlib.sha256(
        json.dumps(
            [encoder.weights_fingerprint, pairs, epochs, batch_size, learning_rate, seed]
        ).encode()
    ).hexdigest()[:16]
    fingerprint = f"st-ft-{key}-{encoder.max_seq_length}"
    store = Path(encoder.cache_dir) / "encoders" / key if encoder.cache_dir else None
    if store is not None and (store / "config.json").exists():
        log.info("tag-enhanced encoder %s found in cache", key)
    else:
        model = _train(encoder, pairs, epochs, batch_size, learning_rate, seed)
        if store is None:
            encoder._use_weights(model, None, fingerprint)
            return encoder
        tmp = store.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(str(tmp))
        shutil.rmtree(store, ignore_errors=True)
        tmp.rename(store)
    encoder._use_weights(None, str(store), fingerprint)
    return encoder


def _train(
    encoder: SentenceEncoder,
    pairs: list[tuple[str, str]],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> Any:
    """A freshly loaded copy of ``encoder``'s SentenceTransformer, trained on ``pairs``."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    model = encoder._load_model(encoder._resolved_path())
    data = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_steps=0.1,  # a float is a ratio of the total steps
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            seed=seed,
            save_strategy="no",
            report_to="none",
            logging_steps=10_000,
            disable_tqdm=False,
            use_cpu=True,
            dataloader_num_workers=0,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=data,
            loss=MultipleNegativesRankingLoss(model),
        )
        trainer.train()
    return model
