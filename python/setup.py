"""Builds the extension unio._unio with the project's CMake (the parent directory's
CMakeLists.txt with UNIO_BUILD_PYTHON=ON) and copies it into the wheel. Offline: nothing is
downloaded; CMake finds pybind11 through the running Python (pip's or Debian's python3-pybind11)
or in /usr/lib/cmake (Debian's pybind11-dev).

Environment: UNIO_BUILD_JOBS (default 2), UNIO_CMAKE_ARGS (extra arguments for CMake, split on
spaces), CMAKE_BUILD_TYPE (default Release).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent  # unio's source tree


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        if not (SOURCE / "CMakeLists.txt").exists():
            raise RuntimeError(f"unio: no CMakeLists.txt in {SOURCE}; install from unio's source tree (pip install ./python)")
        build_dir = Path(self.build_temp).resolve() / "cmake"
        configure = [
            "cmake", "-S", str(SOURCE), "-B", str(build_dir),
            f"-DCMAKE_BUILD_TYPE={os.environ.get('CMAKE_BUILD_TYPE', 'Release')}",
            "-DUNIO_BUILD_PYTHON=ON", "-DUNIO_BUILD_TESTS=OFF", "-DUNIO_BUILD_TOOLS=OFF",
            "-DUNIO_BUILD_EXAMPLES=OFF", "-DUNIO_BUILD_BENCHMARKS=OFF", "-DUNIO_INSTALL=OFF",
            f"-DPython_EXECUTABLE={sys.executable}",
        ]
        if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"]
        configure += os.environ.get("UNIO_CMAKE_ARGS", "").split()
        subprocess.check_call(configure)
        jobs = os.environ.get("UNIO_BUILD_JOBS", "2")
        subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "unio_python", "-j", jobs])
        built = sorted((build_dir / "python" / "unio").glob("_unio*.so"))
        if not built:
            raise RuntimeError(f"unio: the build left no _unio*.so in {build_dir / 'python' / 'unio'}")
        out = Path(self.get_ext_fullpath(ext.name)).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], out)


setup(ext_modules=[CMakeExtension("unio._unio")], cmdclass={"build_ext": CMakeBuild})
