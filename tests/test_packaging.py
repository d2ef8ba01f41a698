"""The installed package carries everything a chapter reads (no repository needed)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "posenc_lib"


def test_the_wheel_holds_every_module_and_stored_result(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("posenc_lib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".json", ".typed", ".gz"}
        and "__pycache__" not in p.parts
    }
    assert wanted, "no package files found"
    missing = sorted(wanted - names)
    assert not missing, f"not in the wheel (pyproject package-data?): {missing}"
