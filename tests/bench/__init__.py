"""`scripts/bench`: the service against hand-written twins doing the same SQL, under `wrk`.

- `world.py` seeds N tenants x M tasks with COPY and mints the callers' tokens;
- `twins.py` holds the bare twin (FastAPI, asyncpg, orjson, the same data SQL, no auth) and the
  isolated floor (also ES256 verification, `BEGIN` with `SET LOCAL`, the access query, as the
  app role under row-level security);
- `load.py` drives one side with `wrk` and reads its figures;
- `__main__.py` starts everything, alternates the sides for two rounds and prints the results.
"""
