"""Running clvtools on a Spark cluster (optional extra: ``pip install clvtools[spark]``).

The summaries run in Spark SQL (:mod:`clvtools.data.spark_engine` and its siblings), the
models are fitted on the driver from compressed statistics (:mod:`.spark_fit`), and every
customer is scored on the executors by the pipeline's own scoring functions, mapped over
partitions (:mod:`.spark`). :mod:`.spark_run` is ``clvtools analyze --engine spark``.
pyspark is imported only inside the functions that need it.
"""
