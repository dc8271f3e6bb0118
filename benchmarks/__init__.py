"""Benchmark harness of optuna-meta: YAHPO Gym surrogate objectives, task cross-validation,
sampler and pruner protocols, peer methods and reports.

See ``benchmarks/README.md`` for the protocol and the commands. The public pieces:

* :class:`benchmarks.protocol.BenchContext` and ``MethodFactory`` -- how a sampler plugs in;
* :class:`benchmarks.pruning.PrunerMethod` and ``PrunerFactory`` -- how a pruner plugs in;
* :func:`benchmarks.protocol.run_method` / :func:`benchmarks.pruning.run_pruner_method` --
  run one method, save its raw result, and :mod:`benchmarks.report` builds the tables from every
  saved result.
"""
