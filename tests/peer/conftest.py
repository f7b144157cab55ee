"""The peer transcript driver imports the shared helpers from tests/pylib."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pylib"))
