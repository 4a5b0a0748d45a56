"""`python -m dashboard` (`make dashboard`): write the checkout dashboard's JSON where the
monitoring component makes a ConfigMap of it. tests/deploy/test_dashboard.py fails while the
committed file differs from what this writes."""

from __future__ import annotations

from pathlib import Path

from dashboard.grafana import render
from dashboard.panels import ROWS

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "deploy" / "k8s" / "components" / "monitoring" / "dashboards" / "checkout.json"


def main() -> None:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(render(ROWS))
    print(f"dashboard: wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
