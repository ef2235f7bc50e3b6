"""``python -m benchmarks``: the benchmark suite, every measure against its baseline (``benchmarks/suite.py``)."""

from benchmarks.suite import main

if __name__ == "__main__":
    main()
