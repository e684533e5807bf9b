"""Number formatting shared by the HTML page, the markdown summaries and ``compare``.

The parameters are typed as the figures of :mod:`chaos.report.schema` are (``float | None``; an int is
one too): a figure read from the document with a misspelt key has the type ``object``, which mypy then
refuses here.
"""

from __future__ import annotations

__all__ = ["fmt_count", "fmt_ms", "fmt_pct", "fmt_rate", "fmt_s"]


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def fmt_ms(v: float | None) -> str:
    """Milliseconds: ``10.5``, ``222``, ``3,799``; ``-`` when absent."""
    x = _num(v)
    if x is None:
        return "-"
    if abs(x) < 100:
        return f"{x:.1f}"
    return f"{x:,.0f}"


def fmt_s(v: float | None, digits: int = 2) -> str:
    """Seconds: ``0.45``, ``12.3``; ``-`` when absent."""
    x = _num(v)
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def fmt_pct(v: float | None) -> str:
    """A fraction as a percentage: ``0%``, ``3.75%``, ``0.05%``, ``100%``."""
    x = _num(v)
    if x is None:
        return "-"
    if x == 0:
        return "0%"
    p = x * 100
    if 0 < abs(p) < 0.01:
        return "<0.01%"
    s = f"{p:.1f}" if abs(p) >= 10 else f"{p:.2f}"
    return s.rstrip("0").rstrip(".") + "%"


def fmt_rate(v: float | None) -> str:
    """Operations per second: ``199.9``, ``1,110``."""
    x = _num(v)
    if x is None:
        return "-"
    return f"{x:.1f}" if abs(x) < 1000 else f"{x:,.0f}"


def fmt_count(v: float | None) -> str:
    x = _num(v)
    if x is None:
        return "-" if v is None else str(v)
    return f"{int(x):,}" if x == int(x) else f"{x:.6g}"
