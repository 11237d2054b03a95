# unio_find_python(<out>): finds Python 3's interpreter and development files, and pybind11, and
# sets <out> to ON when all were found. A macro, so that what it finds is seen by the caller.
#
# The interpreter is the one given as Python_EXECUTABLE or Python3_EXECUTABLE, else Debian's
# /usr/bin/python3 when it exists: another python3 (pyenv's) may come first on PATH, and it does not
# see Debian's packages (python3-pybind11, python3-pytest, python3-uvloop) that the tests use.
macro(unio_find_python out)
  if(NOT DEFINED Python_EXECUTABLE)
    if(DEFINED Python3_EXECUTABLE)
      set(Python_EXECUTABLE "${Python3_EXECUTABLE}")
    elseif(EXISTS /usr/bin/python3)
      set(Python_EXECUTABLE /usr/bin/python3)
    endif()
  endif()
  find_package(Python 3.8 COMPONENTS Interpreter Development.Module QUIET)
  if(Python_FOUND AND NOT DEFINED pybind11_DIR)
    # pip's pybind11 (or Debian's python3-pybind11) knows where its CMake package is.
    execute_process(COMMAND ${Python_EXECUTABLE} -c "import pybind11; print(pybind11.get_cmake_dir())"
      OUTPUT_VARIABLE unio_pybind11_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE unio_rc)
    if(unio_rc EQUAL 0 AND EXISTS "${unio_pybind11_dir}")
      set(pybind11_DIR "${unio_pybind11_dir}")
    endif()
  endif()
  if(Python_FOUND)
    set(PYBIND11_FINDPYTHON ON)
    find_package(pybind11 2.6 CONFIG QUIET)
  endif()
  if(Python_FOUND AND pybind11_FOUND)
    set(${out} ON)
  else()
    set(${out} OFF)
  endif()
endmacro()
