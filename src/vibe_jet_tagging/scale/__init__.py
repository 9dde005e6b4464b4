"""Beyond one process: offline batch files and cluster engines (Dask, Ray).

- :mod:`.batchfiles`: request files for ``vllm run-batch`` and the OpenAI Batch API;
- :mod:`.batchread`: their output files read back through the tagger's gate;
- :mod:`.engines`: a tagger per worker on Dask or Ray (optional extras).
"""
