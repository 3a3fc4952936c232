"""Running the checkout's saekit from the Python check scripts: the repository root, its
CLI, and a snippet of JavaScript run as a module against the built library (dist/), given
the root and its arguments. Needs only Python's standard library and a built checkout (npm ci).
"""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_js(script, *args):
    """What `script` prints; it reads the repository root and then `args` from process.argv.slice(1)."""
    return subprocess.run(["node", "--input-type=module", "-e", script, ROOT, *args], check=True, capture_output=True, text=True).stdout


def saekit(*args):
    """What `saekit ARGS...` (the checkout's CLI) prints to stdout; a failure raises, with its stderr."""
    return subprocess.run(["node", os.path.join(ROOT, "bin", "saekit.js"), *args], check=True, capture_output=True, text=True).stdout
