"""Routing data: ``loaders.load_data`` reads any supported source into ``RoutingData``.

Modules: ``loaders`` (dispatch), ``routerbench`` (wide format, prompt parsing), ``hub``
(hf:// paths), ``long_format`` (one row per query and LLM), ``messplus`` (the MESS+ latency
file), ``tables`` (reading files), ``frames`` (column helpers), ``accounting`` (rows kept and
skipped, the load report), ``splits`` (train / held-out bookkeeping).
"""
