"""Makes this repository importable as ansible_collections.llmfleet.deepseek for unit tests
(the layout ansible-test gives it), without installing it."""
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
_TREE = ROOT / ".cache" / "unit-collections"
_LINK = _TREE / "ansible_collections" / "llmfleet" / "deepseek"

if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT, _LINK)
if str(_TREE) not in sys.path:
    sys.path.insert(0, str(_TREE))
sys.path.insert(0, str(ROOT / "tests" / "unit"))
