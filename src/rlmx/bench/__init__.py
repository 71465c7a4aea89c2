"""``rlmx bench``: the RLM paper's long-context tasks, its baselines, scoring and reports.

``tasks`` (the Task record, lengths), generators (``needles``, ``oolong``, ``oolong_pairs``,
``logs``, ``codeqa``; ``registry`` names them), ``scoring``, ``methods`` (rlm, rlm-no-sub)
and ``baselines`` (direct, summary, retrieval), ``runner`` (resumable JSONL), ``report``
(Markdown and HTML with ``svg`` charts). See ``docs/benchmarks.md``.
"""
