"""Commissioner tools over many records: synthetic activity, batch classification, what-if.

* `rows`       -- the SUS-like CSV layout; a row to a request (reference) or an `Activity` (fast)
* `classify`   -- streaming, multi-process classification of a CSV (`pss batch`)
* `diff`       -- the same cases under two policy sets (`pss diff`), text and HTML report
* `whatif`     -- the framework-free what-if used by `POST /v1/what-if`
* `s3_handler` -- classification of an S3 object (`incoming/` → `classified/`)
* `cli`        -- `synth_main`, `batch_main`, `diff_main`
"""
