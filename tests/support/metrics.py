"""Reading a Prometheus exposition the way Prometheus does (prometheus_client's parser),
for tests that check what ``/metrics`` says."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

#: (sample name, sorted label pairs) -> value.
Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition; fails on text Prometheus could not parse."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"a sample appears twice: {key}"
            samples[key] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, pairs), value in samples.items()
        if sample == name and wanted <= set(pairs)
    )


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The one sample named ``name`` with exactly ``labels``, or None."""
    return samples.get((name, tuple(sorted(labels.items()))))


def documented(text: str) -> dict[str, tuple[str, str]]:
    """Metric family name -> (type, help), from the ``# TYPE`` and ``# HELP`` lines."""
    found: dict[str, tuple[str, str]] = {}
    for family in text_string_to_metric_families(text):
        found[family.name] = (family.type, family.documentation)
    return found
