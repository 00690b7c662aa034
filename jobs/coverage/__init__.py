"""Coverage reports (Cobertura, LCOV, coverage.py JSON, JaCoCo), diffs and patch coverage.

- `jobs.coverage.reports`: pure parsers into one model (`CoverageReport` of `FileCoverage`) and the
  totals, computed as coverage.py's `coverage report` computes its TOTAL;
- `jobs.coverage.diff`: the lines a unified diff adds, and the diff of merge-base..head from git;
- `jobs.coverage.patch`: patch coverage (as diff-cover computes it), uncovered changed ranges and the
  largest uncovered blocks of the changed files;
- `jobs.coverage.config`: the `coverage` section of `.aqe.yml`.
"""
