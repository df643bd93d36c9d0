"""whisperd as a Ray Serve application (the ``ray`` extra: ``pip install 'whisperd[ray]'``).

The same FastAPI app as ``whisperd serve`` (:func:`whisperd.app.create_app`) is the ingress of
one Serve deployment: Ray's proxy listens on ``host:port`` and spreads HTTP requests and
WebSocket streams over the replicas, each of which owns one service (its engines, their
schedulers and its jobs runner). The parts, one concept each:

- :mod:`~whisperd.ray_serve.options`: settings to Serve deployment options (pure);
- :mod:`~whisperd.ray_serve.placement`: whether the cluster can place the replicas;
- :mod:`~whisperd.ray_serve.replica`: the deployment class, its readiness and health;
- :mod:`~whisperd.ray_serve.replica_metrics`: ``/metrics`` labelled with the replica;
- :mod:`~whisperd.ray_serve.proxy`: the proxy-side close of streams whose replica went away;
- :mod:`~whisperd.ray_serve.application`: the Serve application and its config-file builder;
- :mod:`~whisperd.ray_serve.run`: ``whisperd serve --ray`` from start to stop.

Importing this package imports Ray; :mod:`whisperd.cli` does so only for ``--ray``.
"""

from __future__ import annotations

from whisperd.ray_serve.application import app_builder, build_application
from whisperd.ray_serve.run import run_on_ray

__all__ = ["app_builder", "build_application", "run_on_ray"]
