"""A real pandas + numpy + matplotlib script gives the same output inside the default sandbox
as outside it."""
import os
import subprocess
import unittest

from harness import PY, ROOT, TempDir, corral_json, run

SCRIPT = os.path.join(ROOT, "tests/data/compat_grunfeld.py")
DATA = os.path.join(ROOT, "data/grunfeld.csv")


class Compat(unittest.TestCase):
    def test_pandas_script_inside_equals_outside(self):
        with TempDir() as inside, TempDir() as outside:
            r = corral_json("run", "--ro", DATA + ":/data/grunfeld.csv",
                            "--ro", SCRIPT + ":/job/compat.py", "--output", inside,
                            "--", PY, "/job/compat.py", timeout=300)
            self.assertEqual(r["status"], "ok", r)
            host = run([PY, SCRIPT], env={"DATA": DATA, "OUT": outside,
                                          "MPLBACKEND": "Agg", "HOME": outside,
                                          "MPLCONFIGDIR": os.path.join(outside, ".mpl")},
                       timeout=300)
            self.assertEqual(host.returncode, 0, host.stderr)
            self.assertEqual(r["stdout"], host.stdout.decode())
            self.assertIn("General Motors", r["stdout"])
            self.assertEqual([f["path"] for f in r["files"]], ["invest.png"])
            a = open(os.path.join(inside, "invest.png"), "rb").read()
            b = open(os.path.join(outside, "invest.png"), "rb").read()
            self.assertEqual(a[:8], b"\x89PNG\r\n\x1a\n")
            self.assertEqual(a, b, "the figure differs inside and outside")


if __name__ == "__main__":
    unittest.main()
